//! The cqrs-es reference backend: the command bus's aggregates stored and projected the way
//! the cqrs-es book does it, one command at a time — the benchmarks' naive baseline
//! (BENCHMARKS.md, "the naive path"). `serve` never uses it.
//!
//! A command runs the steps of `CqrsFramework::execute_with_metadata`, made by the bus itself
//! so that it can answer from the events ([`crate::bus::Routed::reply`]):
//! [`EventStore::load_aggregate`] on a postgres-es [`PersistedEventStore`] (the aggregate's
//! whole stream, one query), `Aggregate::handle`, [`EventStore::commit`] (one transaction, an
//! `INSERT` per event, the optimistic lock of the primary key), then each event dispatched to
//! a postgres-es [`GenericQuery`] view: the [`DeliusRowsView`] of the aggregate (load the
//! view's row, apply, write it back under its version).
//!
//! What it leaves out, as the book does: the command log (no idempotency per message: a
//! redelivered message is decided again), units (each command of a message commits on its
//! own), grouped loads and group commits, and the Delius tables themselves (the view holds
//! the rows as JSON, one document per aggregate instance).
//!
//! The tables are the service's own `events` (postgres-es's columns; the log's others take
//! their defaults) and one view table per aggregate type ([`CqrsEsLog::create_views`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::{GenericQuery, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, EventStore, Query, View};
use postgres_es::{PostgresEventRepository, PostgresViewRepository};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgPool;

use aggregates::case::Case;
use aggregates::custody::Custody;
use aggregates::diary::Diary;
use aggregates::pom::PomAllocation;
use aggregates::reference::ReferenceData;
use aggregates::referral::Referral;
use projections::rows::{stamp_with, Stamp, INSERT_ONLY_COLUMNS};
use projections::{Key, Metadata, RecordedEvent, RowChange};

use super::{AppendError, StoreError};

/// The aggregate types the bus routes, each with its view table.
pub const AGGREGATE_TYPES: [&str; 6] = [
    ReferenceData::TYPE,
    Case::TYPE,
    Custody::TYPE,
    PomAllocation::TYPE,
    Referral::TYPE,
    Diary::TYPE,
];

/// Events no view could project (they did not decode), in this process.
static VIEW_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many events a [`DeliusRowsView`] could not project, or a view could not be stored,
/// in this process (cqrs-es queries cannot fail a command; this counts what they dropped).
pub fn view_errors() -> u64 {
    VIEW_ERRORS.load(Ordering::Relaxed)
}

/// The view table of aggregate type `aggregate_type`.
pub fn view_table(aggregate_type: &str) -> String {
    format!("cqrs_view_{}", aggregate_type.to_ascii_lowercase())
}

/// The cqrs-es reference backend on PostgreSQL.
#[derive(Debug, Clone)]
pub struct CqrsEsLog {
    pool: PgPool,
}

impl CqrsEsLog {
    /// A backend on `pool` (migrations and [`CqrsEsLog::create_views`] already run).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates the view tables (postgres-es's view shape) if they are not there.
    pub async fn create_views(pool: &PgPool) -> Result<(), sqlx::Error> {
        for aggregate_type in AGGREGATE_TYPES {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {} (view_id text PRIMARY KEY, \
                 version bigint CHECK (version >= 0) NOT NULL, payload json NOT NULL)",
                view_table(aggregate_type)
            ))
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// The aggregate's postgres-es event store, with the log's upcasters (so it reads the
    /// older event versions the service's log may hold).
    fn store<A: Aggregate>(&self) -> PersistedEventStore<PostgresEventRepository, A> {
        PersistedEventStore::new_event_store(PostgresEventRepository::new(self.pool.clone()))
            .with_upcasters(aggregates::upcasters::build())
    }

    /// The aggregate from its whole stream, with its last sequence.
    pub async fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<(A, usize), StoreError> {
        let context = self
            .store::<A>()
            .load_aggregate(aggregate_id)
            .await
            .map_err(store_error)?;
        Ok((context.aggregate, context.current_sequence))
    }

    /// Commits `events` after `sequence`, dispatches them to the aggregate's view and gives
    /// them back.
    pub async fn commit<A: Aggregate>(
        &self,
        aggregate_id: &str,
        sequence: usize,
        events: Vec<A::Event>,
        metadata: &Metadata,
    ) -> Result<Vec<A::Event>, AppendError> {
        if events.is_empty() {
            return Ok(events);
        }
        let context = cqrs_es::persist::EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            // Only a snapshot store reads it; this is an event store.
            aggregate: A::default(),
            current_sequence: sequence,
            current_snapshot: None,
        };
        let committed = self
            .store::<A>()
            .commit(
                events,
                context,
                metadata_map(metadata).map_err(StoreError::from)?,
            )
            .await
            .map_err(|error| match error {
                AggregateError::AggregateConflict => AppendError::Conflict,
                other => AppendError::Store(store_error(other)),
            })?;
        let mut view = GenericQuery::<_, DeliusRowsView, A>::new(Arc::new(
            PostgresViewRepository::new(&view_table(A::TYPE), self.pool.clone()),
        ));
        view.use_error_handler(Box::new(|error| {
            VIEW_ERRORS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "cqrs-es view not updated");
        }));
        view.dispatch(aggregate_id, &committed).await;
        Ok(committed.into_iter().map(|event| event.payload).collect())
    }
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> StoreError {
    match error {
        AggregateError::DeserializationError(e) => {
            StoreError::Persistence(cqrs_es::persist::PersistenceError::DeserializationError(e))
        }
        other => StoreError::Persistence(cqrs_es::persist::PersistenceError::UnknownError(
            other.to_string().into(),
        )),
    }
}

