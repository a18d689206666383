//! Refer and Monitor over HTTP against real PostgreSQL: the ReferralStarted and
//! MergeAppointment scenarios of REFERENCE.md §2.6, the clash race, read-your-writes, the
//! auth matrix, bad input and the case-information reads. Every scenario ends with a full
//! replay compared to the live tables.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use delius_bridge::http::auth::{
    ROLE_CRS_REFERRAL, ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW,
};
use delius_bridge::http::{router, AppState};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

use crate::auth::{auth, token};
use crate::{assert_replay_equals_live, demo_seed, engine, settle};

pub(crate) const RW: &str = ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW;
pub(crate) const CRN: &str = "T140223";
pub(crate) const REFERRAL: &str = "68df9f6c-3fcb-4ec6-8fcf-96551cd9b080";
const FUTURE: &str = "2099-01-15T10:00:00Z";
const PAST: &str = "2025-01-15T10:00:00Z";

pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) pool: PgPool,
    pub(crate) engine: Arc<delius_bridge::engine::Engine>,
}

pub(crate) async fn app(pool: PgPool) -> App {
    let engine = Arc::new(engine(pool.clone()));
    delius_bridge::seed::load(&engine, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&engine).await;
    let state = AppState {
        engine: engine.clone(),
        broker: None,
        auth: auth(),
        dead_letters: None,
    };
    App {
        router: router(state),
        pool,
        engine,
    }
}

