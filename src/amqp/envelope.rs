//! The wire format of domain events: an SNS notification (`Type`, `MessageId`, `Message` as a
//! JSON *string*, `MessageAttributes`) around an HMPPS domain event, or — for Manage POM
//! Cases — a probation offender event `{crn, eventType, …}`. Parse failures are permanent.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a message body is not a domain event. Always permanent: a dead letter at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not an SNS notification: {0}")]
    Notification(String),
    #[error("Message is not a domain event: {0}")]
    Message(String),
    #[error("no eventType in MessageAttributes or Message")]
    NoEventType,
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "MessageAttributes", default)]
    attributes: BTreeMap<String, Attribute>,
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Deserialize)]
struct Attribute {
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// An identifier of the person the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// `personReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonReference {
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
}

/// An HMPPS domain event (`HmppsDomainEvent`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub detail_url: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `null` is read as `{}`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub additional_information: Map<String, Value>,
    #[serde(default)]
    pub person_reference: Option<PersonReference>,
    /// Probation offender events (Manage POM Cases `SENTENCE_CHANGED`) carry the CRN here.
    #[serde(default)]
    pub crn: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

impl DomainEvent {
    fn identifier(&self, kind: &str) -> Option<&str> {
        self.person_reference
            .as_ref()?
            .identifiers
            .iter()
            .find(|i| i.kind == kind)
            .map(|i| i.value.as_str())
    }

    /// The person's CRN (`personReference` type `CRN`, or the offender event's `crn`).
    pub fn crn(&self) -> Option<&str> {
        self.identifier("CRN").or(self.crn.as_deref())
    }

    /// The person's NOMS number (`personReference` type `NOMS`, else the prison events'
    /// `additionalInformation.nomsNumber`).
    pub fn noms_number(&self) -> Option<&str> {
        self.identifier("NOMS")
            .or_else(|| self.info_str("nomsNumber"))
            .filter(|n| !n.is_empty())
    }

    /// A string of `additionalInformation`.
    pub fn info_str(&self, key: &str) -> Option<&str> {
        self.additional_information.get(key)?.as_str()
    }

    /// An integer of `additionalInformation` (a number, or digits in a string).
    pub fn info_i64(&self, key: &str) -> Option<i64> {
        match self.additional_information.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The SNS `MessageId`: the idempotency key.
    pub message_id: String,
    /// From `MessageAttributes.eventType`, else `Message.eventType`.
    pub event_type: String,
    pub event: DomainEvent,
    /// When SNS published the message: the time decisions read, so that a redelivery on
    /// another day decides as the first delivery did.
    pub published_at: Option<DateTime<FixedOffset>>,
}

impl Envelope {
    /// Parses an SNS notification body.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let notification: Notification =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Notification(e.to_string()))?;
        let event: DomainEvent = serde_json::from_str(&notification.message)
            .map_err(|e| EnvelopeError::Message(e.to_string()))?;
        let event_type = notification
            .attributes
            .get("eventType")
            .and_then(|a| a.value.clone())
            .or_else(|| event.event_type.clone())
            .ok_or(EnvelopeError::NoEventType)?;
        Ok(Self {
            message_id: notification.message_id,
            event_type,
            event,
            published_at: notification.timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/upstream");
        let mut files = Vec::new();
        for integration in std::fs::read_dir(root).unwrap() {
            let dir = integration.unwrap().path().join("messages");
            let Ok(messages) = std::fs::read_dir(dir) else {
                continue; // an integration without messages (API only)
            };
            for file in messages {
                let path = file.unwrap().path();
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_upstream_example_message_parses() {
        let files = fixtures();
        assert!(files.len() > 40, "the shared fixtures are there");
        for (path, body) in files {
            let envelope = Envelope::parse(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!envelope.message_id.is_empty(), "{path}");
            assert!(!envelope.event_type.is_empty(), "{path}");
        }
    }

    #[test]
    fn reads_the_person_and_additional_information() {
        let body = br#"{"Type":"Notification","MessageId":"m1","Message":"{\"eventType\":\"x.y\",\"additionalInformation\":{\"deliusAppointmentId\":\"42\"},\"personReference\":{\"identifiers\":[{\"type\":\"NOMS\",\"value\":\"A1234BC\"},{\"type\":\"CRN\",\"value\":\"X123456\"}]}}"}"#;
        let envelope = Envelope::parse(body).unwrap();
        assert_eq!(
            envelope.event_type, "x.y",
            "falls back to Message.eventType"
        );
        assert_eq!(envelope.event.crn(), Some("X123456"));
        assert_eq!(envelope.event.noms_number(), Some("A1234BC"));
        assert_eq!(envelope.event.info_i64("deliusAppointmentId"), Some(42));
    }

    #[test]
    fn null_additional_information_is_empty() {
        let body = br#"{"MessageId":"m","Message":"{\"eventType\":\"a\",\"additionalInformation\":null}"}"#;
        assert!(Envelope::parse(body)
            .unwrap()
            .event
            .additional_information
            .is_empty());
    }

    #[test]
    fn bad_bodies_are_named() {
        assert!(matches!(
            Envelope::parse(b"not json"),
            Err(EnvelopeError::Notification(_))
        ));
        assert!(matches!(
            Envelope::parse(br#"{"MessageId":"m","Message":"not json"}"#),
            Err(EnvelopeError::Message(_))
        ));
        assert_eq!(
            Envelope::parse(br#"{"MessageId":"m","Message":"{}"}"#),
            Err(EnvelopeError::NoEventType)
        );
    }
}
