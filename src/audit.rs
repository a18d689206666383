//! Audit for support staff (DESIGN.md §3): "why does Delius say this?"
//!
//! - [`case_timeline`]: a person's timeline across aggregates — every event of their streams
//!   (the case, diary and POM allocation keyed by CRN, each referral that started for the CRN,
//!   each custody of the person's offender id) in global order, each with its metadata
//!   (source, message id, actor, correlation id) and the Delius rows it wrote, merged by time
//!   with the ignorable, rejected and failed outcomes of the messages about the person.
//! - [`row_audit`]: from a Delius row back to the event that last wrote it, and every event
//!   that wrote it.
//!
//! The rows an event wrote are computed, not stored: the projector is a pure function of the
//! event, so projecting it again gives exactly the changes it made.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;

use aggregates::case::Case;
use aggregates::custody::Custody;
use aggregates::diary::Diary;
use aggregates::pom::PomAllocation;
use aggregates::referral::Referral;
use cqrs_es::Aggregate;
use projections::{Key, RecordedEvent, RowChange};

use crate::amqp::handler::{OutcomeLog, RecordedOutcome};
use crate::engine::Backend;
use crate::render;

/// Why an audit question has no answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Nothing is recorded for the CRN or row (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Not a projected table, or a key of the wrong kind (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event cannot be read (the log is newer than this build).
    #[error(transparent)]
    Decode(#[from] projections::log::DecodeError),
    #[error("event store: {0}")]
    Store(String),
}

/// One Delius row change an event made.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowWritten {
    pub table: String,
    /// The row's key (numeric id or reference code).
    #[schema(value_type = Object)]
    pub key: Value,
    /// `upsert` (inserted or set), `update` (set if present) or `delete`.
    pub change: String,
    /// The columns it set.
    #[schema(value_type = Object)]
    pub columns: Map<String, Value>,
}

impl RowWritten {
    fn of(change: RowChange) -> Self {
        let (kind, table, key, columns) = match change {
            RowChange::Upsert { table, key, values } => ("upsert", table, key, values.into_map()),
            RowChange::Update { table, key, values } => ("update", table, key, values.into_map()),
            RowChange::Delete { table, key } => ("delete", table, key, Map::new()),
        };
        Self {
            table: table.to_string(),
            key: key.to_value(),
            change: kind.to_string(),
            columns,
        }
    }
}

/// One event with where it came from and what it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    /// When the event was committed to the log.
    pub recorded_at: DateTime<Utc>,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// `http`, `amqp`, `seed` or `cli`.
    pub source: String,
    pub message_id: String,
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    /// When the command that produced it was received.
    pub received_at: DateTime<Utc>,
    /// The event as stored (before upcasting).
    #[schema(value_type = Object)]
    pub payload: Value,
    pub rows: Vec<RowWritten>,
}

impl EventEntry {
    /// Decodes `event` and projects it again to list its rows.
    pub fn of(event: &RecordedEvent) -> Result<Self, AuditError> {
        let metadata = event.metadata()?;
        let decoded = event.decode()?;
        Ok(Self {
            recorded_at: event.recorded_at,
            global_position: event.global_position,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            source: metadata.source.as_str().to_string(),
            message_id: metadata.message_id,
            actor: metadata.actor,
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            received_at: metadata.received_at,
            payload: event.payload.clone(),
            rows: projections::delius::project(&decoded)
                .into_iter()
                .map(RowWritten::of)
                .collect(),
        })
    }
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    /// An event of one of the person's aggregates.
    Event(Box<EventEntry>),
    /// A message about the person that changed nothing: ignored (with its outcome name, e.g.
    /// `RecallNotRequired`), rejected (dead-lettered) or failed (retried).
    Outcome(Box<RecordedOutcome>),
}

impl TimelineEntry {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Event(event) => event.recorded_at,
            Self::Outcome(outcome) => outcome.recorded_at,
        }
    }
}

/// A person's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseTimeline {
    pub crn: String,
    /// The aggregates the person's events belong to, as `type/id`.
    pub streams: Vec<String>,
    pub entries: Vec<TimelineEntry>,
}

