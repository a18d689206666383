//! Prison custody status (REFERENCE.md §4) on queue `prison-custody-status-to-delius`: a
//! person released from or received into prison. The message's movement — its
//! `additionalInformation.reason`, `nomisMovementReasonCode` and `prisonId`, or for a prison
//! identifier event the latest movement the Prison API knows ([`prison_api`]) — is looked
//! up in the movement table, then applied to **every active custodial event** of the person
//! and, when the location changes, the POM is auto-allocated.
//!
//! All the commands of one message (one `RecordMovement` per custody and the
//! `AutoAllocate`) are decided in one bus [`Unit`](crate::bus::Unit) and committed in one
//! transaction: either everything the message does is written or nothing is. The decision
//! time is the moment the bridge handled the message; because the unit is atomic, a
//! redelivery either finds the whole decision recorded or decides for the first time.

pub mod prison_api;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};

use aggregates::case::Case;
use aggregates::custody::movement::{self, Direction, FeatureFlags, Resolved};
use aggregates::custody::rules::{place, status};
use aggregates::custody::{
    Custody, CustodyCommand, CustodyError, Institution, ManagerFacts, MovementReference,
    MovementSummary, RecallReason, RecordMovement, SentenceFacts,
};
use aggregates::pom::{automatic, AutoAllocate, PomAllocation, PomCommand, PomError};
use aggregates::Timed;
use projections::{Metadata, Source};

use crate::amqp::envelope::Envelope;
use crate::amqp::outcome::HandlerOutcome;
use crate::bus::{BusError, UnitError};
use crate::engine::Engine;
use crate::reference;
use crate::upstream::UpstreamClient;

/// The Delius user the live integration writes as.
pub const SERVICE_USER: &str = automatic::USER;

/// The event types this integration handles.
pub mod event_type {
    pub const RELEASED: &str = "prison-offender-events.prisoner.released";
    pub const RECEIVED: &str = "prison-offender-events.prisoner.received";
    pub const IDENTIFIER_ADDED: &str = "probation-case.prison-identifier.added";
    pub const IDENTIFIER_UPDATED: &str = "probation-case.prison-identifier.updated";
}

/// National codes the rules describe in notes (loaded by the migration, never by seeds).
const RECALL_REASONS: &[&str] = &["NN", "EOTL", "TSH", "IRC"];
const DESCRIBED: &[(&str, &[&str])] = &[
    ("r_release_type", &["ADL", "ECSL", "HDC"]),
    (
        "r_custodial_status",
        &["A", "B", "C", "D", "I", "P", "R", "T", "AT"],
    ),
    ("r_transfer_reason", &["TWR"]),
];

/// A movement as the message (or the Prison API) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub noms_number: String,
    pub direction: Direction,
    /// `ADMISSION`, `RELEASED`…
    pub movement_type: String,
    pub reason_code: String,
    pub occurred_at: DateTime<Utc>,
    /// The NOMIS agency: received into, or released from.
    pub prison: Option<String>,
}

/// Handles the prison custody status queue.
#[derive(Debug, Clone)]
pub struct PrisonCustodyStatus {
    engine: Arc<Engine>,
    upstream: UpstreamClient,
    prison_api_url: Option<String>,
    flags: FeatureFlags,
}

type Props = BTreeMap<String, String>;

fn ignored(name: &str, properties: Props) -> HandlerOutcome {
    HandlerOutcome::Ignored {
        name: name.to_string(),
        properties,
    }
}

fn custody_outcome(error: BusError<CustodyError>) -> HandlerOutcome {
    match &error {
        BusError::Rejected(CustodyError::Ids(_)) => HandlerOutcome::failed(error.to_string()),
        BusError::Rejected(_) => HandlerOutcome::rejected(error.to_string()),
        _ => HandlerOutcome::failed(error.to_string()),
    }
}

fn pom_outcome(error: BusError<PomError>) -> HandlerOutcome {
    match &error {
        BusError::Rejected(PomError::OffenderChanged { .. }) => {
            HandlerOutcome::rejected(error.to_string())
        }
        _ => HandlerOutcome::failed(error.to_string()),
    }
}

/// The person the movement is about, and their active custodial events.
struct Person {
    crn: String,
    offender_id: i64,
    community_manager: Option<ManagerFacts>,
    custodies: Vec<ActiveCustody>,
}

