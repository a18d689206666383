//! Health and info: liveness (the process answers), readiness (database and broker reachable,
//! projector running) and build information.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::engine::Backend;

/// `GET /health/liveness`: the process is up.
pub async fn liveness() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

/// `GET /health` and `GET /health/readiness`: every dependency, 503 when one is down.
pub async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (db_up, db) = match &state.engine.backend {
        Backend::Postgres(pool) => match sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(pool)
            .await
        {
            Ok(_) => (true, json!({"status": "UP"})),
            Err(error) => (false, json!({"status": "DOWN", "error": error.to_string()})),
        },
        Backend::Memory { .. } => (
            true,
            json!({"status": "UP", "details": "embedded, not durable"}),
        ),
    };
    let (broker_up, broker) = match &state.broker {
        Some(broker) if broker.is_connected().await => (true, json!({"status": "UP"})),
        Some(_) => (false, json!({"status": "DOWN"})),
        None => (true, json!({"status": "DISABLED"})),
    };
    let checkpoint = state.engine.progress();
    let projector = json!({
        "status": "UP",
        "transactionId": checkpoint.transaction_id,
        "globalPosition": checkpoint.global_position,
    });
    // Degraded, not down: without its listener the cache answers nothing and every lookup
    // goes to the database, as before the cache.
    let reference_cache = match state.engine.reference_cache() {
        Some(cache) if cache.is_listening() => json!({"status": "UP"}),
        Some(_) => json!({
            "status": "DEGRADED",
            "details": "not listening for reference changes: lookups go to the database",
        }),
        None => json!({"status": "DISABLED"}),
    };
    let up = db_up && broker_up;
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if up { "UP" } else { "DOWN" },
            "components": {
                "db": db,
                "broker": broker,
                "projector": projector,
                "referenceCache": reference_cache,
            },
        })),
    )
}

/// `GET /health`: the same as readiness.
pub async fn health(state: State<AppState>) -> (StatusCode, Json<Value>) {
    readiness(state).await
}

/// `GET /info`: what is running.
pub async fn info(State(state): State<AppState>) -> Json<Value> {
    let backend = match state.engine.backend {
        Backend::Postgres(_) => "postgres",
        Backend::Memory { .. } => "embedded",
    };
    Json(json!({
        "build": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
        "backend": backend,
    }))
}
