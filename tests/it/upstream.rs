//! The upstream HTTP client against wiremock stubs fed from the shared upstream simulations:
//! decoding, client-credentials tokens, retries and their bounds, the allow-list of upstream
//! hosts, and the dispositions of 4xx answers. No database or broker needed.
//!
//! [`resolve_fixture_url`] turns a fixture `detailUrl` into one on a stub; other tests may
//! reuse it.

use std::time::{Duration, Instant};

use delius_bridge::upstream::{
    ClientCredentials, Lookup, UpstreamClient, UpstreamConfig, UpstreamError,
};
use serde::Deserialize;
use wiremock::matchers::{basic_auth, bearer_token, body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/upstream/");
const REFERRAL_ID: &str = "f56c5f7c-632f-4cad-a1b3-693541cb5f22";
const CLIENT_ID: &str = "delius-bridge-test";
const CLIENT_SECRET: &str = "client-secret";
const TIMEOUT: Duration = Duration::from_millis(200);
const ATTEMPTS: u32 = 3;

/// `url` with its `http://localhost:{wiremock.port}` (or `{dev.wiremock.port}`, or any
/// `{…}` port placeholder) prefix replaced by `base`, e.g. a [`MockServer::uri`]. URLs without
/// such a prefix come back unchanged.
pub fn resolve_fixture_url(url: &str, base: &str) -> String {
    let Some(rest) = url.strip_prefix("http://localhost:{") else {
        return url.to_owned();
    };
    match rest.split_once('}') {
        Some((_, path)) => format!("{}{}", base.trim_end_matches('/'), path),
        None => url.to_owned(),
    }
}

/// A shared upstream fixture file as text.
fn fixture(relative: &str) -> String {
    let file = format!("{FIXTURES}{relative}");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The `detailUrl` of a fixture SNS message.
fn detail_url(message: &str) -> String {
    let envelope: serde_json::Value = serde_json::from_str(&fixture(message)).unwrap();
    let event: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    event["detailUrl"].as_str().unwrap().to_owned()
}

/// HMPPS Auth's token response from the simulations, with `expires_in` replaced if given.
fn token_body(expires_in: Option<u64>) -> serde_json::Value {
    let mut body: serde_json::Value = serde_json::from_str(&fixture(
        "refer-and-monitor-and-delius/simulations/__files/hmpps-auth-token-body.json",
    ))
    .unwrap();
    if let Some(expires_in) = expires_in {
        body["expires_in"] = expires_in.into();
    }
    body
}

fn access_token() -> String {
    token_body(None)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Small timeouts and backoffs, calls to `server` only, no token.
fn config(server: &MockServer) -> UpstreamConfig {
    let mut config = UpstreamConfig::new([server.uri()]);
    config.timeout = TIMEOUT;
    config.attempts = ATTEMPTS;
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    config
}

/// As [`config`], with tokens from `server`'s `/auth/oauth/token`.
fn config_with_auth(server: &MockServer) -> UpstreamConfig {
    let mut config = config(server);
    config.credentials = Some(ClientCredentials {
        auth_url: server.uri(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
    config
}

fn client(config: UpstreamConfig) -> UpstreamClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    UpstreamClient::from_config(config).unwrap()
}

/// Serves the token response at the HMPPS Auth token endpoint (client credentials, basic auth).
async fn mount_token(server: &MockServer, expires_in: Option<u64>) {
    Mock::given(method("POST"))
        .and(path("/auth/oauth/token"))
        .and(query_param("grant_type", "client_credentials"))
        .and(basic_auth(CLIENT_ID, CLIENT_SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(expires_in)))
        .named("token")
        .mount(server)
        .await;
}

/// Serves the interventions simulation's prematurely ended referral.
fn referral_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        fixture("refer-and-monitor-and-delius/simulations/__files/referral-prematurely-ended.json"),
        "application/json",
    )
}

fn referral_path() -> String {
    format!("/sent-referral/{REFERRAL_ID}")
}

/// The referral detailUrl of the fixture message, on `server`.
fn referral_url(server: &MockServer) -> String {
    resolve_fixture_url(
        &detail_url("refer-and-monitor-and-delius/messages/referral-prematurely-ended.json"),
        &server.uri(),
    )
}

/// Requests `server` received at `at`.
async fn requests_to(server: &MockServer, at: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == at)
        .count()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentReferral {
    id: String,
    reference_number: String,
    end_requested_reason: Option<String>,
    referral: ReferralDetails,
}

#[derive(Debug, Deserialize)]
struct ReferralDetails {
    #[serde(rename = "serviceProvider")]
    service_provider: ServiceProvider,
}

#[derive(Debug, Deserialize)]
struct ServiceProvider {
    name: String,
}

#[test]
fn fixture_urls_resolve_to_the_stub() {
    assert_eq!(
        resolve_fixture_url(
            "http://localhost:{wiremock.port}/sent-referral/1",
            "http://127.0.0.1:4242/"
        ),
        "http://127.0.0.1:4242/sent-referral/1"
    );
    assert_eq!(
        resolve_fixture_url(
            "http://localhost:{dev.wiremock.port}/api/handovers/A1024BY",
            "http://127.0.0.1:4242"
        ),
        "http://127.0.0.1:4242/api/handovers/A1024BY"
    );
    assert_eq!(
        resolve_fixture_url("https://elsewhere/x", "http://127.0.0.1:4242"),
        "https://elsewhere/x"
    );
}

#[tokio::test]
async fn a_get_returns_the_decoded_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(referral_response())
        .expect(1)
        .mount(&server)
        .await;
    let client = client(config(&server));

    let referral: SentReferral = client.get_json(&referral_url(&server)).await.unwrap();

    assert_eq!(referral.id, REFERRAL_ID);
    assert_eq!(referral.reference_number, "FE4536C");
    assert_eq!(
        referral.end_requested_reason.as_deref(),
        Some("Reason for end")
    );
    assert_eq!(referral.referral.service_provider.name, "Special Provider");
    // Without credentials no token is fetched or sent.
    let requests = server.received_requests().await.unwrap();
    assert!(requests
        .iter()
        .all(|r| !r.headers.contains_key("authorization")));
}

#[tokio::test]
async fn one_token_serves_many_calls_and_is_sent_as_bearer() {
    let server = MockServer::start().await;
    mount_token(&server, None).await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .and(bearer_token(access_token()))
        .respond_with(referral_response())
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));
    let url = referral_url(&server);

    // Concurrent first callers share one fetch; later ones reuse the cached token.
    let concurrent = futures::future::join_all((0..5).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move { client.get_json::<SentReferral>(&url).await }
    }))
    .await;
    for result in concurrent {
        assert_eq!(result.unwrap().id, REFERRAL_ID);
    }
    for _ in 0..3 {
        let referral: SentReferral = client.get_json(&url).await.unwrap();
        assert_eq!(referral.id, REFERRAL_ID);
    }

    assert_eq!(requests_to(&server, "/auth/oauth/token").await, 1);
    assert_eq!(requests_to(&server, &referral_path()).await, 8);
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let server = MockServer::start().await;
    // 30 s left is inside the 60 s refresh margin: the token is good for one call only.
    mount_token(&server, Some(30)).await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .and(bearer_token(access_token()))
        .respond_with(referral_response())
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));

    for _ in 0..2 {
        client
            .get_json::<SentReferral>(&referral_url(&server))
            .await
            .unwrap();
    }

    assert_eq!(requests_to(&server, "/auth/oauth/token").await, 2);
}