/// The command metadata as cqrs-es carries it: a map of strings — the service's own
/// [`Metadata`] serialization, every field of which is a string.
fn metadata_map(metadata: &Metadata) -> Result<HashMap<String, String>, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(metadata)?)
}

/// The Delius rows one aggregate instance's events project to
/// ([`projections::delius::project`]), as a JSON document: table → row key → columns. An
/// update of a row that another aggregate's events inserted is not seen here (one view per
/// aggregate instance, as a `GenericQuery` keeps it).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliusRowsView {
    pub tables: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
}

impl DeliusRowsView {
    /// Applies one stamped row change, as [`projections::memory::MemoryTables`] does.
    pub fn apply(&mut self, change: RowChange) {
        match change {
            RowChange::Upsert { table, key, values } => {
                let rows = self.tables.entry(table.to_string()).or_default();
                let row = rows.entry(key_text(&key)).or_default();
                let inserting = row.is_empty();
                for (column, value) in values {
                    if inserting || !INSERT_ONLY_COLUMNS.contains(&column) {
                        row.insert(column.to_string(), value);
                    }
                }
            }
            RowChange::Update { table, key, values } => {
                if let Some(row) = self
                    .tables
                    .get_mut(table)
                    .and_then(|rows| rows.get_mut(&key_text(&key)))
                {
                    for (column, value) in values {
                        row.insert(column.to_string(), value);
                    }
                }
            }
            RowChange::Delete { table, key } => {
                if let Some(rows) = self.tables.get_mut(table) {
                    rows.remove(&key_text(&key));
                }
            }
        }
    }

    fn project<A: Aggregate>(&mut self, event: &EventEnvelope<A>) -> Result<(), String> {
        let recorded = RecordedEvent::<Value> {
            // The book's log has no global order: the stream's sequence stands in for it.
            global_position: event.sequence as i64,
            transaction_id: 0,
            aggregate_type: A::TYPE.to_string(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as i64,
            event_type: event.payload.event_type(),
            event_version: event.payload.event_version(),
            payload: serde_json::to_value(&event.payload).map_err(|e| e.to_string())?,
            metadata: serde_json::to_value(&event.metadata).map_err(|e| e.to_string())?,
            recorded_at: Utc::now(),
        };
        let decoded = recorded.decode().map_err(|e| e.to_string())?;
        let metadata = recorded.metadata().map_err(|e| e.to_string())?;
        let stamp = Stamp {
            position: recorded.global_position,
            at: metadata.received_at,
            user: metadata.actor,
        }
        .values();
        for change in projections::delius::project(&decoded) {
            self.apply(stamp_with(change, &stamp));
        }
        Ok(())
    }
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Id(id) => id.to_string(),
        Key::Code(code) => code.clone(),
    }
}

impl<A: Aggregate> View<A> for DeliusRowsView {
    fn update(&mut self, event: &EventEnvelope<A>) {
        if let Err(error) = self.project(event) {
            VIEW_ERRORS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, aggregate_id = %event.aggregate_id, "event not projected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(pairs: &[(&'static str, Value)]) -> projections::Columns {
        let mut columns = projections::Columns::new();
        for (name, value) in pairs {
            columns.insert(name, value.clone());
        }
        columns
    }

    #[test]
    fn rows_upsert_update_and_delete_as_the_memory_tables_do() {
        let mut view = DeliusRowsView::default();
        view.apply(RowChange::Upsert {
            table: "contact",
            key: Key::Id(7),
            values: columns(&[("notes", json!("a")), ("created_datetime", json!("t1"))]),
        });
        view.apply(RowChange::Upsert {
            table: "contact",
            key: Key::Id(7),
            values: columns(&[("notes", json!("b")), ("created_datetime", json!("t2"))]),
        });
        view.apply(RowChange::Update {
            table: "contact",
            key: Key::Id(8),
            values: columns(&[("notes", json!("never"))]),
        });
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            json!({"tables": {"contact": {"7": {"notes": "b", "created_datetime": "t1"}}}})
        );
        view.apply(RowChange::Delete {
            table: "contact",
            key: Key::Id(7),
        });
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            json!({"tables": {"contact": {}}})
        );
    }

    #[test]
    fn metadata_round_trips_through_the_string_map() {
        let metadata = Metadata {
            message_id: "m-1".into(),
            correlation_id: "c-1".into(),
            causation_id: None,
            source: projections::Source::Amqp,
            actor: "crs".into(),
            received_at: "2026-11-30T12:00:00Z".parse().unwrap(),
        };
        let back: Metadata =
            serde_json::from_value(serde_json::to_value(metadata_map(&metadata).unwrap()).unwrap())
                .unwrap();
        assert_eq!(back, metadata);
    }
}
