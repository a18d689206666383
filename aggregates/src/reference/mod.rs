//! `ReferenceData`: one aggregate per reference-data entry that a seed file adds to Delius
//! (institutions, probation areas, PDUs, teams, staff, office locations, disposal types…).
//! National codes fixed by the live system are loaded by migrations instead; this aggregate
//! records the environment-specific additions so that a replay rebuilds them too.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{Services, Timed};

#[cfg(test)]
mod tests;

/// A prison or other establishment (`delius.r_institution`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub code: String,
    pub description: String,
    /// The NOMIS agency id (e.g. `WSI`), how prison events name it.
    #[serde(default)]
    pub nomis_code: Option<String>,
    #[serde(default)]
    pub immigration_removal_centre: bool,
    #[serde(default)]
    pub secure_hospital: bool,
    /// The probation area (provider) that hosts the institution.
    #[serde(default)]
    pub probation_area_code: Option<String>,
}

/// A probation area / provider (`delius.probation_area`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbationArea {
    pub code: String,
    pub description: String,
    /// For prison areas: the institution they stand for.
    #[serde(default)]
    pub institution_code: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// A probation delivery unit (`delius.pdu`, Delius's borough).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pdu {
    pub code: String,
    pub description: String,
    pub probation_area_code: String,
}

/// A team (`delius.team`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub code: String,
    pub description: String,
    pub probation_area_code: String,
    #[serde(default)]
    pub pdu_code: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub telephone: Option<String>,
}

/// A member of staff (`delius.staff`); a code ending in `U` is an unallocated placeholder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    pub code: String,
    pub forename: String,
    pub surname: String,
    pub probation_area_code: String,
    #[serde(default)]
    pub team_codes: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub telephone: Option<String>,
}

/// An office location (`delius.office_location`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeLocation {
    pub code: String,
    pub description: String,
    pub probation_area_code: String,
    #[serde(default)]
    pub building_name: Option<String>,
    #[serde(default)]
    pub building_number: Option<String>,
    #[serde(default)]
    pub street_name: Option<String>,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub town: Option<String>,
    #[serde(default)]
    pub county: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub telephone: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// A disposal (sentence) type (`delius.r_disposal_type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisposalType {
    pub code: String,
    pub description: String,
    /// `SC` (custodial), `NC` (non-custodial), `CO` (community order)…
    #[serde(default)]
    pub sentence_type: Option<String>,
    /// Failures to comply tolerated before an enforcement review (`ARWS`).
    #[serde(default)]
    pub ftc_limit: Option<i32>,
}

fn yes() -> bool {
    true
}

/// One reference-data entry, tagged with the Delius table it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum ReferenceEntry {
    Institution(Institution),
    ProbationArea(ProbationArea),
    Pdu(Pdu),
    Team(Team),
    Staff(Staff),
    OfficeLocation(OfficeLocation),
    DisposalType(DisposalType),
}

impl ReferenceEntry {
    /// The `delius` table the entry is projected into.
    pub fn table(&self) -> &'static str {
        match self {
            Self::Institution(_) => "r_institution",
            Self::ProbationArea(_) => "probation_area",
            Self::Pdu(_) => "pdu",
            Self::Team(_) => "team",
            Self::Staff(_) => "staff",
            Self::OfficeLocation(_) => "office_location",
            Self::DisposalType(_) => "r_disposal_type",
        }
    }

    /// The entry's code, its key in the table.
    pub fn code(&self) -> &str {
        match self {
            Self::Institution(e) => &e.code,
            Self::ProbationArea(e) => &e.code,
            Self::Pdu(e) => &e.code,
            Self::Team(e) => &e.code,
            Self::Staff(e) => &e.code,
            Self::OfficeLocation(e) => &e.code,
            Self::DisposalType(e) => &e.code,
        }
    }

    /// The aggregate id of this entry: `{table}/{code}`.
    pub fn aggregate_id(&self) -> String {
        format!("{}/{}", self.table(), self.code())
    }
}

/// Commands on a reference-data entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReferenceCommand {
    /// Record the entry as given; nothing happens when it is already recorded so.
    RecordEntry(ReferenceEntry),
}

/// Events of a reference-data entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReferenceEvent {
    /// The entry was added or changed.
    ReferenceEntryRecorded { entry: ReferenceEntry },
}

impl DomainEvent for ReferenceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ReferenceEntryRecorded { .. } => "ReferenceEntryRecorded".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Reference-data commands cannot fail: every well-formed entry is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {}

/// The state of one entry: what was last recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceData {
    pub entry: Option<ReferenceEntry>,
}

impl Aggregate for ReferenceData {
    const TYPE: &'static str = "ReferenceData";
    type Command = Timed<ReferenceCommand>;
    type Event = ReferenceEvent;
    type Error = ReferenceError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            ReferenceCommand::RecordEntry(entry) => {
                if self.entry.as_ref() != Some(&entry) {
                    sink.write(ReferenceEvent::ReferenceEntryRecorded { entry }, self)
                        .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReferenceEvent::ReferenceEntryRecorded { entry } => self.entry = Some(entry),
        }
    }
}
