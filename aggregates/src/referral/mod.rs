//! `Referral`: the NSI that collects a Refer and Monitor (CRS) referral in Delius, keyed by the
//! referral id. Delius is a collector, not the owner (interventions ADR 0006): the NSI is found
//! by `external_reference = urn:hmpps:interventions-referral:{id}`.
//!
//! Starting a referral is idempotent: a repeated start changes only what differs (notes, start
//! date, status back to in progress).

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{crs, london, Contact, IdError, IdSequence, Services, Timed};

#[cfg(test)]
mod tests;

/// The URN of a referral: the NSI's external reference.
pub fn referral_urn(referral_id: Uuid) -> String {
    format!("urn:hmpps:interventions-referral:{referral_id}")
}

/// NSI status codes.
pub mod status {
    pub const IN_PROGRESS: &str = "INPROG";
    pub const COMPLETED: &str = "COMP";
    /// The status-change contact type of each status (`R_NSI_STATUS.contact_type_id`).
    pub fn contact_type(status: &str) -> &'static str {
        match status {
            COMPLETED => "C092",
            _ => "C091",
        }
    }
}

/// The NSI type of a CRS contract type (REFERENCE.md §2.3), `None` when unknown.
pub fn nsi_type(contract_type: &str) -> Option<&'static str> {
    Some(match contract_type {
        "ACC" => "CRS01",
        "ETE" => "CRS02",
        "MTR" => "CRS03",
        "DNR" | "DNR-K" | "DNR-L" | "DNR-NE" | "DNR-Y" | "DNR-NEN" | "DNR-SC" | "DNR-SY"
        | "DNR-WM" | "DNR-SW" => "CRS04",
        "PWB" => "CRS05",
        "WOS" => "CRS06",
        "WSM" => "CRS07",
        "FBD-B" | "FBD-BU" | "FBD-EM" | "FBD-M" | "FBD-R" | "FBD-WM" | "FBD-L" | "FBD-SA"
        | "FBD-SC" | "FBD-SP" | "FBD-NE" | "FBD-SW" | "FBD-TA" | "FBD-TR" | "FBD-W" | "FBD-WI"
        | "FBD-Y" | "FBD-NW" => "CRS08",
        _ => return None,
    })
}

/// What the referral needs to know of the case, resolved before the command is built (and
/// recorded in the event, so the log alone rebuilds the NSI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceFacts {
    pub offender_id: i64,
    pub crn: String,
    /// The event (conviction) the referral is for: the request's `sentenceId`.
    pub event_id: i64,
    /// The first active rehabilitation activity requirement (main category `F`) of its disposal.
    pub rar_requirement_id: Option<i64>,
}

/// `PUT /probation-case/{crn}/referrals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartReferral {
    pub referral_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub contract_type: String,
    pub notes: String,
    pub sentence: SentenceFacts,
}

/// Which action-plan notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionPlanStage {
    Submitted,
    Approved,
}

impl ActionPlanStage {
    fn label(self) -> &'static str {
        match self {
            Self::Submitted => "Submitted",
            Self::Approved => "Approved",
        }
    }
}

/// `intervention.action-plan.submitted` / `.approved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyActionPlan {
    pub crn: String,
    pub stage: ActionPlanStage,
    pub occurred_at: DateTime<Utc>,
    pub contract_type_name: String,
    pub referral_reference: String,
    pub prime_provider_name: String,
    pub url: String,
}

/// How a referral ended (`deliveryState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndType {
    Cancelled,
    PrematurelyEnded,
    Completed,
}

impl EndType {
    /// The NSI outcome code and its description (REFERENCE.md §2.3).
    pub fn outcome(self) -> (&'static str, &'static str) {
        match self {
            Self::Cancelled => ("CRS01", "Cancelled"),
            Self::PrematurelyEnded => ("CRS02", "Prematurely Ended"),
            Self::Completed => ("CRS03", "Completed"),
        }
    }
}

