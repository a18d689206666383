//! Refer and Monitor domain events end to end: the example messages of
//! `fixtures/upstream/refer-and-monitor-and-delius/messages` published to the real
//! RabbitMQ, the interventions service a wiremock stub fed from the simulations, the resulting
//! Delius rows snapshotted — and where each message ended up (acked or dead-lettered, with its
//! reason). Every test ends with a full replay compared to the live tables.

use std::time::Duration;

use delius_bridge::crs;
use delius_bridge::upstream::{ClientCredentials, UpstreamClient, UpstreamConfig};
use projections::{Metadata, Source};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::time::timeout;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::broker::PATIENCE;
use crate::harness::{Ended, Harness};
use crate::settle;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/upstream/refer-and-monitor-and-delius"
);
const CRN: &str = "T140223";
const REFERRAL: &str = "68df9f6c-3fcb-4ec6-8fcf-96551cd9b080";

fn fixture(relative: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{relative}")).unwrap()
}

/// The shared harness (pool, engine, rig, rows, checksums, dead letters) and the stub.
struct World {
    h: Harness,
    server: MockServer,
}

impl std::ops::Deref for World {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.h
    }
}

/// Mounts every mapping of the R&M simulations, and the token endpoint.
async fn stub() -> MockServer {
    let server = MockServer::start().await;
    for mappings in [
        "intervention-api.json",
        "intervention-feedback-submitted.json",
    ] {
        let file: Value =
            serde_json::from_str(&fixture(&format!("simulations/mappings/{mappings}"))).unwrap();
        for mapping in file["mappings"].as_array().unwrap() {
            let url = mapping["request"]["url"].as_str().unwrap().to_string();
            let name = mapping["response"]["bodyFileName"].as_str().unwrap();
            let Ok(body) =
                std::fs::read_to_string(format!("{FIXTURES}/simulations/__files/{name}"))
            else {
                continue; // a mapping whose body the fixtures do not ship
            };
            Mock::given(method("GET"))
                .and(path(url))
                .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
                .mount(&server)
                .await;
        }
    }
    Mock::given(method("POST"))
        .and(path("/auth/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("simulations/__files/hmpps-auth-token-body.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

impl World {
    async fn new(pool: PgPool, retry_delays_ms: &[u64]) -> Self {
        Self {
            h: Harness::new(pool, retry_delays_ms).await,
            server: stub().await,
        }
    }

    fn upstream(&self, timeout_ms: u64) -> UpstreamClient {
        let mut config = UpstreamConfig::new([self.server.uri()]);
        config.credentials = Some(ClientCredentials {
            auth_url: self.server.uri(),
            client_id: "delius-bridge".into(),
            client_secret: "secret".into(),
        });
        config.timeout = Duration::from_millis(timeout_ms);
        config.attempts = 1;
        UpstreamClient::from_config(config).unwrap()
    }

    async fn start(&mut self, upstream_timeout_ms: u64) {
        let handlers =
            delius_bridge::handlers::registry(&self.h.engine, &self.upstream(upstream_timeout_ms));
        self.h.start(handlers).await;
    }

    /// Publishes a message fixture with its detailUrl pointed at the stub; returns its id.
    async fn publish(&self, message: &str) -> String {
        let body = fixture(&format!("messages/{message}.json"))
            .replace("http://localhost:{wiremock.port}", &self.server.uri())
            .replace("http://localhost:{dev.wiremock.port}", &self.server.uri());
        let parsed: Value = serde_json::from_str(&body).unwrap();
        let event_type = parsed["MessageAttributes"]["eventType"]["Value"]
            .as_str()
            .unwrap()
            .to_string();
        self.rig.publish(&event_type, body.as_bytes()).await;
        parsed["MessageId"].as_str().unwrap().to_string()
    }

    /// Waits until `commands` commands of the message are in the command log, then until the
    /// projector has caught up.
    async fn handled(&self, message_id: &str, commands: i64) {
        let reached = timeout(PATIENCE, async {
            loop {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM command_log WHERE message_id = $1")
                        .bind(message_id)
                        .fetch_one(&self.pool)
                        .await
                        .unwrap();
                if n >= commands {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(reached.is_ok(), "message {message_id} was not handled");
        settle(&self.engine).await;
    }

    /// Waits until the message is on the dead-letter queue; returns its reason.
    async fn dead_lettered(&self, message_id: &str) -> String {
        match self.h.ended(message_id).await {
            Ended::DeadLettered(reason) => reason,
            other => panic!("{message_id} was not dead-lettered: {other:?}"),
        }
    }

    async fn finish(self) {
        self.h.finish().await;
    }
}

fn meta(id: &str) -> Metadata {
    Metadata {
        message_id: format!("setup:{id}"),
        correlation_id: "setup".into(),
        causation_id: None,
        source: Source::Cli,
        actor: "test".into(),
        received_at: chrono::Utc::now(),
    }
}

/// The referral the interventions service sent before the messages.
async fn referral(world: &World, referral_id: &str) {
    let body: crs::wire::ReferralStarted = serde_json::from_value(json!({
        "referralId": referral_id, "startedAt": "2023-02-01T09:15:00Z", "contractType": "ACC",
        "sentenceId": 2901, "notes": "Referral for accommodation support",
    }))
    .unwrap();
    crs::start_referral(&world.engine, CRN, &body, &meta(referral_id))
        .await
        .unwrap();
}

/// An appointment booked through the sync API, in the future so that it needs no outcome.
async fn appointment(world: &World, referral_id: &str, appointment_id: &str, start: &str) -> i64 {
    let body: crs::wire::MergeAppointment = serde_json::from_value(json!({
        "id": appointment_id, "referralId": referral_id, "referralReference": "FE4536C",
        "start": start, "durationInMinutes": 30, "notes": "Booked session",
        "officeLocationCode": "CRS0001", "countsTowardsRar": true,
    }))
    .unwrap();
    crs::merge_appointment(
        &world.engine,
        CRN,
        referral_id.parse().unwrap(),
        &body,
        &meta(appointment_id),
    )
    .await
    .unwrap()
}

const CONTACTS: &str = "SELECT contact_id, contact_type_code, \
     CASE WHEN contact_type_code IN ('AROM','ARWS') THEN 'today' ELSE contact_date::text END AS contact_date, \
     outcome_code, attended, complied, hours_credited, rar_activity, enforcement, linked_contact_id, \
     external_reference, regexp_replace(coalesce(notes, ''), '\\d\\d/\\d\\d/\\d{4} \\d\\d:\\d\\d', '[now]') AS notes \
     FROM delius.contact WHERE offender_id = 2900 ORDER BY contact_id";

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn action_plans_are_noted_once_a_day(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    world.start(1000).await;
    let submitted = world.publish("action-plan-submitted").await;
    world.handled(&submitted, 1).await;
    let approved = world.publish("action-plan-approved").await;
    world.handled(&approved, 1).await;
    let notes = world
        .rows("SELECT contact_type_code, contact_date, start_time, notes FROM delius.contact WHERE contact_type_code = 'CRSNOTE' ORDER BY contact_id")
        .await;
    insta::assert_json_snapshot!("action_plan_notes", notes);
    assert_eq!(world.dead_letter_count().await, 0);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn compliant_session_feedback(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    appointment(
        &world,
        REFERRAL,
        "48911ad2-1213-4bd3-8312-3824dc29f131",
        "2099-01-15T10:00:00Z",
    )
    .await;
    world.start(1000).await;
    let id = world
        .publish("session-appointment-feedback-submitted-compliant")
        .await;
    world.handled(&id, 1).await;
    insta::assert_json_snapshot!("feedback_compliant", world.rows(CONTACTS).await);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn no_session_feedback(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    appointment(
        &world,
        REFERRAL,
        "c8801fa4-4487-4b38-9169-efabd4be98c9",
        "2099-01-15T10:00:00Z",
    )
    .await;
    world.start(1000).await;
    let id = world
        .publish("session-appointment-feedback-submitted-no-session")
        .await;
    world.handled(&id, 1).await;
    insta::assert_json_snapshot!("feedback_no_session", world.rows(CONTACTS).await);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn not_attended_feedback_enforces(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    let referral_id = "89a3f79c-f12b-43de-9616-77ae19813cfe";
    referral(&world, referral_id).await;
    appointment(
        &world,
        referral_id,
        "3b8282cd-baa5-45d3-8489-b5836a58a0e8",
        "2099-01-15T10:00:00Z",
    )
    .await;
    world.start(1000).await;
    let id = world
        .publish("session-appointment-feedback-submitted-not-attended")
        .await;
    world.handled(&id, 1).await;
    insta::assert_json_snapshot!("feedback_not_attended", world.rows(CONTACTS).await);
    let counts = world
        .rows("SELECT e.ftc_count, (SELECT count(*) FROM delius.enforcement) AS enforcements FROM delius.event e WHERE e.event_id = 2901")
        .await;
    assert_eq!(counts, [json!({"ftc_count": 1, "enforcements": 1})]);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn feedback_for_an_unknown_appointment_is_dead_lettered_with_its_reason(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(1000).await;
    // No NSI for the referral.
    let id = world
        .publish("session-appointment-feedback-submitted-not-found")
        .await;
    let reason = world.dead_lettered(&id).await;
    assert!(reason.contains("NSI cannot be determined"), "{reason}");
    // The NSI exists but the appointment does not. (The shared mapping serves this session at
    // another appointment id than the message's detailUrl names: serve it at the message's.)
    Mock::given(method("GET"))
        .and(path("/referral/cb293dcb-c201-4743-aa9d-acb14c8a1ddd/delivery-session-appointments/ac26da83-978f-4bbf-b517-f406fc29fb6d"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("simulations/__files/session-appointment-feedback-submitted-not-found.json"),
            "application/json",
        ))
        .mount(&world.server)
        .await;
    referral(&world, "cb293dcb-c201-4743-aa9d-acb14c8a1ddd").await;
    assert_eq!(
        world.dead_letters().await.redrive(&id, None).await.unwrap(),
        1
    );
    let redriven = timeout(PATIENCE, async {
        loop {
            let letters = world.dead_letters().await.list(None).await.unwrap();
            if let Some(letter) = letters.iter().find(|l| l.message_id == id) {
                if letter
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains("appointment not found"))
                {
                    return letter.reason.clone().unwrap_or_default();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("redriven and dead-lettered again with the new reason");
    assert!(
        redriven
            .contains("urn:hmpps:interventions-appointment:ac26da83-978f-4bbf-b517-f406fc29fb6d"),
        "{redriven}"
    );
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn referral_ended_completes_the_nsi_and_withdraws_future_appointments(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    appointment(
        &world,
        REFERRAL,
        "00000000-0000-4000-8000-000000000001",
        "2099-01-15T10:00:00Z",
    )
    .await;
    world.start(1000).await;
    let id = world.publish("referral-prematurely-ended").await;
    world.handled(&id, 2).await;
    let nsi = world
        .rows("SELECT nsi_status_code, nsi_status_date, nsi_outcome_code, actual_end_date, active, notes FROM delius.nsi")
        .await;
    insta::assert_json_snapshot!("referral_ended_nsi", nsi);
    let history = world.rows("SELECT nsi_status_code, change_date FROM delius.nsi_status_history ORDER BY nsi_status_history_id").await;
    insta::assert_json_snapshot!("referral_ended_history", history);
    insta::assert_json_snapshot!("referral_ended_contacts", world.rows(CONTACTS).await);

    // Delivered twice more: Delius does not change.
    let before = world.checksums().await;
    let body = fixture("messages/referral-prematurely-ended.json")
        .replace("http://localhost:{wiremock.port}", &world.server.uri());
    world
        .rig
        .publish("intervention.referral.ended", body.as_bytes())
        .await;
    world
        .rig
        .publish("intervention.referral.ended", body.as_bytes())
        .await;
    // A later message on the same single consumer proves the duplicates were handled.
    let marker = world.publish("action-plan-submitted").await;
    world.handled(&marker, 1).await;
    let after = world.checksums().await;
    let changed: Vec<&str> = before
        .keys()
        .filter(|t| before[*t] != after[*t])
        .copied()
        .collect();
    assert_eq!(changed, ["contact"], "only the marker's CRSNOTE is new");
    assert_eq!(world.dead_letter_count().await, 0);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_referral_that_cannot_be_matched_is_dead_lettered(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(1000).await;
    let id = world.publish("fuzzy-search-referral-ended").await;
    let reason = world.dead_lettered(&id).await;
    assert!(reason.contains("NSI cannot be determined"), "{reason}");
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn malformed_and_unknown_messages_are_dead_lettered_and_change_nothing(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(1000).await;
    let before = world.checksums().await;
    world
        .rig
        .publish("intervention.referral.ended", b"{not json")
        .await;
    let unknown = json!({
        "Type": "Notification", "MessageId": "unknown-type-1",
        "Message": json!({"eventType": "intervention.something.else"}).to_string(),
        "MessageAttributes": {"eventType": {"Type": "String", "Value": "intervention.something.else"}},
    });
    world
        .rig
        .publish(
            "intervention.referral.ended",
            unknown.to_string().as_bytes(),
        )
        .await;
    let reason = world.dead_lettered("unknown-type-1").await;
    assert!(reason.contains("intervention.something.else"), "{reason}");
    let listed = world.dead_letters().await.list(None).await.unwrap();
    assert_eq!(listed.len(), 2, "both are dead letters: {listed:?}");
    assert_eq!(world.checksums().await, before);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_foreign_detail_url_is_rejected_without_a_request(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    world.start(1000).await;
    let body = fixture("messages/referral-prematurely-ended.json")
        .replace("http://localhost:{wiremock.port}", "http://example.invalid");
    world
        .rig
        .publish("intervention.referral.ended", body.as_bytes())
        .await;
    let id: Value = serde_json::from_str(&body).unwrap();
    let reason = world.dead_lettered(id["MessageId"].as_str().unwrap()).await;
    assert!(reason.contains("refusing to call"), "{reason}");
    let requests = world.server.received_requests().await.unwrap_or_default();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().starts_with("/sent-referral")),
        "nothing was fetched"
    );
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn an_upstream_failure_is_retried_until_it_succeeds(pool: PgPool) {
    let mut world = World::new(pool, &[50, 100]).await;
    referral(&world, REFERRAL).await;
    // The first call fails with 500; later ones get the simulation's answer.
    Mock::given(method("GET"))
        .and(path("/sent-referral/f56c5f7c-632f-4cad-a1b3-693541cb5f22"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&world.server)
        .await;
    world.start(1000).await;
    let id = world.publish("referral-prematurely-ended").await;
    world.handled(&id, 2).await;
    let status: String = sqlx::query_scalar("SELECT nsi_status_code FROM delius.nsi")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(status, "COMP");
    let calls = world
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().starts_with("/sent-referral"))
        .count();
    assert_eq!(calls, 2, "one failure, one success");
    assert_eq!(world.dead_letter_count().await, 0);
    world.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn an_upstream_that_never_answers_ends_in_the_dead_letter_queue(pool: PgPool) {
    let mut world = World::new(pool, &[50, 100]).await;
    referral(&world, REFERRAL).await;
    Mock::given(method("GET"))
        .and(path("/sent-referral/f56c5f7c-632f-4cad-a1b3-693541cb5f22"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .with_priority(1)
        .mount(&world.server)
        .await;
    world.start(200).await;
    let before = world.checksums().await;
    let id = world.publish("referral-prematurely-ended").await;
    let reason = world.dead_lettered(&id).await;
    assert!(reason.contains("failed after 3 attempts"), "{reason}");
    assert_eq!(world.checksums().await, before, "nothing was written");
    world.finish().await;
}

/// The legacy-shaped feedback (attendance and behaviour under `sessionFeedback`) asks to
/// notify the practitioner: attended, failed to comply — ROM enforcement with its AROM contact,
/// the event's failure-to-comply count, and the ARWS review past the disposal's limit.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn legacy_feedback_failing_to_comply_enforces(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    let referral_id = "f56c5f7c-632f-4cad-a1b3-693541cb5f22";
    referral(&world, referral_id).await;
    appointment(
        &world,
        referral_id,
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "2099-01-15T10:00:00Z",
    )
    .await;
    world.start(1000).await;
    let id = world
        .publish("session-appointment-feedback-submitted")
        .await;
    world.handled(&id, 1).await;
    insta::assert_json_snapshot!("feedback_failed_to_comply", world.rows(CONTACTS).await);
    let enforcement = world
        .rows(
            "SELECT e.enforcement_action_code, e.response_date - e.action_taken_date AS days, \
             (SELECT ftc_count FROM delius.event WHERE event_id = 2901) AS ftc_count \
             FROM delius.enforcement e",
        )
        .await;
    assert_eq!(
        enforcement,
        [json!({"enforcement_action_code": "ROM", "days": 7, "ftc_count": 1})]
    );
    world.finish().await;
}

/// Initial-assessment feedback reads the supplier assessment's appointments and takes the
/// feedback submitted last.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn initial_assessment_feedback_takes_the_latest_appointment(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    referral(&world, REFERRAL).await;
    let latest = "11111111-2222-4333-8444-555555555555";
    appointment(&world, REFERRAL, latest, "2099-01-15T10:00:00Z").await;
    let assessment = json!({
        "id": "99999999-2222-4333-8444-555555555555",
        "referralId": REFERRAL,
        "appointments": [
            {"id": "22222222-2222-4333-8444-555555555555", "appointmentTime": "2023-02-01T10:00:00Z",
             "durationInMinutes": 60,
             "appointmentFeedback": {"attendanceFeedback": {"attended": "no", "didSessionHappen": false,
                                     "submittedAt": "2023-02-01T11:00:00Z"}}},
            {"id": latest, "appointmentTime": "2023-02-08T10:00:00Z", "durationInMinutes": 60,
             "appointmentFeedback": {"attendanceFeedback": {"attended": "late", "didSessionHappen": true,
                                     "submittedAt": "2023-02-08T11:00:00Z"},
                                     "sessionFeedback": {"notifyProbationPractitioner": false}}},
        ],
    });
    Mock::given(method("GET"))
        .and(path(
            "/supplier-assessment/99999999-2222-4333-8444-555555555555",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(assessment))
        .mount(&world.server)
        .await;
    world.start(1000).await;
    let event = json!({
        "eventType": "intervention.initial-assessment-appointment.session-feedback-submitted",
        "version": 1,
        "detailUrl": format!("{}/supplier-assessment/99999999-2222-4333-8444-555555555555", world.server.uri()),
        "occurredAt": "2023-02-08T11:00:00Z",
        "additionalInformation": {"referralId": REFERRAL, "referralReference": "FE4536C",
            "contractTypeName": "Accommodation", "primeProviderName": "Provider",
            "referralProbationUserURL": "https://ui/url"},
        "personReference": {"identifiers": [{"type": "CRN", "value": CRN}]},
    });
    let body = json!({
        "Type": "Notification", "MessageId": "initial-assessment-1",
        "Message": event.to_string(),
        "MessageAttributes": {"eventType": {"Type": "String",
            "Value": "intervention.initial-assessment-appointment.session-feedback-submitted"}},
    });
    world
        .rig
        .publish(
            "intervention.initial-assessment-appointment.session-feedback-submitted",
            body.to_string().as_bytes(),
        )
        .await;
    world.handled("initial-assessment-1", 1).await;
    let outcome = world
        .rows(&format!(
            "SELECT outcome_code, attended, complied, hours_credited FROM delius.contact \
             WHERE external_reference = 'urn:hmpps:interventions-appointment:{latest}'"
        ))
        .await;
    assert_eq!(
        outcome,
        [
            json!({"outcome_code": "ATTC", "attended": true, "complied": true, "hours_credited": 0.5})
        ]
    );
    world.finish().await;
}
