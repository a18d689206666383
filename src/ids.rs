//! Id allocators behind the domain's `IdAllocator` port: PostgreSQL sequences, or counters
//! for the embedded default.
//!
//! # Blocks, as Oracle's `CACHE`
//! [`PgIds`] takes [`BLOCK`] values of a sequence in one round trip and hands them out from
//! memory, as an Oracle sequence with a `CACHE` does in Delius itself: ids stay unique across
//! processes (every value comes from `nextval`), one process's ids of a sequence increase in
//! the order it fetched its blocks, two processes' ids interleave, and a process that stops
//! leaves the rest of its blocks unused (a gap, never a reuse). A command deciding a referral
//! takes six ids from four sequences; with blocks of 100, about one referral in twenty waits
//! for a round trip (with Delius's own 20, one in three did).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use aggregates::common::BoxFuture;
use aggregates::{IdAllocator, IdError, IdSequence};
use sqlx::PgPool;

/// How many values of a sequence one round trip takes.
pub const BLOCK: i64 = 100;

/// Allocates ids from the `delius` sequences, [`BLOCK`] at a time.
#[derive(Debug, Clone)]
pub struct PgIds {
    pool: PgPool,
    cached: Arc<Mutex<BTreeMap<IdSequence, VecDeque<i64>>>>,
}

impl PgIds {
    /// An allocator on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cached: Arc::default(),
        }
    }

    fn take(&self, sequence: IdSequence) -> Result<Option<i64>, IdError> {
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| IdError("id cache lock poisoned".into()))?;
        Ok(cached.get_mut(&sequence).and_then(VecDeque::pop_front))
    }
}

impl IdAllocator for PgIds {
    fn next_id(&self, sequence: IdSequence) -> BoxFuture<'_, Result<i64, IdError>> {
        Box::pin(async move {
            if let Some(id) = self.take(sequence)? {
                return Ok(id);
            }
            let mut block: Vec<i64> =
                sqlx::query_scalar("SELECT nextval($1::regclass) FROM generate_series(1, $2)")
                    .bind(sequence.sequence_name())
                    .bind(BLOCK)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| IdError(e.to_string()))?;
            block.sort_unstable();
            let mut block = VecDeque::from(block);
            let id = block
                .pop_front()
                .ok_or_else(|| IdError(format!("{} gave no value", sequence.sequence_name())))?;
            let mut cached = self
                .cached
                .lock()
                .map_err(|_| IdError("id cache lock poisoned".into()))?;
            let queue = cached.entry(sequence).or_default();
            // Another task may have fetched a block meanwhile: keep the values in order.
            queue.extend(block);
            queue.make_contiguous().sort_unstable();
            Ok(id)
        })
    }
}

/// The embedded default counts up from the same first id as the sequences.
pub use aggregates::common::CountingIds as MemoryIds;