/// `intervention.referral.ended`, with the sent referral fetched from its detailUrl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndReferral {
    pub crn: String,
    pub end_type: EndType,
    /// `concludedAt`, else `endRequestedAt`.
    pub ended_at: DateTime<Utc>,
    pub contract_type: String,
    pub reference_number: String,
    pub provider: String,
    pub ui_url: String,
    pub end_of_service_report_submitted_at: Option<DateTime<Utc>>,
}

/// Commands on a referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReferralCommand {
    Start(Box<StartReferral>),
    NotifyActionPlan(Box<NotifyActionPlan>),
    End(Box<EndReferral>),
}

/// The NSI manager (`delius.nsi_manager`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NsiManager {
    pub nsi_manager_id: i64,
    pub probation_area_code: String,
    pub team_code: String,
    pub staff_code: String,
    pub start_date: DateTime<Utc>,
}

/// A row of `delius.nsi_status_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusHistory {
    pub nsi_status_history_id: i64,
    pub nsi_status_code: String,
    pub change_date: DateTime<Utc>,
}

/// Events of a referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReferralEvent {
    /// The NSI was created with its manager, status history and the NREF, status-change and
    /// NCOM contacts.
    ReferralStarted {
        referral_id: Uuid,
        nsi_id: i64,
        external_reference: String,
        offender_id: i64,
        crn: String,
        event_id: i64,
        requirement_id: Option<i64>,
        nsi_type_code: String,
        contract_type: String,
        referral_date: NaiveDate,
        started_at: DateTime<Utc>,
        status_code: String,
        notes: String,
        manager: NsiManager,
        history: StatusHistory,
        contacts: Vec<Contact>,
    },
    /// The referral's notes changed (the NSI notes are overwritten).
    ReferralNotesChanged { nsi_id: i64, notes: String },
    /// The referral's start changed (the NSI's actual start date is overwritten).
    ReferralStartChanged {
        nsi_id: i64,
        actual_start_date: DateTime<Utc>,
    },
    /// The NSI's status changed, with its history row and status-change contact.
    ReferralStatusChanged {
        nsi_id: i64,
        status_code: String,
        status_date: DateTime<Utc>,
        history: StatusHistory,
        contact: Contact,
    },
    /// A CRS notification contact (CRSNOTE) was added to the NSI.
    ReferralNoteAdded { contact: Contact },
    /// The NSI's outcome was set, with its NTER contact.
    ReferralOutcomeSet {
        nsi_id: i64,
        outcome_code: String,
        contact: Contact,
    },
    /// The NSI ended: actual end date set, no longer active.
    ReferralEnded {
        nsi_id: i64,
        actual_end_date: DateTime<Utc>,
    },
}

impl DomainEvent for ReferralEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ReferralStarted { .. } => "ReferralStarted",
            Self::ReferralNotesChanged { .. } => "ReferralNotesChanged",
            Self::ReferralStartChanged { .. } => "ReferralStartChanged",
            Self::ReferralStatusChanged { .. } => "ReferralStatusChanged",
            Self::ReferralNoteAdded { .. } => "ReferralNoteAdded",
            Self::ReferralOutcomeSet { .. } => "ReferralOutcomeSet",
            Self::ReferralEnded { .. } => "ReferralEnded",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

/// Broken referral rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralError {
    /// HTTP 400: the contract type has no NSI type.
    #[error("Unexpected Contract Type: {0}")]
    UnknownContractType(String),
    /// HTTP 404: the referral exists for another person.
    #[error("Unable to match Referral {urn} => CRN {crn}")]
    OtherPerson { urn: String, crn: String },
    /// A message about a referral whose NSI does not exist (rejected, not retried).
    #[error("NSI cannot be determined for {urn}")]
    NotFound { urn: String },
    /// HTTP 500 (retried): an id could not be allocated.
    #[error(transparent)]
    Ids(#[from] IdError),
}

