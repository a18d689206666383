//! The PostgreSQL event log: loads streams (for a command under a message, with the message's
//! recorded outcome) and appends events and the command-log rows, each in one statement of its
//! own (postgres-es's `persist` owns its transaction and could not hold the command log), and
//! both **grouped**: concurrent callers' loads share one query, their appends one statement.
//! The tables are postgres-es's (`events`), so its repository reads what this log writes.

use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{AppendBatch, AppendError, CommandOutcome, StoreError, StoredEvent, WrittenEvent};

/// A message's recorded outcome on an aggregate, or the aggregate's events when there is none.
#[derive(Debug)]
pub enum Recorded {
    Outcome(CommandOutcome),
    Events(Vec<StoredEvent>),
}

/// How many appends from concurrent callers one statement may carry.
const MAX_GROUP: usize = 64;
/// Committer tasks: each writes one group at a time while the next group gathers.
const COMMITTERS: usize = 2;
/// How many stream loads from concurrent callers one query may carry.
const MAX_LOADS: usize = 64;
/// Loader tasks: each runs one query at a time while the next group gathers.
const LOADERS: usize = 2;

/// The event log in PostgreSQL.
#[derive(Clone)]
pub struct PgEventLog {
    pool: PgPool,
    commits: mpsc::Sender<Commit>,
    loads: mpsc::Sender<Load>,
}

impl std::fmt::Debug for PgEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventLog").finish_non_exhaustive()
    }
}

impl PgEventLog {
    /// A log on `pool` (migrations already run), with its committer tasks (they stop when
    /// the last clone of the log is dropped). Must be called inside a tokio runtime.
    pub fn new(pool: PgPool) -> Self {
        let (commits, queue) = mpsc::channel(4 * MAX_GROUP);
        let queue = std::sync::Arc::new(Mutex::new(queue));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_groups(pool.clone(), queue.clone()));
        }
        let (loads, queue) = mpsc::channel(4 * MAX_LOADS);
        let queue = std::sync::Arc::new(Mutex::new(queue));
        for _ in 0..LOADERS {
            tokio::spawn(load_groups(pool.clone(), queue.clone()));
        }
        Self {
            pool,
            commits,
            loads,
        }
    }

    /// The pool behind the log.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The stored events of one aggregate, in sequence order.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        match self.load_stream(None, A::TYPE, id).await? {
            Recorded::Events(events) => Ok(events),
            // No message, so no recorded outcome to find.
            Recorded::Outcome(_) => Err(StoreError::Poisoned),
        }
    }

    /// What a command under a message needs, in one round trip: the outcome recorded for
    /// this message on this aggregate if there is one (a redelivery: no events are read), else
    /// the aggregate's stored events in sequence order.
    pub async fn load_unless_recorded(
        &self,
        message_id: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Recorded, StoreError> {
        self.load_stream(Some(message_id), aggregate_type, aggregate_id)
            .await
    }

    /// **Grouped loads**: the request goes to a loader task, which reads it together with the
    /// loads other callers queued meanwhile (up to `MAX_LOADS`, 64) in one query (`LOAD`).
    /// Each caller gets exactly the rows a query of its own would return.
    async fn load_stream(
        &self,
        message_id: Option<&str>,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Recorded, StoreError> {
        let (done, answer) = oneshot::channel();
        let load = Load {
            message_id: message_id.map(str::to_owned),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            done,
        };
        self.loads
            .send(load)
            .await
            .map_err(|_| StoreError::CommitterStopped)?;
        answer.await.map_err(|_| StoreError::CommitterStopped)?
    }

    /// Appends a command's events and its command-log row atomically.
    pub async fn append(&self, batch: AppendBatch<'_>) -> Result<CommandOutcome, AppendError> {
        let mut outcomes = self.append_all(vec![batch]).await?;
        outcomes
            .pop()
            .ok_or(AppendError::Store(StoreError::Poisoned))
    }

    /// Appends several commands' events and command-log rows atomically: all of them or none
    /// (a conflict on any aggregate writes nothing).
    ///
    /// **Group commit**: the append goes to a committer task, which writes it together with
    /// the appends other callers queued meanwhile (up to `MAX_GROUP`, 64) in one statement
    /// (`APPEND`): one round trip and one commit for all of them. An append decided on a
    /// stale stream, or on a stream an earlier append of the group writes, is refused by the
    /// statement and answered [`AppendError::Conflict`] while the others are written. Should
    /// the statement fail as a whole (a writer committing one of its streams meanwhile, a
    /// redelivery recorded meanwhile), the committer writes each of the group's appends on
    /// its own. Either way each caller gets its own answer: exactly what it would get
    /// without grouping.
    pub async fn append_all(
        &self,
        batches: Vec<AppendBatch<'_>>,
    ) -> Result<Vec<CommandOutcome>, AppendError> {
        let pending = Pending::new(batches)?;
        let (done, answer) = oneshot::channel();
        self.commits
            .send(Commit { pending, done })
            .await
            .map_err(|_| StoreError::CommitterStopped)?;
        answer.await.map_err(|_| StoreError::CommitterStopped)?
    }

    /// Writes several callers' appends as **one group**, as a committer does with the
    /// appends it gathered: one answer per caller, in order. For callers that hold several
    /// independent appends at once (and for tests, which cannot make concurrent callers meet
    /// in one group at will).
    pub async fn append_grouped(
        &self,
        callers: Vec<Vec<AppendBatch<'_>>>,
    ) -> Vec<Result<Vec<CommandOutcome>, AppendError>> {
        let mut group = Vec::with_capacity(callers.len());
        let mut answers = Vec::with_capacity(callers.len());
        for batches in callers {
            match Pending::new(batches) {
                Ok(pending) => {
                    let (done, answer) = oneshot::channel();
                    group.push(Commit { pending, done });
                    answers.push(Ok(answer));
                }
                Err(error) => answers.push(Err(AppendError::Store(error))),
            }
        }
        commit_group(&self.pool, group).await;
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => answer
                    .await
                    .unwrap_or(Err(AppendError::Store(StoreError::CommitterStopped))),
                Err(error) => Err(error),
            });
        }
        results
    }
}

