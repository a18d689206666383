//! The engine: the command bus, its event log and the Delius projector, wired for PostgreSQL
//! or for the embedded default (in-memory log and tables), with one shutdown for all tasks.
//! Entry points (HTTP, AMQP, seed, demo) hold an `Engine` and nothing else.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use aggregates::Services;
use projections::memory::MemoryTables;
use projections::postgres::RunnerConfig;
use projections::Checkpoint;

use crate::bus::{CommandBus, EventLog};
use crate::ids::{MemoryIds, PgIds};
use crate::reference::cache::ReferenceCache;
use crate::reference::LookupBatcher;
use crate::store::cqrs_book::CqrsEsLog;
use crate::store::{CommandOutcome, MemEventLog, PgEventLog};

/// The migrations in `schema/`, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./schema");

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub enum Backend {
    Postgres(PgPool),
    Memory {
        log: Arc<MemEventLog>,
        tables: Arc<RwLock<MemoryTables>>,
    },
}

/// The read side is not there yet.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The projector did not reach the command's events in time; they are committed and will
    /// appear. HTTP 503 with Retry-After.
    #[error("projection did not catch up within {0:?}")]
    Timeout(Duration),
}

/// The running engine.
#[derive(Debug)]
pub struct Engine {
    pub bus: Arc<CommandBus>,
    pub backend: Backend,
    /// Groups concurrent reference lookups on PostgreSQL ([`crate::reference::lookup_many`]).
    lookups: Option<LookupBatcher>,
    /// Reference rows in memory on PostgreSQL ([`crate::reference::cache`]).
    reference_cache: Option<Arc<ReferenceCache>>,
    progress: watch::Receiver<Checkpoint>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// A pooled connection idle longer than this is pinged before it is handed out.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Opens a PostgreSQL pool with bounded size and acquire timeout.
///
/// sqlx pings a connection (a round trip) when it goes back to the pool, and by default again
/// when it is taken out: two round trips around every pooled statement, on a machine where
/// round trips are the cost (BENCHMARKS.md). The ping on the way out is kept only for a
/// connection idle longer than [`PING_IDLE_AFTER`]: one that was returned (and so pinged)
/// less than a second ago is handed out as it is. A connection that died in that second (the
/// database restarted) fails its statement, which the caller sees as a database error (an
/// HTTP 500, a message retried), and is closed by the ping of its release. Measured (3
/// interleaved pairs): async +7 %, sync +8 % at 8 clients (BENCHMARKS.md).
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(max_connections).connect(database_url).await
}

/// The options of [`connect`]'s pool (for a pool on connect options rather than a URL).
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

impl Engine {
    /// An engine on PostgreSQL (migrations must have run) with its projector running.
    pub fn postgres(pool: PgPool) -> Self {
        Self::postgres_with(pool, RunnerConfig::delius())
    }

