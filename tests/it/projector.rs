//! The catch-up projector: exactly once in effect under concurrent writers, never past an
//! in-flight transaction, one active instance per projector.

use std::collections::BTreeMap;
use std::time::Duration;

use aggregates::reference::{ReferenceCommand, ReferenceData, ReferenceEntry, Team};
use aggregates::Timed;
use chrono::Utc;
use projections::{Metadata, Source};
use sqlx::PgPool;

use crate::{assert_replay_equals_live, engine, settle};

fn metadata(message_id: String) -> Metadata {
    Metadata {
        message_id,
        correlation_id: "test".into(),
        causation_id: None,
        source: Source::Cli,
        actor: "test".into(),
        received_at: Utc::now(),
    }
}

fn team(code: &str, description: &str) -> ReferenceEntry {
    ReferenceEntry::Team(Team {
        code: code.into(),
        description: description.into(),
        probation_area_code: "N07".into(),
        pdu_code: None,
        email: None,
        telephone: None,
    })
}

/// 16 writers append to 8 shared and 16 own aggregates while the projector runs: every event
/// is applied exactly once (the checkpoint's count equals the log's), every row holds the
/// value and position of its aggregate's last event, and a replay equals the live tables.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn concurrent_writers_are_projected_exactly_once(pool: PgPool) {
    let engine = std::sync::Arc::new(engine(pool.clone()));
    let writers = 16;
    let commands_per_writer = 25;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..commands_per_writer {
                // Half the commands contend on 8 shared teams, half go to the writer's own.
                let code = if i % 2 == 0 {
                    format!("SHARED{}", i % 8)
                } else {
                    format!("OWN{writer}")
                };
                let entry = team(&code, &format!("written by {writer} #{i}"));
                let id = entry.aggregate_id();
                engine
                    .bus
                    .execute::<ReferenceData>(
                        &id,
                        Timed::new(Utc::now(), ReferenceCommand::RecordEntry(entry)),
                        &metadata(format!("w{writer}-{i}")),
                    )
                    .await
                    .expect("command succeeds within its retries");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    settle(&engine).await;

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, (writers * commands_per_writer) as i64);
    let applied: i64 = sqlx::query_scalar(
        "SELECT events_applied FROM projector_checkpoint WHERE projector = 'delius'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        applied, total,
        "every event applied once: none skipped, none doubled"
    );

    // Each team row holds its aggregate's last event: value and position.
    let last_events: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT DISTINCT ON (aggregate_id) aggregate_id, global_position, payload::jsonb \
         FROM events ORDER BY aggregate_id, sequence DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let rows: BTreeMap<String, (String, i64)> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT code, description, last_event_position FROM delius.team WHERE last_event_position IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(code, description, position)| (code, (description, position)))
    .collect();
    assert_eq!(rows.len(), last_events.len());
    for (aggregate_id, position, payload) in last_events {
        let code = aggregate_id.trim_start_matches("team/");
        let description = payload["ReferenceEntryRecorded"]["entry"]["description"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(rows[code], (description, position), "row {code}");
    }
    assert_replay_equals_live(&pool).await;
    std::sync::Arc::into_inner(engine).unwrap().shutdown().await;
}

