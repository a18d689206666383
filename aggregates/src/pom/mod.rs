//! `PomAllocation`: the prison offender managers of a person, the responsible officer
//! history and the handover key dates (POM1/POM2) of their custodial sentence. Keyed by CRN.
//!
//! It enters the bridge as a baseline from a seed file; prison movements auto-allocate the
//! POM to the prison's unallocated staff ([`AutoAllocate`], REFERENCE.md §4.3 UpdateLocation)
//! and Manage POM Cases events change it afterwards. The state keeps the last recorded
//! baseline apart from the current picture, so seeding an unchanged file again never undoes
//! an allocation.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{notes, Allocation, Contact, IdError, IdSequence, Services, Timed};

#[cfg(test)]
mod tests;

/// A prison offender manager allocation (`delius.prison_offender_manager`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrisonManager {
    pub prison_offender_manager_id: i64,
    pub staff_code: String,
    pub team_code: String,
    pub probation_area_code: String,
    #[serde(default)]
    pub allocation_reason_code: Option<String>,
    pub allocation_date: DateTime<Utc>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub email_address: Option<String>,
}

/// Who is the responsible officer, and since when (`delius.responsible_officer`): exactly one
/// of the two manager ids is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsibleOfficer {
    pub responsible_officer_id: i64,
    #[serde(default)]
    pub prison_offender_manager_id: Option<i64>,
    #[serde(default)]
    pub offender_manager_id: Option<i64>,
    pub start_date: DateTime<Utc>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
}

/// A key date of a custody (`delius.key_date`), e.g. POM1 handover start, POM2 handover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDate {
    pub key_date_id: i64,
    pub custody_id: i64,
    pub key_date_type_code: String,
    pub key_date: NaiveDate,
}

/// The Delius baseline of a person's prison management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PomBaseline {
    pub offender_id: i64,
    pub prison_managers: Vec<PrisonManager>,
    pub responsible_officers: Vec<ResponsibleOfficer>,
    pub key_dates: Vec<KeyDate>,
}

fn yes() -> bool {
    true
}

/// Auto-allocate the person's POM to a prison area's unallocated staff (team `{area}ALL`,
/// staff `{area}ALLU`, reason `AUT`) from `allocation_date`, unless the POM current then is
/// already in that area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoAllocate {
    pub offender_id: i64,
    /// The event the `EPOMAT`/`ROC` contacts belong to.
    pub event_id: Option<i64>,
    pub probation_area_code: String,
    pub allocation_date: DateTime<Utc>,
    /// Names the contact notes mention, by `probation_area/{code}`, `team/{code}` and
    /// `staff/{code}` (staff as "Forename Surname"); a missing name prints its code.
    pub names: BTreeMap<String, String>,
}

/// Commands on a person's prison management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PomCommand {
    /// Record the Delius baseline (from a seed file).
    RecordBaseline(Box<PomBaseline>),
    /// Auto-allocate the POM to a prison area (a prison movement).
    AutoAllocate(Box<AutoAllocate>),
}

/// A prison manager ended by a new allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedManager {
    pub prison_offender_manager_id: i64,
    pub end_date: DateTime<Utc>,
}

/// The responsible officer moving from the ended POM to the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsibleOfficerTransfer {
    pub ended_responsible_officer_id: i64,
    pub end_date: DateTime<Utc>,
    pub officer: ResponsibleOfficer,
    /// The `ROC` contact.
    pub contact: Contact,
}

/// Events of a person's prison management.
// Events are built once per decision and then serialized; boxing the larger variants would
// only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PomEvent {
    /// The baseline was recorded for the first time or changed.
    PomBaselineRecorded { baseline: Box<PomBaseline> },
    /// A new prison offender manager was allocated (`EPOMAT`/`EPOMIN`/`EPOMEX` contact); the
    /// previous one ended and, if it held the responsible officer, the RO moved with a `ROC`.
    PrisonManagerAllocated {
        offender_id: i64,
        manager: PrisonManager,
        ended: Option<EndedManager>,
        contact: Contact,
        responsible_officer: Option<ResponsibleOfficerTransfer>,
    },
}

