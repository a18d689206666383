//! The event log as projectors, replay and audit read it.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use aggregates::case::{Case, CaseEvent};
use aggregates::custody::{Custody, CustodyEvent};
use aggregates::diary::{Diary, DiaryEvent};
use aggregates::pom::{PomAllocation, PomEvent};
use aggregates::reference::{ReferenceData, ReferenceEvent};
use aggregates::referral::{Referral, ReferralEvent};
use cqrs_es::Aggregate;

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Http,
    Amqp,
    Seed,
    Cli,
}

impl Source {
    /// The lowercase name stored in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Amqp => "amqp",
            Self::Seed => "seed",
            Self::Cli => "cli",
        }
    }
}

/// The metadata of a command, stored with every event it produced. All values serialize as
/// strings so that cqrs-es can read them back as its `HashMap<String, String>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Idempotency key: SNS `MessageId`, HTTP `Idempotency-Key` or a derived id.
    pub message_id: String,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    pub source: Source,
    /// The JWT caller, the upstream service or the operator.
    pub actor: String,
    pub received_at: DateTime<Utc>,
}

/// One event as stored, with its place in the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub global_position: i64,
    pub transaction_id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The aggregate type is not one this build knows (an event from a newer build).
    #[error("unknown aggregate type {0}")]
    UnknownAggregate(String),
    /// The payload does not match the event type's current shape, even after upcasting.
    #[error("cannot decode {event_type} v{event_version} at position {position}: {source}")]
    Payload {
        event_type: String,
        event_version: String,
        position: i64,
        source: serde_json::Error,
    },
    /// The metadata is not the bridge's command metadata.
    #[error("cannot decode metadata at position {position}: {source}")]
    Metadata {
        position: i64,
        source: serde_json::Error,
    },
}

/// A decoded event of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    Reference(Box<ReferenceEvent>),
    Case(CaseEvent),
    Custody(CustodyEvent),
    Pom(PomEvent),
    Referral(Box<ReferralEvent>),
    Diary(Box<DiaryEvent>),
}

impl RecordedEvent {
    /// Decodes the payload, upcasting it first with `aggregates::upcasters::all()`.
    pub fn decode(&self) -> Result<AnyEvent, DecodeError> {
        let upcasters = aggregates::upcasters::all();
        if upcasters
            .iter()
            .any(|u| u.can_upcast(&self.event_type, &self.event_version))
        {
            let mut serialized = SerializedEvent::new(
                self.aggregate_id.clone(),
                self.sequence as usize,
                self.aggregate_type.clone(),
                self.event_type.clone(),
                self.event_version.clone(),
                self.payload.clone(),
                Value::Null,
            );
            for upcaster in upcasters {
                if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
                    serialized = upcaster.upcast(serialized);
                }
            }
            self.decode_payload(&serialized.payload)
        } else {
            self.decode_payload(&self.payload)
        }
    }

    fn decode_payload(&self, payload: &Value) -> Result<AnyEvent, DecodeError> {
        fn parse<T: serde::de::DeserializeOwned>(
            event: &RecordedEvent,
            payload: &Value,
        ) -> Result<T, DecodeError> {
            T::deserialize(payload).map_err(|source| DecodeError::Payload {
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                position: event.global_position,
                source,
            })
        }
        Ok(match self.aggregate_type.as_str() {
            ReferenceData::TYPE => AnyEvent::Reference(parse(self, payload)?),
            Case::TYPE => AnyEvent::Case(parse(self, payload)?),
            Custody::TYPE => AnyEvent::Custody(parse(self, payload)?),
            PomAllocation::TYPE => AnyEvent::Pom(parse(self, payload)?),
            Referral::TYPE => AnyEvent::Referral(parse(self, payload)?),
            Diary::TYPE => AnyEvent::Diary(parse(self, payload)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_string())),
        })
    }

    /// The command metadata stored with the event.
    pub fn metadata(&self) -> Result<Metadata, DecodeError> {
        serde_json::from_value(self.metadata.clone()).map_err(|source| DecodeError::Metadata {
            position: self.global_position,
            source,
        })
    }
}
