//! Replay against real PostgreSQL (DESIGN.md §3): the swap while commands and readers keep
//! going, the picture as of several moments (`--until`), a rebuild killed mid-way and resumed
//! by the real binary, version-1 events in the log, an undecodable event, and the HTTP
//! endpoints with their errors.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use delius_bridge::http::auth::ROLE_PROBATION_INTEGRATION_ADMIN;
use projections::checksum::{compare_schemas, schema_checksums};
use projections::replay::{self, ReplayError, ReplayRequest, Silent};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::crs::{app, appointment, App, A1, A2, CRN};
use crate::settle;

const ADMIN: &str = ROLE_PROBATION_INTEGRATION_ADMIN;
const PAST: &str = "2025-01-15T10:00:00Z";

async fn checksums(pool: &PgPool, schema: &str) -> BTreeMap<&'static str, String> {
    let mut conn = pool.acquire().await.unwrap();
    schema_checksums(&mut conn, schema).await.unwrap()
}

async fn now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// An appointment on day `n` of 2099 (never clashing with another day's).
fn future_appointment(n: u32) -> Value {
    let id = format!("00000000-0000-4000-9000-{n:012}");
    let day = chrono::NaiveDate::from_yo_opt(2099, n + 1).unwrap();
    appointment(&id, &format!("{day}T10:00:00Z"), 30)
}

