//! Audit against real PostgreSQL (DESIGN.md §3): a person's timeline across aggregates with
//! the rows each event wrote and the ignorable outcomes about them; a row back to its events;
//! the same from the real binary; every error.

use std::collections::BTreeMap;
use std::process::Command;

use axum::http::StatusCode;
use delius_bridge::amqp::handler::{MessageOutcome, OutcomeLog};
use delius_bridge::http::auth::ROLE_PROBATION_INTEGRATION_ADMIN;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::crs::{app, appointment, App, A1, CRN, RW};
use crate::replay::database_url;

const ADMIN: &str = ROLE_PROBATION_INTEGRATION_ADMIN;

/// A referral, an attended appointment and an ignored message about the person.
async fn scenario(pool: PgPool) -> (App, i64) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    let mut attended = appointment(A1, "2025-01-15T10:00:00Z", 60);
    attended["outcome"] = json!({"attended": "yes", "didSessionHappen": true, "notify": false});
    let (status, body) = app.merge(attended).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ignored = MessageOutcome {
        message_id: "8f9c3a52-0000-4000-8000-00000000aaaa".into(),
        queue: "prison-custody-status-to-delius".into(),
        event_type: "prison-offender-events.prisoner.released".into(),
        outcome: "ignored".into(),
        name: Some("NoActiveCustodialEvent".into()),
        properties: BTreeMap::from([(
            "reason".to_string(),
            "TEMPORARY_ABSENCE_RELEASE".to_string(),
        )]),
        crn: Some(CRN.into()),
        noms_number: Some("A0001AA".into()),
        reason: None,
        attempt: 1,
    };
    OutcomeLog::Postgres(pool).record(&ignored).await.unwrap();
    (app, body["appointmentId"].as_i64().unwrap())
}

/// HTTP message ids derive from the request id, which is new on every request.
fn redact_request(message_id: &str) -> &str {
    if message_id.starts_with("http:") {
        "http:[request id]"
    } else {
        message_id
    }
}