impl DomainEvent for PomEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PomBaselineRecorded { .. } => "PomBaselineRecorded".into(),
            Self::PrisonManagerAllocated { .. } => "PrisonManagerAllocated".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Broken prison-management rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PomError {
    /// Delius ids never change: a baseline for another offender id under the same CRN.
    /// Rejected.
    #[error("prison management belongs to offender {recorded}, the baseline says {given}")]
    OffenderChanged { recorded: i64, given: i64 },
    /// More than one POM is active at the allocation date: Delius is inconsistent and the
    /// allocation cannot tell which to end. Retried (support may mend the data), then a dead
    /// letter.
    #[error("{} prison offender managers ({ids:?}) are active at {at}: cannot tell the current one", ids.len())]
    AmbiguousPrisonManager { ids: Vec<i64>, at: DateTime<Utc> },
    /// An id could not be allocated. Retried.
    #[error(transparent)]
    Ids(#[from] IdError),
}

/// Allocation reason and contact type of an automatic transfer.
pub mod automatic {
    pub const REASON: &str = "AUT";
    pub const REASON_DESCRIPTION: &str = "Automatic Transfer";
    pub const CONTACT_TYPE: &str = "EPOMAT";
    pub const RESPONSIBLE_OFFICER_CHANGE: &str = "ROC";
    /// The service's Delius user for movements.
    pub const USER: &str = "PrisonCustodyStatusService";
}

/// The state of a person's prison management.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PomAllocation {
    /// The last recorded baseline (what a seed compares with).
    pub baseline: Option<PomBaseline>,
    /// The prison management as Delius holds it now.
    pub current: Option<PomBaseline>,
}

impl PomBaseline {
    /// The managers active at `at` (allocated by then, not yet ended).
    pub fn active_at(&self, at: DateTime<Utc>) -> Vec<&PrisonManager> {
        self.prison_managers
            .iter()
            .filter(|m| m.active && m.allocation_date <= at && m.end_date.is_none_or(|e| e > at))
            .collect()
    }
}

fn name(names: &BTreeMap<String, String>, kind: &str, code: &str) -> String {
    names
        .get(&format!("{kind}/{code}"))
        .cloned()
        .unwrap_or_else(|| code.to_string())
}

