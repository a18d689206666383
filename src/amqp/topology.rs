//! The broker topology, as data ([`QUEUES`]) and as the declarations that create it
//! ([`declare`], idempotent, run at every start and reconnect).
//!
//! ```text
//! {prefix}hmpps.domain-events (topic, durable)
//!   ── routing key = eventType ──► {prefix}<queue>            (durable; bound to the queue's event types)
//!                                   │ handler failed (transient)
//!                                   ▼
//!                                 {prefix}<queue>.retry.<ms>ms (durable; x-message-ttl = ms,
//!                                   │                            dead-letters to "" / {prefix}<queue>)
//!                                   └──── after the delay ───► {prefix}<queue>
//!                                 {prefix}<queue>.dlq          (durable; rejected, or failed too often)
//! ```
//!
//! One delay queue per delay level, because RabbitMQ only expires messages at the head of a
//! queue: a per-message TTL in one shared delay queue would hold a 1 s retry behind a 120 s one
//! (head-of-line blocking). A queue's TTL is fixed at declaration, so a changed
//! `AMQP_RETRY_DELAYS_MS` declares new queues (their names carry the delay) instead of
//! failing on a redeclaration with other arguments; the old ones still drain into the queue.
//!
//! Names are prefixed with `AmqpArgs.prefix` (empty in production; tests use a unique one so
//! they run in parallel on one broker).

use std::collections::BTreeSet;
use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

/// The exchange domain events are published to (unprefixed).
pub const EXCHANGE: &str = "hmpps.domain-events";

/// Refer and Monitor an Intervention.
pub const REFER_AND_MONITOR: &str = "refer-and-monitor-and-delius";
/// Prison custody status (releases, receptions, prison identifiers).
pub const PRISON_CUSTODY_STATUS: &str = "prison-custody-status-to-delius";
/// Manage POM Cases.
pub const MANAGE_POM_CASES: &str = "manage-pom-cases-and-delius";

/// One integration's queue and the event types bound to it (the live system's SQS filter
/// policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// The unprefixed queue name.
    pub name: &'static str,
    /// The event types (routing keys) bound to the queue, exactly.
    pub event_types: &'static [&'static str],
}

impl QueueSpec {
    /// Whether `event_type` is bound to this queue.
    pub fn binds(&self, event_type: &str) -> bool {
        self.event_types.contains(&event_type)
    }
}

/// Every queue and its bindings: the one table handlers, consumers, dead-letter tools and
/// tests read.
pub const QUEUES: &[QueueSpec] = &[
    QueueSpec {
        name: REFER_AND_MONITOR,
        event_types: &[
            "intervention.action-plan.submitted",
            "intervention.action-plan.approved",
            "intervention.session-appointment.session-feedback-submitted",
            "intervention.initial-assessment-appointment.session-feedback-submitted",
            "intervention.referral.ended",
        ],
    },
    QueueSpec {
        name: PRISON_CUSTODY_STATUS,
        event_types: &[
            "prison-offender-events.prisoner.released",
            "prison-offender-events.prisoner.received",
            "probation-case.prison-identifier.added",
            "probation-case.prison-identifier.updated",
        ],
    },
    QueueSpec {
        name: MANAGE_POM_CASES,
        event_types: &[
            "offender-management.handover.changed",
            "offender-management.allocation.changed",
            "SENTENCE_CHANGED",
            "probation-case.prison-identifier.added",
            "probation-case.prison-identifier.updated",
        ],
    },
];

/// The spec of the (unprefixed) queue `name`.
pub fn spec(name: &str) -> Option<&'static QueueSpec> {
    QUEUES.iter().find(|q| q.name == name)
}

