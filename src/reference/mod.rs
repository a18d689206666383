//! Reading Delius reference rows (office locations, disposal types…) for decisions, from
//! PostgreSQL or, on the embedded default, from the in-memory tables and the national codes
//! of the migration. On PostgreSQL the reference tables are answered from in-memory copies
//! where they can be ([`cache`]), the rest in grouped queries ([`LookupBatcher`]).

pub mod cache;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, Mutex};

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
            if let Some(cache) = engine.reference_cache() {
                if let Some(rows) = cache.rows_where(table, "code", &[code.to_string()]).await? {
                    return Ok(rows.into_iter().next());
                }
            }
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
            if let Some(found) = tables.read().ok().and_then(|t| {
                t.row(table, &Key::Code(code.to_string()))
                    .map(|row| row.clone().into_map())
            }) {
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
            if let Some(cache) = engine.reference_cache() {
                if let Some(rows) = cache
                    .rows_where(table, column, &[value.to_string()])
                    .await?
                {
                    return Ok(rows);
                }
            }
            let key = key_column(table);
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
                    .map(|row| row.clone().into_map())
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
/// as one `text[]` per lookup, which each column's index serves. On PostgreSQL the call goes
/// to the engine's [`LookupBatcher`], which answers it together with other callers' calls in
/// one query. On the embedded default each lookup is answered as [`row`] (by `code`, with the
/// migration's national codes) or [`rows_where`] would answer it.
pub async fn lookup_many(engine: &Engine, lookups: &[Lookup<'_>]) -> Result<Found, sqlx::Error> {
    let mut found = vec![Vec::new(); lookups.len()];
    match &engine.backend {
        Backend::Postgres(pool) => {
            let owned = lookups
                .iter()
                .map(OwnedLookup::checked)
                .collect::<Result<Vec<_>, _>>()?;
            // What the in-memory copies answer; the rest goes to the database.
            let mut asked = Vec::new();
            for (lookup, rows) in owned.into_iter().zip(found.iter_mut()) {
                if lookup.values.is_empty() {
                    continue;
                }
                let cached = match engine.reference_cache() {
                    Some(cache) => {
                        cache
                            .rows_where(&lookup.table, &lookup.column, &lookup.values)
                            .await?
                    }
                    None => None,
                };
                match cached {
                    Some(answer) => *rows = answer,
                    None => asked.push((rows, lookup)),
                }
            }
            if asked.is_empty() {
                return Ok(found);
            }
            let (slots, owned): (Vec<_>, Vec<_>) = asked.into_iter().unzip();
            let answers = match engine.lookups() {
                Some(batcher) => batcher.call(owned).await?,
                None => query_lookups(pool, &owned).await?,
            };
            for (slot, answer) in slots.into_iter().zip(answers) {
                *slot = answer;
            }
            Ok(found)
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
                let key = key_column(lookup.table);
                rows.sort_by_key(|row| row.get(key).map(text).unwrap_or_default());
                rows.dedup();
            }
            Ok(found)
        }
    }
}

/// What [`lookup_many`] answers: per lookup, its rows in key order.
pub type Found = Vec<Vec<Map<String, Value>>>;

/// A [`Lookup`] whose table and column were checked, owned so it can wait for a batcher.
#[derive(Debug, Clone)]
struct OwnedLookup {
    table: String,
    column: String,
    values: Vec<String>,
}

impl OwnedLookup {
    fn checked(lookup: &Lookup<'_>) -> Result<Self, sqlx::Error> {
        let check = |name| identifier(name).map_err(|e| sqlx::Error::Protocol(e.to_string()));
        Ok(Self {
            table: check(lookup.table)?.to_string(),
            column: check(lookup.column)?.to_string(),
            values: lookup.values.clone(),
        })
    }
}

/// The key column of a `delius` table (`code` for tables the registry does not name).
pub(crate) fn key_column(table: &str) -> &'static str {
    projections::rows::table(table).map_or("code", |t| t.key)
}

/// One caller's lookups in one query ([`query_calls`] of that call alone).
async fn query_lookups(pool: &PgPool, lookups: &[OwnedLookup]) -> Result<Found, sqlx::Error> {
    let mut answers = query_calls(pool, &[lookups]).await?;
    Ok(answers.pop().unwrap_or_default())
}

/// How many concurrent [`lookup_many`] calls one query may answer.
pub const MAX_LOOKUP_CALLS: usize = 32;
/// Lookup tasks: each runs one query at a time while the next group gathers.
const LOOKUP_TASKS: usize = 2;

/// **Grouped reference lookups** (PostgreSQL): a task takes the [`lookup_many`] calls that
/// callers queued meanwhile (up to [`MAX_LOOKUP_CALLS`]) and answers them in one query: one
/// branch per (table, column) over the union of the values asked, each row tagged with its
/// column's text, from which each caller gets exactly the rows a query of its own would
/// return, in the same order. Should the group's query fail, each call is run on its own, so
/// each caller gets its own answer or error. The tasks stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LookupBatcher {
    calls: mpsc::Sender<Call>,
}

/// One caller's lookups, waiting for a task.
struct Call {
    lookups: Vec<OwnedLookup>,
    done: oneshot::Sender<Result<Found, sqlx::Error>>,
}