impl PomAllocation {
    async fn auto_allocate(
        &mut self,
        command: &AutoAllocate,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), PomError> {
        let at = command.allocation_date;
        let state = self.current.clone().unwrap_or_else(|| PomBaseline {
            offender_id: command.offender_id,
            prison_managers: vec![],
            responsible_officers: vec![],
            key_dates: vec![],
        });
        let active = state.active_at(at);
        if active.len() > 1 {
            return Err(PomError::AmbiguousPrisonManager {
                ids: active
                    .iter()
                    .map(|m| m.prison_offender_manager_id)
                    .collect(),
                at,
            });
        }
        let previous = active.first().copied();
        if previous.is_some_and(|m| m.probation_area_code == command.probation_area_code) {
            return Ok(());
        }
        let team_code = format!("{}ALL", command.probation_area_code);
        let staff_code = format!("{team_code}U");
        let end_date = previous.and_then(|m| m.end_date).or_else(|| {
            state
                .prison_managers
                .iter()
                .filter(|m| m.allocation_date > at)
                .map(|m| m.allocation_date)
                .min()
        });
        let manager = PrisonManager {
            prison_offender_manager_id: services
                .ids
                .next_id(IdSequence::PrisonOffenderManager)
                .await?,
            staff_code: staff_code.clone(),
            team_code: team_code.clone(),
            probation_area_code: command.probation_area_code.clone(),
            allocation_reason_code: Some(automatic::REASON.into()),
            allocation_date: at,
            end_date,
            active: true,
            email_address: None,
        };
        let allocation = Allocation {
            staff_code: staff_code.clone(),
            team_code: team_code.clone(),
            probation_area_code: command.probation_area_code.clone(),
        };
        let contact_for = |contact_id: i64, contact_type: &str, notes: String| Contact {
            notes: Some(notes),
            ..Contact::at(
                contact_id,
                state.offender_id,
                command.event_id,
                contact_type,
                at,
                &allocation,
            )
        };
        let mut notes = format!(
            "Transfer Reason: {}\nTransfer Date: {}",
            automatic::REASON_DESCRIPTION,
            notes::date(at)
        );
        if let Some(previous) = previous {
            notes.push_str(&format!(
                "\nFrom Establishment Provider: {}\nFrom Team: {}\nFrom Officer: {}",
                name(
                    &command.names,
                    "probation_area",
                    &previous.probation_area_code
                ),
                name(&command.names, "team", &previous.team_code),
                name(&command.names, "staff", &previous.staff_code),
            ));
        }
        let contact = contact_for(
            services.ids.next_id(IdSequence::Contact).await?,
            automatic::CONTACT_TYPE,
            notes,
        );
        let open_officer = previous.and_then(|m| {
            state.responsible_officers.iter().find(|r| {
                r.end_date.is_none()
                    && r.prison_offender_manager_id == Some(m.prison_offender_manager_id)
            })
        });
        let responsible_officer = match (previous, open_officer) {
            (Some(previous), Some(officer)) => {
                let notes = format!(
                    "New Details:\nResponsible Officer Type: Prison Offender Manager\n\
                     Responsible Officer: {}\nStart Date: {}\nAllocation Reason: {}\n\
                     Previous Details:\nResponsible Officer Type: Prison Offender Manager\n\
                     Responsible Officer: {}\nEnd Date: {}",
                    name(&command.names, "staff", &staff_code),
                    notes::date_time(at),
                    automatic::REASON_DESCRIPTION,
                    name(&command.names, "staff", &previous.staff_code),
                    notes::date_time(at),
                );
                Some(ResponsibleOfficerTransfer {
                    ended_responsible_officer_id: officer.responsible_officer_id,
                    end_date: at,
                    officer: ResponsibleOfficer {
                        responsible_officer_id: services
                            .ids
                            .next_id(IdSequence::ResponsibleOfficer)
                            .await?,
                        prison_offender_manager_id: Some(manager.prison_offender_manager_id),
                        offender_manager_id: None,
                        start_date: at,
                        end_date: None,
                    },
                    contact: contact_for(
                        services.ids.next_id(IdSequence::Contact).await?,
                        automatic::RESPONSIBLE_OFFICER_CHANGE,
                        notes,
                    ),
                })
            }
            _ => None,
        };
        let event = PomEvent::PrisonManagerAllocated {
            offender_id: state.offender_id,
            manager,
            ended: previous.map(|m| EndedManager {
                prison_offender_manager_id: m.prison_offender_manager_id,
                end_date: at,
            }),
            contact,
            responsible_officer,
        };
        sink.write(event, self).await;
        Ok(())
    }
}

impl Aggregate for PomAllocation {
    const TYPE: &'static str = "PomAllocation";
    type Command = Timed<PomCommand>;
    type Event = PomEvent;
    type Error = PomError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            PomCommand::RecordBaseline(baseline) => {
                if let Some(recorded) = &self.baseline {
                    if recorded.offender_id != baseline.offender_id {
                        return Err(PomError::OffenderChanged {
                            recorded: recorded.offender_id,
                            given: baseline.offender_id,
                        });
                    }
                    if recorded == baseline.as_ref() {
                        return Ok(());
                    }
                }
                sink.write(PomEvent::PomBaselineRecorded { baseline }, self)
                    .await;
                Ok(())
            }
            PomCommand::AutoAllocate(allocate) => {
                self.auto_allocate(&allocate, services, sink).await
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PomEvent::PomBaselineRecorded { baseline } => {
                self.current = Some((*baseline).clone());
                self.baseline = Some(*baseline);
            }
            PomEvent::PrisonManagerAllocated {
                offender_id,
                manager,
                ended,
                responsible_officer,
                ..
            } => {
                let current = self.current.get_or_insert_with(|| PomBaseline {
                    offender_id,
                    prison_managers: vec![],
                    responsible_officers: vec![],
                    key_dates: vec![],
                });
                if let Some(ended) = ended {
                    if let Some(m) = current
                        .prison_managers
                        .iter_mut()
                        .find(|m| m.prison_offender_manager_id == ended.prison_offender_manager_id)
                    {
                        m.end_date = Some(ended.end_date);
                        m.active = false;
                    }
                }
                current.prison_managers.push(manager);
                if let Some(transfer) = responsible_officer {
                    if let Some(r) = current
                        .responsible_officers
                        .iter_mut()
                        .find(|r| r.responsible_officer_id == transfer.ended_responsible_officer_id)
                    {
                        r.end_date = Some(transfer.end_date);
                    }
                    current.responsible_officers.push(transfer.officer);
                }
            }
        }
    }
}
