//! PostgreSQL side of projections: reading the log in global order below the in-flight
//! horizon, applying row changes in bulk, and the catch-up runner that keeps the `delius`
//! tables current with one active instance per projector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, Row, Transaction};
use tokio::sync::{watch, Notify};

use crate::log::{DecodeError, Json, LoggedEvent, RecordedEvent};
use crate::rows::{self, Key, RowChange, Stamp, INSERT_ONLY_COLUMNS};
use crate::Checkpoint;

/// Why projecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed; the batch was rolled back and is retried.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event cannot be decoded: the projector stops at it (it never skips an event).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A schema or table name that is not a plain lowercase identifier.
    #[error("invalid identifier {0:?}")]
    Identifier(String),
}

const SELECT_EVENTS: &str = "SELECT global_position, transaction_id::text::bigint AS txid, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at \
     FROM events";

fn recorded_event<P>(row: &PgRow) -> Result<RecordedEvent<P>, sqlx::Error>
where
    P: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    Ok(RecordedEvent {
        global_position: row.try_get("global_position")?,
        transaction_id: row.try_get("txid")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Reads up to `limit` events after `after`, in global order, from transactions older than
/// every transaction still in flight — so no event can later appear before the ones returned.
/// With `until`, only events recorded at or before that moment. Payloads stay JSON text.
pub async fn read_events_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LoggedEvent>, sqlx::Error> {
    let sql = format!(
        "{SELECT_EVENTS} WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         AND ($4::timestamptz IS NULL OR recorded_at <= $4) \
         ORDER BY transaction_id, global_position LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .bind(until)
        .fetch_all(conn)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// Reads the events of one aggregate in sequence order (audit).
pub async fn read_stream(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!(
        "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// Checks that a schema or table name is a plain lowercase identifier.
pub fn identifier(name: &str) -> Result<&str, ProjectionError> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(ProjectionError::Identifier(name.to_string()))
    }
}

#[derive(Debug, Clone)]
enum Pending {
    Upsert(Map<String, Value>),
    Update(Map<String, Value>),
    Delete,
}

type Staged = BTreeMap<(&'static str, Key), Pending>;

/// Stages row changes and writes them in bulk: one statement per table, kind and column set
/// (`jsonb_populate_recordset`). Changes to one row merge exactly as if applied one by one;
/// where they cannot, the staged set is sealed and a new one started, and [`PgSink::flush`]
/// writes the sealed sets in order. Staging needs no connection, so a batch can be staged
/// while the previous one is being written.
#[derive(Debug)]
pub struct PgSink {
    schema: String,
    sealed: Vec<Staged>,
    staged: Staged,
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (column, value) in from {
        if INSERT_ONLY_COLUMNS.contains(&column.as_str()) && into.contains_key(&column) {
            continue;
        }
        into.insert(column, value);
    }
}

impl PgSink {
    /// A sink writing into `schema` (normally `delius`).
    pub fn new(schema: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            schema: identifier(schema)?.to_string(),
            sealed: Vec::new(),
            staged: BTreeMap::new(),
        })
    }

    /// Stages one stamped change, sealing the staged set first when it cannot merge with it.
    pub fn stage(&mut self, change: RowChange) {
        let slot = (change.table(), change.key().clone());
        let needs_seal = matches!(
            (self.staged.get(&slot), &change),
            (Some(Pending::Update(_)), RowChange::Upsert { .. })
                | (Some(Pending::Delete), RowChange::Upsert { .. })
        );
        if needs_seal {
            self.sealed.push(std::mem::take(&mut self.staged));
        }
        let pending = match (self.staged.remove(&slot), change) {
            (_, RowChange::Delete { .. }) => Pending::Delete,
            (Some(Pending::Delete), RowChange::Update { .. }) => Pending::Delete,
            (None, RowChange::Upsert { values, .. }) => Pending::Upsert(values),
            (None, RowChange::Update { values, .. }) => Pending::Update(values),
            (Some(Pending::Upsert(mut staged)), RowChange::Upsert { values, .. })
            | (Some(Pending::Upsert(mut staged)), RowChange::Update { values, .. }) => {
                merge(&mut staged, values);
                Pending::Upsert(staged)
            }
            (Some(Pending::Update(mut staged)), RowChange::Update { values, .. }) => {
                merge(&mut staged, values);
                Pending::Update(staged)
            }
            // Sealed above: nothing is staged for this row any more.
            (Some(_), RowChange::Upsert { values, .. }) => Pending::Upsert(values),
        };
        self.staged.insert(slot, pending);
    }

    /// Writes everything staged, the sealed sets first, in order.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        self.encode()?.execute(conn).await
    }

    /// Turns everything staged into the statements that write it, in order, leaving the sink
    /// empty. Pure CPU, so a replay encodes batch N + 1 while batch N is being written.
    pub fn encode(&mut self) -> Result<Encoded, ProjectionError> {
        let mut statements = Vec::new();
        for set in std::mem::take(&mut self.sealed) {
            self.encode_set(set, &mut statements)?;
        }
        let staged = std::mem::take(&mut self.staged);
        self.encode_set(staged, &mut statements)?;
        Ok(Encoded { statements })
    }

    fn encode_set(
        &self,
        set: Staged,
        statements: &mut Vec<(String, Vec<String>)>,
    ) -> Result<(), ProjectionError> {
        type Groups = BTreeMap<(&'static str, u8, Vec<String>), Vec<Value>>;
        let mut groups: Groups = BTreeMap::new();
        for ((table, key), pending) in set {
            let def =
                rows::table(table).ok_or_else(|| ProjectionError::Identifier(table.into()))?;
            match pending {
                Pending::Delete => {
                    let mut row = Map::new();
                    row.insert(def.key.to_string(), key.to_value());
                    groups
                        .entry((table, 0, vec![def.key.to_string()]))
                        .or_default()
                        .push(Value::Object(row));
                }
                Pending::Upsert(values) => {
                    let columns = values.keys().cloned().collect();
                    groups
                        .entry((table, 1, columns))
                        .or_default()
                        .push(Value::Object(values));
                }
                Pending::Update(values) => {
                    let columns = values.keys().cloned().collect();
                    groups
                        .entry((table, 2, columns))
                        .or_default()
                        .push(Value::Object(values));
                }
            }
        }
        // Deletes first, each on its own; then every insert and update of the set in one
        // statement (a data-modifying CTE each): the set touches each row once, the schema has
        // no foreign keys, and sibling sub-statements of one statement run on one snapshot,
        // so one statement writes what they would one after the other, in one round trip.
        let mut combined: Vec<(String, String)> = Vec::new();
        for ((table, kind, columns), rows) in groups {
            let def =
                rows::table(table).ok_or_else(|| ProjectionError::Identifier(table.into()))?;
            let target = format!("\"{}\".\"{}\"", self.schema, identifier(table)?);
            let key = def.key;
            for column in &columns {
                identifier(column)?;
            }
            let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            let param = format!("${}", combined.len() + 1);
            let sql = match kind {
                0 => {
                    statements.push((
                        format!(
                            "DELETE FROM {target} t USING json_populate_recordset(NULL::{target}, $1::json) r \
                             WHERE t.\"{key}\" = r.\"{key}\""
                        ),
                        vec![json_text(&rows)],
                    ));
                    continue;
                }
                1 => {
                    let updates: Vec<String> = columns
                        .iter()
                        .filter(|c| c.as_str() != key && !INSERT_ONLY_COLUMNS.contains(&c.as_str()))
                        .map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\""))
                        .collect();
                    let on_conflict = if updates.is_empty() {
                        "DO NOTHING".to_string()
                    } else {
                        format!("DO UPDATE SET {}", updates.join(", "))
                    };
                    format!(
                        "INSERT INTO {target} ({cols}) SELECT {cols} \
                         FROM json_populate_recordset(NULL::{target}, {param}::json) \
                         ON CONFLICT (\"{key}\") {on_conflict}",
                        cols = quoted.join(", ")
                    )
                }
                _ => {
                    let sets: Vec<String> = columns
                        .iter()
                        .filter(|c| c.as_str() != key)
                        .map(|c| format!("\"{c}\" = r.\"{c}\""))
                        .collect();
                    if sets.is_empty() {
                        continue;
                    }
                    format!(
                        "UPDATE {target} t SET {} FROM json_populate_recordset(NULL::{target}, {param}::json) r \
                         WHERE t.\"{key}\" = r.\"{key}\"",
                        sets.join(", ")
                    )
                }
            };
            combined.push((sql, json_text(&rows)));
        }
        match combined.len() {
            0 => {}
            1 => statements.extend(combined.into_iter().map(|(sql, rows)| (sql, vec![rows]))),
            _ => {
                let parts: Vec<String> = combined
                    .iter()
                    .enumerate()
                    .map(|(i, (sql, _))| format!("w{i} AS ({sql})"))
                    .collect();
                let sql = format!("WITH {} SELECT 1", parts.join(", "));
                statements.push((sql, combined.into_iter().map(|(_, rows)| rows).collect()));
            }
        }
        Ok(())
    }
}

/// Staged row changes encoded as statements ([`PgSink::encode`]), ready to run in order.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Each statement with its parameters: row sets as JSON text.
    statements: Vec<(String, Vec<String>)>,
}

