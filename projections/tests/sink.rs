//! The bulk PostgreSQL sink applies row changes exactly as applying them one by one would
//! (the in-memory tables), whatever the batch boundaries: checked on many generated sequences
//! of upserts, updates and deletes that hit the same rows.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use projections::memory::MemoryTables;
use projections::postgres::PgSink;
use projections::rows::{stamp, Stamp};
use projections::{Columns, Key, RowChange};
use serde_json::{json, Value};
use sqlx::{Acquire, PgPool};

/// A small deterministic generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn change(rng: &mut Rng, step: i64) -> RowChange {
    let code = format!("T{}", rng.next(4));
    let key = Key::Code(code.clone());
    let mut values = Columns::new();
    let kind = rng.next(10);
    if kind < 4 {
        values.insert("description", json!(format!("d{step}")));
        values.insert("probation_area_code", json!("N07"));
    }
    for column in ["email", "telephone", "pdu_code"] {
        if rng.next(2) == 0 {
            let value = if rng.next(3) == 0 {
                Value::Null
            } else {
                json!(format!("{column}{step}"))
            };
            values.insert(column, value);
        }
    }
    let change = match kind {
        0..=3 => RowChange::Upsert {
            table: "team",
            key,
            values,
        },
        4..=8 => RowChange::Update {
            table: "team",
            key,
            values,
        },
        _ => RowChange::Delete { table: "team", key },
    };
    stamp(
        change,
        &Stamp {
            position: step,
            at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            user: "test".into(),
        },
    )
}

async fn rows(pool: &PgPool) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('code', code, 'description', description, 'email', email, \
         'telephone', telephone, 'pdu_code', pdu_code, 'last_event_position', last_event_position) \
         FROM delius.team WHERE code LIKE 'T_' ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn memory_rows(tables: &MemoryTables) -> Vec<Value> {
    tables
        .rows("team")
        .into_iter()
        .map(|row| {
            let get = |c: &str| row.get(c).cloned().unwrap_or(Value::Null);
            json!({
                "code": get("code"), "description": get("description"), "email": get("email"),
                "telephone": get("telephone"), "pdu_code": get("pdu_code"),
                "last_event_position": get("last_event_position"),
            })
        })
        .collect()
}

#[sqlx::test(migrations = "../schema")]
async fn batched_writes_equal_one_by_one(pool: PgPool) {
    for seed in 1..=40u64 {
        sqlx::query("DELETE FROM delius.team WHERE code LIKE 'T_'")
            .execute(&pool)
            .await
            .unwrap();
        let mut rng = Rng(seed);
        let changes: Vec<RowChange> = (1..=60).map(|step| change(&mut rng, step)).collect();

        let mut memory = MemoryTables::default();
        for c in &changes {
            memory.apply(c.clone());
        }

        let mut conn = pool.acquire().await.unwrap();
        let mut remaining = changes.as_slice();
        while !remaining.is_empty() {
            let size = (1 + rng.next(20) as usize).min(remaining.len());
            let (batch, rest) = remaining.split_at(size);
            let mut tx = conn.begin().await.unwrap();
            let mut sink = PgSink::new("delius").unwrap();
            for c in batch {
                sink.stage(c.clone());
            }
            sink.flush(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            remaining = rest;
        }
        assert_eq!(rows(&pool).await, memory_rows(&memory), "sequence {seed}");
    }
}

#[test]
fn applying_the_same_change_twice_changes_nothing() {
    let mut rng = Rng(7);
    let mut tables = MemoryTables::default();
    for step in 1..=200 {
        let c = change(&mut rng, step);
        tables.apply(c.clone());
        let once = tables.clone();
        tables.apply(c);
        assert_eq!(tables, once, "step {step}");
    }
}
