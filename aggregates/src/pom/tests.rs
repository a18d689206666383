//! Behaviour of `PomAllocation` baselines.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn baseline(offender_id: i64, handover: NaiveDate) -> PomBaseline {
    PomBaseline {
        offender_id,
        prison_managers: vec![],
        responsible_officers: vec![],
        key_dates: vec![KeyDate {
            key_date_id: 4,
            custody_id: 7,
            key_date_type_code: "POM2".into(),
            key_date: handover,
        }],
    }
}

fn record(b: PomBaseline) -> Timed<PomCommand> {
    Timed::new(
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap(),
        PomCommand::RecordBaseline(Box::new(b)),
    )
}

fn recorded(b: PomBaseline) -> PomEvent {
    PomEvent::PomBaselineRecorded {
        baseline: Box::new(b),
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

#[tokio::test]
async fn records_changes_and_ignores_repeats() {
    TestFramework::<PomAllocation>::with(services())
        .given(vec![recorded(baseline(1, day(1)))])
        .when_async(record(baseline(1, day(1))))
        .await
        .then_expect_events(vec![]);
    TestFramework::<PomAllocation>::with(services())
        .given(vec![recorded(baseline(1, day(1)))])
        .when_async(record(baseline(1, day(2))))
        .await
        .then_expect_events(vec![recorded(baseline(1, day(2)))]);
}

#[tokio::test]
async fn belongs_to_one_offender() {
    TestFramework::<PomAllocation>::with(services())
        .given(vec![recorded(baseline(1, day(1)))])
        .when_async(record(baseline(2, day(1))))
        .await
        .then_expect_error(PomError::OffenderChanged {
            recorded: 1,
            given: 2,
        });
}
