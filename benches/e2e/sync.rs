//! The sync figure: `PUT /probation-case/{crn}/referrals` (a new referral each time) answered
//! 204 only once the NSI and its contacts are visible in the Delius tables, at 1, 8 and 32
//! concurrent clients for a fixed time each: commands per second and p50/p99 latency; beside
//! pgbench's single-row insert commit rate (and average latency) at the same client count,
//! against a scratch table of the same database, measured right after; and beside pgbench
//! committing, one transaction per referral, the very rows one answered referral wrote (its
//! event, command-log row, NSI, NSI manager, status history and three contacts) into copies
//! of their tables with every index (`same_writes_script`): the database's own rate for one
//! referral's writes, without the service's batching.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use delius_bridge::workload::Workload;

use crate::cpu::{self, Usage};
use crate::figure::Figure;
use crate::setup::Service;
use crate::text::{parse_pgbench, percentile};
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
    /// pgbench committing the rows one referral writes, one transaction per referral.
    pub same_writes_tps: f64,
    pub same_writes_latency_ms: f64,
    /// The machine's CPU while the service's requests ran, per command; pgbench's per
    /// single-row transaction and per transaction of one referral's rows.
    pub cpu: Usage,
    pub pgbench_cpu: Usage,
    pub same_writes_cpu: Usage,
    /// The same clients sending `GET /health/liveness` (no database, no token) back to back
    /// for as long: HTTP itself, client and server, per request.
    pub http_per_second: f64,
    pub http_cpu: Usage,
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
            Figure::new(
                format!("sync_referral_c{c}_vs_same_writes"),
                self.per_second,
                "cmd/s",
            )
            .ceiling(self.same_writes_tps),
            Figure::new(
                format!("sync_referral_c{c}_p50_vs_same_writes"),
                self.p50_ms,
                "ms",
            )
            .ceiling(self.same_writes_latency_ms),
            Figure::new(
                format!("sync_referral_c{c}_cpu_per_command"),
                self.cpu.us_per_op,
                "us",
            )
            .ceiling(self.pgbench_cpu.us_per_op),
            Figure::new(
                format!("sync_referral_c{c}_cpu_per_command_vs_same_writes"),
                self.cpu.us_per_op,
                "us",
            )
            .ceiling(self.same_writes_cpu.us_per_op),
            Figure::new(
                format!("sync_referral_c{c}_busy_cores"),
                self.cpu.busy_cores,
                "cores",
            )
            .ceiling(self.pgbench_cpu.busy_cores),
            Figure::new(
                format!("sync_http_floor_c{c}_cpu_per_request"),
                self.http_cpu.us_per_op,
                "us",
            ),
            Figure::new(
                format!("sync_http_floor_c{c}_throughput"),
                self.http_per_second,
                "req/s",
            ),
        ]
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Level>> {
    crate::figure::install_metrics();
    let workload = Arc::new(Workload::new(options.seed, options.people));
    let service = Arc::new(Service::start(&workload, "sync").await?);
    let next = Arc::new(AtomicU64::new(0));
    let warmup = Duration::from_millis(if options.quick { 500 } else { 2_000 });
    let measure = Duration::from_secs(options.seconds);
    let mut levels = Vec::new();
    let mut total = 0usize;
    let mut same_writes = None;
    for &clients in LEVELS {
        drive(&service, &workload, &next, clients, warmup).await?;
        let sample = cpu::Sample::now();
        let answers = drive(&service, &workload, &next, clients, measure).await?;
        let cpu = sample.usage(answers.len() as f64);
        crate::figure::print_metrics(&format!("sync after {clients} clients"));
        eprintln!(
            "tail: {clients} clients, requests of ≥ 15 ms / answered, per 250 ms: {}",
            crate::text::slow_over_time(
                &answers,
                Duration::from_millis(250),
                Duration::from_millis(15)
            )
        );
        let mut latencies: Vec<Duration> = answers.into_iter().map(|(_, l)| l).collect();
        total = next.load(Ordering::SeqCst) as usize;
        latencies.sort();
        let per_second = latencies.len() as f64 / measure.as_secs_f64();
        let (pgbench_tps, pgbench_latency_ms, pgbench_cpu) =
            pgbench(&service.db.url, clients, options.seconds, PGBENCH_SCRIPT).await?;
        if same_writes.is_none() {
            same_writes = Some(same_writes_script(&service.db.pool).await?);
        }
        let script = same_writes.as_deref().unwrap_or_default();
        let (same_writes_tps, same_writes_latency_ms, same_writes_cpu) =
            pgbench(&service.db.url, clients, options.seconds, script).await?;
        let (http_per_second, http_cpu) = http_floor(&service, clients, measure).await?;
        let level = Level {
            clients,
            per_second,
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            pgbench_tps,
            pgbench_latency_ms,
            same_writes_tps,
            same_writes_latency_ms,
            cpu,
            pgbench_cpu,
            same_writes_cpu,
            http_per_second,
            http_cpu,
        };
        eprintln!("sync {level:?}");
        eprintln!(
            "cpu: sync, {clients} clients: service {cpu}; pgbench {pgbench_cpu}; \
             pgbench same writes {same_writes_cpu}; HTTP alone {http_cpu}"
        );
        levels.push(level);
    }
    verify(&service, total).await?;
    if let Ok(service) = Arc::try_unwrap(service) {
        service.stop().await;
    }
    Ok(levels)
}

