//! The naive baseline of the async figure: the same messages handled by the service's own
//! handlers (the same lookups, the same upstream calls to the stub, the same aggregates and
//! commands), with every command stored and projected the way the cqrs-es book does it — the
//! bus on the cqrs-es reference backend (`delius_bridge::store::cqrs_book`): per command
//! `load_aggregate` on a postgres-es event store, `handle`, `commit` (one transaction, an
//! INSERT per event), then a postgres-es `GenericQuery` view of the Delius rows the events
//! project to (load the view's row, apply, write it back). Each message is handled and acked
//! one at a time per consumer, with the same transport, prefetch and consumer count as the
//! service (`crate::lapin_loop`): with several in flight, two messages of one person race
//! their `GenericQuery` dispatches and one view update is lost (BENCHMARKS.md).
//!
//! Its database is set up as the service's is (the same people seeded, the same referrals
//! and appointments PUT through the HTTP API), then the service is stopped and the naive
//! engine takes its database: no Delius projector runs while it is measured.

use std::sync::Arc;

use anyhow::{bail, Context};
use delius_bridge::amqp::envelope::Envelope;
use delius_bridge::amqp::outcome::HandlerOutcome;
use delius_bridge::amqp::topology::QUEUES;
use delius_bridge::engine::Engine;
use delius_bridge::store::cqrs_book::{view_errors, view_table, CqrsEsLog, AGGREGATE_TYPES};
use delius_bridge::upstream::{UpstreamClient, UpstreamConfig};
use delius_bridge::workload::{Message, Workload};

use crate::setup::Service;

pub async fn run(
    workload: &Workload,
    messages: &[Message],
    stub: &str,
    prefetch: u16,
    consumers: usize,
) -> anyhow::Result<(f64, crate::cpu::Usage)> {
    let service = Service::start(workload, "naive").await?;
    crate::ingest::set_up_referrals(&service, workload).await?;
    let db = service.into_database().await;
    CqrsEsLog::create_views(&db.pool).await?;
    let engine = Arc::new(Engine::cqrs_book(db.pool.clone()));
    let upstream = UpstreamClient::from_config(UpstreamConfig::new([stub.to_string()]))?;
    let handlers = Arc::new(delius_bridge::handlers::registry(&engine, &upstream));
    let view_errors_before = view_errors();
    let rate = crate::lapin_loop::run("naive", messages, prefetch, consumers, move |body| {
        let handlers = handlers.clone();
        async move {
            let envelope = Envelope::parse(&body)?;
            let handler = QUEUES
                .iter()
                .filter(|queue| queue.binds(&envelope.event_type))
                .find_map(|queue| handlers.get(queue.name))
                .with_context(|| format!("no handler for {}", envelope.event_type))?;
            match handler.handle(&envelope).await {
                HandlerOutcome::Success { .. } | HandlerOutcome::Ignored { .. } => Ok(()),
                HandlerOutcome::Rejected { reason } | HandlerOutcome::Failed { reason } => {
                    bail!("{} {}: {reason}", envelope.event_type, envelope.message_id)
                }
            }
        }
    })
    .await;
    let dropped = view_errors() - view_errors_before;
    let projected = view_rows(&db.pool).await;
    if let Some(engine) = Arc::into_inner(engine) {
        engine.shutdown().await;
    }
    db.drop_now().await;
    if dropped > 0 {
        bail!("naive: {dropped} events were not projected into their views");
    }
    let projected = projected?;
    if projected == 0 {
        bail!("naive: no view was written");
    }
    rate
}

/// How many view documents the naive path wrote, over every aggregate type.
async fn view_rows(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    let mut total = 0;
    for table in AGGREGATE_TYPES.map(view_table) {
        let (rows,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await?;
        total += rows;
    }
    Ok(total)
}