/// The URL of the test's own database (for the real binary).
pub(crate) fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let database = pool.connect_options().get_database().unwrap().to_string();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{database}")
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_swap_while_commands_and_readers_run_loses_nothing(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    let before: i64 = app.count("SELECT count(*) FROM delius.contact").await;
    // Readers: the contacts never go missing and never fail while tables are swapped.
    let reader_pool = pool.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let reader = tokio::spawn(async move {
        let mut seen = 0i64;
        let mut reads = 0u32;
        while !*stopped.borrow() {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.contact")
                .fetch_one(&reader_pool)
                .await
                .expect("a reader never fails during a swap");
            assert!(count >= seen, "a reader saw {count} contacts after {seen}");
            seen = count;
            reads += 1;
        }
        reads
    });
    // Writers: appointments booked through the HTTP path while the rebuild runs.
    let mut request = ReplayRequest::new("delius", "test");
    request.batch_size = 20;
    request.throttle = Duration::from_millis(5);
    let rebuild = {
        let pool = pool.clone();
        tokio::spawn(async move { replay::replay(&pool, &request, &mut Silent).await })
    };
    for n in 0..15 {
        let (status, body) = app.merge(future_appointment(n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let report = rebuild.await.unwrap().expect("rebuild");
    assert!(report.swapped);
    for n in 15..20 {
        let (status, body) = app.merge(future_appointment(n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    settle(&app.engine).await;
    stop.send(true).unwrap();
    assert!(reader.await.unwrap() > 0, "the reader ran");
    assert_eq!(
        app.count("SELECT count(*) FROM delius.contact").await,
        before + 20,
        "every appointment booked before, during and after the swap is there"
    );
    let run = replay::run_status_by_id(&pool, report.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, "swapped");
    // The live projector carried on from the swapped-in checkpoint: a second full replay
    // equals what it built since.
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn until_rebuilds_the_picture_as_of_each_moment(pool: PgPool) {
    let app = app(pool.clone()).await;
    let mut moments = vec![(now(&pool).await, checksums(&pool, "delius").await)];
    app.start_referral().await;
    moments.push((now(&pool).await, checksums(&pool, "delius").await));
    assert_eq!(
        app.merge(appointment(A1, "2099-01-15T10:00:00Z", 60))
            .await
            .0,
        StatusCode::OK
    );
    moments.push((now(&pool).await, checksums(&pool, "delius").await));
    let mut moved = appointment(A2, PAST, 30);
    moved["previousId"] = json!(A1);
    moved["rescheduleRequestedBy"] = json!("Service Provider");
    moved["outcome"] = json!({"attended": "yes", "didSessionHappen": true, "notify": false});
    assert_eq!(app.merge(moved).await.0, StatusCode::OK);
    settle(&app.engine).await;
    moments.push((now(&pool).await, checksums(&pool, "delius").await));
    for window in moments.windows(2) {
        assert_ne!(window[0].1, window[1].1, "each step changed Delius");
    }
    let live = checksums(&pool, "delius").await;
    for (i, (moment, expected)) in moments.iter().enumerate() {
        let mut request = ReplayRequest::new("delius", "test");
        request.until = Some(*moment);
        // The default target: delius_asof_{moment}.
        let report = replay::replay(&pool, &request, &mut Silent).await.unwrap();
        assert!(!report.swapped);
        assert!(report.target_schema.starts_with("delius_asof_"));
        assert_eq!(
            &checksums(&pool, &report.target_schema).await,
            expected,
            "the picture as of moment {i}"
        );
    }
    assert_eq!(
        checksums(&pool, "delius").await,
        live,
        "live tables untouched"
    );
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_killed_rebuild_resumes_from_its_last_batch(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    let total: i64 = app.count("SELECT count(*) FROM events").await;
    let binary = env!("CARGO_BIN_EXE_delius-bridge");
    let args = [
        "replay",
        "--projection",
        "delius",
        "--into",
        "resumed",
        "--batch-size",
        "4",
        "--throttle-ms",
        "40",
        "--no-progress",
    ];
    let mut child = Command::new(binary)
        .args(args)
        .env("DATABASE_URL", database_url(&pool))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) once some batches committed.
    let applied_when_killed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT events_applied FROM replay_run WHERE target_schema = 'resumed'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap();
            if let Some(applied) = applied.filter(|a| *a >= 20) {
                return applied;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let applied_when_killed = applied_when_killed.expect("the rebuild made progress");
    let (status, applied): (String, i64) = sqlx::query_as(
        "SELECT status, events_applied FROM replay_run WHERE target_schema = 'resumed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "building", "killed mid-way");
    assert!(
        applied >= applied_when_killed && applied < total,
        "{applied} of {total}"
    );
    // Run again with the same options: it continues from the last committed batch.
    let output = Command::new(binary)
        .args(&args[..7])
        .env("DATABASE_URL", database_url(&pool))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{total} events (resumed at {applied})")),
        "{stdout}"
    );
    let (status, applied, resumed): (String, i64, i32) = sqlx::query_as(
        "SELECT status, events_applied, resumed FROM replay_run WHERE target_schema = 'resumed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), applied, resumed), ("built", total, 1));
    let mut conn = pool.acquire().await.unwrap();
    let differences = compare_schemas(&mut conn, "delius", "resumed")
        .await
        .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    // Indexes and unique constraints were built after the bulk load, as the live ones.
    let indexes = |schema: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT regexp_replace(indexdef, ' ON [a-z_]+\\.', ' ON ') FROM pg_indexes \
                 WHERE schemaname = $1 AND tablename = ANY($2) ORDER BY indexname",
            )
            .bind(schema)
            .bind(
                projections::TABLES
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(indexes("resumed").await, indexes("delius").await);
    // --fresh starts from the first event.
    let output = Command::new(binary)
        .args(&args[..7])
        .arg("--fresh")
        .env("DATABASE_URL", database_url(&pool))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("{total} events in")), "{stdout}");
    app.finish().await;
}

/// The stored `AppointmentOutcomeRecorded` events rewritten as version 1.0 (`hours_credited`
/// as the rounded string), as an older build wrote them.
async fn downgrade_outcomes_to_v1(pool: &PgPool) -> u64 {
    sqlx::query(
        "UPDATE events SET event_version = '1.0', payload = json_build_object( \
           'AppointmentOutcomeRecorded', \
           (payload -> 'AppointmentOutcomeRecorded')::jsonb - 'minutes_credited' || jsonb_build_object( \
             'hours_credited', \
             CASE WHEN payload -> 'AppointmentOutcomeRecorded' ->> 'minutes_credited' IS NULL THEN NULL \
             ELSE to_char(((payload -> 'AppointmentOutcomeRecorded' ->> 'minutes_credited')::int * 100 + 30) / 60 / 100.0, 'FM990.00') END)) \
         WHERE event_type = 'AppointmentOutcomeRecorded'",
    )
    .execute(pool)
    .await
    .unwrap()
    .rows_affected()
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_log_of_version_1_events_replays_into_the_current_shape(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    let mut attended = appointment(A1, PAST, 90);
    attended["outcome"] = json!({"attended": "yes", "didSessionHappen": true, "notify": false});
    assert_eq!(app.merge(attended).await.0, StatusCode::OK);
    settle(&app.engine).await;
    let hours: Vec<Value> = app
        .rows("SELECT hours_credited FROM delius.contact WHERE hours_credited IS NOT NULL")
        .await;
    assert_eq!(hours, vec![json!({"hours_credited": 1.5})]);
    let live = checksums(&pool, "delius").await;
    let (diary, sequence) = app
        .engine
        .bus
        .load::<aggregates::diary::Diary>(CRN)
        .await
        .unwrap();
    assert!(downgrade_outcomes_to_v1(&pool).await > 0);
    let stored: (String, Value) = sqlx::query_as(
        "SELECT event_version, payload::jsonb FROM events \
         WHERE event_type = 'AppointmentOutcomeRecorded' ORDER BY global_position LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored.0, "1.0");
    assert_eq!(
        stored.1["AppointmentOutcomeRecorded"]["hours_credited"],
        "1.50"
    );
    // The projection rebuilt from version-1 events equals the one built from version 2.
    let mut request = ReplayRequest::new("delius", "test");
    request.into = Some("from_v1".into());
    replay::replay(&pool, &request, &mut Silent).await.unwrap();
    assert_eq!(checksums(&pool, "from_v1").await, live);
    // The aggregate rebuilt from them decides as before.
    let (reloaded, reloaded_sequence) = app
        .engine
        .bus
        .load::<aggregates::diary::Diary>(CRN)
        .await
        .unwrap();
    assert_eq!((reloaded, reloaded_sequence), (diary.clone(), sequence));
    // So does the cqrs-es book backend (the benchmarks' naive baseline), which reads the same
    // log with its own decoder. (The diary's state keeps no credited minutes, so this shows
    // the version-1 events decode, not what the upcaster makes of them.)
    let book = delius_bridge::engine::Engine::cqrs_book(pool.clone());
    let from_book = book
        .bus
        .load::<aggregates::diary::Diary>(CRN)
        .await
        .unwrap();
    assert_eq!(from_book, (diary, sequence));
    book.shutdown().await;
    // A payload neither current nor upcastable does not rehydrate: the load fails (it never
    // skips the event), on the decoding path and on the upcasting one.
    let kept: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT global_position, event_version, payload::text FROM events \
         WHERE event_type = 'AppointmentOutcomeRecorded'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for version in ["2.0", "1.0"] {
        sqlx::query(
            "UPDATE events SET event_version = $1, payload = '{\"NoSuchEvent\": {}}' \
             WHERE event_type = 'AppointmentOutcomeRecorded'",
        )
        .bind(version)
        .execute(&pool)
        .await
        .unwrap();
        let failed = app
            .engine
            .bus
            .load::<aggregates::diary::Diary>(CRN)
            .await
            .expect_err("an undecodable event");
        assert!(
            matches!(failed, delius_bridge::store::StoreError::Decode(_)),
            "{version}: {failed}"
        );
    }
    for (position, version, payload) in kept {
        sqlx::query(
            "UPDATE events SET event_version = $2, payload = $3::json WHERE global_position = $1",
        )
        .bind(position)
        .bind(version)
        .bind(payload)
        .execute(&pool)
        .await
        .unwrap();
    }
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn an_undecodable_event_fails_the_rebuild_and_leaves_live_alone(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    settle(&app.engine).await;
    let live = checksums(&pool, "delius").await;
    let position: i64 = sqlx::query_scalar(
        "UPDATE events SET payload = '{\"NoSuchEvent\": {}}' WHERE global_position = \
         (SELECT max(global_position) FROM events) RETURNING global_position",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut request = ReplayRequest::new("delius", "test");
    request.batch_size = 10;
    let error = replay::replay(&pool, &request, &mut Silent)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ReplayError::Projection(_))
            && error.to_string().contains(&format!("position {position}")),
        "{error}"
    );
    let (status, message): (String, Option<String>) = sqlx::query_as(
        "SELECT status, error FROM replay_run WHERE target_schema = 'delius_rebuild'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert!(message.unwrap().contains(&format!("position {position}")));
    assert_eq!(
        checksums(&pool, "delius").await,
        live,
        "live tables untouched"
    );
    // Bad requests are refused before anything is touched.
    for (into, projection, batch) in [
        (Some("delius"), "delius", 10),
        (Some("delius_retired"), "delius", 10),
        (Some("public"), "delius", 10),
        (Some("Bad-Name"), "delius", 10),
        (None, "reports", 10),
        (None, "delius", 0),
    ] {
        let mut request = ReplayRequest::new(projection, "test");
        request.into = into.map(str::to_string);
        request.batch_size = batch;
        assert!(
            replay::replay(&pool, &request, &mut Silent).await.is_err(),
            "{into:?} {projection} {batch}"
        );
    }
    let App { router, engine, .. } = app;
    drop(router);
    std::sync::Arc::into_inner(engine).unwrap().shutdown().await;
}

/// The batch writer runs on a thread of its own, with batches queued behind the one it
/// writes: a batch the database refuses comes back as the rebuild's error (the run `failed`,
/// its message kept), nothing of it is committed, **nor of any batch queued behind it** (the
/// run's checkpoint would pass the refused rows), and once the cause is gone the run resumes
/// from its last committed batch and ends equal to the live tables.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_batch_the_database_refuses_fails_the_rebuild_which_resumes_once_fixed(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    for n in 0..6 {
        let (status, body) = app.merge(future_appointment(n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    settle(&app.engine).await;
    let total: i64 = app.count("SELECT count(*) FROM events").await;
    let mut request = ReplayRequest::new("delius", "test");
    request.into = Some("refused".into());
    request.batch_size = 2;
    replay::replay(&pool, &request, &mut Silent).await.unwrap();
    // The same run again from the first event, into a schema that refuses one contact in the
    // middle of the log: the batches after it would succeed.
    let contacts: Vec<i64> =
        sqlx::query_scalar("SELECT contact_id FROM delius.contact ORDER BY last_event_position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(contacts.len() >= 6, "{contacts:?}");
    let refused = contacts[contacts.len() / 2];
    for statement in [
        "UPDATE replay_run SET status = 'building', events_applied = 0, transaction_id = 0, \
         global_position = 0 WHERE target_schema = 'refused'"
            .to_string(),
        "TRUNCATE refused.contact".to_string(),
        format!(
            "ALTER TABLE refused.contact ADD CONSTRAINT refused_contact \
             CHECK (contact_id <> {refused}) NOT VALID"
        ),
    ] {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    let error = replay::replay(&pool, &request, &mut Silent)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ReplayError::Projection(_))
            && error.to_string().contains("refused_contact"),
        "{error}"
    );
    let (status, message, applied): (String, Option<String>, i64) = sqlx::query_as(
        "SELECT status, error, events_applied FROM replay_run WHERE target_schema = 'refused'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert!(message.unwrap().contains("refused_contact"));
    assert!(applied > 0 && applied < total, "{applied} of {total}");
    let written: i64 = app
        .count(&format!(
            "SELECT count(*) FROM refused.contact c JOIN delius.contact l USING (contact_id) \
             WHERE l.last_event_position >= (SELECT last_event_position FROM delius.contact \
             WHERE contact_id = {refused})"
        ))
        .await;
    assert_eq!(
        written, 0,
        "nothing from the refused batch on was committed"
    );
    sqlx::query("ALTER TABLE refused.contact DROP CONSTRAINT refused_contact")
        .execute(&pool)
        .await
        .unwrap();
    let report = replay::replay(&pool, &request, &mut Silent).await.unwrap();
    assert_eq!(
        (report.resumed_at as i64, report.events as i64),
        (applied, total)
    );
    let mut conn = pool.acquire().await.unwrap();
    let differences = compare_schemas(&mut conn, "delius", "refused")
        .await
        .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    drop(conn);
    app.finish().await;
}

async fn wait_for_run(app: &App, url: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (status, body) = app.call("GET", url, None, &[ADMIN]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] != "building" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run ends")
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn replay_over_http_runs_in_the_background(pool: PgPool) {
    let app = app(pool.clone()).await;
    app.start_referral().await;
    let live = checksums(&pool, "delius").await;
    let (status, started) = app
        .call(
            "POST",
            "/admin/replay",
            Some(json!({"batchSize": 50})),
            &[ADMIN],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["targetSchema"], "delius_rebuild");
    assert_eq!(started["swap"], true);
    let url = started["statusUrl"].as_str().unwrap().to_string();
    let run = wait_for_run(&app, &url).await;
    assert_eq!(run["status"], "swapped", "{run}");
    assert_eq!(run["eventsApplied"], run["eventsTotal"]);
    assert_eq!(run["requestedBy"], "http:test-user");
    assert_eq!(checksums(&pool, "delius").await, live);
    let (status, runs) = app.call("GET", "/admin/replay", None, &[ADMIN]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs[0]["runId"], started["runId"]);

    // The picture as of a moment, into a named schema.
    let moment = now(&pool).await;
    let (status, started) = app
        .call(
            "POST",
            "/admin/replay",
            Some(json!({"until": moment, "into": "investigation"})),
            &[ADMIN],
        )
        .await;
    assert_eq!(
        (status, started["swap"].clone()),
        (StatusCode::ACCEPTED, json!(false))
    );
    let run = wait_for_run(&app, started["statusUrl"].as_str().unwrap()).await;
    assert_eq!(run["status"], "built");
    assert_eq!(checksums(&pool, "investigation").await, live);

    // A rebuild of a target that is running is a conflict.
    let mut holding = ReplayRequest::new("delius", "test");
    holding.into = Some("held".into());
    let held = replay::prepare(&pool, &holding).await.unwrap();
    let (status, body) = app
        .call(
            "POST",
            "/admin/replay",
            Some(json!({"into": "held"})),
            &[ADMIN],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    insta::assert_json_snapshot!("replay_busy", body);
    drop(held);

    // Bad input, unknown runs and missing roles.
    let cases = [
        (
            "POST",
            "/admin/replay",
            Some(json!({"into": "delius"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/admin/replay",
            Some(json!({"projection": "reports"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/admin/replay",
            Some(json!({"batchSize": 0})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/admin/replay",
            Some(json!({"into": "x; DROP TABLE events"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/admin/replay",
            Some(json!({"until": "yesterday"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/admin/replay",
            Some(json!({"unknown": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/admin/replay/not-a-uuid",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/admin/replay/00000000-0000-4000-8000-000000000000",
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    let mut bodies = Vec::new();
    for (method, uri, body, expected) in cases {
        let (status, answer) = app.call(method, uri, body.clone(), &[ADMIN]).await;
        assert_eq!(status, expected, "{method} {uri} {body:?}: {answer}");
        bodies.push(answer);
    }
    insta::assert_json_snapshot!("replay_errors", bodies);
    let (status, _) = app
        .call("POST", "/admin/replay", Some(json!({})), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call("POST", "/admin/replay", Some(json!({})), &[crate::crs::RW])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.finish().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_generated_log_projects_and_replays_equal(pool: PgPool) {
    let workload = delius_bridge::workload::Workload::new(11, 300);
    let mut slices = Vec::new();
    let report =
        delius_bridge::workload::log::write_log(&pool, workload, 100, None, |people, events| {
            slices.push((people, events))
        })
        .await
        .unwrap();
    assert_eq!(slices.len(), 3);
    assert_eq!(
        report.outcomes[2..],
        [0, 0],
        "no generated message is rejected or fails"
    );
    assert!(report.outcomes[0] > 0);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored as u64, report.events);
    // The reference data is in the log once.
    let duplicated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT aggregate_type, aggregate_id FROM events \
         GROUP BY 1, 2, sequence HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(duplicated, 0);
    // The live projector takes it all; a full replay equals it.
    let engine = crate::engine(pool.clone());
    settle(&engine).await;
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.offender")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(people, 300);
    let mix: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(mix.len() >= 10, "a mix of event types: {mix:?}");
    crate::assert_replay_equals_live(&pool).await;
    engine.shutdown().await;
}

/// Free text with the characters `COPY`'s text format escapes (a replay writes each row's
/// first version with `COPY`): the rebuilt rows carry it exactly as the live projector wrote it.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn free_text_with_tabs_newlines_and_backslashes_replays_exactly(pool: PgPool) {
    const NOTES: &str = "tab\there\nline two\r\nback\\slash \\N not null, \\\\ two; ünïcödé ✓";
    let app = app(pool.clone()).await;
    let mut referral = crate::crs::referral();
    referral["notes"] = json!(NOTES);
    let (status, body) = app
        .put(&format!("/probation-case/{CRN}/referrals"), referral)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let mut session = appointment(A1, "2099-01-15T10:00:00Z", 30);
    session["notes"] = json!(NOTES);
    let (status, body) = app.merge(session).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notes = "SELECT notes FROM delius.nsi UNION ALL \
                 (SELECT notes FROM delius.contact WHERE notes IS NOT NULL ORDER BY contact_id)";
    let live: Vec<String> = sqlx::query_scalar(notes).fetch_all(&pool).await.unwrap();
    assert!(
        live.iter().filter(|n| n.contains(NOTES)).count() >= 2,
        "the NSI and the appointment's contact carry the text: {live:?}"
    );
    crate::assert_replay_equals_live(&pool).await;
    let rebuilt: Vec<String> = sqlx::query_scalar(notes).fetch_all(&pool).await.unwrap();
    assert_eq!(rebuilt, live);
    app.finish().await;
}
