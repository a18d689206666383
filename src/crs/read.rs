//! The Refer and Monitor case-information reads (REFERENCE.md §2.1) answered from the Delius
//! tables: identifiers, details, responsible officer, CRS office locations and PDUs.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::CrsError;
use crate::engine::Engine;
use crate::reference::{all_rows, boolean, int, row, rows_where, string};

type Row = Map<String, Value>;

/// A person's name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Name {
    pub forename: String,
    pub surname: String,
}

/// `GET /probation-case/{crn}/identifiers`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identifiers {
    pub crn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noms_id: Option<String>,
}

/// Contact details of a case.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactDetails {
    pub no_fixed_abode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_number: Option<String>,
}

/// `GET /probation-case/{crn}/details`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseDetail {
    pub crn: String,
    pub name: Name,
    pub date_of_birth: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    pub contact_details: ContactDetails,
}

/// A code and its description.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CodeDescription {
    pub code: String,
    pub description: String,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub code: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephone_number: Option<String>,
}

/// A community or prison offender manager.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    pub code: String,
    pub name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephone_number: Option<String>,
    pub responsible_officer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdu: Option<CodeDescription>,
    pub team: Team,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub office_locations: Vec<OfficeLocation>,
    /// The staff code ends in `U`: nobody is allocated.
    pub unallocated: bool,
}

/// `GET /probation-case/{crn}/responsible-officer`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponsibleOfficer {
    pub community_manager: Manager,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prison_manager: Option<Manager>,
}

/// An address.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}

/// An office location (`GET /office-locations`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfficeLocation {
    pub code: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephone_number: Option<String>,
}

/// A probation delivery unit (`GET /probation-delivery-units`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryUnit {
    pub code: String,
    pub description: String,
    pub region: CodeDescription,
}

fn get(row: &Row, column: &str) -> String {
    string(row, column).unwrap_or_default()
}

async fn person(engine: &Engine, crn: &str) -> Result<Row, CrsError> {
    rows_where(engine, "offender", "crn", crn)
        .await?
        .into_iter()
        .find(|r| !boolean(r, "soft_deleted").unwrap_or(false))
        .ok_or_else(|| CrsError::NotFound(format!("Person with crn of {crn} not found")))
}

/// `GET /probation-case/{crn}/identifiers`.
pub async fn identifiers(engine: &Engine, crn: &str) -> Result<Identifiers, CrsError> {
    let person = person(engine, crn).await?;
    Ok(Identifiers {
        crn: crn.to_string(),
        noms_id: string(&person, "noms_number"),
    })
}

/// `GET /probation-case/{crn}/details`.
pub async fn details(engine: &Engine, crn: &str) -> Result<CaseDetail, CrsError> {
    let person = person(engine, crn).await?;
    Ok(CaseDetail {
        crn: crn.to_string(),
        name: Name {
            forename: get(&person, "first_name"),
            surname: get(&person, "surname"),
        },
        date_of_birth: get(&person, "date_of_birth"),
        gender: string(&person, "gender"),
        contact_details: ContactDetails {
            no_fixed_abode: false,
            email_address: string(&person, "email"),
            telephone_number: string(&person, "telephone"),
            mobile_number: string(&person, "mobile"),
        },
    })
}

fn office_location(row: &Row) -> OfficeLocation {
    let address = Address {
        building_name: string(row, "building_name"),
        building_number: string(row, "building_number"),
        street_name: string(row, "street_name"),
        district: string(row, "district"),
        town: string(row, "town"),
        county: string(row, "county"),
        postcode: string(row, "postcode"),
    };
    let has_address = [
        &address.building_name,
        &address.building_number,
        &address.street_name,
        &address.district,
        &address.town,
        &address.county,
        &address.postcode,
    ]
    .iter()
    .any(|part| part.is_some());
    OfficeLocation {
        code: get(row, "code"),
        description: get(row, "description"),
        address: has_address.then_some(address),
        telephone_number: string(row, "telephone"),
    }
}

