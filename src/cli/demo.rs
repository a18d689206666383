//! `delius-bridge demo`: plays the fixtures end to end on the embedded default (no services)
//! and prints the audit timeline and the resulting Delius rows. Touches no database.

use std::io::Write;
use std::time::Duration;

use std::sync::Arc;

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

const UPSTREAM: &str = "fixtures/upstream/refer-and-monitor-and-delius";

/// The interventions service's simulated responses: (path, body).
const SIMULATIONS: &[(&str, &str)] = &[
    ("/referral/68df9f6c-3fcb-4ec6-8fcf-96551cd9b080/delivery-session-appointments/223e2d09-63d2-4b7e-a07e-b35c550e26cb",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/session-appointment-feedback-submitted-compliant.json")),
    ("/referral/68df9f6c-3fcb-4ec6-8fcf-96551cd9b080/delivery-session-appointments/52caa3e3-40b0-401a-babc-4d48cbd6e096",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/session-appointment-feedback-submitted-no-session.json")),
    ("/referral/89a3f79c-f12b-43de-9616-77ae19813cfe/delivery-session-appointments/4bca159d-785a-41ba-b96e-01ddd843485a",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/session-appointment-feedback-submitted-not-attended.json")),
    ("/referral/f56c5f7c-632f-4cad-a1b3-693541cb5f22/sessions/2",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/session-appointment-feedback-submitted.json")),
    ("/sent-referral/f56c5f7c-632f-4cad-a1b3-693541cb5f22",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/referral-prematurely-ended.json")),
    ("/sent-referral/71df9f6c-3fcb-4ec6-8fcf-96551cd9b080",
     include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/fuzzy-search-referral-ended.json")),
];

/// The example messages, in the order the demo plays them: (file, body).
const MESSAGES: &[(&str, &str)] = &[
    ("action-plan-submitted", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/action-plan-submitted.json")),
    ("action-plan-approved", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/action-plan-approved.json")),
    ("session-appointment-feedback-submitted-compliant", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted-compliant.json")),
    ("session-appointment-feedback-submitted-no-session", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted-no-session.json")),
    ("session-appointment-feedback-submitted-not-attended", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted-not-attended.json")),
    ("session-appointment-feedback-submitted-not-found", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted-not-found.json")),
    ("session-appointment-feedback-submitted", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted.json")),
    ("referral-prematurely-ended", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/referral-prematurely-ended.json")),
    ("fuzzy-search-referral-ended", include_str!("../../fixtures/upstream/refer-and-monitor-and-delius/messages/fuzzy-search-referral-ended.json")),
];

/// Serves [`SIMULATIONS`] on an ephemeral loopback port, in process: the demo needs no
/// services. Returns the base URL.
async fn simulated_interventions_service() -> anyhow::Result<String> {
    let mut router = axum::Router::new();
    for (path, body) in SIMULATIONS {
        let body = *body;
        router = router.route(
            path,
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}

/// Plays the Refer and Monitor example messages through the handler the consumer uses (the
/// in-process intake of the embedded default); returns one line per message with its outcome.
async fn play_messages(engine: &Arc<Engine>) -> anyhow::Result<Vec<String>> {
    let base = simulated_interventions_service().await?;
    let upstream =
        crate::upstream::UpstreamClient::from_config(crate::upstream::UpstreamConfig::new([
            base.clone()
        ]))
        .context("building the upstream client")?;
    let handler = crate::crs::events::ReferAndMonitor::new(engine.clone(), upstream);
    let mut lines = Vec::new();
    for (name, body) in MESSAGES {
        let body = body
            .replace("http://localhost:{wiremock.port}", &base)
            .replace("http://localhost:{dev.wiremock.port}", &base);
        let envelope = crate::amqp::envelope::Envelope::parse(body.as_bytes())
            .with_context(|| format!("parsing {UPSTREAM}/messages/{name}.json"))?;
        let outcome = match handler.handle(&envelope).await {
            crate::amqp::outcome::HandlerOutcome::Success { name, .. } => format!("acked ({name})"),
            crate::amqp::outcome::HandlerOutcome::Ignored { name, .. } => {
                format!("acked, ignored ({name})")
            }
            crate::amqp::outcome::HandlerOutcome::Rejected { reason } => {
                format!("dead-lettered: {reason}")
            }
            crate::amqp::outcome::HandlerOutcome::Failed { reason } => {
                format!("would be retried: {reason}")
            }
        };
        lines.push(format!(
            "message {name} [{}] → {outcome}",
            envelope.event_type
        ));
    }
    Ok(lines)
}

/// Runs `demo`.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let file = match &args.seed {
        Some(path) => seed::read(path)?,
        None => seed::parse(super::serve::DEMO_SEED)?,
    };
    let engine = Arc::new(Engine::memory());
    let report = seed::load(&engine, &file, "seed:demo").await?;
    let mut played = play_requests(&engine).await?;
    played.extend(play_messages(&engine).await?);
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
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    Ok(())
}
