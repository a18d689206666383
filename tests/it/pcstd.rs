//! Prison custody status end to end (REFERENCE.md §4): the example messages of
//! `fixtures/upstream/prison-custody-status-to-delius/messages` (and, for the
//! PcstdIntegrationTest scenarios the fixtures lack, the nearest example with its movement
//! changed) published to the real RabbitMQ against the demo seed, the Prison API a wiremock
//! stub fed from the simulations; the person's Delius rows snapshotted after each message,
//! and a full replay compared to the live tables after each scenario.
//!
//! The fixtures reuse a handful of SNS `MessageId`s for unrelated messages; SNS would never
//! do that, and the bridge is idempotent per message id, so every publish here gets a fresh
//! id unless the test is about redelivery.

use serde_json::{json, Value};
use sqlx::PgPool;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use delius_bridge::handlers::{registry_with, HandlerSettings};
use delius_bridge::upstream::{ClientCredentials, UpstreamClient, UpstreamConfig};

use crate::harness::{number_new_ids, Ended, Harness};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/upstream/prison-custody-status-to-delius"
);

fn fixture(relative: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{relative}")).unwrap()
}

/// A message fixture: the SNS notification with its `Message` parsed.
#[derive(Clone)]
struct Message {
    sns: Value,
    event: Value,
}

impl Message {
    fn fixture(name: &str) -> Self {
        let sns: Value = serde_json::from_str(&fixture(&format!("messages/{name}.json"))).unwrap();
        let event = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
        Self { sns, event }
    }

    /// The same movement for another person.
    fn for_person(mut self, noms: &str) -> Self {
        self.event["additionalInformation"]["nomsNumber"] = json!(noms);
        self.event["personReference"] = json!({"identifiers": [{"type": "NOMS", "value": noms}]});
        self
    }

    fn info(mut self, key: &str, value: Value) -> Self {
        self.event["additionalInformation"][key] = value;
        self
    }

    fn occurred_at(mut self, at: &str) -> Self {
        self.event["occurredAt"] = json!(at);
        self
    }

    fn event_type(&self) -> String {
        self.sns["MessageAttributes"]["eventType"]["Value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The body with `message_id`.
    fn body(&self, message_id: &str) -> Vec<u8> {
        let mut sns = self.sns.clone();
        sns["MessageId"] = json!(message_id);
        sns["Message"] = json!(self.event.to_string());
        sns.to_string().into_bytes()
    }
}

struct World {
    h: Harness,
    server: MockServer,
}

/// The Prison API (booking and latest movement of A5295DZ, from the simulations, and the
/// same for B5295DZ) and the token endpoint.
async fn prison_api() -> MockServer {
    let server = MockServer::start().await;
    let booking: Value =
        serde_json::from_str(&fixture("simulations/__files/booking_1208804.json")).unwrap();
    let movement: Value =
        serde_json::from_str(&fixture("simulations/__files/movement_1208804.json")).unwrap();
    for noms in ["A5295DZ", "B5295DZ"] {
        let mut booking = booking.clone();
        booking["offenderNo"] = json!(noms);
        let mut movement = movement.clone();
        movement["offenderNo"] = json!(noms);
        Mock::given(method("GET"))
            .and(path(format!("/api/bookings/offenderNo/{noms}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(booking))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/movements/offenders"))
            .and(body_json(json!([noms])))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([movement])))
            .mount(&server)
            .await;
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
            server: prison_api().await,
        }
    }

    async fn start(&mut self, settings: HandlerSettings) {
        let mut config = UpstreamConfig::new([self.server.uri()]);
        config.credentials = Some(ClientCredentials {
            auth_url: self.server.uri(),
            client_id: "delius-bridge".into(),
            client_secret: "secret".into(),
        });
        config.attempts = 1;
        let upstream = UpstreamClient::from_config(config).unwrap();
        let settings = HandlerSettings {
            prison_api_url: Some(self.server.uri()),
            ..settings
        };
        let handlers = registry_with(&self.h.engine, &upstream, &settings);
        self.h.start(handlers).await;
    }

