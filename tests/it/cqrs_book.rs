//! The cqrs-es reference backend (`store::cqrs_book`, the benchmarks' naive baseline): the bus
//! deciding as always, each command committed through a postgres-es event store and
//! projected into a `GenericQuery` view of Delius rows.

use std::sync::Arc;

use aggregates::case::Case;
use delius_bridge::amqp::envelope::Envelope;
use delius_bridge::amqp::outcome::HandlerOutcome;
use delius_bridge::amqp::topology::PRISON_CUSTODY_STATUS;
use delius_bridge::engine::Engine;
use delius_bridge::store::cqrs_book::{view_errors, CqrsEsLog};
use delius_bridge::upstream::{UpstreamClient, UpstreamConfig};
use sqlx::PgPool;

use crate::bus::{baseline, metadata, one_of_two_conflicting_commands_wins};
use crate::{demo_seed, engine, settle};

async fn book(pool: &PgPool) -> Engine {
    CqrsEsLog::create_views(pool).await.unwrap();
    Engine::cqrs_book(pool.clone())
}

async fn view(pool: &PgPool, table: &str, id: &str) -> Option<serde_json::Value> {
    sqlx::query_scalar(&format!(
        "SELECT payload::jsonb FROM {table} WHERE view_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_command_is_committed_and_its_rows_projected_into_the_view(pool: PgPool) {
    let engine = book(&pool).await;
    let outcome = engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Jones"), &metadata("m-1"))
        .await
        .unwrap();
    assert!(!outcome.duplicate);
    assert_eq!(outcome.events.len(), 1);
    // Nothing to wait for: no global position, no projector.
    assert_eq!(outcome.checkpoint(), None);
    let (sequence, metadata): (i64, serde_json::Value) =
        sqlx::query_as("SELECT sequence, metadata::jsonb FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sequence, 1);
    insta::assert_json_snapshot!("cqrs_book_event_metadata", metadata, {".received_at" => "[received_at]"});
    let view = view(&pool, "cqrs_view_case", "X999999").await.unwrap();
    insta::assert_json_snapshot!("cqrs_book_case_view", view, {
        ".tables.*.*.created_datetime" => "[at]",
        ".tables.*.*.last_updated_datetime" => "[at]",
    });
    // The Delius tables are not written: the view holds the rows.
    let offenders: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.offender")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(offenders, 0);
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_book_keeps_no_command_log_so_a_redelivery_is_decided_again(pool: PgPool) {
    let engine = book(&pool).await;
    for surname in ["Jones", "Other"] {
        let outcome = engine
            .bus
            .execute::<Case>("X999999", baseline(1, surname), &metadata("m-1"))
            .await
            .unwrap();
        assert!(!outcome.duplicate);
        assert_eq!(outcome.events.len(), 1);
    }
    let (case, sequence) = engine.bus.load::<Case>("X999999").await.unwrap();
    assert_eq!(sequence, 2);
    assert_eq!(case.baseline.unwrap().person.surname, "Other");
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 0);
    let view = view(&pool, "cqrs_view_case", "X999999").await.unwrap();
    assert_eq!(view["tables"]["offender"]["1"]["surname"], "Other");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn it_decides_on_the_streams_the_service_wrote(pool: PgPool) {
    let service = engine(pool.clone());
    service
        .bus
        .execute::<Case>("X999999", baseline(1, "Jones"), &metadata("m-1"))
        .await
        .unwrap();
    service.shutdown().await;
    let engine = book(&pool).await;
    let (case, sequence) = engine.bus.load::<Case>("X999999").await.unwrap();
    assert_eq!(sequence, 1);
    assert_eq!(case.baseline.unwrap().person.surname, "Jones");
    let outcome = engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Other"), &metadata("m-2"))
        .await
        .unwrap();
    assert_eq!(outcome.events[0].sequence, 2);
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_unit_commits_each_command_as_it_is_executed(pool: PgPool) {
    let engine = book(&pool).await;
    let metadata = metadata("m-unit");
    let mut unit = engine.bus.unit(&metadata);
    let decision = unit
        .execute::<Case>("X999999", baseline(1, "Jones"))
        .await
        .unwrap();
    assert_eq!(decision.events.len(), 1);
    // Already stored before the unit commits: the book has no units.
    let (_, sequence) = engine.bus.load::<Case>("X999999").await.unwrap();
    assert_eq!(sequence, 1);
    assert_eq!(unit.commit().await.unwrap(), vec![]);
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn one_of_two_conflicting_commands_wins_on_the_book(pool: PgPool) {
    one_of_two_conflicting_commands_wins(book(&pool).await).await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_view_that_cannot_be_written_is_counted_and_the_command_stands(pool: PgPool) {
    // No view tables: the GenericQuery's write fails, as a query cannot fail a command.
    let engine = Engine::cqrs_book(pool.clone());
    let before = view_errors();
    let outcome = engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Jones"), &metadata("m-1"))
        .await
        .unwrap();
    assert_eq!(outcome.events.len(), 1);
    assert!(view_errors() > before);
    let (_, sequence) = engine.bus.load::<Case>("X999999").await.unwrap();
    assert_eq!(sequence, 1);
    engine.shutdown().await;
}

/// What the benchmark's naive path does: a database seeded by the service, then the service's
/// own handlers on the book's engine. A prison release decides and commits its custody's
/// commands and projects them into the custody's view, leaving the Delius tables and the
/// command log alone.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_service_handlers_run_on_the_book(pool: PgPool) {
    let service = engine(pool.clone());
    delius_bridge::seed::load(&service, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&service).await;
    service.shutdown().await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let releases = count("SELECT count(*) FROM delius.release").await;
    let events = count("SELECT count(*) FROM events").await;
    let logged = count("SELECT count(*) FROM command_log").await;

    let engine = Arc::new(book(&pool).await);
    let upstream =
        UpstreamClient::from_config(UpstreamConfig::new(["http://127.0.0.1:9".to_string()]))
            .unwrap();
    let handlers = delius_bridge::handlers::registry(&engine, &upstream);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/upstream/prison-custody-status-to-delius/messages/prisoner-released.json"
    ))
    .unwrap();
    let envelope = Envelope::parse(&body).unwrap();
    let outcome = handlers
        .get(PRISON_CUSTODY_STATUS)
        .unwrap()
        .handle(&envelope)
        .await;
    assert!(
        matches!(&outcome, HandlerOutcome::Success { .. }),
        "{outcome:?}"
    );

    assert!(count("SELECT count(*) FROM events").await > events);
    assert_eq!(count("SELECT count(*) FROM command_log").await, logged);
    assert_eq!(count("SELECT count(*) FROM delius.release").await, releases);
    let views: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload::jsonb FROM cqrs_view_custody")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(views.len(), 1, "one custody released");
    let tables: Vec<&String> = views[0]["tables"].as_object().unwrap().keys().collect();
    insta::assert_json_snapshot!("cqrs_book_release_view_tables", tables);
    if let Some(engine) = Arc::into_inner(engine) {
        engine.shutdown().await;
    }
}
