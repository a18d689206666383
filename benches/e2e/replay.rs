//! The replay figure: a log of generated events ([`delius_bridge::workload::log`], ≥ 1 M in a
//! full run) rebuilt into every projection by the real binary (`delius-bridge replay
//! --projection delius --into …`, a child process so that its peak RSS is its own), beside
//! the ceiling — a plain ordered read of the events table in the same batches — and the
//! baseline — cqrs-es `QueryReplay` with a `Query` projecting each event into the same rows,
//! one event per dispatch, as the cqrs-es book wires it. The baseline is far slower, so it
//! runs for a fixed time and its rate is events dispatched per second of that time. The
//! rebuild runs `--replay-rounds` times (3 in a full run) on the same log, each into a fresh
//! schema after a checkpoint; its rate is their median and its peak RSS their largest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use cqrs_es::persist::QueryReplay;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, Query};
use delius_bridge::workload::{log, Workload, MAX_PEOPLE};
use postgres_es::PostgresEventRepository;
use projections::postgres::{read_events_after, PgSink};
use projections::{Checkpoint, RecordedEvent};
use sqlx::PgPool;

use crate::figure::Figure;
use crate::setup::Database;
use crate::Options;

/// Events per batch: the replay's default.
const BATCH: i64 = projections::replay::DEFAULT_BATCH;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let events_wanted: u64 = match (options.replay_events, options.quick) {
        (0, true) => 40_000,
        (0, false) => 1_000_000,
        (wanted, _) => wanted,
    };
    let db = Database::create("replay", 8).await?;
    delius_bridge::engine::MIGRATOR.run(&db.pool).await?;
    let outcome = measure(&db, options, events_wanted).await;
    if options.keep_replay_db {
        eprintln!("replay: database kept: DATABASE_URL={}", db.url);
    } else {
        db.drop_now().await;
    }
    outcome
}

async fn measure(db: &Database, options: &Options, wanted: u64) -> anyhow::Result<Vec<Figure>> {
    let workload = Workload::new(options.seed.wrapping_add(2), MAX_PEOPLE);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let generated = log::write_log(&db.pool, workload, 2_000, Some(wanted), |people, events| {
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("replay: generated {events} events for {people} people");
            last_report = Instant::now();
        }
    })
    .await?;
    eprintln!(
        "replay: generated {} events for {} people in {:.1?} (outcomes {:?})",
        generated.events,
        generated.people,
        started.elapsed(),
        generated.outcomes
    );
    // A log as a live one is when it is replayed: vacuumed, analysed, and written out (a
    // checkpoint, so that the gigabyte just generated is not flushed while it is measured).
    for settle in ["VACUUM ANALYZE events", "CHECKPOINT"] {
        sqlx::query(settle).execute(&db.pool).await?;
    }

    let read = ordered_read(&db.pool).await?;
    eprintln!("replay: plain ordered read {read:.0} events/s");
    let batch = if options.replay_batch > 0 {
        options.replay_batch
    } else {
        BATCH
    };
    // The machine drifts by ±10 % within minutes: the figure is the median of several
    // rebuilds of the same log (each into a fresh schema), every one printed.
    let (mut rates, mut peak_mb, mut events) = (Vec::new(), 0.0f64, 0);
    for round in 1..=options.replay_rounds {
        sqlx::query("DROP SCHEMA IF EXISTS bench_replay CASCADE")
            .execute(&db.pool)
            .await?;
        sqlx::query("CHECKPOINT").execute(&db.pool).await?;
        let (rate, peak, replayed) = replay_binary(db, batch).await?;
        eprintln!(
            "replay round {round}: {replayed} events at {rate:.0} events/s, peak RSS {peak:.1} MB"
        );
        rates.push(rate);
        peak_mb = peak_mb.max(peak);
        events = replayed;
    }
    let rate = crate::ingest::median(rates);
    eprintln!("replay: median {rate:.0} events/s of {events} events, peak RSS {peak_mb:.1} MB");
    let naive_time = if options.quick { 6 } else { 30 };
    let naive = query_replay(&db.pool, Duration::from_secs(naive_time)).await?;
    eprintln!("replay: cqrs-es QueryReplay {naive:.0} events/s");
    Ok(vec![
        Figure::new("replay_throughput", rate, "events/s")
            .ceiling(read)
            .baseline(naive),
        Figure::new("replay_peak_rss", peak_mb, "MB"),
        Figure::new("replay_events", events as f64, "events"),
        Figure::new("replay_plain_ordered_read", read, "events/s"),
        Figure::new("replay_cqrs_es_query_replay", naive, "events/s"),
    ])
}

