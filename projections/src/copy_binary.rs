//! `COPY … FROM STDIN WITH (FORMAT binary)` for a replay's first writes: each value in the
//! column type's binary form, so PostgreSQL copies bytes where the text format made it parse
//! every date, timestamp and number (BENCHMARKS.md: binary `COPY` of the replay's rows took
//! 30 % less of the server's time than text).
//!
//! A value must land exactly as `json_populate_recordset` (the upsert path, and the live
//! projector) would store it. Each encoder takes only the forms it can convert exactly —
//! a JSON number for an integer, `YYYY-MM-DD` for a date, RFC 3339 with an offset for a
//! timestamp… — and answers `None` for anything else; the caller then writes the whole set
//! of rows in the text format, so an unexpected value costs speed, never correctness. Where
//! PostgreSQL rounds (a timestamp's fraction past microseconds), the encoder rounds the same
//! way (`rint(strtod(fraction) * 1e6)`, `ParseFractionalSecond`). A test writes tricky values
//! both ways and compares the rows (`projections/tests/copy_binary.rs`).

use std::borrow::Cow;

use serde_json::Value;

use crate::rows::Columns;

/// The column types the binary encoder writes (by `udt_name`); any other column sends its
/// table's rows through the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int8,
    Int4,
    Int2,
    Bool,
    Date,
    Timestamptz,
    Time,
    Numeric,
}

impl ColumnType {
    /// The type of a column whose `information_schema.columns.udt_name` is `udt_name`.
    pub fn of(udt_name: &str) -> Option<Self> {
        Some(match udt_name {
            "text" | "varchar" => Self::Text,
            "int8" => Self::Int8,
            "int4" => Self::Int4,
            "int2" => Self::Int2,
            "bool" => Self::Bool,
            "date" => Self::Date,
            "timestamptz" => Self::Timestamptz,
            "time" => Self::Time,
            "numeric" => Self::Numeric,
            _ => return None,
        })
    }
}

/// The file header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_SECONDS: i64 = 946_684_800;

