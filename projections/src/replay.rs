//! Rebuilding a projection from the log (DESIGN.md §3).
//!
//! A rebuild creates the projection's tables in a fresh schema beside the live one (primary
//! keys only, so bulk writes stay cheap), copies the migration-loaded reference rows, projects
//! every event in global order in large batches, then builds the secondary indexes and unique
//! constraints. Each batch commits its rows together with the run's checkpoint in
//! `replay_run`, so an interrupted rebuild resumes from its last committed batch. Memory is one
//! batch of events and its staged rows, whatever the log's size.
//!
//! Then, by mode:
//! - **swap** (no `until`, no `into`): under the live projector's swap lock — which waits for
//!   its batch in flight and holds its next one — the rebuild catches up with the events that
//!   arrived meanwhile, moves the live tables to `{projection}_retired` (kept until the next
//!   swap, for rollback), moves the rebuilt ones in and sets the live checkpoint to the
//!   rebuild's, all in one transaction. Readers wait for the commit and then see the new
//!   tables; they never see a half-built one. The live projector carries on from there.
//! - **keep** (`until` or `into`): the rebuilt schema stays where it is for investigation
//!   (`until`: the picture as of that moment, from the events recorded at or before it).
//!
//! Only one rebuild per target schema runs at a time (a session advisory lock).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::log::LoggedEvent;
use crate::postgres::{
    identifier, project_events, read_events_after, stage_events, Encoded, PgSink, ProjectTimings,
    ProjectionError, ShadowRows, BATCH_SETTINGS,
};
use crate::rows::TABLES;
use crate::Checkpoint;

/// The projections a replay can rebuild: the Delius tables (schema `delius`).
pub const PROJECTIONS: &[&str] = &[crate::delius::NAME];

/// Batches the rebuild stages ahead of its writer (handed over, not yet committed).
const WRITES_AHEAD: usize = 2;

/// Events per batch when nothing else is asked.
pub const DEFAULT_BATCH: i64 = 5_000;

/// What to rebuild and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRequest {
    /// A name of [`PROJECTIONS`].
    pub projection: String,
    /// Only events recorded at or before this moment (implies keep).
    pub until: Option<DateTime<Utc>>,
    /// Build into this schema and keep it (no swap).
    pub into: Option<String>,
    /// Events per batch (transaction).
    pub batch_size: i64,
    /// A pause after each batch, to spare a busy database.
    pub throttle: Duration,
    /// Start again from the first event even if an interrupted run of the same target exists.
    pub fresh: bool,
    /// Who asked (operator or HTTP caller), recorded on the run.
    pub requested_by: String,
}

impl ReplayRequest {
    /// A full rebuild of `projection` with a swap.
    pub fn new(projection: &str, requested_by: &str) -> Self {
        Self {
            projection: projection.to_string(),
            until: None,
            into: None,
            batch_size: DEFAULT_BATCH,
            throttle: Duration::ZERO,
            fresh: false,
            requested_by: requested_by.to_string(),
        }
    }

    /// Whether the rebuilt tables replace the live ones.
    pub fn swaps(&self) -> bool {
        self.until.is_none() && self.into.is_none()
    }

    /// The schema the rebuild writes: `into`, else `{projection}_asof_{yyyymmddThhmmss_micros}` for
    /// `until`, else `{projection}_rebuild`.
    pub fn target(&self) -> String {
        match (&self.into, self.until) {
            (Some(into), _) => into.clone(),
            (None, Some(until)) => {
                format!(
                    "{}_asof_{}",
                    self.projection,
                    until.format("%Y%m%dt%H%M%S_%6f")
                )
            }
            (None, None) => format!("{}_rebuild", self.projection),
        }
    }

    /// The schema the swapped-out live tables are kept in.
    pub fn retired(&self) -> String {
        format!("{}_retired", self.projection)
    }

