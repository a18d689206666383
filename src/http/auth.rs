//! Bearer JWT authentication and role checks, HMPPS Auth style.
//!
//! Tokens are RS256 JWTs. Roles are the `ROLE_…` strings of the `authorities` claim; the caller
//! is `user_name`, else `client_id`, else `sub`; `exp` is enforced (60 s leeway for clock skew);
//! the audience is not checked. The verifying key comes from the configuration
//! (`--jwt-public-key` / `JWT_PUBLIC_KEY_FILE`, a PEM RSA public key, or `--jwks-url` /
//! `JWKS_URL`, a JWKS fetched over HTTP, chosen by `kid`, cached, refetched on an unknown `kid`
//! and at most every [`JwksOptions::max_age`]).
//!
//! A sub-router protects its routes with [`require_roles`]; handlers learn who called with the
//! [`Caller`] extractor:
//!
//! ```ignore
//! pub fn routes(state: AppState) -> Router<AppState> {
//!     Router::new()
//!         .route("/probation-case/{crn}/referrals", put(put_referral))
//!         .route_layer(require_roles(&state, ROLES_R))
//! }
//!
//! async fn put_referral(caller: Caller, AppPath(crn): AppPath<Crn>) -> Result<StatusCode, ApiError> {
//!     tracing::info!(caller = %caller.name, %crn, "referral");
//!     Ok(StatusCode::NO_CONTENT)
//! }
//! ```
//!
//! A token that verified is remembered (see `VerifiedTokens`): presented again with the same
//! key and before its `exp` (plus leeway) it costs a map lookup, not an RSA check.
//!
//! No token, a malformed one, a bad signature, an unknown key or an expired token answer 401
//! (`WWW-Authenticate: Bearer`); a valid token without any of the route's roles answers 403. When
//! the JWKS cannot be fetched the answer is 503 with `Retry-After` (the token may be fine: the
//! caller should retry).
//!
//! **Without a configured key** ([`Auth::disabled`]) every protected call answers 401. `serve`
//! only allows that on the embedded default (no `DATABASE_URL`), where it logs a warning; with
//! `DATABASE_URL` it refuses to start (see `cli::serve`).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::{FromFnLayer, Next};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::error::ApiError;
use super::AppState;

/// Support endpoints (`/audit`, `/replay`, `/dead-letters`).
pub const ROLE_PROBATION_INTEGRATION_ADMIN: &str = "ROLE_PROBATION_INTEGRATION_ADMIN";
/// Refer and Monitor role "R": writes referrals and appointments (REFERENCE.md §2.1).
pub const ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW: &str =
    "ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW";
/// Refer and Monitor role "C": reads case details (REFERENCE.md §2.1).
pub const ROLE_CRS_REFERRAL: &str = "ROLE_CRS_REFERRAL";
/// The older name of role "C".
pub const ROLE_RM_REFERRAL: &str = "ROLE_RM_REFERRAL";

/// Routes marked "R" in REFERENCE.md §2.1.
pub const ROLES_R: &[&str] = &[ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW];
/// Routes marked "C" in REFERENCE.md §2.1 (either name of the role).
pub const ROLES_C: &[&str] = &[ROLE_CRS_REFERRAL, ROLE_RM_REFERRAL];
/// Routes marked "C or R" in REFERENCE.md §2.1.
pub const ROLES_C_OR_R: &[&str] = &[
    ROLE_CRS_REFERRAL,
    ROLE_RM_REFERRAL,
    ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW,
];
/// Support endpoints.
pub const ROLES_ADMIN: &[&str] = &[ROLE_PROBATION_INTEGRATION_ADMIN];

/// Who called: set by [`require_roles`] in the request extensions, taken by handlers as an
/// extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user_name`, else `client_id`, else `sub` of the token.
    pub name: String,
    /// The `authorities` claim (`ROLE_…`).
    pub roles: Vec<String>,
}

impl Caller {
    /// Whether the caller has `role` (spelled `ROLE_…`).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// Whether the caller has any of `roles`.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|role| self.has_role(role))
    }
}

/// Taking a `Caller` on a route without [`require_roles`] is a wiring mistake: it answers 500
/// (logged) rather than letting the call through unauthenticated.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::internal(format!(
                "handler for {} takes a Caller but the route has no require_roles layer",
                parts.uri.path()
            ))
        })
    }
}

