//! Plain-text tables for people: the audit timeline and Delius rows.

use serde_json::{Map, Value};

use projections::memory::MemoryTables;
use projections::RecordedEvent;

/// Columns every projected row carries that say how it got there, not what it is.
const BOOKKEEPING: &[&str] = &[
    "created_datetime",
    "last_updated_datetime",
    "last_updated_user",
];

/// Renders rows of cells as an aligned table with a header rule.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<width$}", c, width = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers);
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The timeline of events: when, what, on which aggregate, from where and on whose behalf.
pub fn timeline(events: &[RecordedEvent]) -> String {
    let headers: Vec<String> = [
        "position",
        "received_at",
        "event_type",
        "aggregate",
        "source",
        "message_id",
        "actor",
        "correlation_id",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let m = e.metadata.as_object();
            let get = |k: &str| cell(m.and_then(|m| m.get(k)));
            vec![
                e.global_position.to_string(),
                get("received_at"),
                e.event_type.clone(),
                format!("{}/{}", e.aggregate_type, e.aggregate_id),
                get("source"),
                get("message_id"),
                get("actor"),
                get("correlation_id"),
            ]
        })
        .collect();
    table(&headers, &rows)
}

/// One table's rows, with the columns any row sets (bookkeeping columns left out).
pub fn rows(name: &str, rows: &[&Map<String, Value>]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        for (key, value) in row.iter() {
            if !value.is_null() && !BOOKKEEPING.contains(&key.as_str()) && !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(row.get(c))).collect())
        .collect();
    format!(
        "delius.{name} ({} rows)\n{}",
        rows.len(),
        table(&columns, &cells)
    )
}

/// Every non-empty table of the embedded Delius.
pub fn delius(tables: &MemoryTables) -> String {
    tables
        .table_names()
        .into_iter()
        .map(|name| {
            let maps: Vec<_> = tables
                .rows(name)
                .into_iter()
                .map(|row| row.clone().into_map())
                .collect();
            rows(name, &maps.iter().collect::<Vec<_>>())
        })
        .collect::<Vec<_>>()
        .join("\n")
}
