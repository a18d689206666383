//! The event log the command bus writes: the postgres-es `events` table in PostgreSQL, or an
//! in-memory log with the same guarantees for the embedded default (an optimistic
//! concurrency check per aggregate, which cqrs-es's MemStore lacks, and the command log).
//!
//! Appending writes the events **and** the command-log row in one transaction, so a command
//! is either wholly recorded with its idempotency key or not at all.

pub mod cqrs_book;
pub mod memory;
pub mod postgres;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use projections::Metadata;

pub use memory::MemEventLog;
pub use postgres::PgEventLog;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
}

/// One command's events, with what the command log records about it.
#[derive(Debug, Clone)]
pub struct AppendBatch<'a> {
    pub aggregate_type: &'static str,
    pub aggregate_id: &'a str,
    /// The aggregate's last sequence when the command was decided.
    pub expected_sequence: usize,
    pub events: Vec<NewEvent>,
    pub metadata: &'a Metadata,
    pub command_type: &'a str,
    /// What the command answers its caller (e.g. the id it created).
    pub reply: Value,
}

/// An event the bus wrote, by its place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
}

/// What handling a command did, as recorded in the command log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub message_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub command_type: String,
    /// The events written; empty when the command changed nothing.
    pub events: Vec<WrittenEvent>,
    /// The transaction that wrote them (with the last position, where projectors must reach
    /// before the caller can read its writes).
    pub transaction_id: Option<i64>,
    pub reply: Value,
    /// True when this outcome was recorded by an earlier delivery of the same message.
    #[serde(default)]
    pub duplicate: bool,
}

impl CommandOutcome {
    /// The checkpoint a projector must pass for this command's writes to be visible.
    pub fn checkpoint(&self) -> Option<projections::Checkpoint> {
        let transaction_id = self.transaction_id?;
        let last = self.events.last()?;
        Some(projections::Checkpoint {
            transaction_id,
            global_position: last.global_position,
        })
    }
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another command appended to the aggregate since it was loaded: decide again.
    #[error("aggregate changed concurrently")]
    Conflict,
    /// The same message was recorded for this aggregate concurrently: read its outcome.
    #[error("message already recorded")]
    Duplicate,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored event as the bus folds it into an aggregate: payload and metadata as read (JSON
/// text from PostgreSQL, a tree from the embedded log), decoded once, straight into the
/// aggregate's event type ([`crate::bus::rehydrate`]) — not into a `serde_json::Value` tree
/// first and then from the tree, as cqrs-es's `SerializedEvent` is.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent<J = projections::RawJson> {
    pub aggregate_id: String,
    pub aggregate_type: String,
    pub sequence: usize,
    pub event_type: String,
    pub event_version: String,
    pub payload: J,
    pub metadata: J,
}

/// The event log's storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("event log: {0}")]
    Persistence(#[from] cqrs_es::persist::PersistenceError),
    /// A thread panicked while holding the embedded log's lock.
    #[error("event log lock poisoned")]
    Poisoned,
    /// The PostgreSQL log's committer or loader tasks are gone (the runtime is shutting down).
    #[error("the event log's committer or loader has stopped")]
    CommitterStopped,
}
