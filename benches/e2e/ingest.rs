//! The async figure: every generated message published to the real topology (exchange
//! `hmpps.domain-events` under a unique prefix), consumed by the service's own consumers and
//! handlers (R&M fetching detail from a wiremock interventions service, PCSTD), commands
//! committed, acked, and the Delius rows projected: messages per second from the first
//! publish until every message is committed and the projector has passed the log head.
//! Beside it, in the same run and with the same messages, prefetch and consumer count: the
//! bare lapin loop (ceiling) and the naive cqrs-es path (baseline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use delius_bridge::amqp::consumer::{ConsumerConfig, Consumers};
use delius_bridge::amqp::handler::OutcomeLog;
use delius_bridge::config::AmqpArgs;
use delius_bridge::upstream::{UpstreamClient, UpstreamConfig};
use delius_bridge::workload::{Message, Workload};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::watch;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::cpu::Usage;
use crate::figure::Figure;
use crate::setup::{amqp_url, settle, Service};
use crate::Options;

/// The service's defaults (`AMQP_PREFETCH`, `AMQP_CONSUMERS`); `--prefetch` overrides the first.
const PREFETCH: u16 = 64;
const CONSUMERS: u16 = 2;

/// The interventions service: answers each generated `detailUrl` from the workload.
struct Interventions(Arc<Workload>);

impl Respond for Interventions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match self.0.upstream_response(request.url.path()) {
            Some(body) => ResponseTemplate::new(200).set_body_json(body),
            None => ResponseTemplate::new(404),
        }
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let workload = Arc::new(Workload::new(options.seed.wrapping_add(1), options.people));
    // No one reads the requests the stub received, so it does not keep them (measured level
    // against keeping them, BENCHMARKS.md; the list would only grow with every message).
    let stub = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    Mock::given(method("GET"))
        .respond_with(Interventions(workload.clone()))
        .mount(&stub)
        .await;
    let messages = workload.messages(&stub.uri());
    let prefetch = if options.prefetch == 0 {
        PREFETCH
    } else {
        options.prefetch
    };
    eprintln!("async: {} messages, prefetch {prefetch}", messages.len());
    // The machine drifts by ±15 % within minutes and a round is a few seconds per path, so
    // the three paths take turns, round after round, and each figure is its median.
    let (mut reals, mut bares, mut naives) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpus: [Vec<Usage>; 3] = Default::default();
    for round in 1..=options.async_rounds {
        let service = Service::start(&workload, "async").await?;
        set_up_referrals(&service, &workload).await?;
        let (real, real_cpu) = real_path(&service, &messages, &stub.uri(), prefetch).await?;
        service.stop().await;
        crate::figure::print_metrics("async real path");
        let (bare, bare_cpu) =
            crate::lapin_loop::run("bare", &messages, prefetch, CONSUMERS.into(), |_| async {
                Ok(())
            })
            .await?;
        let (naive, naive_cpu) = crate::naive::run(
            &workload,
            &messages,
            &stub.uri(),
            prefetch,
            CONSUMERS.into(),
        )
        .await?;
        eprintln!(
            "async round {round}: real path {real:.1}, bare lapin loop {bare:.1}, \
             naive cqrs-es path {naive:.1} msg/s"
        );
        eprintln!(
            "cpu: async round {round}: real path {real_cpu}; bare lapin loop {bare_cpu}; \
             naive cqrs-es path {naive_cpu}"
        );
        for (all, cpu) in cpus.iter_mut().zip([real_cpu, bare_cpu, naive_cpu]) {
            all.push(cpu);
        }
        reals.push(real);
        bares.push(bare);
        naives.push(naive);
    }
    let (real, bare, naive) = (median(reals), median(bares), median(naives));
    eprintln!("async medians: real path {real:.1}, bare {bare:.1}, naive {naive:.1} msg/s");
    // At 0.6× the bare loop's rate on the machine's cores, a message may cost at most this
    // much CPU, everything included (the broker's share of it is in the bare loop's own).
    let cores = cpus[1].iter().map(|cpu| cpu.cores).fold(0.0, f64::max);
    let [real_cpu, bare_cpu, naive_cpu] = cpus.map(|all| {
        (
            median(all.iter().map(|cpu| cpu.us_per_op).collect()),
            median(all.iter().map(|cpu| cpu.busy_cores).collect()),
        )
    });
    eprintln!(
        "cpu: async medians (µs per message / busy cores): real path {:.0} / {:.2}, bare {:.0} / \
         {:.2}, naive {:.0} / {:.2}; at 0.6× the bare rate on {cores:.0} cores a message may cost \
         {:.0} µs",
        real_cpu.0,
        real_cpu.1,
        bare_cpu.0,
        bare_cpu.1,
        naive_cpu.0,
        naive_cpu.1,
        cores * 1e6 / (0.6 * bare),
    );
    Ok(vec![
        Figure::new("async_ingestion_throughput", real, "msg/s")
            .ceiling(bare)
            .baseline(naive),
        Figure::new("async_bare_lapin_loop", bare, "msg/s"),
        Figure::new("async_naive_cqrs_execute", naive, "msg/s"),
        Figure::new("async_ingestion_cpu_per_message", real_cpu.0, "us").ceiling(bare_cpu.0),
        Figure::new("async_ingestion_busy_cores", real_cpu.1, "cores").ceiling(bare_cpu.1),
        Figure::new("async_naive_cpu_per_message", naive_cpu.0, "us"),
    ])
}

