//! `Case`: a person on probation (the Delius OFFENDER) with their sentences — events,
//! disposals and requirements — and their community offender manager. Keyed by CRN.
//!
//! Cases enter the bridge as a baseline from a seed file; the baseline is recorded once and
//! again only when it changes, so seeding the same file twice writes nothing.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Services, Timed};

#[cfg(test)]
mod tests;

/// The person (`delius.offender`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub offender_id: i64,
    pub crn: String,
    #[serde(default)]
    pub noms_number: Option<String>,
    pub first_name: String,
    #[serde(default)]
    pub second_name: Option<String>,
    pub surname: String,
    pub date_of_birth: NaiveDate,
    #[serde(default)]
    pub gender: Option<String>,
    #[serde(default)]
    pub current_tier: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub telephone: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub soft_deleted: bool,
}

/// A requirement of a disposal (`delius.requirement`); main category `F` is a RAR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub requirement_id: i64,
    pub main_category_code: String,
    #[serde(default = "yes")]
    pub active: bool,
}

/// The sentence of an event (`delius.disposal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disposal {
    pub disposal_id: i64,
    pub disposal_type_code: String,
    /// `SC` custodial, `NC` non-custodial…: copied from the disposal type when the seed omits it.
    pub sentence_type: Option<String>,
    pub disposal_date: NaiveDate,
    pub active: bool,
    pub termination_date: Option<NaiveDate>,
    /// When the sentence is expected to end (added after 1.0; absent in older events).
    #[serde(default)]
    pub expected_end_date: Option<NaiveDate>,
    pub requirements: Vec<Requirement>,
}

/// The main offence of a conviction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offence {
    /// The offence's main category description, e.g. "Burglary (dwelling)".
    pub category: String,
    /// Its sub-category description.
    pub sub_category: String,
}

/// A conviction event (`delius.event`) and its disposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceEvent {
    pub event_id: i64,
    pub event_number: String,
    pub active: bool,
    pub referral_date: Option<NaiveDate>,
    pub ftc_count: i32,
    pub in_breach: bool,
    pub breach_end: Option<NaiveDate>,
    pub first_release_date: Option<NaiveDate>,
    /// When the person was convicted (added after 1.0; absent in older events).
    #[serde(default)]
    pub conviction_date: Option<NaiveDate>,
    /// The main offence (added after 1.0; absent in older events).
    #[serde(default)]
    pub main_offence: Option<Offence>,
    pub disposal: Option<Disposal>,
}

/// The community offender manager (`delius.offender_manager`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityManager {
    pub offender_manager_id: i64,
    pub staff_code: String,
    pub team_code: String,
    pub probation_area_code: String,
    #[serde(default)]
    pub allocation_date: Option<NaiveDate>,
}

/// Everything the Delius baseline knows of a case that this aggregate owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseBaseline {
    pub person: Person,
    pub community_manager: Option<CommunityManager>,
    pub events: Vec<SentenceEvent>,
}

fn yes() -> bool {
    true
}

/// Commands on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CaseCommand {
    /// Record the Delius baseline of the case (from a seed file).
    RecordBaseline(Box<CaseBaseline>),
}

/// Events of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CaseEvent {
    /// The baseline was recorded for the first time or changed.
    CaseBaselineRecorded { baseline: Box<CaseBaseline> },
}

impl DomainEvent for CaseEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CaseBaselineRecorded { .. } => "CaseBaselineRecorded".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Broken case rules. Each is a permanent rejection (HTTP 400 / dead letter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// Delius ids never change: a baseline naming another offender id for a recorded CRN.
    #[error("offender id of {crn} is {recorded}, the baseline says {given}")]
    OffenderIdChanged {
        crn: String,
        recorded: i64,
        given: i64,
    },
}

/// The state of a case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The last recorded baseline.
    pub baseline: Option<CaseBaseline>,
}

impl Aggregate for Case {
    const TYPE: &'static str = "Case";
    type Command = Timed<CaseCommand>;
    type Event = CaseEvent;
    type Error = CaseError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            CaseCommand::RecordBaseline(baseline) => {
                if let Some(recorded) = &self.baseline {
                    if recorded.person.offender_id != baseline.person.offender_id {
                        return Err(CaseError::OffenderIdChanged {
                            crn: baseline.person.crn.clone(),
                            recorded: recorded.person.offender_id,
                            given: baseline.person.offender_id,
                        });
                    }
                    if recorded == baseline.as_ref() {
                        return Ok(());
                    }
                }
                sink.write(CaseEvent::CaseBaselineRecorded { baseline }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CaseEvent::CaseBaselineRecorded { baseline } => self.baseline = Some(*baseline),
        }
    }
}
