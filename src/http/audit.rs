//! Audit for support staff (admin role, [`ROLES_ADMIN`]); see [`crate::audit`].
//!
//! - `GET /audit/cases/{crn}`: the person's timeline across aggregates — recorded time, event
//!   type and version, source, message id, actor, correlation id, the Delius rows each event
//!   wrote — and the messages about them that were ignored, rejected or failed.
//! - `GET /audit/rows/{table}/{id}`: a Delius row, the event that last wrote it and every
//!   event that wrote it.

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use super::auth::{require_roles, ROLES_ADMIN};
use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppPath, Crn};
use super::AppState;
use crate::amqp::handler::OutcomeLog;
use crate::audit::{self, AuditError, CaseTimeline, RowAudit};
use crate::engine::Backend;

/// The audit routes, behind the admin role.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/audit/cases/{crn}", get(case_timeline))
        .route("/audit/rows/{table}/{id}", get(row_audit))
        .route_layer(require_roles(&state, ROLES_ADMIN))
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::NotFound(message) => ApiError::not_found(message),
            AuditError::Invalid(message) => ApiError::bad_request("invalid_request", message),
            other => ApiError::internal(other),
        }
    }
}

/// The person's audit timeline.
#[utoipa::path(
    get,
    path = "/audit/cases/{crn}",
    tag = "support",
    params(("crn" = Crn, Path, description = "Case reference number")),
    responses(
        (status = 200, description = "The timeline, oldest first", body = CaseTimeline),
        (status = 400, description = "Not a CRN", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 404, description = "Nothing recorded for the CRN", body = ErrorBody),
    ),
)]
pub async fn case_timeline(
    State(state): State<AppState>,
    AppPath(crn): AppPath<Crn>,
) -> Result<AppJson<CaseTimeline>, ApiError> {
    let outcomes = OutcomeLog::for_backend(&state.engine.backend);
    let timeline = audit::case_timeline(&state.engine.backend, &outcomes, crn.as_str()).await?;
    Ok(AppJson(timeline))
}

/// A Delius row back to the events that wrote it.
#[utoipa::path(
    get,
    path = "/audit/rows/{table}/{id}",
    tag = "support",
    params(
        ("table" = String, Path, description = "A projected Delius table, e.g. contact"),
        ("id" = String, Path, description = "The row's key: numeric id, or code for reference tables"),
    ),
    responses(
        (status = 200, description = "The row and its events", body = RowAudit),
        (status = 400, description = "Unknown table or a key of the wrong kind", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 404, description = "No such row and no event wrote one", body = ErrorBody),
        (status = 501, description = "The embedded default keeps no queryable tables", body = ErrorBody),
    ),
)]
pub async fn row_audit(
    State(state): State<AppState>,
    AppPath((table, id)): AppPath<(String, String)>,
) -> Result<AppJson<RowAudit>, ApiError> {
    let Backend::Postgres(pool) = &state.engine.backend else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "unavailable_on_embedded",
            "row audit needs PostgreSQL (DATABASE_URL)",
        ));
    };
    Ok(AppJson(audit::row_audit(pool, &table, &id).await?))
}