    /// Publishes `message` under a fresh id; returns the id.
    async fn publish(&self, message: &Message) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.h
            .rig
            .publish(&message.event_type(), &message.body(&id))
            .await;
        id
    }

    /// Publishes and waits for the end.
    async fn deliver(&self, message: &Message) -> (String, Ended) {
        let id = self.publish(message).await;
        let ended = self.h.ended(&id).await;
        (id, ended)
    }

    /// The name of the ignorable outcome recorded for `id`.
    async fn ignored_name(&self, id: &str) -> String {
        match self.h.ended_ignored(id).await {
            Some(name) => name,
            None => panic!("{id} was not recorded as ignored"),
        }
    }

    /// What Delius holds of the person `offender_id` that prison movements write, and what
    /// each movement did to their custodies (the command log's summaries), ids numbered.
    async fn person(&self, offender_id: i64) -> Value {
        let h = &self.h;
        let custody = "FROM delius.custody c JOIN delius.disposal d USING (disposal_id) \
                       JOIN delius.event e USING (event_id)";
        let mut person = json!({
            "custody": h.rows(&format!("SELECT c.custody_id, c.custodial_status_code, c.institution_code, c.status_change_date, c.location_change_date {custody} WHERE e.offender_id = {offender_id} ORDER BY 1")).await,
            "custody_history": h.rows(&format!("SELECT custody_history_id, custody_id, custody_event_type_code, detail, historical_date FROM delius.custody_history WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "release": h.rows(&format!("SELECT release_id, custody_id, release_type_code, actual_release_date, institution_code, probation_area_code FROM delius.release WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "recall": h.rows(&format!("SELECT recall_id, release_id, recall_reason_code, recall_date FROM delius.recall WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "licence_condition": h.rows(&format!("SELECT l.lic_condition_id, l.main_category_code, l.termination_date, l.termination_reason_code, l.pending_transfer, l.transfer_status_code, l.transfer_decision_code, l.transfer_reason_code, l.transfer_status_date FROM delius.licence_condition l JOIN delius.disposal d USING (disposal_id) JOIN delius.event e USING (event_id) WHERE e.offender_id = {offender_id} ORDER BY 1")).await,
            "event": h.rows(&format!("SELECT event_id, first_release_date FROM delius.event WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "contact": h.rows(&format!("SELECT contact_id, contact_type_code, contact_date, start_time, alert_active, staff_code, team_code, probation_area_code, event_id, lic_condition_id, notes FROM delius.contact WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "contact_alert": h.rows(&format!("SELECT contact_alert_id, contact_id, contact_type_code, offender_manager_id, staff_code, team_code FROM delius.contact_alert WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "prison_offender_manager": h.rows(&format!("SELECT prison_offender_manager_id, staff_code, team_code, probation_area_code, allocation_reason_code, allocation_date, end_date, active FROM delius.prison_offender_manager WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "responsible_officer": h.rows(&format!("SELECT responsible_officer_id, prison_offender_manager_id, offender_manager_id, start_date, end_date FROM delius.responsible_officer WHERE offender_id = {offender_id} ORDER BY 1")).await,
            "movements": h.rows(&format!("SELECT l.aggregate_id AS custody_id, l.outcome->'reply' AS summary FROM command_log l WHERE l.aggregate_type = 'Custody' AND l.command_type = 'RecordMovement' AND l.aggregate_id IN (SELECT c.custody_id::text {custody} WHERE e.offender_id = {offender_id}) ORDER BY l.recorded_at, l.aggregate_id")).await,
        });
        number_new_ids(&mut person);
        person
    }
}

/// One scenario: a message, whose person it is, and how it must end.
struct Scenario {
    name: &'static str,
    message: Message,
    offender_id: i64,
    /// `None`: committed; `Some(name)`: acked as ignorable with this name.
    ignored: Option<&'static str>,
}

fn scenario(name: &'static str, message: Message, offender_id: i64) -> Scenario {
    Scenario {
        name,
        message,
        offender_id,
        ignored: None,
    }
}

fn ignored(
    name: &'static str,
    message: Message,
    offender_id: i64,
    outcome: &'static str,
) -> Scenario {
    Scenario {
        ignored: Some(outcome),
        ..scenario(name, message, offender_id)
    }
}

/// Every example message against its seeded case, and the PcstdIntegrationTest scenarios
/// of REFERENCE.md §4.4.
fn scenarios() -> Vec<Scenario> {
    let received = || Message::fixture("prisoner-received");
    let irc = || Message::fixture("prisoner-received-irc-custody");
    vec![
        // Release: ADL, B, COMMUN, EREL, POM AUT to WSIALL; then messages dated 2010.
        scenario("released", Message::fixture("prisoner-released"), 100),
        ignored(
            "released_historic",
            Message::fixture("prisoner-released-historic"),
            100,
            "InvalidReleaseDate+PrisonerStatusCorrect+PrisonerLocationCorrect",
        ),
        ignored(
            "released_hospital_historic",
            Message::fixture("prisoner-released-hospital-historic"),
            100,
            "InvalidRecallDate+PrisonerStatusCorrect+PrisonerLocationCorrect",
        ),
        // Recall ADMISSION R1: NN, D, WSIHMP, POM AUT, ERCL/ETER/ETCX/ETCP, conditions ended.
        scenario("received_recall", received(), 200),
        // New custody: A → D, no recall.
        scenario(
            "received_new_custody",
            Message::fixture("prisoner-received-new-custody"),
            300,
        ),
        // Hospital release on licence: TSH, C, XXX056.
        scenario(
            "released_hospital_on_licence",
            Message::fixture("prisoner-received-hospital-released"),
            400,
        ),
        // Already recalled: RecallNotRequired, C → D, WSIHMP.
        scenario(
            "received_already_recalled",
            Message::fixture("prisoner-received-recalled"),
            500,
        ),
        // Hospital (RELEASED_TO_HOSPITAL HQ) from custody: location only.
        scenario(
            "released_hospital_in_custody",
            Message::fixture("prisoner-received-hospital-custody"),
            600,
        ),
        // ROTL return: EOTL, R → D.
        scenario(
            "received_rotl",
            Message::fixture("prisoner-received-rotl"),
            700,
        ),
        // IRC release on licence (DE): IRC, C, XXX054.
        scenario(
            "released_irc_on_licence",
            irc()
                .for_person("A0009AA")
                .info("nomisMovementReasonCode", json!("DE")),
            800,
        ),
        // IRC (DD) from custody: location only.
        scenario("released_irc_in_custody", irc(), 900),
        // ECSL release: release type ECSL, B, COMMUN.
        scenario(
            "released_ecsl",
            Message::fixture("prisoner-released-ecsl-active"),
            1000,
        ),
        // ECSL for a person with no active custodial event.
        ignored(
            "released_ecsl_inactive",
            Message::fixture("prisoner-released-ecsl-inactive"),
            1100,
            "NoActiveCustodialEvent",
        ),
        // Absconded (UAL): NN, C, UATLRG.
        scenario(
            "released_absconded",
            irc()
                .for_person("A0017AA")
                .info("nomisMovementReasonCode", json!("UAL")),
            1200,
        ),
        // ETR from custody: location XXX054 only.
        scenario(
            "released_etr_in_custody",
            irc()
                .for_person("A0019AA")
                .info("nomisMovementReasonCode", json!("ETR")),
            1300,
        ),
        // ECSLIRC from custody: location XXX054 only.
        scenario(
            "released_ecslirc_in_custody",
            Message::fixture("prisoner-received-ecslirc-custody"),
            1400,
        ),
        // Administrative merge: nothing to do.
        ignored(
            "released_admin_merge",
            Message::fixture("prisoner-released-admin-merge"),
            1500,
            "NoActions",
        ),
        // Home detention curfew release (HD): release type HDC.
        scenario(
            "released_hdc",
            Message::fixture("prisoner-released")
                .for_person("A0023AA")
                .info("nomisMovementReasonCode", json!("HD"))
                .occurred_at("2024-07-01T09:30:00+01:00"),
            1600,
        ),
        // Died: DUS3 with an alert for the community manager.
        scenario("released_died", Message::fixture("prisoner-died"), 1700),
        // Prisoner matched: the Prison API says TRANSFERRED INT MDI → SWI: location only,
        // POM AUT to SWIALL.
        scenario(
            "identifier_added_transfer",
            Message::fixture("prisoner-matched"),
            1800,
        ),
    ]
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn every_example_message_against_its_seeded_case(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(HandlerSettings::default()).await;
    for scenario in scenarios() {
        let (id, ended) = world.deliver(&scenario.message).await;
        match scenario.ignored {
            None => assert_eq!(ended, Ended::Committed, "{}", scenario.name),
            Some(name) => {
                assert!(
                    matches!(ended, Ended::Committed | Ended::Ignored(_)),
                    "{}: {ended:?}",
                    scenario.name
                );
                assert_eq!(world.ignored_name(&id).await, name, "{}", scenario.name);
            }
        }
        let rows = world.person(scenario.offender_id).await;
        insta::assert_json_snapshot!(scenario.name, rows);
        crate::assert_replay_equals_live(&world.h.pool).await;
    }
    assert_eq!(world.h.dead_letter_count().await, 0);
    world.h.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn every_active_custodial_event_moves_in_one_message(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(HandlerSettings::default()).await;
    // H123412 (A4096DX) has two active custodial sentences, both in custody at SWIHMP.
    let release = Message::fixture("prisoner-released")
        .for_person("A4096DX")
        .info("prisonId", json!("SWI"))
        .occurred_at("2023-09-01T10:00:00+01:00");
    let (_, ended) = world.deliver(&release).await;
    assert_eq!(ended, Ended::Committed);
    insta::assert_json_snapshot!("two_custodies_released", world.person(2700).await);
    let transaction: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transaction_id) FROM events \
         WHERE aggregate_type IN ('Custody', 'PomAllocation') AND aggregate_id IN ('2731', '2732', 'H123412') \
         AND metadata->>'source' = 'amqp'",
    )
    .fetch_one(&world.h.pool)
    .await
    .unwrap();
    assert_eq!(transaction, 1, "both custodies and the POM commit together");
    world.h.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_failing_action_rolls_the_whole_message_back_and_it_is_retried(pool: PgPool) {
    let mut world = World::new(pool, &[50, 50]).await;
    world.start(HandlerSettings::default()).await;
    let before = world.h.checksums().await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&world.h.pool)
        .await
        .unwrap();
    // B5295DZ has two overlapping open POMs: the location changes (WSIHMP → SWIHMP) but the
    // POM auto-allocation cannot tell which POM to end, so nothing may be written.
    let (id, ended) = world
        .deliver(&Message::fixture("prisoner-matched-with-pom"))
        .await;
    let Ended::DeadLettered(reason) = ended else {
        panic!("expected a dead letter, got {ended:?}");
    };
    assert!(reason.starts_with("failed after 3 attempts"), "{reason}");
    assert!(reason.contains("cannot tell the current one"), "{reason}");
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_outcome WHERE message_id = $1 AND outcome = 'failed'",
    )
    .bind(&id)
    .fetch_one(&world.h.pool)
    .await
    .unwrap();
    assert_eq!(failures, 3, "delivered three times");
    assert_eq!(world.h.checksums().await, before, "Delius is unchanged");
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&world.h.pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "no event was written");
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log WHERE message_id = $1")
        .bind(&id)
        .fetch_one(&world.h.pool)
        .await
        .unwrap();
    assert_eq!(logged, 0);
    world.h.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn repeated_out_of_order_and_future_movements_change_nothing(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    world.start(HandlerSettings::default()).await;
    let release = Message::fixture("prisoner-released");
    // The same message three times: one decision.
    let id = "0e9f7c1a-0000-4000-8000-000000000001";
    for _ in 0..3 {
        world
            .h
            .rig
            .publish(&release.event_type(), &release.body(id))
            .await;
    }
    assert_eq!(world.h.ended(id).await, Ended::Committed);
    let (marker, _) = world.deliver(&Message::fixture("prisoner-died")).await;
    world.h.ended(&marker).await;
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log WHERE message_id = $1")
        .bind(id)
        .fetch_one(&world.h.pool)
        .await
        .unwrap();
    assert_eq!(logged, 2, "one custody and one POM command, once");
    let releases: i64 =
        sqlx::query_scalar("SELECT count(*) FROM delius.release WHERE offender_id = 100")
            .fetch_one(&world.h.pool)
            .await
            .unwrap();
    assert_eq!(releases, 1);
    let before = world.h.checksums().await;

    // A second, identical release under another id is a no-op for Delius.
    let (again, _) = world.deliver(&release).await;
    assert_eq!(
        world.ignored_name(&again).await,
        "UnableToRelease+PrisonerStatusCorrect+PrisonerLocationCorrect"
    );
    // A release dated before the latest recall (A0006AA, recalled 2023-08-04).
    let early = Message::fixture("prisoner-released")
        .for_person("A0006AA")
        .occurred_at("2023-08-01T10:00:00+01:00");
    let (early, _) = world.deliver(&early).await;
    assert_eq!(
        world.ignored_name(&early).await,
        "InvalidReleaseDate+PrisonerStatusCorrect+PrisonerLocationCorrect"
    );
    // Movements dated in the future: a recall and a death.
    let future = Message::fixture("prisoner-received").occurred_at("2099-01-01T00:00:00Z");
    let (future, _) = world.deliver(&future).await;
    assert_eq!(
        world.ignored_name(&future).await,
        "InvalidRecallDate+PrisonerStatusCorrect+PrisonerLocationCorrect"
    );
    let died = Message::fixture("prisoner-died")
        .for_person("A0013AA")
        .occurred_at("2099-01-01T00:00:00Z");
    let (died, _) = world.deliver(&died).await;
    assert_eq!(world.ignored_name(&died).await, "InvalidMovementDate");
    // Seeding the unchanged baseline again does not undo the release.
    let report = delius_bridge::seed::load(&world.h.engine, &crate::demo_seed(), "seed:again")
        .await
        .unwrap();
    assert_eq!(report.changed, 0);
    crate::settle(&world.h.engine).await;
    assert_eq!(world.h.checksums().await, before, "Delius is unchanged");
    assert_eq!(world.h.dead_letter_count().await, 0);
    // Support staff see it all in the person's audit timeline: the custody stream (found by
    // the offender id), the release, and each ignored repeat with its name.
    let crn: String = sqlx::query_scalar("SELECT crn FROM delius.offender WHERE offender_id = 100")
        .fetch_one(&world.h.pool)
        .await
        .unwrap();
    let timeline = delius_bridge::audit::case_timeline(
        &world.h.engine.backend,
        &delius_bridge::amqp::handler::OutcomeLog::for_backend(&world.h.engine.backend),
        &crn,
    )
    .await
    .unwrap();
    assert!(
        timeline.streams.iter().any(|s| s.starts_with("Custody/")),
        "{:?}",
        timeline.streams
    );
    let json = serde_json::to_value(&timeline).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let released = entries
        .iter()
        .find(|e| e["eventType"] == "Released")
        .expect("the release is on the timeline");
    assert_eq!(released["messageId"], id);
    assert!(released["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["table"] == "release"));
    assert!(entries.iter().any(|e| e["kind"] == "outcome"
        && e["name"] == "UnableToRelease+PrisonerStatusCorrect+PrisonerLocationCorrect"
        && e["messageId"] == again.as_str()));
    world.h.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn bad_and_unmatched_messages_are_dead_lettered_or_ignored_by_name(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    // A second person with A0001AA's NOMS number.
    let duplicate = delius_bridge::seed::parse(
        &json!({"cases": [{"person": {"offender_id": 9001, "crn": "P900001", "noms_number": "A0001AA",
            "first_name": "Dup", "surname": "Licate", "date_of_birth": "1980-01-01"}}]})
        .to_string(),
    )
    .unwrap();
    delius_bridge::seed::load(&world.h.engine, &duplicate, "seed:test")
        .await
        .unwrap();
    crate::settle(&world.h.engine).await;
    world.start(HandlerSettings::default()).await;
    let before = world.h.checksums().await;

    let released = || Message::fixture("prisoner-released");
    let cases: Vec<(Message, Ended)> = vec![
        (
            released().for_person("A9999ZZ"),
            Ended::Ignored("MissingNomsNumber".into()),
        ),
        (released(), Ended::Ignored("DuplicateNomsNumber".into())),
        (
            released().info("reason", json!("SENT_TO_COURT")),
            Ended::Ignored("NoConfigForMovement".into()),
        ),
        (
            released().info("reason", Value::Null),
            Ended::DeadLettered("additionalInformation.reason is required".into()),
        ),
        (
            {
                let mut m = released();
                m.event["additionalInformation"]
                    .as_object_mut()
                    .unwrap()
                    .remove("nomsNumber");
                m.event["personReference"] = json!({"identifiers": []});
                m
            },
            Ended::DeadLettered(
                "no NOMS number in personReference or additionalInformation.nomsNumber".into(),
            ),
        ),
        (
            Message::fixture("prisoner-received").info("prisonId", json!("XYZ")),
            Ended::DeadLettered(
                "no Delius institution for the NOMIS prison \"XYZ\" the person was received into"
                    .into(),
            ),
        ),
    ];
    for (message, expected) in cases {
        let (_, ended) = world.deliver(&message).await;
        assert_eq!(ended, expected, "{}", message.event);
    }
    // Not JSON at all.
    world
        .h
        .rig
        .publish("prison-offender-events.prisoner.released", b"{oops")
        .await;
    // The legacy EXTERNAL_MOVEMENT_RECORD-INSERTED sample is not bound to the queue; put
    // straight on it, it is dead-lettered as an event type the queue does not handle.
    let legacy = fixture("messages/prisoner-moved.json");
    let queue = world.h.rig.names.queue("prison-custody-status-to-delius");
    world
        .h
        .rig
        .publish_to(&queue, legacy.as_bytes(), Default::default())
        .await;
    let legacy_id: Value = serde_json::from_str(&legacy).unwrap();
    let Ended::DeadLettered(reason) = world
        .h
        .ended(legacy_id["MessageId"].as_str().unwrap())
        .await
    else {
        panic!("the legacy sample is dead-lettered");
    };
    assert!(
        reason.contains("EXTERNAL_MOVEMENT_RECORD-INSERTED"),
        "{reason}"
    );
    assert_eq!(world.h.dead_letter_count().await, 5);
    assert_eq!(world.h.checksums().await, before, "Delius is unchanged");
    world.h.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_feature_flag_switches_its_movements_off(pool: PgPool) {
    let mut world = World::new(pool, &[50]).await;
    let flags =
        delius_bridge::handlers::feature_flags(&["messages_released_hospital=false".into()])
            .unwrap();
    world
        .start(HandlerSettings {
            feature_flags: flags,
            ..HandlerSettings::default()
        })
        .await;
    let before = world.h.checksums().await;
    let (_, ended) = world
        .deliver(&Message::fixture("prisoner-received-hospital-released"))
        .await;
    assert_eq!(ended, Ended::Ignored("FeatureFlagNotActive".into()));
    let properties: Value = sqlx::query_scalar(
        "SELECT properties FROM message_outcome WHERE name = 'FeatureFlagNotActive'",
    )
    .fetch_one(&world.h.pool)
    .await
    .unwrap();
    assert_eq!(properties["featureFlag"], "messages_released_hospital");
    assert_eq!(properties["nomsNumber"], "A0005AA");
    // The other flag's movements still apply.
    let (_, ended) = world
        .deliver(
            &Message::fixture("prisoner-received-irc-custody")
                .for_person("A0017AA")
                .info("nomisMovementReasonCode", json!("UAL")),
        )
        .await;
    assert_eq!(ended, Ended::Committed);
    assert_ne!(world.h.checksums().await, before);
    world.h.finish().await;
}