/// The broker names of the topology under one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names prefixed with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}hmpps.domain-events`.
    pub fn exchange(&self) -> String {
        format!("{}{EXCHANGE}", self.prefix)
    }

    /// `{prefix}<queue>`.
    pub fn queue(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    /// `{prefix}<queue>.dlq`.
    pub fn dlq(&self, queue: &str) -> String {
        format!("{}{queue}.dlq", self.prefix)
    }

    /// `{prefix}<queue>.retry.<ms>ms`: the delay queue of one delay level.
    pub fn retry(&self, queue: &str, delay: Duration) -> String {
        format!("{}{queue}.retry.{}ms", self.prefix, delay.as_millis())
    }
}

/// The distinct delay levels, in order.
fn levels(delays: &[Duration]) -> BTreeSet<Duration> {
    delays.iter().copied().collect()
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares the exchange, every queue of [`QUEUES`] with its bindings, its delay queues (one
/// per distinct delay of `delays`) and its dead-letter queue. Idempotent: declaring what
/// exists with the same arguments changes nothing.
pub async fn declare(
    channel: &Channel,
    names: &Names,
    delays: &[Duration],
) -> Result<(), lapin::Error> {
    let exchange = names.exchange();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    for spec in QUEUES {
        let queue = names.queue(spec.name);
        channel
            .queue_declare(queue.as_str().into(), durable(), FieldTable::default())
            .await?;
        for event_type in spec.event_types {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    (*event_type).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        for delay in levels(delays) {
            let mut arguments = FieldTable::default();
            let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(LongString::from("")),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(LongString::from(queue.as_str())),
            );
            channel
                .queue_declare(
                    names.retry(spec.name, delay).as_str().into(),
                    durable(),
                    arguments,
                )
                .await?;
        }
        channel
            .queue_declare(
                names.dlq(spec.name).as_str().into(),
                durable(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Deletes everything [`declare`] made under `names` (tests clean up their prefix with it).
/// Best effort: a missing queue is not an error to the caller, but it closes the channel, so
/// each deletion uses a fresh channel of `connection`.
pub async fn delete(connection: &lapin::Connection, names: &Names, delays: &[Duration]) {
    let mut queues = Vec::new();
    for spec in QUEUES {
        queues.push(names.queue(spec.name));
        queues.push(names.dlq(spec.name));
        for delay in levels(delays) {
            queues.push(names.retry(spec.name, delay));
        }
    }
    for queue in queues {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = channel.close(200, "OK".into()).await;
        }
    }
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .exchange_delete(
                names.exchange().as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = channel.close(200, "OK".into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_the_delay() {
        let names = Names::new("t1-");
        assert_eq!(names.exchange(), "t1-hmpps.domain-events");
        assert_eq!(
            names.queue(REFER_AND_MONITOR),
            "t1-refer-and-monitor-and-delius"
        );
        assert_eq!(
            names.dlq(MANAGE_POM_CASES),
            "t1-manage-pom-cases-and-delius.dlq"
        );
        assert_eq!(
            names.retry(PRISON_CUSTODY_STATUS, Duration::from_secs(5)),
            "t1-prison-custody-status-to-delius.retry.5000ms"
        );
    }

    #[test]
    fn bindings_are_exact() {
        let pom = spec(MANAGE_POM_CASES).unwrap();
        assert!(pom.binds("SENTENCE_CHANGED"));
        assert!(pom.binds("probation-case.prison-identifier.added"));
        assert!(!pom.binds("prison-offender-events.prisoner.released"));
        let custody = spec(PRISON_CUSTODY_STATUS).unwrap();
        assert!(custody.binds("probation-case.prison-identifier.updated"));
        assert!(!custody.binds("SENTENCE_CHANGED"));
        assert_eq!(spec(REFER_AND_MONITOR).unwrap().event_types.len(), 5);
        assert!(spec("nope").is_none());
    }

    #[test]
    fn one_delay_queue_per_distinct_delay() {
        let delays = [1000, 5000, 1000].map(Duration::from_millis);
        assert_eq!(levels(&delays).len(), 2);
    }
}
