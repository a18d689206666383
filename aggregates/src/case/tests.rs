//! Behaviour of `Case`: baselines are recorded once, re-recorded on change, and never move
//! a CRN to another offender id.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn baseline(offender_id: i64, surname: &str) -> CaseBaseline {
    CaseBaseline {
        person: Person {
            offender_id,
            crn: "X123456".into(),
            noms_number: Some("A1234BC".into()),
            first_name: "Jo".into(),
            second_name: None,
            surname: surname.into(),
            date_of_birth: date(1980, 2, 3),
            gender: None,
            current_tier: None,
            email: None,
            telephone: None,
            mobile: None,
            soft_deleted: false,
        },
        community_manager: None,
        events: vec![SentenceEvent {
            event_id: 11,
            event_number: "1".into(),
            active: true,
            referral_date: None,
            ftc_count: 0,
            in_breach: false,
            breach_end: None,
            first_release_date: None,
            conviction_date: None,
            main_offence: None,
            disposal: None,
        }],
    }
}

fn record(b: CaseBaseline) -> Timed<CaseCommand> {
    Timed::new(
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap(),
        CaseCommand::RecordBaseline(Box::new(b)),
    )
}

fn recorded(b: CaseBaseline) -> CaseEvent {
    CaseEvent::CaseBaselineRecorded {
        baseline: Box::new(b),
    }
}

#[tokio::test]
async fn records_the_first_baseline() {
    TestFramework::<Case>::with(services())
        .given_no_previous_events()
        .when_async(record(baseline(1, "Smith")))
        .await
        .then_expect_events(vec![recorded(baseline(1, "Smith"))]);
}

#[tokio::test]
async fn the_same_baseline_again_changes_nothing() {
    TestFramework::<Case>::with(services())
        .given(vec![recorded(baseline(1, "Smith"))])
        .when_async(record(baseline(1, "Smith")))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_changed_baseline_is_recorded() {
    TestFramework::<Case>::with(services())
        .given(vec![recorded(baseline(1, "Smith"))])
        .when_async(record(baseline(1, "Smyth")))
        .await
        .then_expect_events(vec![recorded(baseline(1, "Smyth"))]);
}

#[tokio::test]
async fn an_offender_id_never_changes() {
    TestFramework::<Case>::with(services())
        .given(vec![recorded(baseline(1, "Smith"))])
        .when_async(record(baseline(2, "Smith")))
        .await
        .then_expect_error(CaseError::OffenderIdChanged {
            crn: "X123456".into(),
            recorded: 1,
            given: 2,
        });
}