impl App {
    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        roles: &[&str],
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if !roles.is_empty() {
            request = request.header("authorization", format!("Bearer {}", token(roles)));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    pub(crate) async fn put(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", uri, Some(body), &[RW]).await
    }

    pub(crate) async fn start_referral(&self) {
        let (status, body) = self
            .put(&format!("/probation-case/{CRN}/referrals"), referral())
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    pub(crate) async fn merge(&self, body: Value) -> (StatusCode, Value) {
        self.put(
            &format!("/probation-case/{CRN}/referrals/{REFERRAL}/appointments"),
            body,
        )
        .await
    }

    /// Rows as JSON, straight after the response: no waiting (read-your-writes).
    pub(crate) async fn rows(&self, sql: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>(&format!("SELECT to_jsonb(t) FROM ({sql}) t"))
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub(crate) async fn contacts(&self) -> Vec<Value> {
        self.rows(
            "SELECT contact_id, contact_type_code, \
             CASE WHEN contact_type_code IN ('AROM','ARWS') THEN 'today' ELSE contact_date::text END AS contact_date, \
             CASE WHEN contact_type_code IN ('AROM','ARWS') THEN 'now' ELSE start_time::text END AS start_time, \
             end_time, outcome_code, attended, complied, hours_credited, rar_activity, enforcement, \
             latest_enforcement_action_code, linked_contact_id, nsi_id, event_id, requirement_id, \
             staff_code, team_code, probation_area_code, office_location_code, external_reference, \
             regexp_replace(coalesce(notes, ''), '\\d\\d/\\d\\d/\\d{4} \\d\\d:\\d\\d', '[now]') AS notes \
             FROM delius.contact WHERE offender_id = 2900 ORDER BY contact_id",
        )
        .await
    }

    pub(crate) async fn finish(self) {
        assert_replay_equals_live(&self.pool).await;
        let App { router, engine, .. } = self;
        drop(router);
        Arc::into_inner(engine).unwrap().shutdown().await;
    }
}

pub(crate) fn referral() -> Value {
    json!({
        "referralId": REFERRAL,
        "startedAt": "2023-02-01T09:15:00+00:00",
        "contractType": "ACC",
        "sentenceId": 2901,
        "notes": "Referral for accommodation support",
    })
}

pub(crate) fn appointment(id: &str, start: &str, minutes: i64) -> Value {
    json!({
        "id": id,
        "referralId": REFERRAL,
        "referralReference": "FE4536C",
        "start": start,
        "durationInMinutes": minutes,
        "notes": "Session 1",
        "officeLocationCode": "CRS0001",
        "countsTowardsRar": true,
    })
}

pub(crate) const A1: &str = "00000000-0000-4000-8000-000000000001";
pub(crate) const A2: &str = "00000000-0000-4000-8000-000000000002";

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn referral_started_creates_the_nsi_manager_history_and_contacts(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    let nsi = app
        .rows("SELECT nsi_id, offender_id, event_id, requirement_id, nsi_type_code, nsi_status_code, nsi_status_date, \
               referral_date, actual_start_date, active, intended_provider_code, external_reference, notes, last_updated_user \
               FROM delius.nsi")
        .await;
    insta::assert_json_snapshot!("referral_nsi", nsi);
    let manager = app.rows("SELECT nsi_id, probation_area_code, team_code, staff_code, start_date FROM delius.nsi_manager").await;
    let history = app
        .rows("SELECT nsi_id, nsi_status_code, change_date FROM delius.nsi_status_history")
        .await;
    insta::assert_json_snapshot!(
        "referral_manager_and_history",
        json!({"manager": manager, "history": history})
    );
    insta::assert_json_snapshot!("referral_contacts", app.contacts().await);

    // The same request again creates nothing.
    app.start_referral().await;
    assert_eq!(app.count("SELECT count(*) FROM delius.nsi").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM delius.contact").await, 3);
    assert_eq!(
        app.count("SELECT count(*) FROM delius.nsi_status_history")
            .await,
        1
    );

    // Changed notes and start overwrite the NSI.
    let mut changed = referral();
    changed["notes"] = json!("Updated notes");
    changed["startedAt"] = json!("2023-02-02T09:15:00Z");
    let (status, _) = app
        .put(&format!("/probation-case/{CRN}/referrals"), changed)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let nsi = app
        .rows("SELECT notes, actual_start_date FROM delius.nsi")
        .await;
    assert_eq!(nsi[0]["notes"], "Updated notes");
    assert_eq!(nsi[0]["actual_start_date"], "2023-02-02T09:15:00+00:00");
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn referral_errors(pool: PgPool) {
    let app = app(pool).await;
    let (status, body) = app
        .put("/probation-case/Z999999/referrals", referral())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("referral_unknown_person", body);
    let mut unknown_event = referral();
    unknown_event["sentenceId"] = json!(999);
    let (status, body) = app
        .put(&format!("/probation-case/{CRN}/referrals"), unknown_event)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("referral_unknown_event", body);
    let mut unknown_contract = referral();
    unknown_contract["contractType"] = json!("XYZ");
    let (status, body) = app
        .put(
            &format!("/probation-case/{CRN}/referrals"),
            unknown_contract,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("referral_unknown_contract_type", body);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE aggregate_type = 'Referral'")
            .await,
        0
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn creates_an_appointment_with_its_external_reference(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    let (status, body) = app.merge(appointment(A1, FUTURE, 60)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["appointmentId"].as_i64().unwrap();
    let contacts = app.contacts().await;
    let created = contacts
        .iter()
        .find(|c| c["contact_id"] == json!(id))
        .unwrap();
    insta::assert_json_snapshot!("appointment_created", created);
    // Merging the same appointment again answers the same id and writes nothing.
    let events = app.count("SELECT count(*) FROM events").await;
    let (status, again) = app.merge(appointment(A1, FUTURE, 60)).await;
    assert_eq!((status, again), (StatusCode::OK, body));
    assert_eq!(app.count("SELECT count(*) FROM events").await, events);
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_clashing_appointment_is_a_conflict(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    assert_eq!(
        app.merge(appointment(A1, FUTURE, 60)).await.0,
        StatusCode::OK
    );
    let (status, body) = app.merge(appointment(A2, "2099-01-15T10:30:00Z", 60)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    insta::assert_json_snapshot!("appointment_clash", body);
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn rescheduling_at_the_persons_request(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    let (_, first) = app.merge(appointment(A1, FUTURE, 60)).await;
    let mut moved = appointment(A1, "2099-01-16T14:00:00Z", 60);
    moved["rescheduleRequestedBy"] = json!("Person on Probation");
    let (status, second) = app.merge(moved).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(first, second, "a replacement contact is created");
    let contacts = app.contacts().await;
    let appointments: Vec<&Value> = contacts
        .iter()
        .filter(|c| c["contact_type_code"] == "CRSAPT")
        .collect();
    insta::assert_json_snapshot!("rescheduled_pop_request", appointments);
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn rescheduling_by_the_provider_with_an_outcome(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    app.merge(appointment(A1, FUTURE, 60)).await;
    let mut moved = appointment(A2, PAST, 30);
    moved["previousId"] = json!(A1);
    moved["rescheduleRequestedBy"] = json!("Service Provider");
    moved["outcome"] = json!({"attended": "yes", "didSessionHappen": true, "notify": false});
    let (status, body) = app.merge(moved).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let contacts = app.contacts().await;
    let appointments: Vec<&Value> = contacts
        .iter()
        .filter(|c| c["contact_type_code"] == "CRSAPT")
        .collect();
    insta::assert_json_snapshot!("rescheduled_with_outcome", appointments);
    let rar: Option<i32> = sqlx::query_scalar("SELECT rar_count FROM delius.nsi")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rar, Some(1));
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_past_appointment_without_outcome_is_refused(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    let (status, body) = app.merge(appointment(A1, PAST, 60)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("past_without_outcome", body);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE aggregate_type = 'Diary'")
            .await,
        0
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn created_with_a_failure_to_comply_outcome(pool: PgPool) {
    let app = app(pool).await;
    app.start_referral().await;
    let mut body = appointment(A1, PAST, 60);
    body["outcome"] = json!({"attended": "LATE", "didSessionHappen": false, "noSessionReasonType": "POP_UNACCEPTABLE"});
    let (status, answer) = app.merge(body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    insta::assert_json_snapshot!("failure_to_comply_contacts", app.contacts().await);
    let enforcement = app
        .rows("SELECT contact_id, enforcement_action_code, response_date - action_taken_date AS days_to_respond FROM delius.enforcement")
        .await;
    insta::assert_json_snapshot!("failure_to_comply_enforcement", enforcement);
    assert_eq!(
        app.count("SELECT ftc_count::bigint FROM delius.event WHERE event_id = 2901")
            .await,
        1
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn missing_nsi_or_office_location_is_not_found(pool: PgPool) {
    let app = app(pool).await;
    let (status, body) = app.merge(appointment(A1, FUTURE, 60)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("appointment_without_nsi", body);
    app.start_referral().await;
    let mut inactive_location = appointment(A1, FUTURE, 60);
    inactive_location["officeLocationCode"] = json!("CRS0999");
    let (status, body) = app.merge(inactive_location).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!("appointment_unknown_location", body);
    let (status, _) = app
        .put(
            &format!("/probation-case/X123123/referrals/{REFERRAL}/appointments"),
            appointment(A1, FUTURE, 60),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the referral belongs to another person"
    );
    app.finish().await;
}

/// Two bookings of one slot, fired concurrently, many times: exactly one wins each round.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn concurrent_clashing_bookings_exactly_one_wins(pool: PgPool) {
    let app = Arc::new(app(pool).await);
    app.start_referral().await;
    for round in 0..20u32 {
        let start = format!("2099-02-{:02}T10:00:00Z", round + 1);
        let a = app.clone();
        let b = app.clone();
        let (start_a, start_b) = (start.clone(), start);
        let first = tokio::spawn(async move {
            a.merge(appointment(
                &format!("00000000-0000-4000-8000-1{round:011}"),
                &start_a,
                60,
            ))
            .await
            .0
        });
        let second = tokio::spawn(async move {
            b.merge(appointment(
                &format!("00000000-0000-4000-8000-2{round:011}"),
                &start_b,
                60,
            ))
            .await
            .0
        });
        let mut statuses = vec![first.await.unwrap(), second.await.unwrap()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM delius.contact WHERE contact_type_code = 'CRSAPT'")
            .await,
        20
    );
    Arc::into_inner(app).unwrap().finish().await;
}

/// The response waits for the projector: while an older transaction is open the projector
/// cannot pass it, and the request does not answer; once it commits, the answer comes and the
/// rows are there.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_response_waits_until_the_rows_are_visible(pool: PgPool) {
    let app = Arc::new(app(pool.clone()).await);
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let caller = app.clone();
    let request = tokio::spawn(async move {
        caller
            .put(&format!("/probation-case/{CRN}/referrals"), referral())
            .await
            .0
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !request.is_finished(),
        "answered before its rows could be visible"
    );
    blocker.commit().await.unwrap();
    assert_eq!(request.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT count(*) FROM delius.nsi").await, 1);
    Arc::into_inner(app).unwrap().finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn every_endpoint_needs_a_token_and_its_role(pool: PgPool) {
    let app = app(pool).await;
    let endpoints: [(&str, String, Option<Value>, &[&str]); 9] = [
        (
            "PUT",
            format!("/probation-case/{CRN}/referrals"),
            Some(referral()),
            &[RW, ROLE_CRS_REFERRAL],
        ),
        (
            "PUT",
            format!("/probation-case/{CRN}/referrals/{REFERRAL}/appointments"),
            Some(appointment(A1, FUTURE, 60)),
            &[RW, ROLE_CRS_REFERRAL],
        ),
        (
            "GET",
            format!("/probation-case/{CRN}/identifiers"),
            None,
            &[ROLE_CRS_REFERRAL],
        ),
        (
            "GET",
            format!("/probation-case/{CRN}/details"),
            None,
            &[ROLE_CRS_REFERRAL],
        ),
        (
            "GET",
            format!("/probation-case/{CRN}/convictions"),
            None,
            &[ROLE_CRS_REFERRAL],
        ),
        (
            "GET",
            format!("/probation-case/{CRN}/convictions/2901"),
            None,
            &[ROLE_CRS_REFERRAL],
        ),
        (
            "GET",
            format!("/probation-case/{CRN}/responsible-officer"),
            None,
            &[ROLE_CRS_REFERRAL, RW],
        ),
        (
            "GET",
            "/office-locations".to_string(),
            None,
            &[ROLE_CRS_REFERRAL, RW],
        ),
        (
            "GET",
            "/probation-delivery-units".to_string(),
            None,
            &[ROLE_CRS_REFERRAL, RW],
        ),
    ];
    for (method, uri, body, roles) in endpoints {
        let (status, answer) = app.call(method, &uri, body.clone(), &[]).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} without a token"
        );
        assert_eq!(answer["status"], 401);
        let (status, _) = app
            .call(method, &uri, body.clone(), &["ROLE_SOMETHING_ELSE"])
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {uri} with the wrong role"
        );
        for role in roles {
            let (status, answer) = app.call(method, &uri, body.clone(), &[role]).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{method} {uri} with {role}: {status} {answer}"
            );
        }
    }
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn bad_input_is_a_400_naming_the_problem_and_writes_nothing(pool: PgPool) {
    let app = app(pool).await;
    let referrals = format!("/probation-case/{CRN}/referrals");
    let mut cases: Vec<(&str, String, Value)> = Vec::new();
    let mut missing = referral();
    missing.as_object_mut().unwrap().remove("sentenceId");
    cases.push(("missing field", referrals.clone(), missing));
    let mut mistyped = referral();
    mistyped["sentenceId"] = json!("two");
    cases.push(("mistyped field", referrals.clone(), mistyped));
    let mut bad_uuid = referral();
    bad_uuid["referralId"] = json!("not-a-uuid");
    cases.push(("non-UUID referral id", referrals.clone(), bad_uuid));
    cases.push((
        "bad CRN",
        "/probation-case/t14022/referrals".into(),
        referral(),
    ));
    let mut bad_outcome = appointment(A1, PAST, 30);
    bad_outcome["outcome"] = json!({"attended": "MAYBE"});
    cases.push((
        "unknown attendance",
        format!("/probation-case/{CRN}/referrals/{REFERRAL}/appointments"),
        bad_outcome,
    ));
    cases.push((
        "non-UUID path id",
        format!("/probation-case/{CRN}/referrals/nope/appointments"),
        appointment(A1, FUTURE, 60),
    ));
    let mut answers = Vec::new();
    for (name, uri, body) in cases {
        let (status, answer) = app.put(&uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        answers.push(json!({"case": name, "answer": answer}));
    }
    // Malformed JSON.
    let request = Request::put(referrals)
        .header("authorization", format!("Bearer {}", token(&[RW])))
        .header("content-type", "application/json")
        .body(Body::from("{\"referralId\": "))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    answers.push(json!({"case": "malformed JSON", "answer": serde_json::from_slice::<Value>(&bytes).unwrap()}));
    insta::assert_json_snapshot!("bad_input_answers", answers);
    let events = app
        .count("SELECT count(*) FROM events WHERE aggregate_type IN ('Referral', 'Diary')")
        .await;
    assert_eq!(events, 0, "bad input writes nothing");
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn case_information_reads(pool: PgPool) {
    let app = app(pool).await;
    let get = |uri: String| {
        let app = &app;
        async move { app.call("GET", &uri, None, &[ROLE_CRS_REFERRAL]).await }
    };
    insta::assert_json_snapshot!(
        "identifiers",
        get(format!("/probation-case/{CRN}/identifiers")).await.1
    );
    insta::assert_json_snapshot!(
        "details",
        get(format!("/probation-case/{CRN}/details")).await.1
    );
    insta::assert_json_snapshot!(
        "com_is_responsible_officer",
        get(format!("/probation-case/{CRN}/responsible-officer"))
            .await
            .1
    );
    insta::assert_json_snapshot!(
        "pom_is_responsible_officer",
        get("/probation-case/T123456/responsible-officer".into())
            .await
            .1
    );
    insta::assert_json_snapshot!(
        "convictions",
        get(format!("/probation-case/{CRN}/convictions")).await.1
    );
    insta::assert_json_snapshot!(
        "conviction",
        get(format!("/probation-case/{CRN}/convictions/2901"))
            .await
            .1
    );
    let (status, body) = get(format!("/probation-case/{CRN}/convictions/2902")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an adjournment is no conviction: {body}"
    );
    insta::assert_json_snapshot!("office_locations", get("/office-locations".into()).await.1);
    insta::assert_json_snapshot!(
        "delivery_units",
        get("/probation-delivery-units".into()).await.1
    );
    for uri in [
        "identifiers",
        "details",
        "responsible-officer",
        "convictions",
        "convictions/1",
    ] {
        let (status, body) = get(format!("/probation-case/Z999999/{uri}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
    app.finish().await;
}
