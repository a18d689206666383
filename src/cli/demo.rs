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
const PRISON_UPSTREAM: &str = "fixtures/upstream/prison-custody-status-to-delius";

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

/// The prison custody status example messages, in the order the demo plays them: (file,
/// body). `prisoner-matched-with-pom` shows the rollback (its case is deliberately
/// inconsistent), `prisoner-moved` is the legacy sample no queue is bound to.
const PRISON_MESSAGES: &[(&str, &str)] = &[
    ("prisoner-released", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released.json")),
    ("prisoner-released-historic", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released-historic.json")),
    ("prisoner-released-hospital-historic", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released-hospital-historic.json")),
    ("prisoner-received", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received.json")),
    ("prisoner-received-new-custody", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-new-custody.json")),
    ("prisoner-received-hospital-released", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-hospital-released.json")),
    ("prisoner-received-recalled", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-recalled.json")),
    ("prisoner-received-hospital-custody", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-hospital-custody.json")),
    ("prisoner-received-rotl", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-rotl.json")),
    ("prisoner-received-irc-custody", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-irc-custody.json")),
    ("prisoner-received-ecslirc-custody", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-received-ecslirc-custody.json")),
    ("prisoner-released-ecsl-active", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released-ecsl-active.json")),
    ("prisoner-released-ecsl-inactive", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released-ecsl-inactive.json")),
    ("prisoner-released-admin-merge", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released-admin-merge.json")),
    ("prisoner-died", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-died.json")),
    ("prisoner-matched", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-matched.json")),
    ("prisoner-matched-with-pom", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-matched-with-pom.json")),
    ("prisoner-moved", include_str!("../../fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-moved.json")),
];

const PRISON_BOOKING: &str = include_str!(
    "../../fixtures/upstream/prison-custody-status-to-delius/simulations/__files/booking_1208804.json"
);
const PRISON_MOVEMENT: &str = include_str!(
    "../../fixtures/upstream/prison-custody-status-to-delius/simulations/__files/movement_1208804.json"
);

/// Serves [`SIMULATIONS`] (the interventions service) and the Prison API samples (booking
/// 1208804 and its latest movement, for A5295DZ and B5295DZ) on an ephemeral loopback port,
/// in process: the demo needs no services. Returns the base URL.
async fn simulated_upstreams() -> anyhow::Result<String> {
    use axum::routing::{get, post};
    let json = |body: String| {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
    };
    let mut router = axum::Router::new();
    for (path, body) in SIMULATIONS {
        let body = *body;
        router = router.route(path, get(move || async move { json(body.to_string()) }));
    }
    fn with_noms(sample: &str, noms: &str) -> anyhow::Result<serde_json::Value> {
        let mut value: serde_json::Value = serde_json::from_str(sample)?;
        value["offenderNo"] = json!(noms);
        Ok(value)
    }
    for noms in ["A5295DZ", "B5295DZ"] {
        let booking = with_noms(PRISON_BOOKING, noms)?.to_string();
        router = router.route(
            &format!("/api/bookings/offenderNo/{noms}"),
            get(move || async move { json(booking) }),
        );
    }
    // The latest movement of the NOMS number in the body, as the Prison API answers it.
    router = router.route(
        "/api/movements/offenders",
        post(|axum::Json(numbers): axum::Json<Vec<String>>| async move {
            let movements: Vec<serde_json::Value> = numbers
                .iter()
                .filter(|n| ["A5295DZ", "B5295DZ"].contains(&n.as_str()))
                .filter_map(|n| with_noms(PRISON_MOVEMENT, n).ok())
                .collect();
            axum::Json(movements)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}

/// What a message came to, for people.
fn describe(outcome: &crate::amqp::outcome::HandlerOutcome) -> String {
    use crate::amqp::outcome::HandlerOutcome;
    match outcome {
        HandlerOutcome::Success { name, .. } => format!("acked ({name})"),
        HandlerOutcome::Ignored { name, .. } => format!("acked, ignored ({name})"),
        HandlerOutcome::Rejected { reason } => format!("dead-lettered: {reason}"),
        HandlerOutcome::Failed { reason } => format!("would be retried: {reason}"),
    }
}

/// Plays example messages through the handler the consumer uses (the in-process intake of
/// the embedded default); returns one line per message with its outcome. A message id the
/// fixtures reuse for another message is replaced by one derived from the file name.
async fn play(
    handler: &dyn crate::amqp::handler::MessageHandler,
    topology_queue: &str,
    folder: &str,
    messages: &[(&str, &str)],
    base: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (name, body) in messages {
        let body = body
            .replace("http://localhost:{wiremock.port}", base)
            .replace("http://localhost:{dev.wiremock.port}", base);
        let mut envelope = crate::amqp::envelope::Envelope::parse(body.as_bytes())
            .with_context(|| format!("parsing {folder}/messages/{name}.json"))?;
        if !seen.insert(envelope.message_id.clone()) {
            envelope.message_id = Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).to_string();
        }
        let bound = crate::amqp::topology::spec(topology_queue)
            .is_some_and(|spec| spec.binds(&envelope.event_type));
        let outcome = if bound {
            describe(&handler.handle(&envelope).await)
        } else {
            format!("not routed to {topology_queue} (no binding for this event type)")
        };
        lines.push(format!(
            "message {name} [{}] → {outcome}",
            envelope.event_type
        ));
    }
    Ok(lines)
}

/// Plays the Refer and Monitor and the prison custody status example messages.
async fn play_messages(engine: &Arc<Engine>) -> anyhow::Result<Vec<String>> {
    let base = simulated_upstreams().await?;
    let upstream =
        crate::upstream::UpstreamClient::from_config(crate::upstream::UpstreamConfig::new([
            base.clone()
        ]))
        .context("building the upstream client")?;
    let mut seen = std::collections::BTreeSet::new();
    let crs = crate::crs::events::ReferAndMonitor::new(engine.clone(), upstream.clone());
    let mut lines = play(
        &crs,
        crate::amqp::topology::REFER_AND_MONITOR,
        UPSTREAM,
        MESSAGES,
        &base,
        &mut seen,
    )
    .await?;
    let prison = crate::pcstd::PrisonCustodyStatus::new(
        engine.clone(),
        upstream,
        Some(base.clone()),
        aggregates::custody::movement::FeatureFlags::all_on(),
    );
    lines.extend(
        play(
            &prison,
            crate::amqp::topology::PRISON_CUSTODY_STATUS,
            PRISON_UPSTREAM,
            PRISON_MESSAGES,
            &base,
            &mut seen,
        )
        .await?,
    );
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
