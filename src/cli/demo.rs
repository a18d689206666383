//! `delius-bridge demo`: plays the fixtures end to end on the embedded default (no services)
//! and prints the audit timeline and the resulting Delius rows. Touches no database.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::{DemoArgs, OutputFormat};
use crate::crs;
use crate::engine::{Backend, Engine};
use crate::render;
use crate::seed;

/// The Refer and Monitor requests the demo plays after the seed.
const REQUESTS: &str = include_str!("../../fixtures/requests/refer-and-monitor.json");

#[derive(Deserialize)]
struct RequestFile {
    requests: Vec<Request>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Request {
    Referral {
        description: String,
        crn: String,
        body: crs::wire::ReferralStarted,
    },
    Appointment {
        description: String,
        crn: String,
        #[serde(rename = "referralId")]
        referral_id: Uuid,
        body: crs::wire::MergeAppointment,
    },
}

/// Plays the request fixture through the same service the HTTP handlers call (source `cli`,
/// actor `demo`); returns one line per request.
async fn play_requests(engine: &Engine) -> anyhow::Result<Vec<String>> {
    let file: RequestFile =
        serde_json::from_str(REQUESTS).context("reading the request fixture")?;
    let mut lines = Vec::new();
    for (i, request) in file.requests.into_iter().enumerate() {
        let metadata = projections::Metadata {
            message_id: format!("demo:request:{i}"),
            correlation_id: "demo".into(),
            causation_id: None,
            source: projections::Source::Cli,
            actor: "demo".into(),
            received_at: chrono::Utc::now(),
        };
        let line = match request {
            Request::Referral {
                description,
                crn,
                body,
            } => {
                crs::start_referral(engine, &crn, &body, &metadata).await?;
                format!("PUT /probation-case/{crn}/referrals → 204 ({description})")
            }
            Request::Appointment {
                description,
                crn,
                referral_id,
                body,
            } => {
                let id =
                    crs::merge_appointment(engine, &crn, referral_id, &body, &metadata).await?;
                format!(
                    "PUT /probation-case/{crn}/referrals/{referral_id}/appointments → {{\"appointmentId\": {id}}} ({description})"
                )
            }
        };
        lines.push(line);
    }
    Ok(lines)
}

/// Runs `demo`.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let file = match &args.seed {
        Some(path) => seed::read(path)?,
        None => seed::parse(super::serve::DEMO_SEED)?,
    };
    let engine = Engine::memory();
    let report = seed::load(&engine, &file, "seed:demo").await?;
    let played = play_requests(&engine).await?;
    let head = engine.head().await?;
    engine
        .wait_for_checkpoint(head, Duration::from_secs(30))
        .await?;
    let Backend::Memory { log, tables } = &engine.backend else {
        anyhow::bail!("the demo runs on the embedded default");
    };
    let events = log.read_after(Default::default(), usize::MAX)?;
    let tables = tables
        .read()
        .map_err(|_| anyhow::anyhow!("embedded tables lock poisoned"))?
        .clone();
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Table => {
            writeln!(
                out,
                "delius-bridge demo — embedded default, nothing is durable\n\nseed: {} commands changed Delius ({} events)\n",
                report.changed, report.events
            )?;
            for line in &played {
                writeln!(out, "played: {line}")?;
            }
            writeln!(
                out,
                "== Audit timeline ({} events)\n{}",
                events.len(),
                render::timeline(&events)
            )?;
            writeln!(out, "== Delius rows\n{}", render::delius(&tables))?;
        }
        OutputFormat::Json => {
            let timeline: Vec<_> = events
                .iter()
                .map(|e| {
                    json!({
                        "position": e.global_position,
                        "eventType": e.event_type,
                        "aggregate": format!("{}/{}", e.aggregate_type, e.aggregate_id),
                        "metadata": e.metadata,
                    })
                })
                .collect();
            let rows: serde_json::Map<String, serde_json::Value> = tables
                .table_names()
                .into_iter()
                .map(|name| (name.to_string(), json!(tables.rows(name))))
                .collect();
            serde_json::to_writer_pretty(&mut out, &json!({"timeline": timeline, "delius": rows}))?;
            writeln!(out)?;
        }
    }
    drop(out);
    engine.shutdown().await;
    Ok(())
}
