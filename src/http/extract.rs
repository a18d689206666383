//! Extractors whose every rejection is an [`ApiError`] JSON body.
//!
//! - [`AppJson<T>`]: a JSON body (and a JSON response). Any problem — no JSON content type, bad
//!   syntax, a missing field, a wrong type — is a 400 `invalid_request` whose message names the
//!   field path, e.g. `outcome.attended: unknown variant `MAYBE`, expected …`.
//! - [`AppPath<T>`]: path parameters, **by position**, each parsed by its [`PathParam`] type:
//!   [`Crn`] (400 `invalid_crn`), [`Uuid`] (400 `invalid_uuid`), `i64` and `String` (400
//!   `invalid_path`). `T` is one parameter or a tuple of two or three, matching the route's
//!   parameters in order:
//!
//! ```ignore
//! // PUT /probation-case/{crn}/referrals
//! async fn put_referral(
//!     AppPath(crn): AppPath<Crn>,
//!     AppJson(body): AppJson<ReferralRequest>,
//! ) -> Result<StatusCode, ApiError> { /* … */ }
//!
//! // PUT /probation-case/{crn}/referrals/{referralId}/appointments
//! async fn put_appointment(
//!     AppPath((crn, referral_id)): AppPath<(Crn, Uuid)>,
//!     AppJson(body): AppJson<MergeAppointment>,
//! ) -> Result<AppJson<AppointmentId>, ApiError> { /* … */ }
//!
//! // GET /probation-case/{crn}/convictions/{id}
//! async fn conviction(
//!     AppPath((crn, id)): AppPath<(Crn, i64)>,
//! ) -> Result<AppJson<ConvictionResponse>, ApiError> { /* … */ }
//! ```
//!
//! A route whose parameter count differs from the extractor's is a wiring mistake: 500, logged.

use std::fmt;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use uuid::Uuid;

use super::error::ApiError;

/// A JSON request body or response. Rejections are 400 `invalid_request` naming the field path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> AppJson<T> {
    /// Parses a JSON document as the extractor does (without the content-type check).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
        deserializer.end().map_err(|error| {
            ApiError::bad_request("invalid_request", format!("invalid JSON: {error}"))
        })?;
        Ok(Self(value))
    }
}

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::bad_request(
                "invalid_request",
                "expected a JSON body (`Content-Type: application/json`)",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "invalid_request"
                };
                ApiError::new(status, code, rejection.body_text())
            })?;
        Self::from_bytes(&bytes)
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            Err(error) => {
                ApiError::internal(format!("serializing a response: {error}")).into_response()
            }
        }
    }
}

/// `application/json` or `application/…+json`, any parameters.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner();
    let message = match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("invalid JSON: {inner}"),
        Category::Data if path == "." => inner.to_string(),
        Category::Data => format!("{path}: {inner}"),
    };
    ApiError::bad_request("invalid_request", message)
}

/// A case reference number: a capital letter and six digits (`X123456`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Crn(String);

/// A string that is not a CRN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a CRN (a capital letter and six digits, e.g. X123456)")]
pub struct InvalidCrn(String);

impl Crn {
    /// Checks `value` is a letter `A`–`Z` and six digits `0`–`9`.
    pub fn parse(value: &str) -> Result<Self, InvalidCrn> {
        let bytes = value.as_bytes();
        let valid = bytes.len() == 7
            && bytes[0].is_ascii_uppercase()
            && bytes[1..].iter().all(u8::is_ascii_digit);
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            // Echo at most a few characters of what was sent.
            Err(InvalidCrn(value.chars().take(20).collect()))
        }
    }

    /// The CRN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Crn {
    type Err = InvalidCrn;

    fn from_str(value: &str) -> Result<Self, InvalidCrn> {
        Self::parse(value)
    }
}

impl TryFrom<String> for Crn {
    type Error = InvalidCrn;

    fn try_from(value: String) -> Result<Self, InvalidCrn> {
        Self::parse(&value)
    }
}

impl From<Crn> for String {
    fn from(crn: Crn) -> Self {
        crn.0
    }
}

impl AsRef<str> for Crn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Crn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for Crn {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z][0-9]{6}$"))
            .description(Some("Case reference number"))
            .examples(["X123456"])
            .into()
    }
}

impl utoipa::ToSchema for Crn {}

/// One path parameter, parsed from its percent-decoded text. Implement it for a new type to use
/// that type in [`AppPath`].
pub trait PathParam: Sized {
    /// Parses the parameter `name` (for messages) from `value`.
    fn from_path(name: &str, value: &str) -> Result<Self, ApiError>;
}

impl PathParam for Crn {
    fn from_path(name: &str, value: &str) -> Result<Self, ApiError> {
        Crn::parse(value)
            .map_err(|error| ApiError::bad_request("invalid_crn", format!("{name}: {error}")))
    }
}

impl PathParam for Uuid {
    fn from_path(name: &str, value: &str) -> Result<Self, ApiError> {
        parse_uuid(name, value)
    }
}

impl PathParam for String {
    fn from_path(_name: &str, value: &str) -> Result<Self, ApiError> {
        Ok(value.to_owned())
    }
}

impl PathParam for i64 {
    fn from_path(name: &str, value: &str) -> Result<Self, ApiError> {
        value.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_path",
                format!("{name}: `{}` is not an integer", truncated(value)),
            )
        })
    }
}

/// Parses a UUID path segment (400 `invalid_uuid` naming the parameter otherwise).
pub fn parse_uuid(name: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| {
        ApiError::bad_request(
            "invalid_uuid",
            format!("{name}: `{}` is not a UUID", truncated(value)),
        )
    })
}

fn truncated(value: &str) -> String {
    value.chars().take(40).collect()
}

/// All the path parameters of a route, in order: one [`PathParam`] or a tuple of two or three.
pub trait PathParams: Sized {
    /// Parses `(name, value)` pairs in route order.
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError>;
}

fn expect_count(params: &[(&str, &str)], expected: usize) -> Result<(), ApiError> {
    if params.len() == expected {
        Ok(())
    } else {
        Err(ApiError::internal(format!(
            "the route has {} path parameters, the extractor expects {expected}",
            params.len()
        )))
    }
}

impl<P: PathParam> PathParams for P {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        expect_count(params, 1)?;
        let (name, value) = params[0];
        P::from_path(name, value)
    }
}

impl<A: PathParam, B: PathParam> PathParams for (A, B) {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        expect_count(params, 2)?;
        Ok((
            A::from_path(params[0].0, params[0].1)?,
            B::from_path(params[1].0, params[1].1)?,
        ))
    }
}

impl<A: PathParam, B: PathParam, C: PathParam> PathParams for (A, B, C) {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        expect_count(params, 3)?;
        Ok((
            A::from_path(params[0].0, params[0].1)?,
            B::from_path(params[1].0, params[1].1)?,
            C::from_path(params[2].0, params[2].1)?,
        ))
    }
}

/// Path parameters by position (see the module documentation): `AppPath<Crn>`,
/// `AppPath<(Crn, Uuid)>`…
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: PathParams,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| match rejection {
                RawPathParamsRejection::MissingPathParams(missing) => {
                    ApiError::internal(missing.body_text())
                }
                other => ApiError::bad_request("invalid_path", other.body_text()),
            })?;
        let params: Vec<(&str, &str)> = raw.iter().collect();
        T::from_params(&params).map(AppPath)
    }
}
