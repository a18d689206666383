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
    #[serde(deserialize_with = "received_at")]
    pub received_at: DateTime<Utc>,
}

/// Reads `received_at` as chrono does, the form this service writes by hand
/// ([`crate::copy_binary::utc_instant`]): every event's metadata has one, and chrono's parser
/// was ~4 % of a replay process's samples.
fn received_at<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    struct Instant;
    impl serde::de::Visitor<'_> for Instant {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 date and time")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
            match crate::copy_binary::utc_instant(text) {
                Some(instant) => Ok(instant),
                None => text.parse().map_err(E::custom),
            }
        }
    }
    deserializer.deserialize_str(Instant)
}

/// One event as stored, with its place in the global order. `P` is how its payload and
/// metadata are held: a [`Value`] tree (audit, the embedded store), or [`RawJson`], the text
/// as read, which the projectors decode straight into typed events ([`LoggedEvent`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent<P = Value> {
    pub global_position: i64,
    pub transaction_id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: P,
    pub metadata: P,
    pub recorded_at: DateTime<Utc>,
}

/// An event as the projectors and the replay read it: payload and metadata as JSON text.
pub type LoggedEvent = RecordedEvent<RawJson>;

/// JSON text as read from the log, not parsed into a tree: decoding it into a typed event
/// allocates only that event, where a [`Value`] tree allocates a map and a string per field
/// first (a fifth of a replay's CPU; BENCHMARKS.md). Not even checked when read: the one
/// parse is the decode, which reports text that is not the event it names, or not JSON, as a
/// [`DecodeError`] at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct RawJson(pub Box<str>);

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for RawJson {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::{TypeInfo, ValueRef};
        let mut bytes = value.as_bytes()?;
        // jsonb in binary format starts with its format version, 1 (as sqlx's `Json`).
        if value.format() == sqlx::postgres::PgValueFormat::Binary
            && value.type_info().name() == "JSONB"
        {
            match bytes.split_first() {
                Some((1, rest)) => bytes = rest,
                _ => return Err("unsupported jsonb binary format".into()),
            }
        }
        Ok(Self(std::str::from_utf8(bytes)?.into()))
    }
}

impl sqlx::Type<sqlx::Postgres> for RawJson {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <sqlx::types::JsonValue as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <sqlx::types::JsonValue as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

/// How a stored event's payload and metadata are held: they can be decoded into a type, or
/// turned into a [`Value`] for the upcasters.
pub trait Json: Clone + PartialEq + std::fmt::Debug {
    /// Decodes into `T`.
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error>;
    /// The JSON as a tree.
    fn to_value(&self) -> Result<Value, serde_json::Error>;
}

impl Json for Value {
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }

    fn to_value(&self) -> Result<Value, serde_json::Error> {
        Ok(self.clone())
    }
}

impl Json for RawJson {
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
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

/// A stored payload upcast to its event type's current shape by `aggregates::upcasters::all()`
/// (through cqrs-es's `SerializedEvent`, the upcasters' form), or `None` when no upcaster
/// applies to its type and version — nearly always: the stored form is then decoded as it is,
/// without building a `Value` tree first. Every reader of the log decodes through this.
pub fn upcast<J: Json>(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &J,
) -> Result<Option<Value>, serde_json::Error> {
    let upcasters = aggregates::upcasters::all();
    if !upcasters
        .iter()
        .any(|u| u.can_upcast(event_type, event_version))
    {
        return Ok(None);
    }
    let mut serialized = SerializedEvent::new(
        aggregate_id.to_string(),
        sequence as usize,
        aggregate_type.to_string(),
        event_type.to_string(),
        event_version.to_string(),
        payload.to_value()?,
        Value::Null,
    );
    for upcaster in upcasters {
        if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
            serialized = upcaster.upcast(serialized);
        }
    }
    Ok(Some(serialized.payload))
}

impl<P: Json> RecordedEvent<P> {
    /// Decodes the payload, upcasting it first with `aggregates::upcasters::all()`.
    pub fn decode(&self) -> Result<AnyEvent, DecodeError> {
        match upcast(
            &self.aggregate_type,
            &self.aggregate_id,
            self.sequence,
            &self.event_type,
            &self.event_version,
            &self.payload,
        )
        .map_err(|e| self.payload_error(e))?
        {
            Some(upcast) => self.decode_payload(&upcast),
            None => self.decode_payload(&self.payload),
        }
    }

    fn payload_error(&self, source: serde_json::Error) -> DecodeError {
        DecodeError::Payload {
            event_type: self.event_type.clone(),
            event_version: self.event_version.clone(),
            position: self.global_position,
            source,
        }
    }

