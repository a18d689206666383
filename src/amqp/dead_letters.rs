//! Dead letters for support staff: list, show and re-drive the messages on `<queue>.dlq`.
//!
//! The dead-letter queues in RabbitMQ are the source of truth; nothing is copied elsewhere.
//! **Browsing never loses a message**: a scan takes the messages with `basic_get` *without*
//! ack, on a channel of its own, holds them unacknowledged (so the next `basic_get` returns the
//! next message, not the same one), and finally requeues every one it did not re-drive with a
//! single `nack(multiple, requeue)` — RabbitMQ puts them back in their original order. If
//! anything fails midway, the channel closes and the broker requeues the held messages itself.
//! While a scan holds messages, a concurrent scan does not see them (scans are short).
//!
//! **Re-driving** publishes a copy to `<queue>` (default exchange, mandatory, publisher confirm)
//! with `x-attempt` reset to 1 and the dead-letter headers removed, and acks the dead-letter
//! copy only after the broker confirmed the new one: a failure in between leaves the message
//! in both places (delivery is at least once; handlers are idempotent), never in neither.
//!
//! A message is found by its id ([`super::consumer::MESSAGE_ID`] header, else the AMQP
//! `message_id`). An event type bound to two queues (the prison identifier events) fails, and
//! is found, on each: [`DeadLetters::show`] returns every copy and [`DeadLetters::redrive`]
//! re-drives every copy (narrow either to one queue with `queue`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::options::QueueDeclareOptions;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::Channel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::consumer::{
    copied_headers, copy_properties, header_string, header_u32, int, publish_confirmed, AmqpError,
    ATTEMPT, ATTEMPTS, DEAD_LETTERED_AT, DEATH_REASON, EVENT_TYPE, MESSAGE_ID, ORIGINAL_QUEUE,
};
use super::topology::{self, Names, QueueSpec};
use super::Broker;

/// The most messages one scan of one dead-letter queue holds; a longer queue is listed (and
/// re-driven with `--all`) up to this many at a time.
pub const SCAN_LIMIT: usize = 10_000;

/// Why a dead-letter operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no queue `{0}` (known: refer-and-monitor-and-delius, prison-custody-status-to-delius, manage-pom-cases-and-delius)")]
    UnknownQueue(String),
    #[error("not connected to the broker")]
    NotConnected,
    #[error(transparent)]
    Amqp(#[from] AmqpError),
}

impl From<lapin::Error> for DeadLetterError {
    fn from(error: lapin::Error) -> Self {
        Self::Amqp(AmqpError::Broker(error))
    }
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The (unprefixed) queue it was dead-lettered from.
    #[schema(example = "refer-and-monitor-and-delius")]
    pub queue: String,
    /// The SNS `MessageId` (or the id an unparseable body was dead-lettered under).
    pub message_id: String,
    /// Its event type (`unknown` when the body did not parse).
    pub event_type: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// How many deliveries it had.
    pub attempts: Option<u32>,
    /// When it was dead-lettered.
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// One dead-lettered message with its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetter,
    /// The original body (UTF-8; invalid bytes replaced).
    pub body: String,
}

/// The result of a re-drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    /// How many messages went back to their queue.
    pub redriven: usize,
}

/// The dead letters of one topology (a broker and a prefix).
#[derive(Debug, Clone)]
pub struct DeadLetters {
    broker: Broker,
    names: Names,
}

impl DeadLetters {
    /// The dead letters under `prefix` (`AmqpArgs.prefix`) on `broker`.
    pub fn new(broker: Broker, prefix: &str) -> Self {
        Self {
            broker,
            names: Names::new(prefix),
        }
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The dead letters of `queue` (unprefixed), or of every queue, oldest first per queue.
    pub async fn list(&self, queue: Option<&str>) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let mut found = Vec::new();
        for spec in selected(queue)? {
            self.scan(spec, |delivery| {
                found.push(summary(spec, delivery));
                false
            })
            .await?;
        }
        Ok(found)
    }

    /// Every dead-lettered copy of `message_id` (in `queue`, or in any queue), with its body.
    pub async fn show(
        &self,
        message_id: &str,
        queue: Option<&str>,
    ) -> Result<Vec<DeadLetterDetail>, DeadLetterError> {
        let mut found = Vec::new();
        for spec in selected(queue)? {
            self.scan(spec, |delivery| {
                let summary = summary(spec, delivery);
                if summary.message_id == message_id {
                    found.push(DeadLetterDetail {
                        summary,
                        body: String::from_utf8_lossy(&delivery.data).into_owned(),
                    });
                }
                false
            })
            .await?;
        }
        Ok(found)
    }

