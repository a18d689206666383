//! The one error type of the HTTP interface: JSON `{status, code, message}` bodies.
//!
//! Every error answered to a caller is an [`ApiError`], built with one of its constructors, which
//! are the single table of status codes and stable codes:
//!
//! | constructor | status | code |
//! |---|---|---|
//! | [`ApiError::bad_request`] | 400 | given (`invalid_request`, `invalid_crn`, `invalid_uuid`, `invalid_path`…) |
//! | [`ApiError::unauthorized`] | 401 + `WWW-Authenticate: Bearer` | `unauthorized` |
//! | [`ApiError::forbidden`] | 403 | `forbidden` |
//! | [`ApiError::not_found`] | 404 | `not_found` |
//! | [`ApiError::method_not_allowed`] | 405 | `method_not_allowed` |
//! | [`ApiError::conflict`] | 409 | given (`appointment_clash`…) |
//! | [`ApiError::internal`] | 500, opaque message, cause logged once | `internal_error` |
//! | [`ApiError::unavailable`] | 503 + `Retry-After` | `unavailable` |
//!
//! [`ErrorBody`] is the same body as a schema, for the OpenAPI document.

use axum::extract::rejection::PathRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answered to an HTTP caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable code (`not_found`, `invalid_request`…).
    pub code: &'static str,
    /// What went wrong, for a person; never internal details (see [`ApiError::internal`]).
    pub message: String,
    /// Seconds a caller should wait before retrying (`Retry-After`), set by
    /// [`ApiError::unavailable`].
    pub retry_after_secs: Option<u32>,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "status": 404,
    "code": "not_found",
    "message": "no person with CRN X123456"
}))]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub status: u16,
    /// A stable, machine-readable code: `invalid_request`, `invalid_crn`, `invalid_uuid`,
    /// `invalid_path`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, a
    /// conflict code such as `appointment_clash`, `internal_error`, `unavailable`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code; prefer the named constructors.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400: the request is invalid (`code` says how: `invalid_request`, `invalid_crn`…).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no usable bearer token. Answered with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid token without a role the route needs.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 409: the request clashes with the current state (`code` says how).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 503 with `Retry-After: retry_after_secs`: try again later (contention, a dependency
    /// down).
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u32) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// 500: the cause is logged once here and not shown to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    /// The body this error is answered with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A failed [`axum::extract::Path`] is a 400 `invalid_path` (or a 500 when the route has no
/// parameters at all: a wiring mistake). Prefer [`super::extract::AppPath`].
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::MissingPathParams(missing) => Self::internal(missing.body_text()),
            other => Self::bad_request("invalid_path", other.body_text()),
        }
    }
}

/// Answers routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

/// Answers a known path with a method it does not have.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("method not allowed on this resource")
}