async fn manager(
    engine: &Engine,
    staff_code: &str,
    team_code: &str,
    responsible_officer: bool,
    email_override: Option<String>,
) -> Result<Manager, CrsError> {
    let staff = row(engine, "staff", staff_code).await?.unwrap_or_default();
    let team = row(engine, "team", team_code).await?.unwrap_or_default();
    let pdu = match string(&team, "pdu_code") {
        Some(code) => row(engine, "pdu", &code).await?.map(|p| CodeDescription {
            code: get(&p, "code"),
            description: get(&p, "description"),
        }),
        None => None,
    };
    let area = get(&team, "probation_area_code");
    let office_locations = rows_where(engine, "office_location", "probation_area_code", &area)
        .await?
        .iter()
        .filter(|l| boolean(l, "active").unwrap_or(false))
        .map(office_location)
        .collect();
    Ok(Manager {
        code: staff_code.to_string(),
        name: Name {
            forename: get(&staff, "forename"),
            surname: get(&staff, "surname"),
        },
        username: string(&staff, "username"),
        email: email_override.or_else(|| string(&staff, "email")),
        telephone_number: string(&staff, "telephone"),
        responsible_officer,
        pdu,
        team: Team {
            code: team_code.to_string(),
            description: get(&team, "description"),
            email: string(&team, "email"),
            telephone_number: string(&team, "telephone"),
        },
        office_locations,
        unallocated: staff_code.ends_with('U'),
    })
}

/// `GET /probation-case/{crn}/responsible-officer`: the community manager, and the prison
/// manager when the community manager is not the responsible officer.
pub async fn responsible_officer(
    engine: &Engine,
    crn: &str,
) -> Result<ResponsibleOfficer, CrsError> {
    let person = person(engine, crn).await?;
    let offender_id = get(&person, "offender_id");
    let com = rows_where(engine, "offender_manager", "offender_id", &offender_id)
        .await?
        .into_iter()
        .find(|m| boolean(m, "active").unwrap_or(false))
        .ok_or_else(|| CrsError::NotFound(format!("No community manager for {crn}")))?;
    let current_ro = rows_where(engine, "responsible_officer", "offender_id", &offender_id)
        .await?
        .into_iter()
        .find(|ro| ro.get("end_date").is_none_or(Value::is_null));
    let com_is_ro = current_ro
        .as_ref()
        .is_some_and(|ro| int(ro, "offender_manager_id") == int(&com, "offender_manager_id"));
    let community_manager = manager(
        engine,
        &get(&com, "staff_code"),
        &get(&com, "team_code"),
        com_is_ro,
        None,
    )
    .await?;
    let prison_manager = if com_is_ro {
        None
    } else {
        let pom = rows_where(
            engine,
            "prison_offender_manager",
            "offender_id",
            &offender_id,
        )
        .await?
        .into_iter()
        .find(|p| boolean(p, "active").unwrap_or(false));
        match pom {
            Some(pom) => {
                let pom_is_ro = current_ro.as_ref().is_some_and(|ro| {
                    int(ro, "prison_offender_manager_id") == int(&pom, "prison_offender_manager_id")
                });
                Some(
                    manager(
                        engine,
                        &get(&pom, "staff_code"),
                        &get(&pom, "team_code"),
                        pom_is_ro,
                        string(&pom, "email_address"),
                    )
                    .await?,
                )
            }
            None => None,
        }
    };
    Ok(ResponsibleOfficer {
        community_manager,
        prison_manager,
    })
}

/// `GET /office-locations`: the active office locations of the CRS provider.
pub async fn office_locations(engine: &Engine) -> Result<Vec<OfficeLocation>, CrsError> {
    Ok(rows_where(
        engine,
        "office_location",
        "probation_area_code",
        aggregates::common::crs::PROVIDER,
    )
    .await?
    .iter()
    .filter(|l| boolean(l, "active").unwrap_or(false))
    .map(office_location)
    .collect())
}

