//! Seeding: loads a Delius baseline (reference data and cases) from a JSON file through the
//! command bus, with source `seed`.
//!
//! The whole file is parsed and validated before any command runs, so an invalid file loads
//! nothing and its error names the bad field by path (`cases[2].events[0].disposal.custody.
//! institution_code`). Every command's message id is derived from its content, and every
//! aggregate ignores a baseline it already holds, so seeding the same file twice writes nothing.

pub mod codes;
pub mod file;
mod validate;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use aggregates::case::{Case, CaseBaseline, CaseCommand, Disposal, SentenceEvent};
use aggregates::custody::{Custody, CustodyBaseline, CustodyCommand};
use aggregates::pom::{KeyDate, PomAllocation, PomBaseline, PomCommand};
use aggregates::reference::{ReferenceCommand, ReferenceData, ReferenceEntry};
use aggregates::Timed;
use projections::{Metadata, Source};

use crate::bus::{BusError, Routed};
use crate::engine::Engine;
pub use codes::KnownCodes;
pub use file::SeedFile;

/// A problem with a seed file, located by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedProblem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SeedProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a seed did not load.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid JSON of the seed format; nothing was loaded.
    #[error("invalid seed file: {0}")]
    Parse(SeedProblem),
    /// The file breaks the seed rules; nothing was loaded.
    #[error("invalid seed file:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<SeedProblem>),
    /// A command was rejected or failed; commands before it were loaded.
    #[error("seeding {aggregate} failed: {message}")]
    Command { aggregate: String, message: String },
    #[error("cannot read known codes: {0}")]
    Codes(#[from] sqlx::Error),
}

/// Parses seed JSON; errors name the path of the bad field.
pub fn parse(json: &str) -> Result<SeedFile, SeedError> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        SeedError::Parse(SeedProblem {
            path: if path.is_empty() || path == "." {
                "$".to_string()
            } else {
                path
            },
            message: error.into_inner().to_string(),
        })
    })
}

/// Reads and parses a seed file.
pub fn read(path: &Path) -> Result<SeedFile, SeedError> {
    let json = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&json)
}

/// Checks the file against the seed rules and the codes Delius knows.
pub fn validate(file: &SeedFile, known: &KnownCodes) -> Result<(), SeedError> {
    let problems = validate::problems(file, known);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SeedError::Invalid(problems))
    }
}

/// One command of a seed plan.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedCommand {
    Reference(ReferenceEntry),
    Case(CaseBaseline),
    Custody(CustodyBaseline),
    Pom { crn: String, baseline: PomBaseline },
}

/// Splits a (valid) seed file into per-aggregate commands, reference data first. A disposal
/// without a sentence type takes its disposal type's, from the file or from `known`.
pub fn plan(file: &SeedFile, known: &KnownCodes) -> Vec<SeedCommand> {
    let data = &file.reference_data;
    let mut commands: Vec<SeedCommand> = Vec::new();
    let entries = data
        .probation_areas
        .iter()
        .cloned()
        .map(ReferenceEntry::ProbationArea)
        .chain(
            data.institutions
                .iter()
                .cloned()
                .map(ReferenceEntry::Institution),
        )
        .chain(data.pdus.iter().cloned().map(ReferenceEntry::Pdu))
        .chain(data.teams.iter().cloned().map(ReferenceEntry::Team))
        .chain(data.staff.iter().cloned().map(ReferenceEntry::Staff))
        .chain(
            data.office_locations
                .iter()
                .cloned()
                .map(ReferenceEntry::OfficeLocation),
        )
        .chain(
            data.disposal_types
                .iter()
                .cloned()
                .map(ReferenceEntry::DisposalType),
        );
    commands.extend(entries.map(SeedCommand::Reference));

    let mut known = known.clone();
    for disposal_type in &data.disposal_types {
        if let Some(sentence_type) = &disposal_type.sentence_type {
            known.insert_sentence_type(&disposal_type.code, sentence_type.clone());
        }
    }
    for case in &file.cases {
        let offender_id = case.person.offender_id;
        let mut custodies = Vec::new();
        let mut key_dates = Vec::new();
        let events =
            case.events
                .iter()
                .map(|event| SentenceEvent {
                    event_id: event.event_id,
                    event_number: event.event_number.clone(),
                    active: event.active,
                    referral_date: event.referral_date,
                    ftc_count: event.ftc_count,
                    in_breach: event.in_breach,
                    breach_end: event.breach_end,
                    first_release_date: event.first_release_date,
                    conviction_date: event.conviction_date,
                    main_offence: event.main_offence.clone(),
                    disposal: event.disposal.as_ref().map(|disposal| {
                        if let Some(custody) = &disposal.custody {
                            custodies.push(CustodyBaseline {
                                custody_id: custody.custody_id,
                                disposal_id: disposal.disposal_id,
                                event_id: event.event_id,
                                offender_id,
                                custodial_status_code: custody.custodial_status_code.clone(),
                                institution_code: custody.institution_code.clone(),
                                status_change_date: custody.status_change_date,
                                location_change_date: custody.location_change_date,
                                releases: custody.releases.clone(),
                                licence_conditions: custody.licence_conditions.clone(),
                            });
                            key_dates.extend(custody.key_dates.iter().map(|k| KeyDate {
                                key_date_id: k.key_date_id,
                                custody_id: custody.custody_id,
                                key_date_type_code: k.key_date_type_code.clone(),
                                key_date: k.key_date,
                            }));
                        }
                        Disposal {
                            disposal_id: disposal.disposal_id,
                            disposal_type_code: disposal.disposal_type_code.clone(),
                            sentence_type: disposal.sentence_type.clone().or_else(|| {
                                known.sentence_type(&disposal.disposal_type_code).cloned()
                            }),
                            disposal_date: disposal.disposal_date,
                            active: disposal.active,
                            termination_date: disposal.termination_date,
                            expected_end_date: disposal.expected_end_date,
                            requirements: disposal.requirements.clone(),
                        }
                    }),
                })
                .collect();
        commands.push(SeedCommand::Case(CaseBaseline {
            person: case.person.clone(),
            community_manager: case.community_manager.clone(),
            events,
        }));
        commands.extend(custodies.into_iter().map(SeedCommand::Custody));
        if !case.prison_managers.is_empty()
            || !case.responsible_officers.is_empty()
            || !key_dates.is_empty()
        {
            commands.push(SeedCommand::Pom {
                crn: case.person.crn.clone(),
                baseline: PomBaseline {
                    offender_id,
                    prison_managers: case.prison_managers.clone(),
                    responsible_officers: case.responsible_officers.clone(),
                    key_dates,
                },
            });
        }
    }
    commands
}

