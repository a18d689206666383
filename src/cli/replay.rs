//! `delius-bridge replay`: rebuilds a projection from the log (see
//! [`projections::replay`]). Safe while `serve` runs: live projectors keep running, the swap
//! is one transaction, and an interrupted rebuild resumes from its last committed batch when
//! run again with the same options.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use projections::replay::{self, Progress, ReplayRequest};

use crate::config::{Cli, ReplayArgs};

/// A progress bar on stderr with events/s and ETA, plus a log line every 10 % for logs.
struct Bar {
    bar: ProgressBar,
    next_log: u64,
}

impl Bar {
    fn new(hidden: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self { bar, next_log: 0 }
    }
}

impl Progress for Bar {
    fn start(&mut self, target: &str, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        self.bar.reset_eta();
        self.bar.set_message("rebuild");
        tracing::info!(target, done, total, "rebuild started");
        self.next_log = done + total / 10;
    }

    fn advance(&mut self, done: u64) {
        if done > self.bar.length().unwrap_or(0) {
            self.bar.set_length(done);
        }
        self.bar.set_position(done);
        if done >= self.next_log {
            let total = self.bar.length().unwrap_or(done);
            tracing::info!(
                done,
                total,
                per_sec = self.bar.per_sec() as u64,
                "rebuilding"
            );
            self.next_log = done + (total / 10).max(1);
        }
    }

    fn phase(&mut self, name: &str) {
        self.bar.set_message(name.to_string());
        tracing::info!(phase = name, "rebuild");
    }
}

/// Runs `replay`.
pub async fn run(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<()> {
    // The embedded default keeps no log to replay.
    let pool = super::migrated_pool(cli, "replay", 4).await?;
    let projections: Vec<String> = match (&args.projection, args.all) {
        (Some(name), _) => vec![name.clone()],
        (None, _) => replay::PROJECTIONS.iter().map(|p| p.to_string()).collect(),
    };
    if args.into.is_some() && projections.len() > 1 {
        anyhow::bail!("--into names one schema: give one --projection with it");
    }
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    );
    let mut out = std::io::stdout();
    for projection in projections {
        let request = ReplayRequest {
            projection,
            until: args.until,
            into: args.into.clone(),
            batch_size: args.batch_size,
            throttle: Duration::from_millis(args.throttle_ms),
            fresh: args.fresh,
            requested_by: actor.clone(),
        };
        let mut bar = Bar::new(args.no_progress);
        let report = replay::replay(&pool, &request, &mut bar).await;
        bar.bar.finish_and_clear();
        let report = report.with_context(|| format!("replaying {}", request.projection))?;
        let secs = report.elapsed.as_secs_f64().max(1e-9);
        let rate = (report.events - report.resumed_at) as f64 / secs;
        let place = if report.swapped {
            format!(
                "swapped into {} (old tables kept in {})",
                request.projection,
                request.retired()
            )
        } else {
            format!("kept in schema {}", report.target_schema)
        };
        writeln!(
            out,
            "replayed {}: {} events{} in {:.1}s ({:.0} events/s), {place}; run {}",
            request.projection,
            report.events,
            if report.resumed_at > 0 {
                format!(" (resumed at {})", report.resumed_at)
            } else {
                String::new()
            },
            secs,
            rate,
            report.run_id
        )?;
        let t = report.timings;
        writeln!(
            out,
            "time: read {:.1}s, decode+project+encode {:.1}s, write {:.1}s, indexes {:.1}s, swap {:.1}s",
            t.read.as_secs_f64(),
            t.project.decode_and_project.as_secs_f64(),
            t.project.write.as_secs_f64(),
            t.indexes.as_secs_f64(),
            t.swap.as_secs_f64()
        )?;
        if args.compare {
            let against = if report.swapped {
                request.retired()
            } else {
                report.target_schema.clone()
            };
            let mut conn = pool.acquire().await?;
            let differences =
                projections::checksum::compare_schemas(&mut conn, &request.projection, &against)
                    .await?;
            if differences.is_empty() {
                writeln!(
                    out,
                    "{} and {against} hold the same rows",
                    request.projection
                )?;
            } else {
                for d in &differences {
                    writeln!(
                        out,
                        "differs: {} ({} {} vs {against} {})",
                        d.table, request.projection, d.left, d.right
                    )?;
                }
            }
        }
    }
    Ok(())
}
