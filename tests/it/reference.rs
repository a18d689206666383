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
