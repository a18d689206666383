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
    let ReferralCommand::Start(s) = &mut other.command else {
        unreachable!()
    };
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

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 6, day, hour, 0, 0).unwrap()
}

fn notify(stage: ActionPlanStage, occurred_at: DateTime<Utc>) -> Timed<ReferralCommand> {
    Timed::new(
        occurred_at,
        ReferralCommand::NotifyActionPlan(Box::new(NotifyActionPlan {
            crn: "T140223".into(),
            stage,
            occurred_at,
            contract_type_name: "Accommodation".into(),
            referral_reference: "FE4536C".into(),
            prime_provider_name: "Seetec".into(),
            url: "https://ui/action-plan".into(),
        })),
    )
}

async fn decide(
    events: Vec<ReferralEvent>,
    command: Timed<ReferralCommand>,
) -> Result<Vec<ReferralEvent>, ReferralError> {
    let mut referral = Referral::default();
    for e in events {
        referral.apply(e);
    }
    let sink = EventSink::default();
    referral.handle(command, &services(), &sink).await?;
    Ok(sink.collect().await)
}

#[tokio::test]
async fn an_action_plan_notification_is_noted_once_a_day() {
    let first = decide(
        started().await,
        notify(ActionPlanStage::Submitted, at(5, 14)),
    )
    .await
    .unwrap();
    insta::assert_json_snapshot!("action_plan_submitted", first);
    let mut history = started().await;
    history.extend(first);
    let same_day = decide(
        history.clone(),
        notify(ActionPlanStage::Submitted, at(5, 16)),
    )
    .await
    .unwrap();
    assert!(same_day.is_empty(), "not twice on one day");
    let approved = decide(
        history.clone(),
        notify(ActionPlanStage::Approved, at(5, 16)),
    )
    .await
    .unwrap();
    assert_eq!(approved.len(), 1, "approval is another notification");
    let next_day = decide(history, notify(ActionPlanStage::Submitted, at(6, 9)))
        .await
        .unwrap();
    assert_eq!(next_day.len(), 1);
}

#[tokio::test]
async fn a_notification_for_a_missing_referral_is_rejected() {
    let error = decide(vec![], notify(ActionPlanStage::Approved, at(5, 14)))
        .await
        .unwrap_err();
    assert!(matches!(error, ReferralError::NotFound { .. }));
}

fn end(end_type: EndType, report: bool) -> Timed<ReferralCommand> {
    Timed::new(
        at(24, 9),
        ReferralCommand::End(Box::new(EndReferral {
            crn: "T140223".into(),
            end_type,
            ended_at: Utc.with_ymd_and_hms(2023, 2, 23, 15, 29, 54).unwrap(),
            contract_type: "Accommodation".into(),
            reference_number: "FE4536C".into(),
            provider: "Special Provider".into(),
            ui_url: "https://ui/referral".into(),
            end_of_service_report_submitted_at: report
                .then(|| Utc.with_ymd_and_hms(2023, 2, 23, 15, 29, 54).unwrap()),
        })),
    )
}

#[tokio::test]
async fn ending_completes_the_nsi_with_its_outcome_and_report_note() {
    let ended = decide(started().await, end(EndType::PrematurelyEnded, true))
        .await
        .unwrap();
    insta::assert_json_snapshot!("referral_ended", ended);
    let mut history = started().await;
    history.extend(ended);
    let again = decide(history.clone(), end(EndType::PrematurelyEnded, true))
        .await
        .unwrap();
    assert!(again.is_empty(), "ending twice changes nothing");
    let other_outcome = decide(history, end(EndType::Completed, true))
        .await
        .unwrap();
    let kinds: Vec<String> = other_outcome.iter().map(|e| e.event_type()).collect();
    assert_eq!(kinds, ["ReferralOutcomeSet"], "only the outcome changes");
}
