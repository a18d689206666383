//! Behaviour of `ReferenceData`: recording is idempotent, changes are recorded.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn team(description: &str) -> ReferenceEntry {
    ReferenceEntry::Team(Team {
        code: "N07T01".into(),
        description: description.into(),
        probation_area_code: "N07".into(),
        pdu_code: None,
        email: None,
        telephone: None,
    })
}

fn record(entry: ReferenceEntry) -> Timed<ReferenceCommand> {
    Timed::new(
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap(),
        ReferenceCommand::RecordEntry(entry),
    )
}

#[tokio::test]
async fn records_a_new_entry() {
    TestFramework::<ReferenceData>::with(services())
        .given_no_previous_events()
        .when_async(record(team("Team One")))
        .await
        .then_expect_events(vec![ReferenceEvent::ReferenceEntryRecorded {
            entry: team("Team One"),
        }]);
}

#[tokio::test]
async fn recording_the_same_entry_again_changes_nothing() {
    TestFramework::<ReferenceData>::with(services())
        .given(vec![ReferenceEvent::ReferenceEntryRecorded {
            entry: team("Team One"),
        }])
        .when_async(record(team("Team One")))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_changed_entry_is_recorded() {
    TestFramework::<ReferenceData>::with(services())
        .given(vec![ReferenceEvent::ReferenceEntryRecorded {
            entry: team("Team One"),
        }])
        .when_async(record(team("Team 1")))
        .await
        .then_expect_events(vec![ReferenceEvent::ReferenceEntryRecorded {
            entry: team("Team 1"),
        }]);
}

#[test]
fn aggregate_id_is_table_and_code() {
    assert_eq!(team("x").aggregate_id(), "team/N07T01");
}
