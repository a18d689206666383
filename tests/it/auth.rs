//! The HTTP infrastructure: bearer JWT authentication and roles (a public key or a JWKS served
//! by a local server), JSON and path extractors, the error bodies, the OpenAPI document and the
//! Swagger UI. Needs no services.
//!
//! Other test modules mint tokens with [`token`] and build a state with [`state`]. The keys in
//! `tests/it/keys/` are test-only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use delius_bridge::engine::Engine;
use delius_bridge::http::auth::{require_roles, Auth, Caller, JwksOptions};
use delius_bridge::http::extract::{AppJson, AppPath, Crn};
use delius_bridge::http::{error, router, AppState};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

/// The test-only signing key (its public half verifies in [`auth`]).
const PRIVATE_KEY: &[u8] = include_bytes!("keys/test-only-private.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("keys/test-only-public.pem");
/// An unrelated test-only key.
const OTHER_PRIVATE_KEY: &[u8] = include_bytes!("keys/test-only-other-private.pem");
const JWKS: &str = include_str!("keys/test-only-jwks.json");
const JWKS_ROTATED: &str = include_str!("keys/test-only-jwks-rotated.json");
/// The `kid` of the test key in the JWKS files.
pub const KID: &str = "test-only-key-1";
const OTHER_KID: &str = "test-only-key-2";

const ROLE: &str = "ROLE_TEST_ACCESS";

/// A verifier that accepts [`token`]s.
pub fn auth() -> Arc<Auth> {
    Arc::new(Auth::from_pem(PUBLIC_KEY).unwrap())
}

/// An application state on the embedded engine whose auth accepts [`token`]s.
pub fn state() -> AppState {
    AppState {
        engine: Arc::new(Engine::memory()),
        broker: None,
        auth: auth(),
        dead_letters: None,
    }
}

/// A token for user `test-user` with `roles`, valid for an hour, signed with the test key.
pub fn token(roles: &[&str]) -> String {
    sign(&claims(roles), PRIVATE_KEY, Some(KID))
}

/// HMPPS Auth-like claims for `test-user` with `roles`, expiring in an hour.
pub fn claims(roles: &[&str]) -> Value {
    json!({
        "user_name": "test-user",
        "client_id": "test-client",
        "sub": "test-user",
        "authorities": roles,
        "aud": "oauth2-resource",
        "auth_source": "delius",
        "exp": now() + 3600,
    })
}

/// `claims` signed RS256 with a PEM private key.
pub fn sign(claims: &Value, private_pem: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(private_pem).unwrap(),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A throw-away app: `GET /protected` needs `ROLE_TEST_ACCESS` and answers the caller.
fn protected_app(auth: Arc<Auth>) -> Router {
    let state = AppState { auth, ..state() };
    let protected = Router::new()
        .route(
            "/protected",
            get(|caller: Caller| async move {
                AppJson(json!({"name": caller.name, "roles": caller.roles}))
            }),
        )
        .route_layer(require_roles(&state, &[ROLE, "ROLE_OTHER"]));
    // A handler taking a Caller on a route without require_roles: a wiring mistake.
    let unguarded = Router::new().route(
        "/unguarded",
        get(|caller: Caller| async move { caller.name }),
    );
    Router::new()
        .merge(protected)
        .merge(unguarded)
        .fallback(error::not_found)
        .with_state(state)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

async fn send(app: Router, request: Request<Body>) -> Answer {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        bytes,
    }
}

async fn get_with(app: Router, uri: &str, authorization: Option<&str>) -> Answer {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn get_protected(auth: Arc<Auth>, token: &str) -> Answer {
    get_with(
        protected_app(auth),
        "/protected",
        Some(&format!("Bearer {token}")),
    )
    .await
}

fn assert_unauthorized(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    assert_eq!(answer.json()["code"], "unauthorized");
}

#[tokio::test]
async fn no_token_is_401_with_www_authenticate() {
    let answer = get_with(protected_app(auth()), "/protected", None).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("missing_token", answer.json());
}

#[tokio::test]
async fn malformed_token_is_401() {
    let answer = get_protected(auth(), "not-a-jwt").await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("malformed_token", answer.json());

    let answer = get_with(
        protected_app(auth()),
        "/protected",
        Some("Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_unauthorized(&answer);
    assert_eq!(
        answer.json()["message"],
        "the Authorization header must be `Bearer <token>`"
    );
    let answer = get_with(protected_app(auth()), "/protected", Some("Bearer ")).await;
    assert_unauthorized(&answer);
}

#[tokio::test]
async fn token_signed_with_another_key_is_401() {
    let token = sign(&claims(&[ROLE]), OTHER_PRIVATE_KEY, Some(KID));
    let answer = get_protected(auth(), &token).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("bad_signature", answer.json());
}

#[tokio::test]
async fn expired_token_is_401() {
    let mut claims = claims(&[ROLE]);
    claims["exp"] = json!(now() - 3600);
    let answer = get_protected(auth(), &sign(&claims, PRIVATE_KEY, Some(KID))).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("expired_token", answer.json());
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let mut claims = claims(&[ROLE]);
    claims.as_object_mut().unwrap().remove("exp");
    let answer = get_protected(auth(), &sign(&claims, PRIVATE_KEY, Some(KID))).await;
    assert_unauthorized(&answer);
    assert_eq!(answer.json()["message"], "bearer token has no `exp` claim");
}

#[tokio::test]
async fn hmac_token_keyed_with_the_public_key_is_401() {
    // The classic algorithm confusion: HS256 with the RSA public key as the secret.
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&[ROLE]),
        &EncodingKey::from_secret(PUBLIC_KEY),
    )
    .unwrap();
    let answer = get_protected(auth(), &token).await;
    assert_unauthorized(&answer);
    assert_eq!(
        answer.json()["message"],
        "bearer token algorithm must be RS256"
    );
}

#[tokio::test]
async fn valid_token_without_the_role_is_403() {
    let answer = get_protected(auth(), &token(&["ROLE_SOMETHING_ELSE"])).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.header("www-authenticate"), None);
    insta::assert_json_snapshot!("wrong_role", answer.json());

    let answer = get_protected(auth(), &token(&[])).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn valid_token_with_any_of_the_roles_is_200_and_names_the_caller() {
    let answer = get_protected(auth(), &token(&["ROLE_A", ROLE])).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"name": "test-user", "roles": ["ROLE_A", ROLE]})
    );
    let answer = get_protected(auth(), &token(&["ROLE_OTHER"])).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn caller_is_user_name_else_client_id_else_sub() {
    async fn caller_of(claims: Value) -> Answer {
        get_protected(auth(), &sign(&claims, PRIVATE_KEY, Some(KID))).await
    }
    let mut claims = json!({
        "user_name": "a-user",
        "client_id": "a-client",
        "sub": "a-subject",
        "authorities": [ROLE],
        "exp": now() + 60,
    });
    assert_eq!(caller_of(claims.clone()).await.json()["name"], "a-user");
    claims.as_object_mut().unwrap().remove("user_name");
    assert_eq!(caller_of(claims.clone()).await.json()["name"], "a-client");
    claims.as_object_mut().unwrap().remove("client_id");
    assert_eq!(caller_of(claims.clone()).await.json()["name"], "a-subject");
    claims.as_object_mut().unwrap().remove("sub");
    let answer = caller_of(claims).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("no_caller", answer.json());
}

#[tokio::test]
async fn without_a_key_every_protected_call_is_401() {
    let answer = get_protected(Arc::new(Auth::disabled()), &token(&[ROLE])).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("auth_disabled", answer.json());
}

#[tokio::test]
async fn a_caller_on_an_unguarded_route_is_a_500() {
    let answer = get_with(
        protected_app(auth()),
        "/unguarded",
        Some(&format!("Bearer {}", token(&[ROLE]))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json()["message"], "internal error");
}

#[tokio::test]
async fn unknown_paths_are_404_not_401() {
    let answer = get_with(protected_app(auth()), "/nothing/here", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// A local JWKS server whose document can be swapped, counting fetches.
struct JwksServer {
    url: String,
    document: Arc<Mutex<&'static str>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server() -> JwksServer {
    let document = Arc::new(Mutex::new(JWKS));
    let fetches = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get({
            let document = document.clone();
            let fetches = fetches.clone();
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = *document.lock().unwrap();
                ([(header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer {
        url: format!("http://{address}/.well-known/jwks.json"),
        document,
        fetches,
    }
}

fn jwks_options() -> JwksOptions {
    JwksOptions {
        timeout: Duration::from_secs(5),
        max_age: Duration::from_secs(3600),
        min_refetch_interval: Duration::ZERO,
    }
}

#[tokio::test]
async fn jwks_keys_are_chosen_by_kid_cached_and_refetched_on_an_unknown_kid() {
    let server = jwks_server().await;
    let auth = Arc::new(Auth::from_jwks_url_with(&server.url, jwks_options()).unwrap());

    let answer = get_protected(auth.clone(), &token(&[ROLE])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    let answer = get_protected(auth.clone(), &token(&[ROLE])).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "keys are cached");

    // A key the JWKS does not (yet) have: refetched, still unknown.
    let rotated = sign(&claims(&[ROLE]), OTHER_PRIVATE_KEY, Some(OTHER_KID));
    let answer = get_protected(auth.clone(), &rotated).await;
    assert_unauthorized(&answer);
    insta::assert_json_snapshot!("jwks_unknown_kid", answer.json());
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    // The issuer rotates: the unknown kid refetches and the new key verifies.
    *server.document.lock().unwrap() = JWKS_ROTATED;
    let answer = get_protected(auth.clone(), &rotated).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 3);

    // A kid naming the wrong key is a bad signature, whatever the JWKS holds.
    let lying = sign(&claims(&[ROLE]), OTHER_PRIVATE_KEY, Some(KID));
    assert_unauthorized(&get_protected(auth.clone(), &lying).await);
    // Two keys and a token without kid: which one is unknown.
    let no_kid = sign(&claims(&[ROLE]), PRIVATE_KEY, None);
    assert_unauthorized(&get_protected(auth, &no_kid).await);
}

/// A verified token is remembered only for the key object that verified it: when a refetch
/// gives its `kid` other key material, the token is checked again (and now fails).
#[tokio::test]
async fn a_remembered_token_is_verified_again_when_its_kid_gets_another_key() {
    let server = jwks_server().await;
    let auth = Arc::new(Auth::from_jwks_url_with(&server.url, jwks_options()).unwrap());
    let token = token(&[ROLE]);
    for _ in 0..2 {
        let answer = get_protected(auth.clone(), &token).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    }
    // The issuer puts the other key under the same kid, then a token with an unknown kid
    // makes the verifier refetch.
    let rekeyed: Value = serde_json::from_str(JWKS_ROTATED).unwrap();
    let mut other = rekeyed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == OTHER_KID)
        .unwrap()
        .clone();
    other["kid"] = json!(KID);
    let document = json!({ "keys": [other] }).to_string();
    *server.document.lock().unwrap() = Box::leak(document.into_boxed_str());
    let unknown = sign(&claims(&[ROLE]), OTHER_PRIVATE_KEY, Some("unknown-kid"));
    assert_unauthorized(&get_protected(auth.clone(), &unknown).await);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    let answer = get_protected(auth, &token).await;
    assert_unauthorized(&answer);
    assert_eq!(
        answer.json()["message"],
        "bearer token signature is invalid"
    );
}

#[tokio::test]
async fn jwks_with_one_key_accepts_a_token_without_kid() {
    let server = jwks_server().await;
    let auth = Arc::new(Auth::from_jwks_url_with(&server.url, jwks_options()).unwrap());
    let no_kid = sign(&claims(&[ROLE]), PRIVATE_KEY, None);
    assert_eq!(get_protected(auth, &no_kid).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let server = jwks_server().await;
    let options = JwksOptions {
        min_refetch_interval: Duration::from_secs(60),
        ..jwks_options()
    };
    let auth = Arc::new(Auth::from_jwks_url_with(&server.url, options).unwrap());
    auth.warm_up().await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    for n in 0..3 {
        let token = sign(
            &claims(&[ROLE]),
            OTHER_PRIVATE_KEY,
            Some(&format!("random-{n}")),
        );
        assert_unauthorized(&get_protected(auth.clone(), &token).await);
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        get_protected(auth, &token(&[ROLE])).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_with_retry_after() {
    // Accepts connections (the kernel's backlog) but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let options = JwksOptions {
        timeout: Duration::from_millis(300),
        ..jwks_options()
    };
    let auth = Arc::new(Auth::from_jwks_url_with(&url, options).unwrap());
    let answer = get_protected(auth, &token(&[ROLE])).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("5"));
    insta::assert_json_snapshot!("jwks_unavailable", answer.json());
    drop(listener);
}

#[test]
fn configuration_errors_are_reported() {
    assert!(Auth::from_pem(b"not a key").is_err());
    assert!(Auth::from_jwks_url("ftp://example.com/jwks").is_err());
    assert!(Auth::from_jwks_url("not a url").is_err());
    let missing = Auth::from_pem_file(std::path::Path::new("tests/it/keys/missing.pem"));
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("tests/it/keys/missing.pem"));
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Appointment {
    referral_id: Uuid,
    outcome: Outcome,
}

#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    attended: Attended,
    notify: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Attended {
    Yes,
    No,
    Late,
}

/// `PUT /probation-case/{crn}/referrals/{referralId}/appointments` echoing what it parsed, and
/// `GET /probation-case/{crn}` (one parameter).
fn extractor_app() -> Router {
    Router::new()
        .route(
            "/probation-case/{crn}/referrals/{referralId}/appointments",
            put(
                |AppPath((crn, referral_id)): AppPath<(Crn, Uuid)>,
                 AppJson(body): AppJson<Appointment>| async move {
                    AppJson(json!({"crn": crn, "referralId": referral_id, "body": body}))
                },
            ),
        )
        .route(
            "/probation-case/{crn}",
            get(|AppPath(crn): AppPath<Crn>| async move { crn.to_string() }),
        )
        .route(
            "/mismatch/{a}/{b}",
            get(|AppPath(crn): AppPath<Crn>| async move { crn.to_string() }),
        )
        .route(
            "/echo",
            post(|AppJson(body): AppJson<Appointment>| async move { AppJson(body) }),
        )
}

const REFERRAL_ID: &str = "1c2d3e4f-0000-4000-8000-000000000001";

async fn put_appointment(uri: &str, body: &str) -> Answer {
    send(
        extractor_app(),
        Request::put(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

async fn post_echo(body: &str) -> Answer {
    put_or_post_echo(Some("application/json"), body).await
}

async fn put_or_post_echo(content_type: Option<&str>, body: &str) -> Answer {
    let mut request = Request::post("/echo");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    send(
        extractor_app(),
        request.body(Body::from(body.to_owned())).unwrap(),
    )
    .await
}

fn assert_invalid_request(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["code"], "invalid_request");
    assert_eq!(answer.json()["status"], 400);
}

#[tokio::test]
async fn app_json_parses_and_answers_json() {
    let uri = format!("/probation-case/X123456/referrals/{REFERRAL_ID}/appointments");
    let body = json!({"referralId": REFERRAL_ID, "outcome": {"attended": "LATE", "notify": true}});
    let answer = put_appointment(&uri, &body.to_string()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({"crn": "X123456", "referralId": REFERRAL_ID, "body": body})
    );
    let answer = put_or_post_echo(
        Some("application/vnd.api+json; charset=utf-8"),
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn app_json_syntax_error_is_400() {
    let answer = post_echo(r#"{"referralId": "#).await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_syntax_error", answer.json());
    let answer = post_echo(r#"{"referralId": "a", } "#).await;
    assert_invalid_request(&answer);
    let answer = post_echo(&format!(
        r#"{{"referralId": "{REFERRAL_ID}", "outcome": {{"attended": "NO", "notify": false}}}} trailing"#
    ))
    .await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_trailing_characters", answer.json());
}

#[tokio::test]
async fn app_json_missing_field_is_400_naming_it() {
    let answer = post_echo(&format!(
        r#"{{"referralId": "{REFERRAL_ID}", "outcome": {{"notify": true}}}}"#
    ))
    .await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_missing_field", answer.json());
    let answer = post_echo(r#"{"outcome": {"attended": "NO", "notify": true}}"#).await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_missing_top_level_field", answer.json());
}

#[tokio::test]
async fn app_json_wrong_type_is_400_naming_the_path() {
    let answer = post_echo(&format!(
        r#"{{"referralId": "{REFERRAL_ID}", "outcome": {{"attended": "YES", "notify": "yes"}}}}"#
    ))
    .await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_wrong_type", answer.json());
    let answer = post_echo(&format!(
        r#"{{"referralId": "{REFERRAL_ID}", "outcome": {{"attended": "MAYBE", "notify": true}}}}"#
    ))
    .await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_unknown_variant", answer.json());
    let answer = post_echo(r#"{"referralId": "not-a-uuid"}"#).await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_invalid_uuid", answer.json());
    let answer = post_echo(r#"[1, 2]"#).await;
    assert_invalid_request(&answer);
}

#[tokio::test]
async fn app_json_without_a_json_content_type_is_400() {
    let answer = put_or_post_echo(None, "{}").await;
    assert_invalid_request(&answer);
    insta::assert_json_snapshot!("json_missing_content_type", answer.json());
    let answer = put_or_post_echo(Some("text/plain"), "{}").await;
    assert_invalid_request(&answer);
}

#[tokio::test]
async fn a_bad_crn_is_400_invalid_crn() {
    let answer = get_with(extractor_app(), "/probation-case/x123456", None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("invalid_crn", answer.json());
    for bad in ["X12345", "X1234567", "1234567", "XX23456", "X12345%C3%A9"] {
        let answer = get_with(extractor_app(), &format!("/probation-case/{bad}"), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.json()["code"], "invalid_crn", "{bad}");
    }
    let answer = get_with(extractor_app(), "/probation-case/A000001", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.bytes, b"A000001");
}

#[tokio::test]
async fn a_bad_uuid_is_400_invalid_uuid() {
    let answer = put_appointment(
        "/probation-case/X123456/referrals/not-a-uuid/appointments",
        "{}",
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("invalid_uuid", answer.json());
    // The path is checked before the body, the CRN before the UUID.
    let answer = put_appointment("/probation-case/bad/referrals/bad/appointments", "{").await;
    assert_eq!(answer.json()["code"], "invalid_crn");
}

#[tokio::test]
async fn a_path_extractor_that_does_not_fit_the_route_is_a_500() {
    let answer = get_with(extractor_app(), "/mismatch/X123456/b", None).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn crn_parses_only_a_letter_and_six_digits() {
    assert_eq!("X123456".parse::<Crn>().unwrap().as_str(), "X123456");
    assert!("x123456".parse::<Crn>().is_err());
    assert!("X12345".parse::<Crn>().is_err());
    assert!("Ä123456".parse::<Crn>().is_err());
    assert!(serde_json::from_value::<Crn>(json!("X1")).is_err());
    assert_eq!(
        serde_json::to_value(serde_json::from_value::<Crn>(json!("Z999999")).unwrap()).unwrap(),
        json!("Z999999")
    );
}

#[tokio::test]
async fn api_docs_are_json_with_the_bearer_scheme() {
    let answer = get_with(router(state()), "/v3/api-docs", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"][delius_bridge::http::openapi::BEARER_SCHEME],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": doc["components"]["securitySchemes"]["hmpps-auth"]["description"]})
    );
    assert_eq!(doc["security"], json!([{"hmpps-auth": []}]));
    assert_eq!(
        doc["paths"]["/health/liveness"]["get"]["security"],
        json!([{}]),
        "health needs no token"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let answer = get_with(router(state()), "/swagger-ui/", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(answer.bytes).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let answer = get_with(router(state()), "/swagger-ui/swagger-initializer.js", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(String::from_utf8(answer.bytes)
        .unwrap()
        .contains("/v3/api-docs"));
    let answer = get_with(router(state()), "/swagger-ui/swagger-ui-bundle.js", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.bytes.len() > 100_000, "the bundle is compiled in");
}

#[tokio::test]
async fn wrong_method_is_a_json_405_and_request_ids_are_echoed() {
    let answer = send(
        router(state()),
        Request::post("/health/liveness")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("x-request-id"), Some("abc-123"));
    insta::assert_json_snapshot!("method_not_allowed", answer.json());
    let answer = get_with(router(state()), "/health/liveness", None).await;
    assert_eq!(answer.header("x-request-id").map(str::len), Some(36));
}
