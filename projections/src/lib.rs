//! Projections: turn the event log into Delius rows (schema `delius`) — deterministically,
//! idempotently, in the log's global order — and keep each projector's checkpoint.
//!
//! # Layout
//! - [`log`]: what a projector reads: [`RecordedEvent`] (an event with its global position and
//!   [`Metadata`]) and [`AnyEvent`] (its payload decoded and upcast).
//! - [`rows`]: [`RowChange`], the only thing a projector produces, and the [`TABLES`] registry.
//! - [`delius`]: the Delius projector, a pure function from an event to row changes.
//! - [`memory`]: a sink that keeps tables in memory (the embedded default and tests).
//! - [`postgres`]: a sink that applies row changes to PostgreSQL in bulk, and the catch-up
//!   runner: reads below the in-flight horizon, writes rows and checkpoint in one transaction,
//!   one active instance per projector (advisory lock).
//! - [`replay`]: rebuilds the projected tables from the log into a fresh schema.
//! - [`checksum`]: ordered checksums of projected tables, to prove replay equals live.
//!
//! Projectors never allocate ids and never read the wall clock: ids and times come from the
//! events, so a replay reproduces the live tables row for row.

pub mod checksum;
pub mod copy_binary;
pub mod delius;
pub mod log;
pub mod memory;
pub mod postgres;
pub mod replay;
pub mod rows;

pub use log::{AnyEvent, Json, LoggedEvent, Metadata, RawJson, RecordedEvent, Source};
pub use rows::{Columns, Key, RowChange, TableDef, TABLES};

/// Where a projector has got to in the global order `(transaction_id, global_position)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl Checkpoint {
    /// The checkpoint just past `event`.
    pub fn of<P>(event: &RecordedEvent<P>) -> Self {
        Self {
            transaction_id: event.transaction_id,
            global_position: event.global_position,
        }
    }
}
