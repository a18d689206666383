//! Behaviour of `Custody` baselines.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn baseline(disposal_id: i64, status: &str) -> CustodyBaseline {
    CustodyBaseline {
        custody_id: 7,
        disposal_id,
        event_id: 3,
        offender_id: 1,
        custodial_status_code: status.into(),
        institution_code: Some("WSIHMP".into()),
        status_change_date: NaiveDate::from_ymd_opt(2022, 1, 1),
        location_change_date: None,
        releases: vec![],
        licence_conditions: vec![],
    }
}

fn record(b: CustodyBaseline) -> Timed<CustodyCommand> {
    Timed::new(
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap(),
        CustodyCommand::RecordBaseline(Box::new(b)),
    )
}

fn recorded(b: CustodyBaseline) -> CustodyEvent {
    CustodyEvent::CustodyBaselineRecorded {
        baseline: Box::new(b),
    }
}

#[tokio::test]
async fn records_then_ignores_the_same_baseline() {
    TestFramework::<Custody>::with(services())
        .given_no_previous_events()
        .when_async(record(baseline(5, "A")))
        .await
        .then_expect_events(vec![recorded(baseline(5, "A"))]);
    TestFramework::<Custody>::with(services())
        .given(vec![recorded(baseline(5, "A"))])
        .when_async(record(baseline(5, "A")))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_changed_status_is_recorded() {
    TestFramework::<Custody>::with(services())
        .given(vec![recorded(baseline(5, "A"))])
        .when_async(record(baseline(5, "B")))
        .await
        .then_expect_events(vec![recorded(baseline(5, "B"))]);
}

#[tokio::test]
async fn a_custody_never_moves_to_another_disposal() {
    TestFramework::<Custody>::with(services())
        .given(vec![recorded(baseline(5, "A"))])
        .when_async(record(baseline(6, "A")))
        .await
        .then_expect_error(CustodyError::DisposalChanged {
            custody_id: 7,
            recorded: 5,
            given: 6,
        });
}