impl Encoded {
    /// Runs the statements in order on `conn`.
    pub async fn execute(self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        for (sql, params) in self.statements {
            let mut query = sqlx::query(&sql);
            for rows in params {
                query = query.bind(rows);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Rows as a JSON array in text: bound as `text` and read with `json_populate_recordset`,
/// PostgreSQL only scans it, where a `jsonb` parameter is first parsed into jsonb's binary form.
fn json_text(rows: &[Value]) -> String {
    // Serializing a `Value` cannot fail: its keys are strings.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".to_string())
}

/// Where the time of [`project_events`] went: decoding and projecting (CPU, this process; in
/// a replay also encoding the statements, [`PgSink::encode`]) and writing (the database
/// round trips of the sink).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectTimings {
    pub decode_and_project: std::time::Duration,
    pub write: std::time::Duration,
}

impl std::ops::AddAssign for ProjectTimings {
    fn add_assign(&mut self, other: Self) {
        self.decode_and_project += other.decode_and_project;
        self.write += other.write;
    }
}

/// Decodes and projects `events` (already in global order) into `sink`'s staging; no I/O.
pub fn stage_events<P: Json>(
    sink: &mut PgSink,
    events: &[RecordedEvent<P>],
) -> Result<(), ProjectionError> {
    for event in events {
        let decoded = event.decode()?;
        let metadata = event.metadata()?;
        let stamp = Stamp {
            position: event.global_position,
            at: metadata.received_at,
            user: metadata.actor,
        };
        for change in crate::delius::project(&decoded) {
            sink.stage(rows::stamp(change, &stamp));
        }
    }
    Ok(())
}

/// Projects `events` (already in global order) into `sink`'s schema: stages, then writes.
pub async fn project_events<P: Json>(
    conn: &mut PgConnection,
    sink: &mut PgSink,
    events: &[RecordedEvent<P>],
) -> Result<ProjectTimings, ProjectionError> {
    let started = std::time::Instant::now();
    stage_events(sink, events)?;
    let decode_and_project = started.elapsed();
    let started = std::time::Instant::now();
    sink.flush(conn).await?;
    Ok(ProjectTimings {
        decode_and_project,
        write: started.elapsed(),
    })
}

/// A projector's checkpoint as stored.
pub async fn load_checkpoint(
    conn: &mut PgConnection,
    projector: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query(
        "SELECT transaction_id, global_position FROM projector_checkpoint WHERE projector = $1",
    )
    .bind(projector)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => Checkpoint {
            transaction_id: row.try_get(0)?,
            global_position: row.try_get(1)?,
        },
        None => Checkpoint::default(),
    })
}

async fn save_checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    projector: &str,
    checkpoint: Checkpoint,
    applied: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoint (projector, transaction_id, global_position, events_applied, updated_at) \
         VALUES ($1, $2, $3, $4, now()) \
         ON CONFLICT (projector) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
         global_position = EXCLUDED.global_position, \
         events_applied = projector_checkpoint.events_applied + EXCLUDED.events_applied, \
         updated_at = now()",
    )
    .bind(projector)
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(applied)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Settings of a catch-up runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The projector's name (checkpoint row and advisory lock).
    pub name: String,
    /// The schema it writes.
    pub schema: String,
    /// Events per transaction.
    pub batch_size: i64,
    /// How long to sleep when caught up and not woken.
    pub idle_poll: Duration,
    /// How often a standby instance checks whether the lock is free.
    pub standby_poll: Duration,
}

