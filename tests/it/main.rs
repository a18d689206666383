//! End-to-end tests against the real PostgreSQL (a fresh database per test through
//! `sqlx::test`, so they run in parallel) and the real RabbitMQ. A missing service fails
//! loudly: nothing is skipped.

#![allow(clippy::unwrap_used)]

mod amqp;
mod audit;
mod auth;
/// The e2e bench's CPU accounting and pure helpers, compiled here so that their unit tests
/// run with the suite (a `harness = false` bench compiles its `#[test]`s out).
#[allow(dead_code)]
#[path = "../../benches/e2e/cpu.rs"]
mod bench_cpu;
#[allow(dead_code)]
#[path = "../../benches/e2e/text.rs"]
mod bench_text;
mod broker;
mod bus;
mod cqrs_book;
mod crs;
mod harness;
mod health;
mod ids;
mod pcstd;
mod projector;
mod reference;
mod reference_cache;
mod replay;
mod rm_events;
mod seed;
mod upstream;

use std::time::Duration;

use delius_bridge::engine::Engine;
use delius_bridge::seed::SeedFile;
use projections::postgres::RunnerConfig;
use sqlx::PgPool;

/// The demo seed.
pub fn demo_seed() -> SeedFile {
    delius_bridge::seed::parse(include_str!("../../fixtures/delius/demo.json"))
        .expect("demo seed parses")
}

/// An engine on the test database whose projector polls often.
pub fn engine(pool: PgPool) -> Engine {
    let mut runner = RunnerConfig::delius();
    runner.idle_poll = Duration::from_millis(5);
    Engine::postgres_with(pool, runner)
}

/// Waits until everything written so far is projected.
pub async fn settle(engine: &Engine) {
    let head = engine.head().await.expect("log head");
    engine
        .wait_for_checkpoint(head, Duration::from_secs(30))
        .await
        .expect("projector catches up");
}

/// Rebuilds the Delius projection from the log and swaps it in while the live projector runs
/// (the operator's `replay --projection delius`), then asserts the swapped-in tables equal the
/// live ones they replaced, row for row.
pub async fn assert_replay_equals_live(pool: &PgPool) {
    let mut conn = pool.acquire().await.expect("connection");
    let live = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .expect("live checksums");
    let mut request = projections::replay::ReplayRequest::new("delius", "test");
    request.batch_size = 500;
    let report = projections::replay::replay(pool, &request, &mut projections::replay::Silent)
        .await
        .expect("replay");
    assert!(report.swapped, "a full replay swaps");
    let swapped_in = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .expect("swapped-in checksums");
    assert_eq!(live, swapped_in, "a full replay must equal the live tables");
    let differences = projections::checksum::compare_schemas(&mut conn, "delius", "delius_retired")
        .await
        .expect("compare");
    assert!(differences.is_empty(), "{differences:?}");
}

/// `calls - queries` from the process's metrics: how many calls a batcher saved by grouping
/// them. Other tests running meanwhile only ever add as many calls as queries, or more.
pub fn grouped_away(calls: &str, queries: &str) -> i64 {
    let text = delius_bridge::metrics::render();
    let value = |name: &str| -> i64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as i64
    };
    value(calls) - value(queries)
}

/// Waits (up to 30 s) until a session of this database waits for a lock, then gives the
/// callers spawned meanwhile time to queue (queueing needs no connection).
pub async fn wait_for_a_lock_waiter(pool: &PgPool) {
    for _ in 0..600 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}
