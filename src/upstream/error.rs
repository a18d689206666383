//! What an upstream call can come to, named by what the consumer must do about it.
//!
//! Each variant documents its disposition in the terms of
//! [`HandlerOutcome`](crate::amqp::outcome::HandlerOutcome): **rejected** (permanent: dead-letter
//! at once, retrying cannot change it) or **failed** (transient: retry the message later with
//! backoff). [`UpstreamError::is_transient`] gives the same answer in code; [`NotFound`] is the
//! one case the caller must judge itself.
//!
//! [`NotFound`]: UpstreamError::NotFound

/// An upstream call that did not produce the expected value.
///
/// Bodies carried in errors are the upstream's response text, cut to
/// [`MAX_ERROR_BODY`] bytes so that reasons stay short enough for a dead-letter header.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// **Rejected.** The URL is not under a configured upstream base (another scheme, host,
    /// port or path prefix), is not http(s), carries userinfo, or does not parse. Nothing was
    /// requested.
    #[error("refusing to call {url}: {reason}")]
    ForeignUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// **The caller decides.** The upstream answered 404 Not Found; its body is kept because
    /// some 404s are answers (Manage POM Cases: `{"status":"error","message":"Not allocated"}`)
    /// and others are missing records. Never retried.
    #[error("{url} answered 404 Not Found: {body}")]
    NotFound {
        /// The URL without its query.
        url: String,
        /// The response body.
        body: String,
    },
    /// **Rejected.** A 4xx other than 404 and 429 (a 401 only after the token was refreshed
    /// once). Never retried.
    #[error("{url} answered {status}: {body}")]
    ClientError {
        /// The URL without its query.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// **Rejected.** A status the client does not handle: 1xx, or a 3xx redirect (redirects
    /// are never followed, so a detailUrl cannot bounce the call to a foreign host).
    #[error("{url} answered {status} (redirects are not followed): {body}")]
    UnexpectedStatus {
        /// The URL without its query.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// **Failed.** A 5xx, or 429 Too Many Requests, on every attempt.
    #[error("{url} answered {status} after {attempts} attempt(s): {body}")]
    ServerError {
        /// The URL without its query.
        url: String,
        /// The last HTTP status code.
        status: u16,
        /// The last response body.
        body: String,
        /// Attempts made.
        attempts: u32,
    },
    /// **Failed.** No complete response within the per-request timeout, on every attempt.
    #[error("{url} timed out after {attempts} attempt(s)")]
    Timeout {
        /// The URL without its query.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// **Failed.** The connection could not be made, or broke before a complete response, on
    /// every attempt.
    #[error("{url} unreachable after {attempts} attempt(s): {message}")]
    Connect {
        /// The URL without its query.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error and its sources.
        message: String,
    },
    /// **Rejected.** A 2xx body that is not the expected shape; `path` says where (serde
    /// path, e.g. `referral.id`).
    #[error("{url}: unexpected body at `{path}`: {message}")]
    Decode {
        /// The URL without its query.
        url: String,
        /// Where in the body deserialization failed (`.` for the root).
        path: String,
        /// What was wrong there.
        message: String,
    },
    /// **Rejected.** The request body could not be serialized to JSON (a bug in the caller's
    /// type, not something a retry changes).
    #[error("{url}: request body is not serializable: {message}")]
    Encode {
        /// The URL without its query.
        url: String,
        /// The serializer's message.
        message: String,
    },
    /// **Failed.** No client-credentials token could be had from HMPPS Auth (unreachable,
    /// 5xx, bad credentials or an unreadable token response). Failed rather than rejected:
    /// the message did nothing wrong, and a retry after the auth service or the credentials
    /// are fixed succeeds.
    #[error("no upstream token: {message}")]
    Token {
        /// What went wrong with the token request.
        message: String,
    },
}

/// The most bytes of an upstream body kept in an error.
pub const MAX_ERROR_BODY: usize = 2048;

impl UpstreamError {
    /// Whether retrying the message later may succeed: `true` for the **failed** variants
    /// ([`ServerError`](Self::ServerError), [`Timeout`](Self::Timeout),
    /// [`Connect`](Self::Connect), [`Token`](Self::Token)), `false` for the **rejected** ones
    /// and for [`NotFound`](Self::NotFound), whose meaning the caller decides.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ServerError { .. }
            | Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Token { .. } => true,
            Self::ForeignUrl { .. }
            | Self::NotFound { .. }
            | Self::ClientError { .. }
            | Self::UnexpectedStatus { .. }
            | Self::Decode { .. }
            | Self::Encode { .. } => false,
        }
    }

    /// The HTTP status the upstream answered with, if the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::NotFound { .. } => Some(404),
            Self::ClientError { status, .. }
            | Self::UnexpectedStatus { status, .. }
            | Self::ServerError { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `bytes` as text, cut to [`MAX_ERROR_BODY`] bytes on a character boundary.
pub(crate) fn error_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_ERROR_BODY {
        return text.into_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An error and its sources, `: `-separated (reqwest's own message names only the URL).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_variants_are_transient_and_rejected_ones_are_not() {
        let url = || "http://upstream/x".to_owned();
        let transient = [
            UpstreamError::ServerError {
                url: url(),
                status: 503,
                body: String::new(),
                attempts: 3,
            },
            UpstreamError::Timeout {
                url: url(),
                attempts: 3,
            },
            UpstreamError::Connect {
                url: url(),
                attempts: 3,
                message: "refused".into(),
            },
            UpstreamError::Token {
                message: "auth down".into(),
            },
        ];
        let permanent = [
            UpstreamError::ForeignUrl {
                url: url(),
                reason: "foreign host".into(),
            },
            UpstreamError::NotFound {
                url: url(),
                body: String::new(),
            },
            UpstreamError::ClientError {
                url: url(),
                status: 400,
                body: String::new(),
            },
            UpstreamError::UnexpectedStatus {
                url: url(),
                status: 302,
                body: String::new(),
            },
            UpstreamError::Decode {
                url: url(),
                path: ".".into(),
                message: "expected a map".into(),
            },
            UpstreamError::Encode {
                url: url(),
                message: "map key must be a string".into(),
            },
        ];
        assert!(transient.iter().all(UpstreamError::is_transient));
        assert!(!permanent.iter().any(UpstreamError::is_transient));
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(MAX_ERROR_BODY);
        let cut = error_body(body.as_bytes());
        assert!(cut.len() <= MAX_ERROR_BODY + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(error_body(b"short"), "short");
    }
}