    /// Moves every dead-lettered copy of `message_id` (in `queue`, or in any queue) back to its
    /// queue with `x-attempt` 1; returns how many (0: not found).
    pub async fn redrive(
        &self,
        message_id: &str,
        queue: Option<&str>,
    ) -> Result<usize, DeadLetterError> {
        let mut count = 0;
        for spec in selected(queue)? {
            count += self
                .scan(spec, |delivery| {
                    summary(spec, delivery).message_id == message_id
                })
                .await?;
        }
        Ok(count)
    }

    /// Moves every dead letter of `queue` (or of every queue) back; returns how many.
    pub async fn redrive_all(&self, queue: Option<&str>) -> Result<usize, DeadLetterError> {
        let mut count = 0;
        for spec in selected(queue)? {
            count += self.scan(spec, |_| true).await?;
        }
        Ok(count)
    }

    /// Takes the messages of `spec`'s dead-letter queue without ack, re-drives those `pick`
    /// chooses, requeues the others; returns how many were re-driven.
    async fn scan(
        &self,
        spec: &QueueSpec,
        mut pick: impl FnMut(&Delivery) -> bool,
    ) -> Result<usize, DeadLetterError> {
        let channel = self
            .broker
            .channel()
            .await?
            .ok_or(DeadLetterError::NotConnected)?;
        let result = self.scan_on(&channel, spec, &mut pick).await;
        let _ = channel.close(200, "OK".into()).await;
        result
    }

    async fn scan_on(
        &self,
        channel: &Channel,
        spec: &QueueSpec,
        pick: &mut impl FnMut(&Delivery) -> bool,
    ) -> Result<usize, DeadLetterError> {
        let dlq = self.names.dlq(spec.name);
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if channel
            .queue_declare(dlq.as_str().into(), passive, FieldTable::default())
            .await
            .is_err()
        {
            // Not declared (no consumer has started under this prefix): nothing there.
            tracing::warn!(
                queue = dlq,
                "no such dead-letter queue; is AMQP_PREFIX right?"
            );
            return Ok(0);
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut held = Vec::new();
        while held.len() < SCAN_LIMIT {
            match channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            {
                Some(message) => held.push(message.delivery),
                None => break,
            }
        }
        let mut redriven = HashSet::new();
        let mut failure = None;
        for delivery in &held {
            if !pick(delivery) {
                continue;
            }
            match self.redrive_one(channel, spec, delivery).await {
                Ok(()) => {
                    redriven.insert(delivery.delivery_tag);
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let last_held = held
            .iter()
            .rev()
            .find(|d| !redriven.contains(&d.delivery_tag));
        if let Some(last) = last_held {
            let requeue_all = BasicNackOptions {
                multiple: true,
                requeue: true,
            };
            if !last.acker.nack(requeue_all).await? {
                // The channel is gone: the broker requeues them when it closes.
                failure.get_or_insert(AmqpError::NotSettled);
            }
        }
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(redriven.len()),
        }
    }

    /// Publishes a fresh copy to the queue, confirmed, then acks the dead letter.
    async fn redrive_one(
        &self,
        channel: &Channel,
        spec: &QueueSpec,
        delivery: &Delivery,
    ) -> Result<(), AmqpError> {
        let mut headers = copied_headers(delivery.properties.headers());
        for key in [
            DEATH_REASON,
            ATTEMPTS,
            ORIGINAL_QUEUE,
            EVENT_TYPE,
            DEAD_LETTERED_AT,
        ] {
            headers.remove(key);
        }
        headers.insert(ATTEMPT.into(), int(1));
        let target = self.names.queue(spec.name);
        publish_confirmed(
            channel,
            &target,
            &delivery.data,
            copy_properties(delivery, headers),
        )
        .await?;
        match delivery.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => {
                tracing::info!(
                    message_id = summary(spec, delivery).message_id,
                    queue = spec.name,
                    "dead letter re-driven"
                );
                Ok(())
            }
            Ok(false) => Err(AmqpError::NotSettled),
            Err(error) => Err(error.into()),
        }
    }
}

/// The queues `queue` selects (all when `None`).
fn selected(queue: Option<&str>) -> Result<Vec<&'static QueueSpec>, DeadLetterError> {
    match queue {
        None => Ok(topology::QUEUES.iter().collect()),
        Some(name) => topology::spec(name)
            .map(|spec| vec![spec])
            .ok_or_else(|| DeadLetterError::UnknownQueue(name.to_owned())),
    }
}

fn summary(spec: &QueueSpec, delivery: &Delivery) -> DeadLetter {
    let headers = delivery.properties.headers();
    DeadLetter {
        queue: spec.name.to_owned(),
        message_id: header_string(headers, MESSAGE_ID)
            .or_else(|| {
                delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.as_str().to_owned())
            })
            .unwrap_or_default(),
        event_type: header_string(headers, EVENT_TYPE),
        reason: header_string(headers, DEATH_REASON),
        attempts: header_u32(headers, ATTEMPTS),
        dead_lettered_at: header_string(headers, DEAD_LETTERED_AT)
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&Utc)),
    }
}