/// `clients` tasks PUT referrals back to back for `duration`; when each request that started
/// within it was answered (from the start) and its latency.
async fn drive(
    service: &Arc<Service>,
    workload: &Arc<Workload>,
    next: &Arc<AtomicU64>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let (service, workload, next) = (service.clone(), workload.clone(), next.clone());
    closed_loop(clients, duration, move || {
        let (service, workload, next) = (service.clone(), workload.clone(), next.clone());
        async move {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let request = workload
                .nth_referral(i)
                .context("the workload has no community people")?;
            let started = Instant::now();
            service.put(&request).await?;
            Ok(started.elapsed())
        }
    })
    .await
}

/// `clients` tasks send `GET /health/liveness` back to back for `duration` with the bench's
/// HTTP client: the requests per second and the machine's CPU per request of HTTP alone.
async fn http_floor(
    service: &Arc<Service>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(f64, Usage)> {
    let url = format!("{}/health/liveness", service.base_url);
    let client = service.client.clone();
    let sample = cpu::Sample::now();
    let answered = closed_loop(clients, duration, move || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let response = client.get(&url).send().await?;
            if !response.status().is_success() {
                bail!("GET {url} answered {}", response.status());
            }
            response.bytes().await?;
            Ok(started.elapsed())
        }
    })
    .await?
    .len();
    let cpu = sample.usage(answered as f64);
    Ok((answered as f64 / duration.as_secs_f64(), cpu))
}

