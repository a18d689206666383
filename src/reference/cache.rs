//! **Reference rows held in memory** (PostgreSQL). The reference tables — the national code
//! tables (`r_*`) and the seeded organisation (`probation_area`, `pdu`, `team`, `staff`,
//! `office_location`) — are small, change rarely, and were read by almost every message: a
//! prison movement made three reference queries (BENCHMARKS.md). A [`ReferenceCache`] keeps a
//! copy of each such table, whole and in key order, taken on first use, and answers lookups on
//! it exactly as the queries would (the same rows, the same order).
//!
//! A copy is good while the process's [`ReferenceEpoch`] stands still. It moves on
//! - when this process's projector commits a batch that changed a reference table (before it
//!   publishes the checkpoint, so a caller that waited for its own write reads it);
//! - when a [`REFERENCE_CHANNEL`] notification arrives: another process's projector, or a
//!   replay's swap, changed reference rows;
//! - when the listening connection is lost or made again (notifications may have been missed).
//!
//! While the listener is not connected the cache answers nothing and every lookup goes to the
//! database. A table with more than [`MAX_ROWS`] rows is not copied (real `staff` tables are
//! large): its lookups go to the database too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use projections::postgres::{identifier, ReferenceEpoch, REFERENCE_CHANNEL};

/// The most rows of one table the cache copies.
pub const MAX_ROWS: usize = 5_000;

/// Tables whose rows the cache may copy: the projected reference tables and the national code
/// tables the migrations load (`r_*`), which nothing but a migration changes.
pub fn caches(table: &str) -> bool {
    projections::rows::table(table).map_or(table.starts_with("r_"), |t| t.reference)
}

type Row = Map<String, Value>;
/// A text column's values, each with the positions of the rows holding it.
type ColumnIndex = Arc<HashMap<String, Vec<u32>>>;

/// One table's rows as copied at one epoch.
#[derive(Debug)]
struct Copy {
    epoch: u64,
    /// In key order; `None` when the table has more than [`MAX_ROWS`] rows.
    rows: Option<Arc<Vec<Row>>>,
    /// The table's `text` and `varchar` columns: the only ones compared here (any other type
    /// — a date, a number — the database compares by its own rules).
    text_columns: std::collections::HashSet<String>,
    /// Per column: the positions of the rows holding each text value (built on first use);
    /// `None` for a column holding anything but text or null.
    columns: Mutex<HashMap<String, Option<ColumnIndex>>>,
}

/// Copies of reference tables, good while the epoch stands still (module docs).
#[derive(Debug)]
pub struct ReferenceCache {
    pool: PgPool,
    epoch: Arc<ReferenceEpoch>,
    listening: Arc<AtomicBool>,
    tables: Mutex<HashMap<String, Arc<Copy>>>,
    /// One copy is taken at a time, so that many callers missing together make one query.
    filling: tokio::sync::Mutex<()>,
}

impl ReferenceCache {
    /// A cache on `pool` whose copies are good while `epoch` stands still, with the task that
    /// listens for [`REFERENCE_CHANNEL`] (on a connection of its own) until `shutdown` turns
    /// true or its sender is gone.
    pub fn start(
        pool: PgPool,
        epoch: Arc<ReferenceEpoch>,
        shutdown: watch::Receiver<bool>,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let listening = Arc::new(AtomicBool::new(false));
        let listener = tokio::spawn(listen(
            pool.clone(),
            epoch.clone(),
            listening.clone(),
            shutdown,
        ));
        let cache = Arc::new(Self {
            pool,
            epoch,
            listening,
            tables: Mutex::new(HashMap::new()),
            filling: tokio::sync::Mutex::new(()),
        });
        (cache, listener)
    }

    /// Whether the cache is answering (its listener is connected).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The rows of `table` whose text `column` is one of `values`, in key order, as the
    /// database holds them now — or `None` when the cache cannot say (not listening, a table it
    /// does not copy or too large to, a column that is not text): ask the database.
    pub async fn rows_where(
        &self,
        table: &str,
        column: &str,
        values: &[String],
    ) -> Result<Option<Vec<Row>>, sqlx::Error> {
        let Some(copy) = self.copy(table).await? else {
            return Ok(None);
        };
        let Some(rows) = &copy.rows else {
            return Ok(None);
        };
        let Some(index) = copy.column(rows, column) else {
            return Ok(None);
        };
        let mut positions: Vec<u32> = values
            .iter()
            .filter_map(|value| index.get(value))
            .flatten()
            .copied()
            .collect();
        positions.sort_unstable();
        positions.dedup();
        crate::metrics::record_reference_cache(true);
        Ok(Some(
            positions
                .into_iter()
                .map(|p| rows[p as usize].clone())
                .collect(),
        ))
    }

