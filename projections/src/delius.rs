//! The Delius projector: a pure function from a decoded event to the Delius rows it writes.
//! It never reads a row, allocates an id or looks at the clock; the event carries every value.

use serde::Serialize;
use serde_json::Value;

use aggregates::case::{CaseBaseline, CaseEvent};
use aggregates::common::{Contact, ContactAlert};
use aggregates::custody::{CustodyBaseline, CustodyEvent, CustodyHistory};
use aggregates::diary::DiaryEvent;
use aggregates::pom::{PomBaseline, PomEvent};
use aggregates::reference::{ReferenceEntry, ReferenceEvent};
use aggregates::referral::ReferralEvent;

use crate::columns;
use crate::log::AnyEvent;
use crate::rows::{value, Columns, Key, RowChange};

/// The projector's name: its checkpoint row and advisory lock.
pub const NAME: &str = "delius";

/// The rows one event writes, in order.
pub fn project(event: &AnyEvent) -> Vec<RowChange> {
    match event {
        AnyEvent::Reference(event) => {
            let ReferenceEvent::ReferenceEntryRecorded { entry } = event.as_ref();
            vec![reference_entry(entry)]
        }
        AnyEvent::Case(CaseEvent::CaseBaselineRecorded { baseline }) => case_baseline(baseline),
        AnyEvent::Custody(CustodyEvent::CustodyBaselineRecorded { baseline }) => {
            custody_baseline(baseline)
        }
        AnyEvent::Custody(event) => custody(event),
        AnyEvent::Pom(PomEvent::PomBaselineRecorded { baseline }) => pom_baseline(baseline),
        AnyEvent::Pom(event) => pom(event),
        AnyEvent::Referral(event) => referral(event),
        AnyEvent::Diary(event) => diary(event),
    }
}

/// A new contact row: the contact's own columns and the defaults of everything it does not set.
fn contact(contact: &Contact) -> RowChange {
    let mut values = columns(contact);
    for (column, value) in [
        ("outcome_code", Value::Null),
        ("attended", Value::Null),
        ("complied", Value::Null),
        ("hours_credited", Value::Null),
        ("enforcement", Value::Bool(false)),
        ("latest_enforcement_action_code", Value::Null),
        ("description", Value::Null),
        ("soft_deleted", Value::Bool(false)),
    ] {
        values.insert(column, value);
    }
    RowChange::Upsert {
        table: "contact",
        key: Key::Id(contact.contact_id),
        values,
    }
}

/// A contact row with extra columns the shared `Contact` does not carry.
fn contact_with(c: &Contact, extra: Columns) -> RowChange {
    let mut change = contact(c);
    if let RowChange::Upsert { values, .. } = &mut change {
        values.extend(extra);
    }
    change
}

fn contact_alert(alert: &ContactAlert) -> RowChange {
    RowChange::Upsert {
        table: "contact_alert",
        key: Key::Id(alert.contact_alert_id),
        values: columns(alert),
    }
}

fn custody_history(custody_id: i64, offender_id: i64, history: &CustodyHistory) -> RowChange {
    RowChange::upsert(
        "custody_history",
        history.custody_history_id,
        columns!({
            "custody_id": custody_id,
            "offender_id": offender_id,
            "custody_event_type_code": history.custody_event_type_code,
            "detail": history.detail,
            "historical_date": history.historical_date,
        }),
    )
}

