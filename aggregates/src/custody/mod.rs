//! `Custody`: one custodial sentence of a person — custodial status, institution, releases,
//! recalls and licence conditions. Keyed by the Delius custody id.
//!
//! A custody enters the bridge as a baseline from a seed file; prison movements (issue 5)
//! change it afterwards.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Services, Timed};

#[cfg(test)]
mod tests;

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

/// Commands on a custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustodyCommand {
    /// Record the Delius baseline of the custody (from a seed file).
    RecordBaseline(Box<CustodyBaseline>),
}

/// Events of a custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustodyEvent {
    /// The baseline was recorded for the first time or changed.
    CustodyBaselineRecorded { baseline: Box<CustodyBaseline> },
}

impl DomainEvent for CustodyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CustodyBaselineRecorded { .. } => "CustodyBaselineRecorded".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Broken custody rules. Each is a permanent rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// Delius ids never change: a baseline moving the custody to another disposal.
    #[error("custody {custody_id} belongs to disposal {recorded}, the baseline says {given}")]
    DisposalChanged {
        custody_id: i64,
        recorded: i64,
        given: i64,
    },
}

/// The state of a custody.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Custody {
    /// The last recorded baseline.
    pub baseline: Option<CustodyBaseline>,
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
        _services: &Self::Services,
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
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustodyEvent::CustodyBaselineRecorded { baseline } => self.baseline = Some(*baseline),
        }
    }
}