/// A custody stream as read for a message ([`CommandBus::load_for`](crate::bus::CommandBus::load_for)).
type LoadedCustody = (i64, Result<(Custody, usize), crate::store::CommandOutcome>);
/// The POM allocation stream, likewise.
type LoadedPom = Result<(PomAllocation, usize), crate::store::CommandOutcome>;

struct ActiveCustody {
    custody_id: i64,
    event_id: i64,
    institution_code: Option<String>,
    sentence: SentenceFacts,
}

impl PrisonCustodyStatus {
    /// A handler writing through `engine`, asking the Prison API at `prison_api_url` (for
    /// prison identifier events) through `upstream`, with the movement table's `flags`.
    pub fn new(
        engine: Arc<Engine>,
        upstream: UpstreamClient,
        prison_api_url: Option<String>,
        flags: FeatureFlags,
    ) -> Self {
        Self {
            engine,
            upstream,
            prison_api_url,
            flags,
        }
    }

    /// Handles one message of the queue.
    pub async fn handle(&self, envelope: &Envelope) -> HandlerOutcome {
        let received_at = Utc::now();
        self.handle_at(envelope, received_at)
            .await
            .unwrap_or_else(|outcome| outcome)
    }

    async fn handle_at(
        &self,
        envelope: &Envelope,
        received_at: DateTime<Utc>,
    ) -> Result<HandlerOutcome, HandlerOutcome> {
        let movement = match envelope.event_type.as_str() {
            event_type::RELEASED | event_type::RECEIVED => {
                Self::movement_of(envelope, received_at)?
            }
            event_type::IDENTIFIER_ADDED | event_type::IDENTIFIER_UPDATED => {
                let noms = envelope
                    .event
                    .noms_number()
                    .ok_or_else(|| HandlerOutcome::rejected("no NOMS number in personReference"))?;
                let base = self.prison_api_url.as_deref().ok_or_else(|| {
                    HandlerOutcome::rejected(
                        "PRISON_API_URL is not configured: prison identifier events need it",
                    )
                })?;
                match prison_api::latest_movement(&self.upstream, base, noms).await {
                    Ok(movement) => movement,
                    Err(prison_api::LatestMovement::Ignored { name, detail }) => {
                        let mut props = Props::new();
                        props.insert("nomsNumber".into(), noms.to_string());
                        props.insert("details".into(), detail);
                        return Ok(ignored(name, props));
                    }
                    Err(prison_api::LatestMovement::Upstream(error)) => {
                        return Err(HandlerOutcome::upstream(error))
                    }
                    Err(prison_api::LatestMovement::Inconsistent(reason)) => {
                        return Err(HandlerOutcome::failed(reason))
                    }
                }
            }
            other => {
                return Err(HandlerOutcome::rejected(format!(
                    "unhandled event type {other}"
                )))
            }
        };
        let mut props = movement_props(&movement);
        let resolved =
            match movement::resolve(&movement.movement_type, &movement.reason_code, &self.flags) {
                Ok(resolved) => resolved,
                Err(not_applicable) => {
                    if let movement::NotApplicable::FeatureFlagNotActive { flag } = &not_applicable
                    {
                        props.insert("featureFlag".into(), (*flag).to_string());
                    }
                    return Ok(ignored(not_applicable.name(), props));
                }
            };
        let metadata = Metadata {
            message_id: envelope.message_id.clone(),
            correlation_id: envelope.message_id.clone(),
            causation_id: None,
            source: Source::Amqp,
            actor: SERVICE_USER.into(),
            received_at,
        };
        let (person, loaded) = match self.person(&movement.noms_number, &metadata).await? {
            Ok(person) => person,
            Err(name) => return Ok(ignored(name, props)),
        };
        props.insert("crn".into(), person.crn.clone());
        let reference = self.reference(&movement, &person).await?;
        let (summaries, pom) = self
            .apply(&movement, &resolved, &person, loaded, &reference, &metadata)
            .await?;
        Ok(outcome(&summaries, pom, props))
    }