/// The next group from a queue shared by several tasks: the first request (waiting for it),
/// then whatever else is queued, up to `max`; `None` once every sender is gone.
pub(crate) async fn gather<T>(queue: &Mutex<mpsc::Receiver<T>>, max: usize) -> Option<Vec<T>> {
    let mut queue = queue.lock().await;
    let mut group = vec![queue.recv().await?];
    while group.len() < max {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    Some(group)
}

/// One caller's stream load, waiting for its loader.
struct Load {
    /// The message whose recorded outcome on the aggregate is wanted first, if any.
    message_id: Option<String>,
    aggregate_type: String,
    aggregate_id: String,
    done: oneshot::Sender<Result<Recorded, StoreError>>,
}

/// Takes what callers queued, a group at a time, and reads it.
async fn load_groups(pool: PgPool, queue: std::sync::Arc<Mutex<mpsc::Receiver<Load>>>) {
    loop {
        let Some(group) = gather(&queue, MAX_LOADS).await else {
            return;
        };
        crate::metrics::record_load_group(group.len());
        match read(&pool, &group).await {
            Ok(answers) => {
                for (load, answer) in group.into_iter().zip(answers) {
                    // A caller that stopped waiting does not need its answer.
                    let _ = load.done.send(Ok(answer));
                }
            }
            // Each caller gets the error a query of its own gets (sqlx errors do not clone).
            Err(_) if group.len() > 1 => {
                for load in group {
                    let answer = read(&pool, std::slice::from_ref(&load)).await;
                    let _ =
                        load.done.send(answer.map(|mut answers| {
                            answers.pop().unwrap_or(Recorded::Events(Vec::new()))
                        }));
                }
            }
            Err(error) => {
                if let Some(load) = group.into_iter().next() {
                    let _ = load.done.send(Err(error));
                }
            }
        }
    }
}

/// Every load of a group in one query: per load, its message's recorded outcome on the
/// aggregate (when it names a message and one is recorded), else the aggregate's events in
/// sequence order. Loads are numbered by ordinality; a load with neither gets one row of
/// NULLs (the LEFT JOINs), so every load is answered.
///
/// The loads come as one JSON array (`json_to_recordset`), not as arrays: PostgreSQL plans an
/// `unnest` of a bound array for its real length every time (its generic plan assumes 10 rows,
/// so it never looks cheaper than a custom plan of a group of 4), and planning this query took
/// 2.7× its execution; a record set is 100 rows to either plan, so after five executions the
/// connection keeps one generic plan. `LIMIT 1` and `OFFSET 0` keep the LATERAL subqueries
/// from being pulled up into joins, so that plan is a nested loop of index lookups (command
/// log, then events only when no outcome was found) whatever the estimates — a hash join
/// planned while a table was small would stay in the cached plan as it grows.
const LOAD: &str = "\
SELECT r.i, o.outcome, e.sequence, e.event_type, e.event_version, e.payload, e.metadata \
FROM ROWS FROM (json_to_recordset($1::json) AS (t text, a text, m text)) \
  WITH ORDINALITY AS r(t, a, m, i) \
LEFT JOIN LATERAL ( \
  SELECT l.outcome FROM command_log l \
  WHERE l.message_id = r.m AND l.aggregate_type = r.t AND l.aggregate_id = r.a LIMIT 1 \
) o ON true \
LEFT JOIN LATERAL ( \
  SELECT e.sequence, e.event_type, e.event_version, e.payload, e.metadata FROM events e \
  WHERE o.outcome IS NULL AND e.aggregate_type = r.t AND e.aggregate_id = r.a OFFSET 0 \
) e ON true \
ORDER BY r.i, e.sequence";

/// One load as [`LOAD`] reads it.
#[derive(serde::Serialize)]
struct LoadRow<'a> {
    t: &'a str,
    a: &'a str,
    m: Option<&'a str>,
}