fn custody(event: &CustodyEvent) -> Vec<RowChange> {
    match event {
        CustodyEvent::CustodyBaselineRecorded { baseline } => custody_baseline(baseline),
        CustodyEvent::Recalled {
            offender_id,
            release_id,
            recall,
            contact: c,
            alert,
            ..
        } => vec![
            RowChange::upsert(
                "recall",
                recall.recall_id,
                columns!({
                    "release_id": release_id,
                    "offender_id": offender_id,
                    "recall_reason_code": recall.recall_reason_code,
                    "recall_date": recall.recall_date,
                }),
            ),
            contact(c),
            contact_alert(alert),
        ],
        CustodyEvent::LicenceConditionTerminated {
            lic_condition_id,
            termination_date,
            termination_reason_code,
            rejected_transfer,
            contact: c,
            ..
        } => {
            let mut values = columns!({
                "termination_date": termination_date,
                "termination_reason_code": termination_reason_code,
                "pending_transfer": false,
            });
            let mut rows = Vec::new();
            if let Some(transfer) = rejected_transfer {
                values.insert("transfer_status_code", value(&transfer.status_code));
                values.insert("transfer_decision_code", value(&transfer.decision_code));
                values.insert("transfer_reason_code", value(&transfer.reason_code));
                values.insert("transfer_status_date", value(&transfer.status_date));
                rows.push(contact_with(
                    &transfer.contact,
                    columns!({ "lic_condition_id": lic_condition_id }),
                ));
            }
            rows.insert(
                0,
                RowChange::update("licence_condition", *lic_condition_id, values),
            );
            rows.push(contact_with(
                c,
                columns!({ "lic_condition_id": lic_condition_id }),
            ));
            rows
        }
        CustodyEvent::Released {
            custody_id,
            offender_id,
            event_id,
            release,
            contact: c,
            first_release_date,
            ..
        } => {
            let mut rows = vec![
                RowChange::upsert(
                    "release",
                    release.release_id,
                    columns!({
                        "custody_id": custody_id,
                        "offender_id": offender_id,
                        "release_type_code": release.release_type_code,
                        "actual_release_date": release.actual_release_date,
                        "institution_code": release.institution_code,
                        "probation_area_code": release.probation_area_code,
                    }),
                ),
                contact(c),
            ];
            if let Some(date) = first_release_date {
                rows.push(RowChange::update(
                    "event",
                    *event_id,
                    columns!({ "first_release_date": date }),
                ));
            }
            rows
        }
        CustodyEvent::CustodialStatusChanged {
            custody_id,
            offender_id,
            custodial_status_code,
            status_change_date,
            history,
            ..
        } => vec![
            RowChange::update(
                "custody",
                *custody_id,
                columns!({
                    "custodial_status_code": custodial_status_code,
                    "status_change_date": status_change_date,
                }),
            ),
            custody_history(*custody_id, *offender_id, history),
        ],
        CustodyEvent::LocationChanged {
            custody_id,
            offender_id,
            institution_code,
            location_change_date,
            history,
            contact: c,
            ..
        } => {
            let mut rows = vec![
                RowChange::update(
                    "custody",
                    *custody_id,
                    columns!({
                        "institution_code": institution_code,
                        "location_change_date": location_change_date,
                    }),
                ),
                custody_history(*custody_id, *offender_id, history),
            ];
            rows.extend(c.iter().map(contact));
            rows
        }
        CustodyEvent::DeathRecorded {
            contact: c, alert, ..
        } => vec![contact(c), contact_alert(alert)],
        CustodyEvent::MovementActionsIgnored { .. } => Vec::new(),
    }
}

fn pom(event: &PomEvent) -> Vec<RowChange> {
    match event {
        PomEvent::PomBaselineRecorded { baseline } => pom_baseline(baseline),
        PomEvent::PrisonManagerAllocated {
            offender_id,
            manager,
            ended,
            contact: c,
            responsible_officer,
        } => {
            let mut rows = Vec::new();
            if let Some(ended) = ended {
                rows.push(RowChange::update(
                    "prison_offender_manager",
                    ended.prison_offender_manager_id,
                    columns!({ "end_date": ended.end_date, "active": false }),
                ));
            }
            let mut values = columns(manager);
            values.insert("offender_id", Value::from(*offender_id));
            rows.push(RowChange::Upsert {
                table: "prison_offender_manager",
                key: Key::Id(manager.prison_offender_manager_id),
                values,
            });
            rows.push(contact(c));
            if let Some(transfer) = responsible_officer {
                rows.push(RowChange::update(
                    "responsible_officer",
                    transfer.ended_responsible_officer_id,
                    columns!({ "end_date": transfer.end_date }),
                ));
                let mut values = columns(&transfer.officer);
                values.insert("offender_id", Value::from(*offender_id));
                rows.push(RowChange::Upsert {
                    table: "responsible_officer",
                    key: Key::Id(transfer.officer.responsible_officer_id),
                    values,
                });
                rows.push(contact(&transfer.contact));
            }
            rows
        }
    }
}