    fn decode_payload<J: Json>(&self, payload: &J) -> Result<AnyEvent, DecodeError> {
        let error = |source| self.payload_error(source);
        Ok(match self.aggregate_type.as_str() {
            ReferenceData::TYPE => AnyEvent::Reference(payload.parse().map_err(error)?),
            Case::TYPE => AnyEvent::Case(payload.parse().map_err(error)?),
            Custody::TYPE => AnyEvent::Custody(payload.parse().map_err(error)?),
            PomAllocation::TYPE => AnyEvent::Pom(payload.parse().map_err(error)?),
            Referral::TYPE => AnyEvent::Referral(payload.parse().map_err(error)?),
            Diary::TYPE => AnyEvent::Diary(payload.parse().map_err(error)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_string())),
        })
    }

    /// The command metadata stored with the event.
    pub fn metadata(&self) -> Result<Metadata, DecodeError> {
        self.metadata
            .parse()
            .map_err(|source| DecodeError::Metadata {
                position: self.global_position,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn stored(event_type: &str, version: &str, payload: Value) -> RecordedEvent {
        RecordedEvent {
            global_position: 7,
            transaction_id: 1,
            aggregate_type: Diary::TYPE.into(),
            aggregate_id: "X123456".into(),
            sequence: 3,
            event_type: event_type.into(),
            event_version: version.into(),
            payload,
            metadata: json!({
                "message_id": "m1", "correlation_id": "c1", "source": "amqp",
                "actor": "crs", "received_at": "2026-11-30T12:00:00Z"
            }),
            recorded_at: Utc::now(),
        }
    }

    /// The same event held as JSON text, as the projectors read it.
    fn raw(event: &RecordedEvent) -> LoggedEvent {
        let text = |v: &Value| RawJson(v.to_string().into());
        RecordedEvent {
            global_position: event.global_position,
            transaction_id: event.transaction_id,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: text(&event.payload),
            metadata: text(&event.metadata),
            recorded_at: event.recorded_at,
        }
    }

    #[test]
    fn text_and_tree_decode_alike_current_and_upcast_versions() {
        let current = stored(
            "AppointmentOutcomeRecorded",
            "2.0.0",
            json!({"AppointmentOutcomeRecorded": {
                "contact_id": 1, "outcome_code": "ATTC", "attended": true,
                "complied": true, "minutes_credited": 45, "rar_activity": false
            }}),
        );
        let v1 = stored(
            "AppointmentOutcomeRecorded",
            "1.0",
            json!({"AppointmentOutcomeRecorded": {
                "contact_id": 1, "outcome_code": "ATTC", "attended": true,
                "complied": true, "hours_credited": "0.75", "rar_activity": false
            }}),
        );
        for event in [&current, &v1] {
            let tree = event.decode().unwrap();
            assert_eq!(raw(event).decode().unwrap(), tree);
            assert_eq!(raw(event).metadata().unwrap(), event.metadata().unwrap());
        }
        // The upcast v1 reads as the current one.
        assert_eq!(raw(&v1).decode().unwrap(), current.decode().unwrap());
        let AnyEvent::Diary(event) = raw(&current).decode().unwrap() else {
            panic!("not a diary event");
        };
        assert!(matches!(
            *event,
            DiaryEvent::AppointmentOutcomeRecorded {
                minutes_credited: Some(45),
                ..
            }
        ));
    }

    #[test]
    fn text_that_does_not_match_the_event_is_a_decode_error_with_its_position() {
        let bad = stored(
            "AppointmentOutcomeRecorded",
            "2.0.0",
            json!({"AppointmentOutcomeRecorded": {"contact_id": "not a number"}}),
        );
        let error = raw(&bad).decode().unwrap_err();
        assert!(
            matches!(&error, DecodeError::Payload { position: 7, event_type, .. } if event_type == "AppointmentOutcomeRecorded"),
            "{error}"
        );
        let mut no_metadata = raw(&bad);
        no_metadata.metadata = RawJson(json!({}).to_string().into());
        assert!(matches!(
            no_metadata.metadata(),
            Err(DecodeError::Metadata { position: 7, .. })
        ));
        // Text that is not JSON at all is read as it is and fails the decode the same way.
        let mut not_json = raw(&bad);
        not_json.payload = RawJson("{\"AppointmentOutcomeRecorded\": {".into());
        assert!(matches!(
            not_json.decode(),
            Err(DecodeError::Payload { position: 7, .. })
        ));
        not_json.metadata = RawJson("not json".into());
        assert!(matches!(
            not_json.metadata(),
            Err(DecodeError::Metadata { position: 7, .. })
        ));
        let mut unknown = raw(&bad);
        unknown.aggregate_type = "Spaceship".into();
        assert!(matches!(
            unknown.decode(),
            Err(DecodeError::UnknownAggregate(t)) if t == "Spaceship"
        ));
    }
}
