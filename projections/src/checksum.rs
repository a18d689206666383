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