    /// Checks the request before anything is touched.
    pub fn validate(&self) -> Result<(), ReplayError> {
        if !PROJECTIONS.contains(&self.projection.as_str()) {
            return Err(ReplayError::UnknownProjection(self.projection.clone()));
        }
        if self.batch_size < 1 {
            return Err(ReplayError::Invalid(format!(
                "batch size must be at least 1, not {}",
                self.batch_size
            )));
        }
        let target = self.target();
        if identifier(&target).is_err() {
            return Err(ReplayError::Invalid(format!(
                "{target:?} is not a schema name: lowercase letters, digits and _, not starting with a digit"
            )));
        }
        let reserved = target == self.projection
            || target == self.retired()
            || target == "public"
            || target == "information_schema"
            || target.starts_with("pg_");
        if reserved {
            return Err(ReplayError::ReservedSchema(target));
        }
        Ok(())
    }
}

/// Why a replay did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("unknown projection {0:?} (known: delius)")]
    UnknownProjection(String),
    #[error("schema {0:?} is reserved: choose another target")]
    ReservedSchema(String),
    #[error("{0}")]
    Invalid(String),
    /// Another rebuild of the same target is running.
    #[error("a rebuild into {0:?} is already running")]
    Busy(String),
    /// The task writing the batches stopped without an answer (it panicked or was cancelled).
    #[error("the batch writer stopped: {0}")]
    Writer(String),
}

impl From<sqlx::Error> for ReplayError {
    fn from(error: sqlx::Error) -> Self {
        Self::Projection(ProjectionError::Database(error))
    }
}

/// Hears how a rebuild goes (the CLI draws a progress bar; HTTP runs read `replay_run`).
pub trait Progress: Send {
    /// The rebuild starts (or resumes) with `done` of `total` events applied.
    fn start(&mut self, _target: &str, _done: u64, _total: u64) {}
    /// A batch committed: `done` events applied so far.
    fn advance(&mut self, _done: u64) {}
    /// A new phase: "indexes", "swap"…
    fn phase(&mut self, _name: &str) {}
}

/// Hears nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub run_id: Uuid,
    pub target_schema: String,
    /// Events projected in all (including before a resume).
    pub events: u64,
    /// Events already applied when this invocation started (0 unless it resumed).
    pub resumed_at: u64,
    /// Whether the rebuilt tables are now the live ones.
    pub swapped: bool,
    pub checkpoint: Checkpoint,
    pub elapsed: Duration,
    /// Where the time went (this invocation).
    pub timings: ReplayTimings,
}

/// Where a rebuild's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayTimings {
    /// Reading batches of the log.
    pub read: Duration,
    /// Decoding and projecting events (CPU in this process), and writing the rows.
    pub project: ProjectTimings,
    /// Building the secondary indexes and unique constraints.
    pub indexes: Duration,
    /// The final catch-up and swap transaction.
    pub swap: Duration,
}

/// A run as recorded in `replay_run` (`GET /admin/replay/{runId}` answers it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub run_id: Uuid,
    pub target_schema: String,
    pub projection: String,
    pub until: Option<DateTime<Utc>>,
    pub swap: bool,
    /// `building`, `built` (kept beside the live tables), `swapped` or `failed`.
    pub status: String,
    pub events_applied: i64,
    pub events_total: i64,
    /// How many times an interrupted rebuild was continued.
    pub resumed: i32,
    /// `cli:{user}` or `http:{caller}`.
    pub requested_by: String,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const SELECT_RUN: &str = "SELECT run_id, target_schema, projection, until, swap, status, \
     events_applied, events_total, resumed, requested_by, error, started_at, updated_at, \
     finished_at FROM replay_run";

