//! `delius-bridge dead-letters list|show|redrive`: the dead-letter queues for support staff.
//! Safe while `serve` runs: listing and showing requeue every message they browse; a re-drive
//! removes a dead letter only after the broker confirmed its copy on the queue.
//!
//! ```text
//! delius-bridge dead-letters list [--queue Q] [--format table|json]
//! delius-bridge dead-letters show MESSAGE_ID [--queue Q] [--format table|json]
//! delius-bridge dead-letters redrive MESSAGE_ID | --all [--queue Q]
//! ```
//!
//! Reads `AMQP_URL` and `AMQP_PREFIX` (or `--amqp-url`, `--amqp-prefix`).

use std::io::Write;

use anyhow::Context;

use crate::amqp::dead_letters::{DeadLetter, DeadLetterDetail, DeadLetters};
use crate::amqp::Broker;
use crate::config::{DeadLettersArgs, DeadLettersCommand, OutputFormat};
use crate::render;

/// Runs `dead-letters`.
pub async fn run(args: &DeadLettersArgs) -> anyhow::Result<()> {
    let broker = Broker::connect(&args.amqp_url)
        .await
        .context("connecting to the broker (AMQP_URL)")?;
    let dead_letters = DeadLetters::new(broker.clone(), &args.prefix);
    let result = execute(&dead_letters, &args.command).await;
    broker.close().await;
    result
}

async fn execute(dead_letters: &DeadLetters, command: &DeadLettersCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        DeadLettersCommand::List { queue, format } => {
            let found = dead_letters.list(queue.as_deref()).await?;
            match format {
                OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?,
                OutputFormat::Table => write!(out, "{}", table(&found))?,
            }
        }
        DeadLettersCommand::Show {
            message_id,
            queue,
            format,
        } => {
            let found = dead_letters.show(message_id, queue.as_deref()).await?;
            if found.is_empty() {
                anyhow::bail!("no dead letter with message id {message_id}");
            }
            match format {
                OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?,
                OutputFormat::Table => {
                    for detail in &found {
                        write!(out, "{}", text(detail))?;
                    }
                }
            }
        }
        DeadLettersCommand::Redrive {
            message_id,
            all,
            queue,
        } => {
            let redriven = match (message_id, all) {
                (Some(id), false) => {
                    let n = dead_letters.redrive(id, queue.as_deref()).await?;
                    if n == 0 {
                        anyhow::bail!("no dead letter with message id {id}");
                    }
                    n
                }
                (None, true) => dead_letters.redrive_all(queue.as_deref()).await?,
                _ => anyhow::bail!("give a MESSAGE_ID or --all"),
            };
            writeln!(out, "re-driven: {redriven}")?;
        }
    }
    Ok(())
}

/// The dead letters as a table.
pub fn table(found: &[DeadLetter]) -> String {
    let headers = [
        "queue",
        "message id",
        "event type",
        "attempts",
        "dead-lettered at",
        "reason",
    ]
    .map(str::to_owned);
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|d| {
            vec![
                d.queue.clone(),
                d.message_id.clone(),
                d.event_type.clone().unwrap_or_default(),
                d.attempts.map(|n| n.to_string()).unwrap_or_default(),
                d.dead_lettered_at
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                d.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = render::table(&headers, &rows);
    out.push_str(&format!("{} dead letter(s)\n", found.len()));
    out
}

/// One dead letter as labelled lines and its body.
fn text(detail: &DeadLetterDetail) -> String {
    let d = &detail.summary;
    let field = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    format!(
        "queue:            {}\nmessage id:       {}\nevent type:       {}\nattempts:         {}\n\
         dead-lettered at: {}\nreason:           {}\nbody:\n{}\n\n",
        d.queue,
        d.message_id,
        field(d.event_type.clone()),
        field(d.attempts.map(|n| n.to_string())),
        field(d.dead_lettered_at.map(|at| at.to_rfc3339())),
        field(d.reason.clone()),
        pretty(&detail.body),
    )
}

/// The body pretty-printed when it is JSON.
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}