/// A problem with the authentication configuration, found when `serve` starts.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The public key file cannot be read.
    #[error("reading the JWT public key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The public key is not a PEM RSA public key.
    #[error("the JWT public key is not a PEM RSA public key")]
    Key(#[source] jsonwebtoken::errors::Error),
    /// The JWKS URL is not an http(s) URL.
    #[error("the JWKS URL {0:?} is not an http(s) URL")]
    JwksUrl(String),
    /// The HTTP client for the JWKS cannot be built.
    #[error("building the JWKS HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Fetching a JWKS.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// Timeout of one fetch (connect and body).
    pub timeout: Duration,
    /// Keys older than this are refetched (a failed refetch keeps the old keys).
    pub max_age: Duration,
    /// An unknown `kid` refetches the JWKS at most this often, so random key ids cannot make
    /// every request fetch.
    pub min_refetch_interval: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(3600),
            min_refetch_interval: Duration::from_secs(10),
        }
    }
}

/// Verifies bearer tokens. Cheap to share (`Arc<Auth>` in [`AppState`]).
pub struct Auth {
    keys: Keys,
    validation: Validation,
    verified: VerifiedTokens,
}

enum Keys {
    /// One fixed key.
    Static(Arc<DecodingKey>),
    /// A JWKS endpoint.
    Jwks(Box<Jwks>),
    /// No key configured: every token is refused.
    Disabled,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.keys {
            Keys::Static(_) => "public key".to_owned(),
            Keys::Jwks(jwks) => format!("JWKS {}", jwks.url),
            Keys::Disabled => "disabled".to_owned(),
        };
        f.debug_struct("Auth").field("keys", &source).finish()
    }
}

/// Claims read from a token (the signature and `exp` are checked by jsonwebtoken).
#[derive(Deserialize)]
struct Claims {
    /// Required and checked by jsonwebtoken; optional here so that its absence is reported
    /// as such rather than as a claim that did not deserialize.
    exp: Option<u64>,
    #[serde(default)]
    authorities: Vec<String>,
    user_name: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
}

