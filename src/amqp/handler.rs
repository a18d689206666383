//! What the consumers call: the [`MessageHandler`] port (one per queue, registered in
//! [`Handlers`]), the [`OutcomeLog`] that keeps the outcomes support staff need to see
//! (ignored, rejected, failed) and [`ScriptedHandler`], a handler for tests.
//!
//! A handler turns one parsed [`Envelope`] into commands, executes them and returns a
//! [`HandlerOutcome`]. It must have committed its events before it returns (the consumer acks
//! right after) and must be idempotent: a message may be delivered any number of times (the
//! command bus dedupes on the message id).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aggregates::common::BoxFuture;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;

use super::envelope::Envelope;
use super::outcome::HandlerOutcome;
use crate::engine::Backend;

/// Handles the messages of one queue.
pub trait MessageHandler: Send + Sync {
    /// Handles one message; its events are committed when the future completes.
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, HandlerOutcome>;
}

/// The handlers by (unprefixed) queue name. Only queues with a handler get consumers; the
/// others keep their messages until a build that handles them.
#[derive(Clone, Default)]
pub struct Handlers {
    by_queue: BTreeMap<String, Arc<dyn MessageHandler>>,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("queues", &self.by_queue.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Handlers {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for the unprefixed `queue` (one of
    /// [`super::topology::QUEUES`]), replacing any earlier one.
    pub fn register(&mut self, queue: &str, handler: Arc<dyn MessageHandler>) -> &mut Self {
        self.by_queue.insert(queue.to_owned(), handler);
        self
    }

    /// [`Handlers::register`], by value.
    pub fn with(mut self, queue: &str, handler: Arc<dyn MessageHandler>) -> Self {
        self.register(queue, handler);
        self
    }

    /// The handler of `queue`.
    pub fn get(&self, queue: &str) -> Option<&Arc<dyn MessageHandler>> {
        self.by_queue.get(queue)
    }

    /// The queues with a handler, in name order.
    pub fn queues(&self) -> impl Iterator<Item = &str> {
        self.by_queue.keys().map(String::as_str)
    }

    /// Whether no queue has a handler.
    pub fn is_empty(&self) -> bool {
        self.by_queue.is_empty()
    }
}

/// An outcome to record: what happened to one delivery of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOutcome {
    /// The SNS `MessageId` (for an unparseable body, the id it was dead-lettered under).
    pub message_id: String,
    /// The unprefixed queue.
    pub queue: String,
    /// The event type (`unknown` when the body did not parse).
    pub event_type: String,
    /// `success`, `ignored`, `rejected` or `failed`.
    pub outcome: String,
    /// The telemetry name of a success or ignorable outcome.
    pub name: Option<String>,
    /// The telemetry properties of a success or ignorable outcome.
    pub properties: BTreeMap<String, String>,
    pub crn: Option<String>,
    pub noms_number: Option<String>,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    /// The delivery attempt (1 = first).
    pub attempt: u32,
}

impl MessageOutcome {
    /// The record of `outcome` for `envelope` (when it parsed) delivered from `queue`.
    pub fn new(
        message_id: &str,
        queue: &str,
        event_type: &str,
        envelope: Option<&Envelope>,
        outcome: &HandlerOutcome,
        attempt: u32,
    ) -> Self {
        let (name, properties, reason) = match outcome {
            HandlerOutcome::Success { name, properties }
            | HandlerOutcome::Ignored { name, properties } => {
                (Some(name.clone()), properties.clone(), None)
            }
            HandlerOutcome::Rejected { reason } | HandlerOutcome::Failed { reason } => {
                (None, BTreeMap::new(), Some(reason.clone()))
            }
        };
        let crn = envelope
            .and_then(|e| e.event.crn())
            .map(str::to_owned)
            .or_else(|| properties.get("crn").cloned());
        Self {
            message_id: message_id.to_owned(),
            queue: queue.to_owned(),
            event_type: event_type.to_owned(),
            outcome: outcome_label(outcome).to_owned(),
            name,
            properties,
            crn,
            noms_number: envelope
                .and_then(|e| e.event.noms_number())
                .map(str::to_owned),
            reason,
            attempt,
        }
    }
}

/// The label of an outcome in metrics, logs and the outcome log.
pub fn outcome_label(outcome: &HandlerOutcome) -> &'static str {
    match outcome {
        HandlerOutcome::Success { .. } => "success",
        HandlerOutcome::Ignored { .. } => "ignored",
        HandlerOutcome::Rejected { .. } => "rejected",
        HandlerOutcome::Failed { .. } => "failed",
    }
}

/// A recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedOutcome {
    /// Recording order.
    pub id: i64,
    #[serde(flatten)]
    pub outcome: MessageOutcome,
    pub recorded_at: DateTime<Utc>,
}

