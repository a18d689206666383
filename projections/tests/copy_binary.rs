//! Rows copied in the binary format land exactly as `json_populate_recordset` (the upsert
//! path and the live projector) stores the same values: checked on generated values of
//! every type the encoder writes, with the forms the projections produce (nanosecond
//! RFC 3339 timestamps with offsets, decimals of any scale) and the awkward ones.

#![allow(clippy::unwrap_used)]

use projections::copy_binary::{encode, ColumnType};
use projections::Columns;
use serde_json::{json, Value};
use sqlx::PgPool;

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

const COLUMNS: &[(&str, &str, ColumnType)] = &[
    ("a_bigint", "bigint", ColumnType::Int8),
    ("a_bool", "boolean", ColumnType::Bool),
    ("a_date", "date", ColumnType::Date),
    ("a_int", "integer", ColumnType::Int4),
    ("a_numeric", "numeric", ColumnType::Numeric),
    ("a_numeric_5_2", "numeric(5,2)", ColumnType::Numeric),
    ("a_smallint", "smallint", ColumnType::Int2),
    ("a_text", "text", ColumnType::Text),
    ("a_time", "time", ColumnType::Time),
    ("a_timestamptz", "timestamptz", ColumnType::Timestamptz),
    ("a_varchar", "varchar(40)", ColumnType::Text),
    ("id", "bigint", ColumnType::Int8),
];

fn value(rng: &mut Rng, column: &str) -> Value {
    if rng.next(8) == 0 {
        return Value::Null;
    }
    let digits = |rng: &mut Rng, n: u64| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.next(10) as u8))
            .collect()
    };
    match column {
        "a_bigint" => {
            json!([i64::MIN, i64::MAX, 0, -1][rng.next(4) as usize] / (1 + rng.next(3) as i64))
        }
        "a_int" => json!(rng.next(1 << 31) as i64 - (1 << 30)),
        "a_smallint" => json!(rng.next(65_536) as i64 - 32_768),
        "a_bool" => json!(rng.next(2) == 0),
        "a_date" => json!(format!(
            "{:04}-{:02}-{:02}",
            1 + rng.next(2100),
            1 + rng.next(12),
            1 + rng.next(28)
        )),
        "a_time" => {
            let base = format!("{:02}:{:02}", rng.next(24), rng.next(60));
            json!(match rng.next(3) {
                0 => base,
                1 => format!("{base}:{:02}", rng.next(60)),
                _ => {
                    let seconds = rng.next(60);
                    let count = 1 + rng.next(9);
                    format!("{base}:{seconds:02}.{}", digits(rng, count))
                }
            })
        }
        "a_timestamptz" => {
            let offset = match rng.next(4) {
                0 => "Z".to_string(),
                1 => "+00:00".to_string(),
                _ => format!(
                    "{}{:02}:{:02}",
                    if rng.next(2) == 0 { '+' } else { '-' },
                    rng.next(14),
                    [0, 30, 45][rng.next(3) as usize]
                ),
            };
            let fraction = match rng.next(4) {
                0 => String::new(),
                _ => {
                    let count = 1 + rng.next(9);
                    format!(".{}", digits(rng, count))
                }
            };
            json!(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{offset}",
                1900 + rng.next(200),
                1 + rng.next(12),
                1 + rng.next(28),
                rng.next(24),
                rng.next(60),
                rng.next(60)
            ))
        }
        "a_numeric" | "a_numeric_5_2" => {
            let (whole, fraction) = if column == "a_numeric" {
                (rng.next(12), rng.next(12))
            } else {
                (rng.next(3), rng.next(4))
            };
            let (whole, fraction) = (digits(rng, whole), digits(rng, fraction));
            let sign = if rng.next(3) == 0 { "-" } else { "" };
            let text = match (whole.is_empty(), fraction.is_empty()) {
                (true, true) => "0".to_string(),
                (_, true) => format!("{sign}{whole}"),
                _ => format!("{sign}{whole}.{fraction}"),
            };
            // Numbers as JSON numbers (as the projections write them) and as strings.
            if rng.next(2) == 0 {
                json!(text)
            } else {
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_number)
                    .unwrap_or(json!(text))
            }
        }
        _ => json!(
            [
                "plain",
                "tab\there",
                "new\nline",
                "back\\slash",
                "\\N",
                "quote\"s'",
                "unicode é ✓ 𝄞",
                "",
                " padded ",
            ][rng.next(9) as usize]
        ),
    }
}