/// What a seed run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    /// Commands that wrote events.
    pub changed: usize,
    /// Commands that found their aggregate already holding the baseline.
    pub unchanged: usize,
    /// Events written.
    pub events: usize,
}

/// Validates `file` and loads it through the engine's command bus.
pub async fn load(engine: &Engine, file: &SeedFile, actor: &str) -> Result<SeedReport, SeedError> {
    let known = KnownCodes::for_engine(engine).await?;
    validate(file, &known)?;
    let correlation_id = Uuid::new_v4().to_string();
    let mut report = SeedReport::default();
    for command in plan(file, &known) {
        let outcome = match command {
            SeedCommand::Reference(entry) => {
                let id = entry.aggregate_id();
                run::<ReferenceData>(
                    engine,
                    &id,
                    ReferenceCommand::RecordEntry(entry),
                    actor,
                    &correlation_id,
                )
                .await?
            }
            SeedCommand::Case(baseline) => {
                let id = baseline.person.crn.clone();
                run::<Case>(
                    engine,
                    &id,
                    CaseCommand::RecordBaseline(Box::new(baseline)),
                    actor,
                    &correlation_id,
                )
                .await?
            }
            SeedCommand::Custody(baseline) => {
                let id = baseline.custody_id.to_string();
                run::<Custody>(
                    engine,
                    &id,
                    CustodyCommand::RecordBaseline(Box::new(baseline)),
                    actor,
                    &correlation_id,
                )
                .await?
            }
            SeedCommand::Pom { crn, baseline } => {
                run::<PomAllocation>(
                    engine,
                    &crn,
                    PomCommand::RecordBaseline(Box::new(baseline)),
                    actor,
                    &correlation_id,
                )
                .await?
            }
        };
        if outcome.events.is_empty() || outcome.duplicate {
            report.unchanged += 1;
        } else {
            report.changed += 1;
            report.events += outcome.events.len();
        }
    }
    Ok(report)
}

/// Namespace of seed message ids (uuid v5 over the command's JSON).
const SEED_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c3a_8b4e_4f0a_9d21_5e7c_3b9a_1d44);

async fn run<A>(
    engine: &Engine,
    aggregate_id: &str,
    command: <A::Command as HasBody>::Body,
    actor: &str,
    correlation_id: &str,
) -> Result<crate::store::CommandOutcome, SeedError>
where
    A: Routed,
    A::Command: HasBody + Clone + Send + Sync,
{
    let body_json = serde_json::to_vec(&command).unwrap_or_default();
    let message_id = format!(
        "seed:{}",
        Uuid::new_v5(
            &SEED_NAMESPACE,
            &[
                A::TYPE.as_bytes(),
                b"/",
                aggregate_id.as_bytes(),
                b"/",
                &body_json
            ]
            .concat()
        )
    );
    let metadata = Metadata {
        message_id,
        correlation_id: correlation_id.to_string(),
        causation_id: None,
        source: Source::Seed,
        actor: actor.to_string(),
        received_at: Utc::now(),
    };
    let timed = <A::Command as HasBody>::wrap(metadata.received_at, command);
    engine
        .bus
        .execute::<A>(aggregate_id, timed, &metadata)
        .await
        .map_err(|error| SeedError::Command {
            aggregate: format!("{}/{}", A::TYPE, aggregate_id),
            message: match error {
                BusError::Rejected(e) => e.to_string(),
                other => other.to_string(),
            },
        })
}

/// A command type that wraps a body with the time it was received.
pub trait HasBody {
    type Body: Serialize;
    fn wrap(at: chrono::DateTime<Utc>, body: Self::Body) -> Self;
}

impl<C: Serialize> HasBody for Timed<C> {
    type Body = C;
    fn wrap(at: chrono::DateTime<Utc>, body: C) -> Self {
        Timed::new(at, body)
    }
}

/// The CRNs a seed file defines (for tests and the demo).
pub fn crns(file: &SeedFile) -> BTreeSet<String> {
    file.cases.iter().map(|c| c.person.crn.clone()).collect()
}
