//! The PostgreSQL event log: loads through postgres-es's `PostgresEventRepository` (or, for a
//! command under a message, with the message's recorded outcome in one query), appends
//! events and the command-log row in one transaction of its own (postgres-es's `persist` owns
//! its transaction and could not hold the command log).

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgPool, Row};

use super::{AppendBatch, AppendError, CommandOutcome, StoreError, WrittenEvent};

/// A message's recorded outcome on an aggregate, or the aggregate's events when there is none.
#[derive(Debug)]
pub enum Recorded {
    Outcome(CommandOutcome),
    Events(Vec<SerializedEvent>),
}

/// The event log in PostgreSQL.
#[derive(Clone)]
pub struct PgEventLog {
    pool: PgPool,
}

impl std::fmt::Debug for PgEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventLog").finish_non_exhaustive()
    }
}

impl PgEventLog {
    /// A log on `pool` (migrations already run).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool behind the log.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The stored events of one aggregate, in sequence order.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Vec<SerializedEvent>, StoreError> {
        let repository = PostgresEventRepository::new(self.pool.clone());
        Ok(repository.get_events::<A>(id).await?)
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
        let rows = sqlx::query(
            "SELECT c.outcome, e.sequence, e.event_type, e.event_version, e.payload, e.metadata \
             FROM (SELECT (SELECT outcome FROM command_log \
                           WHERE message_id = $3 AND aggregate_type = $1 AND aggregate_id = $2) \
                   AS outcome) c \
             LEFT JOIN events e ON c.outcome IS NULL \
                  AND e.aggregate_type = $1 AND e.aggregate_id = $2 \
             ORDER BY e.sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(outcome) = row.try_get::<Option<Value>, _>("outcome")? {
                return Ok(Recorded::Outcome(serde_json::from_value(outcome)?));
            }
            let Some(sequence) = row.try_get::<Option<i64>, _>("sequence")? else {
                continue;
            };
            events.push(SerializedEvent {
                aggregate_id: aggregate_id.to_string(),
                sequence: usize::try_from(sequence)
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
                aggregate_type: aggregate_type.to_string(),
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
            });
        }
        Ok(Recorded::Events(events))
    }

    /// Appends a command's events and its command-log row atomically.
    pub async fn append(&self, batch: AppendBatch<'_>) -> Result<CommandOutcome, AppendError> {
        let mut outcomes = self.append_all(vec![batch]).await?;
        outcomes
            .pop()
            .ok_or(AppendError::Store(StoreError::Poisoned))
    }

    /// Appends several commands' events and command-log rows in one transaction: all of them
    /// or none (a conflict on any aggregate rolls every batch back).
    pub async fn append_all(
        &self,
        batches: Vec<AppendBatch<'_>>,
    ) -> Result<Vec<CommandOutcome>, AppendError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches {
            outcomes.push(append_in(&mut tx, batch).await?);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(outcomes)
    }
}

/// Writes one batch inside `tx`, in one statement: the events and the command-log row (whose
/// outcome names the events' positions, taken from the insert itself).
async fn append_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch: AppendBatch<'_>,
) -> Result<CommandOutcome, AppendError> {
    let metadata = serde_json::to_value(batch.metadata).map_err(StoreError::from)?;
    let first = batch.expected_sequence as i64 + 1;
    let sequences: Vec<i64> = (first..first + batch.events.len() as i64).collect();
    let types: Vec<&str> = batch.events.iter().map(|e| e.event_type.as_str()).collect();
    let versions: Vec<&str> = batch
        .events
        .iter()
        .map(|e| e.event_version.as_str())
        .collect();
    let payloads: Vec<&Value> = batch.events.iter().map(|e| &e.payload).collect();
    let mut outcome = CommandOutcome {
        message_id: batch.metadata.message_id.clone(),
        aggregate_type: batch.aggregate_type.to_string(),
        aggregate_id: batch.aggregate_id.to_string(),
        command_type: batch.command_type.to_string(),
        events: Vec::new(),
        transaction_id: None,
        reply: batch.reply,
        duplicate: false,
    };
    // The command log's outcome is this one with `events` and `transaction_id` filled in by
    // the statement (a data-modifying CTE runs whether or not the final SELECT reads it).
    let rows = sqlx::query(
        "WITH written AS ( \
           INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
           SELECT $1, $2, s, t, v, p::json, $7::json \
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[]) AS u(s, t, v, p) \
           RETURNING sequence, global_position, transaction_id::text::bigint AS txid, event_type \
         ), logged AS ( \
           INSERT INTO command_log (message_id, aggregate_type, aggregate_id, command_type, outcome, metadata) \
           SELECT $8, $1, $2, $9, $10::jsonb || jsonb_build_object( \
                    'events', COALESCE((SELECT jsonb_agg(jsonb_build_object( \
                        'sequence', sequence, 'global_position', global_position, \
                        'event_type', event_type) ORDER BY sequence) FROM written), '[]'::jsonb), \
                    'transaction_id', (SELECT max(txid) FROM written)), \
                  $7::jsonb \
           RETURNING 1 \
         ) \
         SELECT sequence, global_position, txid, event_type FROM written ORDER BY sequence",
    )
    .bind(batch.aggregate_type)
    .bind(batch.aggregate_id)
    .bind(&sequences)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&outcome.message_id)
    .bind(batch.command_type)
    .bind(serde_json::to_value(&outcome).map_err(StoreError::from)?)
    .fetch_all(&mut **tx)
    .await
    .map_err(classify)?;
    for row in rows {
        outcome.transaction_id = Some(row.try_get::<i64, _>("txid").map_err(StoreError::from)?);
        outcome.events.push(WrittenEvent {
            sequence: row.try_get("sequence").map_err(StoreError::from)?,
            global_position: row.try_get("global_position").map_err(StoreError::from)?,
            event_type: row.try_get("event_type").map_err(StoreError::from)?,
        });
    }
    Ok(outcome)
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
