//! One HTTP client for every upstream call: the `detailUrl` callbacks to the interventions
//! service and Manage POM Cases, and the Prison API (DESIGN.md §5).
//!
//! [`UpstreamClient`] only calls URLs under a configured base (scheme, host, port and path
//! prefix; see [`UpstreamConfig::bases`]): anything else — another host, port or scheme, a
//! non-http(s) URL, userinfo — is [`UpstreamError::ForeignUrl`] and **no request is made**.
//! Redirects are never followed.
//!
//! Every request has a timeout ([`UpstreamConfig::timeout`]). Transient failures — connect
//! errors, timeouts, 5xx and 429 — are retried up to [`UpstreamConfig::attempts`] attempts in
//! all, with exponential backoff and jitter (a `Retry-After` in seconds is honoured up to
//! [`UpstreamConfig::backoff_max`]); other 4xx are not retried. A 401 drops the cached token and
//! retries once with a fresh one (not counted as a transient failure).
//!
//! Tokens are HMPPS Auth client-credentials tokens, sent as `Authorization: Bearer`, cached
//! until [`UpstreamConfig::token_margin`] before they expire, one fetch at a time. **Without
//! [`UpstreamConfig::credentials`] (no `HMPPS_AUTH_URL`), upstreams are called without a
//! token** — for tests and local stubs.
//!
//! Each call is logged with tracing (target `delius_bridge::upstream`): method, URL without
//! query, status, attempt and elapsed milliseconds.
//!
//! ```no_run
//! # async fn example(client: delius_bridge::upstream::UpstreamClient) -> Result<(), delius_bridge::upstream::UpstreamError> {
//! use delius_bridge::upstream::Lookup;
//!
//! #[derive(serde::Deserialize)]
//! struct Allocation { manager: serde_json::Value }
//!
//! match client.get_json_or_not_found::<Allocation>("http://pom/api/pom-allocation/A0123BY/1").await? {
//!     Lookup::Found(allocation) => { /* update Delius */ }
//!     Lookup::NotFound { .. } => { /* e.g. "Not allocated": ignorable */ }
//! }
//! # Ok(()) }
//! ```

mod allow;
mod error;
mod token;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::{UpstreamError, MAX_ERROR_BODY};

use crate::config::UpstreamArgs;
use allow::{without_query, AllowList};
use error::{chain, error_body};
use token::TokenSource;