fn run_status(row: &sqlx::postgres::PgRow) -> Result<RunStatus, sqlx::Error> {
    Ok(RunStatus {
        run_id: row.try_get("run_id")?,
        target_schema: row.try_get("target_schema")?,
        projection: row.try_get("projection")?,
        until: row.try_get("until")?,
        swap: row.try_get("swap")?,
        status: row.try_get("status")?,
        events_applied: row.try_get("events_applied")?,
        events_total: row.try_get("events_total")?,
        resumed: row.try_get("resumed")?,
        requested_by: row.try_get("requested_by")?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// The run with id `run_id`, if there is one.
pub async fn run_status_by_id(
    pool: &PgPool,
    run_id: Uuid,
) -> Result<Option<RunStatus>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_RUN} WHERE run_id = $1"))
        .bind(run_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(run_status).transpose()
}

/// Every recorded run, newest first.
pub async fn runs(pool: &PgPool) -> Result<Vec<RunStatus>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT_RUN} ORDER BY started_at DESC"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(run_status).collect()
}

/// The advisory lock key of the live projector's swap: shared by each live batch, exclusive
/// while a rebuild swaps its tables in.
pub fn swap_lock_key(projection: &str) -> String {
    format!("projector-swap:{projection}")
}

/// A rebuild that holds its target's lock and knows its run, ready to [`run`](Self::run).
/// Dropping it releases the lock (its connection closes).
#[derive(Debug)]
pub struct PreparedReplay {
    pool: PgPool,
    conn: PgConnection,
    request: ReplayRequest,
    target: String,
    run_id: Uuid,
    checkpoint: Checkpoint,
    applied: i64,
    schema_ready: bool,
}

/// Validates `request`, takes its target's lock ([`ReplayError::Busy`] when another rebuild
/// of the target runs) and records the run (continuing an interrupted one of the same
/// request unless `fresh`).
pub async fn prepare(
    pool: &PgPool,
    request: &ReplayRequest,
) -> Result<PreparedReplay, ReplayError> {
    request.validate()?;
    let target = request.target();
    // A dedicated connection: the session lock dies with it if this process dies.
    let mut conn = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(format!("replay:{target}"))
        .fetch_one(&mut conn)
        .await?;
    if !locked {
        return Err(ReplayError::Busy(target));
    }
    let (run_id, checkpoint, applied, schema_ready) = prepare_run(&mut conn, request).await?;
    Ok(PreparedReplay {
        pool: pool.clone(),
        conn,
        request: request.clone(),
        target,
        run_id,
        checkpoint,
        applied,
        schema_ready,
    })
}

/// Rebuilds `request.projection` as asked, reporting to `progress`.
pub async fn replay(
    pool: &PgPool,
    request: &ReplayRequest,
    progress: &mut dyn Progress,
) -> Result<ReplayReport, ReplayError> {
    prepare(pool, request).await?.run(progress).await
}

impl PreparedReplay {
    /// The run's id (`replay_run.run_id`).
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The schema it writes.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs the rebuild to the end; on failure the run is marked `failed` and stays
    /// resumable.
    pub async fn run(mut self, progress: &mut dyn Progress) -> Result<ReplayReport, ReplayError> {
        let outcome = rebuild(&mut self, progress).await;
        if let Err(error) = &outcome {
            // Best effort: the run stays resumable whatever happens here.
            let _ = sqlx::query(
                "UPDATE replay_run SET status = 'failed', error = $2, updated_at = now() \
                 WHERE target_schema = $1 AND status = 'building'",
            )
            .bind(&self.target)
            .bind(error.to_string())
            .execute(&mut self.conn)
            .await;
        }
        outcome
    }
}

