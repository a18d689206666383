//! Event upcasters. Event type names and payloads are a public, versioned contract: a changed
//! payload gets a new `event_version` and an upcaster here, registered on every reader of the
//! log (the command bus's event stores and the projectors). Stored events are never rewritten:
//! a log holding version-1 events replays into the current shape.
//!
//! | event | from | to | change |
//! |---|---|---|---|
//! | `AppointmentOutcomeRecorded` | 1.0 | 2.0 | `hours_credited` ("1.50", rounded hours) → `minutes_credited` (90, whole minutes) |

use std::sync::LazyLock;

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::Value;

use crate::diary::{minutes_for_hours, OUTCOME_RECORDED_VERSION};

static ALL: LazyLock<Vec<Box<dyn EventUpcaster>>> = LazyLock::new(build);

/// Every upcaster, in the order they must be folded, built anew (for a reader that takes
/// them by value, as a cqrs-es `PersistedEventStore` does).
pub fn build() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "AppointmentOutcomeRecorded",
        OUTCOME_RECORDED_VERSION,
        Box::new(outcome_recorded_v2),
    ))]
}

/// Every upcaster, in the order they must be folded, built once.
pub fn all() -> &'static [Box<dyn EventUpcaster>] {
    &ALL
}

/// `AppointmentOutcomeRecorded` 1.0 → 2.0. A payload that is not the expected shape is
/// returned unchanged, so that decoding reports it with its position instead of guessing.
fn outcome_recorded_v2(mut payload: Value) -> Value {
    let Some(fields) = payload
        .get_mut("AppointmentOutcomeRecorded")
        .and_then(Value::as_object_mut)
    else {
        return payload;
    };
    let Some(hours) = fields.remove("hours_credited") else {
        return payload;
    };
    let minutes = match &hours {
        Value::Null => Value::Null,
        Value::String(text) => match minutes_for_hours(text) {
            Some(minutes) => Value::from(minutes),
            None => {
                fields.insert("hours_credited".into(), hours);
                return payload;
            }
        },
        _ => {
            fields.insert("hours_credited".into(), hours);
            return payload;
        }
    };
    fields.insert("minutes_credited".into(), minutes);
    payload
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    use super::*;
    use crate::diary::DiaryEvent;

    fn stored(event_type: &str, version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent::new(
            "X123456".into(),
            3,
            "Diary".into(),
            event_type.into(),
            version.into(),
            payload,
            Value::Null,
        )
    }

    fn upcast(mut event: SerializedEvent) -> SerializedEvent {
        for upcaster in all() {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        event
    }

    #[test]
    fn outcome_recorded_v1_reads_as_the_current_shape() {
        let v1 = stored(
            "AppointmentOutcomeRecorded",
            "1.0",
            json!({"AppointmentOutcomeRecorded": {
                "contact_id": 10_000_001, "outcome_code": "ATTC", "attended": true,
                "complied": true, "hours_credited": "1.50", "rar_activity": true
            }}),
        );
        let event = upcast(v1);
        assert_eq!(event.event_version, "2.0.0");
        let decoded: DiaryEvent = serde_json::from_value(event.payload).unwrap();
        assert_eq!(
            decoded,
            DiaryEvent::AppointmentOutcomeRecorded {
                contact_id: 10_000_001,
                outcome_code: "ATTC".into(),
                attended: Some(true),
                complied: Some(true),
                minutes_credited: Some(90),
                rar_activity: true,
            }
        );
    }

    #[test]
    fn outcome_recorded_v1_without_hours() {
        let event = upcast(stored(
            "AppointmentOutcomeRecorded",
            "1.0",
            json!({"AppointmentOutcomeRecorded": {
                "contact_id": 1, "outcome_code": "AFTC", "attended": true,
                "complied": false, "hours_credited": null, "rar_activity": false
            }}),
        ));
        assert_eq!(
            event.payload["AppointmentOutcomeRecorded"]["minutes_credited"],
            Value::Null
        );
        assert!(event.payload["AppointmentOutcomeRecorded"]
            .get("hours_credited")
            .is_none());
    }

    #[test]
    fn current_versions_and_other_events_are_left_alone() {
        let v2 = json!({"AppointmentOutcomeRecorded": {
            "contact_id": 1, "outcome_code": "ATTC", "attended": true,
            "complied": true, "minutes_credited": 45, "rar_activity": false
        }});
        let event = upcast(stored("AppointmentOutcomeRecorded", "2.0", v2.clone()));
        assert_eq!((event.event_version.as_str(), &event.payload), ("2.0", &v2));
        let other = json!({"RarCountUpdated": {"nsi_id": 1, "rar_count": 2}});
        let event = upcast(stored("RarCountUpdated", "1.0", other.clone()));
        assert_eq!(event.payload, other);
    }

    #[test]
    fn a_malformed_v1_payload_is_not_guessed_at() {
        let bad =
            json!({"AppointmentOutcomeRecorded": {"contact_id": 1, "hours_credited": "lots"}});
        let event = upcast(stored("AppointmentOutcomeRecorded", "1.0", bad.clone()));
        assert_eq!(event.payload, bad);
    }
}
