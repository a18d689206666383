//! Seeding a Delius baseline through the command bus.

use delius_bridge::seed::{self, SeedError};
use serde_json::Value;
use sqlx::PgPool;

use crate::{assert_replay_equals_live, demo_seed, engine, settle};

async fn rows(pool: &PgPool, sql: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, Value>(&format!("SELECT to_jsonb(t) FROM ({sql}) t"))
        .fetch_all(pool)
        .await
        .expect("query")
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_demo_seed_lands_in_the_delius_tables(pool: PgPool) {
    let engine = engine(pool.clone());
    let file = demo_seed();
    let report = seed::load(&engine, &file, "seed:test")
        .await
        .expect("seed loads");
    settle(&engine).await;

    let offenders: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.offender")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(offenders as usize, file.cases.len());
    assert_eq!(report.unchanged, 0);

    let case = rows(
        &pool,
        "SELECT o.crn, o.noms_number, o.first_name, o.surname, o.date_of_birth, e.event_id, e.event_number, \
                d.disposal_type_code, d.sentence_type, d.disposal_date, c.custodial_status_code, c.institution_code, \
                c.last_event_position IS NOT NULL AS projected \
         FROM delius.offender o JOIN delius.event e USING (offender_id) \
         JOIN delius.disposal d USING (event_id) JOIN delius.custody c USING (disposal_id) \
         WHERE o.noms_number = 'A0001AA' ORDER BY e.event_id",
    )
    .await;
    insta::assert_json_snapshot!("released_case_rows", case);

    let releases = rows(
        &pool,
        "SELECT r.release_id, r.release_type_code, r.actual_release_date, r.institution_code, rc.recall_reason_code, rc.recall_date \
         FROM delius.release r LEFT JOIN delius.recall rc USING (release_id) \
         JOIN delius.offender o ON o.offender_id = r.offender_id WHERE o.noms_number = 'A0006AA' ORDER BY r.release_id",
    )
    .await;
    insta::assert_json_snapshot!("recalled_case_releases", releases);

    let managers = rows(
        &pool,
        "SELECT p.staff_code, p.team_code, p.probation_area_code, p.allocation_reason_code, p.active, \
                ro.responsible_officer_id IS NOT NULL AS responsible_officer \
         FROM delius.prison_offender_manager p \
         LEFT JOIN delius.responsible_officer ro ON ro.prison_offender_manager_id = p.prison_offender_manager_id AND ro.end_date IS NULL \
         JOIN delius.offender o ON o.offender_id = p.offender_id WHERE o.noms_number = 'A0123BY' \
         ORDER BY p.prison_offender_manager_id",
    )
    .await;
    insta::assert_json_snapshot!("pom_case_managers", managers);

    let audit = rows(
        &pool,
        "SELECT last_updated_user, created_datetime = last_updated_datetime AS untouched_since_insert \
         FROM delius.offender WHERE crn = 'T140223'",
    )
    .await;
    insta::assert_json_snapshot!("seeded_row_audit_columns", audit);

    assert_replay_equals_live(&pool).await;
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn seeding_the_same_file_twice_changes_nothing(pool: PgPool) {
    let engine = engine(pool.clone());
    let file = demo_seed();
    let first = seed::load(&engine, &file, "seed:test")
        .await
        .expect("first load");
    settle(&engine).await;
    let mut conn = pool.acquire().await.unwrap();
    let before = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .unwrap();
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();

    let second = seed::load(&engine, &file, "seed:test")
        .await
        .expect("second load");
    settle(&engine).await;
    let after = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .unwrap();
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();

    assert!(first.changed > 0);
    assert_eq!(second.changed, 0, "nothing changes the second time");
    assert_eq!(second.unchanged, first.changed + first.unchanged);
    assert_eq!(
        events_before, events_after,
        "no event is written the second time"
    );
    assert_eq!(before, after, "no row changes the second time");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_changed_case_is_recorded_again(pool: PgPool) {
    let engine = engine(pool.clone());
    let mut file = demo_seed();
    seed::load(&engine, &file, "seed:test").await.unwrap();
    file.cases[0].person.surname = "Changed".into();
    let report = seed::load(&engine, &file, "seed:test").await.unwrap();
    settle(&engine).await;
    assert_eq!(report.changed, 1, "only the changed case is recorded");
    let surname: String = sqlx::query_scalar("SELECT surname FROM delius.offender WHERE crn = $1")
        .bind(&file.cases[0].person.crn)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(surname, "Changed");
    assert_replay_equals_live(&pool).await;
    engine.shutdown().await;
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_mistyped_field_is_named_by_path_and_nothing_loads(pool: PgPool) {
    let json = include_str!("../../fixtures/delius/demo.json");
    let mut value: Value = serde_json::from_str(json).unwrap();
    value["cases"][2]["person"]["date_of_birth"] = Value::from("not a date");
    let error = seed::parse(&value.to_string()).unwrap_err();
    match &error {
        SeedError::Parse(problem) => {
            assert_eq!(problem.path, "cases[2].person.date_of_birth");
            assert!(
                problem
                    .message
                    .contains("input contains invalid characters"),
                "{}",
                problem.message
            );
        }
        other => panic!("expected a parse error, got {other}"),
    }
    assert_eq!(event_count(&pool).await, 0);
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn broken_rules_are_all_reported_and_nothing_loads(pool: PgPool) {
    let engine = engine(pool.clone());
    let mut file = demo_seed();
    file.cases[1].person.crn = "bad".into();
    file.cases[3].person.offender_id = file.cases[4].person.offender_id;
    let custody = file
        .cases
        .iter_mut()
        .flat_map(|c| c.events.iter_mut())
        .find_map(|e| e.disposal.as_mut().and_then(|d| d.custody.as_mut()))
        .expect("a custodial case");
    custody.institution_code = Some("NOWHERE".into());
    custody.custody_id = 10_000_000;

    let error = seed::load(&engine, &file, "seed:test").await.unwrap_err();
    let SeedError::Invalid(problems) = error else {
        panic!("expected validation problems, got {error}");
    };
    let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    insta::assert_json_snapshot!("broken_rule_problems", listed);
    assert_eq!(event_count(&pool).await, 0, "an invalid file loads nothing");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn codes_already_seeded_count_as_known(pool: PgPool) {
    let engine = engine(pool.clone());
    let file = demo_seed();
    seed::load(&engine, &file, "seed:test").await.unwrap();
    settle(&engine).await;
    // A second file that uses the first file's teams and institutions without defining them.
    let mut second = demo_seed();
    second.reference_data = Default::default();
    seed::load(&engine, &second, "seed:test")
        .await
        .expect("codes seeded earlier are known from Delius");
    engine.shutdown().await;
}