    /// The movement of a released/received message.
    fn movement_of(
        envelope: &Envelope,
        received_at: DateTime<Utc>,
    ) -> Result<Movement, HandlerOutcome> {
        let event = &envelope.event;
        let noms_number = event.noms_number().ok_or_else(|| {
            HandlerOutcome::rejected(
                "no NOMS number in personReference or additionalInformation.nomsNumber",
            )
        })?;
        let movement_type = event
            .info_str("reason")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| HandlerOutcome::rejected("additionalInformation.reason is required"))?;
        let direction = if envelope.event_type == event_type::RECEIVED {
            Direction::Received
        } else {
            Direction::Released
        };
        Ok(Movement {
            noms_number: noms_number.to_string(),
            direction,
            movement_type: movement_type.to_string(),
            reason_code: event
                .info_str("nomisMovementReasonCode")
                .unwrap_or_default()
                .to_string(),
            // Delius keeps times to the second.
            occurred_at: event
                .occurred_at
                .map_or(received_at, |t| t.with_timezone(&Utc))
                .with_nanosecond(0)
                .unwrap_or(received_at),
            prison: event
                .info_str("prisonId")
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        })
    }

    /// The person with this NOMS number and their active custodial events; `Err(name)` is
    /// the ignorable outcome when there is no single person or no active custody.
    ///
    /// Each custody is read as the unit will need it (`load_for` this message): those reads
    /// are handed to the first unit ([`Unit::preload`](crate::bus::Unit::preload)) so that it
    /// does not read the streams again.
    async fn person(
        &self,
        noms: &str,
        metadata: &Metadata,
    ) -> Result<Result<(Person, Vec<LoadedCustody>), &'static str>, HandlerOutcome> {
        let db = |e: sqlx::Error| HandlerOutcome::failed(e.to_string());
        let people: Vec<_> = reference::rows_where(&self.engine, "offender", "noms_number", noms)
            .await
            .map_err(db)?
            .into_iter()
            .filter(|row| !reference::boolean(row, "soft_deleted").unwrap_or(false))
            .collect();
        let row = match people.as_slice() {
            [] => return Ok(Err("MissingNomsNumber")),
            [one] => one,
            _ => return Ok(Err("DuplicateNomsNumber")),
        };
        let crn = reference::string(row, "crn")
            .ok_or_else(|| HandlerOutcome::failed("offender without CRN"))?;
        let (case, _) = self
            .engine
            .bus
            .load::<Case>(&crn)
            .await
            .map_err(|e| HandlerOutcome::failed(e.to_string()))?;
        let Some(baseline) = case.baseline.filter(|b| !b.person.soft_deleted) else {
            return Ok(Err("MissingNomsNumber"));
        };
        let mut custodies = Vec::new();
        let mut loaded = Vec::new();
        for event in baseline.events.iter().filter(|e| e.active) {
            let Some(disposal) = event.disposal.as_ref().filter(|d| {
                d.active && matches!(d.sentence_type.as_deref(), Some("SC") | Some("NC"))
            }) else {
                continue;
            };
            let rows = reference::rows_where(
                &self.engine,
                "custody",
                "disposal_id",
                &disposal.disposal_id.to_string(),
            )
            .await
            .map_err(db)?;
            for row in rows {
                let Some(custody_id) = reference::int(&row, "custody_id") else {
                    continue;
                };
                let failed = |e: crate::store::StoreError| HandlerOutcome::failed(e.to_string());
                let id = custody_id.to_string();
                let bus = &self.engine.bus;
                let for_unit = bus
                    .load_for::<Custody>(metadata, &id)
                    .await
                    .map_err(failed)?;
                // A redelivery: the unit answers the recorded outcome; the state is read on
                // its own for the rules below.
                let current = match &for_unit {
                    Ok((custody, _)) => custody.current.clone(),
                    Err(_) => bus.load::<Custody>(&id).await.map_err(failed)?.0.current,
                };
                let Some(current) = current else {
                    continue;
                };
                if status::is_terminated(&current.custodial_status_code) {
                    continue;
                }
                // Only the custodies the unit will decide on.
                loaded.push((custody_id, for_unit));
                custodies.push(ActiveCustody {
                    custody_id,
                    event_id: event.event_id,
                    institution_code: current.institution_code.clone(),
                    sentence: SentenceFacts {
                        disposal_date: disposal.disposal_date,
                        disposal_type_code: disposal.disposal_type_code.clone(),
                        first_release_date: event.first_release_date,
                    },
                });
            }
        }
        if custodies.is_empty() {
            return Ok(Err("NoActiveCustodialEvent"));
        }
        Ok(Ok((
            Person {
                crn,
                offender_id: baseline.person.offender_id,
                community_manager: baseline.community_manager.map(|m| ManagerFacts {
                    offender_manager_id: m.offender_manager_id,
                    staff_code: m.staff_code,
                    team_code: m.team_code,
                    probation_area_code: m.probation_area_code,
                }),
                custodies,
            },
            loaded,
        )))
    }

    /// The reference data the rules read for this movement, in two round trips: the
    /// institutions (the custodies', the placeholders and the prison received into), the recall
    /// reasons and the described codes; then the institutions' prison areas and the recall
    /// reasons' termination reasons.
    async fn reference(
        &self,
        movement: &Movement,
        person: &Person,
    ) -> Result<(Option<Institution>, MovementReference), HandlerOutcome> {
        let db = |e: sqlx::Error| HandlerOutcome::failed(e.to_string());
        let codes: BTreeSet<&str> = person
            .custodies
            .iter()
            .filter_map(|c| c.institution_code.as_deref())
            .chain(place::ALL.iter().copied())
            .collect();
        let mut lookups = vec![
            reference::Lookup::new("r_institution", "code", codes.iter()),
            reference::Lookup::new("r_institution", "nomis_code", movement.prison.iter()),
            reference::Lookup::new("r_recall_reason", "code", RECALL_REASONS),
        ];
        lookups.extend(
            DESCRIBED
                .iter()
                .map(|(table, codes)| reference::Lookup::new(table, "code", codes.iter())),
        );
        let found = reference::lookup_many(&self.engine, &lookups)
            .await
            .map_err(db)?;
        let (institutions, prisons, recall_reasons) = (&found[0], &found[1], &found[2]);

        let terminations: BTreeSet<String> = recall_reasons
            .iter()
            .filter_map(|row| reference::string(row, "termination_reason_code"))
            .collect();
        let institution_codes: BTreeSet<String> = institutions
            .iter()
            .chain(prisons.first())
            .filter_map(|row| reference::string(row, "code"))
            .collect();
        let second = reference::lookup_many(
            &self.engine,
            &[
                reference::Lookup::new("probation_area", "institution_code", &institution_codes),
                reference::Lookup::new("r_termination_reason", "code", &terminations),
            ],
        )
        .await
        .map_err(db)?;
        let (areas, termination_rows) = (&second[0], &second[1]);
        // The first area (in code order) standing for each institution.
        let mut prison_areas: BTreeMap<String, String> = BTreeMap::new();
        for area in areas {
            if let (Some(institution), Some(code)) = (
                reference::string(area, "institution_code"),
                reference::string(area, "code"),
            ) {
                prison_areas.entry(institution).or_insert(code);
            }
        }
        let institution = |row: &serde_json::Map<String, serde_json::Value>| {
            let code = reference::string(row, "code").unwrap_or_default();
            Institution {
                description: reference::string(row, "description").unwrap_or_else(|| code.clone()),
                nomis_code: reference::string(row, "nomis_code"),
                immigration_removal_centre: reference::boolean(row, "immigration_removal_centre")
                    .unwrap_or(false),
                secure_hospital: reference::boolean(row, "secure_hospital").unwrap_or(false),
                probation_area_code: reference::string(row, "probation_area_code"),
                prison_area_code: prison_areas.get(&code).cloned(),
                code,
            }
        };

        let prison = prisons.first().map(institution);
        if movement.direction == Direction::Received && prison.is_none() {
            return Err(HandlerOutcome::rejected(format!(
                "no Delius institution for the NOMIS prison {:?} the person was received into",
                movement.prison.as_deref().unwrap_or("(none)")
            )));
        }
        let mut reference = MovementReference::default();
        reference.institutions.extend(prison.clone());
        reference.institutions.extend(
            institutions
                .iter()
                .map(institution)
                .filter(|i| prison.as_ref().is_none_or(|p| p.code != i.code)),
        );
        let description_of = |row: &serde_json::Map<String, serde_json::Value>| {
            reference::string(row, "description").unwrap_or_default()
        };
        for row in termination_rows {
            if let Some(code) = reference::string(row, "code") {
                reference
                    .descriptions
                    .insert(format!("r_termination_reason/{code}"), description_of(row));
            }
        }
        // In the order of RECALL_REASONS.
        for code in RECALL_REASONS {
            if let Some(row) = recall_reasons
                .iter()
                .find(|row| reference::string(row, "code").as_deref() == Some(*code))
            {
                reference.recall_reasons.push(RecallReason {
                    code: (*code).to_string(),
                    description: reference::string(row, "description")
                        .unwrap_or_else(|| (*code).to_string()),
                    termination_reason_code: reference::string(row, "termination_reason_code"),
                });
            }
        }
        for ((table, _), rows) in DESCRIBED.iter().zip(&found[3..]) {
            for row in rows {
                if let Some(code) = reference::string(row, "code") {
                    reference
                        .descriptions
                        .insert(format!("{table}/{code}"), description_of(row));
                }
            }
        }
        Ok((prison, reference))
    }

    /// Names of the POMs' areas, teams and staff for the transfer contact notes.
    async fn pom_names(
        &self,
        crn: &str,
        area: &str,
        metadata: &Metadata,
    ) -> Result<(BTreeMap<String, String>, LoadedPom), HandlerOutcome> {
        let db = |e: sqlx::Error| HandlerOutcome::failed(e.to_string());
        // Read as the unit will need it (`load_for` this message), and handed to it.
        let loaded = self
            .engine
            .bus
            .load_for::<PomAllocation>(metadata, crn)
            .await
            .map_err(|e| HandlerOutcome::failed(e.to_string()))?;
        let Ok((pom, _)) = &loaded else {
            // A redelivery: the unit answers the recorded outcome without deciding.
            return Ok((BTreeMap::new(), loaded));
        };
        let mut wanted: BTreeSet<(&str, String)> = BTreeSet::new();
        for manager in pom.current.iter().flat_map(|c| c.prison_managers.iter()) {
            wanted.insert(("probation_area", manager.probation_area_code.clone()));
            wanted.insert(("team", manager.team_code.clone()));
            wanted.insert(("staff", manager.staff_code.clone()));
        }
        wanted.insert(("staff", format!("{area}ALLU")));
        const TABLES: [&str; 3] = ["probation_area", "team", "staff"];
        let lookups: Vec<_> = TABLES
            .iter()
            .map(|table| {
                let codes = wanted.iter().filter(|(t, _)| t == table).map(|(_, c)| c);
                reference::Lookup::new(table, "code", codes)
            })
            .collect();
        let found = reference::lookup_many(&self.engine, &lookups)
            .await
            .map_err(db)?;
        let mut names = BTreeMap::new();
        for (table, rows) in TABLES.iter().zip(&found) {
            for row in rows {
                let code = reference::string(row, "code").unwrap_or_default();
                let name = if *table == "staff" {
                    format!(
                        "{} {}",
                        reference::string(row, "forename").unwrap_or_default(),
                        reference::string(row, "surname").unwrap_or_default()
                    )
                } else {
                    reference::string(row, "description").unwrap_or_default()
                };
                names.insert(format!("{table}/{code}"), name);
            }
        }
        Ok((names, loaded))
    }

    /// Decides every command of the message in one unit and commits it, planning again on a
    /// conflict. Returns each custody's summary and the POM allocation's result.
    async fn apply(
        &self,
        movement: &Movement,
        resolved: &Resolved,
        person: &Person,
        loaded: Vec<LoadedCustody>,
        (prison, reference): &(Option<Institution>, MovementReference),
        metadata: &Metadata,
    ) -> Result<(Vec<(i64, MovementSummary)>, Option<String>), HandlerOutcome> {
        let bus = &self.engine.bus;
        let mut attempt = 0;
        // The streams `person` read go to the first unit only: a unit planned again after a
        // conflict reads them afresh.
        let mut loaded = Some(loaded);
        loop {
            attempt += 1;
            let mut unit = bus.unit(metadata);
            for (custody_id, custody) in loaded.take().into_iter().flatten() {
                unit.preload::<Custody>(&custody_id.to_string(), custody);
            }
            let mut summaries = Vec::new();
            for custody in &person.custodies {
                let command = CustodyCommand::RecordMovement(Box::new(RecordMovement {
                    direction: movement.direction,
                    movement_type: movement.movement_type.clone(),
                    reason_code: resolved.reason_code.clone(),
                    occurred_at: movement.occurred_at,
                    actions: resolved.actions.clone(),
                    nomis_prison_code: movement.prison.clone(),
                    prison_code: prison.as_ref().map(|p| p.code.clone()),
                    sentence: custody.sentence.clone(),
                    community_manager: person.community_manager.clone(),
                    reference: reference.clone(),
                }));
                let decision = unit
                    .execute::<Custody>(
                        &custody.custody_id.to_string(),
                        Timed::new(metadata.received_at, command),
                    )
                    .await
                    .map_err(custody_outcome)?;
                let summary: MovementSummary =
                    serde_json::from_value(decision.reply).unwrap_or_default();
                summaries.push((custody.custody_id, summary));
            }
            let area = summaries.iter().find_map(|(_, s)| s.pom_area_code.clone());
            let mut pom = None;
            if let Some(area) = area {
                let event_id = person
                    .custodies
                    .iter()
                    .zip(&summaries)
                    .find(|(_, (_, s))| s.pom_area_code.is_some())
                    .map(|(c, _)| c.event_id);
                let (names, pom_loaded) = self.pom_names(&person.crn, &area, metadata).await?;
                unit.preload::<PomAllocation>(&person.crn, pom_loaded);
                let command = PomCommand::AutoAllocate(Box::new(AutoAllocate {
                    offender_id: person.offender_id,
                    event_id,
                    probation_area_code: area.clone(),
                    allocation_date: movement.occurred_at,
                    names,
                }));
                let decision = unit
                    .execute::<PomAllocation>(
                        &person.crn,
                        Timed::new(metadata.received_at, command),
                    )
                    .await
                    .map_err(pom_outcome)?;
                pom = decision.reply["result"].as_str().map(str::to_string);
            }
            match unit.commit().await {
                Ok(_) => return Ok((summaries, pom)),
                Err(UnitError::Conflict) if attempt < bus.max_attempts() => {
                    tracing::debug!(attempt, "movement unit conflicted; planning again");
                    bus.back_off(attempt).await;
                }
                Err(error) => return Err(HandlerOutcome::failed(error.to_string())),
            }
        }
    }
}

