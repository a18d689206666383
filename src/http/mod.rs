//! The HTTP interface (axum). `router(state)` builds every route; one file per resource.
//!
//! - [`health`]: health and info, no auth.
//! - [`openapi`]: `GET /v3/api-docs` and the Swagger UI at `/swagger-ui/`, no auth.
//! - [`crs`]: Refer and Monitor, bearer JWT with roles ([`auth::require_roles`]).
//! - [`admin`]: support — the dead letters (admin role) and `GET /metrics` (no auth).
//! - [`audit`]: support — a person's timeline and a row's history (admin role).
//! - [`replay`]: support — rebuilding a projection in the background (admin role).
//!
//! Shared pieces: [`auth`] (tokens, roles, [`auth::Caller`]), [`error`] ([`error::ApiError`],
//! the JSON error body), [`extract`] ([`extract::AppJson`], [`extract::AppPath`],
//! [`extract::Crn`]). Every request runs in a tracing span with its method, path and request id
//! (`X-Request-Id`, taken from the request or generated, and echoed in the response).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod crs;
pub mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod replay;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tracing::Instrument;

use crate::amqp::dead_letters::DeadLetters;
use crate::amqp::Broker;
use crate::engine::Engine;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The broker connection, when one is configured.
    pub broker: Option<Broker>,
    /// Verifies bearer tokens for [`auth::require_roles`].
    pub auth: Arc<auth::Auth>,
    /// The dead-letter queues (`/dead-letters`), when a broker is configured.
    pub dead_letters: Option<DeadLetters>,
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/health/liveness", get(health::liveness))
        .route("/health/readiness", get(health::readiness))
        .route("/info", get(health::info))
        .route("/metrics", get(admin::metrics))
        .merge(openapi::routes())
        .merge(crs::routes(state.clone()))
        .merge(admin::routes(state.clone()))
        .merge(audit::routes(state.clone()))
        .merge(replay::routes(state.clone()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Runs the request in a span with its method, path and request id, echoes the id and logs
/// the outcome at debug level.
async fn request_span(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        });
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = id.to_str().unwrap_or("-"),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
