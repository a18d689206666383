//! Reference rows held in memory (`reference::cache`): they answer exactly as the database
//! does, and every change — by this process's projector, by another process's, by a replay's
//! swap, or behind the listener's back while it was disconnected — is seen.

use std::time::{Duration, Instant};

use delius_bridge::engine::Engine;
use delius_bridge::reference::{self, Lookup};
use delius_bridge::seed;
use projections::postgres::REFERENCE_CHANNEL;
use serde_json::{Map, Value};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::{assert_replay_equals_live, demo_seed, engine, settle};

type Rows = Vec<Map<String, Value>>;

/// How many lookups the process's caches have answered so far.
fn answered() -> i64 {
    let text = delius_bridge::metrics::render();
    text.lines()
        .find_map(|line| {
            line.strip_prefix(delius_bridge::metrics::REFERENCE_CACHE_ANSWERS_TOTAL)?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0) as i64
}

/// Waits (up to 10 s) until the engine's listener is connected.
async fn listening(engine: &Engine) {
    let cache = engine.reference_cache().expect("a cache on PostgreSQL");
    let started = Instant::now();
    while !cache.is_listening() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reference listener did not connect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The institution with this NOMIS code, as `engine` answers.
async fn institution(engine: &Engine, nomis: &str) -> Rows {
    let found = reference::lookup_many(
        engine,
        &[Lookup::new("r_institution", "nomis_code", [nomis])],
    )
    .await
    .unwrap();
    found.into_iter().next().unwrap()
}

/// A seed adding (or changing) one institution.
fn institution_seed(nomis: &str, description: &str) -> seed::SeedFile {
    seed::parse(&format!(
        r#"{{"description": "one prison", "reference_data": {{"institutions": [
            {{"code": "{nomis}HMP", "description": "{description}", "nomis_code": "{nomis}",
              "probation_area_code": "N07"}}]}}, "cases": []}}"#
    ))
    .expect("institution seed parses")
}