/// Finds or creates the run row: `(run_id, checkpoint, events_applied, schema_ready)`. An
/// interrupted run of the same request is continued (its tables are ready when its schema
/// still exists); a run registered but not started yet keeps its id.
async fn prepare_run(
    conn: &mut PgConnection,
    request: &ReplayRequest,
) -> Result<(Uuid, Checkpoint, i64, bool), ReplayError> {
    let target = request.target();
    let existing = sqlx::query(
        "SELECT run_id, transaction_id, global_position, events_applied, \
         EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists, \
         (status IN ('building', 'failed') AND projection = $2 AND until IS NOT DISTINCT FROM $3 \
          AND swap = $4) AS same_request \
         FROM replay_run WHERE target_schema = $1",
    )
    .bind(&target)
    .bind(&request.projection)
    .bind(request.until)
    .bind(request.swaps())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = existing {
        let same: bool = row.try_get("same_request")?;
        let schema_exists: bool = row.try_get("schema_exists")?;
        let applied: i64 = row.try_get("events_applied")?;
        if same && !request.fresh && (schema_exists || applied == 0) {
            let checkpoint = Checkpoint {
                transaction_id: row.try_get("transaction_id")?,
                global_position: row.try_get("global_position")?,
            };
            return Ok((row.try_get("run_id")?, checkpoint, applied, schema_exists));
        }
    }
    let run_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO replay_run (target_schema, run_id, projection, until, swap, status, requested_by) \
         VALUES ($1, $2, $3, $4, $5, 'building', $6) \
         ON CONFLICT (target_schema) DO UPDATE SET run_id = EXCLUDED.run_id, \
         projection = EXCLUDED.projection, until = EXCLUDED.until, swap = EXCLUDED.swap, \
         status = 'building', transaction_id = 0, global_position = 0, events_applied = 0, \
         events_total = 0, resumed = 0, requested_by = EXCLUDED.requested_by, error = NULL, \
         started_at = now(), updated_at = now(), finished_at = NULL",
    )
    .bind(&target)
    .bind(run_id)
    .bind(&request.projection)
    .bind(request.until)
    .bind(request.swaps())
    .bind(&request.requested_by)
    .execute(&mut *conn)
    .await?;
    Ok((run_id, Checkpoint::default(), 0, false))
}