/// The state of a referral's NSI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub nsi_id: Option<i64>,
    pub crn: String,
    pub offender_id: i64,
    pub event_id: i64,
    pub requirement_id: Option<i64>,
    pub nsi_type_code: String,
    pub contract_type: String,
    pub status_code: String,
    pub status_date: Option<DateTime<Utc>>,
    pub actual_start_date: Option<DateTime<Utc>>,
    pub notes: String,
    pub manager: Option<NsiManager>,
    pub outcome_code: Option<String>,
    pub actual_end_date: Option<DateTime<Utc>>,
    /// CRSNOTE contacts: (contact date, notes), to add each notification once a day.
    pub notes_contacts: Vec<(NaiveDate, String)>,
    pub referral_id: Option<Uuid>,
}

impl Referral {
    /// Whether the NSI exists.
    pub fn is_started(&self) -> bool {
        self.nsi_id.is_some()
    }

    fn nsi_contact(&self, contact_id: i64, contact_type: &str, at: DateTime<Utc>) -> Contact {
        let local = london::local(at);
        let manager = self.manager.as_ref();
        Contact {
            contact_id,
            offender_id: self.offender_id,
            event_id: Some(self.event_id),
            nsi_id: self.nsi_id,
            requirement_id: None,
            contact_type_code: contact_type.to_string(),
            contact_date: local.date(),
            start_time: Some(local.time()),
            end_time: None,
            staff_code: manager.map_or(crs::STAFF, |m| &m.staff_code).to_string(),
            team_code: manager.map_or(crs::TEAM, |m| &m.team_code).to_string(),
            probation_area_code: manager
                .map_or(crs::PROVIDER, |m| &m.probation_area_code)
                .to_string(),
            office_location_code: None,
            rar_activity: None,
            alert_active: false,
            linked_contact_id: None,
            external_reference: None,
            notes: None,
        }
    }
}

impl Aggregate for Referral {
    const TYPE: &'static str = "Referral";
    type Command = Timed<ReferralCommand>;
    type Event = ReferralEvent;
    type Error = ReferralError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            ReferralCommand::Start(start) => self.start(*start, services, sink).await,
            ReferralCommand::NotifyActionPlan(notify) => {
                self.notify_action_plan(*notify, services, sink).await
            }
            ReferralCommand::End(end) => self.end(*end, services, sink).await,
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReferralEvent::ReferralStarted {
                referral_id,
                nsi_id,
                offender_id,
                crn,
                event_id,
                requirement_id,
                nsi_type_code,
                contract_type,
                started_at,
                status_code,
                notes,
                manager,
                ..
            } => {
                *self = Referral {
                    nsi_id: Some(nsi_id),
                    crn,
                    offender_id,
                    event_id,
                    requirement_id,
                    nsi_type_code,
                    contract_type,
                    status_code,
                    status_date: Some(started_at),
                    actual_start_date: Some(started_at),
                    notes,
                    manager: Some(manager),
                    referral_id: Some(referral_id),
                    ..Referral::default()
                }
            }
            ReferralEvent::ReferralNotesChanged { notes, .. } => self.notes = notes,
            ReferralEvent::ReferralStartChanged {
                actual_start_date, ..
            } => self.actual_start_date = Some(actual_start_date),
            ReferralEvent::ReferralStatusChanged {
                status_code,
                status_date,
                ..
            } => {
                self.status_code = status_code;
                self.status_date = Some(status_date);
            }
            ReferralEvent::ReferralNoteAdded { contact } => {
                if contact.contact_type_code == NOTIFICATION {
                    self.notes_contacts
                        .push((contact.contact_date, contact.notes.unwrap_or_default()));
                }
            }
            ReferralEvent::ReferralOutcomeSet { outcome_code, .. } => {
                self.outcome_code = Some(outcome_code)
            }
            ReferralEvent::ReferralEnded {
                actual_end_date, ..
            } => self.actual_end_date = Some(actual_end_date),
        }
    }
}

/// The CRS notification contact type.
pub const NOTIFICATION: &str = "CRSNOTE";
/// The NSI terminated contact type.
pub const TERMINATED: &str = "NTER";