/// Runs [`LOAD`] for `group`; one answer per load, in order.
async fn read(pool: &PgPool, group: &[Load]) -> Result<Vec<Recorded>, StoreError> {
    let loads: Vec<LoadRow<'_>> = group
        .iter()
        .map(|l| LoadRow {
            t: &l.aggregate_type,
            a: &l.aggregate_id,
            m: l.message_id.as_deref(),
        })
        .collect();
    let rows = sqlx::query(LOAD)
        .bind(serde_json::to_string(&loads)?)
        .fetch_all(pool)
        .await?;
    let mut answers: Vec<Recorded> = group.iter().map(|_| Recorded::Events(Vec::new())).collect();
    for row in rows {
        let index: i64 = row.try_get("i")?;
        let slot = usize::try_from(index - 1)
            .ok()
            .filter(|i| *i < group.len())
            .ok_or(StoreError::Poisoned)?;
        if let Some(outcome) = row.try_get::<Option<Value>, _>("outcome")? {
            answers[slot] = Recorded::Outcome(serde_json::from_value(outcome)?);
            continue;
        }
        let Some(sequence) = row.try_get::<Option<i64>, _>("sequence")? else {
            continue;
        };
        let load = &group[slot];
        if let Recorded::Events(events) = &mut answers[slot] {
            events.push(StoredEvent {
                aggregate_id: load.aggregate_id.clone(),
                sequence: usize::try_from(sequence)
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
                aggregate_type: load.aggregate_type.clone(),
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
            });
        }
    }
    Ok(answers)
}

/// One caller's append, waiting for its committer.
struct Commit {
    pending: Pending,
    done: oneshot::Sender<Result<Vec<CommandOutcome>, AppendError>>,
}

/// Takes what callers queued, a group at a time, and writes it.
async fn commit_groups(pool: PgPool, queue: std::sync::Arc<Mutex<mpsc::Receiver<Commit>>>) {
    loop {
        let Some(group) = gather(&queue, MAX_GROUP).await else {
            return;
        };
        commit_group(&pool, group).await;
    }
}

