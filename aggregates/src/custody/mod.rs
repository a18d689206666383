//! `Custody`: one custodial sentence of a person — custodial status, institution, releases,
//! recalls and licence conditions. Keyed by the Delius custody id.
//!
//! A custody enters the bridge as a baseline from a seed file; prison movements
//! (REFERENCE.md §4, [`RecordMovement`]) change it afterwards: recall, release, custodial
//! status, location and death, each a rule of its own in [`rules`]. The state keeps the last
//! recorded baseline apart from the current picture, so seeding an unchanged file again
//! never undoes a movement.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Contact, ContactAlert, IdError, Services, Timed};

pub mod movement;
pub mod rules;
#[cfg(test)]
mod tests;

pub use movement::{Action, Class, Direction};

/// A recall after a release (`delius.recall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recall {
    pub recall_id: i64,
    pub recall_reason_code: String,
    pub recall_date: NaiveDate,
}

/// A release from custody (`delius.release`) and the recall that followed it, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub release_id: i64,
    pub release_type_code: String,
    pub actual_release_date: NaiveDate,
    #[serde(default)]
    pub institution_code: Option<String>,
    #[serde(default)]
    pub probation_area_code: Option<String>,
    #[serde(default)]
    pub recall: Option<Recall>,
}

/// A licence condition of the disposal (`delius.licence_condition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceCondition {
    pub lic_condition_id: i64,
    pub main_category_code: String,
    pub start_date: NaiveDate,
    #[serde(default)]
    pub termination_date: Option<NaiveDate>,
    #[serde(default)]
    pub termination_reason_code: Option<String>,
    #[serde(default)]
    pub pending_transfer: bool,
}

/// The Delius baseline of a custodial sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyBaseline {
    pub custody_id: i64,
    pub disposal_id: i64,
    pub event_id: i64,
    pub offender_id: i64,
    /// A sentenced in custody, B released on licence, C recalled, D in custody…
    pub custodial_status_code: String,
    pub institution_code: Option<String>,
    pub status_change_date: Option<NaiveDate>,
    pub location_change_date: Option<NaiveDate>,
    pub releases: Vec<Release>,
    pub licence_conditions: Vec<LicenceCondition>,
}

/// A Delius institution (`r_institution`) as the movement rules read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Institution {
    pub code: String,
    pub description: String,
    pub nomis_code: Option<String>,
    pub immigration_removal_centre: bool,
    pub secure_hospital: bool,
    /// The lead (host) probation area: a release's `probation_area_code`.
    pub probation_area_code: Option<String>,
    /// The probation area standing for the institution (its POM teams are `{area}ALL`).
    pub prison_area_code: Option<String>,
}

/// A recall reason (`r_recall_reason`) and the licence-condition termination it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallReason {
    pub code: String,
    pub description: String,
    pub termination_reason_code: Option<String>,
}

/// The reference data a movement's rules read, resolved by the adapter and recorded in the
/// command (so the decision is a function of the command and the state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MovementReference {
    /// Every institution the rules may name: the custody's, the prison's and the national
    /// placeholders (`XXX056`, `XXX054`, `UATLRG`, `COMMUN`, `UNKNOW`).
    pub institutions: Vec<Institution>,
    pub recall_reasons: Vec<RecallReason>,
    /// Descriptions by `{table}/{code}` (e.g. `r_custodial_status/B`): release types,
    /// custodial statuses, termination reasons and transfer reasons.
    pub descriptions: BTreeMap<String, String>,
}

impl MovementReference {
    /// The institution with `code`.
    pub fn institution(&self, code: &str) -> Option<&Institution> {
        self.institutions.iter().find(|i| i.code == code)
    }

    /// The description of `code` in reference table `table`, or the code itself.
    pub fn describe(&self, table: &str, code: &str) -> String {
        self.descriptions
            .get(&format!("{table}/{code}"))
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }
}

/// The person's community manager, to whom movement contacts and alerts are allocated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagerFacts {
    pub offender_manager_id: i64,
    pub staff_code: String,
    pub team_code: String,
    pub probation_area_code: String,
}

/// What the movement rules need of the custody's sentence (from the `Case`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceFacts {
    pub disposal_date: NaiveDate,
    pub disposal_type_code: String,
    /// `event.first_release_date` as the case baseline holds it.
    pub first_release_date: Option<NaiveDate>,
}

/// A prison movement of the person, applied to one of their custodies (REFERENCE.md §4.2–4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordMovement {
    pub direction: Direction,
    /// `ADMISSION`, `RELEASED`, `RELEASED_TO_HOSPITAL`, `TEMPORARY_ABSENCE_RETURN`, `TRANSFERRED`…
    pub movement_type: String,
    /// The NOMIS movement reason code the actions see (e.g. `R1`, `HO`, `ECSL`).
    pub reason_code: String,
    pub occurred_at: DateTime<Utc>,
    /// The actions of the movement table, in order.
    pub actions: Vec<Action>,
    /// The NOMIS agency of the prison: received into, or released from.
    pub nomis_prison_code: Option<String>,
    /// The Delius institution with that NOMIS code, when there is one.
    pub prison_code: Option<String>,
    pub sentence: SentenceFacts,
    pub community_manager: Option<ManagerFacts>,
    pub reference: MovementReference,
}

