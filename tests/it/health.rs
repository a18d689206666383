//! Health endpoints against the real database and broker.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use delius_bridge::amqp::Broker;
use delius_bridge::engine::Engine;
use delius_bridge::http::{router, AppState};
use sqlx::PgPool;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::broker::amqp_url;
use crate::engine;

async fn get(state: AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let response = router(state)
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn wait_connected(broker: &Broker) {
    for _ in 0..100 {
        if broker.is_connected().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "RabbitMQ at {} is not reachable: start it (see .ci/run)",
        amqp_url()
    );
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn ready_when_database_and_broker_are_up(pool: PgPool) {
    let (_stop, stopped) = watch::channel(false);
    let broker = Broker::start(amqp_url(), stopped);
    wait_connected(&broker).await;
    let state = AppState {
        engine: Arc::new(engine(pool.clone())),
        broker: Some(broker),
        auth: crate::auth::auth(),
        dead_letters: None,
    };
    // The reference cache's listener connects on its own: until then it reads DEGRADED.
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = get(state.clone(), "/health/readiness").await;
        if body["components"]["referenceCache"]["status"] == "UP"
            || started.elapsed() > std::time::Duration::from_secs(10)
        {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["components"]["db"]["status"], "UP");
    assert_eq!(body["components"]["broker"]["status"], "UP");
    assert_eq!(body["components"]["referenceCache"]["status"], "UP");

    // Its listener's connection lost: degraded, still ready (lookups go to the database).
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = get(state.clone(), "/health/readiness").await;
        if body["components"]["referenceCache"]["status"] == "DEGRADED"
            || started.elapsed() > std::time::Duration::from_secs(10)
        {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    assert_eq!(
        body["components"]["referenceCache"]["status"], "DEGRADED",
        "{body}"
    );
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("UP"))
    );
    let (status, body) = get(state.clone(), "/health/liveness").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("UP"))
    );
    let (status, body) = get(state, "/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["backend"], "postgres");
}

#[tokio::test]
async fn not_ready_without_the_broker() {
    let (_stop, stopped) = watch::channel(false);
    // Nothing listens on port 1.
    let broker = Broker::start("amqp://guest:guest@127.0.0.1:1/%2f".into(), stopped);
    let state = AppState {
        engine: Arc::new(Engine::memory()),
        broker: Some(broker),
        auth: crate::auth::auth(),
        dead_letters: None,
    };
    let (status, body) = get(state, "/health/readiness").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "DOWN");
    assert_eq!(body["components"]["broker"]["status"], "DOWN");
    assert_eq!(body["components"]["db"]["status"], "UP");
    assert_eq!(body["components"]["referenceCache"]["status"], "DISABLED");
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let state = AppState {
        engine: Arc::new(Engine::memory()),
        broker: None,
        auth: crate::auth::auth(),
        dead_letters: None,
    };
    let (status, body) = get(state, "/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("unknown_route", body);
}

/// The pool's liveness check (`engine::pool_options`): a connection returned less than
/// `PING_IDLE_AFTER` ago is handed out without a ping, so one that died meanwhile fails one
/// statement and is then replaced; one idle longer is pinged and replaced unseen.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_pooled_connection_is_pinged_only_after_a_second_idle(
    _: sqlx::postgres::PgPoolOptions,
    connect: sqlx::postgres::PgConnectOptions,
) {
    use sqlx::Connection;
    let pool = delius_bridge::engine::pool_options(1)
        .connect_with(connect.clone())
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&connect).await.unwrap();
    let backend = "SELECT pg_backend_pid()";

    let first: i32 = sqlx::query_scalar(backend).fetch_one(&pool).await.unwrap();
    kill_idle(&pool, first, &mut admin).await;
    // Idle for milliseconds: handed out as it is, and its statement fails.
    let failed = sqlx::query_scalar::<_, i32>(backend).fetch_one(&pool).await;
    assert!(failed.is_err(), "a dead connection was handed out unpinged");
    // Its release found it dead and closed it: the next statement gets a new connection.
    let second: i32 = sqlx::query_scalar(backend).fetch_one(&pool).await.unwrap();
    assert_ne!(second, first);

    kill_idle(&pool, second, &mut admin).await;
    tokio::time::sleep(delius_bridge::engine::PING_IDLE_AFTER + Duration::from_millis(200)).await;
    // Idle for longer: pinged, found dead and replaced before it is handed out.
    let third: i32 = sqlx::query_scalar(backend).fetch_one(&pool).await.unwrap();
    assert_ne!(third, second);
}

/// Kills the pool's one connection once it is back in the pool (pinged on its return).
async fn kill_idle(pool: &PgPool, pid: i32, admin: &mut sqlx::PgConnection) {
    while pool.num_idle() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(killed);
}