impl LookupBatcher {
    /// A batcher on `pool` with its tasks. Must be called inside a tokio runtime.
    pub fn new(pool: PgPool) -> Self {
        let (calls, queue) = mpsc::channel(4 * MAX_LOOKUP_CALLS);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..LOOKUP_TASKS {
            tokio::spawn(answer_groups(pool.clone(), queue.clone()));
        }
        Self { calls }
    }

    async fn call(&self, lookups: Vec<OwnedLookup>) -> Result<Found, sqlx::Error> {
        let (done, answer) = oneshot::channel();
        self.calls
            .send(Call { lookups, done })
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Takes what callers queued, a group at a time, and answers it.
async fn answer_groups(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Call>>>) {
    loop {
        let Some(group) = crate::store::postgres::gather(&queue, MAX_LOOKUP_CALLS).await else {
            return;
        };
        if group.len() == 1 {
            for call in group {
                crate::metrics::record_lookup_group(1);
                let _ = call.done.send(query_lookups(&pool, &call.lookups).await);
            }
            continue;
        }
        let lookups: Vec<&[OwnedLookup]> = group.iter().map(|c| c.lookups.as_slice()).collect();
        match query_calls(&pool, &lookups).await {
            Ok(answers) => {
                crate::metrics::record_lookup_group(group.len());
                for (call, answer) in group.into_iter().zip(answers) {
                    // A caller that stopped waiting does not need its answer.
                    let _ = call.done.send(Ok(answer));
                }
            }
            // Each caller gets the answer or error a query of its own gets.
            Err(error) => {
                tracing::debug!(%error, calls = group.len(), "grouped lookup failed; one by one");
                for call in group {
                    crate::metrics::record_lookup_group(1);
                    let _ = call.done.send(query_lookups(&pool, &call.lookups).await);
                }
            }
        }
    }
}

/// Several calls' lookups in one query; one answer per call, in order. One branch per
/// (table, column), over every value any call asks of it, each row tagged with the column's
/// text, so each lookup takes only the rows whose value it asked for, in key order.
async fn query_calls(pool: &PgPool, calls: &[&[OwnedLookup]]) -> Result<Vec<Found>, sqlx::Error> {
    let mut branches: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for lookup in calls.iter().flat_map(|c| c.iter()) {
        if !lookup.values.is_empty() {
            branches
                .entry((&lookup.table, &lookup.column))
                .or_default()
                .extend(lookup.values.iter().map(String::as_str));
        }
    }
    if branches.is_empty() {
        return Ok(calls.iter().map(|c| vec![Vec::new(); c.len()]).collect());
    }
    let mut parts = Vec::new();
    for (n, ((table, column), _)) in branches.iter().enumerate() {
        let key = key_column(table);
        parts.push(format!(
            "SELECT {n} AS branch, t.\"{column}\"::text AS matched, to_jsonb(t) AS row, \
             row_number() OVER (ORDER BY t.\"{key}\") AS place \
             FROM delius.\"{table}\" t WHERE t.\"{column}\" = ANY(${p}::text[])",
            p = n + 1
        ));
    }
    let sql = format!("{} ORDER BY branch, place", parts.join(" UNION ALL "));
    let mut query = sqlx::query_as::<_, (i32, String, Value)>(&sql);
    for values in branches.values() {
        query = query.bind(values.iter().copied().collect::<Vec<_>>());
    }
    let mut rows: Vec<Vec<(String, Map<String, Value>)>> = vec![Vec::new(); branches.len()];
    for (branch, matched, row) in query.fetch_all(pool).await? {
        if let (Value::Object(map), Some(slot)) = (row, rows.get_mut(branch as usize)) {
            slot.push((matched, map));
        }
    }
    let index: BTreeMap<(&str, &str), usize> = branches
        .keys()
        .enumerate()
        .map(|(n, key)| (*key, n))
        .collect();
    Ok(calls
        .iter()
        .map(|call| {
            call.iter()
                .map(|lookup| {
                    let Some(branch) = index
                        .get(&(lookup.table.as_str(), lookup.column.as_str()))
                        .and_then(|n| rows.get(*n))
                    else {
                        return Vec::new();
                    };
                    let wanted: BTreeSet<&str> = lookup.values.iter().map(String::as_str).collect();
                    branch
                        .iter()
                        .filter(|(matched, _)| wanted.contains(matched.as_str()))
                        .map(|(_, row)| row.clone())
                        .collect()
                })
                .collect()
        })
        .collect())
}

/// Every row of a `delius` table, in key order.
pub async fn all_rows(
    engine: &Engine,
    table: &str,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let table = identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    match &engine.backend {
        Backend::Postgres(pool) => rows_in_key_order(pool, table, None).await,
        Backend::Memory { tables, .. } => Ok(tables
            .read()
            .map(|t| {
                t.rows(table)
                    .into_iter()
                    .map(|row| row.clone().into_map())
                    .collect()
            })
            .unwrap_or_default()),
    }
}

/// The rows of `delius` table `table` (an identifier already checked), in key order, the
/// first `limit` of them if given.
pub(crate) async fn rows_in_key_order(
    pool: &PgPool,
    table: &str,
    limit: Option<usize>,
) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
    let key = key_column(table);
    let limit = limit.map_or_else(String::new, |n| format!(" LIMIT {n}"));
    let rows: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) FROM delius.\"{table}\" t ORDER BY t.\"{key}\"{limit}"
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