/// Writes a group in one statement; if that fails, each of its appends on its own. An
/// append the statement refused (its expected sequence was stale, or an earlier append of the
/// group writes the same aggregate) is answered [`AppendError::Conflict`] without failing the
/// others, so one stale caller does not make the whole group commit one by one. A statement
/// that broke the events' key (the other committer wrote one of its streams between its
/// check and its insert) is run once more, when that check sees the other's events.
async fn commit_group(pool: &PgPool, group: Vec<Commit>) {
    crate::metrics::record_append_group(group.len());
    if group.len() > 1 {
        let mut merged = AppendColumns::default();
        let mut outcomes = Vec::new();
        for commit in &group {
            merged.extend(&commit.pending.columns);
            outcomes.extend(commit.pending.outcomes.iter().cloned());
        }
        let mut written = write(pool, &merged, outcomes.clone()).await;
        if let Err(AppendError::Conflict) = written {
            written = write(pool, &merged, outcomes).await;
        }
        match written {
            Ok(written) => {
                let mut written = written.into_iter();
                for commit in group {
                    let mine: Vec<_> = written
                        .by_ref()
                        .take(commit.pending.outcomes.len())
                        .collect();
                    // A caller that stopped waiting still had its append written.
                    let _ = commit.done.send(answer(mine));
                }
                return;
            }
            Err(error) => {
                crate::metrics::record_append_group_failure();
                tracing::debug!(
                    %error,
                    appends = group.len(),
                    "group append failed; writing its appends one by one"
                )
            }
        }
    }
    for commit in group {
        let Pending { columns, outcomes } = commit.pending;
        let written = match write(pool, &columns, outcomes).await {
            Ok(written) => answer(written),
            Err(error) => {
                if let AppendError::Conflict = error {
                    // A writer that committed the stream first (a refusal `answer` counts).
                    crate::metrics::record_append_conflict();
                }
                Err(error)
            }
        };
        let _ = commit.done.send(written);
    }
}

/// One caller's answer from its batches as written: its outcomes, or a conflict when the
/// statement refused them (a caller's batches are refused together).
fn answer(written: Vec<Written>) -> Result<Vec<CommandOutcome>, AppendError> {
    let mut outcomes = Vec::with_capacity(written.len());
    for batch in written {
        match batch {
            Written::Outcome(outcome) => outcomes.push(outcome),
            Written::Refused => {
                crate::metrics::record_append_conflict();
                return Err(AppendError::Conflict);
            }
        }
    }
    Ok(outcomes)
}

/// What [`APPEND`] did with one batch.
enum Written {
    /// Written: the caller's outcome with its events and transaction filled in.
    Outcome(CommandOutcome),
    /// Not written: its expected sequence was not the stream's last, or an earlier caller's
    /// batch in the same statement writes the same stream.
    Refused,
}

/// Appends not yet written: the statement's columns and the outcomes it will fill in.
struct Pending {
    columns: AppendColumns,
    outcomes: Vec<CommandOutcome>,
}

impl Pending {
    fn new(batches: Vec<AppendBatch<'_>>) -> Result<Self, StoreError> {
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut columns = AppendColumns::default();
        for batch in batches {
            let outcome = CommandOutcome {
                message_id: batch.metadata.message_id.clone(),
                aggregate_type: batch.aggregate_type.to_string(),
                aggregate_id: batch.aggregate_id.to_string(),
                command_type: batch.command_type.to_string(),
                events: Vec::new(),
                transaction_id: None,
                reply: batch.reply.clone(),
                duplicate: false,
            };
            columns.push(&batch, &outcome)?;
            outcomes.push(outcome);
        }
        Ok(Self { columns, outcomes })
    }
}

/// Runs [`APPEND`] on its own (an implicit transaction): what it did with each batch of
/// `columns` (one `outcomes` entry per batch, in order), from what it wrote and refused.
async fn write(
    pool: &PgPool,
    columns: &AppendColumns,
    mut outcomes: Vec<CommandOutcome>,
) -> Result<Vec<Written>, AppendError> {
    let rows = sqlx::query(APPEND)
        .bind(&columns.aggregate_types)
        .bind(&columns.aggregate_ids)
        .bind(&columns.expected)
        .bind(&columns.message_ids)
        .bind(&columns.command_types)
        .bind(&columns.outcomes)
        .bind(&columns.metadata)
        .bind(&columns.event_batch)
        .bind(&columns.sequences)
        .bind(&columns.event_types)
        .bind(&columns.event_versions)
        .bind(&columns.payloads)
        .bind(&columns.last)
        .bind(&columns.units)
        .fetch_all(pool)
        .await
        .map_err(classify)?;
    let mut refused = vec![false; outcomes.len()];
    for row in rows {
        let index: i64 = row.try_get("batch").map_err(StoreError::from)?;
        let slot = usize::try_from(index - 1)
            .ok()
            .filter(|i| *i < outcomes.len())
            .ok_or(AppendError::Store(StoreError::Poisoned))?;
        let Some(sequence) = row
            .try_get::<Option<i64>, _>("sequence")
            .map_err(StoreError::from)?
        else {
            refused[slot] = true;
            continue;
        };
        let outcome = &mut outcomes[slot];
        outcome.transaction_id = Some(row.try_get::<i64, _>("txid").map_err(StoreError::from)?);
        outcome.events.push(WrittenEvent {
            sequence,
            global_position: row.try_get("global_position").map_err(StoreError::from)?,
            event_type: row.try_get("event_type").map_err(StoreError::from)?,
        });
    }
    Ok(outcomes
        .into_iter()
        .zip(refused)
        .map(|(outcome, refused)| {
            if refused {
                Written::Refused
            } else {
                Written::Outcome(outcome)
            }
        })
        .collect())
}