/// Where outcomes are kept: the `message_outcome` table on PostgreSQL, a list in memory on the
/// embedded default. Cloning shares the store.
#[derive(Debug, Clone)]
pub enum OutcomeLog {
    Postgres(PgPool),
    Memory(Arc<Mutex<Vec<RecordedOutcome>>>),
}

impl Default for OutcomeLog {
    fn default() -> Self {
        Self::memory()
    }
}

impl OutcomeLog {
    /// An empty in-memory log.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// The log of the engine's backend: its database, or a new in-memory log (share it by
    /// cloning).
    pub fn for_backend(backend: &Backend) -> Self {
        match backend {
            Backend::Postgres(pool) => Self::Postgres(pool.clone()),
            Backend::Memory { .. } => Self::memory(),
        }
    }

    /// Records one outcome.
    pub async fn record(&self, outcome: &MessageOutcome) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool) => {
                let properties = serde_json::to_value(&outcome.properties)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                sqlx::query(
                    "INSERT INTO message_outcome (message_id, queue, event_type, outcome, name, \
                     properties, crn, noms_number, reason, attempt) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&outcome.message_id)
                .bind(&outcome.queue)
                .bind(&outcome.event_type)
                .bind(&outcome.outcome)
                .bind(&outcome.name)
                .bind(properties)
                .bind(&outcome.crn)
                .bind(&outcome.noms_number)
                .bind(&outcome.reason)
                .bind(i32::try_from(outcome.attempt).unwrap_or(i32::MAX))
                .execute(pool)
                .await?;
                Ok(())
            }
            Self::Memory(list) => {
                let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
                let id = i64::try_from(list.len())
                    .unwrap_or(i64::MAX)
                    .saturating_add(1);
                list.push(RecordedOutcome {
                    id,
                    outcome: outcome.clone(),
                    recorded_at: Utc::now(),
                });
                Ok(())
            }
        }
    }

    /// The outcomes recorded for the person `crn`, in recording order.
    pub async fn for_crn(&self, crn: &str) -> Result<Vec<RecordedOutcome>, sqlx::Error> {
        match self {
            Self::Postgres(pool) => {
                let rows: Vec<OutcomeRow> = sqlx::query_as(
                    "SELECT id, message_id, queue, event_type, outcome, name, properties, crn, \
                     noms_number, reason, attempt, recorded_at \
                     FROM message_outcome WHERE crn = $1 ORDER BY id",
                )
                .bind(crn)
                .fetch_all(pool)
                .await?;
                Ok(rows.into_iter().map(OutcomeRow::into_recorded).collect())
            }
            Self::Memory(list) => {
                let list = list.lock().unwrap_or_else(|e| e.into_inner());
                Ok(list
                    .iter()
                    .filter(|r| r.outcome.crn.as_deref() == Some(crn))
                    .cloned()
                    .collect())
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct OutcomeRow {
    id: i64,
    message_id: String,
    queue: String,
    event_type: String,
    outcome: String,
    name: Option<String>,
    properties: serde_json::Value,
    crn: Option<String>,
    noms_number: Option<String>,
    reason: Option<String>,
    attempt: i32,
    recorded_at: DateTime<Utc>,
}

impl OutcomeRow {
    fn into_recorded(self) -> RecordedOutcome {
        RecordedOutcome {
            id: self.id,
            outcome: MessageOutcome {
                message_id: self.message_id,
                queue: self.queue,
                event_type: self.event_type,
                outcome: self.outcome,
                name: self.name,
                properties: serde_json::from_value(self.properties).unwrap_or_default(),
                crn: self.crn,
                noms_number: self.noms_number,
                reason: self.reason,
                attempt: u32::try_from(self.attempt).unwrap_or(0),
            },
            recorded_at: self.recorded_at,
        }
    }
}

/// A handler for tests: answers the scripted outcomes in order, then the default one, after an
/// optional delay; remembers the message id of every envelope it saw.
#[derive(Debug)]
pub struct ScriptedHandler {
    script: Mutex<VecDeque<HandlerOutcome>>,
    default: HandlerOutcome,
    delay: Duration,
    seen: Mutex<Vec<String>>,
    changed: Notify,
}

impl ScriptedHandler {
    /// Answers `default` to every message.
    pub fn new(default: HandlerOutcome) -> Self {
        Self {
            script: Mutex::new(VecDeque::new()),
            default,
            delay: Duration::ZERO,
            seen: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }

    /// Answers `Success { name: "Handled" }` to every message.
    pub fn succeeding() -> Self {
        Self::new(HandlerOutcome::Success {
            name: "Handled".into(),
            properties: BTreeMap::new(),
        })
    }

    /// Answers `outcomes` first, in order (one per delivery), then the default.
    pub fn then(self, outcomes: impl IntoIterator<Item = HandlerOutcome>) -> Self {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(outcomes);
        self
    }

    /// Waits `delay` before answering (a slow handler).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The message ids seen so far, one per delivery, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until at least `count` deliveries were handled, or `timeout`; returns whether
    /// they were.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if self.seen.lock().unwrap_or_else(|e| e.into_inner()).len() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.seen.lock().unwrap_or_else(|e| e.into_inner()).len() >= count;
            }
        }
    }
}

impl MessageHandler for ScriptedHandler {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, HandlerOutcome> {
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let outcome = self
                .script
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
                .unwrap_or_else(|| self.default.clone());
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(envelope.message_id.clone());
            self.changed.notify_waiters();
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(crn: &str) -> Envelope {
        let body = format!(
            r#"{{"MessageId":"m1","Message":"{{\"eventType\":\"x.y\",\"personReference\":{{\"identifiers\":[{{\"type\":\"CRN\",\"value\":\"{crn}\"}}]}}}}"}}"#
        );
        Envelope::parse(body.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn scripted_outcomes_come_first() {
        let handler = ScriptedHandler::succeeding().then([HandlerOutcome::Failed {
            reason: "down".into(),
        }]);
        let e = envelope("X000001");
        assert!(matches!(
            handler.handle(&e).await,
            HandlerOutcome::Failed { .. }
        ));
        assert!(matches!(
            handler.handle(&e).await,
            HandlerOutcome::Success { .. }
        ));
        assert_eq!(handler.seen(), vec!["m1", "m1"]);
        assert!(handler.wait_for(2, Duration::from_millis(1)).await);
    }

    #[tokio::test]
    async fn the_memory_log_finds_outcomes_by_crn() {
        let log = OutcomeLog::memory();
        let e = envelope("X000002");
        let ignored = HandlerOutcome::Ignored {
            name: "NotRelevant".into(),
            properties: BTreeMap::from([("k".into(), "v".into())]),
        };
        let outcome = MessageOutcome::new("m1", "q", "x.y", Some(&e), &ignored, 1);
        log.record(&outcome).await.unwrap();
        let found = log.for_crn("X000002").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].outcome, outcome);
        assert_eq!(found[0].outcome.outcome, "ignored");
        assert!(log.for_crn("X999999").await.unwrap().is_empty());
    }
}