impl Auth {
    fn with_keys(keys: Keys) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            keys,
            validation,
            verified: VerifiedTokens::new(VERIFIED_TOKENS),
        }
    }

    /// Verifies with one PEM RSA public key (`-----BEGIN PUBLIC KEY-----` or
    /// `-----BEGIN RSA PUBLIC KEY-----`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, AuthConfigError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(AuthConfigError::Key)?;
        Ok(Self::with_keys(Keys::Static(Arc::new(key))))
    }

    /// Verifies with the PEM RSA public key in `path`.
    pub fn from_pem_file(path: &Path) -> Result<Self, AuthConfigError> {
        let pem = std::fs::read(path).map_err(|source| AuthConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem)
    }

    /// Verifies with the keys of the JWKS at `url`, with the default [`JwksOptions`]. Nothing is
    /// fetched until [`Auth::warm_up`] or the first token.
    pub fn from_jwks_url(url: &str) -> Result<Self, AuthConfigError> {
        Self::from_jwks_url_with(url, JwksOptions::default())
    }

    /// [`Auth::from_jwks_url`] with chosen options.
    pub fn from_jwks_url_with(url: &str, options: JwksOptions) -> Result<Self, AuthConfigError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|_| AuthConfigError::JwksUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AuthConfigError::JwksUrl(url.to_owned()));
        }
        // reqwest is built without a default crypto provider (STACK.md pitfall 12); `main`
        // installs ring, and so does this, for tests and other embedders. An error only means
        // one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(AuthConfigError::Client)?;
        Ok(Self::with_keys(Keys::Jwks(Box::new(Jwks {
            url: parsed,
            client,
            options,
            cache: RwLock::new(KeyCache::default()),
            fetching: Mutex::new(FetchState::default()),
        }))))
    }

    /// No key: every protected call answers 401.
    pub fn disabled() -> Self {
        Self::with_keys(Keys::Disabled)
    }

    /// Whether a key source is configured.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.keys, Keys::Disabled)
    }

    /// Fetches the JWKS now (when one is configured), so the first call does not wait; a failure
    /// is logged and retried on the next token.
    pub async fn warm_up(&self) {
        if let Keys::Jwks(jwks) = &self.keys {
            match jwks.refresh().await {
                Ok(count) => tracing::info!(url = %jwks.url, keys = count, "JWKS fetched"),
                Err(error) => {
                    tracing::warn!(url = %jwks.url, %error, "JWKS not fetched; retried on the next token");
                }
            }
        }
    }

    /// Verifies a raw token (without `Bearer `) and returns the caller.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthorized("malformed bearer token"))?;
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(jwks) => jwks.key(header.kid.as_deref()).await?,
            Keys::Disabled => {
                return Err(ApiError::unauthorized(
                    "no token verification key is configured",
                ))
            }
        };
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(caller) = self.verified.get(token, &key, now, self.validation.leeway) {
            return Ok(caller);
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => {
                        ApiError::unauthorized("bearer token has expired")
                    }
                    ErrorKind::InvalidSignature => {
                        ApiError::unauthorized("bearer token signature is invalid")
                    }
                    ErrorKind::InvalidAlgorithm => {
                        ApiError::unauthorized("bearer token algorithm must be RS256")
                    }
                    ErrorKind::MissingRequiredClaim(claim) => {
                        ApiError::unauthorized(format!("bearer token has no `{claim}` claim"))
                    }
                    _ => ApiError::unauthorized("bearer token is invalid"),
                }
            })?;
        let claims = data.claims;
        let name = [claims.user_name, claims.client_id, claims.sub]
            .into_iter()
            .flatten()
            .find(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("bearer token names no caller (user_name, client_id, sub)")
            })?;
        let caller = Caller {
            name,
            roles: claims.authorities,
        };
        if let Some(exp) = claims.exp {
            self.verified
                .insert(token, Verified::new(caller.clone(), exp, key), now);
        }
        Ok(caller)
    }

    /// Verifies the `Authorization: Bearer …` header and checks the caller has any of `roles`
    /// (an empty list only authenticates).
    pub async fn authorize(&self, headers: &HeaderMap, roles: &[&str]) -> Result<Caller, ApiError> {
        let token = bearer_token(headers)?;
        let caller = self.verify(token).await?;
        if roles.is_empty() || caller.has_any_role(roles) {
            Ok(caller)
        } else {
            Err(ApiError::forbidden(format!(
                "requires one of the roles {}",
                roles.join(", ")
            )))
        }
    }
}

/// How many verified tokens [`Auth`] remembers.
const VERIFIED_TOKENS: usize = 4_096;

/// Tokens that passed verification, so that a caller presenting its token again costs a map
/// lookup instead of an RS256 signature check (the RSA arithmetic was ~15 % of the machine's
/// CPU at 1 500 requests/s, issue 7; an upstream service reuses one client-credentials token
/// for its lifetime). An entry answers only for the very key object that verified it (a JWKS
/// refetch that drops or replaces the key makes it a miss, and the token is verified again)
/// and only until the token's `exp` plus the validation's leeway has passed — the same test
/// jsonwebtoken applies. Failed verifications are never kept. At capacity the expired entries
/// go first; if none has expired, the whole map is cleared (the next request of each caller
/// verifies again).
struct VerifiedTokens {
    entries: std::sync::Mutex<HashMap<Box<str>, Verified>>,
    capacity: usize,
}

/// A verified token's caller, its `exp` and the key that verified it.
struct Verified {
    caller: Caller,
    exp: u64,
    key: Arc<DecodingKey>,
}

impl Verified {
    fn new(caller: Caller, exp: u64, key: Arc<DecodingKey>) -> Self {
        Self { caller, exp, key }
    }

    fn valid_at(&self, now: u64, leeway: u64) -> bool {
        self.exp.saturating_add(leeway) >= now
    }
}