impl Referral {
    fn urn(&self) -> String {
        self.referral_id.map(referral_urn).unwrap_or_default()
    }

    fn require(&self, crn: &str) -> Result<i64, ReferralError> {
        match self.nsi_id {
            Some(nsi_id) if self.crn == crn => Ok(nsi_id),
            Some(_) => Err(ReferralError::OtherPerson {
                urn: self.urn(),
                crn: crn.to_string(),
            }),
            None => Err(ReferralError::NotFound { urn: self.urn() }),
        }
    }

    /// Whether a CRSNOTE on `date` already says `text`.
    fn noted(&self, date: NaiveDate, text: &str) -> bool {
        self.notes_contacts
            .iter()
            .any(|(d, notes)| *d == date && notes.contains(text))
    }

    async fn note(
        &mut self,
        services: &Services,
        sink: &EventSink<Self>,
        at: DateTime<Utc>,
        notes: String,
    ) -> Result<(), ReferralError> {
        let contact_id = services.ids.next_id(IdSequence::Contact).await?;
        let mut contact = self.nsi_contact(contact_id, NOTIFICATION, at);
        contact.notes = Some(notes);
        sink.write(ReferralEvent::ReferralNoteAdded { contact }, self)
            .await;
        Ok(())
    }

    async fn notify_action_plan(
        &mut self,
        n: NotifyActionPlan,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ReferralError> {
        self.require(&n.crn)?;
        let marker = format!("Action Plan {}", n.stage.label());
        if self.noted(london::local(n.occurred_at).date(), &marker) {
            return Ok(());
        }
        let notes = format!(
            "{marker} for {} Referral {} with Prime Provider {}\n{}",
            n.contract_type_name, n.referral_reference, n.prime_provider_name, n.url
        );
        self.note(services, sink, n.occurred_at, notes).await
    }

    async fn end(
        &mut self,
        e: EndReferral,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ReferralError> {
        let nsi_id = self.require(&e.crn)?;
        if self.status_code != status::COMPLETED {
            let notes = format!(
                "{}\nReferral Ended for {} Referral {} with Prime Provider {}\n{}",
                self.notes, e.contract_type, e.reference_number, e.provider, e.ui_url
            );
            let notes = notes.trim_start().to_string();
            sink.write(ReferralEvent::ReferralNotesChanged { nsi_id, notes }, self)
                .await;
            let history = StatusHistory {
                nsi_status_history_id: services.ids.next_id(IdSequence::NsiStatusHistory).await?,
                nsi_status_code: status::COMPLETED.into(),
                change_date: e.ended_at,
            };
            let contact_id = services.ids.next_id(IdSequence::Contact).await?;
            let contact = self.nsi_contact(
                contact_id,
                status::contact_type(status::COMPLETED),
                e.ended_at,
            );
            sink.write(
                ReferralEvent::ReferralStatusChanged {
                    nsi_id,
                    status_code: status::COMPLETED.into(),
                    status_date: e.ended_at,
                    history,
                    contact,
                },
                self,
            )
            .await;
        }
        let (outcome, description) = e.end_type.outcome();
        if self.outcome_code.as_deref() != Some(outcome) {
            let contact_id = services.ids.next_id(IdSequence::Contact).await?;
            let mut contact = self.nsi_contact(contact_id, TERMINATED, e.ended_at);
            contact.notes = Some(format!("NSI Terminated with Outcome: {description}"));
            sink.write(
                ReferralEvent::ReferralOutcomeSet {
                    nsi_id,
                    outcome_code: outcome.into(),
                    contact,
                },
                self,
            )
            .await;
        }
        if self.actual_end_date != Some(e.ended_at) {
            sink.write(
                ReferralEvent::ReferralEnded {
                    nsi_id,
                    actual_end_date: e.ended_at,
                },
                self,
            )
            .await;
        }
        if let Some(submitted_at) = e.end_of_service_report_submitted_at {
            let marker = "End of Service Report Submitted";
            if !self.noted(london::local(submitted_at).date(), marker) {
                let notes = format!(
                    "{marker} for {} Referral {} with Prime Provider {}\n{}",
                    e.contract_type, e.reference_number, e.provider, e.ui_url
                );
                self.note(services, sink, submitted_at, notes).await?;
            }
        }
        Ok(())
    }

    async fn start(
        &mut self,
        start: StartReferral,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ReferralError> {
        let urn = referral_urn(start.referral_id);
        if self.is_started() && self.crn != start.sentence.crn {
            return Err(ReferralError::OtherPerson {
                urn,
                crn: start.sentence.crn,
            });
        }
        if !self.is_started() {
            let nsi_type_code = nsi_type(&start.contract_type)
                .ok_or_else(|| ReferralError::UnknownContractType(start.contract_type.clone()))?;
            let ids = &services.ids;
            let nsi_id = ids.next_id(IdSequence::Nsi).await?;
            let manager = NsiManager {
                nsi_manager_id: ids.next_id(IdSequence::NsiManager).await?,
                probation_area_code: crs::PROVIDER.into(),
                team_code: crs::TEAM.into(),
                staff_code: crs::STAFF.into(),
                start_date: start.started_at,
            };
            let history = StatusHistory {
                nsi_status_history_id: ids.next_id(IdSequence::NsiStatusHistory).await?,
                nsi_status_code: status::IN_PROGRESS.into(),
                change_date: start.started_at,
            };
            // The contacts are built from the state the NSI will have.
            let draft = Referral {
                nsi_id: Some(nsi_id),
                crn: start.sentence.crn.clone(),
                offender_id: start.sentence.offender_id,
                event_id: start.sentence.event_id,
                manager: Some(manager.clone()),
                ..Referral::default()
            };
            let mut contacts = Vec::with_capacity(3);
            for contact_type in ["NREF", status::contact_type(status::IN_PROGRESS), "NCOM"] {
                let contact_id = ids.next_id(IdSequence::Contact).await?;
                contacts.push(draft.nsi_contact(contact_id, contact_type, start.started_at));
            }
            sink.write(
                ReferralEvent::ReferralStarted {
                    referral_id: start.referral_id,
                    nsi_id,
                    external_reference: urn,
                    offender_id: start.sentence.offender_id,
                    crn: start.sentence.crn.clone(),
                    event_id: start.sentence.event_id,
                    requirement_id: start.sentence.rar_requirement_id,
                    nsi_type_code: nsi_type_code.into(),
                    contract_type: start.contract_type.clone(),
                    referral_date: london::local(start.started_at).date(),
                    started_at: start.started_at,
                    status_code: status::IN_PROGRESS.into(),
                    notes: start.notes.clone(),
                    manager,
                    history,
                    contacts,
                },
                self,
            )
            .await;
            return Ok(());
        }
        let nsi_id = self.nsi_id.unwrap_or_default();
        if self.notes != start.notes {
            sink.write(
                ReferralEvent::ReferralNotesChanged {
                    nsi_id,
                    notes: start.notes.clone(),
                },
                self,
            )
            .await;
        }
        if self.actual_start_date != Some(start.started_at) {
            sink.write(
                ReferralEvent::ReferralStartChanged {
                    nsi_id,
                    actual_start_date: start.started_at,
                },
                self,
            )
            .await;
        }
        if self.status_code != status::IN_PROGRESS {
            let history = StatusHistory {
                nsi_status_history_id: services.ids.next_id(IdSequence::NsiStatusHistory).await?,
                nsi_status_code: status::IN_PROGRESS.into(),
                change_date: start.started_at,
            };
            let contact_id = services.ids.next_id(IdSequence::Contact).await?;
            let contact = self.nsi_contact(
                contact_id,
                status::contact_type(status::IN_PROGRESS),
                start.started_at,
            );
            sink.write(
                ReferralEvent::ReferralStatusChanged {
                    nsi_id,
                    status_code: status::IN_PROGRESS.into(),
                    status_date: start.started_at,
                    history,
                    contact,
                },
                self,
            )
            .await;
        }
        Ok(())
    }
}
