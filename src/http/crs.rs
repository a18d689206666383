//! Refer and Monitor endpoints (REFERENCE.md §2.1): the synchronous referral and appointment
//! writes, which answer only once their Delius rows are visible, and the case-information
//! reads. Handlers only translate HTTP to `crate::crs` calls and errors to `ApiError`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use chrono::Utc;
use uuid::Uuid;

use super::auth::{
    require_roles, Caller, ROLES_C, ROLES_C_OR_R, ROLE_CRS_REFERRAL,
    ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW,
};
use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppPath, Crn};
use super::AppState;
use crate::crs::read::{
    CaseDetail, ConvictionDetail, Convictions, DeliveryUnit, Identifiers, OfficeLocation,
    ResponsibleOfficer,
};
use crate::crs::wire::{AppointmentMerged, MergeAppointment, ReferralStarted};
use crate::crs::{self, CrsError};
use projections::{Metadata, Source};

/// Who may write referrals and appointments: the R role, and `ROLE_CRS_REFERRAL` as the seed
/// design names it.
pub const WRITE_ROLES: &[&str] = &[
    ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW,
    ROLE_CRS_REFERRAL,
];

/// The Refer and Monitor routes, each group behind its roles.
pub fn routes(state: AppState) -> Router<AppState> {
    let writes = Router::new()
        .route("/probation-case/{crn}/referrals", put(put_referral))
        .route(
            "/probation-case/{crn}/referrals/{referralId}/appointments",
            put(put_appointment),
        )
        .route_layer(require_roles(&state, WRITE_ROLES));
    let case_reads = Router::new()
        .route("/probation-case/{crn}/identifiers", get(identifiers))
        .route("/probation-case/{crn}/details", get(details))
        .route("/probation-case/{crn}/convictions", get(convictions))
        .route("/probation-case/{crn}/convictions/{id}", get(conviction))
        .route_layer(require_roles(&state, ROLES_C));
    let shared_reads = Router::new()
        .route(
            "/probation-case/{crn}/responsible-officer",
            get(responsible_officer),
        )
        .route("/office-locations", get(office_locations))
        .route("/probation-delivery-units", get(delivery_units))
        .route_layer(require_roles(&state, ROLES_C_OR_R));
    writes.merge(case_reads).merge(shared_reads)
}

impl From<CrsError> for ApiError {
    fn from(error: CrsError) -> Self {
        match error {
            CrsError::NotFound(message) => ApiError::not_found(message),
            CrsError::Invalid { code, message } => ApiError::bad_request(code, message),
            CrsError::Conflict(message) => ApiError::conflict("appointment_clash", message),
            CrsError::Unavailable(message) => ApiError::unavailable(message, 1),
            CrsError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
        }
    }
}

/// The command metadata of an HTTP request: the `Idempotency-Key` header is the message id
/// (else a fresh one: PUTs are idempotent by their own rules), `X-Request-Id` the correlation.
pub fn metadata(headers: &HeaderMap, caller: &Caller) -> Metadata {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let request_id = header("x-request-id").unwrap_or_else(|| Uuid::new_v4().to_string());
    Metadata {
        message_id: header("idempotency-key")
            .map(|key| format!("http:{key}"))
            .unwrap_or_else(|| format!("http:{}", Uuid::new_v4())),
        correlation_id: request_id,
        causation_id: None,
        source: Source::Http,
        actor: caller.name.clone(),
        received_at: Utc::now(),
    }
}

/// Records a referral: the NSI, its manager and status history, NREF/C091/NCOM contacts.
#[utoipa::path(
    put,
    path = "/probation-case/{crn}/referrals",
    tag = "refer-and-monitor",
    params(("crn" = Crn, Path, description = "Case reference number")),
    request_body = ReferralStarted,
    responses(
        (status = 204, description = "The referral NSI exists and is visible"),
        (status = 400, description = "Invalid request or unknown contract type", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role", body = ErrorBody),
        (status = 404, description = "No such person or event", body = ErrorBody),
        (status = 503, description = "Committed but not yet visible: retry", body = ErrorBody),
    ),
)]
pub async fn put_referral(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(crn): AppPath<Crn>,
    AppJson(body): AppJson<ReferralStarted>,
) -> Result<StatusCode, ApiError> {
    let metadata = metadata(&headers, &caller);
    crs::start_referral(&state.engine, crn.as_str(), &body, &metadata).await?;
    tracing::info!(crn = crn.as_str(), referral_id = %body.referral_id, "ReferralStarted");
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, updates or reschedules a CRS appointment, applying its outcome if given.
#[utoipa::path(
    put,
    path = "/probation-case/{crn}/referrals/{referralId}/appointments",
    tag = "refer-and-monitor",
    params(
        ("crn" = Crn, Path, description = "Case reference number"),
        ("referralId" = Uuid, Path, description = "Referral id"),
    ),
    request_body = MergeAppointment,
    responses(
        (status = 200, description = "The appointment's Delius contact id", body = AppointmentMerged),
        (status = 400, description = "Invalid request, or a past appointment without outcome", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Missing role", body = ErrorBody),
        (status = 404, description = "No such referral NSI or office location", body = ErrorBody),
        (status = 409, description = "Clashes with another future appointment", body = ErrorBody),
        (status = 503, description = "Committed but not yet visible: retry", body = ErrorBody),
    ),
)]
pub async fn put_appointment(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((crn, referral_id)): AppPath<(Crn, Uuid)>,
    AppJson(body): AppJson<MergeAppointment>,
) -> Result<AppJson<AppointmentMerged>, ApiError> {
    let metadata = metadata(&headers, &caller);
    let appointment_id =
        crs::merge_appointment(&state.engine, crn.as_str(), referral_id, &body, &metadata).await?;
    tracing::info!(
        crn = crn.as_str(),
        %referral_id,
        appointment_id = %body.id,
        delius_id = appointment_id,
        reschedule_requested_by = body.reschedule_requested_by.as_deref().unwrap_or(""),
        "MergeAppointment"
    );
    Ok(AppJson(AppointmentMerged { appointment_id }))
}