/// The live telemetry properties of a movement.
fn movement_props(movement: &Movement) -> Props {
    let mut props = Props::new();
    props.insert("occurredAt".into(), movement.occurred_at.to_rfc3339());
    props.insert("nomsNumber".into(), movement.noms_number.clone());
    props.insert("reason".into(), movement.movement_type.clone());
    props.insert("movementReason".into(), movement.reason_code.clone());
    props.insert("movementType".into(), movement.direction.as_str().into());
    if let Some(prison) = &movement.prison {
        props.insert("institution".into(), prison.clone());
    }
    props
}

/// Success when any custody changed (named after the changes, e.g.
/// `Recalled+StatusUpdated+LocationUpdated`), else ignored (named after the ignorable
/// outcomes); the properties say what happened to each custody.
fn outcome(
    summaries: &[(i64, MovementSummary)],
    pom: Option<String>,
    mut props: Props,
) -> HandlerOutcome {
    let mut changed: Vec<&str> = Vec::new();
    let mut ignored_names: Vec<&str> = Vec::new();
    for (custody_id, summary) in summaries {
        for name in &summary.changed {
            if !changed.contains(&name.as_str()) {
                changed.push(name);
            }
        }
        for i in &summary.ignored {
            if !ignored_names.contains(&i.name.as_str()) {
                ignored_names.push(&i.name);
            }
        }
        let mut results: Vec<String> = summary.changed.clone();
        results.extend(
            summary
                .ignored
                .iter()
                .map(|i| format!("{} ({}: {})", i.name, i.action, i.detail)),
        );
        props.insert(format!("custody.{custody_id}"), results.join("; "));
        if let Some(previous) = &summary.previous_institution_code {
            props.insert("previousInstitution".into(), previous.clone());
        }
    }
    if let Some(pom) = pom {
        props.insert("pom".into(), pom);
    }
    if changed.is_empty() {
        ignored(&ignored_names.join("+"), props)
    } else {
        HandlerOutcome::Success {
            name: changed.join("+"),
            properties: props,
        }
    }
}

impl crate::amqp::handler::MessageHandler for PrisonCustodyStatus {
    fn handle<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> aggregates::common::BoxFuture<'a, HandlerOutcome> {
        Box::pin(PrisonCustodyStatus::handle(self, envelope))
    }
}