#[tokio::test]
async fn a_server_error_then_success_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(referral_response())
        .mount(&server)
        .await;
    let client = client(config(&server));

    let referral: SentReferral = client.get_json(&referral_url(&server)).await.unwrap();

    assert_eq!(referral.id, REFERRAL_ID);
    assert_eq!(requests_to(&server, &referral_path()).await, 2);
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(referral_response())
        .mount(&server)
        .await;
    let client = client(config(&server));

    client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap();

    assert_eq!(requests_to(&server, &referral_path()).await, 2);
}

#[tokio::test]
async fn persistent_server_errors_fail_transiently_after_the_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string("down for maintenance"))
        .mount(&server)
        .await;
    let client = client(config(&server));

    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();

    assert!(error.is_transient());
    match error {
        UpstreamError::ServerError {
            status,
            body,
            attempts,
            ..
        } => {
            assert_eq!((status, attempts), (503, ATTEMPTS));
            assert_eq!(body, "down for maintenance");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        requests_to(&server, &referral_path()).await,
        ATTEMPTS as usize
    );
}

#[tokio::test]
async fn a_stub_that_never_answers_times_out_within_a_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(referral_response().set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let client = client(config(&server));

    let started = Instant::now();
    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert!(error.is_transient(), "{error}");
    assert!(
        matches!(error, UpstreamError::Timeout { attempts, .. } if attempts == ATTEMPTS),
        "{error:?}"
    );
    // attempts × timeout, plus two short backoffs; far below the stub's delay.
    assert!(elapsed >= TIMEOUT * ATTEMPTS, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(
        requests_to(&server, &referral_path()).await,
        ATTEMPTS as usize
    );
}

#[tokio::test]
async fn an_unreachable_upstream_fails_transiently() {
    // A port nobody listens on: bound, then released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = UpstreamConfig::new([base.clone()]);
    config.timeout = TIMEOUT;
    config.backoff_initial = Duration::from_millis(10);
    let client = client(config);

    let error = client
        .get_json::<serde_json::Value>(&format!("{base}/sent-referral/{REFERRAL_ID}"))
        .await
        .unwrap_err();

    assert!(error.is_transient(), "{error}");
    assert!(
        matches!(error, UpstreamError::Connect { attempts: 3, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn foreign_urls_are_rejected_without_a_request() {
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    for stub in [&server, &other] {
        Mock::given(method("GET"))
            .respond_with(referral_response())
            .mount(stub)
            .await;
    }
    let client = client(config(&server));
    let address = server.address();
    let path = referral_path();
    let foreign = [
        format!("http://example.invalid{path}"),
        format!("{}{path}", other.uri()),
        format!("https://{address}{path}"),
        format!("http://localhost:{}{path}", address.port()),
        format!("http://user:password@{address}{path}"),
        format!("ftp://{address}{path}"),
        path.clone(),
    ];

    for url in &foreign {
        let error = client.get_json::<SentReferral>(url).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::ForeignUrl { .. }),
            "{url}: {error:?}"
        );
        assert!(!error.is_transient());
        assert!(client.check_url(url).is_err());
        let posted = client
            .post_json::<_, serde_json::Value>(url, &["A5295DZ"])
            .await
            .unwrap_err();
        assert!(matches!(posted, UpstreamError::ForeignUrl { .. }));
    }

    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(other.received_requests().await.unwrap().is_empty());
    assert!(client.check_url(&referral_url(&server)).is_ok());
}

#[tokio::test]
async fn a_not_found_gives_its_body_back() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/pom-allocation/A0123BY/0"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            fixture("manage-pom-cases-and-delius/simulations/__files/not-yet-allocation.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = client(config(&server));
    let url = resolve_fixture_url(
        &detail_url("manage-pom-cases-and-delius/messages/not-yet-allocation.json"),
        &server.uri(),
    );

    let lookup = client
        .get_json_or_not_found::<serde_json::Value>(&url)
        .await
        .unwrap();
    assert!(matches!(&lookup, Lookup::NotFound { body } if body.contains("Not ready")));
    assert_eq!(
        lookup.not_found_message().as_deref(),
        Some("Not ready for allocation")
    );

    let error = client
        .get_json::<serde_json::Value>(&url)
        .await
        .unwrap_err();
    assert!(!error.is_transient());
    assert!(
        matches!(&error, UpstreamError::NotFound { body, .. } if body.contains("Not ready")),
        "{error:?}"
    );
    // One request per call: a 404 is never retried.
    assert_eq!(
        requests_to(&server, "/api/pom-allocation/A0123BY/0").await,
        2
    );
}

#[tokio::test]
async fn a_bad_request_is_rejected_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad referral id"))
        .mount(&server)
        .await;
    let client = client(config(&server));

    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();

    assert!(!error.is_transient());
    assert!(
        matches!(&error, UpstreamError::ClientError { status: 400, body, .. } if body == "bad referral id"),
        "{error:?}"
    );
    assert_eq!(requests_to(&server, &referral_path()).await, 1);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let server = MockServer::start().await;
    mount_token(&server, None).await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .and(bearer_token(access_token()))
        .respond_with(referral_response())
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));

    let referral: SentReferral = client.get_json(&referral_url(&server)).await.unwrap();

    assert_eq!(referral.id, REFERRAL_ID);
    assert_eq!(requests_to(&server, "/auth/oauth/token").await, 2);
    assert_eq!(requests_to(&server, &referral_path()).await, 2);
}