/// Commands on a custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustodyCommand {
    /// Record the Delius baseline of the custody (from a seed file).
    RecordBaseline(Box<CustodyBaseline>),
    /// Apply a prison movement.
    RecordMovement(Box<RecordMovement>),
}

/// A `delius.custody_history` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyHistory {
    pub custody_history_id: i64,
    /// `TSC` status change, `CPL` change of location.
    pub custody_event_type_code: String,
    pub detail: String,
    pub historical_date: NaiveDate,
}

/// A pending licence-condition transfer rejected by a recall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedTransfer {
    /// `REJECTED`.
    pub status_code: String,
    /// `R`.
    pub decision_code: String,
    /// `TWR`.
    pub reason_code: String,
    pub status_date: NaiveDate,
    /// The `ETCX` contact.
    pub contact: Contact,
}

/// An action of a movement that changed nothing, and why (the live ignorable outcomes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredAction {
    pub action: Action,
    /// `RecallNotRequired`, `InvalidRecallDate`, `PrisonerStatusCorrect`…
    pub name: String,
    pub detail: String,
}

/// Events of a custody.
// Events are built once per decision and then serialized; boxing the larger variants would
// only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustodyEvent {
    /// The baseline was recorded for the first time or changed.
    CustodyBaselineRecorded { baseline: Box<CustodyBaseline> },
    /// The latest release was recalled (`delius.recall`, ERCL contact with an alert).
    Recalled {
        custody_id: i64,
        offender_id: i64,
        release_id: i64,
        recall: Recall,
        occurred_at: DateTime<Utc>,
        contact: Contact,
        alert: ContactAlert,
    },
    /// A licence condition ended with the recall (ETER contact; a pending transfer rejected).
    LicenceConditionTerminated {
        custody_id: i64,
        disposal_id: i64,
        lic_condition_id: i64,
        termination_date: NaiveDate,
        termination_reason_code: Option<String>,
        rejected_transfer: Option<RejectedTransfer>,
        contact: Contact,
    },
    /// The person was released (`delius.release`, EREL contact).
    Released {
        custody_id: i64,
        offender_id: i64,
        event_id: i64,
        release: Release,
        occurred_at: DateTime<Utc>,
        contact: Contact,
        /// Set when the event had no first release date.
        first_release_date: Option<NaiveDate>,
    },
    /// The custodial status changed (CUSTODY_HISTORY `TSC`).
    CustodialStatusChanged {
        custody_id: i64,
        offender_id: i64,
        previous_status_code: String,
        custodial_status_code: String,
        status_change_date: NaiveDate,
        history: CustodyHistory,
    },
    /// The institution changed (CUSTODY_HISTORY `CPL`, ETCP contact for returns and
    /// special releases); `pom_area_code` is where the POM is auto-allocated.
    LocationChanged {
        custody_id: i64,
        offender_id: i64,
        previous_institution_code: Option<String>,
        institution_code: String,
        location_change_date: NaiveDate,
        history: CustodyHistory,
        contact: Option<Contact>,
        pom_area_code: Option<String>,
    },
    /// The person died in custody (DUS3 contact with an alert).
    DeathRecorded {
        custody_id: i64,
        offender_id: i64,
        occurred_at: DateTime<Utc>,
        contact: Contact,
        alert: ContactAlert,
    },
    /// Actions of a movement that changed nothing, with their ignorable outcome names.
    MovementActionsIgnored {
        custody_id: i64,
        offender_id: i64,
        direction: Direction,
        movement_type: String,
        reason_code: String,
        occurred_at: DateTime<Utc>,
        ignored: Vec<IgnoredAction>,
    },
}

impl DomainEvent for CustodyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CustodyBaselineRecorded { .. } => "CustodyBaselineRecorded",
            Self::Recalled { .. } => "Recalled",
            Self::LicenceConditionTerminated { .. } => "LicenceConditionTerminated",
            Self::Released { .. } => "Released",
            Self::CustodialStatusChanged { .. } => "CustodialStatusChanged",
            Self::LocationChanged { .. } => "LocationChanged",
            Self::DeathRecorded { .. } => "DeathRecorded",
            Self::MovementActionsIgnored { .. } => "MovementActionsIgnored",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

impl CustodyEvent {
    /// The live telemetry name of a movement's result (`Recalled`, `Released`,
    /// `StatusUpdated`, `LocationUpdated`, `Died`); `None` for other events.
    pub fn result_name(&self) -> Option<&'static str> {
        match self {
            Self::Recalled { .. } => Some("Recalled"),
            Self::Released { .. } => Some("Released"),
            Self::CustodialStatusChanged { .. } => Some("StatusUpdated"),
            Self::LocationChanged { .. } => Some("LocationUpdated"),
            Self::DeathRecorded { .. } => Some("Died"),
            _ => None,
        }
    }
}

