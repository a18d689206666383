//! The batched reference lookup (`reference::lookup_many`): one round trip answers what a
//! lookup per code would, on PostgreSQL and on the embedded default alike.

use delius_bridge::engine::Engine;
use delius_bridge::reference::{self, Lookup};
use delius_bridge::seed;
use sqlx::PgPool;

use crate::{demo_seed, engine, settle};

/// What one lookup per value gives (`row` by code, else `rows_where`), in key order.
async fn one_by_one(
    engine: &Engine,
    lookup: &Lookup<'_>,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut rows = Vec::new();
    for value in &lookup.values {
        if lookup.column == "code" {
            rows.extend(reference::row(engine, lookup.table, value).await.unwrap());
        } else {
            rows.extend(
                reference::rows_where(engine, lookup.table, lookup.column, value)
                    .await
                    .unwrap(),
            );
        }
    }
    rows.sort_by_key(|row| reference::string(row, "code"));
    rows
}

fn lookups() -> Vec<Lookup<'static>> {
    vec![
        // National codes of the migration, one missing.
        Lookup::new("r_custodial_status", "code", ["D", "B", "NOPE"]),
        // Nothing asked: nothing found, and no query for it.
        Lookup::new("r_release_type", "code", Vec::<String>::new()),
        // Seeded rows by a non-key text column.
        Lookup::new("r_institution", "nomis_code", ["SWI", "MDI", "XXX"]),
        Lookup::new("probation_area", "institution_code", ["SWIHMP", "MDIHMP"]),
        // The same table twice in one batch.
        Lookup::new("r_custodial_status", "code", ["A"]),
    ]
}

async fn assert_batch_matches(engine: &Engine) {
    let lookups = lookups();
    let found = reference::lookup_many(engine, &lookups).await.unwrap();
    assert_eq!(found.len(), lookups.len());
    for (lookup, rows) in lookups.iter().zip(&found) {
        assert_eq!(
            rows,
            &one_by_one(engine, lookup).await,
            "{}.{}",
            lookup.table,
            lookup.column
        );
    }
    let codes = |i: usize| -> Vec<String> {
        found[i]
            .iter()
            .filter_map(|row| reference::string(row, "code"))
            .collect()
    };
    assert_eq!(codes(0), ["B", "D"]);
    assert!(found[1].is_empty());
    assert!(
        !found[2].is_empty(),
        "the demo seed has prisons SWI and MDI: {found:?}"
    );
    assert_eq!(codes(4), ["A"]);
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_batch_answers_as_one_lookup_per_code_would(pool: PgPool) {
    let engine = engine(pool.clone());
    seed::load(&engine, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&engine).await;
    assert_batch_matches(&engine).await;

    let memory = Engine::memory();
    seed::load(&memory, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&memory).await;
    assert_batch_matches(&memory).await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_batch_refuses_a_bad_identifier_or_a_non_text_column(pool: PgPool) {
    let engine = engine(pool);
    assert!(reference::lookup_many(&engine, &[])
        .await
        .unwrap()
        .is_empty());
    let bad_table = [Lookup::new("r_institution; drop", "code", ["X"])];
    assert!(reference::lookup_many(&engine, &bad_table).await.is_err());
    // custody_id is a bigint: the text array does not compare, and the error says so.
    let bad_column = [Lookup::new("custody", "custody_id", ["1"])];
    let error = reference::lookup_many(&engine, &bad_column)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("operator does not exist"), "{error}");
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn concurrent_batches_share_a_query_and_each_gets_its_own_answer(pool: PgPool) {
    let grouped_away = || {
        crate::grouped_away(
            "delius_bridge_lookups_total",
            "delius_bridge_lookup_queries_total",
        )
    };
    delius_bridge::metrics::install();
    // The grouping is what is tested: no in-memory copies answer before it.
    let engine = std::sync::Arc::new(engine(pool.clone()).without_reference_cache());
    seed::load(&engine, &demo_seed(), "seed:test")
        .await
        .unwrap();
    settle(&engine).await;
    // What each batch must get: one lookup per value, no grouping.
    let batches: Vec<Vec<Lookup<'static>>> = vec![
        lookups(),
        vec![Lookup::new("r_institution", "nomis_code", ["MDI"])],
        vec![
            Lookup::new("r_institution", "nomis_code", ["SWI"]),
            Lookup::new("r_custodial_status", "code", ["D"]),
        ],
        vec![Lookup::new(
            "probation_area",
            "institution_code",
            ["SWIHMP"],
        )],
        vec![Lookup::new("r_custodial_status", "code", ["NOPE"])],
        // A non-text column: its own error, nobody else's.
        vec![Lookup::new("custody", "custody_id", ["1"])],
        vec![
            Lookup::new("r_institution", "nomis_code", ["SWI", "MDI"]),
            Lookup::new("r_custodial_status", "code", ["A", "B"]),
        ],
    ];
    let mut expected = Vec::new();
    for batch in &batches {
        let mut rows = Vec::new();
        for lookup in batch {
            rows.push(one_by_one(&engine, lookup).await);
        }
        expected.push(rows);
    }
    let grouped_before = grouped_away();
    let good: Vec<usize> = (0..batches.len())
        .filter(|i| batches[*i][0].table != "custody")
        .collect();
    let rounds = 4;
    let answers = held_back(&pool, &engine, &batches, &good, rounds).await;
    assert_eq!(answers.len(), rounds * good.len());
    for (i, answer) in answers {
        assert_eq!(answer.unwrap(), expected[i], "batch {i}");
    }
    let saved = grouped_away() - grouped_before;
    assert!(
        saved >= good.len() as i64,
        "{} calls should share queries: lookups_total - lookup_queries_total rose by {saved}",
        rounds * good.len()
    );

    // With a call whose query fails in the group, every call still gets its own answer.
    let all: Vec<usize> = (0..batches.len()).collect();
    let answers = held_back(&pool, &engine, &batches, &all, 2).await;
    assert_eq!(answers.len(), 2 * batches.len());
    for (i, answer) in answers {
        if batches[i][0].table == "custody" {
            let error = answer.unwrap_err().to_string();
            assert!(error.contains("operator does not exist"), "{error}");
        } else {
            assert_eq!(answer.unwrap(), expected[i], "batch {i}");
        }
    }
}

/// Runs `rounds` × the batches `which` at once while r_institution is locked, so that the
/// lookup tasks' first queries wait and the calls queued after them are grouped when the lock
/// goes; each batch's index and answer.
async fn held_back(
    pool: &PgPool,
    engine: &std::sync::Arc<Engine>,
    batches: &[Vec<Lookup<'static>>],
    which: &[usize],
    rounds: usize,
) -> Vec<(usize, Result<reference::Found, sqlx::Error>)> {
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE delius.r_institution IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..rounds {
        for &i in which {
            let engine = engine.clone();
            let batch = batches[i].clone();
            tasks.spawn(async move { (i, reference::lookup_many(&engine, &batch).await) });
        }
    }
    crate::wait_for_a_lock_waiter(pool).await;
    blocker.commit().await.unwrap();
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.unwrap());
    }
    answers
}
