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
