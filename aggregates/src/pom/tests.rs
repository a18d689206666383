//! Behaviour of `PomAllocation` baselines.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
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

// ---------------------------------------------------------------- auto-allocation

fn manager(id: i64, area: &str, from: DateTime<Utc>) -> PrisonManager {
    PrisonManager {
        prison_offender_manager_id: id,
        staff_code: format!("{area}ALLU"),
        team_code: format!("{area}ALL"),
        probation_area_code: area.into(),
        allocation_reason_code: Some("AUT".into()),
        allocation_date: from,
        end_date: None,
        active: true,
        email_address: None,
    }
}

fn with_managers(managers: Vec<PrisonManager>, officers: Vec<ResponsibleOfficer>) -> PomBaseline {
    PomBaseline {
        offender_id: 20,
        prison_managers: managers,
        responsible_officers: officers,
        key_dates: vec![],
    }
}

fn allocate(area: &str) -> Timed<PomCommand> {
    let at = Utc.with_ymd_and_hms(2023, 7, 20, 12, 24, 21).unwrap();
    Timed::new(
        at,
        PomCommand::AutoAllocate(Box::new(AutoAllocate {
            offender_id: 20,
            event_id: Some(21),
            probation_area_code: area.into(),
            allocation_date: at,
            names: [
                ("probation_area/WSI", "HMP Wealstun"),
                ("team/WSIALL", "Wealstun Unallocated"),
                ("staff/WSIALLU", "Unallocated Staff"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        })),
    )
}

fn jan() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 1, 0, 0).unwrap()
}

#[tokio::test]
async fn a_first_auto_allocation_goes_to_the_unallocated_staff() {
    let services = services();
    let mut pom = PomAllocation::default();
    let sink = EventSink::default();
    pom.handle(allocate("SWI"), &services, &sink).await.unwrap();
    let events = sink.collect().await;
    insta::assert_json_snapshot!("first_auto_allocation", events);
    let current = pom.current.unwrap();
    assert_eq!(current.prison_managers.len(), 1);
    assert_eq!(current.prison_managers[0].staff_code, "SWIALLU");
    assert!(pom.baseline.is_none());
}

#[tokio::test]
async fn a_transfer_ends_the_previous_pom_and_moves_the_responsible_officer() {
    let officer = ResponsibleOfficer {
        responsible_officer_id: 91,
        prison_offender_manager_id: Some(86),
        offender_manager_id: None,
        start_date: jan(),
        end_date: None,
    };
    let baseline = with_managers(vec![manager(86, "WSI", jan())], vec![officer]);
    let services = services();
    let mut pom = PomAllocation::default();
    pom.apply(recorded(baseline.clone()));
    let sink = EventSink::default();
    pom.handle(allocate("SWI"), &services, &sink).await.unwrap();
    let events = sink.collect().await;
    insta::assert_json_snapshot!("transfer_with_responsible_officer", events);
    let current = pom.current.unwrap();
    assert!(!current.prison_managers[0].active);
    assert_eq!(current.responsible_officers.len(), 2);
    assert!(current.responsible_officers[0].end_date.is_some());
    assert_eq!(
        current.responsible_officers[1].prison_offender_manager_id,
        Some(current.prison_managers[1].prison_offender_manager_id)
    );
    assert_eq!(pom.baseline.unwrap(), baseline);
}

#[tokio::test]
async fn the_same_area_is_no_change() {
    TestFramework::<PomAllocation>::with(services())
        .given(vec![recorded(with_managers(
            vec![manager(86, "SWI", jan())],
            vec![],
        ))])
        .when_async(allocate("SWI"))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn overlapping_poms_cannot_be_auto_allocated() {
    let later = Utc.with_ymd_and_hms(2023, 2, 1, 1, 0, 0).unwrap();
    TestFramework::<PomAllocation>::with(services())
        .given(vec![recorded(with_managers(
            vec![manager(86, "BIR", jan()), manager(87, "BIR", later)],
            vec![],
        ))])
        .when_async(allocate("SWI"))
        .await
        .then_expect_error(PomError::AmbiguousPrisonManager {
            ids: vec![86, 87],
            at: Utc.with_ymd_and_hms(2023, 7, 20, 12, 24, 21).unwrap(),
        });
}

#[tokio::test]
async fn a_future_pom_bounds_the_new_allocation() {
    let future = Utc.with_ymd_and_hms(2023, 9, 1, 0, 0, 0).unwrap();
    let services = services();
    let mut pom = PomAllocation::default();
    pom.apply(recorded(with_managers(
        vec![manager(88, "MDI", future)],
        vec![],
    )));
    let sink = EventSink::default();
    pom.handle(allocate("SWI"), &services, &sink).await.unwrap();
    let current = pom.current.unwrap();
    assert_eq!(current.prison_managers[1].end_date, Some(future));
}