fn referral(event: &ReferralEvent) -> Vec<RowChange> {
    match event {
        ReferralEvent::ReferralStarted {
            nsi_id,
            external_reference,
            offender_id,
            event_id,
            requirement_id,
            nsi_type_code,
            referral_date,
            started_at,
            status_code,
            notes,
            manager,
            history,
            contacts,
            ..
        } => {
            let mut rows = vec![
                RowChange::upsert(
                    "nsi",
                    *nsi_id,
                    columns!({
                        "offender_id": offender_id,
                        "event_id": event_id,
                        "requirement_id": requirement_id,
                        "nsi_type_code": nsi_type_code,
                        "nsi_status_code": status_code,
                        "nsi_status_date": started_at,
                        "nsi_outcome_code": Value::Null,
                        "referral_date": referral_date,
                        "actual_start_date": started_at,
                        "actual_end_date": Value::Null,
                        "active": true,
                        "intended_provider_code": manager.probation_area_code,
                        "external_reference": external_reference,
                        "notes": notes,
                        "rar_count": Value::Null,
                        "soft_deleted": false,
                    }),
                ),
                RowChange::upsert(
                    "nsi_manager",
                    manager.nsi_manager_id,
                    columns!({
                        "nsi_id": nsi_id,
                        "probation_area_code": manager.probation_area_code,
                        "team_code": manager.team_code,
                        "staff_code": manager.staff_code,
                        "start_date": manager.start_date,
                        "end_date": Value::Null,
                    }),
                ),
                status_history(*nsi_id, history),
            ];
            rows.extend(contacts.iter().map(contact));
            rows
        }
        ReferralEvent::ReferralNotesChanged { nsi_id, notes } => {
            vec![RowChange::update(
                "nsi",
                *nsi_id,
                columns!({ "notes": notes }),
            )]
        }
        ReferralEvent::ReferralStartChanged {
            nsi_id,
            actual_start_date,
        } => vec![RowChange::update(
            "nsi",
            *nsi_id,
            columns!({ "actual_start_date": actual_start_date }),
        )],
        ReferralEvent::ReferralStatusChanged {
            nsi_id,
            status_code,
            status_date,
            history,
            contact: status_contact,
        } => vec![
            RowChange::update(
                "nsi",
                *nsi_id,
                columns!({ "nsi_status_code": status_code, "nsi_status_date": status_date }),
            ),
            status_history(*nsi_id, history),
            contact(status_contact),
        ],
        ReferralEvent::ReferralNoteAdded { contact: note } => vec![contact(note)],
        ReferralEvent::ReferralOutcomeSet {
            nsi_id,
            outcome_code,
            contact: terminated,
        } => vec![
            RowChange::update(
                "nsi",
                *nsi_id,
                columns!({ "nsi_outcome_code": outcome_code }),
            ),
            contact(terminated),
        ],
        ReferralEvent::ReferralEnded {
            nsi_id,
            actual_end_date,
        } => vec![RowChange::update(
            "nsi",
            *nsi_id,
            columns!({ "actual_end_date": actual_end_date, "active": false }),
        )],
    }
}

fn status_history(nsi_id: i64, history: &aggregates::referral::StatusHistory) -> RowChange {
    RowChange::upsert(
        "nsi_status_history",
        history.nsi_status_history_id,
        columns!({
            "nsi_id": nsi_id,
            "nsi_status_code": history.nsi_status_code,
            "change_date": history.change_date,
            "notes": Value::Null,
        }),
    )
}

