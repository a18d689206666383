//! Behaviour of `Diary`: booking, clashes, rescheduling, outcomes, enforcement and counts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::common::CountingIds;

fn services() -> Services {
    Services::new(Arc::new(CountingIds::default()))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 10, 9, 0, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A future appointment on 2024-01-15 at `hour`:00 UTC (GMT), 60 minutes.
fn merge(appointment: u128, hour: u32) -> MergeAppointment {
    MergeAppointment {
        offender_id: 100,
        referral: ReferralFacts {
            urn: "urn:hmpps:interventions-referral:00000000-0000-0000-0000-000000000001".into(),
            nsi_id: 500,
            event_id: 101,
            rar_requirement_id: Some(103),
        },
        event: EventFacts {
            event_id: 101,
            disposal_date: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            breach_end: None,
            ftc_limit: Some(0),
        },
        appointment_id: id(appointment),
        referral_reference: "FE4536C".into(),
        start: Utc.with_ymd_and_hms(2024, 1, 15, hour, 0, 0).unwrap(),
        duration_minutes: 60,
        notes: Some("Session notes".into()),
        office_location_code: Some("CRS0001".into()),
        counts_towards_rar: true,
        outcome: None,
        previous_id: None,
        delius_id: None,
        reschedule_requested_by: None,
    }
}

fn command(m: MergeAppointment) -> Timed<DiaryCommand> {
    Timed::new(now(), DiaryCommand::MergeAppointment(Box::new(m)))
}

/// Runs commands in order on one diary, returning each step's events.
async fn run(commands: Vec<MergeAppointment>) -> (Diary, Vec<Result<Vec<DiaryEvent>, DiaryError>>) {
    let services = services();
    let mut diary = Diary::default();
    let mut results = Vec::new();
    for m in commands {
        let sink = EventSink::default();
        let result = diary.handle(command(m), &services, &sink).await;
        let events = sink.collect().await;
        results.push(result.map(|()| events));
    }
    (diary, results)
}

fn outcome(
    attended: Attended,
    happened: Option<bool>,
    reason: Option<NoSessionReason>,
    notify: bool,
) -> OutcomeInput {
    OutcomeInput {
        attended,
        did_session_happen: happened,
        no_session_reason: reason,
        notify,
    }
}

#[tokio::test]
async fn books_a_future_appointment_with_its_urn() {
    let (_, results) = run(vec![merge(1, 10)]).await;
    insta::assert_json_snapshot!("appointment_booked", results[0].as_ref().unwrap());
}

#[tokio::test]
async fn the_same_merge_again_changes_nothing() {
    let (_, results) = run(vec![merge(1, 10), merge(1, 10)]).await;
    assert_eq!(results[1], Ok(vec![]));
}

#[tokio::test]
async fn a_clashing_future_appointment_is_refused() {
    let mut overlapping = merge(2, 10);
    overlapping.start = Utc.with_ymd_and_hms(2024, 1, 15, 10, 59, 0).unwrap();
    let mut adjacent = merge(3, 11);
    adjacent.start = Utc.with_ymd_and_hms(2024, 1, 15, 11, 0, 0).unwrap();
    let (_, results) = run(vec![merge(1, 10), overlapping, adjacent]).await;
    assert_eq!(results[1], Err(DiaryError::AppointmentClash));
    assert!(results[2].is_ok(), "back-to-back appointments do not clash");
}

#[tokio::test]
async fn a_past_appointment_needs_an_outcome() {
    let mut past = merge(1, 10);
    past.start = Utc.with_ymd_and_hms(2024, 1, 9, 10, 0, 0).unwrap();
    TestFramework::<Diary>::with(services())
        .given_no_previous_events()
        .when_async(command(past))
        .await
        .then_expect_error(DiaryError::PastAppointmentWithoutOutcome);
}

#[tokio::test]
async fn rescheduling_at_the_persons_request() {
    let mut moved = merge(1, 14);
    moved.reschedule_requested_by = Some("Person on Probation".into());
    let (diary, results) = run(vec![merge(1, 10), moved]).await;
    insta::assert_json_snapshot!("rescheduled_pop_request", results[1].as_ref().unwrap());
    let old = diary.entries.values().next().unwrap();
    assert_eq!(
        old.outcome_code.as_deref(),
        Some(outcome::RESCHEDULED_POP_REQUEST)
    );
    assert_eq!(old.attended, Some(false));
    assert_eq!(old.contact.rar_activity, Some(false));
}

#[tokio::test]
async fn rescheduling_by_the_provider_with_an_outcome() {
    let mut moved = merge(2, 8);
    moved.previous_id = Some(id(1));
    moved.start = Utc.with_ymd_and_hms(2024, 1, 9, 8, 0, 0).unwrap();
    moved.duration_minutes = 30;
    moved.reschedule_requested_by = Some("Service Provider".into());
    moved.outcome = Some(outcome(Attended::Yes, Some(true), None, false));
    let (diary, results) = run(vec![merge(1, 10), moved]).await;
    insta::assert_json_snapshot!("rescheduled_with_outcome", results[1].as_ref().unwrap());
    let new = diary.by_reference(&appointment_urn(id(2))).unwrap();
    assert_eq!(new.attended, Some(true));
    assert_eq!(new.contact.rar_activity, Some(true));
}

#[tokio::test]
async fn created_with_an_unacceptable_no_session_outcome() {
    let mut past = merge(1, 10);
    past.start = Utc.with_ymd_and_hms(2024, 1, 9, 10, 0, 0).unwrap();
    past.outcome = Some(outcome(
        Attended::Late,
        Some(false),
        Some(NoSessionReason::PopUnacceptable),
        false,
    ));
    let (_, results) = run(vec![past]).await;
    insta::assert_json_snapshot!(
        "created_with_failure_to_comply",
        results[0].as_ref().unwrap()
    );
}

#[tokio::test]
async fn enforcement_happens_once_per_appointment_and_review_once_per_breach() {
    let mut first = merge(1, 10);
    first.start = Utc.with_ymd_and_hms(2024, 1, 8, 10, 0, 0).unwrap();
    first.outcome = Some(outcome(Attended::No, None, None, false));
    let mut second = first.clone();
    second.appointment_id = id(2);
    second.start = Utc.with_ymd_and_hms(2024, 1, 9, 10, 0, 0).unwrap();
    let (diary, results) = run(vec![first.clone(), second, first]).await;
    let kinds = |r: &Result<Vec<DiaryEvent>, DiaryError>| -> Vec<String> {
        r.as_ref().unwrap().iter().map(|e| e.event_type()).collect()
    };
    assert_eq!(
        kinds(&results[0]),
        [
            "AppointmentBooked",
            "AppointmentOutcomeRecorded",
            "EnforcementRecorded",
            "FailureToComplyCounted",
            "EnforcementReviewRequested",
            "RarCountUpdated"
        ]
    );
    // The second failure counts, but a review is already outstanding.
    assert_eq!(
        kinds(&results[1]),
        [
            "AppointmentBooked",
            "AppointmentOutcomeRecorded",
            "EnforcementRecorded",
            "FailureToComplyCounted"
        ]
    );
    assert_eq!(diary.ftc_counts.get(&101), Some(&2));
    assert!(
        results[2].as_ref().unwrap().is_empty(),
        "repeating an outcome changes nothing"
    );
}

#[tokio::test]
async fn an_unmapped_outcome_writes_nothing() {
    let mut past = merge(1, 10);
    past.start = Utc.with_ymd_and_hms(2024, 1, 9, 10, 0, 0).unwrap();
    past.outcome = Some(outcome(Attended::Yes, Some(false), None, false));
    TestFramework::<Diary>::with(services())
        .given_no_previous_events()
        .when_async(command(past))
        .await
        .then_expect_error(DiaryError::OutcomeScenarioNotMapped);
}

#[test]
fn outcome_mapping() {
    use Attended::*;
    use NoSessionReason::*;
    let code = |o: OutcomeInput| o.delius_outcome().map(|d| (d.code, d.session_happened));
    assert_eq!(
        code(outcome(Yes, Some(true), None, false)),
        Ok(("ATTC", true))
    );
    assert_eq!(
        code(outcome(Late, Some(true), None, true)),
        Ok(("AFTC", true))
    );
    assert_eq!(
        code(outcome(No, Some(false), None, false)),
        Ok(("AFTA", false))
    );
    assert_eq!(
        code(outcome(Yes, Some(false), Some(PopUnacceptable), false)),
        Ok(("AFTC", false))
    );
    assert_eq!(
        code(outcome(Yes, Some(false), Some(PopAcceptable), false)),
        Ok(("AKPT", false))
    );
    assert_eq!(
        code(outcome(Late, None, Some(Logistics), false)),
        Ok(("SHOM", false))
    );
    assert_eq!(code(outcome(Yes, None, None, true)), Ok(("AFTC", true)));
    assert_eq!(
        code(outcome(Yes, Some(false), None, false)),
        Err(DiaryError::OutcomeScenarioNotMapped)
    );
}

#[test]
fn hours_are_rounded_half_up_to_two_decimals() {
    assert_eq!(hours_credited(45), "0.75");
    assert_eq!(hours_credited(30), "0.50");
    assert_eq!(hours_credited(20), "0.33");
    assert_eq!(hours_credited(1), "0.02");
    assert_eq!(hours_credited(125), "2.08");
}

#[test]
fn minutes_for_hours_inverts_hours_credited() {
    for minutes in 0..=24 * 60 * 3 {
        assert_eq!(
            minutes_for_hours(&hours_credited(minutes)),
            Some(minutes),
            "{minutes} minutes"
        );
    }
    assert_eq!(minutes_for_hours("1.5"), Some(90));
    assert_eq!(minutes_for_hours("2"), Some(120));
    // No whole minute shows as 0.01 hours: the nearest one.
    assert_eq!(minutes_for_hours("0.01"), Some(1));
    for bad in ["", ".5", "1.", "-1.00", "1.234", "a.bc", "1,50"] {
        assert_eq!(minutes_for_hours(bad), None, "{bad:?}");
    }
}

fn feedback(urn: String, delius_id: Option<i64>, o: OutcomeInput) -> Timed<DiaryCommand> {
    let m = merge(1, 10);
    Timed::new(
        now(),
        DiaryCommand::RecordFeedback(Box::new(RecordFeedback {
            referral: m.referral,
            event: m.event,
            appointment_urn: urn,
            delius_id,
            outcome: o,
            notes: "Session Feedback Recorded for Accommodation Referral FE4536C with Prime Provider P\nhttps://ui/url".into(),
        })),
    )
}

async fn booked_diary() -> (Diary, Services) {
    let services = services();
    let mut diary = Diary::default();
    let mut past = merge(1, 10);
    past.start = Utc.with_ymd_and_hms(2024, 1, 11, 10, 0, 0).unwrap();
    let sink = EventSink::default();
    diary.handle(command(past), &services, &sink).await.unwrap();
    (diary, services)
}

#[tokio::test]
async fn feedback_finds_the_appointment_by_urn_then_by_delius_id() {
    let (mut diary, services) = booked_diary().await;
    let attended = outcome(Attended::Yes, Some(true), None, false);
    let sink = EventSink::default();
    diary
        .handle(
            feedback(appointment_urn(id(1)), None, attended.clone()),
            &services,
            &sink,
        )
        .await
        .unwrap();
    let events = sink.collect().await;
    insta::assert_json_snapshot!("feedback_recorded", events);
    // The same feedback again changes nothing.
    let sink = EventSink::default();
    diary
        .handle(
            feedback(appointment_urn(id(1)), None, attended.clone()),
            &services,
            &sink,
        )
        .await
        .unwrap();
    assert!(sink.collect().await.is_empty());
    // Unknown URN but a known Delius id.
    let sink = EventSink::default();
    diary
        .handle(
            feedback(
                appointment_urn(id(9)),
                Some(10_000_000),
                outcome(Attended::No, Some(false), None, false),
            ),
            &services,
            &sink,
        )
        .await
        .unwrap();
    assert!(!sink.collect().await.is_empty());
}

#[tokio::test]
async fn feedback_for_an_unknown_appointment_is_rejected() {
    let (diary, services) = booked_diary().await;
    let mut diary = diary;
    let sink = EventSink::default();
    let result = diary
        .handle(
            feedback(
                appointment_urn(id(9)),
                Some(999),
                outcome(Attended::Yes, Some(true), None, false),
            ),
            &services,
            &sink,
        )
        .await;
    assert_eq!(
        result,
        Err(DiaryError::AppointmentNotFound {
            urn: appointment_urn(id(9)),
            delius_id: Some(999)
        })
    );
}

#[tokio::test]
async fn ending_a_referral_withdraws_only_its_future_appointments_without_outcome() {
    let mut past = merge(2, 10);
    past.start = Utc.with_ymd_and_hms(2024, 1, 9, 10, 0, 0).unwrap();
    past.outcome = Some(outcome(Attended::Yes, Some(true), None, false));
    let mut other_referral = merge(3, 14);
    other_referral.referral.nsi_id = 501;
    let (mut diary, _) = run(vec![merge(1, 10), past, other_referral]).await;
    let sink = EventSink::default();
    diary
        .handle(
            Timed::new(
                now(),
                DiaryCommand::WithdrawFutureAppointments(WithdrawFutureAppointments {
                    nsi_id: 500,
                }),
            ),
            &services(),
            &sink,
        )
        .await
        .unwrap();
    let events = sink.collect().await;
    assert_eq!(
        events,
        vec![DiaryEvent::AppointmentOutcomeRecorded {
            contact_id: 10_000_000,
            outcome_code: "APPW".into(),
            attended: Some(false),
            complied: Some(true),
            minutes_credited: None,
            rar_activity: false,
        }]
    );
}