/// How many read-your-writes waits with `outcome` the process's metrics have recorded.
fn projection_waits(outcome: &str) -> u64 {
    let prefix = format!(
        "{}_count{{outcome=\"{outcome}\"}}",
        delius_bridge::metrics::PROJECTION_WAIT_SECONDS
    );
    delius_bridge::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// An event whose transaction is still open when later events commit is not skipped: the
/// projector stops below the oldest in-flight transaction and projects it once it commits.
/// The waits are recorded in the read-your-writes histogram, a timeout as such.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_projector_never_passes_an_in_flight_transaction(pool: PgPool) {
    delius_bridge::metrics::install();
    let engine = engine(pool.clone());
    let payload = serde_json::json!({"ReferenceEntryRecorded": {"entry": {
        "table": "team", "code": "SLOW", "description": "slow writer", "probation_area_code": "N07"}}});
    let metadata = serde_json::to_value(metadata("slow".into())).unwrap();
    // A writer takes a position, then stalls before committing.
    let mut slow = pool.begin().await.unwrap();
    let slow_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('ReferenceData', 'team/SLOW', 1, 'ReferenceEntryRecorded', '1.0', $1, $2) RETURNING global_position",
    )
    .bind(&payload)
    .bind(&metadata)
    .fetch_one(&mut *slow)
    .await
    .unwrap();
    // Meanwhile a later event commits.
    let fast = engine
        .bus
        .execute::<ReferenceData>(
            "team/FAST",
            Timed::new(
                Utc::now(),
                ReferenceCommand::RecordEntry(team("FAST", "fast writer")),
            ),
            &crate::projector::metadata("fast".into()),
        )
        .await
        .unwrap();
    assert!(fast.events[0].global_position > slow_position);
    let (timeouts, reached) = (projection_waits("timeout"), projection_waits("reached"));
    let waited = engine
        .wait_for_projection(&fast, Duration::from_millis(300))
        .await;
    assert!(
        waited.is_err(),
        "the projector must wait for the older, open transaction"
    );
    assert!(
        projection_waits("timeout") > timeouts,
        "a timeout is recorded"
    );
    let fast_row: Option<String> =
        sqlx::query_scalar("SELECT description FROM delius.team WHERE code = 'FAST'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(fast_row, None);

    slow.commit().await.unwrap();
    engine
        .wait_for_projection(&fast, Duration::from_secs(10))
        .await
        .expect("both are projected once the slow writer commits");
    assert!(
        projection_waits("reached") > reached,
        "a reached wait is recorded"
    );
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM delius.team WHERE code IN ('SLOW', 'FAST') ORDER BY code",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(codes, ["FAST", "SLOW"]);
    engine.shutdown().await;
}

/// Two engines on one database: only one projector is active, and both see progress.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn one_active_projector_across_processes(pool: PgPool) {
    let first = engine(pool.clone());
    let second = engine(pool.clone());
    let outcome = second
        .bus
        .execute::<ReferenceData>(
            "team/TWO",
            Timed::new(
                Utc::now(),
                ReferenceCommand::RecordEntry(team("TWO", "two engines")),
            ),
            &metadata("two".into()),
        )
        .await
        .unwrap();
    first
        .wait_for_projection(&outcome, Duration::from_secs(10))
        .await
        .unwrap();
    second
        .wait_for_projection(&outcome, Duration::from_secs(10))
        .await
        .unwrap();
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(holders, 1, "exactly one projector instance holds the lock");
    let applied: i64 = sqlx::query_scalar("SELECT events_applied FROM projector_checkpoint")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    first.shutdown().await;
    second.shutdown().await;
}

/// Emptying every projected table and the checkpoint, then restarting: the projector rebuilds
/// the tables from the log, equal row for row to what they were.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn emptied_tables_are_rebuilt_from_the_log(pool: PgPool) {
    let first = engine(pool.clone());
    delius_bridge::seed::load(&first, &crate::demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&first).await;
    first.shutdown().await;
    let mut conn = pool.acquire().await.unwrap();
    let before = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .unwrap();

    for table in projections::TABLES {
        let sql = if table.reference {
            format!(
                "DELETE FROM delius.{} WHERE last_event_position IS NOT NULL",
                table.name
            )
        } else {
            format!("TRUNCATE delius.{}", table.name)
        };
        sqlx::query(&sql).execute(&mut *conn).await.unwrap();
    }
    sqlx::query("DELETE FROM projector_checkpoint")
        .execute(&mut *conn)
        .await
        .unwrap();
    let emptied: i64 = sqlx::query_scalar("SELECT count(*) FROM delius.offender")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(emptied, 0);

    let second = engine(pool.clone());
    settle(&second).await;
    let after = projections::checksum::schema_checksums(&mut conn, "delius")
        .await
        .unwrap();
    assert_eq!(before, after);
    second.shutdown().await;
}

/// The embedded projector of an engine dropped without `shutdown` stops (it held the tables;
/// a task spinning on a closed shutdown channel would hold them forever).
#[tokio::test]
async fn the_embedded_projector_stops_when_its_engine_is_dropped() {
    let engine = delius_bridge::engine::Engine::memory();
    let delius_bridge::engine::Backend::Memory { tables, .. } = &engine.backend else {
        panic!("the embedded engine has the memory backend");
    };
    let tables = tables.clone();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(engine);
    tokio::time::timeout(Duration::from_secs(5), async {
        while std::sync::Arc::strong_count(&tables) > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the projector task let go of the tables");
}