fn diary(event: &DiaryEvent) -> Vec<RowChange> {
    match event {
        DiaryEvent::AppointmentBooked { contact: c, .. } => vec![contact(c)],
        DiaryEvent::EnforcementReviewRequested { contact: c } => vec![contact(c)],
        DiaryEvent::AppointmentDetailsChanged {
            contact_id,
            office_location_code,
            notes,
            external_reference,
        } => vec![RowChange::update(
            "contact",
            *contact_id,
            columns!({
                "office_location_code": office_location_code,
                "notes": notes,
                "external_reference": external_reference,
            }),
        )],
        DiaryEvent::AppointmentOutcomeRecorded {
            contact_id,
            outcome_code,
            attended,
            complied,
            minutes_credited,
            rar_activity,
        } => vec![RowChange::update(
            "contact",
            *contact_id,
            columns!({
                "outcome_code": outcome_code,
                "attended": attended,
                "complied": complied,
                "hours_credited": minutes_credited.map(aggregates::diary::hours_credited),
                "rar_activity": rar_activity,
            }),
        )],
        DiaryEvent::EnforcementRecorded {
            enforcement_id,
            contact_id,
            action_code,
            response_date,
            action_contact,
        } => vec![
            RowChange::upsert(
                "enforcement",
                *enforcement_id,
                columns!({
                    "contact_id": contact_id,
                    "enforcement_action_code": action_code,
                    "response_date": response_date,
                    "action_taken_date": action_contact.contact_date,
                    "action_taken_time": action_contact.start_time,
                }),
            ),
            RowChange::update(
                "contact",
                *contact_id,
                columns!({ "enforcement": true, "latest_enforcement_action_code": action_code }),
            ),
            contact(action_contact),
        ],
        DiaryEvent::FailureToComplyCounted {
            event_id,
            ftc_count,
        } => vec![RowChange::update(
            "event",
            *event_id,
            columns!({ "ftc_count": ftc_count }),
        )],
        DiaryEvent::RarCountUpdated { nsi_id, rar_count } => vec![RowChange::update(
            "nsi",
            *nsi_id,
            columns!({ "rar_count": rar_count }),
        )],
    }
}

/// A struct's fields as columns (none if it is not a struct of plain fields; the tests
/// snapshot every row the projector writes, so a type that stopped being one shows there).
fn columns<T: Serialize>(value: &T) -> Columns {
    Columns::of(value).unwrap_or_default()
}

fn reference_entry(entry: &ReferenceEntry) -> RowChange {
    let values = match entry {
        ReferenceEntry::Institution(e) => columns(e),
        ReferenceEntry::ProbationArea(e) => columns(e),
        ReferenceEntry::Pdu(e) => columns(e),
        ReferenceEntry::Team(e) => columns(e),
        ReferenceEntry::Staff(e) => columns(e),
        ReferenceEntry::OfficeLocation(e) => columns(e),
        ReferenceEntry::DisposalType(e) => columns(e),
    };
    RowChange::Upsert {
        table: entry.table(),
        key: Key::Code(entry.code().to_string()),
        values,
    }
}