/// The person's CRN and NOMS number.
#[utoipa::path(
    get,
    path = "/probation-case/{crn}/identifiers",
    tag = "refer-and-monitor",
    params(("crn" = Crn, Path, description = "Case reference number")),
    responses(
        (status = 200, body = Identifiers),
        (status = 404, description = "No such person", body = ErrorBody),
    ),
)]
pub async fn identifiers(
    State(state): State<AppState>,
    AppPath(crn): AppPath<Crn>,
) -> Result<AppJson<Identifiers>, ApiError> {
    Ok(AppJson(
        crs::read::identifiers(&state.engine, crn.as_str()).await?,
    ))
}

/// The person's details.
#[utoipa::path(
    get,
    path = "/probation-case/{crn}/details",
    tag = "refer-and-monitor",
    params(("crn" = Crn, Path, description = "Case reference number")),
    responses(
        (status = 200, body = CaseDetail),
        (status = 404, description = "No such person", body = ErrorBody),
    ),
)]
pub async fn details(
    State(state): State<AppState>,
    AppPath(crn): AppPath<Crn>,
) -> Result<AppJson<CaseDetail>, ApiError> {
    Ok(AppJson(
        crs::read::details(&state.engine, crn.as_str()).await?,
    ))
}

/// The person's convictions (adjournments left out).
#[utoipa::path(
    get,
    path = "/probation-case/{crn}/convictions",
    tag = "refer-and-monitor",
    params(("crn" = Crn, Path, description = "Case reference number")),
    responses(
        (status = 200, body = Convictions),
        (status = 404, description = "No such person", body = ErrorBody),
    ),
)]
pub async fn convictions(
    State(state): State<AppState>,
    AppPath(crn): AppPath<Crn>,
) -> Result<AppJson<Convictions>, ApiError> {
    Ok(AppJson(
        crs::read::convictions(&state.engine, crn.as_str()).await?,
    ))
}

/// One conviction of the person.
#[utoipa::path(
    get,
    path = "/probation-case/{crn}/convictions/{id}",
    tag = "refer-and-monitor",
    params(
        ("crn" = Crn, Path, description = "Case reference number"),
        ("id" = i64, Path, description = "Delius event id"),
    ),
    responses(
        (status = 200, body = ConvictionDetail),
        (status = 404, description = "No such person or conviction", body = ErrorBody),
    ),
)]
pub async fn conviction(
    State(state): State<AppState>,
    AppPath((crn, id)): AppPath<(Crn, i64)>,
) -> Result<AppJson<ConvictionDetail>, ApiError> {
    Ok(AppJson(
        crs::read::conviction(&state.engine, crn.as_str(), id).await?,
    ))
}

/// The community manager and, when the community manager is not the responsible officer,
/// the prison manager.
#[utoipa::path(
    get,
    path = "/probation-case/{crn}/responsible-officer",
    tag = "refer-and-monitor",
    params(("crn" = Crn, Path, description = "Case reference number")),
    responses(
        (status = 200, body = ResponsibleOfficer),
        (status = 404, description = "No such person or no community manager", body = ErrorBody),
    ),
)]
pub async fn responsible_officer(
    State(state): State<AppState>,
    AppPath(crn): AppPath<Crn>,
) -> Result<AppJson<ResponsibleOfficer>, ApiError> {
    Ok(AppJson(
        crs::read::responsible_officer(&state.engine, crn.as_str()).await?,
    ))
}

/// The active office locations of the CRS provider.
#[utoipa::path(
    get,
    path = "/office-locations",
    tag = "refer-and-monitor",
    responses((status = 200, body = [OfficeLocation])),
)]
pub async fn office_locations(
    State(state): State<AppState>,
) -> Result<AppJson<Vec<OfficeLocation>>, ApiError> {
    Ok(AppJson(crs::read::office_locations(&state.engine).await?))
}

/// Every probation delivery unit with its region.
#[utoipa::path(
    get,
    path = "/probation-delivery-units",
    tag = "refer-and-monitor",
    responses((status = 200, body = [DeliveryUnit])),
)]
pub async fn delivery_units(
    State(state): State<AppState>,
) -> Result<AppJson<Vec<DeliveryUnit>>, ApiError> {
    Ok(AppJson(crs::read::delivery_units(&state.engine).await?))
}