/// HMPPS Auth client credentials.
#[derive(Clone)]
pub struct ClientCredentials {
    /// HMPPS Auth base URL; tokens come from
    /// `{auth_url}/auth/oauth/token?grant_type=client_credentials`.
    pub auth_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (redacted in `Debug`).
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("auth_url", &self.auth_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Everything [`UpstreamClient`] needs; [`UpstreamConfig::new`] gives the defaults of
/// [`UpstreamArgs`] plus the backoff and token settings the command line does not expose.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URLs the client may call: a URL is allowed if it has a base's scheme, host and
    /// port (default ports made explicit) and its path is the base's path or below it.
    pub bases: Vec<String>,
    /// Client credentials; `None` calls upstreams without a token.
    pub credentials: Option<ClientCredentials>,
    /// Timeout of one request (connect to complete body); also of a token request.
    pub timeout: Duration,
    /// Attempts per call, at least 1; only transient failures are retried.
    pub attempts: u32,
    /// Backoff before the first retry; it doubles each retry, with jitter (between half and
    /// all of it).
    pub backoff_initial: Duration,
    /// The most any backoff (or honoured `Retry-After`) waits.
    pub backoff_max: Duration,
    /// A token is refreshed this long before it expires.
    pub token_margin: Duration,
}

impl UpstreamConfig {
    /// Defaults: 5 s timeout, 3 attempts, backoff 200 ms doubling up to 5 s, tokens refreshed
    /// 60 s before expiry, no credentials.
    pub fn new<S: Into<String>>(bases: impl IntoIterator<Item = S>) -> Self {
        Self {
            bases: bases.into_iter().map(Into::into).collect(),
            credentials: None,
            timeout: Duration::from_millis(5000),
            attempts: 3,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            token_margin: Duration::from_secs(60),
        }
    }
}

/// A configuration the client cannot be built from.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamConfigError {
    /// An upstream base URL is not an http(s) URL without userinfo, query or fragment.
    #[error("upstream base URL {url:?} is invalid: {reason}")]
    InvalidBase {
        /// The base as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HMPPS Auth URL is not an http(s) URL.
    #[error("HMPPS Auth URL {url:?} is invalid: {reason}")]
    InvalidAuthUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// HMPPS_AUTH_URL is set but CLIENT_ID or CLIENT_SECRET is not.
    #[error("HMPPS_AUTH_URL is set but CLIENT_ID and CLIENT_SECRET are not both set")]
    MissingCredentials,
    /// CLIENT_ID or CLIENT_SECRET is set without HMPPS_AUTH_URL (calls would go out without
    /// a token and fail with 401).
    #[error("CLIENT_ID or CLIENT_SECRET is set without HMPPS_AUTH_URL")]
    CredentialsWithoutAuthUrl,
    /// Zero attempts or a zero timeout.
    #[error("invalid upstream setting: {0}")]
    InvalidSetting(&'static str),
    /// The HTTP client could not be built.
    #[error("the upstream HTTP client could not be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// What [`UpstreamClient::get_json_or_not_found`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// A 2xx with the decoded body.
    Found(T),
    /// A 404, with its body as text (cut to [`MAX_ERROR_BODY`] bytes).
    NotFound {
        /// The response body.
        body: String,
    },
}

impl<T> Lookup<T> {
    /// The value, if found.
    pub fn found(self) -> Option<T> {
        match self {
            Self::Found(value) => Some(value),
            Self::NotFound { .. } => None,
        }
    }

    /// The `message` of a JSON 404 body such as Manage POM Cases'
    /// `{"status":"error","message":"Not allocated"}`; `None` when found or when the body has
    /// no string `message`.
    pub fn not_found_message(&self) -> Option<String> {
        match self {
            Self::Found(_) => None,
            Self::NotFound { body } => serde_json::from_str::<serde_json::Value>(body)
                .ok()?
                .get("message")?
                .as_str()
                .map(str::to_owned),
        }
    }
}

/// The HTTP client for upstream calls. Cheap to clone: clones share the connection pool and
/// the token cache.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    allow: AllowList,
    tokens: Option<TokenSource>,
    timeout: Duration,
    attempts: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("bases", &self.inner.allow.describe())
            .field("tokens", &self.inner.tokens)
            .field("timeout", &self.inner.timeout)
            .field("attempts", &self.inner.attempts)
            .finish_non_exhaustive()
    }
}

/// One attempt's result.
enum Step {
    /// Final: a 2xx body, or an error not worth retrying.
    Done(Result<Vec<u8>, UpstreamError>),
    /// Transient: retry after the backoff (or at least `after`, from `Retry-After`).
    Retry {
        error: UpstreamError,
        after: Option<Duration>,
    },
    /// 401 with this token: drop it and retry once with a fresh one.
    Refresh(Arc<str>),
}

impl UpstreamClient {
    /// The client of `serve`: bases from `INTERVENTIONS_API_URL`, `MANAGE_POM_CASES_API_URL`
    /// and `PRISON_API_URL` (unset or empty ones are skipped), credentials from
    /// `HMPPS_AUTH_URL`, `CLIENT_ID` and `CLIENT_SECRET` (all three or none), and the timeout
    /// and attempts; backoff and token margin are [`UpstreamConfig::new`]'s defaults.
    pub fn from_args(args: &UpstreamArgs) -> Result<Self, UpstreamConfigError> {
        let set = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let bases = [
            &args.interventions_url,
            &args.manage_pom_cases_url,
            &args.prison_api_url,
        ]
        .into_iter()
        .filter_map(set);
        let mut config = UpstreamConfig::new(bases);
        config.credentials = match (
            set(&args.hmpps_auth_url),
            set(&args.client_id),
            set(&args.client_secret),
        ) {
            (Some(auth_url), Some(client_id), Some(client_secret)) => Some(ClientCredentials {
                auth_url,
                client_id,
                client_secret,
            }),
            (Some(_), _, _) => return Err(UpstreamConfigError::MissingCredentials),
            (None, None, None) => None,
            (None, _, _) => return Err(UpstreamConfigError::CredentialsWithoutAuthUrl),
        };
        config.timeout = Duration::from_millis(args.upstream_timeout_ms);
        config.attempts = args.upstream_attempts;
        Self::from_config(config)
    }