/// The median of the rounds' rates (the mean of the middle two for an even count).
pub fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    match rates.len() {
        0 => 0.0,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    }
}

/// The R&M referrals and appointments the messages are about, through the HTTP API: eight
/// workers, each person's requests in order (one `Diary` per person).
pub async fn set_up_referrals(service: &Service, workload: &Workload) -> anyhow::Result<()> {
    let started = Instant::now();
    let requests = workload.sync_setup();
    let mut by_person: std::collections::BTreeMap<String, Vec<_>> = Default::default();
    for request in &requests {
        by_person
            .entry(request.crn.clone())
            .or_default()
            .push(request);
    }
    let people: Vec<Vec<_>> = by_person.into_values().collect();
    let chunks: Vec<&[Vec<_>]> = people.chunks(people.len().div_ceil(8).max(1)).collect();
    let mut results = Vec::new();
    for result in futures::future::join_all(chunks.into_iter().map(|chunk| async move {
        for person in chunk {
            for request in person {
                service.put(request).await?;
            }
        }
        anyhow::Ok(())
    }))
    .await
    {
        results.push(result);
    }
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    eprintln!(
        "async set-up: {} referral and appointment PUTs in {:.1?}",
        requests.len(),
        started.elapsed()
    );
    Ok(())
}

async fn real_path(
    service: &Service,
    messages: &[Message],
    stub: &str,
    prefetch: u16,
) -> anyhow::Result<(f64, Usage)> {
    let args = AmqpArgs {
        prefix: format!("bench-{}-", uuid::Uuid::new_v4().simple()),
        prefetch,
        consumers: CONSUMERS,
        retry_delays_ms: vec![1_000, 5_000, 30_000],
    };
    let names = delius_bridge::amqp::topology::Names::new(args.prefix.clone());
    let delays: Vec<Duration> = args
        .retry_delays_ms
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .collect();
    let config = ConsumerConfig::new(
        amqp_url(),
        args,
        OutcomeLog::for_backend(&service.engine.backend),
    );
    let upstream = UpstreamClient::from_config(UpstreamConfig::new([stub.to_string()]))?;
    let handlers = delius_bridge::handlers::registry(&service.engine, &upstream);
    let (stop, stopped) = watch::channel(false);
    let consumers = Consumers::start(config, handlers, stopped);
    if !consumers.wait_ready(Duration::from_secs(30)).await {
        bail!("consumers did not start");
    }
    let publisher = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = publisher.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let ids: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();

    if std::env::var_os("BENCH_PGSS_RESET").is_some() {
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-Atc",
                "SELECT pg_stat_statements_reset()",
            ])
            .status();
    }
    let before = handled_total();
    let sample = crate::cpu::Sample::now();
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        confirms.push(
            channel
                .basic_publish(
                    names.exchange().as_str().into(),
                    message.kind.event_type().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    message.body.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
        );
    }
    for confirm in confirms {
        let confirmation = confirm.await?;
        if !confirmation.is_ack() || confirmation.take_message().is_some() {
            bail!("a message was not routed");
        }
    }
    let deadline = started + Duration::from_secs(600);
    loop {
        // The consumers' own counter (in process, no database work) says when every message
        // was settled; only then does the database confirm it, so polling does not load
        // PostgreSQL while it is measured.
        if handled_total() - before < ids.len() as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let (ended, rejected) = ended(service, &ids).await?;
        if rejected > 0 {
            let reasons: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT event_type, reason FROM message_outcome \
                 WHERE outcome IN ('rejected', 'failed') AND message_id = ANY($1) LIMIT 5",
            )
            .bind(&ids)
            .fetch_all(&service.db.pool)
            .await?;
            bail!("{rejected} messages rejected or failed, e.g. {reasons:?}");
        }
        if ended >= ids.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {ended} of {} messages ended", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settle(&service.engine).await?;
    let elapsed = started.elapsed();
    let cpu = sample.usage(messages.len() as f64);
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(30), consumers.join())
        .await
        .context("consumers stop")?;
    delius_bridge::amqp::topology::delete(&publisher, &names, &delays).await;
    let _ = publisher.close(200, "OK".into()).await;
    Ok((messages.len() as f64 / elapsed.as_secs_f64(), cpu))
}

/// Every message the consumers of this process settled so far (the sum of
/// `delius_bridge_messages_total` over its labels).
fn handled_total() -> u64 {
    delius_bridge::metrics::install()
        .render()
        .lines()
        .filter(|line| line.starts_with(delius_bridge::metrics::MESSAGES_TOTAL))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// How many of `ids` have ended (committed, or acked as ignorable) and how many were
/// rejected or failed.
async fn ended(service: &Service, ids: &[String]) -> anyhow::Result<(usize, usize)> {
    let (ended, rejected): (i64, i64) = sqlx::query_as(
        "SELECT \
           (SELECT count(DISTINCT message_id) FROM command_log WHERE message_id = ANY($1)) + \
           (SELECT count(DISTINCT message_id) FROM message_outcome \
              WHERE outcome = 'ignored' AND message_id = ANY($1)), \
           (SELECT count(*) FROM message_outcome \
              WHERE outcome IN ('rejected', 'failed') AND message_id = ANY($1))",
    )
    .bind(ids)
    .fetch_one(&service.db.pool)
    .await?;
    Ok((ended as usize, rejected as usize))
}