/// The events of the person's streams, in global order (PostgreSQL).
async fn person_events_pg(pool: &PgPool, crn: &str) -> Result<Vec<RecordedEvent>, AuditError> {
    let streams: Vec<(String, String)> = sqlx::query_as(
        "WITH offender AS ( \
           SELECT DISTINCT payload -> 'CaseBaselineRecorded' -> 'baseline' -> 'person' ->> 'offender_id' AS id \
           FROM events WHERE aggregate_type = $2 AND aggregate_id = $1) \
         SELECT DISTINCT aggregate_type, aggregate_id FROM events \
           WHERE aggregate_type IN ($2, $3, $4) AND aggregate_id = $1 \
         UNION SELECT aggregate_type, aggregate_id FROM events \
           WHERE event_type = 'ReferralStarted' AND payload -> 'ReferralStarted' ->> 'crn' = $1 \
         UNION SELECT aggregate_type, aggregate_id FROM events \
           WHERE event_type = 'CustodyBaselineRecorded' \
           AND payload -> 'CustodyBaselineRecorded' -> 'baseline' ->> 'offender_id' IN (SELECT id FROM offender)",
    )
    .bind(crn)
    .bind(Case::TYPE)
    .bind(Diary::TYPE)
    .bind(PomAllocation::TYPE)
    .fetch_all(pool)
    .await?;
    let mut events = Vec::new();
    for (aggregate_type, aggregate_id) in streams {
        events.extend(
            projections::postgres::read_stream(pool, &aggregate_type, &aggregate_id).await?,
        );
    }
    events.sort_by_key(|e| (e.transaction_id, e.global_position));
    Ok(events)
}

/// The streams of the person `crn` among `events`: the same rule as the SQL above.
fn person_streams(events: &[RecordedEvent], crn: &str) -> BTreeSet<(String, String)> {
    let offender_ids: BTreeSet<String> = events
        .iter()
        .filter(|e| e.aggregate_type == Case::TYPE && e.aggregate_id == crn)
        .filter_map(|e| {
            let id = &e.payload["CaseBaselineRecorded"]["baseline"]["person"]["offender_id"];
            (!id.is_null()).then(|| id.to_string())
        })
        .collect();
    events
        .iter()
        .filter(|e| {
            let by_crn = [Case::TYPE, Diary::TYPE, PomAllocation::TYPE]
                .contains(&e.aggregate_type.as_str())
                && e.aggregate_id == crn;
            let referral = e.aggregate_type == Referral::TYPE
                && e.payload["ReferralStarted"]["crn"].as_str() == Some(crn);
            let custody = e.aggregate_type == Custody::TYPE
                && offender_ids.contains(
                    &e.payload["CustodyBaselineRecorded"]["baseline"]["offender_id"].to_string(),
                );
            by_crn || referral || custody
        })
        .map(|e| (e.aggregate_type.clone(), e.aggregate_id.clone()))
        .collect()
}

/// The person's events in global order, on either backend.
async fn person_events(backend: &Backend, crn: &str) -> Result<Vec<RecordedEvent>, AuditError> {
    match backend {
        Backend::Postgres(pool) => person_events_pg(pool, crn).await,
        Backend::Memory { log, .. } => {
            let all = log
                .read_after(projections::Checkpoint::default(), usize::MAX)
                .map_err(|e| AuditError::Store(e.to_string()))?;
            let streams = person_streams(&all, crn);
            Ok(all
                .into_iter()
                .filter(|e| streams.contains(&(e.aggregate_type.clone(), e.aggregate_id.clone())))
                .collect())
        }
    }
}