/// Reads the whole log in global order in replay-sized batches, decoding nothing.
async fn ordered_read(pool: &PgPool) -> anyhow::Result<f64> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut checkpoint = Checkpoint::default();
    let mut count = 0u64;
    loop {
        let events = read_events_after(&mut conn, checkpoint, BATCH, None).await?;
        let Some(last) = events.last() else { break };
        checkpoint = Checkpoint::of(last);
        count += events.len() as u64;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Kilobytes of `VmHWM` (peak resident set) of process `pid`, while it runs.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `delius-bridge replay` on the database; returns (events/s, peak RSS MB, events).
async fn replay_binary(db: &Database, batch: i64) -> anyhow::Result<(f64, f64, u64)> {
    let batch = batch.to_string();
    let machine = crate::cpu::Sample::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_delius-bridge"))
        .args([
            "replay",
            "--projection",
            "delius",
            "--into",
            "bench_replay",
            "--no-progress",
            "--batch-size",
            &batch,
        ])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting delius-bridge replay")?;
    let pid = child.id().context("replay pid")?;
    let mut peak_kb = 0;
    let mut cpu = 0.0f64;
    let started = Instant::now();
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(seconds) = crate::cpu::process_seconds(pid) {
            cpu = cpu.max(seconds);
        }
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        out.read_to_string(&mut stdout).await?;
    }
    anyhow::ensure!(status.success(), "replay failed: {stdout}");
    if let Some(time) = stdout.lines().find(|l| l.starts_with("time:")) {
        eprintln!("replay: {time}");
    }
    eprintln!(
        "replay: the replay process used {cpu:.1} s of CPU in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // "replayed delius: N events in S s (R events/s), kept in schema …"
    let number_before = |marker: &str| -> Option<f64> {
        let end = stdout.find(marker)?;
        stdout[..end]
            .rsplit(|c: char| !(c.is_ascii_digit() || c == '.'))
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    let events = number_before(" events in").context("events in the replay's output")? as u64;
    let rate = number_before(" events/s").context("rate in the replay's output")?;
    // The replay process and PostgreSQL (its reader, writer and index builds) together.
    let usage = machine.usage(events as f64);
    eprintln!(
        "cpu: replay: {:.2} of {:.0} cores busy over {:.1} s, {:.1} µs of CPU per event \
         (the replay process and PostgreSQL)",
        usage.busy_cores, usage.cores, usage.wall_seconds, usage.us_per_op
    );
    Ok((rate, peak_kb as f64 / 1024.0, events))
}

/// The naive projector: each dispatched event decoded, projected and written through its own
/// connection and statements (no batching), into schema `naive`.
struct NaiveProjector {
    pool: PgPool,
    dispatched: Arc<AtomicU64>,
}

#[async_trait]
impl<A: Aggregate> Query<A> for NaiveProjector {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<A>]) {
        for event in events {
            let recorded = RecordedEvent {
                global_position: 0,
                transaction_id: 0,
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: aggregate_id.to_string(),
                sequence: event.sequence as i64,
                event_type: event.payload.event_type(),
                event_version: event.payload.event_version(),
                payload: serde_json::to_value(&event.payload).unwrap_or_default(),
                metadata: serde_json::to_value(&event.metadata).unwrap_or_default(),
                recorded_at: chrono::Utc::now(),
            };
            let (Ok(mut conn), Ok(mut sink)) = (self.pool.acquire().await, PgSink::new("naive"))
            else {
                return;
            };
            if projections::postgres::project_events(&mut conn, &mut sink, &[recorded])
                .await
                .is_ok()
            {
                self.dispatched.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn replay_type<A: Aggregate>(
    pool: &PgPool,
    dispatched: &Arc<AtomicU64>,
    time: Duration,
) -> anyhow::Result<()> {
    let query = NaiveProjector {
        pool: pool.clone(),
        dispatched: dispatched.clone(),
    };
    let replay = QueryReplay::<_, _, A>::new(PostgresEventRepository::new(pool.clone()), query)
        .with_upcasters(Vec::new());
    match tokio::time::timeout(time, replay.replay_all()).await {
        Ok(result) => result.map_err(|e| anyhow::anyhow!("QueryReplay of {}: {e}", A::TYPE)),
        Err(_) => Ok(()),
    }
}

/// cqrs-es `QueryReplay` of each aggregate type for a share of `time`; events per second.
async fn query_replay(pool: &PgPool, time: Duration) -> anyhow::Result<f64> {
    {
        let mut conn = pool.acquire().await?;
        projections::replay::create_shadow(&mut conn, "delius", "naive").await?;
    }
    let dispatched = Arc::new(AtomicU64::new(0));
    let share = time / 6;
    let started = Instant::now();
    replay_type::<aggregates::reference::ReferenceData>(pool, &dispatched, share).await?;
    replay_type::<aggregates::case::Case>(pool, &dispatched, share).await?;
    replay_type::<aggregates::custody::Custody>(pool, &dispatched, share).await?;
    replay_type::<aggregates::pom::PomAllocation>(pool, &dispatched, share).await?;
    replay_type::<aggregates::referral::Referral>(pool, &dispatched, share).await?;
    replay_type::<aggregates::diary::Diary>(pool, &dispatched, share).await?;
    Ok(dispatched.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