impl VerifiedTokens {
    fn new(capacity: usize) -> Self {
        Self {
            entries: std::sync::Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The caller of `token` if it was verified with `key` and has not expired at `now`.
    fn get(&self, token: &str, key: &Arc<DecodingKey>, now: u64, leeway: u64) -> Option<Caller> {
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.get(token)?;
        if entry.valid_at(now, leeway) && Arc::ptr_eq(&entry.key, key) {
            return Some(entry.caller.clone());
        }
        entries.remove(token);
        None
    }

    /// Remembers a verified token.
    fn insert(&self, token: &str, verified: Verified, now: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            // Expired entries cannot answer again (leeway 0: an entry within its leeway may be
            // dropped early; its caller is then verified again, nothing more).
            entries.retain(|_, entry| entry.valid_at(now, 0));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), verified);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// What [`require_roles`] keeps: the verifier and the roles of the routes it guards.
#[derive(Debug, Clone)]
pub struct RoleGuard {
    auth: Arc<Auth>,
    roles: &'static [&'static str],
}

/// The middleware function behind [`RequireRoles`].
pub type GuardFn =
    fn(State<RoleGuard>, Request, Next) -> Pin<Box<dyn Future<Output = Response> + Send>>;

/// The layer [`require_roles`] returns.
pub type RequireRoles = FromFnLayer<GuardFn, RoleGuard, (State<RoleGuard>, Request)>;

/// A layer that lets a request through only with a valid bearer token holding any of `roles`,
/// and puts the [`Caller`] in the request extensions. Use it as `.route_layer(…)` on a
/// sub-router (so unknown paths still answer 404, not 401):
///
/// ```ignore
/// Router::new()
///     .route("/probation-case/{crn}/details", get(details))
///     .route_layer(require_roles(&state, ROLES_C))
/// ```
pub fn require_roles(state: &AppState, roles: &'static [&'static str]) -> RequireRoles {
    let guard = RoleGuard {
        auth: state.auth.clone(),
        roles,
    };
    axum::middleware::from_fn_with_state(guard, guard_request as GuardFn)
}

fn guard_request(
    State(guard): State<RoleGuard>,
    mut request: Request,
    next: Next,
) -> Pin<Box<dyn Future<Output = Response> + Send>> {
    Box::pin(async move {
        match guard.auth.authorize(request.headers(), guard.roles).await {
            Ok(caller) => {
                tracing::debug!(caller = %caller.name, "authorized");
                request.extensions_mut().insert(caller);
                next.run(request).await
            }
            Err(error) => error.into_response(),
        }
    })
}

/// A JWKS endpoint and its cached keys.
struct Jwks {
    url: reqwest::Url,
    client: reqwest::Client,
    options: JwksOptions,
    cache: RwLock<KeyCache>,
    /// Held while fetching, so concurrent misses fetch once.
    fetching: Mutex<FetchState>,
}

#[derive(Default)]
struct KeyCache {
    /// Keys by `kid`.
    by_kid: HashMap<String, Arc<DecodingKey>>,
    /// Every usable key, for a token without `kid` (accepted when the set has exactly one).
    all: Vec<Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_failed: bool,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// The key for a token's `kid`: from the cache, else after one (rate-limited) refetch.
    async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, ApiError> {
        {
            let cache = self.cache.read().await;
            if let Some(key) = self.fresh(&cache, kid) {
                return Ok(key);
            }
        }
        let mut state = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (stale, fetched_at) = {
            let cache = self.cache.read().await;
            if let Some(key) = self.fresh(&cache, kid) {
                return Ok(key);
            }
            (lookup(&cache, kid), cache.fetched_at)
        };
        let recently_tried = state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.options.min_refetch_interval);
        if recently_tried {
            if let Some(key) = stale {
                return Ok(key);
            }
            if state.last_failed {
                return Err(keys_unavailable());
            }
            return Err(unknown_key(kid));
        }
        state.last_attempt = Some(Instant::now());
        match self.refresh().await {
            Ok(_) => {
                state.last_failed = false;
                let cache = self.cache.read().await;
                lookup(&cache, kid).ok_or_else(|| unknown_key(kid))
            }
            Err(error) => {
                state.last_failed = true;
                tracing::warn!(url = %self.url, %error, ?fetched_at, "JWKS fetch failed");
                stale.ok_or_else(keys_unavailable)
            }
        }
    }

    /// The cached key for `kid` when the cache is younger than `max_age`.
    fn fresh(&self, cache: &KeyCache, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.options.max_age);
        if fresh {
            lookup(cache, kid)
        } else {
            None
        }
    }

    /// Fetches the JWKS and replaces the cache; returns the number of usable keys.
    async fn refresh(&self) -> Result<usize, String> {
        let response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(|error| error_chain(&error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("JWKS answered {status}"));
        }
        let set: RawJwkSet = response.json().await.map_err(|error| error_chain(&error))?;
        let mut cache = KeyCache {
            fetched_at: Some(Instant::now()),
            ..KeyCache::default()
        };
        for value in set.keys {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(error) => {
                    tracing::debug!(%error, "JWKS entry skipped");
                    continue;
                }
            };
            if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                tracing::debug!(kid = ?jwk.common.key_id, "JWKS key not usable, skipped");
                continue;
            };
            let key = Arc::new(key);
            if let Some(kid) = jwk.common.key_id {
                cache.by_kid.insert(kid, key.clone());
            }
            cache.all.push(key);
        }
        let count = cache.all.len();
        *self.cache.write().await = cache;
        Ok(count)
    }
}