/// Polls `engine` (up to 10 s) until the institution reads `description`.
async fn eventually_described(engine: &Engine, nomis: &str, description: &str) {
    let started = Instant::now();
    loop {
        let rows = institution(engine, nomis).await;
        if reference::string(rows.first().unwrap_or(&Map::new()), "description").as_deref()
            == Some(description)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{nomis} still reads {rows:?}, not {description:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn cached_lookups_answer_as_the_database_does(pool: PgPool) {
    delius_bridge::metrics::install();
    let cached = engine(pool.clone());
    seed::load(&cached, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&cached).await;
    listening(&cached).await;
    let database = engine(pool.clone()).without_reference_cache();
    let lookups = vec![
        Lookup::new("r_custodial_status", "code", ["D", "B", "NOPE"]),
        Lookup::new("r_release_type", "code", Vec::<String>::new()),
        Lookup::new("r_institution", "nomis_code", ["SWI", "MDI", "XXX"]),
        Lookup::new("r_institution", "code", ["SWIHMP", "MDIHMP"]),
        Lookup::new("probation_area", "institution_code", ["SWIHMP", "MDIHMP"]),
        Lookup::new("staff", "code", ["N07A001", "N07A002", "MISSING"]),
        Lookup::new("team", "probation_area_code", ["N07"]),
        Lookup::new("r_recall_reason", "code", ["NN", "EOTL", "TSH", "IRC"]),
        // A case table: never copied, answered by the database on both.
        Lookup::new("offender", "crn", ["X000001"]),
    ];
    let before = answered();
    let from_cache = reference::lookup_many(&cached, &lookups).await.unwrap();
    let from_database = reference::lookup_many(&database, &lookups).await.unwrap();
    assert_eq!(from_cache, from_database);
    assert!(!from_cache[2].is_empty() && !from_cache[5].is_empty() && !from_cache[6].is_empty());
    assert!(
        answered() - before >= 7,
        "the copies answered the reference lookups"
    );

    for (table, code) in [
        ("r_disposal_type", "DFS"),
        ("office_location", "CRS0001"),
        ("r_custodial_status", "NOPE"),
    ] {
        assert_eq!(
            reference::row(&cached, table, code).await.unwrap(),
            reference::row(&database, table, code).await.unwrap(),
            "{table}/{code}"
        );
    }
    for (table, column, value) in [
        ("pdu", "probation_area_code", "N07"),
        ("office_location", "probation_area_code", "CRS"),
        // Not text: the database compares by the column's own type.
        ("r_disposal_type", "ftc_limit", "0"),
        ("r_disposal_type", "ftc_limit", "00"),
    ] {
        let cache = reference::rows_where(&cached, table, column, value)
            .await
            .unwrap();
        assert_eq!(
            cache,
            reference::rows_where(&database, table, column, value)
                .await
                .unwrap(),
            "{table}.{column} = {value}"
        );
        assert!(!cache.is_empty(), "{table}.{column} = {value}");
    }
    // A column the table does not have, or one of another type (an array here), is the
    // database's to answer: here its error, not an empty answer.
    assert!(
        reference::rows_where(&cached, "pdu", "no_such_column", "N07")
            .await
            .is_err()
    );
    let team_codes = |engine| async move {
        reference::rows_where(engine, "staff", "team_codes", "N07T01")
            .await
            .map_err(|e| e.to_string())
    };
    let from_database = team_codes(&database).await;
    assert!(from_database.is_err(), "{from_database:?}");
    assert_eq!(team_codes(&cached).await, from_database);
    database.shutdown().await;
    cached.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_reference_change_is_seen_at_once_here_and_soon_in_another_process(pool: PgPool) {
    // The first engine's projector is the active one; the second stands by, as a second
    // process would.
    let here = engine(pool.clone());
    seed::load(&here, &demo_seed(), "seed:test").await.unwrap();
    settle(&here).await;
    let other = engine(pool.clone());
    listening(&here).await;
    listening(&other).await;
    assert!(institution(&here, "NEW").await.is_empty());
    assert!(institution(&other, "NEW").await.is_empty());

    // A new institution: read at once where it was projected.
    seed::load(&here, &institution_seed("NEW", "HMP New"), "seed:test")
        .await
        .unwrap();
    settle(&here).await;
    let found = institution(&here, "NEW").await;
    assert_eq!(
        reference::string(&found[0], "description").as_deref(),
        Some("HMP New")
    );
    eventually_described(&other, "NEW", "HMP New").await;

    // A changed description, the same.
    seed::load(&here, &institution_seed("NEW", "HMP Newer"), "seed:test")
        .await
        .unwrap();
    settle(&here).await;
    let found = institution(&here, "NEW").await;
    assert_eq!(
        reference::string(&found[0], "description").as_deref(),
        Some("HMP Newer")
    );
    eventually_described(&other, "NEW", "HMP Newer").await;
    other.shutdown().await;
    here.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_lost_listener_drops_the_copies(pool: PgPool) {
    let engine = engine(pool.clone());
    seed::load(&engine, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&engine).await;
    listening(&engine).await;
    assert!(!institution(&engine, "SWI").await.is_empty());

    // The listener's connection dies, and meanwhile a row changes without a notification
    // (a change it could not have heard of).
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one listener per engine");
    let cache = engine.reference_cache().unwrap();
    let started = Instant::now();
    while cache.is_listening() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the loss goes unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query(
        "UPDATE delius.r_institution SET description = 'HMP Elsewhere' WHERE nomis_code = 'SWI'",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Connected again, the cache answers again, and not from the copy it held before.
    listening(&engine).await;
    let before = answered();
    let found = institution(&engine, "SWI").await;
    assert_eq!(
        reference::string(&found[0], "description").as_deref(),
        Some("HMP Elsewhere")
    );
    assert!(answered() > before, "answered from a fresh copy");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn reference_changes_and_replay_swaps_are_announced(pool: PgPool) {
    let engine = engine(pool.clone());
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(REFERENCE_CHANNEL).await.unwrap();

    seed::load(&engine, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&engine).await;
    assert!(drain(&mut listener).await >= 1, "the seed's reference rows");

    // A replay swaps every table, the reference tables with them.
    assert_replay_equals_live(&pool).await;
    assert_eq!(drain(&mut listener).await, 1, "the swap");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn running_the_migrations_is_announced(pool: PgPool) {
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(REFERENCE_CHANNEL).await.unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_delius-bridge"))
        .arg("migrate")
        .env("DATABASE_URL", crate::replay::database_url(&pool))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // A migration may change national codes: running processes drop their copies.
    assert_eq!(drain(&mut listener).await, 1);
}

/// How many notifications arrive until none has for 300 ms.
async fn drain(listener: &mut PgListener) -> usize {
    let mut count = 0;
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(300), listener.try_recv()).await
    {
        count += 1;
    }
    count
}