async fn rebuild(
    prepared: &mut PreparedReplay,
    progress: &mut dyn Progress,
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let PreparedReplay {
        pool,
        conn,
        request,
        target,
        run_id,
        checkpoint,
        applied,
        schema_ready,
    } = prepared;
    let (conn, request, target, run_id, applied) =
        (conn, &*request, target.as_str(), *run_id, *applied);
    let mut checkpoint = *checkpoint;
    if *schema_ready {
        sqlx::query(
            "UPDATE replay_run SET resumed = resumed + 1, status = 'building', error = NULL, \
             updated_at = now() WHERE target_schema = $1",
        )
        .bind(target)
        .execute(&mut *conn)
        .await?;
        tracing::info!(target, applied, "resuming an interrupted rebuild");
    } else {
        create_shadow(conn, &request.projection, target).await?;
    }
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE ($1::timestamptz IS NULL OR recorded_at <= $1)",
    )
    .bind(request.until)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE replay_run SET events_total = $2 WHERE target_schema = $1")
        .bind(target)
        .bind(total)
        .execute(&mut *conn)
        .await?;
    let resumed_at = applied as u64;
    let mut done = resumed_at;
    progress.start(target, done, total.max(applied) as u64);
    let mut timings = ReplayTimings::default();
    // Three stages that overlap, each on its own connection: a reader task reads ahead while
    // this task decodes, stages and encodes batch N + 2 and the writer thread commits batch N
    // (rows and run checkpoint in one transaction), with N + 1 queued behind it. At most five
    // batches are in memory (one being read, one queued as events, one staged, two encoded).
    // The rows the shadow holds (none when it is new): a row's first write is a `COPY`.
    let mut shadow = ShadowRows::load(conn, target).await?;
    let writer = BatchWriter::start(pool, target).await?;
    let mut batches = read_ahead(
        pool.acquire().await?,
        checkpoint,
        request.batch_size,
        request.until,
    );
    // Batches handed to the writer and not committed yet, oldest first: staging runs up to
    // WRITES_AHEAD batches ahead of the writer, so that a slow batch on one side does not stall
    // the other.
    let mut in_flight: VecDeque<(Written, u64)> = VecDeque::new();
    loop {
        let (events, read_time) = batches
            .next()
            .await
            .ok_or_else(|| ReplayError::Writer("the reader stopped".into()))??;
        timings.read += read_time;
        let next = events.last().map(Checkpoint::of);
        let count = events.len() as u64;
        let staged = match next {
            Some(_) => {
                let staging = Instant::now();
                let mut sink = PgSink::new(target)?;
                stage_events(&mut sink, &events)?;
                let encoded = sink.encode_for_shadow(&mut shadow)?;
                timings.project.decode_and_project += staging.elapsed();
                Some(encoded)
            }
            None => None,
        };
        drop(events);
        let last = staged.is_none();
        while in_flight.len() >= WRITES_AHEAD || (last && !in_flight.is_empty()) {
            let Some((batch, written)) = in_flight.pop_front() else {
                break;
            };
            timings.project.write += batch
                .await
                .map_err(|_| ReplayError::Writer("it stopped without an answer".into()))??;
            done += written;
            progress.advance(done);
            if !request.throttle.is_zero() {
                tokio::time::sleep(request.throttle).await;
            }
        }
        let (Some(encoded), Some(next)) = (staged, next) else {
            break;
        };
        match writer.write(encoded, next, count) {
            Ok(written) => in_flight.push_back((written, count)),
            // The writer stops after a batch fails: that batch's error, not the closed queue,
            // is why the rebuild stopped.
            Err(stopped) => return Err(first_failure(in_flight).await.unwrap_or(stopped)),
        }
        checkpoint = next;
    }
    progress.phase("indexes");
    let indexes = Instant::now();
    {
        // On two connections at once: the second builds the largest table's.
        drop(writer);
        let mut other = pool.acquire().await?;
        let (one, two) = tokio::join!(
            build_indexes(conn, &request.projection, target, |name| {
                !BUILT_BESIDE.contains(&name)
            }),
            build_indexes(&mut other, &request.projection, target, |name| {
                BUILT_BESIDE.contains(&name)
            }),
        );
        one?;
        two?;
    }
    timings.indexes = indexes.elapsed();
    let swapped = request.swaps();
    if swapped {
        progress.phase("swap");
        let swapping = Instant::now();
        let (caught_up, events) = swap(conn, request, target, checkpoint, done).await?;
        timings.swap = swapping.elapsed();
        checkpoint = caught_up;
        done += events;
        progress.advance(done);
    } else {
        sqlx::query(
            "UPDATE replay_run SET status = 'built', finished_at = now(), updated_at = now() \
             WHERE target_schema = $1",
        )
        .bind(target)
        .execute(&mut *conn)
        .await?;
    }
    Ok(ReplayReport {
        run_id,
        target_schema: target.to_string(),
        events: done,
        resumed_at,
        swapped,
        checkpoint,
        elapsed: started.elapsed(),
        timings,
    })
}

/// The first error among batches handed to a writer that has stopped, in the order they were
/// handed (the writer stops at its first failed batch and answers none after it).
async fn first_failure(in_flight: VecDeque<(Written, u64)>) -> Option<ReplayError> {
    for (batch, _) in in_flight {
        if let Ok(Err(error)) = batch.await {
            return Some(error.into());
        }
    }
    None
}