    /// A client from an explicit configuration.
    ///
    /// reqwest is built without a crypto provider of its own (STACK.md pitfall 12): this
    /// installs rustls' ring provider as the process default if none is installed yet.
    pub fn from_config(config: UpstreamConfig) -> Result<Self, UpstreamConfigError> {
        if config.attempts == 0 {
            return Err(UpstreamConfigError::InvalidSetting(
                "attempts must be at least 1",
            ));
        }
        if config.timeout.is_zero() {
            return Err(UpstreamConfigError::InvalidSetting(
                "timeout must be positive",
            ));
        }
        let allow = AllowList::new(config.bases.iter().map(String::as_str))
            .map_err(|(url, reason)| UpstreamConfigError::InvalidBase { url, reason })?;
        let tokens = match config.credentials {
            None => None,
            Some(credentials) => {
                let invalid = |reason: String| UpstreamConfigError::InvalidAuthUrl {
                    url: credentials.auth_url.clone(),
                    reason,
                };
                let base = allow::parse_http(&credentials.auth_url).map_err(invalid)?;
                let url = Url::parse(&format!(
                    "{}/auth/oauth/token?grant_type=client_credentials",
                    base.as_str().trim_end_matches('/')
                ))
                .map_err(|e| invalid(e.to_string()))?;
                Some(TokenSource::new(
                    url,
                    credentials.client_id,
                    credentials.client_secret,
                    config.token_margin,
                ))
            }
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("delius-bridge/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .build()
            .map_err(UpstreamConfigError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                allow,
                tokens,
                timeout: config.timeout,
                attempts: config.attempts,
                backoff_initial: config.backoff_initial,
                backoff_max: config.backoff_max.max(config.backoff_initial),
            }),
        })
    }

    /// Whether `url` may be called: `Ok` if it is under a configured base, otherwise
    /// [`UpstreamError::ForeignUrl`]. Makes no request.
    pub fn check_url(&self, url: &str) -> Result<(), UpstreamError> {
        self.allowed(url).map(|_| ())
    }

    /// GETs `url` and decodes its JSON body. A 404 is [`UpstreamError::NotFound`]; see
    /// [`get_json_or_not_found`](Self::get_json_or_not_found) to treat it as an answer.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, UpstreamError> {
        let url = self.allowed(url)?;
        let (url, body) = self.call(Method::GET, url, None).await?;
        decode(&url, &body)
    }

    /// GETs `url`: [`Lookup::Found`] with the decoded body, or [`Lookup::NotFound`] with the
    /// 404's body (for the caller to tell "Not allocated" from a missing record). Every other
    /// failure is an [`UpstreamError`], as for [`get_json`](Self::get_json).
    pub async fn get_json_or_not_found<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<Lookup<T>, UpstreamError> {
        match self.get_json(url).await {
            Ok(value) => Ok(Lookup::Found(value)),
            Err(UpstreamError::NotFound { body, .. }) => Ok(Lookup::NotFound { body }),
            Err(error) => Err(error),
        }
    }

    /// POSTs `body` as JSON to `url` and decodes the JSON response (an empty response body
    /// decodes as `null`, so `T = ()` or `Option<_>` accept it). Retried like a GET: the
    /// upstream POSTs this client makes are queries, safe to repeat.
    pub async fn post_json<B, T>(&self, url: &str, body: &B) -> Result<T, UpstreamError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let url = self.allowed(url)?;
        let encoded = serde_json::to_vec(body).map_err(|error| UpstreamError::Encode {
            url: without_query(&url),
            message: error.to_string(),
        })?;
        let (url, body) = self.call(Method::POST, url, Some(encoded)).await?;
        decode(&url, &body)
    }

    /// `url` parsed, if allowed.
    fn allowed(&self, url: &str) -> Result<Url, UpstreamError> {
        self.inner.allow.check(url).map_err(|reason| {
            tracing::warn!(url, %reason, "upstream URL refused");
            UpstreamError::ForeignUrl {
                url: url.to_owned(),
                reason,
            }
        })
    }

    /// Makes the request to an allowed `url` with retries; the URL without its query and the
    /// 2xx body.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<(String, Vec<u8>), UpstreamError> {
        let log_url = without_query(&url);
        let mut attempt = 0u32;
        let mut failures = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let step = self
                .attempt(
                    &method,
                    &url,
                    &log_url,
                    body.as_deref(),
                    attempt,
                    !refreshed,
                )
                .await;
            match step {
                Step::Done(result) => return result.map(|body| (log_url, body)),
                Step::Refresh(stale) => {
                    if let Some(tokens) = &self.inner.tokens {
                        tokens.invalidate(&stale).await;
                    }
                    refreshed = true;
                }
                Step::Retry { error, after } => {
                    failures += 1;
                    if failures >= self.inner.attempts {
                        tracing::warn!(url = %log_url, attempts = attempt, %error, "upstream call failed");
                        return Err(error);
                    }
                    let delay = self.backoff(failures, after);
                    tracing::debug!(url = %log_url, attempt, delay_ms = delay.as_millis() as u64, %error, "upstream call retried");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One attempt: a token (if configured), then the request.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        log_url: &str,
        body: Option<&[u8]>,
        attempt: u32,
        may_refresh: bool,
    ) -> Step {
        let token = match &self.inner.tokens {
            None => None,
            Some(tokens) => match tokens.get(&self.inner.http, self.inner.timeout).await {
                Ok(token) => Some(token),
                Err(failure) => {
                    let error = UpstreamError::Token {
                        message: failure.message,
                    };
                    return if failure.transient {
                        Step::Retry { error, after: None }
                    } else {
                        Step::Done(Err(error))
                    };
                }
            },
        };
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json");
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let result = async {
            let response = request.send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, body.to_vec()))
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (status, retry_after, bytes) = match result {
            Ok(parts) => parts,
            Err(error) => {
                let message = chain(&error);
                tracing::warn!(%method, url = log_url, attempt, elapsed_ms, error = %message, "upstream call failed");
                let error = if error.is_timeout() {
                    UpstreamError::Timeout {
                        url: log_url.to_owned(),
                        attempts: attempt,
                    }
                } else {
                    UpstreamError::Connect {
                        url: log_url.to_owned(),
                        attempts: attempt,
                        message,
                    }
                };
                return Step::Retry { error, after: None };
            }
        };
        tracing::info!(%method, url = log_url, status = status.as_u16(), attempt, elapsed_ms, "upstream call");
        let url = || log_url.to_owned();
        match status {
            s if s.is_success() => Step::Done(Ok(bytes)),
            StatusCode::UNAUTHORIZED if may_refresh => match token {
                Some(token) => Step::Refresh(token),
                None => Step::Done(Err(UpstreamError::ClientError {
                    url: url(),
                    status: 401,
                    body: error_body(&bytes),
                })),
            },
            StatusCode::NOT_FOUND => Step::Done(Err(UpstreamError::NotFound {
                url: url(),
                body: error_body(&bytes),
            })),
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => Step::Retry {
                error: UpstreamError::ServerError {
                    url: url(),
                    status: s.as_u16(),
                    body: error_body(&bytes),
                    attempts: attempt,
                },
                after: retry_after,
            },
            s if s.is_client_error() => Step::Done(Err(UpstreamError::ClientError {
                url: url(),
                status: s.as_u16(),
                body: error_body(&bytes),
            })),
            s => Step::Done(Err(UpstreamError::UnexpectedStatus {
                url: url(),
                status: s.as_u16(),
                body: error_body(&bytes),
            })),
        }
    }

    /// The wait before retry number `failures` (1 = first retry).
    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        backoff(
            self.inner.backoff_initial,
            self.inner.backoff_max,
            failures,
            retry_after,
            random_fraction(),
        )
    }
}

