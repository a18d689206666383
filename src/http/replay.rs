//! Replay over HTTP (admin role, [`ROLES_ADMIN`]); see [`projections::replay`].
//!
//! - `POST /admin/replay`: starts a rebuild in the background and answers 202 with its run
//!   (and `Location: /admin/replay/{runId}`); 409 while a rebuild of the same target runs.
//! - `GET /admin/replay/{runId}`: the run's status: phase, events applied of total, errors.
//! - `GET /admin/replay`: every run, newest first.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use projections::replay::{self, ReplayError, ReplayRequest, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{require_roles, Caller, ROLES_ADMIN};
use super::error::{ApiError, ErrorBody};
use super::extract::{parse_uuid, AppJson, AppPath};
use super::AppState;
use crate::engine::Backend;

/// The replay routes, behind the admin role.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/replay", get(list_runs).post(start))
        .route("/admin/replay/{runId}", get(show_run))
        .route_layer(require_roles(&state, ROLES_ADMIN))
}

/// What to rebuild.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartReplay {
    /// The projection (`delius`, the default).
    pub projection: Option<String>,
    /// The picture as of this moment, into its own schema (live tables untouched).
    pub until: Option<DateTime<Utc>>,
    /// Build into this schema and keep it (no swap).
    pub into: Option<String>,
    /// Events per batch (default 5000).
    pub batch_size: Option<i64>,
    /// Start from the first event even if an interrupted run of the target exists.
    #[serde(default)]
    pub fresh: bool,
}

/// A started run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayStarted {
    pub run_id: Uuid,
    pub target_schema: String,
    /// Whether the rebuilt tables will replace the live ones.
    pub swap: bool,
    /// Where to read its status.
    pub status_url: String,
}

impl From<ReplayError> for ApiError {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::Busy(_) => ApiError::conflict("replay_running", error.to_string()),
            ReplayError::UnknownProjection(_)
            | ReplayError::ReservedSchema(_)
            | ReplayError::Invalid(_) => {
                ApiError::bad_request("invalid_request", error.to_string())
            }
            ReplayError::Projection(projections::postgres::ProjectionError::Identifier(_)) => {
                ApiError::bad_request("invalid_request", error.to_string())
            }
            ReplayError::Projection(_) | ReplayError::Writer(_) => ApiError::internal(error),
        }
    }
}

fn pool(state: &AppState) -> Result<&PgPool, ApiError> {
    match &state.engine.backend {
        Backend::Postgres(pool) => Ok(pool),
        Backend::Memory { .. } => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unavailable_on_embedded",
            "replay needs PostgreSQL (DATABASE_URL): the embedded default keeps no log",
        )),
    }
}

/// Starts a rebuild in the background.
#[utoipa::path(
    post,
    path = "/admin/replay",
    tag = "support",
    request_body = StartReplay,
    responses(
        (status = 202, description = "Started; poll the status URL", body = ReplayStarted),
        (status = 400, description = "Unknown projection, reserved or invalid schema, bad batch size", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 409, description = "A rebuild of the same target is running", body = ErrorBody),
        (status = 501, description = "The embedded default keeps no log", body = ErrorBody),
    ),
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<StartReplay>,
) -> Result<Response, ApiError> {
    let pool = pool(&state)?.clone();
    let mut request = ReplayRequest::new(
        body.projection
            .as_deref()
            .unwrap_or(projections::delius::NAME),
        &format!("http:{}", caller.name),
    );
    request.until = body.until;
    request.into = body.into;
    request.fresh = body.fresh;
    if let Some(batch) = body.batch_size {
        request.batch_size = batch;
    }
    let prepared = replay::prepare(&pool, &request).await?;
    let started = ReplayStarted {
        run_id: prepared.run_id(),
        target_schema: prepared.target().to_string(),
        swap: request.swaps(),
        status_url: format!("/admin/replay/{}", prepared.run_id()),
    };
    tracing::info!(caller = %caller.name, run_id = %started.run_id, target = %started.target_schema, "replay started over HTTP");
    tokio::spawn(async move {
        match prepared.run(&mut replay::Silent).await {
            Ok(report) => {
                tracing::info!(run_id = %report.run_id, events = report.events, swapped = report.swapped, "replay finished")
            }
            Err(error) => tracing::error!(%error, "replay failed; it resumes when started again"),
        }
    });
    let location = HeaderValue::from_str(&started.status_url).map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        AppJson(started),
    )
        .into_response())
}

/// A run's status.
#[utoipa::path(
    get,
    path = "/admin/replay/{runId}",
    tag = "support",
    params(("runId" = Uuid, Path, description = "The run id POST /admin/replay answered")),
    responses(
        (status = 200, description = "The run", body = RunStatus),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    ),
)]
pub async fn show_run(
    State(state): State<AppState>,
    AppPath(run_id): AppPath<String>,
) -> Result<AppJson<RunStatus>, ApiError> {
    let run_id = parse_uuid("runId", &run_id)?;
    let run = replay::run_status_by_id(pool(&state)?, run_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no replay run {run_id}")))?;
    Ok(AppJson(run))
}

/// Every run, newest first.
#[utoipa::path(
    get,
    path = "/admin/replay",
    tag = "support",
    responses(
        (status = 200, description = "The runs", body = [RunStatus]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role ROLE_PROBATION_INTEGRATION_ADMIN", body = ErrorBody),
    ),
)]
pub async fn list_runs(State(state): State<AppState>) -> Result<AppJson<Vec<RunStatus>>, ApiError> {
    let runs = replay::runs(pool(&state)?)
        .await
        .map_err(ApiError::internal)?;
    Ok(AppJson(runs))
}
