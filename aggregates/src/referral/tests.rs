//! Behaviour of `Referral`: the NSI, its manager, history and contacts; idempotent restarts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn referral_id() -> Uuid {
    Uuid::parse_str("68df9f6c-3fcb-4ec6-8fcf-96551cd9b080").unwrap()
}

fn start(contract_type: &str, notes: &str, hour: u32) -> Timed<ReferralCommand> {
    Timed::new(
        Utc.with_ymd_and_hms(2023, 6, 5, 9, 0, 0).unwrap(),
        ReferralCommand::Start(Box::new(StartReferral {
            referral_id: referral_id(),
            started_at: Utc.with_ymd_and_hms(2023, 6, 1, hour, 30, 0).unwrap(),
            contract_type: contract_type.into(),
            notes: notes.into(),
            sentence: SentenceFacts {
                offender_id: 100,
                crn: "T140223".into(),
                event_id: 101,
                rar_requirement_id: Some(103),
            },
        })),
    )
}

async fn started() -> Vec<ReferralEvent> {
    let mut events = Vec::new();
    let mut referral = Referral::default();
    let sink = EventSink::default();
    referral
        .handle(start("ACC", "Referral notes", 10), &services(), &sink)
        .await
        .unwrap();
    events.extend(sink.collect().await);
    events
}

#[tokio::test]
async fn starting_creates_the_nsi_with_manager_history_and_contacts() {
    let events = started().await;
    insta::assert_json_snapshot!("referral_started", events);
}

#[tokio::test]
async fn repeating_the_same_start_changes_nothing() {
    TestFramework::<Referral>::with(services())
        .given(started().await)
        .when_async(start("ACC", "Referral notes", 10))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn changed_notes_and_start_overwrite_the_nsi() {
    TestFramework::<Referral>::with(services())
        .given(started().await)
        .when_async(start("ACC", "New notes", 11))
        .await
        .then_expect_events(vec![
            ReferralEvent::ReferralNotesChanged {
                nsi_id: 10_000_000,
                notes: "New notes".into(),
            },
            ReferralEvent::ReferralStartChanged {
                nsi_id: 10_000_000,
                actual_start_date: Utc.with_ymd_and_hms(2023, 6, 1, 11, 30, 0).unwrap(),
            },
        ]);
}

#[tokio::test]
async fn an_unknown_contract_type_is_rejected() {
    TestFramework::<Referral>::with(services())
        .given_no_previous_events()
        .when_async(start("XYZ", "n", 10))
        .await
        .then_expect_error(ReferralError::UnknownContractType("XYZ".into()));
}

#[tokio::test]
async fn a_referral_belongs_to_one_person() {
    let mut other = start("ACC", "Referral notes", 10);
    let ReferralCommand::Start(s) = &mut other.command;
    s.sentence.crn = "X000001".into();
    TestFramework::<Referral>::with(services())
        .given(started().await)
        .when_async(other)
        .await
        .then_expect_error(ReferralError::OtherPerson {
            urn: "urn:hmpps:interventions-referral:68df9f6c-3fcb-4ec6-8fcf-96551cd9b080".into(),
            crn: "X000001".into(),
        });
}

#[test]
fn contract_types_map_to_nsi_types() {
    assert_eq!(nsi_type("ACC"), Some("CRS01"));
    assert_eq!(nsi_type("DNR-SW"), Some("CRS04"));
    assert_eq!(nsi_type("FBD-NW"), Some("CRS08"));
    assert_eq!(nsi_type("WSM"), Some("CRS07"));
    assert_eq!(nsi_type("ZZZ"), None);
}
