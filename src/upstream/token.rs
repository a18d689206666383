//! Client-credentials tokens from HMPPS Auth: `POST {auth}/auth/oauth/token?grant_type=
//! client_credentials` with HTTP basic auth, cached until `expires_in` minus a margin. The cache
//! lock is held across the fetch, so one fetch runs at a time and concurrent callers share its
//! result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{chain, error_body};

/// HMPPS Auth's token response (other fields are ignored).
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Lifetime in seconds; without it the token is used for one call only.
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A cached token and when to stop using it.
#[derive(Debug, Clone)]
struct Cached {
    value: Arc<str>,
    refresh_at: Instant,
}

/// Why no token could be had, and whether trying again soon may help.
#[derive(Debug)]
pub(crate) struct TokenFailure {
    pub(crate) message: String,
    /// Unreachable, timed out, 5xx or 429; a 4xx (bad credentials) or a bad body is not.
    pub(crate) transient: bool,
}

/// Fetches and caches client-credentials tokens.
pub(crate) struct TokenSource {
    url: Url,
    client_id: String,
    client_secret: String,
    margin: Duration,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("url", &self.url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(
        url: Url,
        client_id: String,
        client_secret: String,
        margin: Duration,
    ) -> Self {
        Self {
            url,
            client_id,
            client_secret,
            margin,
            cached: Mutex::new(None),
        }
    }

    /// A token valid for at least the margin: the cached one, or a fresh one.
    pub(crate) async fn get(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Arc<str>, TokenFailure> {
        let mut slot = self.cached.lock().await;
        if let Some(cached) = slot.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.value.clone());
            }
        }
        let fresh = self.fetch(http, timeout).await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// Forgets `stale` (a token the upstream refused), unless another caller has replaced it
    /// already.
    pub(crate) async fn invalidate(&self, stale: &str) {
        let mut slot = self.cached.lock().await;
        if slot.as_ref().is_some_and(|c| &*c.value == stale) {
            *slot = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Cached, TokenFailure> {
        let started = Instant::now();
        let url = self.url.as_str();
        let response = http
            .post(self.url.clone())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .send()
            .await;
        let failure = |message: String, transient: bool| {
            tracing::warn!(url, %message, elapsed_ms = started.elapsed().as_millis() as u64, "upstream token not fetched");
            TokenFailure { message, transient }
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => return Err(failure(format!("POST {url}: {}", chain(&error)), true)),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Err(failure(format!("POST {url}: {}", chain(&error)), true)),
        };
        if !status.is_success() {
            let transient = status.is_server_error() || status.as_u16() == 429;
            return Err(failure(
                format!("POST {url} answered {status}: {}", error_body(&body)),
                transient,
            ));
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|error| {
            failure(
                format!("POST {url}: unreadable token response: {error}"),
                false,
            )
        })?;
        let now = Instant::now();
        let lifetime =
            Duration::from_secs(token.expires_in.unwrap_or(0)).saturating_sub(self.margin);
        let refresh_at = now
            .checked_add(lifetime)
            .unwrap_or_else(|| now + Duration::from_secs(24 * 60 * 60));
        tracing::info!(
            url,
            status = status.as_u16(),
            expires_in = token.expires_in,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upstream token fetched"
        );
        Ok(Cached {
            value: token.access_token.into(),
            refresh_at,
        })
    }
}
