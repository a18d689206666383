//! The seed file format: the Delius baseline as JSON (`delius-bridge seed FILE.json`).
//! Documented with a complete example in `fixtures/delius/README.md` and `demo.json`.
//!
//! Wire types only: they nest the way a person reads a case (person → events → disposal →
//! custody) and are split into per-aggregate baselines by `seed::plan`.

use aggregates::case::{CommunityManager, Offence, Person, Requirement};
use aggregates::custody::{LicenceCondition, Release};
use aggregates::pom::{PrisonManager, ResponsibleOfficer};
use aggregates::reference::{
    DisposalType, Institution, OfficeLocation, Pdu, ProbationArea, Staff, Team,
};
use chrono::NaiveDate;
use serde::Deserialize;

/// A whole seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// Reference data this environment adds to the national codes of the migrations.
    #[serde(default)]
    pub reference_data: ReferenceDataSeed,
    /// The cases.
    #[serde(default)]
    pub cases: Vec<CaseSeed>,
}

/// Reference-data additions, one list per table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceDataSeed {
    #[serde(default)]
    pub probation_areas: Vec<ProbationArea>,
    #[serde(default)]
    pub institutions: Vec<Institution>,
    #[serde(default)]
    pub pdus: Vec<Pdu>,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub staff: Vec<Staff>,
    #[serde(default)]
    pub office_locations: Vec<OfficeLocation>,
    #[serde(default)]
    pub disposal_types: Vec<DisposalType>,
}

/// One case: a person and everything Delius already knows of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSeed {
    /// Which scenarios this case serves (free text).
    #[serde(default)]
    pub scenario: Option<String>,
    pub person: Person,
    #[serde(default)]
    pub community_manager: Option<CommunityManager>,
    #[serde(default)]
    pub events: Vec<EventSeed>,
    #[serde(default)]
    pub prison_managers: Vec<PrisonManager>,
    #[serde(default)]
    pub responsible_officers: Vec<ResponsibleOfficer>,
}

/// A conviction event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSeed {
    pub event_id: i64,
    pub event_number: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub referral_date: Option<NaiveDate>,
    #[serde(default)]
    pub ftc_count: i32,
    #[serde(default)]
    pub in_breach: bool,
    #[serde(default)]
    pub breach_end: Option<NaiveDate>,
    #[serde(default)]
    pub first_release_date: Option<NaiveDate>,
    #[serde(default)]
    pub conviction_date: Option<NaiveDate>,
    #[serde(default)]
    pub main_offence: Option<Offence>,
    #[serde(default)]
    pub disposal: Option<DisposalSeed>,
}

/// The sentence of an event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisposalSeed {
    pub disposal_id: i64,
    pub disposal_type_code: String,
    /// Defaults to the disposal type's sentence type.
    #[serde(default)]
    pub sentence_type: Option<String>,
    pub disposal_date: NaiveDate,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub termination_date: Option<NaiveDate>,
    #[serde(default)]
    pub expected_end_date: Option<NaiveDate>,
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    #[serde(default)]
    pub custody: Option<CustodySeed>,
}

/// The custody of a custodial sentence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodySeed {
    pub custody_id: i64,
    pub custodial_status_code: String,
    #[serde(default)]
    pub institution_code: Option<String>,
    #[serde(default)]
    pub status_change_date: Option<NaiveDate>,
    #[serde(default)]
    pub location_change_date: Option<NaiveDate>,
    #[serde(default)]
    pub releases: Vec<Release>,
    #[serde(default)]
    pub licence_conditions: Vec<LicenceCondition>,
    #[serde(default)]
    pub key_dates: Vec<KeyDateSeed>,
}

/// A key date of the custody (POM1 handover start, POM2 handover…).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDateSeed {
    pub key_date_id: i64,
    pub key_date_type_code: String,
    pub key_date: NaiveDate,
}

fn yes() -> bool {
    true
}
