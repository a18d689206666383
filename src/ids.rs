//! Id allocators behind the domain's `IdAllocator` port: PostgreSQL sequences, or counters
//! for the embedded default.
//!
//! # Blocks, as Oracle's `CACHE`
//! [`PgIds`] takes [`BLOCK`] values of a sequence in one round trip and hands them out from
//! memory, as an Oracle sequence with a `CACHE` does in Delius itself: ids stay unique across
//! processes (every value comes from `nextval`), one process's ids of a sequence increase in
//! the order it fetched its blocks, two processes' ids interleave, and a process that stops
//! leaves the rest of its blocks unused (a gap, never a reuse). A command deciding a referral
//! takes six ids from four sequences; with blocks of 100, about one referral in twenty
//! needed a new block (with Delius's own 20, one in three did), and the next block is
//! fetched in the background once half of one is used ([`REFILL_BELOW`]), so a decision
//! seldom waits for it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use aggregates::common::BoxFuture;
use aggregates::{IdAllocator, IdError, IdSequence};
use sqlx::PgPool;

/// How many values of a sequence one round trip takes.
pub const BLOCK: i64 = 100;

/// When fewer ids than this are left of a sequence, taking one also begins fetching the next
/// block in the background (one such fetch per sequence at a time), so that a command seldom
/// waits for a round trip while deciding. Without it every task that found a sequence empty
/// fetched a block while deciding: at 32 concurrent referrals the 1 % slowest decisions took
/// ~4.7 ms instead of ~10 µs (BENCHMARKS.md).
pub const REFILL_BELOW: usize = (BLOCK / 2) as usize;

/// A sequence's ids in memory, and whether a background fetch of its next block is running.
#[derive(Debug, Default)]
struct Cached {
    ids: VecDeque<i64>,
    refilling: bool,
}

/// Allocates ids from the `delius` sequences, [`BLOCK`] at a time.
#[derive(Debug, Clone)]
pub struct PgIds {
    pool: PgPool,
    cached: Arc<Mutex<BTreeMap<IdSequence, Cached>>>,
}

impl PgIds {
    /// An allocator on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cached: Arc::default(),
        }
    }

    /// How many ids of `sequence` this allocator holds in memory.
    pub fn held(&self, sequence: IdSequence) -> Result<usize, IdError> {
        Ok(self
            .lock()?
            .get(&sequence)
            .map_or(0, |cached| cached.ids.len()))
    }

    fn lock(&self) -> Result<MutexGuard<'_, BTreeMap<IdSequence, Cached>>, IdError> {
        self.cached
            .lock()
            .map_err(|_| IdError("id cache lock poisoned".into()))
    }

    /// An id from memory, if any is left, and whether the caller should begin refilling.
    fn take(&self, sequence: IdSequence) -> Result<(Option<i64>, bool), IdError> {
        let mut cached = self.lock()?;
        let entry = cached.entry(sequence).or_default();
        let id = entry.ids.pop_front();
        let refill = id.is_some() && entry.ids.len() < REFILL_BELOW && !entry.refilling;
        if refill {
            entry.refilling = true;
        }
        Ok((id, refill))
    }

    /// One block of `sequence`, in increasing order (one round trip).
    async fn fetch(&self, sequence: IdSequence) -> Result<VecDeque<i64>, IdError> {
        let mut block: Vec<i64> =
            sqlx::query_scalar("SELECT nextval($1::regclass) FROM generate_series(1, $2)")
                .bind(sequence.sequence_name())
                .bind(BLOCK)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| IdError(e.to_string()))?;
        block.sort_unstable();
        Ok(VecDeque::from(block))
    }

    /// Adds `block` to the ids in memory, keeping them in order (another task may have
    /// fetched a block meanwhile); `refilled` ends the background fetch.
    fn store(
        &self,
        sequence: IdSequence,
        block: VecDeque<i64>,
        refilled: bool,
    ) -> Result<(), IdError> {
        let mut cached = self.lock()?;
        let entry = cached.entry(sequence).or_default();
        entry.ids.extend(block);
        entry.ids.make_contiguous().sort_unstable();
        if refilled {
            entry.refilling = false;
        }
        Ok(())
    }

    /// Fetches the next block of `sequence` in the background. A failure is logged and
    /// leaves the sequence to the next caller (which fetches for itself once it is empty).
    fn refill(&self, sequence: IdSequence) {
        let ids = self.clone();
        tokio::spawn(async move {
            let block = match ids.fetch(sequence).await {
                Ok(block) => block,
                Err(error) => {
                    tracing::warn!(sequence = sequence.sequence_name(), %error, "id block not fetched ahead");
                    VecDeque::new()
                }
            };
            if let Err(error) = ids.store(sequence, block, true) {
                tracing::error!(%error, "id block fetched ahead is lost");
            }
        });
    }
}

impl IdAllocator for PgIds {
    fn next_id(&self, sequence: IdSequence) -> BoxFuture<'_, Result<i64, IdError>> {
        Box::pin(async move {
            let (id, refill) = self.take(sequence)?;
            if refill {
                self.refill(sequence);
            }
            if let Some(id) = id {
                return Ok(id);
            }
            let mut block = self.fetch(sequence).await?;
            let id = block
                .pop_front()
                .ok_or_else(|| IdError(format!("{} gave no value", sequence.sequence_name())))?;
            self.store(sequence, block, false)?;
            Ok(id)
        })
    }
}

/// The embedded default counts up from the same first id as the sequences.
pub use aggregates::common::CountingIds as MemoryIds;