/// Exponential backoff with "equal jitter": `initial × 2^(failures-1)`, capped at `max`, of
/// which the second half is scaled by `fraction` (0..=1); at least `retry_after`, still capped.
fn backoff(
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    fraction: f64,
) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = initial.saturating_mul(1 << exponent).min(max);
    let jittered = full / 2 + (full / 2).mul_f64(fraction.clamp(0.0, 1.0));
    retry_after.map_or(jittered, |after| after.max(jittered).min(max))
}

/// A number in 0..=1 from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
    hasher.finish() as f64 / u64::MAX as f64
}

/// Decodes a JSON body, naming the path where it went wrong; an empty body is `null`.
fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, UpstreamError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        UpstreamError::Decode {
            url: url.to_owned(),
            path: error.path().to_string(),
            message: error.inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|error| UpstreamError::Decode {
        url: url.to_owned(),
        path: ".".to_owned(),
        message: error.to_string(),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(
            backoff(initial, max, 1, None, 0.0),
            Duration::from_millis(50)
        );
        assert_eq!(
            backoff(initial, max, 1, None, 1.0),
            Duration::from_millis(100)
        );
        assert_eq!(
            backoff(initial, max, 3, None, 1.0),
            Duration::from_millis(400)
        );
        assert_eq!(backoff(initial, max, 30, None, 1.0), max);
        let d = backoff(initial, max, 2, None, random_fraction());
        assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200));
        assert_eq!(
            backoff(initial, max, 1, Some(Duration::from_millis(700)), 0.0),
            Duration::from_millis(700)
        );
        assert_eq!(
            backoff(initial, max, 1, Some(Duration::from_secs(60)), 0.0),
            max
        );
    }

    #[test]
    fn decode_names_the_path_and_accepts_an_empty_body_as_null() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Referral {
            referral: Inner,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            id: String,
        }
        let error = decode::<Referral>("http://h/r", br#"{"referral":{"id":7}}"#)
            .expect_err("id is not a string");
        match error {
            UpstreamError::Decode { path, .. } => assert_eq!(path, "referral.id"),
            other => panic!("unexpected {other:?}"),
        }
        decode::<()>("http://h/r", b"").expect("empty body is unit");
        assert!(decode::<serde_json::Value>("http://h/r", b"{} x").is_err());
    }

    #[test]
    fn lookup_exposes_the_not_found_message() {
        let lookup = Lookup::<()>::NotFound {
            body: r#"{"status":"error","message":"Not allocated"}"#.into(),
        };
        assert_eq!(lookup.not_found_message().as_deref(), Some("Not allocated"));
        assert_eq!(
            Lookup::<()>::NotFound { body: "x".into() }.not_found_message(),
            None
        );
        assert_eq!(Lookup::Found(1).found(), Some(1));
    }

    #[test]
    fn configuration_is_validated() {
        let mut config = UpstreamConfig::new(["http://localhost:1"]);
        config.attempts = 0;
        assert!(matches!(
            UpstreamClient::from_config(config),
            Err(UpstreamConfigError::InvalidSetting(_))
        ));
        assert!(matches!(
            UpstreamClient::from_config(UpstreamConfig::new(["ftp://x"])),
            Err(UpstreamConfigError::InvalidBase { .. })
        ));
        let args = |auth: Option<&str>, id: Option<&str>| UpstreamArgs {
            interventions_url: Some("http://interventions".into()),
            manage_pom_cases_url: Some(String::new()),
            prison_api_url: None,
            hmpps_auth_url: auth.map(str::to_owned),
            client_id: id.map(str::to_owned),
            client_secret: id.map(|_| "s3cr3t-value".to_owned()),
            upstream_timeout_ms: 200,
            upstream_attempts: 2,
        };
        assert!(matches!(
            UpstreamClient::from_args(&args(Some("http://auth"), None)),
            Err(UpstreamConfigError::MissingCredentials)
        ));
        assert!(matches!(
            UpstreamClient::from_args(&args(None, Some("id"))),
            Err(UpstreamConfigError::CredentialsWithoutAuthUrl)
        ));
        let client = UpstreamClient::from_args(&args(Some("http://auth/"), Some("id")))
            .expect("valid configuration");
        assert!(client
            .check_url("http://interventions/sent-referral/1")
            .is_ok());
        assert!(client.check_url("http://auth/auth/oauth/token").is_err());
        assert!(!format!("{client:?}").contains("s3cr3t-value"));
    }
}