#[tokio::test]
async fn a_401_after_a_fresh_token_is_rejected() {
    let server = MockServer::start().await;
    mount_token(&server, None).await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));

    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();

    assert!(!error.is_transient());
    assert!(
        matches!(error, UpstreamError::ClientError { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(requests_to(&server, "/auth/oauth/token").await, 2);
    assert_eq!(requests_to(&server, &referral_path()).await, 2);
}

#[tokio::test]
async fn a_failing_token_endpoint_fails_transiently_without_calling_upstream() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/oauth/token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));

    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();

    assert!(error.is_transient());
    assert!(matches!(error, UpstreamError::Token { .. }), "{error:?}");
    assert_eq!(
        requests_to(&server, "/auth/oauth/token").await,
        ATTEMPTS as usize
    );
    assert_eq!(requests_to(&server, &referral_path()).await, 0);
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_rejected_with_its_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(referral_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": REFERRAL_ID,
            "referenceNumber": "FE4536C",
            "referral": { "serviceProvider": { "name": 42 } }
        })))
        .mount(&server)
        .await;
    let client = client(config(&server));

    let error = client
        .get_json::<SentReferral>(&referral_url(&server))
        .await
        .unwrap_err();

    assert!(!error.is_transient());
    match error {
        UpstreamError::Decode { path, .. } => assert_eq!(path, "referral.serviceProvider.name"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(requests_to(&server, &referral_path()).await, 1);
}

#[tokio::test]
async fn a_post_sends_json_and_decodes_the_answer() {
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Movement {
        offender_no: String,
        movement_type: String,
        to_agency: String,
    }
    let server = MockServer::start().await;
    mount_token(&server, None).await;
    let movement: serde_json::Value = serde_json::from_str(&fixture(
        "prison-custody-status-to-delius/simulations/__files/movement_1208804.json",
    ))
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/api/movements/offenders"))
        .and(query_param("latestOnly", "true"))
        .and(body_json(serde_json::json!(["A5295DZ"])))
        .and(bearer_token(access_token()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([movement])))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(config_with_auth(&server));

    let movements: Vec<Movement> = client
        .post_json(
            &format!("{}/api/movements/offenders?latestOnly=true", server.uri()),
            &["A5295DZ"],
        )
        .await
        .unwrap();

    assert_eq!(movements.len(), 1);
    assert_eq!(movements[0].offender_no, "A5295DZ");
    assert_eq!(movements[0].movement_type, "ADM");
    assert_eq!(movements[0].to_agency, "SWI");
}

/// Every file of `fixtures/upstream/<integration>/` is byte for byte the shared original in
/// `../shared/fixtures/upstream/`, and none is missing, where the shared folder is present
/// (the project's machines). A fresh clone elsewhere has only the copy, which the tests read.
#[test]
fn the_fixture_copies_are_the_shared_originals() {
    fn files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let shared = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/upstream"
    ));
    if !shared.is_dir() {
        eprintln!("no {}: nothing to compare the copy with", shared.display());
        return;
    }
    let copy = std::path::Path::new(FIXTURES);
    let (mut originals, mut copies) = (Vec::new(), Vec::new());
    files(shared, shared, &mut originals);
    files(copy, copy, &mut copies);
    copies.retain(|file| file != "README.md");
    originals.sort();
    copies.sort();
    assert_eq!(copies, originals);
    for file in &originals {
        assert!(
            std::fs::read(shared.join(file)).unwrap() == std::fs::read(copy.join(file)).unwrap(),
            "{file} differs from the shared original"
        );
    }
}