fn case_baseline(baseline: &CaseBaseline) -> Vec<RowChange> {
    let person = &baseline.person;
    let offender_id = person.offender_id;
    let mut rows = vec![RowChange::Upsert {
        table: "offender",
        key: Key::Id(offender_id),
        values: columns(person),
    }];
    if let Some(manager) = &baseline.community_manager {
        rows.push(RowChange::upsert(
            "offender_manager",
            manager.offender_manager_id,
            columns!({
                "offender_id": offender_id,
                "staff_code": manager.staff_code,
                "team_code": manager.team_code,
                "probation_area_code": manager.probation_area_code,
                "allocation_date": manager.allocation_date,
                "end_date": Value::Null,
                "active": true,
            }),
        ));
    }
    for event in &baseline.events {
        rows.push(RowChange::upsert(
            "event",
            event.event_id,
            columns!({
                "offender_id": offender_id,
                "event_number": event.event_number,
                "active": event.active,
                "referral_date": event.referral_date,
                "ftc_count": event.ftc_count,
                "in_breach": event.in_breach,
                "breach_end": event.breach_end,
                "first_release_date": event.first_release_date,
                "conviction_date": event.conviction_date,
                "main_offence_category": event.main_offence.as_ref().map(|o| &o.category),
                "main_offence_sub_category": event.main_offence.as_ref().map(|o| &o.sub_category),
                "soft_deleted": false,
            }),
        ));
        if let Some(disposal) = &event.disposal {
            rows.push(RowChange::upsert(
                "disposal",
                disposal.disposal_id,
                columns!({
                    "event_id": event.event_id,
                    "disposal_type_code": disposal.disposal_type_code,
                    "sentence_type": disposal.sentence_type,
                    "disposal_date": disposal.disposal_date,
                    "active": disposal.active,
                    "termination_date": disposal.termination_date,
                    "expected_end_date": disposal.expected_end_date,
                }),
            ));
            for requirement in &disposal.requirements {
                rows.push(RowChange::upsert(
                    "requirement",
                    requirement.requirement_id,
                    columns!({
                        "disposal_id": disposal.disposal_id,
                        "main_category_code": requirement.main_category_code,
                        "active": requirement.active,
                    }),
                ));
            }
        }
    }
    rows
}

fn custody_baseline(baseline: &CustodyBaseline) -> Vec<RowChange> {
    let mut rows = vec![RowChange::upsert(
        "custody",
        baseline.custody_id,
        columns!({
            "disposal_id": baseline.disposal_id,
            "custodial_status_code": baseline.custodial_status_code,
            "institution_code": baseline.institution_code,
            "status_change_date": baseline.status_change_date,
            "location_change_date": baseline.location_change_date,
        }),
    )];
    for release in &baseline.releases {
        rows.push(RowChange::upsert(
            "release",
            release.release_id,
            columns!({
                "custody_id": baseline.custody_id,
                "offender_id": baseline.offender_id,
                "release_type_code": release.release_type_code,
                "actual_release_date": release.actual_release_date,
                "institution_code": release.institution_code,
                "probation_area_code": release.probation_area_code,
            }),
        ));
        if let Some(recall) = &release.recall {
            rows.push(RowChange::upsert(
                "recall",
                recall.recall_id,
                columns!({
                    "release_id": release.release_id,
                    "offender_id": baseline.offender_id,
                    "recall_reason_code": recall.recall_reason_code,
                    "recall_date": recall.recall_date,
                }),
            ));
        }
    }
    for condition in &baseline.licence_conditions {
        let mut values = columns(condition);
        values.insert("disposal_id", Value::from(baseline.disposal_id));
        rows.push(RowChange::Upsert {
            table: "licence_condition",
            key: Key::Id(condition.lic_condition_id),
            values,
        });
    }
    rows
}

fn pom_baseline(baseline: &PomBaseline) -> Vec<RowChange> {
    let mut rows = Vec::new();
    for manager in &baseline.prison_managers {
        let mut values = columns(manager);
        values.insert("offender_id", Value::from(baseline.offender_id));
        rows.push(RowChange::Upsert {
            table: "prison_offender_manager",
            key: Key::Id(manager.prison_offender_manager_id),
            values,
        });
    }
    for officer in &baseline.responsible_officers {
        let mut values = columns(officer);
        values.insert("offender_id", Value::from(baseline.offender_id));
        rows.push(RowChange::Upsert {
            table: "responsible_officer",
            key: Key::Id(officer.responsible_officer_id),
            values,
        });
    }
    for key_date in &baseline.key_dates {
        rows.push(RowChange::Upsert {
            table: "key_date",
            key: Key::Id(key_date.key_date_id),
            values: columns(key_date),
        });
    }
    rows
}