/// `GET /probation-delivery-units`: every PDU with its region (probation area).
pub async fn delivery_units(engine: &Engine) -> Result<Vec<DeliveryUnit>, CrsError> {
    let mut units = Vec::new();
    for area in all_rows(engine, "probation_area").await? {
        let area_code = get(&area, "code");
        for pdu in rows_where(engine, "pdu", "probation_area_code", &area_code).await? {
            units.push(DeliveryUnit {
                code: get(&pdu, "code"),
                description: get(&pdu, "description"),
                region: CodeDescription {
                    code: area_code.clone(),
                    description: get(&area, "description"),
                },
            });
        }
    }
    units.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(units)
}

/// The sentence of a conviction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sentence {
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_end_date: Option<String>,
}

/// The main offence of a conviction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MainOffence {
    pub category: String,
    pub sub_category: String,
}

/// A conviction (an event with its sentence).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conviction {
    /// The Delius event id (`sentenceId` of a referral).
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub sentence: Sentence,
    /// Absent where Delius holds no main offence for the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_offence: Option<MainOffence>,
    pub active: bool,
}

/// `GET /probation-case/{crn}/convictions`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Convictions {
    pub case_detail: CaseDetail,
    pub convictions: Vec<Conviction>,
}

/// `GET /probation-case/{crn}/convictions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConvictionDetail {
    pub case_detail: CaseDetail,
    pub conviction: Conviction,
}

/// Disposal type of adjournments: not a sentence, never shown as a conviction.
const ADJOURNMENT: &str = "326";

async fn conviction_list(engine: &Engine, crn: &str) -> Result<Vec<Conviction>, CrsError> {
    let person = person(engine, crn).await?;
    let mut convictions = Vec::new();
    for event in rows_where(engine, "event", "offender_id", &get(&person, "offender_id")).await? {
        if boolean(&event, "soft_deleted").unwrap_or(false) {
            continue;
        }
        let event_id = get(&event, "event_id");
        let Some(disposal) = rows_where(engine, "disposal", "event_id", &event_id)
            .await?
            .into_iter()
            .next()
        else {
            continue;
        };
        let disposal_type = get(&disposal, "disposal_type_code");
        if disposal_type == ADJOURNMENT {
            continue;
        }
        let description = row(engine, "r_disposal_type", &disposal_type)
            .await?
            .and_then(|t| string(&t, "description"))
            .unwrap_or(disposal_type);
        let main_offence = match (
            string(&event, "main_offence_category"),
            string(&event, "main_offence_sub_category"),
        ) {
            (Some(category), Some(sub_category)) => Some(MainOffence {
                category,
                sub_category,
            }),
            _ => None,
        };
        convictions.push(Conviction {
            id: int(&event, "event_id").unwrap_or_default(),
            date: string(&event, "conviction_date"),
            sentence: Sentence {
                description,
                expected_end_date: string(&disposal, "expected_end_date"),
            },
            main_offence,
            active: boolean(&event, "active").unwrap_or(false),
        });
    }
    Ok(convictions)
}

/// `GET /probation-case/{crn}/convictions`: the person's convictions (adjournments left out).
pub async fn convictions(engine: &Engine, crn: &str) -> Result<Convictions, CrsError> {
    Ok(Convictions {
        case_detail: details(engine, crn).await?,
        convictions: conviction_list(engine, crn).await?,
    })
}

/// `GET /probation-case/{crn}/convictions/{id}`.
pub async fn conviction(engine: &Engine, crn: &str, id: i64) -> Result<ConvictionDetail, CrsError> {
    let conviction = conviction_list(engine, crn)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| {
            CrsError::NotFound(format!("Conviction with id of {id} not found for {crn}"))
        })?;
    Ok(ConvictionDetail {
        case_detail: details(engine, crn).await?,
        conviction,
    })
}