/// What a movement did to one custody: the changes (live telemetry names, in order), the
/// ignored actions and where the POM is to be auto-allocated. The command bus records it as
/// the command's reply, so a redelivery reads the first delivery's summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MovementSummary {
    pub changed: Vec<String>,
    pub ignored: Vec<IgnoredAction>,
    /// The institution before and after a location change.
    pub previous_institution_code: Option<String>,
    pub institution_code: Option<String>,
    /// The probation area whose unallocated POM the person gets (a location change only).
    pub pom_area_code: Option<String>,
}

impl MovementSummary {
    /// The summary of a movement's events.
    pub fn of(events: &[CustodyEvent]) -> Self {
        let mut summary = Self::default();
        for event in events {
            if let Some(name) = event.result_name() {
                summary.changed.push(name.to_string());
            }
            match event {
                CustodyEvent::MovementActionsIgnored { ignored, .. } => {
                    summary.ignored.extend(ignored.iter().cloned());
                }
                CustodyEvent::LocationChanged {
                    previous_institution_code,
                    institution_code,
                    pom_area_code,
                    ..
                } => {
                    summary.previous_institution_code = previous_institution_code.clone();
                    summary.institution_code = Some(institution_code.clone());
                    summary.pom_area_code = pom_area_code.clone();
                }
                _ => {}
            }
        }
        summary
    }
}

/// Broken custody rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// Delius ids never change: a baseline moving the custody to another disposal. Rejected.
    #[error("custody {custody_id} belongs to disposal {recorded}, the baseline says {given}")]
    DisposalChanged {
        custody_id: i64,
        recorded: i64,
        given: i64,
    },
    /// A movement for a custody Delius has no baseline of. Rejected.
    #[error("custody {custody_id} is not recorded")]
    NotRecorded { custody_id: i64 },
    /// A movement contact needs a community manager or a prison area to be allocated to.
    /// Rejected.
    #[error("no community manager or prison area to allocate the {contact_type} contact to")]
    NoAllocation { contact_type: String },
    /// A rule names an institution the command's reference data does not hold. Rejected.
    #[error("institution {0} is not known")]
    UnknownInstitution(String),
    /// An id could not be allocated. Retried.
    #[error(transparent)]
    Ids(#[from] IdError),
}

/// The state of a custody.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Custody {
    /// The last recorded baseline (what a seed compares with).
    pub baseline: Option<CustodyBaseline>,
    /// The custody as Delius holds it now: the baseline and every movement since.
    pub current: Option<CustodyBaseline>,
}

impl Aggregate for Custody {
    const TYPE: &'static str = "Custody";
    type Command = Timed<CustodyCommand>;
    type Event = CustodyEvent;
    type Error = CustodyError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            CustodyCommand::RecordBaseline(baseline) => {
                if let Some(recorded) = &self.baseline {
                    if recorded.disposal_id != baseline.disposal_id {
                        return Err(CustodyError::DisposalChanged {
                            custody_id: baseline.custody_id,
                            recorded: recorded.disposal_id,
                            given: baseline.disposal_id,
                        });
                    }
                    if recorded == baseline.as_ref() {
                        return Ok(());
                    }
                }
                sink.write(CustodyEvent::CustodyBaselineRecorded { baseline }, self)
                    .await;
                Ok(())
            }
            CustodyCommand::RecordMovement(movement) => {
                rules::record_movement(self, &movement, command.at, services, sink).await
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        if let CustodyEvent::CustodyBaselineRecorded { baseline } = event {
            self.current = Some((*baseline).clone());
            self.baseline = Some(*baseline);
            return;
        }
        let Some(current) = self.current.as_mut() else {
            return;
        };
        match event {
            CustodyEvent::CustodyBaselineRecorded { .. } => {}
            CustodyEvent::Recalled { recall, .. } => {
                if let Some(release) = current.releases.last_mut() {
                    release.recall = Some(recall);
                }
            }
            CustodyEvent::LicenceConditionTerminated {
                lic_condition_id,
                termination_date,
                termination_reason_code,
                ..
            } => {
                if let Some(condition) = current
                    .licence_conditions
                    .iter_mut()
                    .find(|c| c.lic_condition_id == lic_condition_id)
                {
                    condition.termination_date = Some(termination_date);
                    condition.termination_reason_code = termination_reason_code;
                    condition.pending_transfer = false;
                }
            }
            CustodyEvent::Released { release, .. } => current.releases.push(release),
            CustodyEvent::CustodialStatusChanged {
                custodial_status_code,
                status_change_date,
                ..
            } => {
                current.custodial_status_code = custodial_status_code;
                current.status_change_date = Some(status_change_date);
            }
            CustodyEvent::LocationChanged {
                institution_code,
                location_change_date,
                ..
            } => {
                current.institution_code = Some(institution_code);
                current.location_change_date = Some(location_change_date);
            }
            CustodyEvent::DeathRecorded { .. } | CustodyEvent::MovementActionsIgnored { .. } => {}
        }
    }
}
