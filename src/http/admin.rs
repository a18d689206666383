//! Support endpoints: the dead letters (admin role, [`ROLES_ADMIN`]) and `GET /metrics`
//! (Prometheus text, no auth).
//!
//! - `GET /dead-letters[?queue=Q]`: every dead letter (queue, message id, event type, reason,
//!   attempts, dead-lettered at).
//! - `GET /dead-letters/{messageId}[?queue=Q]`: every dead-lettered copy of the message with
//!   its body (an event type bound to two queues may fail on each); 404 when there is none.
//! - `POST /dead-letters/{messageId}/redrive[?queue=Q]`: moves the copies back to their queue
//!   with `x-attempt` 1; 404 when there is none.
//!
//! The broker is the source of truth (see [`crate::amqp::dead_letters`]); without one
//! configured, or while it is unreachable, these answer 503.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{require_roles, Caller, ROLES_ADMIN};
use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppPath};
use super::AppState;
use crate::amqp::dead_letters::{
    DeadLetter, DeadLetterDetail, DeadLetterError, DeadLetters, Redriven,
};

/// The dead-letter routes, behind the admin role.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/dead-letters", get(list_dead_letters))
        .route("/dead-letters/{messageId}", get(show_dead_letter))
        .route(
            "/dead-letters/{messageId}/redrive",
            post(redrive_dead_letter),
        )
        .route_layer(require_roles(&state, ROLES_ADMIN))
}

/// Narrows a dead-letter operation to one queue.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueFilter {
    /// An unprefixed queue name: `refer-and-monitor-and-delius`,
    /// `prison-custody-status-to-delius` or `manage-pom-cases-and-delius`. All when absent.
    pub queue: Option<String>,
}

impl From<DeadLetterError> for ApiError {
    fn from(error: DeadLetterError) -> Self {
        match error {
            DeadLetterError::UnknownQueue(_) => {
                ApiError::bad_request("invalid_request", error.to_string())
            }
            DeadLetterError::NotConnected => {
                ApiError::unavailable("the broker is not connected", 5)
            }
            DeadLetterError::Amqp(cause) => {
                tracing::warn!(error = %cause, "dead-letter operation failed");
                ApiError::unavailable(format!("broker operation failed: {cause}"), 5)
            }
        }
    }
}

fn dead_letters(state: &AppState) -> Result<&DeadLetters, ApiError> {
    state
        .dead_letters
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("no broker is configured (AMQP_URL)", 60))
}

fn filter(query: Result<Query<QueueFilter>, QueryRejection>) -> Result<QueueFilter, ApiError> {
    query
        .map(|Query(filter)| filter)
        .map_err(|rejection| ApiError::bad_request("invalid_request", rejection.body_text()))
}

/// Lists the dead letters, per queue oldest first. Browsing requeues every message: a listing
/// never loses one.
#[utoipa::path(
    get,
    path = "/dead-letters",
    tag = "support",
    params(QueueFilter),
    responses(
        (status = 200, description = "The dead letters", body = [DeadLetter]),
        (status = 400, description = "Unknown queue", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 503, description = "No broker", body = ErrorBody),
    ),
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    query: Result<Query<QueueFilter>, QueryRejection>,
) -> Result<AppJson<Vec<DeadLetter>>, ApiError> {
    let filter = filter(query)?;
    let found = dead_letters(&state)?.list(filter.queue.as_deref()).await?;
    Ok(AppJson(found))
}

/// Every dead-lettered copy of a message, with its body.
#[utoipa::path(
    get,
    path = "/dead-letters/{messageId}",
    tag = "support",
    params(
        ("messageId" = String, Path, description = "The message id (SNS MessageId)"),
        QueueFilter,
    ),
    responses(
        (status = 200, description = "The copies (one per queue holding it)", body = [DeadLetterDetail]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 404, description = "No such dead letter", body = ErrorBody),
        (status = 503, description = "No broker", body = ErrorBody),
    ),
)]
pub async fn show_dead_letter(
    State(state): State<AppState>,
    AppPath(message_id): AppPath<String>,
    query: Result<Query<QueueFilter>, QueryRejection>,
) -> Result<AppJson<Vec<DeadLetterDetail>>, ApiError> {
    let filter = filter(query)?;
    let found = dead_letters(&state)?
        .show(&message_id, filter.queue.as_deref())
        .await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no dead letter with message id {message_id}"
        )));
    }
    Ok(AppJson(found))
}

/// Moves a dead-lettered message back to its queue (attempt 1); the dead-letter copy is
/// removed only after the broker confirmed the new one.
#[utoipa::path(
    post,
    path = "/dead-letters/{messageId}/redrive",
    tag = "support",
    params(
        ("messageId" = String, Path, description = "The message id (SNS MessageId)"),
        QueueFilter,
    ),
    responses(
        (status = 200, description = "Re-driven", body = Redriven),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 404, description = "No such dead letter", body = ErrorBody),
        (status = 503, description = "No broker", body = ErrorBody),
    ),
)]
pub async fn redrive_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(message_id): AppPath<String>,
    query: Result<Query<QueueFilter>, QueryRejection>,
) -> Result<AppJson<Redriven>, ApiError> {
    let filter = filter(query)?;
    let redriven = dead_letters(&state)?
        .redrive(&message_id, filter.queue.as_deref())
        .await?;
    if redriven == 0 {
        return Err(ApiError::not_found(format!(
            "no dead letter with message id {message_id}"
        )));
    }
    tracing::info!(caller = %caller.name, message_id, redriven, "dead letter re-driven over HTTP");
    Ok(AppJson(Redriven { redriven }))
}

/// `GET /metrics`: the Prometheus text format (no auth).
#[utoipa::path(
    get, path = "/metrics", tag = "support", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}