/// Every batch's events and command-log row in **one statement**, run on its own (an
/// implicit transaction: atomic, one round trip, one commit). Batches come as parallel arrays
/// `$1..$7`, `$13` (the last sequence each writes) and `$14` (the caller it belongs to),
/// numbered by ordinality; events as `$8..$12` naming their batch. Events are inserted in
/// batch then sequence order, so positions rise with sequences. Each command-log outcome is
/// the caller's with `events` and `transaction_id` filled in from the insert, aggregated per
/// batch once (`per_batch`; a subquery per batch scanned every written event for each) — a
/// data-modifying CTE runs whether or not the final SELECT reads it. JSON values come as
/// text: a `json` column only scans it, where a `jsonb` parameter was parsed into a tree and
/// printed back for the `json` columns.
///
/// **Refused callers.** A batch with events whose expected sequence is not its stream's last
/// committed one (its caller decided on a stale load), or whose stream an earlier caller's
/// batch in the statement also writes, would break the events' key and with it the whole
/// statement; instead its caller's batches are left out (`refused`) and come back as rows
/// with a NULL sequence, so the others are written and only that caller decides again.
/// (The earlier writer may itself be refused for another of its batches; the later one then
/// decides again needlessly, which is always safe.) A
/// writer committing the same stream between this check and the insert still breaks the key
/// (then [`commit_group`] writes the callers one by one), as does a redelivery's command-log
/// row. Batches without events write only their command-log row and are not checked, as
/// before.
const APPEND: &str = "\
WITH b0 AS ( \
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                       $6::text[], $7::text[], $13::bigint[], $14::bigint[]) \
    WITH ORDINALITY AS u(aggregate_type, aggregate_id, expected, message_id, command_type, \
                         outcome, metadata, last, unit, i) \
), stale AS ( \
  SELECT DISTINCT b0.unit FROM b0 \
  WHERE b0.last > b0.expected AND b0.expected <> COALESCE(( \
    SELECT e.sequence FROM events e \
    WHERE e.aggregate_type = b0.aggregate_type AND e.aggregate_id = b0.aggregate_id \
    ORDER BY e.sequence DESC LIMIT 1), 0) \
), firsts AS ( \
  SELECT b0.unit, b0.last > b0.expected AS writes, \
         min(b0.unit) FILTER (WHERE b0.last > b0.expected) \
           OVER (PARTITION BY b0.aggregate_type, b0.aggregate_id) AS first_unit \
  FROM b0 WHERE b0.unit NOT IN (SELECT unit FROM stale) \
), refused AS ( \
  SELECT unit FROM stale UNION SELECT unit FROM firsts WHERE writes AND unit <> first_unit \
), b AS ( \
  SELECT * FROM b0 WHERE b0.unit NOT IN (SELECT unit FROM refused) \
), written AS ( \
  INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
  SELECT b.aggregate_type, b.aggregate_id, e.s, e.t, e.v, e.p::json, b.metadata::json \
  FROM unnest($8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[]) AS e(bi, s, t, v, p) \
  JOIN b ON b.i = e.bi \
  ORDER BY e.bi, e.s \
  RETURNING aggregate_type, aggregate_id, sequence, global_position, \
            transaction_id::text::bigint AS txid, event_type \
), mine AS ( \
  SELECT b.i, w.* FROM written w JOIN b ON w.aggregate_type = b.aggregate_type \
     AND w.aggregate_id = b.aggregate_id AND w.sequence > b.expected AND w.sequence <= b.last \
), per_batch AS ( \
  SELECT m.i, jsonb_agg(jsonb_build_object('sequence', m.sequence, \
           'global_position', m.global_position, 'event_type', m.event_type) \
           ORDER BY m.sequence) AS events, max(m.txid) AS txid \
  FROM mine m GROUP BY m.i \
), logged AS ( \
  INSERT INTO command_log (message_id, aggregate_type, aggregate_id, command_type, outcome, metadata) \
  SELECT b.message_id, b.aggregate_type, b.aggregate_id, b.command_type, \
         b.outcome::jsonb || jsonb_build_object( \
           'events', COALESCE(p.events, '[]'::jsonb), 'transaction_id', p.txid), \
         b.metadata::jsonb \
  FROM b LEFT JOIN per_batch p ON p.i = b.i \
  RETURNING 1 \
) \
SELECT i AS batch, sequence, global_position, txid, event_type FROM mine \
UNION ALL \
SELECT b0.i, NULL, NULL, NULL, NULL FROM b0 WHERE b0.unit IN (SELECT unit FROM refused) \
ORDER BY batch, sequence";