/// One line per entry: what it is, where from, and the rows it wrote.
fn summary(timeline: &Value) -> Vec<String> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "event" => format!(
                "{} v{} on {} from {} ({}, by {}) wrote [{}]",
                e["eventType"].as_str().unwrap(),
                e["eventVersion"].as_str().unwrap(),
                e["aggregateType"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                redact_request(e["messageId"].as_str().unwrap()),
                e["actor"].as_str().unwrap(),
                e["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| format!(
                        "{} {}",
                        r["change"].as_str().unwrap(),
                        r["table"].as_str().unwrap()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!(
                "{} {} from {} ({})",
                e["outcome"].as_str().unwrap(),
                e["name"].as_str().unwrap_or_default(),
                e["queue"].as_str().unwrap(),
                e["messageId"].as_str().unwrap(),
            ),
        })
        .collect()
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_persons_timeline_across_aggregates(pool: PgPool) {
    let (app, _) = scenario(pool.clone()).await;
    let (status, timeline) = app
        .call("GET", &format!("/audit/cases/{CRN}"), None, &[ADMIN])
        .await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(timeline["crn"], CRN);
    insta::assert_json_snapshot!("timeline_streams", timeline["streams"]);
    insta::assert_json_snapshot!("timeline_summary", summary(&timeline));
    let entries = timeline["entries"].as_array().unwrap();
    // Oldest first; every event names its correlation id and when it was received.
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["recordedAt"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    let referral = entries
        .iter()
        .find(|e| e["eventType"] == "ReferralStarted")
        .unwrap();
    insta::assert_json_snapshot!("timeline_referral_started", referral, {
        ".recordedAt" => "[time]", ".receivedAt" => "[time]", ".globalPosition" => "[position]",
        ".payload" => "[payload]", ".correlationId" => "[request id]", ".messageId" => "http:[request id]",
        ".rows[].columns.created_datetime" => "[time]",
        ".rows[].columns.last_updated_datetime" => "[time]",
        ".rows[].columns.notes" => "[notes]",
        ".rows[].columns.start_time" => "[time]",
        ".rows[].columns.contact_date" => "[date]",
    });
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_row_back_to_the_events_that_wrote_it(pool: PgPool) {
    let (app, contact_id) = scenario(pool.clone()).await;
    let (status, row) = app
        .call(
            "GET",
            &format!("/audit/rows/contact/{contact_id}"),
            None,
            &[ADMIN],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["row"]["contact_id"], contact_id);
    assert_eq!(row["lastEvent"]["eventType"], "AppointmentOutcomeRecorded");
    assert_eq!(
        row["lastEvent"]["globalPosition"],
        row["row"]["last_event_position"]
    );
    let history: Vec<(&str, Vec<&str>)> = row["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let rows = e["rows"].as_array().unwrap();
            assert!(rows
                .iter()
                .all(|r| r["table"] == "contact" && r["key"] == contact_id));
            (
                e["eventType"].as_str().unwrap(),
                rows.iter().map(|r| r["change"].as_str().unwrap()).collect(),
            )
        })
        .collect();
    insta::assert_json_snapshot!("row_history_appointment", history);
    // A reference row recorded by the seed, and one loaded by a migration (no event).
    let (status, area) = app
        .call("GET", "/audit/rows/probation_area/N07", None, &[ADMIN])
        .await;
    assert_eq!(status, StatusCode::OK, "{area}");
    assert_eq!(area["lastEvent"]["eventType"], "ReferenceEntryRecorded");
    let national: String = sqlx::query_scalar(
        "SELECT code FROM delius.r_disposal_type WHERE last_event_position IS NULL LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (status, migrated) = app
        .call(
            "GET",
            &format!("/audit/rows/r_disposal_type/{national}"),
            None,
            &[ADMIN],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{migrated}");
    assert_eq!(
        (
            &migrated["lastEvent"],
            migrated["history"].as_array().unwrap().len()
        ),
        (&Value::Null, 0)
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn audit_errors(pool: PgPool) {
    let (app, _) = scenario(pool).await;
    let cases = [
        ("/audit/cases/Z999999", StatusCode::NOT_FOUND),
        ("/audit/cases/not-a-crn", StatusCode::BAD_REQUEST),
        ("/audit/rows/events/1", StatusCode::BAD_REQUEST),
        ("/audit/rows/contact/abc", StatusCode::BAD_REQUEST),
        ("/audit/rows/contact/1", StatusCode::NOT_FOUND),
    ];
    let mut bodies = Vec::new();
    for (uri, expected) in cases {
        let (status, body) = app.call("GET", uri, None, &[ADMIN]).await;
        assert_eq!(status, expected, "{uri}: {body}");
        bodies.push(body);
    }
    insta::assert_json_snapshot!("audit_errors", bodies);
    let uri = format!("/audit/cases/{CRN}");
    assert_eq!(
        app.call("GET", &uri, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call("GET", &uri, None, &[RW]).await.0,
        StatusCode::FORBIDDEN
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_audit_command_prints_a_table_or_json(pool: PgPool) {
    let (app, contact_id) = scenario(pool.clone()).await;
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_delius-bridge"))
            .args(args)
            .env("DATABASE_URL", database_url(&pool))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (ok, table, stderr) = run(&["audit", "--crn", CRN]);
    assert!(ok, "{stderr}");
    assert!(
        table.starts_with(&format!("Audit timeline of {CRN}")),
        "{table}"
    );
    for expected in [
        "ReferralStarted v1.0",
        "AppointmentOutcomeRecorded v2.0",
        "ignored NoActiveCustodialEvent",
        "nsi 10000000",
    ] {
        assert!(table.contains(expected), "{expected} in\n{table}");
    }
    let (ok, json, stderr) = run(&["audit", "--crn", CRN, "--format", "json"]);
    assert!(ok, "{stderr}");
    let timeline: Value = serde_json::from_str(&json).unwrap();
    let (_, over_http) = app
        .call("GET", &format!("/audit/cases/{CRN}"), None, &[ADMIN])
        .await;
    assert_eq!(summary(&timeline), summary(&over_http));
    let (ok, row, stderr) = run(&[
        "audit",
        "--table",
        "contact",
        "--id",
        &contact_id.to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        row.contains("AppointmentBooked") && row.contains("AppointmentOutcomeRecorded"),
        "{row}"
    );
    let (ok, _, stderr) = run(&["audit", "--crn", "Z999999"]);
    assert!(!ok);
    assert!(
        stderr.contains("nothing is recorded for CRN Z999999"),
        "{stderr}"
    );
    // Without a database there is no log to audit or replay: a clear error, not the embedded
    // default.
    for args in [
        &["audit", "--crn", CRN][..],
        &["replay", "--projection", "delius"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_delius-bridge"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr.contains(&format!("{} needs DATABASE_URL", args[0])),
            "{stderr}"
        );
    }
    app.finish().await;
}

/// The embedded default answers the same timeline from its in-memory log (same streams, same
/// events and rows), and a row audit there is a clear 501.
#[tokio::test]
async fn the_embedded_default_audits_from_its_in_memory_log() {
    let state = crate::auth::state();
    let engine = state.engine.clone();
    delius_bridge::seed::load(&engine, &crate::demo_seed(), "seed:test")
        .await
        .unwrap();
    let body: delius_bridge::crs::wire::ReferralStarted =
        serde_json::from_value(crate::crs::referral()).unwrap();
    let metadata = projections::Metadata {
        message_id: "http:memory".into(),
        correlation_id: "memory".into(),
        causation_id: None,
        source: projections::Source::Http,
        actor: "test-user".into(),
        received_at: chrono::Utc::now(),
    };
    delius_bridge::crs::start_referral(&engine, CRN, &body, &metadata)
        .await
        .unwrap();
    crate::settle(&engine).await;
    let router = delius_bridge::http::router(state);
    let call = |uri: String| send(&router, "GET", uri);
    let (status, timeline) = call(format!("/audit/cases/{CRN}")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    // No appointment was booked, so no Diary stream.
    assert_eq!(
        timeline["streams"],
        json!([
            format!("Case/{CRN}"),
            format!("PomAllocation/{CRN}"),
            format!("Referral/{}", crate::crs::REFERRAL)
        ])
    );
    let summary = summary(&timeline);
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("ReferralStarted v1.0 on Referral from http")),
        "{summary:?}"
    );
    let (status, body) = call("/audit/rows/contact/10000000".into()).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(body["code"], "unavailable_on_embedded");
    let (status, _) = call("/audit/cases/Z999999".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Replay needs the durable log.
    let (status, body) = send(&router, "POST", "/admin/replay".into()).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert_eq!(body["code"], "unavailable_on_embedded");
}

/// `method uri` with an admin token (and an empty JSON object as the body of a POST).
async fn send(router: &axum::Router, method: &str, uri: String) -> (StatusCode, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header(
            "authorization",
            format!("Bearer {}", crate::auth::token(&[ADMIN])),
        )
        .header("content-type", "application/json")
        .body(axum::body::Body::from(if method == "POST" {
            "{}"
        } else {
            ""
        }))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice::<Value>(&bytes).unwrap())
}
