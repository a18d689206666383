//! The OpenAPI document (`GET /v3/api-docs`) and a Swagger UI (`/swagger-ui/`) that works
//! offline (its assets are compiled in: utoipa-swagger-ui `vendored`).
//!
//! **Registering an endpoint**: annotate the handler with `#[utoipa::path(...)]` and add it to
//! `paths(...)` of [`ApiDoc`] below; add its request and response types (deriving
//! `utoipa::ToSchema`) to `components(schemas(...))`. Every path requires the bearer JWT
//! ([`BEARER_SCHEME`]) unless it says `security(())`. For example:
//!
//! ```ignore
//! #[utoipa::path(
//!     put,
//!     path = "/probation-case/{crn}/referrals",
//!     tag = "refer-and-monitor",
//!     params(("crn" = Crn, Path, description = "Case reference number")),
//!     request_body = ReferralRequest,
//!     responses(
//!         (status = 204, description = "Referral started"),
//!         (status = 400, description = "Invalid request", body = ErrorBody),
//!         (status = 404, description = "No such person or event", body = ErrorBody),
//!     ),
//! )]
//! pub async fn put_referral(/* … */) { /* … */ }
//! ```

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::error::ErrorBody;
use super::extract::Crn;
use super::AppState;

/// The name of the bearer-JWT security scheme in the document.
pub const BEARER_SCHEME: &str = "hmpps-auth";

/// Where the OpenAPI JSON is served.
pub const API_DOCS_PATH: &str = "/v3/api-docs";

/// Where the Swagger UI is served.
pub const SWAGGER_UI_PATH: &str = "/swagger-ui";

/// The OpenAPI document: **the one place to register paths and schemas.**
#[derive(OpenApi)]
#[openapi(
    info(
        title = "delius-bridge",
        description = "Keeps Delius in step with Refer and Monitor, prison custody events, \
                       Manage POM Cases and Resettlement Passport. Errors are \
                       `{status, code, message}` (ErrorBody). Bearer JWT (RS256, HMPPS Auth): \
                       roles in the `authorities` claim; 401 without a valid token, 403 \
                       without a role the endpoint needs."
    ),
    paths(
        // Health and info (no auth).
        health_docs::health,
        health_docs::liveness,
        health_docs::readiness,
        health_docs::info,
        // Refer and Monitor (src/http/crs.rs).
        super::crs::put_referral,
        super::crs::put_appointment,
        super::crs::identifiers,
        super::crs::details,
        super::crs::convictions,
        super::crs::conviction,
        super::crs::responsible_officer,
        super::crs::office_locations,
        super::crs::delivery_units,
        // Support (src/http/admin.rs).
        super::admin::list_dead_letters,
        super::admin::show_dead_letter,
        super::admin::redrive_dead_letter,
        super::admin::metrics,
        // Audit and replay (src/http/audit.rs, src/http/replay.rs).
        super::audit::case_timeline,
        super::audit::row_audit,
        super::replay::start,
        super::replay::show_run,
        super::replay::list_runs,
    ),
    components(schemas(
        ErrorBody,
        Crn,
        crate::crs::wire::ReferralStarted,
        crate::crs::wire::MergeAppointment,
        crate::crs::wire::Outcome,
        crate::crs::wire::AppointmentMerged,
        crate::crs::read::Identifiers,
        crate::crs::read::CaseDetail,
        crate::crs::read::Convictions,
        crate::crs::read::ConvictionDetail,
        crate::crs::read::ResponsibleOfficer,
        crate::crs::read::OfficeLocation,
        crate::crs::read::DeliveryUnit,
        crate::amqp::dead_letters::DeadLetter,
        crate::amqp::dead_letters::DeadLetterDetail,
        crate::amqp::dead_letters::Redriven,
        crate::audit::CaseTimeline,
        crate::audit::TimelineEntry,
        crate::audit::EventEntry,
        crate::audit::RowWritten,
        crate::audit::RowAudit,
        crate::amqp::handler::RecordedOutcome,
        crate::amqp::handler::MessageOutcome,
        super::replay::StartReplay,
        super::replay::ReplayStarted,
        projections::replay::RunStatus,
    )),
    modifiers(&BearerJwt),
    // The name must equal `BEARER_SCHEME`.
    security(("hmpps-auth" = [])),
    tags(
        (name = "health", description = "Liveness, readiness and build information (no auth)"),
        (name = "refer-and-monitor", description = "Refer and Monitor an Intervention (CRS)"),
        (name = "support", description = "Dead letters, audit and replay (ROLE_PROBATION_INTEGRATION_ADMIN) and metrics"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer-JWT security scheme.
struct BearerJwt;

impl Modify for BearerJwt {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An HMPPS Auth access token (RS256). Roles are the `ROLE_…` entries of \
                         the `authorities` claim.",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /v3/api-docs` and the Swagger UI at `/swagger-ui/` (no auth).
pub fn routes() -> Router<AppState> {
    SwaggerUi::new(SWAGGER_UI_PATH)
        .url(API_DOCS_PATH, ApiDoc::openapi())
        .into()
}

/// Documentation of the health handlers (they live in `health.rs` and return free-form JSON).
/// These functions are never called: `#[utoipa::path]` only reads their annotations.
#[allow(dead_code)]
mod health_docs {
    /// Every dependency (same as readiness).
    #[utoipa::path(
        get, path = "/health", tag = "health", security(()),
        responses(
            (status = 200, description = "Up", body = serde_json::Value),
            (status = 503, description = "A dependency is down", body = serde_json::Value),
        )
    )]
    pub async fn health() {}

    /// The process answers.
    #[utoipa::path(
        get, path = "/health/liveness", tag = "health", security(()),
        responses((status = 200, description = "Up", body = serde_json::Value))
    )]
    pub async fn liveness() {}

    /// Database and broker reachable, projector position, whether the reference cache is
    /// listening (`DEGRADED` when not: lookups go to the database, still ready).
    #[utoipa::path(
        get, path = "/health/readiness", tag = "health", security(()),
        responses(
            (status = 200, description = "Ready", body = serde_json::Value),
            (status = 503, description = "A dependency is down", body = serde_json::Value),
        )
    )]
    pub async fn readiness() {}

    /// Build name, version and backend.
    #[utoipa::path(
        get, path = "/info", tag = "health", security(()),
        responses((status = 200, description = "Build information", body = serde_json::Value))
    )]
    pub async fn info() {}
}
