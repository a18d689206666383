//! Reading Delius reference rows (office locations, disposal types…) for decisions, from
//! PostgreSQL or, on the embedded default, from the in-memory tables and the national codes
//! of the migration.

use serde_json::{Map, Value};
use sqlx::Row;

use projections::postgres::identifier;
use projections::Key;

use crate::engine::{Backend, Engine};
use crate::seed::codes::{parse_reference_rows, REFERENCE_SQL};

/// One reference row by code, as JSON columns.
pub async fn row(
    engine: &Engine,
    table: &str,
    code: &str,
) -> Result<Option<Map<String, Value>>, sqlx::Error> {
    let table = identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    match &engine.backend {
        Backend::Postgres(pool) => {
            let row = sqlx::query(&format!(
                "SELECT to_jsonb(t) FROM delius.\"{table}\" t WHERE code = $1"
            ))
            .bind(code)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => match row.try_get::<Value, _>(0)? {
                    Value::Object(map) => Some(map),
                    _ => None,
                },
                None => None,
            })
        }
        Backend::Memory { tables, .. } => {
            if let Some(found) = tables
                .read()
                .ok()
                .and_then(|t| t.row(table, &Key::Code(code.to_string())).cloned())
            {
                return Ok(Some(found));
            }
            Ok(parse_reference_rows(REFERENCE_SQL)
                .into_iter()
                .find(|(t, row)| {
                    t == table && row.get("code").cloned().flatten().as_deref() == Some(code)
                })
                .map(|(_, row)| {
                    row.into_iter()
                        .map(|(column, value)| (column, value.map_or(Value::Null, Value::from)))
                        .collect()
                }))
        }
    }
}

/// A column as an integer, whether stored as a number or as text.
pub fn int(row: &Map<String, Value>, column: &str) -> Option<i64> {
    match row.get(column)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A column as a boolean, whether stored as a boolean or as text.
pub fn boolean(row: &Map<String, Value>, column: &str) -> Option<bool> {
    match row.get(column)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Every row of a `delius` table whose `column` equals `value` (compared as text), in key
/// order. Serves the read endpoints on both backends.
pub async fn rows_where(
    engine: &Engine,
    table: &str,
    column: &str,
    value: &str,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let table = identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let column = identifier(column).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    match &engine.backend {
        Backend::Postgres(pool) => {
            let key = projections::rows::table(table).map_or("code", |t| t.key);
            let rows: Vec<Value> = sqlx::query_scalar(&format!(
                // The text value is coerced to the column's own type (a constant for the
                // planner), so that the column's index serves the lookup; `column::text = $1`
                // would scan the table on every call.
                "SELECT to_jsonb(t) FROM delius.\"{table}\" t \
                 WHERE t.\"{column}\" = (json_populate_record(NULL::delius.\"{table}\", \
                 json_build_object('{column}', $1::text))).\"{column}\" ORDER BY t.\"{key}\""
            ))
            .bind(value)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(map) => Some(map),
                    _ => None,
                })
                .collect())
        }
        Backend::Memory { tables, .. } => Ok(tables
            .read()
            .map(|t| {
                t.rows(table)
                    .into_iter()
                    .filter(|row| row.get(column).is_some_and(|v| text(v) == value))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()),
    }
}

/// One lookup of a batch ([`lookup_many`]): the rows of `table` whose text column `column` is
/// one of `values`.
#[derive(Debug, Clone)]
pub struct Lookup<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub values: Vec<String>,
}

impl<'a> Lookup<'a> {
    /// The rows of `table` whose `column` is one of `values`.
    pub fn new<V: ToString>(
        table: &'a str,
        column: &'a str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self {
            table,
            column,
            values: values.into_iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// Several lookups in one round trip: for each lookup, in its order, its rows in key order.
/// The columns must be text (`code`, `nomis_code`, `institution_code`…): the values are bound
/// as one `text[]` per lookup, which each column's index serves. On the embedded default each
/// lookup is answered as [`row`] (by `code`, with the migration's national codes) or
/// [`rows_where`] would answer it.
pub async fn lookup_many(
    engine: &Engine,
    lookups: &[Lookup<'_>],
) -> Result<Vec<Vec<Map<String, Value>>>, sqlx::Error> {
    let mut found = vec![Vec::new(); lookups.len()];
    match &engine.backend {
        Backend::Postgres(pool) => {
            let mut branches = Vec::new();
            for (i, lookup) in lookups.iter().enumerate() {
                if lookup.values.is_empty() {
                    continue;
                }
                let table =
                    identifier(lookup.table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                let column =
                    identifier(lookup.column).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                let key = projections::rows::table(table).map_or("code", |t| t.key);
                branches.push(format!(
                    "SELECT {i} AS lookup, to_jsonb(t) AS row, \
                     row_number() OVER (ORDER BY t.\"{key}\") AS place \
                     FROM delius.\"{table}\" t WHERE t.\"{column}\" = ANY(${}::text[])",
                    branches.len() + 1
                ));
            }
            if branches.is_empty() {
                return Ok(found);
            }
            let sql = format!("{} ORDER BY lookup, place", branches.join(" UNION ALL "));
            let mut query = sqlx::query_as::<_, (i32, Value)>(&sql);
            for lookup in lookups.iter().filter(|l| !l.values.is_empty()) {
                query = query.bind(&lookup.values);
            }
            for (i, row) in query.fetch_all(pool).await? {
                if let (Value::Object(map), Some(rows)) = (row, found.get_mut(i as usize)) {
                    rows.push(map);
                }
            }
        }
        Backend::Memory { .. } => {
            for (lookup, rows) in lookups.iter().zip(found.iter_mut()) {
                for value in &lookup.values {
                    if lookup.column == "code" {
                        rows.extend(row(engine, lookup.table, value).await?);
                    } else {
                        rows.extend(rows_where(engine, lookup.table, lookup.column, value).await?);
                    }
                }
                let key = projections::rows::table(lookup.table).map_or("code", |t| t.key);
                rows.sort_by_key(|row| row.get(key).map(text).unwrap_or_default());
                rows.dedup();
            }
        }
    }
    Ok(found)
}

/// Every row of a `delius` table, in key order.
pub async fn all_rows(
    engine: &Engine,
    table: &str,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let table = identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    match &engine.backend {
        Backend::Postgres(pool) => {
            let key = projections::rows::table(table).map_or("code", |t| t.key);
            let rows: Vec<Value> = sqlx::query_scalar(&format!(
                "SELECT to_jsonb(t) FROM delius.\"{table}\" t ORDER BY t.\"{key}\""
            ))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(map) => Some(map),
                    _ => None,
                })
                .collect())
        }
        Backend::Memory { tables, .. } => Ok(tables
            .read()
            .map(|t| t.rows(table).into_iter().cloned().collect())
            .unwrap_or_default()),
    }
}

/// A JSON value as PostgreSQL's `::text` would print it.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A column as a string.
pub fn string(row: &Map<String, Value>, column: &str) -> Option<String> {
    match row.get(column)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