    /// The current copy of `table`, taken now if there is none of this epoch.
    async fn copy(&self, table: &str) -> Result<Option<Arc<Copy>>, sqlx::Error> {
        if !caches(table) || !self.is_listening() {
            return Ok(None);
        }
        if let Some(copy) = self.current(table) {
            return Ok(Some(copy));
        }
        let _one_at_a_time = self.filling.lock().await;
        if let Some(copy) = self.current(table) {
            return Ok(Some(copy));
        }
        crate::metrics::record_reference_cache(false);
        // Read after the epoch: a change committed meanwhile moves the epoch past this copy's.
        let epoch = self.epoch.current();
        let table = identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let rows = super::rows_in_key_order(&self.pool, table, Some(MAX_ROWS + 1)).await?;
        let text_columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'delius' AND table_name = $1 \
             AND data_type IN ('text', 'character varying')",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await?;
        let copy = Arc::new(Copy {
            epoch,
            rows: (rows.len() <= MAX_ROWS).then(|| Arc::new(rows)),
            text_columns: text_columns.into_iter().collect(),
            columns: Mutex::new(HashMap::new()),
        });
        if let Ok(mut tables) = self.tables.lock() {
            tables.insert(table.to_string(), copy.clone());
        }
        Ok(Some(copy))
    }

    /// The copy of `table` taken at the current epoch, if any.
    fn current(&self, table: &str) -> Option<Arc<Copy>> {
        let epoch = self.epoch.current();
        let tables = self.tables.lock().ok()?;
        tables.get(table).filter(|c| c.epoch == epoch).cloned()
    }
}

impl Copy {
    /// The index of `column` over `rows` (built once per copy); `None` for a column that is
    /// not text (or that the table lacks), which the database answers (or refuses).
    fn column(&self, rows: &[Row], column: &str) -> Option<ColumnIndex> {
        if !self.text_columns.contains(column) {
            return None;
        }
        let mut columns = self.columns.lock().ok()?;
        columns
            .entry(column.to_string())
            .or_insert_with(|| {
                let mut index: HashMap<String, Vec<u32>> = HashMap::new();
                for (position, row) in rows.iter().enumerate() {
                    match row.get(column) {
                        Some(Value::String(value)) => index
                            .entry(value.clone())
                            .or_default()
                            .push(u32::try_from(position).ok()?),
                        None | Some(Value::Null) => {}
                        Some(_) => return None,
                    }
                }
                Some(Arc::new(index))
            })
            .clone()
    }
}

/// Listens for [`REFERENCE_CHANNEL`] on a connection of its own: every notification, and
/// every connection lost or made, advances the epoch; `listening` says whether it is
/// connected.
async fn listen(
    pool: PgPool,
    epoch: Arc<ReferenceEpoch>,
    listening: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Its own connection, outside the engine's pool.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut backoff = Duration::from_millis(100);
    while !*shutdown.borrow() {
        let connected = async {
            let mut listener = PgListener::connect_with(&own).await?;
            // A lost connection ends the loop below rather than being made again inside
            // `try_recv`, so that the epoch moves on and nothing is served meanwhile.
            listener.eager_reconnect(false);
            listener.listen(REFERENCE_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match connected {
            Ok(mut listener) => {
                // Whatever changed before LISTEN took effect is not in any copy after this.
                epoch.advance();
                listening.store(true, Ordering::Release);
                backoff = Duration::from_millis(100);
                loop {
                    tokio::select! {
                        received = listener.try_recv() => match received {
                            Ok(Some(_)) => epoch.advance(),
                            Ok(None) => {
                                tracing::warn!("reference listener lost its connection");
                                break;
                            }
                            Err(error) => {
                                tracing::warn!(%error, "reference listener failed");
                                break;
                            }
                        },
                        changed = shutdown.changed() => {
                            if changed.is_err() || *shutdown.borrow() {
                                listening.store(false, Ordering::Release);
                                return;
                            }
                        }
                    }
                }
                listening.store(false, Ordering::Release);
                epoch.advance();
            }
            Err(error) => {
                tracing::warn!(%error, "reference listener cannot connect; lookups go to the database");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            changed = shutdown.changed() => if changed.is_err() { return; },
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    listening.store(false, Ordering::Release);
}
