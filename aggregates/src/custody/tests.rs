//! Behaviour of `Custody` baselines.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
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

// ---------------------------------------------------------------- movements

use super::movement::movement_type as mt;
use super::rules::place;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn institution(code: &str, nomis: Option<&str>, area: Option<&str>) -> Institution {
    Institution {
        code: code.into(),
        description: format!("Institution {code}"),
        nomis_code: nomis.map(Into::into),
        immigration_removal_centre: code == place::IMMIGRATION_REMOVAL_CENTRE,
        secure_hospital: code == place::SECURE_HOSPITAL,
        probation_area_code: area.map(Into::into),
        prison_area_code: area.map(Into::into),
    }
}

fn reference() -> MovementReference {
    let mut institutions = vec![
        institution("WSIHMP", Some("WSI"), Some("WSI")),
        institution("SWIHMP", Some("SWI"), Some("SWI")),
    ];
    institutions.extend(place::ALL.iter().map(|c| institution(c, None, None)));
    let reason = |code: &str, description: &str| RecallReason {
        code: code.into(),
        description: description.into(),
        termination_reason_code: Some(if code == "TSH" { "THOS" } else { "TREC" }.into()),
    };
    MovementReference {
        institutions,
        recall_reasons: vec![
            reason("NN", "Notified by Custodial Establishment"),
            reason("EOTL", "End of Temporary Licence"),
            reason("TSH", "Transfer to Secure Hospital"),
            reason("IRC", "Transfer to Immigration Removal Centre"),
        ],
        descriptions: [
            ("r_release_type/ADL", "Adult Licence"),
            ("r_release_type/ECSL", "End of Custody Supervised Licence"),
            ("r_release_type/HDC", "Home Detention Curfew"),
            ("r_custodial_status/D", "In Custody"),
            ("r_custodial_status/C", "Recalled"),
            ("r_custodial_status/B", "Released - On Licence"),
            ("r_termination_reason/TREC", "Recalled"),
            ("r_transfer_reason/TWR", "Transfer Withdrawn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// In custody at WSIHMP, never released.
fn in_custody(status: &str) -> CustodyBaseline {
    CustodyBaseline {
        custody_id: 31,
        disposal_id: 11,
        event_id: 1,
        offender_id: 100,
        custodial_status_code: status.into(),
        institution_code: Some("WSIHMP".into()),
        status_change_date: Some(day(2021, 11, 1)),
        location_change_date: Some(day(2021, 11, 1)),
        releases: vec![],
        licence_conditions: vec![],
    }
}

/// Released on licence on 2021-11-04, in the community, with licence conditions.
fn on_licence() -> CustodyBaseline {
    let condition = |id: i64, category: &str, pending: bool, terminated: bool| LicenceCondition {
        lic_condition_id: id,
        main_category_code: category.into(),
        start_date: day(2021, 11, 4),
        termination_date: terminated.then(|| day(2022, 1, 10)),
        termination_reason_code: terminated.then(|| "TCOM".into()),
        pending_transfer: pending,
    };
    CustodyBaseline {
        custodial_status_code: "B".into(),
        institution_code: Some("COMMUN".into()),
        releases: vec![Release {
            release_id: 41,
            release_type_code: "ADL".into(),
            actual_release_date: day(2021, 11, 4),
            institution_code: Some("WSIHMP".into()),
            probation_area_code: Some("WSI".into()),
            recall: None,
        }],
        licence_conditions: vec![
            condition(61, "NLC5", false, false),
            condition(62, "NLC8", true, false),
            condition(63, "LAP", false, false),
            condition(64, "NLC5", false, true),
        ],
        ..in_custody("B")
    }
}

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
}

fn movement(
    direction: Direction,
    movement_type: &str,
    reason_code: &str,
    occurred_at: DateTime<Utc>,
    nomis_prison: Option<&str>,
) -> RecordMovement {
    let actions = movement::resolve(
        movement_type,
        reason_code,
        &movement::FeatureFlags::all_on(),
    )
    .unwrap()
    .actions;
    let prison_code = match nomis_prison {
        Some("WSI") => Some("WSIHMP".to_string()),
        Some("SWI") => Some("SWIHMP".to_string()),
        _ => None,
    };
    RecordMovement {
        direction,
        movement_type: movement_type.into(),
        reason_code: reason_code.into(),
        occurred_at,
        actions,
        nomis_prison_code: nomis_prison.map(Into::into),
        prison_code,
        sentence: SentenceFacts {
            disposal_date: day(2020, 6, 1),
            disposal_type_code: "SC".into(),
            first_release_date: None,
        },
        community_manager: Some(ManagerFacts {
            offender_manager_id: 81,
            staff_code: "N07A001".into(),
            team_code: "N07T01".into(),
            probation_area_code: "N07".into(),
        }),
        reference: reference(),
    }
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 7, 9, 36).unwrap()
}

fn move_command(m: RecordMovement) -> Timed<CustodyCommand> {
    Timed::new(received_at(), CustodyCommand::RecordMovement(Box::new(m)))
}

/// Applies `movements` in order to `baseline`; returns the events of each.
async fn run(
    baseline: CustodyBaseline,
    movements: Vec<RecordMovement>,
) -> (Custody, Vec<Vec<CustodyEvent>>) {
    let services = services();
    let mut custody = Custody::default();
    custody.apply(recorded(baseline));
    let mut all = Vec::new();
    for m in movements {
        let sink = EventSink::default();
        custody
            .handle(move_command(m), &services, &sink)
            .await
            .unwrap();
        all.push(sink.collect().await);
    }
    (custody, all)
}

fn names(events: &[CustodyEvent]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| match e {
            CustodyEvent::MovementActionsIgnored { ignored, .. } => ignored
                .iter()
                .map(|i| format!("ignored {}: {}", i.action, i.name))
                .collect(),
            other => vec![other.event_type()],
        })
        .collect()
}

#[tokio::test]
async fn an_admission_recalls_a_licence_and_terminates_its_conditions() {
    let (custody, events) = run(
        on_licence(),
        vec![movement(
            Direction::Received,
            mt::ADMISSION,
            "R1",
            at(2022, 5, 4),
            Some("WSI"),
        )],
    )
    .await;
    insta::assert_json_snapshot!("admission_recall", events[0]);
    assert_eq!(
        names(&events[0]),
        [
            "Recalled",
            "LicenceConditionTerminated",
            "LicenceConditionTerminated",
            "CustodialStatusChanged",
            "LocationChanged"
        ]
    );
    let current = custody.current.unwrap();
    assert_eq!(current.custodial_status_code, "D");
    assert_eq!(current.institution_code.as_deref(), Some("WSIHMP"));
    assert_eq!(
        current.releases[0]
            .recall
            .as_ref()
            .unwrap()
            .recall_reason_code,
        "NN"
    );
    // The LAP and the already terminated conditions are left alone.
    let terminated: Vec<_> = current
        .licence_conditions
        .iter()
        .map(|c| {
            (
                c.lic_condition_id,
                c.termination_reason_code.clone(),
                c.pending_transfer,
            )
        })
        .collect();
    assert_eq!(
        terminated,
        [
            (61, Some("TREC".into()), false),
            (62, Some("TREC".into()), false),
            (63, None, false),
            (64, Some("TCOM".into()), false)
        ]
    );
    // The baseline a seed compares with is unchanged.
    assert_eq!(custody.baseline.unwrap(), on_licence());
}

#[tokio::test]
async fn a_release_is_recorded_once() {
    let release = || {
        movement(
            Direction::Released,
            mt::RELEASED,
            "NCS",
            at(2022, 5, 4),
            Some("WSI"),
        )
    };
    let (custody, events) = run(in_custody("D"), vec![release(), release()]).await;
    insta::assert_json_snapshot!("release", events[0]);
    assert_eq!(
        names(&events[0]),
        ["Released", "CustodialStatusChanged", "LocationChanged"]
    );
    // The second identical release changes nothing.
    assert_eq!(
        names(&events[1]),
        [
            "ignored Release: UnableToRelease",
            "ignored UpdateStatus: PrisonerStatusCorrect",
            "ignored UpdateLocation: PrisonerLocationCorrect"
        ]
    );
    let current = custody.current.unwrap();
    assert_eq!(current.releases.len(), 1);
    assert_eq!(current.custodial_status_code, "B");
    assert_eq!(current.institution_code.as_deref(), Some("COMMUN"));
}

#[tokio::test]
async fn release_types_follow_the_reason() {
    for (code, release_type) in [("ECSL", "ECSL"), ("HD", "HDC"), ("CR", "ADL")] {
        let (custody, _) = run(
            in_custody("D"),
            vec![movement(
                Direction::Released,
                mt::RELEASED,
                code,
                at(2022, 5, 4),
                Some("WSI"),
            )],
        )
        .await;
        assert_eq!(
            custody.current.unwrap().releases[0].release_type_code,
            release_type,
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_release_before_the_latest_recall_is_ignored() {
    let mut recalled = on_licence();
    recalled.custodial_status_code = "C".into();
    recalled.releases[0].recall = Some(Recall {
        recall_id: 51,
        recall_reason_code: "NN".into(),
        recall_date: day(2023, 8, 4),
    });
    let (custody, events) = run(
        recalled.clone(),
        vec![movement(
            Direction::Released,
            mt::RELEASED,
            "NCS",
            at(2023, 8, 1),
            Some("WSI"),
        )],
    )
    .await;
    assert_eq!(
        names(&events[0]),
        [
            "ignored Release: InvalidReleaseDate",
            "ignored UpdateStatus: PrisonerStatusCorrect",
            "ignored UpdateLocation: PrisonerLocationCorrect"
        ]
    );
    assert_eq!(custody.current.unwrap(), recalled);
}

#[tokio::test]
async fn a_movement_dated_in_the_future_is_ignored() {
    let future = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
    let (custody, events) = run(
        on_licence(),
        vec![
            movement(
                Direction::Received,
                mt::ADMISSION,
                "R1",
                future,
                Some("WSI"),
            ),
            movement(
                Direction::Released,
                mt::RELEASED,
                "DEC",
                future,
                Some("WSI"),
            ),
        ],
    )
    .await;
    assert_eq!(
        names(&events[0]),
        [
            "ignored Recall: InvalidRecallDate",
            "ignored UpdateStatus: PrisonerStatusCorrect",
            "ignored UpdateLocation: PrisonerLocationCorrect"
        ]
    );
    assert_eq!(names(&events[1]), ["ignored Died: InvalidMovementDate"]);
    assert_eq!(custody.current.unwrap(), on_licence());
}

#[tokio::test]
async fn a_new_custody_is_received_without_a_recall() {
    let mut sentenced = in_custody("A");
    sentenced.institution_code = Some("UNKNOW".into());
    let (custody, events) = run(
        sentenced,
        vec![movement(
            Direction::Received,
            mt::ADMISSION,
            "N",
            at(2023, 8, 4),
            Some("WSI"),
        )],
    )
    .await;
    assert_eq!(
        names(&events[0]),
        [
            "CustodialStatusChanged",
            "LocationChanged",
            "ignored Recall: RecallNotRequired"
        ]
    );
    let CustodyEvent::CustodialStatusChanged { history, .. } = &events[0][0] else {
        panic!("status first");
    };
    assert_eq!(history.detail, "In custody ");
    assert_eq!(custody.current.unwrap().custodial_status_code, "D");
}

#[tokio::test]
async fn returns_pick_their_recall_reason() {
    let mut rotl = on_licence();
    rotl.custodial_status_code = "R".into();
    for (custody, movement_type, code, reason) in [
        (rotl.clone(), mt::TEMPORARY_ABSENCE_RETURN, "24", "EOTL"),
        (rotl.clone(), mt::TRANSFERRED, "INT", "EOTL"),
        (on_licence(), mt::TRANSFERRED, "INT", "NN"),
    ] {
        let (custody, events) = run(
            custody,
            vec![movement(
                Direction::Received,
                movement_type,
                code,
                at(2023, 8, 4),
                Some("SWI"),
            )],
        )
        .await;
        let current = custody.current.unwrap();
        assert_eq!(
            current.releases[0]
                .recall
                .as_ref()
                .unwrap()
                .recall_reason_code,
            reason,
            "{movement_type}"
        );
        let CustodyEvent::Recalled { contact, .. } = &events[0][0] else {
            panic!("recall first");
        };
        assert_eq!(
            contact.notes.as_deref().unwrap().contains(EOTL),
            reason == "EOTL"
        );
        assert_eq!(current.custodial_status_code, "D");
        assert_eq!(current.institution_code.as_deref(), Some("SWIHMP"));
    }
}

const EOTL: &str = rules::EOTL_NOTE;

#[tokio::test]
async fn special_releases_recall_a_licence_and_move_the_person() {
    for (code, reason, place, detail) in [
        ("HO", "TSH", "XXX056", "Transfer to/from Hospital"),
        (
            "DE",
            "IRC",
            "XXX054",
            "Transfer to Immigration Removal Centre",
        ),
        ("UAL", "NN", "UATLRG", "Recall added unlawfully at large "),
    ] {
        let (custody, events) = run(
            on_licence(),
            vec![movement(
                Direction::Released,
                mt::RELEASED,
                code,
                at(2023, 8, 4),
                Some("WSI"),
            )],
        )
        .await;
        assert_eq!(
            names(&events[0])
                .into_iter()
                .filter(|n| n != "LicenceConditionTerminated")
                .collect::<Vec<_>>(),
            ["Recalled", "CustodialStatusChanged", "LocationChanged"],
            "{code}"
        );
        // A release is not a reception: licence conditions are not terminated.
        assert!(!names(&events[0]).contains(&"LicenceConditionTerminated".to_string()));
        let CustodyEvent::CustodialStatusChanged { history, .. } = &events[0][1] else {
            panic!("status second");
        };
        assert_eq!(history.detail, detail);
        let CustodyEvent::LocationChanged {
            contact,
            pom_area_code,
            ..
        } = &events[0][2]
        else {
            panic!("location third");
        };
        assert_eq!(contact.as_ref().unwrap().contact_type_code, "ETCP");
        assert_eq!(pom_area_code.as_deref(), Some("WSI"));
        let current = custody.current.unwrap();
        assert_eq!(current.custodial_status_code, "C", "{code}");
        assert_eq!(current.institution_code.as_deref(), Some(place), "{code}");
        assert_eq!(
            current.releases[0]
                .recall
                .as_ref()
                .unwrap()
                .recall_reason_code,
            reason
        );
    }
}

#[tokio::test]
async fn special_releases_from_custody_only_move_the_person() {
    for (code, place) in [
        ("HQ", "XXX056"),
        ("DD", "XXX054"),
        ("ECSLIRC", "XXX054"),
        ("ETR", "XXX054"),
    ] {
        let (custody, events) = run(
            in_custody("D"),
            vec![movement(
                Direction::Released,
                mt::RELEASED,
                code,
                at(2023, 8, 4),
                Some("SWI"),
            )],
        )
        .await;
        assert_eq!(
            names(&events[0]),
            [
                "LocationChanged",
                "ignored Recall: RecallNotRequired",
                "ignored UpdateStatus: PrisonerStatusCorrect"
            ],
            "{code}"
        );
        let current = custody.current.unwrap();
        assert_eq!(current.custodial_status_code, "D");
        assert_eq!(current.institution_code.as_deref(), Some(place));
    }
}

#[tokio::test]
async fn a_death_is_noted_with_an_alert() {
    let (custody, events) = run(
        in_custody("D"),
        vec![movement(
            Direction::Released,
            mt::RELEASED,
            "DEC",
            at(2023, 2, 24),
            Some("WSI"),
        )],
    )
    .await;
    insta::assert_json_snapshot!("died", events[0]);
    assert_eq!(custody.current.unwrap(), in_custody("D"));
}

#[tokio::test]
async fn a_transfer_into_the_same_prison_changes_nothing() {
    let (_, events) = run(
        in_custody("D"),
        vec![movement(
            Direction::Received,
            mt::TRANSFERRED,
            "INT",
            at(2023, 7, 20),
            Some("WSI"),
        )],
    )
    .await;
    assert_eq!(
        names(&events[0]),
        [
            "ignored Recall: RecallNotRequired",
            "ignored UpdateStatus: PrisonerStatusCorrect",
            "ignored UpdateLocation: PrisonerLocationCorrect"
        ]
    );
}

#[tokio::test]
async fn a_movement_needs_a_recorded_custody_and_an_allocation() {
    let services = services();
    let sink = EventSink::default();
    let mut custody = Custody::default();
    let m = movement(
        Direction::Released,
        mt::RELEASED,
        "DEC",
        at(2023, 2, 24),
        None,
    );
    assert!(matches!(
        custody
            .handle(move_command(m.clone()), &services, &sink)
            .await,
        Err(CustodyError::NotRecorded { .. })
    ));
    custody.apply(recorded(in_custody("D")));
    let mut without_manager = m;
    without_manager.community_manager = None;
    let mut nowhere = in_custody("D");
    nowhere.institution_code = Some("UNKNOW".into());
    let mut custody = Custody::default();
    custody.apply(recorded(nowhere));
    assert_eq!(
        custody
            .handle(move_command(without_manager), &services, &sink)
            .await,
        Err(CustodyError::NoAllocation {
            contact_type: "DUS3".into()
        })
    );
}