/// An error and its sources, `: `-separated (reqwest's own message names only the URL).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn lookup(cache: &KeyCache, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
    match kid {
        Some(kid) => cache.by_kid.get(kid).cloned(),
        None if cache.all.len() == 1 => cache.all.first().cloned(),
        None => None,
    }
}

fn unknown_key(kid: Option<&str>) -> ApiError {
    match kid {
        Some(kid) => {
            ApiError::unauthorized(format!("bearer token signed with unknown key `{kid}`"))
        }
        None => ApiError::unauthorized("bearer token has no key id (`kid`)"),
    }
}

fn keys_unavailable() -> ApiError {
    ApiError::unavailable("cannot fetch the token signing keys", 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_PEM: &[u8] = include_bytes!("../../tests/it/keys/test-only-public.pem");

    fn key() -> Arc<DecodingKey> {
        Arc::new(DecodingKey::from_rsa_pem(PUBLIC_PEM).expect("test key"))
    }

    fn caller(name: &str) -> Caller {
        Caller {
            name: name.into(),
            roles: vec![ROLE_CRS_REFERRAL.into()],
        }
    }

    #[test]
    fn a_verified_token_answers_until_exp_plus_leeway() {
        let cache = VerifiedTokens::new(8);
        let key = key();
        cache.insert("t", Verified::new(caller("a"), 1_000, key.clone()), 900);
        assert_eq!(cache.get("t", &key, 900, 60), Some(caller("a")));
        assert_eq!(cache.get("t", &key, 1_060, 60), Some(caller("a")));
        // Past exp + leeway: a miss, and the entry is gone (decode then reports the expiry).
        assert_eq!(cache.get("t", &key, 1_061, 60), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_token_answers_only_for_the_key_that_verified_it() {
        let cache = VerifiedTokens::new(8);
        let (first, second) = (key(), key());
        cache.insert("t", Verified::new(caller("a"), 1_000, first.clone()), 0);
        assert_eq!(cache.get("t", &second, 0, 60), None);
        assert_eq!(
            cache.get("t", &first, 0, 60),
            None,
            "a miss drops the entry"
        );
        assert_eq!(cache.get("other", &first, 0, 60), None);
    }

    #[test]
    fn at_capacity_expired_entries_go_first_then_everything() {
        let cache = VerifiedTokens::new(2);
        let key = key();
        cache.insert("old", Verified::new(caller("a"), 10, key.clone()), 0);
        cache.insert("live", Verified::new(caller("b"), 1_000, key.clone()), 0);
        cache.insert("new", Verified::new(caller("c"), 1_000, key.clone()), 500);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("live", &key, 500, 0), Some(caller("b")));
        assert_eq!(cache.get("new", &key, 500, 0), Some(caller("c")));
        // Full of live entries: cleared, then the new one kept.
        cache.insert("newer", Verified::new(caller("d"), 1_000, key.clone()), 500);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("newer", &key, 500, 0), Some(caller("d")));
        // Re-inserting a known token at capacity replaces it in place.
        cache.insert("x", Verified::new(caller("e"), 1_000, key.clone()), 500);
        cache.insert("x", Verified::new(caller("f"), 1_000, key.clone()), 500);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("x", &key, 500, 0), Some(caller("f")));
    }
}