/// Batches of the log read ahead by a task of their own: each with the time its read took.
/// The task stops after the first empty batch or error, or when this is dropped.
struct ReadAhead {
    batches: tokio::sync::mpsc::Receiver<Result<(Vec<LoggedEvent>, Duration), ProjectionError>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadAhead {
    async fn next(&mut self) -> Option<Result<(Vec<LoggedEvent>, Duration), ProjectionError>> {
        self.batches.recv().await
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts reading the log after `after` on `connection`, `batch_size` events at a time (until
/// `until`), one batch ahead of the consumer.
fn read_ahead(
    mut connection: sqlx::pool::PoolConnection<sqlx::Postgres>,
    mut after: Checkpoint,
    batch_size: i64,
    until: Option<DateTime<Utc>>,
) -> ReadAhead {
    let (sender, batches) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(async move {
        loop {
            let started = Instant::now();
            match read_events_after(&mut connection, after, batch_size, until).await {
                Ok(events) => {
                    let last = events.last().map(Checkpoint::of);
                    if sender.send(Ok((events, started.elapsed()))).await.is_err() {
                        return;
                    }
                    match last {
                        Some(last) => after = last,
                        None => return,
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error.into())).await;
                    return;
                }
            }
        }
    });
    ReadAhead { batches, task }
}

/// A batch handed to the [`BatchWriter`]: the time its transaction took, once committed.
type Written = tokio::sync::oneshot::Receiver<Result<Duration, ProjectionError>>;

/// One staged batch for the writer, with where the run stands once it is committed.
struct WriteJob {
    encoded: Encoded,
    next: Checkpoint,
    count: u64,
    done: tokio::sync::oneshot::Sender<Result<Duration, ProjectionError>>,
}

/// The rebuild's batch writer: a connection of its own driven by a thread of its own (a
/// current-thread runtime), one batch at a time, in the order given.
///
/// A batch is ~45 round trips (two per `COPY`); as a task of the shared runtime, each answer
/// waited for a worker that was often busy decoding the reader's rows or relaying, and the
/// writer — the rebuild's critical path — sat idle in its transaction. On its own thread the
/// kernel wakes it as soon as PostgreSQL answers: a 1 M-event rebuild 9.50 → 8.97 s (mean of
/// 4 interleaved runs each; BENCHMARKS.md).
struct BatchWriter {
    jobs: tokio::sync::mpsc::UnboundedSender<WriteJob>,
}

impl BatchWriter {
    /// Connects (with the pool's options) on a new thread, which writes into `target` the
    /// batches it is handed, in order, until this is dropped and the batches already handed
    /// are written (each is whole and follows the last, so committing them keeps the run
    /// resumable), or until one fails; then it closes its connection.
    async fn start(pool: &PgPool, target: &str) -> Result<Self, ReplayError> {
        let options = pool.connect_options();
        let target = target.to_string();
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<WriteJob>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel::<Result<(), ReplayError>>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ReplayError::Writer(format!("cannot start its runtime: {e}")))?;
        std::thread::Builder::new()
            .name("replay-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut connection: PgConnection =
                        match sqlx::ConnectOptions::connect(&*options).await {
                            Ok(connection) => connection,
                            Err(error) => {
                                let _ = ready_tx.send(Err(error.into()));
                                return;
                            }
                        };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = queue.recv().await {
                        let written =
                            write_batch(&mut connection, job.encoded, &target, job.next, job.count)
                                .await;
                        let failed = written.is_err();
                        let _ = job.done.send(written);
                        // The batches queued behind a failed one must not commit: the run's
                        // checkpoint would pass rows that were never written.
                        if failed {
                            break;
                        }
                    }
                    let _ = sqlx::Connection::close(connection).await;
                })
            })
            .map_err(|e| ReplayError::Writer(format!("cannot start its thread: {e}")))?;
        ready
            .await
            .map_err(|_| ReplayError::Writer("it stopped while connecting".into()))??;
        Ok(Self { jobs })
    }

    /// Hands it a batch; the answer comes when the batch is committed (or failed).
    fn write(
        &self,
        encoded: Encoded,
        next: Checkpoint,
        count: u64,
    ) -> Result<Written, ReplayError> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.jobs
            .send(WriteJob {
                encoded,
                next,
                count,
                done,
            })
            .map_err(|_| ReplayError::Writer("it stopped".into()))?;
        Ok(written)
    }
}