    /// An engine on PostgreSQL with the given projector settings.
    pub fn postgres_with(pool: PgPool, runner: RunnerConfig) -> Self {
        let wake = Arc::new(Notify::new());
        let (progress_tx, progress) = watch::channel(Checkpoint::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let services = Services::new(Arc::new(PgIds::new(pool.clone())));
        let bus = CommandBus::new(
            EventLog::Postgres(PgEventLog::new(pool.clone())),
            services,
            wake.clone(),
        );
        // The projector advances the epoch the cache's copies are checked against.
        let (reference_cache, listener) = ReferenceCache::start(
            pool.clone(),
            runner.reference_epoch.clone(),
            shutdown_rx.clone(),
        );
        let projector = tokio::spawn(projections::postgres::run(
            pool.clone(),
            runner,
            wake,
            progress_tx,
            shutdown_rx,
        ));
        Self {
            bus: Arc::new(bus),
            lookups: Some(LookupBatcher::new(pool.clone())),
            reference_cache: Some(reference_cache),
            backend: Backend::Postgres(pool),
            progress,
            shutdown,
            tasks: vec![projector, listener],
        }
    }

    /// An engine on PostgreSQL whose bus stores and projects through the cqrs-es reference
    /// backend ([`crate::store::cqrs_book`]: the benchmarks' naive baseline; its view tables
    /// must exist). No Delius projector runs: the Delius tables stay as they were, and the
    /// views take the projected rows. Lookups, the reference cache and the handlers are the
    /// same as [`Engine::postgres`]'s.
    pub fn cqrs_book(pool: PgPool) -> Self {
        let (_, progress) = watch::channel(Checkpoint::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let services = Services::new(Arc::new(PgIds::new(pool.clone())));
        let bus = CommandBus::new(
            EventLog::CqrsEs(CqrsEsLog::new(pool.clone())),
            services,
            Arc::new(Notify::new()),
        );
        let (reference_cache, listener) = ReferenceCache::start(
            pool.clone(),
            RunnerConfig::delius().reference_epoch,
            shutdown_rx,
        );
        Self {
            bus: Arc::new(bus),
            lookups: Some(LookupBatcher::new(pool.clone())),
            reference_cache: Some(reference_cache),
            backend: Backend::Postgres(pool),
            progress,
            shutdown,
            tasks: vec![listener],
        }
    }

    /// The embedded default: nothing is durable.
    pub fn memory() -> Self {
        Self::memory_with_ids(Arc::new(MemoryIds::default()))
    }

    /// The embedded default allocating Delius ids from `ids` (engines sharing one allocator
    /// never hand out the same id: the event-log generator runs one engine per slice).
    pub fn memory_with_ids(ids: Arc<dyn aggregates::common::IdAllocator>) -> Self {
        let wake = Arc::new(Notify::new());
        let (progress_tx, progress) = watch::channel(Checkpoint::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let log = Arc::new(MemEventLog::default());
        let tables = Arc::new(RwLock::new(MemoryTables::default()));
        let bus = CommandBus::new(
            EventLog::Memory(log.clone()),
            Services::new(ids),
            wake.clone(),
        );
        let projector = tokio::spawn(run_memory_projector(
            log.clone(),
            tables.clone(),
            wake,
            progress_tx,
            shutdown_rx,
        ));
        Self {
            bus: Arc::new(bus),
            backend: Backend::Memory { log, tables },
            lookups: None,
            reference_cache: None,
            progress,
            shutdown,
            tasks: vec![projector],
        }
    }

    /// The reference-lookup batcher (PostgreSQL only).
    pub(crate) fn lookups(&self) -> Option<&LookupBatcher> {
        self.lookups.as_ref()
    }

    /// This engine with every reference lookup going to the database, none to in-memory
    /// copies (tests compare the two). The cache's listener idles until shutdown.
    pub fn without_reference_cache(mut self) -> Self {
        self.reference_cache = None;
        self
    }

    /// The in-memory reference rows (PostgreSQL only).
    pub fn reference_cache(&self) -> Option<&ReferenceCache> {
        self.reference_cache.as_deref()
    }

    /// Where the Delius projector has got to.
    pub fn progress(&self) -> Checkpoint {
        *self.progress.borrow()
    }

    /// Waits until the Delius rows written by `outcome` are visible (read-your-writes);
    /// the wait is recorded in [`crate::metrics::PROJECTION_WAIT_SECONDS`].
    pub async fn wait_for_projection(
        &self,
        outcome: &CommandOutcome,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let Some(target) = outcome.checkpoint() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let waited = self.wait_for_checkpoint(target, timeout).await;
        crate::metrics::record_projection_wait(waited.is_ok(), started.elapsed());
        waited
    }

    /// Waits until the projector has passed `target`.
    pub async fn wait_for_checkpoint(
        &self,
        target: Checkpoint,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let mut progress = self.progress.clone();
        let reached = tokio::time::timeout(timeout, progress.wait_for(|cp| *cp >= target)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(WaitError::Timeout(timeout)),
        }
    }

    /// The position of the newest event in the log (where the projector must reach to show
    /// everything written so far).
    pub async fn head(&self) -> Result<Checkpoint, sqlx::Error> {
        match &self.backend {
            Backend::Postgres(pool) => {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT transaction_id::text::bigint, global_position FROM events \
                     ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?;
                Ok(row.map_or(
                    Checkpoint::default(),
                    |(transaction_id, global_position)| Checkpoint {
                        transaction_id,
                        global_position,
                    },
                ))
            }
            Backend::Memory { log, .. } => Ok(log.head()),
        }
    }

    /// Stops the projector and waits for it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn run_memory_projector(
    log: Arc<MemEventLog>,
    tables: Arc<RwLock<MemoryTables>>,
    wake: Arc<Notify>,
    progress: watch::Sender<Checkpoint>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut checkpoint = Checkpoint::default();
    while !*shutdown.borrow() {
        let events = match log.read_after(checkpoint, 10_000) {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(%error, "embedded projector cannot read the log");
                return;
            }
        };
        if let Some(last) = events.last() {
            let next = Checkpoint::of(last);
            match tables.write() {
                Ok(mut tables) => {
                    for event in &events {
                        if let Err(error) = tables.apply_event(event) {
                            tracing::error!(%error, "embedded projector stopped at an undecodable event");
                            return;
                        }
                    }
                }
                Err(_) => {
                    tracing::error!("embedded tables lock poisoned");
                    return;
                }
            }
            checkpoint = next;
            let _ = progress.send(checkpoint);
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            // The engine dropped without `shutdown`: stop, rather than spin on `changed`.
            changed = shutdown.changed() => if changed.is_err() { return; },
        }
    }
}