/// The timeline of the person `crn`; [`AuditError::NotFound`] when nothing is recorded.
pub async fn case_timeline(
    backend: &Backend,
    outcomes: &OutcomeLog,
    crn: &str,
) -> Result<CaseTimeline, AuditError> {
    let events = person_events(backend, crn).await?;
    let outcomes: Vec<RecordedOutcome> = outcomes
        .for_crn(crn)
        .await?
        .into_iter()
        .filter(|o| o.outcome.outcome != "success")
        .collect();
    if events.is_empty() && outcomes.is_empty() {
        return Err(AuditError::NotFound(format!(
            "nothing is recorded for CRN {crn}"
        )));
    }
    let streams: BTreeSet<String> = events
        .iter()
        .map(|e| format!("{}/{}", e.aggregate_type, e.aggregate_id))
        .collect();
    let mut entries = events
        .iter()
        .map(|e| EventEntry::of(e).map(|entry| TimelineEntry::Event(Box::new(entry))))
        .collect::<Result<Vec<_>, _>>()?;
    entries.extend(
        outcomes
            .into_iter()
            .map(|o| TimelineEntry::Outcome(Box::new(o))),
    );
    // Stable: events keep their global order among themselves.
    entries.sort_by_key(TimelineEntry::at);
    Ok(CaseTimeline {
        crn: crn.to_string(),
        streams: streams.into_iter().collect(),
        entries,
    })
}

/// A Delius row and the events that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowAudit {
    pub table: String,
    #[schema(value_type = Object)]
    pub key: Value,
    /// The row as it is now; `None` when it was deleted.
    #[schema(value_type = Option<Object>)]
    pub row: Option<Value>,
    /// The event that last wrote it (`last_event_position`); `None` for a row loaded by a
    /// migration.
    pub last_event: Option<EventEntry>,
    /// Every event that wrote it, in global order, each with only its change to this row.
    pub history: Vec<EventEntry>,
}

