//! Ordered checksums of projected tables: how replay proves it equals the live tables.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::postgres::{identifier, ProjectionError};
use crate::rows::TABLES;

/// The md5 of every row of every projected table of `schema`, in key order, by table name.
pub async fn schema_checksums(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<BTreeMap<&'static str, String>, ProjectionError> {
    let schema = identifier(schema)?;
    let mut sums = BTreeMap::new();
    for table in TABLES {
        let sql = format!(
            "SELECT coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.\"{key}\")), 'empty') || ':' || count(*) \
             FROM \"{schema}\".\"{name}\" t",
            key = table.key,
            name = table.name
        );
        let sum: String = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?;
        sums.insert(table.name, sum);
    }
    Ok(sums)
}

/// A table whose rows differ between two schemas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableDifference {
    pub table: &'static str,
    /// `md5:rows` of the table in the first schema.
    pub left: String,
    /// `md5:rows` of the table in the second schema.
    pub right: String,
}

/// Compares every projected table of `left` and `right` by ordered checksum; empty when the
/// two schemas hold the same rows.
pub async fn compare_schemas(
    conn: &mut PgConnection,
    left: &str,
    right: &str,
) -> Result<Vec<TableDifference>, ProjectionError> {
    let a = schema_checksums(conn, left).await?;
    let b = schema_checksums(conn, right).await?;
    Ok(a.into_iter()
        .filter_map(|(table, left)| {
            let right = b.get(table).cloned().unwrap_or_default();
            (left != right).then_some(TableDifference { table, left, right })
        })
        .collect())
}
