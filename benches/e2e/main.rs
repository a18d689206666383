//! The end-to-end benchmark: drives the real service in process — the engine on a fresh
//! PostgreSQL database it creates and drops, the axum router on a loopback port, the real
//! RabbitMQ under a unique name prefix, wiremock for the interventions service, bearer JWTs
//! signed with the test keys — and measures each figure beside its ceiling (and baseline) in
//! the same run. Prints one JSON line per figure on stdout:
//! `{"name","value","unit","ceiling","ratio","baseline","speedup"}` (null where not
//! applicable); progress goes to stderr.
//!
//! ```sh
//! cargo bench --bench e2e -- [--quick] [--figures sync,async,replay] [--plot PATH]
//!                            [--people N] [--seconds S] [--seed N] [--async-rounds N]
//!                            [--replay-events N] [--replay-batch N] [--keep-replay-db]
//! ```
//! `DATABASE_URL` (a database the bench can `CREATE DATABASE` from) and `AMQP_URL` as for the
//! tests; `PGBENCH` (default `/usr/bin/pgbench`).

mod cpu;
mod figure;
mod ingest;
mod lapin_loop;
mod naive;
mod plot;
mod replay;
mod setup;
mod sync;
mod text;

use std::time::Duration;

use anyhow::{bail, Context};

use figure::Figure;

// The same allocator as the `delius-bridge` binary, so the in-process engine is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub figures: Vec<String>,
    pub plot: Option<String>,
    /// People in the generated workload.
    pub people: usize,
    /// Measured seconds per sync concurrency level (and pgbench's `-T`).
    pub seconds: u64,
    /// Workload seed.
    pub seed: u64,
    /// Events per batch of the replay figure (the replay's default when 0).
    pub replay_batch: i64,
    /// Keep the replay figure's database (its URL is printed) for profiling the replay alone.
    pub keep_replay_db: bool,
    /// Events to generate for the replay figure (40 000 quick, 1 000 000 full when 0).
    pub replay_events: u64,
    /// Rounds of the async figure (each: service path, bare loop, naive path); each figure is
    /// the median of its rounds (1 quick, 3 full when 0).
    pub async_rounds: usize,
    /// Rebuilds of the generated log for the replay figure: its rate is their median, its
    /// peak RSS their largest (1 quick, 3 full when 0).
    pub replay_rounds: usize,
    /// Deliveries each async consumer holds at once (`AMQP_PREFETCH`), the same for the
    /// service's path, the bare loop and the naive path (the service's default when 0).
    pub prefetch: u16,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut options = Options {
            quick: false,
            figures: vec!["sync".into(), "async".into(), "replay".into()],
            plot: None,
            people: 0,
            seconds: 0,
            seed: 7,
            replay_batch: 0,
            keep_replay_db: false,
            replay_events: 0,
            async_rounds: 0,
            replay_rounds: 0,
            prefetch: 0,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--figures" => {
                    options.figures = value("--figures")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "--plot" => options.plot = Some(value("--plot")?),
                "--people" => options.people = value("--people")?.parse()?,
                "--seconds" => options.seconds = value("--seconds")?.parse()?,
                "--seed" => options.seed = value("--seed")?.parse()?,
                "--replay-batch" => options.replay_batch = value("--replay-batch")?.parse()?,
                "--keep-replay-db" => options.keep_replay_db = true,
                "--replay-events" => options.replay_events = value("--replay-events")?.parse()?,
                "--async-rounds" => options.async_rounds = value("--async-rounds")?.parse()?,
                "--replay-rounds" => options.replay_rounds = value("--replay-rounds")?.parse()?,
                "--prefetch" => options.prefetch = value("--prefetch")?.parse()?,
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                other => bail!("unknown argument {other}"),
            }
        }
        for figure in &options.figures {
            if !["sync", "async", "replay"].contains(&figure.as_str()) {
                bail!("unknown figure {figure} (sync, async, replay)");
            }
        }
        if options.people == 0 {
            options.people = if options.quick { 600 } else { 3_000 };
        }
        if options.seconds == 0 {
            options.seconds = if options.quick { 4 } else { 15 };
        }
        if options.async_rounds == 0 {
            options.async_rounds = if options.quick { 1 } else { 3 };
        }
        if options.replay_rounds == 0 {
            options.replay_rounds = if options.quick { 1 } else { 3 };
        }
        Ok(options)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = Options::parse(std::env::args().skip(1))?;
    let started = std::time::Instant::now();
    let mut figures: Vec<Figure> = Vec::new();
    for name in options.figures.clone() {
        match name.as_str() {
            "sync" => {
                let measured = sync::run(&options).await?;
                if let Some(path) = &options.plot {
                    plot::sync_png(path, &measured)?;
                    eprintln!("plot written to {path}");
                }
                figures.extend(measured.iter().flat_map(sync::Level::figures));
            }
            "async" => figures.extend(ingest::run(&options).await?),
            _ => figures.extend(replay::run(&options).await?),
        }
    }
    for figure in &figures {
        figure.print()?;
    }
    eprintln!(
        "e2e bench finished in {:.1?}",
        Duration::from_secs_f64(started.elapsed().as_secs_f64())
    );
    Ok(())
}