/// `rows` (each with one value per type of `types`, in order) as binary `COPY` data, or
/// `None` when a value has a form this encoder does not convert exactly.
pub fn encode(rows: &[Columns], types: &[ColumnType]) -> Option<Vec<u8>> {
    let fields = i16::try_from(types.len()).ok()?;
    let mut out = Vec::with_capacity(64 + rows.len() * 24 * types.len());
    out.extend_from_slice(HEADER);
    let mut recent: Option<(&str, i64)> = None;
    for row in rows {
        if row.len() != types.len() {
            return None;
        }
        out.extend_from_slice(&fields.to_be_bytes());
        for (value, kind) in row.values().zip(types) {
            match (kind, value) {
                // A row's audit timestamps are mostly one value (its event's time).
                (ColumnType::Timestamptz, Value::String(text)) => {
                    let micros = match recent {
                        Some((seen, micros)) if seen == text.as_str() => micros,
                        _ => timestamptz(text)?,
                    };
                    recent = Some((text, micros));
                    sized(&mut out, &micros.to_be_bytes())?;
                }
                _ => field(value, *kind, &mut out)?,
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Some(out)
}

fn sized(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&i32::try_from(bytes.len()).ok()?.to_be_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

fn field(value: &Value, kind: ColumnType, out: &mut Vec<u8>) -> Option<()> {
    if value.is_null() {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Some(());
    }
    match kind {
        ColumnType::Text => {
            let text: Cow<str> = match value {
                Value::String(text) => Cow::Borrowed(text),
                Value::Number(number) => Cow::Owned(number.to_string()),
                Value::Bool(true) => Cow::Borrowed("true"),
                Value::Bool(false) => Cow::Borrowed("false"),
                _ => return None,
            };
            // PostgreSQL's text holds no NUL; let the text format report it.
            if text.as_bytes().contains(&0) {
                return None;
            }
            sized(out, text.as_bytes())
        }
        ColumnType::Int8 => sized(out, &value.as_i64()?.to_be_bytes()),
        ColumnType::Int4 => sized(out, &i32::try_from(value.as_i64()?).ok()?.to_be_bytes()),
        ColumnType::Int2 => sized(out, &i16::try_from(value.as_i64()?).ok()?.to_be_bytes()),
        ColumnType::Bool => sized(out, &[u8::from(value.as_bool()?)]),
        ColumnType::Date => sized(out, &date(value.as_str()?)?.to_be_bytes()),
        ColumnType::Timestamptz => sized(out, &timestamptz(value.as_str()?)?.to_be_bytes()),
        ColumnType::Time => sized(out, &time(value.as_str()?)?.to_be_bytes()),
        ColumnType::Numeric => {
            let text: Cow<str> = match value {
                Value::String(text) => Cow::Borrowed(text),
                Value::Number(number) => Cow::Owned(number.to_string()),
                _ => return None,
            };
            sized(out, &numeric(&text)?)
        }
    }
}

fn two_digits(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// `YYYY-MM-DD` (year 1 or later) as days since 2000-01-01.
pub fn date(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let days = civil_days(
        two_digits(&bytes[0..2])? * 100 + two_digits(&bytes[2..4])?,
        two_digits(&bytes[5..7])?,
        two_digits(&bytes[8..10])?,
    )?;
    i32::try_from(days - PG_EPOCH_SECONDS / 86_400).ok()
}

/// Exact powers of ten (every one up to 10^15 is a double).
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The microseconds PostgreSQL makes of a fraction of a second given by its digits:
/// `rint(strtod(".digits") * 1000000)` (`ParseFractionalSecond`), ties to even. Up to 15
/// digits the fraction is `n / 10^k` with both exact, so one division rounds it as strtod
/// does; longer ones are parsed as text.
fn fraction_micros(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let fraction = match POWERS_OF_TEN.get(digits.len()) {
        Some(power) => {
            let n = digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            n as f64 / power
        }
        None => format!("0.{}", std::str::from_utf8(digits).ok()?)
            .parse()
            .ok()?,
    };
    Some((fraction * 1_000_000.0).round_ties_even() as i64)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar from year 1 (H.
/// Hinnant's `days_from_civil`); `None` for a date that does not exist.
fn civil_days(year: u32, month: u32, day: u32) -> Option<i64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if year == 0 || day == 0 || day > days_in_month {
        return None;
    }
    let (month, day) = (i64::from(month), i64::from(day));
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// `YYYY-MM-DD?HH:MM:SS` at the start of `b` (at least 20 bytes; `?` one of `separators`;
/// hours 0–23, no leap second) as seconds since the Unix epoch, read as UTC: the head shared by
/// [`timestamptz`] and [`utc_instant`].
fn date_time_seconds(b: &[u8], separators: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !separators.contains(&b[10])
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let days = civil_days(
        two_digits(&b[0..2])? * 100 + two_digits(&b[2..4])?,
        two_digits(&b[5..7])?,
        two_digits(&b[8..10])?,
    )?;
    let (hour, minute, second) = (
        two_digits(&b[11..13])?,
        two_digits(&b[14..16])?,
        two_digits(&b[17..19])?,
    );
    // A leap second (60) PostgreSQL rolls over: left to the slower path, as odd forms are.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days * 86_400 + i64::from((hour * 60 + minute) * 60 + second))
}

/// An RFC 3339 timestamp with its offset (year 1 to 9999, offset within PostgreSQL's
/// ±15:59) as microseconds since 2000-01-01 00:00:00 UTC: `YYYY-MM-DDTHH:MM:SS`, a fraction
/// of any length, then `Z` or `±HH:MM` — the form the projections write
/// (`2026-12-05T00:38:04.626020017+00:00`). Any other form goes through the text format.
pub fn timestamptz(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let local = date_time_seconds(b, b"Tt ")?;
    let (micros, zone) = match b[19] {
        b'.' => {
            let digits = b[20..].iter().take_while(|d| d.is_ascii_digit()).count();
            (fraction_micros(&b[20..20 + digits])?, &b[20 + digits..])
        }
        _ => (0, &b[19..]),
    };
    let offset = match zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = two_digits(&[*h1, *h2]).filter(|h| *h <= 15)?;
            let minutes = two_digits(&[*m1, *m2]).filter(|m| *m <= 59)?;
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    (local - offset - PG_EPOCH_SECONDS)
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with a fraction of 1 to 9 digits — how this service
/// writes an instant (chrono's RFC 3339 form in UTC, as in every event's `received_at`) — as
/// the instant chrono's parser makes of it, at a fraction of its cost; `None` for any other
/// form (offsets, leap seconds, lowercase, longer fractions…), which the caller leaves to
/// chrono.
pub fn utc_instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let b = text.as_bytes();
    let seconds = date_time_seconds(b, b"T")?;
    if b[b.len() - 1] != b'Z' {
        return None;
    }
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', digits @ ..]
            if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            let n = digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    chrono::DateTime::from_timestamp(seconds, nanos)
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction` (hours 0–23) as microseconds since midnight.
pub fn time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 5 || bytes[2] != b':' {
        return None;
    }
    let hours = two_digits(&bytes[0..2]).filter(|h| *h < 24)?;
    let minutes = two_digits(&bytes[3..5]).filter(|m| *m < 60)?;
    let (seconds, micros) = match bytes.len() {
        5 => (0, 0),
        8 if bytes[5] == b':' => (two_digits(&bytes[6..8]).filter(|s| *s < 60)?, 0),
        _ if bytes.len() > 9 && bytes[5] == b':' && bytes[8] == b'.' => (
            two_digits(&bytes[6..8]).filter(|s| *s < 60)?,
            fraction_micros(&bytes[9..])?,
        ),
        _ => return None,
    };
    let whole = i64::from((hours * 60 + minutes) * 60 + seconds) * 1_000_000;
    // A fraction rounding up to the next day is PostgreSQL's to judge.
    Some(whole + micros).filter(|m| *m < 86_400_000_000)
}

/// A plain decimal (`-12.50`, `3`, no exponent) in `numeric`'s binary form: digit count,
/// weight, sign and display scale, then base-10000 digits. PostgreSQL strips the zero
/// digits and applies the column's scale on receipt, as it does on text input.
pub fn numeric(text: &str) -> Option<Vec<u8>> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let scale = u16::try_from(fraction.len()).ok().filter(|s| *s <= 1000)?;
    let whole = whole.trim_start_matches('0');
    // Whole part padded on the left and fraction on the right to groups of four digits.
    let lead = (4 - whole.len() % 4) % 4;
    let mut decimal = Vec::with_capacity(lead + whole.len() + fraction.len() + 3);
    decimal.extend(std::iter::repeat_n(0u8, lead));
    decimal.extend(whole.bytes().map(|b| b - b'0'));
    decimal.extend(fraction.bytes().map(|b| b - b'0'));
    decimal.extend(std::iter::repeat_n(0u8, (4 - fraction.len() % 4) % 4));
    let mut digits: Vec<i16> = decimal
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(*d)))
        .collect();
    let mut weight = i16::try_from((lead + whole.len()) / 4).ok()? - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= i16::try_from(leading).ok()?;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let (weight, sign) = if digits.is_empty() {
        (0, 0x0000u16)
    } else if negative {
        (weight, 0x4000)
    } else {
        (weight, 0x0000)
    };
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&i16::try_from(digits.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_count_days_from_2000() {
        assert_eq!(date("2000-01-01"), Some(0));
        assert_eq!(date("2000-01-02"), Some(1));
        assert_eq!(date("1999-12-31"), Some(-1));
        assert_eq!(date("2024-02-29"), Some(8825));
        for bad in [
            "2023-02-29",
            "0000-01-01",
            "2024-1-01",
            "2024-01-01T00:00",
            "20240101x1",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_round_their_fraction_as_postgresql_does() {
        assert_eq!(timestamptz("2000-01-01T00:00:00Z"), Some(0));
        assert_eq!(timestamptz("2000-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(timestamptz("2000-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(timestamptz("2000-01-01T00:00:00.0000005Z"), Some(0));
        assert_eq!(timestamptz("2000-01-01T00:00:00.0000015Z"), Some(2));
        assert_eq!(timestamptz("1999-12-31T23:59:59.999999Z"), Some(-1));
        for bad in [
            "2000-01-01T00:00:00",
            "2000-01-01",
            "not a time",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(timestamptz(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_read_by_hand_agree_with_chrono() {
        let mut state = 1u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..20_000 {
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
                1 + next(9999),
                1 + next(12),
                1 + next(31),
                next(24),
                next(60),
                next(60),
                next(1_000_000),
                if next(2) == 0 { '+' } else { '-' },
                next(16),
                next(60)
            );
            let expected = chrono::DateTime::parse_from_rfc3339(&text).ok().map(|t| {
                (t.timestamp() - PG_EPOCH_SECONDS) * 1_000_000
                    + i64::from(t.timestamp_subsec_micros())
            });
            assert_eq!(timestamptz(&text), expected, "{text}");
        }
    }

    #[test]
    fn utc_instants_read_by_hand_agree_with_chrono() {
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut by_hand = 0;
        for case in 0..20_000 {
            let digits = next(12) as usize;
            let fraction: String = (0..digits)
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let mut text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}{}",
                next(10_000),
                next(14),
                next(32),
                next(25),
                next(61),
                next(62),
                if digits == 0 { "" } else { "." },
                fraction,
                ["Z", "Z", "Z", "z", "+00:00", "-01:30"][next(6) as usize],
            );
            if case % 97 == 0 {
                text.replace_range(10..11, "t");
            }
            let expected = text.parse::<chrono::DateTime<chrono::Utc>>().ok();
            match utc_instant(&text) {
                Some(instant) => {
                    by_hand += 1;
                    assert_eq!(Some(instant), expected, "{text}");
                }
                // Left to chrono: only forms outside the fast path.
                None => assert!(
                    expected.is_none()
                        || !text.ends_with('Z')
                        || digits > 9
                        || text.as_bytes()[10] != b'T'
                        || text[17..19] >= *"60",
                    "{text} should have been read by hand"
                ),
            }
        }
        assert!(by_hand > 5_000, "{by_hand}");
        assert_eq!(
            utc_instant("2026-12-05T02:59:13.678101070Z"),
            Some("2026-12-05T02:59:13.678101070Z".parse().unwrap())
        );
    }

    #[test]
    fn times_are_microseconds_since_midnight() {
        assert_eq!(time("00:00"), Some(0));
        assert_eq!(time("10:30"), Some(37_800_000_000));
        assert_eq!(time("10:30:15"), Some(37_815_000_000));
        assert_eq!(time("10:30:15.25"), Some(37_815_250_000));
        for bad in [
            "24:00:00",
            "10:60",
            "10:30:60",
            "1030",
            "10:30:15.",
            "10:30:15x",
        ] {
            assert_eq!(time(bad), None, "{bad}");
        }
    }

    #[test]
    fn numerics_are_base_ten_thousand_digits() {
        let parts = |bytes: Vec<u8>| -> Vec<i16> {
            bytes
                .chunks(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect()
        };
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(parts(numeric("1.5").unwrap()), [2, 0, 0, 1, 1, 5000]);
        assert_eq!(
            parts(numeric("12345.678").unwrap()),
            [3, 1, 0, 3, 1, 2345, 6780]
        );
        assert_eq!(
            parts(numeric("-0.00012").unwrap()),
            [2, -1, 0x4000, 5, 1, 2000]
        );
        assert_eq!(parts(numeric("10000").unwrap()), [1, 1, 0, 0, 1]);
        assert_eq!(parts(numeric("-0.00").unwrap()), [0, 0, 0, 2]);
        for bad in ["", "-", ".", "1e5", "1.2.3", "NaN", " 1"] {
            assert_eq!(numeric(bad), None, "{bad}");
        }
    }

    fn row(values: &[(&'static str, Value)]) -> Columns {
        let mut row = Columns::new();
        for (name, value) in values {
            row.insert(name, value.clone());
        }
        row
    }

    #[test]
    fn a_value_it_cannot_convert_exactly_refuses_the_rows() {
        let types = [ColumnType::Int8, ColumnType::Date];
        let good = row(&[("a", json!(1)), ("b", json!("2024-01-01"))]);
        assert!(encode(std::slice::from_ref(&good), &types).is_some());
        let odd = row(&[("a", json!(1.5)), ("b", json!("2024-01-01"))]);
        assert_eq!(encode(&[good.clone(), odd], &types), None);
        let odd = row(&[("a", json!(1)), ("b", json!("01/01/2024"))]);
        assert_eq!(encode(&[odd], &types), None);
        assert_eq!(encode(&[row(&[("a", json!(1))])], &types), None);
    }

    #[test]
    fn the_data_is_a_header_tuples_and_a_trailer() {
        let types = [ColumnType::Int4, ColumnType::Text, ColumnType::Text];
        let one = row(&[("a", json!(7)), ("b", Value::Null), ("c", json!("é"))]);
        let data = encode(&[one], &types).unwrap();
        let mut expected = HEADER.to_vec();
        expected.extend([0, 3, 0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]);
        expected.extend([0, 0, 0, 2, 0xc3, 0xa9, 0xff, 0xff]);
        assert_eq!(data, expected);
    }
}