/// Parses a key of `table` as the path gives it.
fn parse_key(table: &str, key: &str) -> Result<(&'static projections::TableDef, Key), AuditError> {
    let def = projections::rows::table(table).ok_or_else(|| {
        AuditError::Invalid(format!(
            "{table:?} is not a projected table (one of: {})",
            projections::TABLES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let key = if def.reference {
        Key::Code(key.to_string())
    } else {
        Key::Id(key.parse().map_err(|_| {
            AuditError::Invalid(format!("the key of {table} is a numeric id, not {key:?}"))
        })?)
    };
    Ok((def, key))
}

fn touching(
    event: &RecordedEvent,
    table: &str,
    key: &Key,
) -> Result<Option<EventEntry>, AuditError> {
    let mut entry = EventEntry::of(event)?;
    entry
        .rows
        .retain(|row| row.table == table && row.key == key.to_value());
    Ok((!entry.rows.is_empty()).then_some(entry))
}

/// The row `key` of `table` and the events that wrote it (PostgreSQL). Candidate events are
/// those of the stream that last wrote the row and, when the row names an offender, of that
/// person's streams.
pub async fn row_audit(pool: &PgPool, table: &str, key: &str) -> Result<RowAudit, AuditError> {
    let (def, key) = parse_key(table, key)?;
    // The key bound with its own type, so that the primary key serves the lookup.
    let sql = format!(
        "SELECT to_jsonb(t) FROM delius.\"{name}\" t WHERE t.\"{column}\" = $1",
        name = def.name,
        column = def.key
    );
    let query = sqlx::query_scalar(&sql);
    let (query, key_text) = match &key {
        Key::Id(id) => (query.bind(*id), id.to_string()),
        Key::Code(code) => (query.bind(code.clone()), code.clone()),
    };
    let row: Option<Value> = query.fetch_optional(pool).await?;
    let last_position = row
        .as_ref()
        .and_then(|r| r.get("last_event_position"))
        .and_then(Value::as_i64);
    let mut candidates: Vec<RecordedEvent> = Vec::new();
    if let Some(position) = last_position {
        let last: Option<(String, String)> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id FROM events WHERE global_position = $1",
        )
        .bind(position)
        .fetch_optional(pool)
        .await?;
        if let Some((aggregate_type, aggregate_id)) = last {
            candidates.extend(
                projections::postgres::read_stream(pool, &aggregate_type, &aggregate_id).await?,
            );
        }
    }
    let offender = row
        .as_ref()
        .and_then(|r| r.get("offender_id"))
        .and_then(Value::as_i64);
    if let Some(offender_id) = offender {
        let crn: Option<String> =
            sqlx::query_scalar("SELECT crn FROM delius.offender WHERE offender_id = $1")
                .bind(offender_id)
                .fetch_optional(pool)
                .await?;
        if let Some(crn) = crn {
            candidates.extend(person_events_pg(pool, &crn).await?);
        }
    }
    candidates.sort_by_key(|e| (e.transaction_id, e.global_position));
    candidates.dedup_by_key(|e| e.global_position);
    let mut history = Vec::new();
    for event in &candidates {
        if let Some(entry) = touching(event, def.name, &key)? {
            history.push(entry);
        }
    }
    if row.is_none() && history.is_empty() {
        return Err(AuditError::NotFound(format!(
            "no row {key_text} in delius.{} and no event wrote one",
            def.name
        )));
    }
    let last_event =
        last_position.and_then(|p| history.iter().find(|e| e.global_position == p).cloned());
    Ok(RowAudit {
        table: def.name.to_string(),
        key: key.to_value(),
        row,
        last_event,
        history,
    })
}

/// The cells every rendered event starts with: when, where, what, from where, who.
fn event_cells(e: &EventEntry) -> Vec<String> {
    vec![
        e.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        e.global_position.to_string(),
        format!("{} v{}", e.event_type, e.event_version),
        format!("{}/{}", e.aggregate_type, e.aggregate_id),
        e.source.clone(),
        e.message_id.clone(),
        e.actor.clone(),
    ]
}

fn headers(names: &[&str]) -> Vec<String> {
    [
        "recorded_at",
        "position",
        "event",
        "aggregate",
        "source",
        "message_id",
        "actor",
    ]
    .iter()
    .chain(names)
    .map(|s| s.to_string())
    .collect()
}

/// The timeline as a table for people: one line per event or outcome, with the rows each
/// event wrote.
pub fn render_timeline(timeline: &CaseTimeline) -> String {
    let headers = headers(&["correlation_id", "rows written"]);
    let rows: Vec<Vec<String>> = timeline
        .entries
        .iter()
        .map(|entry| match entry {
            TimelineEntry::Event(e) => {
                let mut cells = event_cells(e);
                cells.push(e.correlation_id.clone());
                cells.push(
                    e.rows
                        .iter()
                        .map(|r| format!("{} {}", r.table, r.key))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                cells
            }
            TimelineEntry::Outcome(o) => vec![
                o.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                String::new(),
                format!(
                    "{} {}{}",
                    o.outcome.outcome,
                    o.outcome.name.as_deref().unwrap_or(""),
                    o.outcome
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                format!("{} ({})", o.outcome.queue, o.outcome.event_type),
                "amqp".to_string(),
                o.outcome.message_id.clone(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    format!(
        "Audit timeline of {} ({} entries; streams: {})\n{}",
        timeline.crn,
        timeline.entries.len(),
        timeline.streams.join(", "),
        render::table(&headers, &rows)
    )
}

/// A row's audit as text for people: the row, then the events that wrote it.
pub fn render_row(audit: &RowAudit) -> String {
    let mut out = format!("delius.{} {}\n", audit.table, audit.key);
    match &audit.row {
        Some(Value::Object(columns)) => {
            for (column, value) in columns {
                out.push_str(&format!("  {column} = {value}\n"));
            }
        }
        _ => out.push_str("  (no such row now)\n"),
    }
    let headers = headers(&["change"]);
    let rows: Vec<Vec<String>> = audit
        .history
        .iter()
        .map(|e| {
            let mut cells = event_cells(e);
            cells.push(
                e.rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r.change,
                            r.columns.keys().cloned().collect::<Vec<_>>().join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            cells
        })
        .collect();
    out.push_str(&format!("written by {} events\n", audit.history.len()));
    out.push_str(&render::table(&headers, &rows));
    out
}
