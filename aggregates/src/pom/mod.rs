//! `PomAllocation`: the prison offender managers of a person, the responsible officer
//! history and the handover key dates (POM1/POM2) of their custodial sentence. Keyed by CRN.
//!
//! It enters the bridge as a baseline from a seed file; Manage POM Cases events change it
//! afterwards.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Services, Timed};

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

/// Commands on a person's prison management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PomCommand {
    /// Record the Delius baseline (from a seed file).
    RecordBaseline(Box<PomBaseline>),
}

/// Events of a person's prison management.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PomEvent {
    /// The baseline was recorded for the first time or changed.
    PomBaselineRecorded { baseline: Box<PomBaseline> },
}

impl DomainEvent for PomEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PomBaselineRecorded { .. } => "PomBaselineRecorded".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Broken prison-management rules. Each is a permanent rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PomError {
    /// Delius ids never change: a baseline for another offender id under the same CRN.
    #[error("prison management belongs to offender {recorded}, the baseline says {given}")]
    OffenderChanged { recorded: i64, given: i64 },
}

/// The state of a person's prison management.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PomAllocation {
    /// The last recorded baseline.
    pub baseline: Option<PomBaseline>,
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
        _services: &Self::Services,
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
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PomEvent::PomBaselineRecorded { baseline } => self.baseline = Some(*baseline),
        }
    }
}
