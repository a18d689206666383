//! The sync figure: `PUT /probation-case/{crn}/referrals` (a new referral each time) answered
//! 204 only once the NSI and its contacts are visible in the Delius tables, at 1, 8 and 32
//! concurrent clients for a fixed time each: commands per second and p50/p99 latency; beside
//! pgbench's single-row insert commit rate (and average latency) at the same client count,
//! against a scratch table of the same database, measured right after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use delius_bridge::workload::Workload;

use crate::figure::Figure;
use crate::setup::{percentile, Service};
use crate::Options;

pub const LEVELS: &[usize] = &[1, 8, 32];

/// One concurrency level, measured.
#[derive(Debug, Clone)]
pub struct Level {
    pub clients: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub pgbench_tps: f64,
    pub pgbench_latency_ms: f64,
}

impl Level {
    pub fn figures(&self) -> Vec<Figure> {
        let c = self.clients;
        vec![
            Figure::new(
                format!("sync_referral_c{c}_throughput"),
                self.per_second,
                "cmd/s",
            )
            .ceiling(self.pgbench_tps),
            Figure::new(format!("sync_referral_c{c}_p50"), self.p50_ms, "ms")
                .ceiling(self.pgbench_latency_ms),
            Figure::new(format!("sync_referral_c{c}_p99"), self.p99_ms, "ms")
                .ceiling(self.pgbench_latency_ms),
        ]
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Level>> {
    let workload = Arc::new(Workload::new(options.seed, options.people));
    let service = Arc::new(Service::start(&workload, "sync").await?);
    let next = Arc::new(AtomicU64::new(0));
    let warmup = Duration::from_millis(if options.quick { 500 } else { 2_000 });
    let measure = Duration::from_secs(options.seconds);
    let mut levels = Vec::new();
    let mut total = 0usize;
    for &clients in LEVELS {
        drive(&service, &workload, &next, clients, warmup).await?;
        let mut latencies = drive(&service, &workload, &next, clients, measure).await?;
        total = next.load(Ordering::SeqCst) as usize;
        latencies.sort();
        let per_second = latencies.len() as f64 / measure.as_secs_f64();
        let (pgbench_tps, pgbench_latency_ms) =
            pgbench(&service.db.url, clients, options.seconds).await?;
        let level = Level {
            clients,
            per_second,
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            pgbench_tps,
            pgbench_latency_ms,
        };
        eprintln!("sync {level:?}");
        levels.push(level);
    }
    verify(&service, total).await?;
    if let Ok(service) = Arc::try_unwrap(service) {
        service.stop().await;
    }
    Ok(levels)
}

/// `clients` tasks PUT referrals back to back for `duration`; the latencies of the requests
/// that started within it.
async fn drive(
    service: &Arc<Service>,
    workload: &Arc<Workload>,
    next: &Arc<AtomicU64>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (service, workload, next) = (service.clone(), workload.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let request = workload
                    .nth_referral(i)
                    .context("the workload has no community people")?;
                let started = Instant::now();
                service.put(&request).await?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    Ok(all)
}

/// Every answered referral is an NSI with its three contacts (NREF, C091, NCOM).
async fn verify(service: &Service, referrals: usize) -> anyhow::Result<()> {
    let nsis: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.nsi")
        .fetch_one(&service.db.pool)
        .await?;
    let contacts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM delius.contact WHERE nsi_id IS NOT NULL")
            .fetch_one(&service.db.pool)
            .await?;
    if nsis as usize != referrals || contacts as usize != 3 * referrals {
        bail!("{referrals} referrals answered but {nsis} NSIs and {contacts} contacts visible");
    }
    eprintln!("verified: {nsis} NSIs, {contacts} contacts");
    Ok(())
}

const PGBENCH_SCRIPT: &str = "INSERT INTO pgbench_scratch (v) VALUES (1);\n";

/// pgbench's commit rate and average latency for single-row inserts with `clients`
/// connections for `seconds` on the database at `url`.
async fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let pool = delius_bridge::engine::connect(url, 1).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS pgbench_scratch (id bigserial PRIMARY KEY, v int NOT NULL)",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    let script = std::env::temp_dir().join(format!("delius-bench-{}.sql", std::process::id()));
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let pgbench = std::env::var("PGBENCH").unwrap_or_else(|_| "/usr/bin/pgbench".into());
    let output = tokio::process::Command::new(&pgbench)
        .arg("-n")
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &seconds.to_string()])
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .await
        .with_context(|| format!("running {pgbench}"))?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_pgbench(&stdout).with_context(|| format!("unexpected pgbench output:\n{stdout}"))
}

/// `tps = N (without initial connection time)` and `latency average = N ms`.
fn parse_pgbench(stdout: &str) -> Option<(f64, f64)> {
    let number_after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some((number_after("tps = ")?, number_after("latency average = ")?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgbench_output_parses() {
        let out = "number of transactions actually processed: 100\nlatency average = 0.512 ms\n\
                   initial connection time = 3.1 ms\ntps = 1953.2 (without initial connection time)\n";
        assert_eq!(super::parse_pgbench(out), Some((1953.2, 0.512)));
    }
}