#[sqlx::test(migrations = "../schema")]
async fn binary_copies_equal_json_populated_rows(pool: PgPool) {
    let definition: Vec<String> = COLUMNS
        .iter()
        .map(|(name, kind, _)| format!("{name} {kind}"))
        .collect();
    for table in ["by_json", "by_copy"] {
        sqlx::query(&format!("CREATE TABLE {table} ({})", definition.join(", ")))
            .execute(&pool)
            .await
            .unwrap();
    }
    // Both ways in a session of another time zone: neither may depend on it.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET TIME ZONE 'America/New_York'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut rng = Rng(7);
    let mut rows = Vec::new();
    for id in 0..3_000 {
        let mut row = Columns::new();
        for (name, _, _) in COLUMNS {
            let value = match *name {
                "id" => json!(id),
                "a_text" => match rng.next(5) {
                    // Numbers and booleans in a text column read as their JSON text.
                    0 => json!(rng.next(1000) as f64 / 8.0),
                    1 => json!(rng.next(2) == 1),
                    _ => value(&mut rng, name),
                },
                _ => value(&mut rng, name),
            };
            row.insert(name, value);
        }
        rows.push(row);
    }
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _, _)| *name).collect();
    let types: Vec<ColumnType> = COLUMNS.iter().map(|(_, _, kind)| *kind).collect();
    sqlx::query(&format!(
        "INSERT INTO by_json SELECT {cols} FROM json_populate_recordset(NULL::by_json, $1::json)",
        cols = names.join(", ")
    ))
    .bind(serde_json::to_string(&rows).unwrap())
    .execute(&mut *conn)
    .await
    .unwrap();
    // The generated values are all forms the encoder converts: none falls back.
    let data = encode(&rows, &types).expect("every generated value encodes");
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY by_copy ({}) FROM STDIN WITH (FORMAT binary)",
            names.join(", ")
        ))
        .await
        .unwrap();
    copy.send(data).await.unwrap();
    assert_eq!(copy.finish().await.unwrap(), 3_000);

    let differing: Vec<(String, String)> = sqlx::query_as(
        "SELECT j::text, c::text FROM by_json j JOIN by_copy c USING (id) \
         WHERE row(j.*) IS DISTINCT FROM row(c.*) \
            OR j.a_numeric::text IS DISTINCT FROM c.a_numeric::text \
            OR j.a_numeric_5_2::text IS DISTINCT FROM c.a_numeric_5_2::text \
         ORDER BY id LIMIT 5",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(differing, vec![], "json row, copied row");
    let counts: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM by_json), (SELECT count(*) FROM by_copy)")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(counts, (3_000, 3_000));
}

#[sqlx::test(migrations = "../schema")]
async fn a_value_postgresql_would_refuse_is_refused_by_the_encoder_too(pool: PgPool) {
    // What the encoder refuses goes through the text format, where PostgreSQL judges it.
    for (kind, text) in [
        ("date", "2023-02-29"),
        ("time", "24:00:01"),
        ("date", "0000-01-01"),
    ] {
        let parsed = sqlx::query(&format!("SELECT $1::{kind}"))
            .bind(text)
            .execute(&pool)
            .await;
        assert!(parsed.is_err(), "{kind} {text} is refused by PostgreSQL");
        let mut row = Columns::new();
        row.insert("v", json!(text));
        let column = if kind == "date" {
            ColumnType::Date
        } else {
            ColumnType::Time
        };
        assert_eq!(encode(&[row], &[column]), None, "{kind} {text}");
    }
}

#[sqlx::test(migrations = "../schema")]
async fn a_rebuilds_shadow_copies_its_first_writes_in_binary(pool: PgPool) {
    use projections::postgres::{PgSink, ShadowRows};
    use projections::rows::{stamp, Stamp};
    use projections::RowChange;

    let mut conn = pool.acquire().await.unwrap();
    projections::replay::create_shadow(&mut conn, "delius", "shadow_b")
        .await
        .unwrap();
    // The column types come from the shadow's catalog.
    let mut shadow = ShadowRows::load(&mut conn, "shadow_b").await.unwrap();
    let mut row = Columns::new();
    row.insert("offender_id", json!(7));
    row.insert("contact_type_code", json!("CRSAPT"));
    row.insert("contact_date", json!("2024-02-29"));
    row.insert("start_time", json!("10:30"));
    row.insert("hours_credited", json!(1.5));
    row.insert("notes", json!("line\none\ttab"));
    let change = stamp(
        RowChange::upsert("contact", 900_001, row),
        &Stamp {
            position: 42,
            at: chrono::DateTime::parse_from_rfc3339("2026-12-05T00:38:04.626020517Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            user: "test".into(),
        },
    );
    let mut sink = PgSink::new("shadow_b").unwrap();
    sink.stage(change);
    let encoded = sink.encode_for_shadow(&mut shadow).unwrap();
    assert!(
        format!("{encoded:?}").contains("FROM STDIN WITH (FORMAT binary)"),
        "{encoded:?}"
    );
    encoded.execute(&mut conn).await.unwrap();
    let written: (String, String, String, String, String, i64) = sqlx::query_as(
        "SELECT contact_date::text, start_time::text, hours_credited::text, notes, \
         to_char(created_datetime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
         last_event_position FROM shadow_b.contact WHERE contact_id = 900001",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        written,
        (
            "2024-02-29".into(),
            "10:30:00".into(),
            "1.50".into(),
            "line\none\ttab".into(),
            "2026-12-05 00:38:04.626021".into(),
            42
        )
    );
}