/// `clients` tasks each run `request` back to back until `duration` has passed; for every
/// request that started within it, when it was answered (from the start) and the latency
/// `request` measured.
async fn closed_loop<F, Fut>(
    clients: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<Vec<(Duration, Duration)>>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let begun = Instant::now();
    let deadline = begun + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let request = request.clone();
        tasks.spawn(async move {
            let mut answers = Vec::new();
            while Instant::now() < deadline {
                let latency = request().await?;
                answers.push((begun.elapsed(), latency));
            }
            anyhow::Ok(answers)
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

/// The tables the same-writes script writes: copies of the log's and of `delius`'s, with
/// their indexes, constraints, defaults and identity columns, in a schema of their own.
const SAME_WRITES_SCHEMA: &str = "same_writes";

/// A pgbench script that commits, one transaction per referral, the rows one answered
/// referral wrote: its event and command-log row (the bus's append) and every Delius row
/// its event projected (the projector's write), each as a literal `INSERT` of the sampled
/// row's values into copies of the tables (`same_writes.*`, every index included), with the
/// key made unique per transaction. No reads, no JSON row sets, no batching across
/// referrals: what PostgreSQL alone needs to make one referral's rows durable.
async fn same_writes_script(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    let (position, aggregate_id): (i64, String) = sqlx::query_as(
        "SELECT global_position, aggregate_id FROM events WHERE event_type = 'ReferralStarted' \
         ORDER BY global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .context("no referral was answered")?;
    let schema = SAME_WRITES_SCHEMA;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(pool)
        .await?;
    sqlx::query(&format!("CREATE SEQUENCE {schema}.ids"))
        .execute(pool)
        .await?;
    // (source table, key column and the expression that makes it unique, row filter)
    let unique = format!("'sw' || nextval('{schema}.ids')");
    let mut tables: Vec<(String, String, String, String)> = vec![
        (
            "public.events".into(),
            "aggregate_id".into(),
            unique.clone(),
            format!("global_position = {position}"),
        ),
        (
            "public.command_log".into(),
            "message_id".into(),
            unique.clone(),
            format!("aggregate_type = 'Referral' AND aggregate_id = '{aggregate_id}'"),
        ),
    ];
    for table in projections::TABLES.iter().filter(|t| !t.reference) {
        let written: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM delius.{} WHERE last_event_position = $1)",
            table.name
        ))
        .bind(position)
        .fetch_one(pool)
        .await?;
        if written {
            tables.push((
                format!("delius.{}", table.name),
                table.key.into(),
                format!("nextval('{schema}.ids')"),
                format!("last_event_position = {position}"),
            ));
        }
    }
    let mut script = String::from("BEGIN;\n");
    for (source, key, key_value, filter) in &tables {
        let name = source.rsplit('.').next().unwrap_or(source);
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{name} (LIKE {source} INCLUDING ALL)"
        ))
        .execute(pool)
        .await?;
        // Generated and defaulted columns of the log (position, transaction, time) are left
        // to their defaults, as the append leaves them.
        let inserts: Vec<String> = sqlx::query_scalar(&format!(
            "WITH sampled AS (SELECT row_number() OVER () AS row, row_to_json(r) AS columns \
                              FROM {source} r WHERE {filter}) \
             SELECT format('INSERT INTO {schema}.{name} (%s) VALUES (%s);', \
               string_agg(quote_ident(j.key), ', ' ORDER BY j.n), \
               string_agg(CASE WHEN j.key = $1 THEN $2 ELSE quote_nullable(j.value) END, ', ' ORDER BY j.n)) \
             FROM sampled s, json_each_text(s.columns) WITH ORDINALITY AS j(key, value, n) \
             WHERE j.key NOT IN ('global_position', 'transaction_id', 'recorded_at') \
             GROUP BY s.row"
        ))
        .bind(key)
        .bind(key_value)
        .fetch_all(pool)
        .await?;
        for insert in inserts {
            script.push_str(&insert);
            script.push('\n');
        }
    }
    script.push_str("COMMIT;\n");
    eprintln!(
        "same writes: {} inserts per transaction into {}",
        script.matches("INSERT INTO").count(),
        tables
            .iter()
            .map(|(source, ..)| source.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if std::env::var_os("BENCH_PRINT_SAME_WRITES").is_some() {
        eprintln!("{script}");
    }
    Ok(script)
}

/// pgbench's commit rate, average latency and the machine's CPU per transaction running
/// `script` (one transaction) with `clients` connections for `seconds` on the database at
/// `url`.
async fn pgbench(
    url: &str,
    clients: usize,
    seconds: u64,
    script: &str,
) -> anyhow::Result<(f64, f64, Usage)> {
    let pool = delius_bridge::engine::connect(url, 1).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS pgbench_scratch (id bigserial PRIMARY KEY, v int NOT NULL)",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    let body = script;
    let script = std::env::temp_dir().join(format!("delius-bench-{}.sql", std::process::id()));
    std::fs::write(&script, body)?;
    let pgbench = std::env::var("PGBENCH").unwrap_or_else(|_| "/usr/bin/pgbench".into());
    let sample = cpu::Sample::now();
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
    let (tps, latency, transactions) =
        parse_pgbench(&stdout).with_context(|| format!("unexpected pgbench output:\n{stdout}"))?;
    Ok((tps, latency, sample.usage(transactions)))
}