impl RunnerConfig {
    /// The live Delius projector.
    pub fn delius() -> Self {
        Self {
            name: crate::delius::NAME.to_string(),
            schema: "delius".to_string(),
            batch_size: 2_000,
            idle_poll: Duration::from_millis(10),
            standby_poll: Duration::from_millis(200),
        }
    }
}

/// Runs a catch-up projector until `shutdown` turns true. While another process holds the
/// projector's advisory lock this one stands by, publishing the stored checkpoint so that
/// in-process waiters still see progress.
pub async fn run(
    pool: PgPool,
    config: RunnerConfig,
    wake: Arc<Notify>,
    progress: watch::Sender<Checkpoint>,
    mut shutdown: watch::Receiver<bool>,
) {
    let lock_key = format!("projector:{}", config.name);
    let mut backoff = Duration::from_millis(50);
    while !*shutdown.borrow() {
        let outcome = run_once(&pool, &config, &lock_key, &wake, &progress, &mut shutdown).await;
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(error) => {
                tracing::error!(projector = %config.name, %error, "projector failed; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn run_once(
    pool: &PgPool,
    config: &RunnerConfig,
    lock_key: &str,
    wake: &Notify,
    progress: &watch::Sender<Checkpoint>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    let mut conn = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(lock_key)
        .fetch_one(&mut conn)
        .await?;
    if !locked {
        let checkpoint = load_checkpoint(&mut conn, &config.name).await?;
        progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
        tokio::select! {
            _ = tokio::time::sleep(config.standby_poll) => {}
            _ = shutdown.changed() => {}
        }
        return Ok(());
    }
    tracing::info!(projector = %config.name, "projector active");
    let mut checkpoint = load_checkpoint(&mut conn, &config.name).await?;
    progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
    while !*shutdown.borrow() {
        let applied = step(&mut conn, config, &mut checkpoint).await?;
        // Published even when this batch applied nothing: a replay's swap may have moved the
        // checkpoint past events it projected itself.
        progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
        if applied > 0 {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.idle_poll) => {}
            _ = shutdown.changed() => {}
        }
    }
    Ok(())
}

fn replace_if_newer(current: &mut Checkpoint, next: Checkpoint) -> bool {
    if next > *current {
        *current = next;
        true
    } else {
        false
    }
}

/// One batch: take the swap lock (shared), read the checkpoint, read, project, save the
/// checkpoint, commit. Returns how many events it applied.
pub async fn step(
    conn: &mut PgConnection,
    config: &RunnerConfig,
    checkpoint: &mut Checkpoint,
) -> Result<usize, ProjectionError> {
    let mut tx = conn.begin().await?;
    // A replay swapping rebuilt tables in holds the swap lock exclusively and moves the
    // checkpoint: `projector_enter` (schema/0008) waits for the lock, then reads the checkpoint
    // with a snapshot taken after the wait, in one round trip.
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT transaction_id, global_position FROM projector_enter($1, $2)")
            .bind(&config.name)
            .bind(crate::replay::swap_lock_key(&config.name))
            .fetch_optional(&mut *tx)
            .await?;
    *checkpoint = row.map_or_else(Checkpoint::default, |(transaction_id, global_position)| {
        Checkpoint {
            transaction_id,
            global_position,
        }
    });
    let events = read_events_after(&mut tx, *checkpoint, config.batch_size, None).await?;
    let Some(last) = events.last() else {
        tx.commit().await?;
        return Ok(0);
    };
    let next = Checkpoint::of(last);
    let mut sink = PgSink::new(&config.schema)?;
    project_events(&mut tx, &mut sink, &events).await?;
    save_checkpoint(&mut tx, &config.name, next, events.len() as i64).await?;
    tx.commit().await?;
    *checkpoint = next;
    Ok(events.len())
}
