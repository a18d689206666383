//! Id allocators behind the domain's `IdAllocator` port: PostgreSQL sequences, or counters
//! for the embedded default.

use aggregates::common::BoxFuture;
use aggregates::{IdAllocator, IdError, IdSequence};
use sqlx::PgPool;

/// Allocates ids from the `delius` sequences.
#[derive(Debug, Clone)]
pub struct PgIds {
    pool: PgPool,
}

impl PgIds {
    /// An allocator on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl IdAllocator for PgIds {
    fn next_id(&self, sequence: IdSequence) -> BoxFuture<'_, Result<i64, IdError>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT nextval($1::regclass)")
                .bind(sequence.sequence_name())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| IdError(e.to_string()))
        })
    }
}

/// The embedded default counts up from the same first id as the sequences.
pub use aggregates::common::CountingIds as MemoryIds;
