//! The HTTP interface (axum). `router(state)` builds every route; one file per resource.

pub mod error;
pub mod health;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::amqp::Broker;
use crate::engine::Engine;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The broker connection, when one is configured.
    pub broker: Option<Broker>,
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/health/liveness", get(health::liveness))
        .route("/health/readiness", get(health::readiness))
        .route("/info", get(health::info))
        .fallback(error::not_found)
        .with_state(state)
}