/// [`APPEND`]'s parameters, column by column.
#[derive(Default)]
struct AppendColumns {
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    expected: Vec<i64>,
    message_ids: Vec<String>,
    command_types: Vec<String>,
    outcomes: Vec<String>,
    metadata: Vec<String>,
    event_batch: Vec<i64>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<String>,
    last: Vec<i64>,
    /// Which caller each batch belongs to (its callers are numbered from 1), so that a
    /// caller's batches are written or refused together.
    units: Vec<i64>,
}

impl AppendColumns {
    /// Adds a batch (numbered after those already here).
    fn push(
        &mut self,
        batch: &AppendBatch<'_>,
        outcome: &CommandOutcome,
    ) -> Result<(), StoreError> {
        let ordinal = self.aggregate_types.len() as i64 + 1;
        let expected = batch.expected_sequence as i64;
        self.aggregate_types.push(batch.aggregate_type.to_string());
        self.aggregate_ids.push(batch.aggregate_id.to_string());
        self.expected.push(expected);
        self.message_ids.push(batch.metadata.message_id.clone());
        self.command_types.push(batch.command_type.to_string());
        self.outcomes.push(serde_json::to_string(outcome)?);
        self.metadata.push(serde_json::to_string(batch.metadata)?);
        self.last.push(expected + batch.events.len() as i64);
        // One caller's batches until [`Self::extend`] renumbers them.
        self.units.push(1);
        for (offset, event) in batch.events.iter().enumerate() {
            self.event_batch.push(ordinal);
            self.sequences.push(expected + 1 + offset as i64);
            self.event_types.push(event.event_type.clone());
            self.event_versions.push(event.event_version.clone());
            self.payloads.push(serde_json::to_string(&event.payload)?);
        }
        Ok(())
    }

    /// Adds another caller's batches after these (its events and callers renumbered to match).
    fn extend(&mut self, other: &AppendColumns) {
        let offset = self.aggregate_types.len() as i64;
        let callers = self.units.last().copied().unwrap_or(0);
        self.units
            .extend(other.units.iter().map(|unit| unit + callers));
        self.aggregate_types
            .extend_from_slice(&other.aggregate_types);
        self.aggregate_ids.extend_from_slice(&other.aggregate_ids);
        self.expected.extend_from_slice(&other.expected);
        self.message_ids.extend_from_slice(&other.message_ids);
        self.command_types.extend_from_slice(&other.command_types);
        self.outcomes.extend_from_slice(&other.outcomes);
        self.metadata.extend_from_slice(&other.metadata);
        self.last.extend_from_slice(&other.last);
        self.event_batch
            .extend(other.event_batch.iter().map(|batch| batch + offset));
        self.sequences.extend_from_slice(&other.sequences);
        self.event_types.extend_from_slice(&other.event_types);
        self.event_versions.extend_from_slice(&other.event_versions);
        self.payloads.extend_from_slice(&other.payloads);
    }
}

/// A unique violation of the events' key is a concurrent writer (conflict); of the command
/// log's, a redelivery recorded meanwhile (duplicate); anything else is a store failure.
fn classify(error: sqlx::Error) -> AppendError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            match db.constraint() {
                Some("events_pkey") => return AppendError::Conflict,
                Some("command_log_pkey") => return AppendError::Duplicate,
                _ => {}
            }
        }
    }
    AppendError::Store(StoreError::Database(error))
}
