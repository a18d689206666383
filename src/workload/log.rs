//! A large, realistic event log from a [`Workload`]: the workload is played through the real
//! command path — the seed loader, the Refer and Monitor service functions the HTTP handlers
//! call, and the message handlers the consumers call, with the interventions service answered
//! in process from [`Workload::upstream_response`] — on embedded engines, one per slice of
//! people (sharing one id allocator, so ids never repeat), and each slice's events are copied
//! into a PostgreSQL `events` table with `COPY`, one transaction per slice.
//!
//! The reference data is recorded by every slice's engine (the commands need it) but written
//! to PostgreSQL once, by the first slice. Used by the replay benchmark and the replay tests;
//! never by the service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::response::IntoResponse;
use sqlx::PgPool;
use uuid::Uuid;

use aggregates::common::{CountingIds, IdAllocator};
use aggregates::reference::ReferenceData;
use cqrs_es::Aggregate;
use projections::{Metadata, RecordedEvent, Source};

use super::Workload;
use crate::amqp::envelope::Envelope;
use crate::amqp::outcome::HandlerOutcome;
use crate::crs::{self, wire};
use crate::engine::{Backend, Engine};
use crate::upstream::{UpstreamClient, UpstreamConfig};

/// What [`write_log`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogReport {
    pub people: usize,
    pub events: u64,
    /// Messages by outcome: success, ignored, rejected, failed.
    pub outcomes: [u64; 4],
    pub elapsed: Duration,
}

/// Serves the workload's interventions-service answers on a loopback port; returns its base
/// URL. The server lives as long as the runtime.
async fn interventions(workload: Arc<Workload>) -> anyhow::Result<String> {
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let workload = workload.clone();
        async move {
            match workload.upstream_response(uri.path()) {
                Some(body) => axum::Json(body).into_response(),
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}

fn metadata(message_id: String) -> Metadata {
    Metadata {
        message_id,
        correlation_id: "workload".into(),
        causation_id: None,
        source: Source::Http,
        actor: "workload".into(),
        received_at: chrono::Utc::now(),
    }
}

/// Plays one slice on a fresh embedded engine; returns its events in global order.
async fn play_slice(
    slice: &Workload,
    ids: Arc<dyn IdAllocator>,
    upstream: &UpstreamClient,
    base: &str,
    outcomes: &mut [u64; 4],
) -> anyhow::Result<Vec<RecordedEvent>> {
    let engine = Arc::new(Engine::memory_with_ids(ids));
    let seed = slice.seed_file().context("the workload's seed file")?;
    crate::seed::load(&engine, &seed, "seed:workload").await?;
    for (i, request) in slice.sync_setup().into_iter().enumerate() {
        let id = Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("{}#{i}", request.path).as_bytes(),
        );
        let metadata = metadata(format!("http:{id}"));
        if request.path.ends_with("/referrals") {
            let body: wire::ReferralStarted = serde_json::from_value(request.body)?;
            crs::start_referral(&engine, &request.crn, &body, &metadata).await?;
        } else {
            let referral_id = request
                .path
                .split('/')
                .nth(4)
                .and_then(|s| Uuid::parse_str(s).ok())
                .with_context(|| format!("no referral id in {}", request.path))?;
            let body: wire::MergeAppointment = serde_json::from_value(request.body)?;
            crs::merge_appointment(&engine, &request.crn, referral_id, &body, &metadata).await?;
        }
    }
    let handlers = crate::handlers::registry(&engine, upstream);
    for message in slice.messages(base) {
        let envelope = Envelope::parse(message.body.as_bytes())
            .with_context(|| format!("parsing generated message {}", message.message_id))?;
        let handler = handlers.queues().find_map(|queue| {
            crate::amqp::topology::spec(queue)
                .filter(|spec| spec.binds(&envelope.event_type))
                .and_then(|_| handlers.get(queue))
        });
        let Some(handler) = handler else { continue };
        let slot = match handler.handle(&envelope).await {
            HandlerOutcome::Success { .. } => 0,
            HandlerOutcome::Ignored { .. } => 1,
            HandlerOutcome::Rejected { .. } => 2,
            HandlerOutcome::Failed { .. } => 3,
        };
        outcomes[slot] += 1;
    }
    // The handlers hold the engine too: drop them so that the engine (and its projector
    // task) can be shut down, not left polling beside the next slice's.
    drop(handlers);
    let events = match &engine.backend {
        Backend::Memory { log, .. } => log
            .read_after(projections::Checkpoint::default(), usize::MAX)
            .map_err(|e| anyhow::anyhow!("reading the slice's log: {e}"))?,
        Backend::Postgres(_) => anyhow::bail!("the generator plays on the embedded engine"),
    };
    Arc::into_inner(engine)
        .context("the slice's engine is still shared")?
        .shutdown()
        .await;
    Ok(events)
}

/// One CSV field: quoted, with quotes doubled.
fn csv(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// Appends `events` to the `events` table with `COPY … (FORMAT csv)` in one transaction.
async fn copy_events(pool: &PgPool, events: &[RecordedEvent]) -> anyhow::Result<()> {
    let mut rows = String::with_capacity(events.len() * 1024);
    for e in events {
        csv(&mut rows, &e.aggregate_type);
        rows.push(',');
        csv(&mut rows, &e.aggregate_id);
        rows.push(',');
        rows.push_str(&e.sequence.to_string());
        rows.push(',');
        csv(&mut rows, &e.event_type);
        rows.push(',');
        csv(&mut rows, &e.event_version);
        rows.push(',');
        csv(&mut rows, &e.payload.to_string());
        rows.push(',');
        csv(&mut rows, &e.metadata.to_string());
        rows.push('\n');
    }
    let mut tx = pool.begin().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata) FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    tx.commit().await?;
    Ok(())
}

/// Plays `workload` slice by slice (`slice_people` people each) and appends its events to
/// `pool`'s `events` table, calling `progress(people done, events written)` after each slice;
/// with `max_events`, stops after the slice that reaches it.
pub async fn write_log(
    pool: &PgPool,
    workload: Workload,
    slice_people: usize,
    max_events: Option<u64>,
    mut progress: impl FnMut(usize, u64),
) -> anyhow::Result<LogReport> {
    let started = Instant::now();
    let workload = Arc::new(workload);
    let base = interventions(workload.clone()).await?;
    let upstream = UpstreamClient::from_config(UpstreamConfig::new([base.clone()]))
        .context("building the upstream client")?;
    let ids: Arc<dyn IdAllocator> = Arc::new(CountingIds::default());
    let mut report = LogReport::default();
    let slice_people = slice_people.max(1);
    let mut start = 0;
    while start < workload.people().len() {
        let slice = workload.slice(start..start + slice_people);
        let mut events =
            play_slice(&slice, ids.clone(), &upstream, &base, &mut report.outcomes).await?;
        if start > 0 {
            events.retain(|e| e.aggregate_type != ReferenceData::TYPE);
        }
        copy_events(pool, &events).await?;
        report.events += events.len() as u64;
        start += slice_people;
        report.people = start.min(workload.people().len());
        progress(report.people, report.events);
        if max_events.is_some_and(|max| report.events >= max) {
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}