/// Writes one staged batch and the run's checkpoint in one transaction; answers the time it took.
async fn write_batch(
    connection: &mut PgConnection,
    encoded: Encoded,
    target: &str,
    next: Checkpoint,
    count: u64,
) -> Result<Duration, ProjectionError> {
    let started = Instant::now();
    let mut tx =
        sqlx::Connection::begin_with(&mut *connection, format!("BEGIN; {BATCH_SETTINGS}")).await?;
    encoded.execute(&mut tx).await?;
    save_run_checkpoint(&mut tx, target, next, count as i64).await?;
    tx.commit().await?;
    Ok(started.elapsed())
}

async fn save_run_checkpoint(
    conn: &mut PgConnection,
    target: &str,
    checkpoint: Checkpoint,
    applied: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replay_run SET transaction_id = $2, global_position = $3, \
         events_applied = events_applied + $4, updated_at = now() WHERE target_schema = $1",
    )
    .bind(target)
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(applied)
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates `schema` with empty copies of every table of `projection` — columns, defaults,
/// checks and primary key, but no secondary index yet — and its migration-loaded reference
/// rows. Drops any previous copy.
pub async fn create_shadow(
    conn: &mut PgConnection,
    projection: &str,
    schema: &str,
) -> Result<(), ProjectionError> {
    let source = identifier(projection)?;
    let schema = identifier(schema)?;
    if schema == source {
        return Err(ProjectionError::Identifier(schema.to_string()));
    }
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut *tx)
        .await?;
    for table in TABLES {
        let name = table.name;
        sqlx::query(&format!(
            "CREATE TABLE \"{schema}\".\"{name}\" (LIKE \"{source}\".\"{name}\" \
             INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY \
             INCLUDING STORAGE INCLUDING COMMENTS)"
        ))
        .execute(&mut *tx)
        .await?;
        for (constraint, definition) in constraints(&mut tx, source, name, "p").await? {
            sqlx::query(&format!(
                "ALTER TABLE \"{schema}\".\"{name}\" ADD CONSTRAINT \"{constraint}\" {definition}"
            ))
            .execute(&mut *tx)
            .await?;
        }
        if table.reference {
            sqlx::query(&format!(
                "INSERT INTO \"{schema}\".\"{name}\" SELECT * FROM \"{source}\".\"{name}\" \
                 WHERE last_event_position IS NULL"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// `(name, definition)` of the constraints of kind `kind` (`p`, `u`, `x`) of `schema.table`.
async fn constraints(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    kind: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND t.relname = $2 AND c.contype = $3::\"char\" ORDER BY c.conname",
    )
    .bind(schema)
    .bind(table)
    .bind(kind)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The tables whose indexes a rebuild builds on its second connection, beside the others:
/// the largest (a generated log's contacts are a quarter of its rows and hold three indexes).
const BUILT_BESIDE: &[&str] = &["contact"];

/// Gives every table of `schema` the unique constraints and secondary indexes its live
/// counterpart in `projection` has, with the same names; only the tables `tables` picks
/// by name, in one transaction.
async fn build_indexes(
    conn: &mut PgConnection,
    projection: &str,
    schema: &str,
    tables: impl Fn(&str) -> bool,
) -> Result<(), ProjectionError> {
    let source = identifier(projection)?;
    let schema = identifier(schema)?;
    let mut tx = conn.begin().await?;
    let conn = &mut *tx;
    for table in TABLES.iter().filter(|table| tables(table.name)) {
        let name = table.name;
        for kind in ["u", "x"] {
            // A resumed run may have built them before it was interrupted.
            let built: Vec<String> = constraints(conn, schema, name, kind)
                .await?
                .into_iter()
                .map(|(constraint, _)| constraint)
                .collect();
            for (constraint, definition) in constraints(conn, source, name, kind).await? {
                if built.contains(&constraint) {
                    continue;
                }
                sqlx::query(&format!(
                    "ALTER TABLE \"{schema}\".\"{name}\" ADD CONSTRAINT \"{constraint}\" {definition}"
                ))
                .execute(&mut *conn)
                .await?;
            }
        }
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 AND t.relname = $2 \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
             ORDER BY i.indexrelid",
        )
        .bind(source)
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
        for definition in definitions {
            let from = format!(" ON {source}.{name} ");
            if !definition.contains(&from) {
                return Err(ProjectionError::Identifier(definition));
            }
            let sql = definition
                .replacen(&from, &format!(" ON \"{schema}\".\"{name}\" "), 1)
                .replacen(" INDEX ", " INDEX IF NOT EXISTS ", 1);
            sqlx::query(&sql).execute(&mut *conn).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Catches up and swaps the rebuilt tables in, in one transaction. Returns the checkpoint
/// the live projector continues from and how many events the catch-up applied.
async fn swap(
    conn: &mut PgConnection,
    request: &ReplayRequest,
    target: &str,
    mut checkpoint: Checkpoint,
    applied: u64,
) -> Result<(Checkpoint, u64), ReplayError> {
    let live = identifier(&request.projection)?.to_string();
    let retired = request.retired();
    identifier(&retired)?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(swap_lock_key(&live))
        .execute(&mut *tx)
        .await?;
    let mut caught_up = 0u64;
    loop {
        let events = read_events_after(&mut tx, checkpoint, request.batch_size, None).await?;
        let Some(last) = events.last() else { break };
        let next = Checkpoint::of(last);
        let mut sink = PgSink::new(target)?;
        project_events(&mut tx, &mut sink, &events).await?;
        save_run_checkpoint(&mut tx, target, next, events.len() as i64).await?;
        checkpoint = next;
        caught_up += events.len() as u64;
    }
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{retired}\" CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA \"{retired}\""))
        .execute(&mut *tx)
        .await?;
    for table in TABLES {
        sqlx::query(&format!(
            "ALTER TABLE \"{live}\".\"{}\" SET SCHEMA \"{retired}\"",
            table.name
        ))
        .execute(&mut *tx)
        .await?;
    }
    for table in TABLES {
        sqlx::query(&format!(
            "ALTER TABLE \"{target}\".\"{}\" SET SCHEMA \"{live}\"",
            table.name
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!("DROP SCHEMA \"{target}\""))
        .execute(&mut *tx)
        .await?;
    // The reference tables were swapped too: processes holding copies of their rows drop them.
    crate::postgres::notify_reference_change(&mut tx).await?;
    sqlx::query(
        "INSERT INTO projector_checkpoint (projector, transaction_id, global_position, events_applied, updated_at) \
         VALUES ($1, $2, $3, $4, now()) \
         ON CONFLICT (projector) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
         global_position = EXCLUDED.global_position, events_applied = EXCLUDED.events_applied, \
         updated_at = now()",
    )
    .bind(&live)
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind((applied + caught_up) as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE replay_run SET status = 'swapped', finished_at = now(), updated_at = now() \
         WHERE target_schema = $1",
    )
    .bind(target)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((checkpoint, caught_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(answer: Option<Result<Duration, ProjectionError>>) -> Written {
        let (done, written) = tokio::sync::oneshot::channel();
        if let Some(answer) = answer {
            let _ = done.send(answer);
        }
        written
    }

    #[tokio::test]
    async fn a_stopped_writer_reports_the_batch_that_failed_not_the_closed_queue() {
        let in_flight = VecDeque::from([
            (answered(Some(Ok(Duration::from_millis(1)))), 10),
            (
                answered(Some(Err(ProjectionError::Identifier("refused".into())))),
                10,
            ),
            // Dropped unanswered, as the writer leaves the batches behind a failed one.
            (answered(None), 10),
        ]);
        let error = first_failure(in_flight).await.expect("the failed batch");
        assert_eq!(error.to_string(), "invalid identifier \"refused\"");
        let none_failed = VecDeque::from([(answered(Some(Ok(Duration::ZERO))), 1)]);
        assert!(first_failure(none_failed).await.is_none());
    }
}
