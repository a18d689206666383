//! `Diary`: a person's appointments (CRS sessions; later resettlement appointments), keyed by
//! CRN. DESIGN.md's Appointment aggregate is realised per person because the rules that guard
//! an appointment span all of them: the clash check, the failure-to-comply count of the event
//! and the RAR count of the NSI. One stream per person makes two clashing bookings conflict on
//! the stream, so exactly one can win.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{london, Contact, IdError, IdSequence, Services, Timed};

pub mod outcome;
#[cfg(test)]
mod tests;

pub use outcome::{Attended, NoSessionReason, OutcomeInput};

/// The URN of a CRS appointment: the contact's external reference.
pub fn appointment_urn(appointment_id: Uuid) -> String {
    format!("urn:hmpps:interventions-appointment:{appointment_id}")
}

/// Contact types of CRS appointments.
pub mod contact_type {
    /// CRS appointment counting towards a RAR.
    pub const CRS_RAR: &str = "CRSAPT";
    /// CRS appointment not counting towards a RAR.
    pub const CRS: &str = "CRSSAA";
    /// Refer to offender manager (the ROM enforcement action's contact).
    pub const REFER_TO_OM: &str = "AROM";
    /// Review enforcement status.
    pub const REVIEW_ENFORCEMENT: &str = "ARWS";

    /// Attendance contacts take part in the clash check (`R_CONTACT_TYPE.attendance_contact`).
    pub fn is_attendance(code: &str) -> bool {
        matches!(code, CRS_RAR | CRS | "COAP") || is_resettlement(code)
    }

    /// National-standards contacts count towards failures to comply.
    pub fn is_national_standards(code: &str) -> bool {
        matches!(code, CRS_RAR | CRS | "COAP")
    }

    fn is_resettlement(code: &str) -> bool {
        matches!(
            code,
            "RP1" | "RP2" | "RP3" | "RP4" | "RP5" | "RP6" | "RP7" | "RP8"
        )
    }
}

/// The enforcement action taken on a failure to comply: refer to offender manager.
pub mod enforcement {
    pub const ROM: &str = "ROM";
    pub const DESCRIPTION: &str = "Refer to Offender Manager";
    /// Days to respond (`R_ENFORCEMENT_ACTION.response_by_period`).
    pub const RESPONSE_DAYS: i64 = 7;
}

/// The referral an appointment belongs to, resolved from the `Referral` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferralFacts {
    pub urn: String,
    pub nsi_id: i64,
    pub event_id: i64,
    /// The NSI's requirement when it is a RAR.
    pub rar_requirement_id: Option<i64>,
}

/// The conviction event, for the failure-to-comply rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFacts {
    pub event_id: i64,
    pub disposal_date: NaiveDate,
    pub breach_end: Option<NaiveDate>,
    /// Failures tolerated before an enforcement review (`R_DISPOSAL_TYPE.ftc_limit`).
    pub ftc_limit: Option<i32>,
}

/// `PUT /probation-case/{crn}/referrals/{referralId}/appointments` (MergeAppointment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeAppointment {
    pub offender_id: i64,
    pub referral: ReferralFacts,
    pub event: EventFacts,
    pub appointment_id: Uuid,
    pub referral_reference: String,
    pub start: DateTime<Utc>,
    pub duration_minutes: i64,
    pub notes: Option<String>,
    pub office_location_code: Option<String>,
    pub counts_towards_rar: bool,
    pub outcome: Option<OutcomeInput>,
    pub previous_id: Option<Uuid>,
    pub delius_id: Option<i64>,
    pub reschedule_requested_by: Option<String>,
}

/// Session feedback from the interventions service (both feedback events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFeedback {
    pub referral: ReferralFacts,
    pub event: EventFacts,
    /// The URN of the appointment the latest feedback is about.
    pub appointment_urn: String,
    /// The Delius contact id upstream knows, tried when the URN matches nothing.
    pub delius_id: Option<i64>,
    pub outcome: OutcomeInput,
    /// "Session Feedback Recorded for …", appended to the appointment's notes.
    pub notes: String,
}

/// The referral ended: its future appointments without outcome are withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawFutureAppointments {
    pub nsi_id: i64,
}

/// Commands on a diary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiaryCommand {
    MergeAppointment(Box<MergeAppointment>),
    RecordFeedback(Box<RecordFeedback>),
    WithdrawFutureAppointments(WithdrawFutureAppointments),
}

/// Events of a diary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiaryEvent {
    /// An appointment contact was created.
    AppointmentBooked {
        contact: Contact,
        duration_minutes: i64,
    },
    /// Office location, notes or external reference of an appointment changed (new values).
    AppointmentDetailsChanged {
        contact_id: i64,
        office_location_code: Option<String>,
        notes: Option<String>,
        external_reference: Option<String>,
    },
    /// An outcome was recorded on an appointment.
    AppointmentOutcomeRecorded {
        contact_id: i64,
        outcome_code: String,
        attended: Option<bool>,
        complied: Option<bool>,
        /// Minutes credited (ATTC with a positive duration only); Delius shows them as hours
        /// with two decimals ([`hours_credited`]). Version 2.0: version 1.0 stored that
        /// rounded string as `hours_credited` (upcast by [`crate::upcasters`]).
        minutes_credited: Option<i64>,
        rar_activity: bool,
    },
    /// A failure to comply was enforced: ENFORCEMENT row and its action contact (AROM).
    EnforcementRecorded {
        enforcement_id: i64,
        contact_id: i64,
        action_code: String,
        response_date: NaiveDate,
        action_contact: Contact,
    },
    /// The event's failure-to-comply count changed.
    FailureToComplyCounted { event_id: i64, ftc_count: i32 },
    /// The failure-to-comply limit was passed: a review contact (ARWS).
    EnforcementReviewRequested { contact: Contact },
    /// The NSI's RAR day count changed.
    RarCountUpdated { nsi_id: i64, rar_count: i32 },
}

impl DomainEvent for DiaryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AppointmentBooked { .. } => "AppointmentBooked",
            Self::AppointmentDetailsChanged { .. } => "AppointmentDetailsChanged",
            Self::AppointmentOutcomeRecorded { .. } => "AppointmentOutcomeRecorded",
            Self::EnforcementRecorded { .. } => "EnforcementRecorded",
            Self::FailureToComplyCounted { .. } => "FailureToComplyCounted",
            Self::EnforcementReviewRequested { .. } => "EnforcementReviewRequested",
            Self::RarCountUpdated { .. } => "RarCountUpdated",
        }
        .into()
    }

    fn event_version(&self) -> String {
        match self {
            Self::AppointmentOutcomeRecorded { .. } => OUTCOME_RECORDED_VERSION,
            _ => "1.0",
        }
        .into()
    }
}

/// The current version of `AppointmentOutcomeRecorded` (2.0: whole minutes credited instead
/// of version 1.0's rounded hours string).
pub const OUTCOME_RECORDED_VERSION: &str = "2.0";

/// Broken diary rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiaryError {
    /// HTTP 400.
    #[error("Appointment started in the past and no outcome was provided")]
    PastAppointmentWithoutOutcome,
    /// HTTP 409.
    #[error("Appointment conflicts with an existing future appointment")]
    AppointmentClash,
    /// HTTP 400: the outcome's attendance and session answers map to no Delius outcome.
    #[error("Outcome Scenario Not Mapped")]
    OutcomeScenarioNotMapped,
    /// Feedback for an appointment Delius does not hold (rejected, not retried).
    #[error("appointment not found: {urn}")]
    AppointmentNotFound { urn: String, delius_id: Option<i64> },
    /// HTTP 400: a duration that is negative.
    #[error("durationInMinutes must not be negative")]
    NegativeDuration,
    /// HTTP 500 (retried): an id could not be allocated.
    #[error(transparent)]
    Ids(#[from] IdError),
}

/// One contact in the diary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiaryEntry {
    pub contact: Contact,
    pub duration_minutes: i64,
    pub outcome_code: Option<String>,
    pub attended: Option<bool>,
    pub complied: Option<bool>,
    pub enforcement: bool,
    pub soft_deleted: bool,
}

impl DiaryEntry {
    fn rar_activity(&self) -> bool {
        self.contact.rar_activity.unwrap_or(false)
    }
}

/// A person's diary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diary {
    pub entries: BTreeMap<i64, DiaryEntry>,
    pub ftc_counts: BTreeMap<i64, i32>,
    pub rar_counts: BTreeMap<i64, i32>,
}

fn minutes(time: NaiveTime) -> u32 {
    time.hour() * 60 + time.minute()
}

impl Diary {
    /// The live (not soft-deleted) appointment with this external reference, newest first.
    pub fn by_reference(&self, urn: &str) -> Option<&DiaryEntry> {
        self.entries
            .values()
            .rev()
            .find(|e| !e.soft_deleted && e.contact.external_reference.as_deref() == Some(urn))
    }

    /// Whether a new appointment at `date`, `start`–`end` clashes with another future
    /// attendance appointment without an outcome (other than `urns`).
    fn clashes(&self, date: NaiveDate, start: NaiveTime, end: NaiveTime, urns: &[&str]) -> bool {
        self.entries.values().any(|e| {
            let c = &e.contact;
            let (Some(s), Some(en)) = (c.start_time, c.end_time) else {
                return false;
            };
            contact_type::is_attendance(&c.contact_type_code)
                && !e.soft_deleted
                && e.outcome_code.is_none()
                && c.contact_date == date
                && minutes(s) < minutes(end)
                && minutes(en) > minutes(start)
                && c.external_reference
                    .as_deref()
                    .is_none_or(|r| !urns.contains(&r))
        })
    }

    fn ftc_count(&self, event: &EventFacts) -> i32 {
        let since = event
            .breach_end
            .map_or(event.disposal_date, |b| b.max(event.disposal_date));
        self.entries
            .values()
            .filter(|e| {
                !e.soft_deleted
                    && e.contact.event_id == Some(event.event_id)
                    && e.complied == Some(false)
                    && contact_type::is_national_standards(&e.contact.contact_type_code)
                    && e.contact.contact_date >= since
            })
            .map(|e| e.contact.contact_date)
            .collect::<BTreeSet<_>>()
            .len() as i32
    }

    fn rar_count(&self, nsi_id: i64) -> i32 {
        self.entries
            .values()
            .filter(|e| {
                !e.soft_deleted
                    && e.contact.nsi_id == Some(nsi_id)
                    && e.rar_activity()
                    && e.attended != Some(false)
                    && e.complied != Some(false)
            })
            .map(|e| e.contact.contact_date)
            .collect::<BTreeSet<_>>()
            .len() as i32
    }

    fn outstanding_review(&self, event: &EventFacts) -> bool {
        let since = event.breach_end.unwrap_or(NaiveDate::MIN);
        self.entries.values().any(|e| {
            e.contact.contact_type_code == contact_type::REVIEW_ENFORCEMENT
                && e.contact.event_id == Some(event.event_id)
                && e.outcome_code.is_none()
                && e.contact.contact_date >= since
        })
    }
}

fn append_notes(existing: Option<&str>, new: Option<&str>) -> Option<String> {
    match (existing, new) {
        (existing, None) => existing.map(str::to_string),
        (None, Some(new)) => Some(new.to_string()),
        (Some(existing), Some(new)) if existing.contains(new) => Some(existing.to_string()),
        (Some(existing), Some(new)) => Some(format!("{existing}\n{new}")),
    }
}

/// A contact about `appointment` (enforcement action, review), dated `at`, linked to it, with
/// its person, event, NSI and allocation.
fn linked_contact(
    appointment: &Contact,
    contact_id: i64,
    contact_type: &str,
    at: chrono::NaiveDateTime,
    notes: Option<String>,
) -> Contact {
    Contact {
        contact_id,
        contact_type_code: contact_type.into(),
        requirement_id: None,
        contact_date: at.date(),
        start_time: Some(at.time()),
        end_time: None,
        office_location_code: None,
        rar_activity: None,
        linked_contact_id: Some(appointment.contact_id),
        external_reference: None,
        notes,
        ..appointment.clone()
    }
}

/// Hours for `minutes`, rounded half-up to two decimals.
pub fn hours_credited(minutes: i64) -> String {
    let hundredths = (minutes * 100 + 30) / 60;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The whole minutes that [`hours_credited`] shows as `hours` ("1.50" → 90): the inverse the
/// version 1.0 → 2.0 upcaster of `AppointmentOutcomeRecorded` needs. `None` when `hours` is
/// not a non-negative decimal; the nearest minute when no whole minute rounds to it.
pub fn minutes_for_hours(hours: &str) -> Option<i64> {
    let (whole, fraction) = hours.split_once('.').unwrap_or((hours, "0"));
    if whole.is_empty() || fraction.is_empty() || fraction.len() > 2 {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let hundredths = whole.parse::<i64>().ok()?.checked_mul(100)? + fraction;
    // hours_credited(m) = floor((100m + 30) / 60): the one m with 100m + 30 in [60h, 60h + 59].
    let exact = (60 * hundredths - 30 + 99).div_euclid(100);
    Some(
        if hours_credited(exact) == format!("{}.{:02}", hundredths / 100, hundredths % 100) {
            exact
        } else {
            (hundredths * 60 + 50) / 100
        },
    )
}

impl Aggregate for Diary {
    const TYPE: &'static str = "Diary";
    type Command = Timed<DiaryCommand>;
    type Event = DiaryEvent;
    type Error = DiaryError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command.command {
            DiaryCommand::MergeAppointment(merge) => {
                self.merge(*merge, command.at, services, sink).await
            }
            DiaryCommand::RecordFeedback(feedback) => {
                self.record_feedback(*feedback, command.at, services, sink)
                    .await
            }
            DiaryCommand::WithdrawFutureAppointments(withdraw) => {
                self.withdraw_future(withdraw.nsi_id, command.at, sink)
                    .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            DiaryEvent::AppointmentBooked {
                contact,
                duration_minutes,
            } => self.add(contact, duration_minutes),
            DiaryEvent::EnforcementReviewRequested { contact } => self.add(contact, 0),
            DiaryEvent::AppointmentDetailsChanged {
                contact_id,
                office_location_code,
                notes,
                external_reference,
            } => {
                if let Some(e) = self.entries.get_mut(&contact_id) {
                    e.contact.office_location_code = office_location_code;
                    e.contact.notes = notes;
                    e.contact.external_reference = external_reference;
                }
            }
            DiaryEvent::AppointmentOutcomeRecorded {
                contact_id,
                outcome_code,
                attended,
                complied,
                rar_activity,
                ..
            } => {
                if let Some(e) = self.entries.get_mut(&contact_id) {
                    e.outcome_code = Some(outcome_code);
                    e.attended = attended;
                    e.complied = complied;
                    e.contact.rar_activity = Some(rar_activity);
                }
            }
            DiaryEvent::EnforcementRecorded {
                contact_id,
                action_contact,
                ..
            } => {
                if let Some(e) = self.entries.get_mut(&contact_id) {
                    e.enforcement = true;
                }
                self.add(action_contact, 0);
            }
            DiaryEvent::FailureToComplyCounted {
                event_id,
                ftc_count,
            } => {
                self.ftc_counts.insert(event_id, ftc_count);
            }
            DiaryEvent::RarCountUpdated { nsi_id, rar_count } => {
                self.rar_counts.insert(nsi_id, rar_count);
            }
        }
    }
}

impl Diary {
    fn add(&mut self, contact: Contact, duration_minutes: i64) {
        self.entries.insert(
            contact.contact_id,
            DiaryEntry {
                contact,
                duration_minutes,
                outcome_code: None,
                attended: None,
                complied: None,
                enforcement: false,
                soft_deleted: false,
            },
        );
    }

    async fn merge(
        &mut self,
        m: MergeAppointment,
        now: DateTime<Utc>,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DiaryError> {
        if m.duration_minutes < 0 {
            return Err(DiaryError::NegativeDuration);
        }
        let urn = appointment_urn(m.appointment_id);
        let previous_urn = m.previous_id.map(appointment_urn);
        let start = london::local(m.start);
        let end = london::local(m.start + Duration::minutes(m.duration_minutes));
        if m.start < now && m.outcome.is_none() {
            return Err(DiaryError::PastAppointmentWithoutOutcome);
        }
        // Resolve the outcome before anything is written: an unmapped one writes nothing.
        let outcome = m
            .outcome
            .as_ref()
            .map(OutcomeInput::delius_outcome)
            .transpose()?;
        if m.start > now {
            let mut urns = vec![urn.as_str()];
            if let Some(previous) = &previous_urn {
                urns.push(previous);
            }
            if self.clashes(start.date(), start.time(), end.time(), &urns) {
                return Err(DiaryError::AppointmentClash);
            }
        }
        let rar_activity = m.counts_towards_rar && m.referral.rar_requirement_id.is_some();
        let found = self
            .by_reference(previous_urn.as_deref().unwrap_or(&urn))
            .or_else(|| m.delius_id.and_then(|id| self.entries.get(&id)))
            .cloned();
        let target = match found {
            None => {
                let contact_id = services.ids.next_id(IdSequence::Contact).await?;
                let contact = Contact {
                    contact_id,
                    offender_id: m.offender_id,
                    event_id: Some(m.referral.event_id),
                    nsi_id: Some(m.referral.nsi_id),
                    requirement_id: m.referral.rar_requirement_id.filter(|_| rar_activity),
                    contact_type_code: if m.counts_towards_rar {
                        contact_type::CRS_RAR
                    } else {
                        contact_type::CRS
                    }
                    .into(),
                    contact_date: start.date(),
                    start_time: Some(start.time()),
                    end_time: Some(end.time()),
                    staff_code: crate::common::crs::STAFF.into(),
                    team_code: crate::common::crs::TEAM.into(),
                    probation_area_code: crate::common::crs::PROVIDER.into(),
                    office_location_code: m.office_location_code.clone(),
                    rar_activity: Some(rar_activity),
                    alert_active: false,
                    linked_contact_id: None,
                    external_reference: Some(urn.clone()),
                    notes: m.notes.clone(),
                };
                sink.write(
                    DiaryEvent::AppointmentBooked {
                        contact,
                        duration_minutes: m.duration_minutes,
                    },
                    self,
                )
                .await;
                contact_id
            }
            Some(existing) => {
                let location = m
                    .office_location_code
                    .clone()
                    .or(existing.contact.office_location_code.clone());
                let notes = append_notes(existing.contact.notes.as_deref(), m.notes.as_deref());
                let moved = existing.contact.contact_date != start.date()
                    || existing.contact.start_time != Some(start.time())
                    || existing.contact.end_time != Some(end.time());
                if moved {
                    let contact_id = services.ids.next_id(IdSequence::Contact).await?;
                    let replacement = Contact {
                        contact_id,
                        contact_date: start.date(),
                        start_time: Some(start.time()),
                        end_time: Some(end.time()),
                        office_location_code: location,
                        rar_activity: Some(rar_activity),
                        requirement_id: m.referral.rar_requirement_id.filter(|_| rar_activity),
                        external_reference: Some(urn.clone()),
                        notes,
                        ..existing.contact.clone()
                    };
                    sink.write(
                        DiaryEvent::AppointmentBooked {
                            contact: replacement,
                            duration_minutes: m.duration_minutes,
                        },
                        self,
                    )
                    .await;
                    let code = outcome::rescheduled(m.reschedule_requested_by.as_deref());
                    let (attended, complied) = outcome::flags(code);
                    sink.write(
                        DiaryEvent::AppointmentOutcomeRecorded {
                            contact_id: existing.contact.contact_id,
                            outcome_code: code.into(),
                            attended,
                            complied,
                            minutes_credited: None,
                            rar_activity: false,
                        },
                        self,
                    )
                    .await;
                    contact_id
                } else {
                    let external_reference = Some(urn.clone());
                    if location != existing.contact.office_location_code
                        || notes != existing.contact.notes
                        || external_reference != existing.contact.external_reference
                    {
                        sink.write(
                            DiaryEvent::AppointmentDetailsChanged {
                                contact_id: existing.contact.contact_id,
                                office_location_code: location,
                                notes,
                                external_reference,
                            },
                            self,
                        )
                        .await;
                    }
                    existing.contact.contact_id
                }
            }
        };
        if let Some(outcome) = outcome {
            self.record_outcome(target, outcome, &m.referral, &m.event, now, services, sink)
                .await?;
        }
        Ok(())
    }

    async fn record_feedback(
        &mut self,
        f: RecordFeedback,
        now: DateTime<Utc>,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DiaryError> {
        let outcome = f.outcome.delius_outcome()?;
        let entry = self
            .by_reference(&f.appointment_urn)
            .or_else(|| {
                f.delius_id
                    .and_then(|id| self.entries.get(&id))
                    .filter(|e| !e.soft_deleted)
            })
            .cloned()
            .ok_or_else(|| DiaryError::AppointmentNotFound {
                urn: f.appointment_urn.clone(),
                delius_id: f.delius_id,
            })?;
        let notes = append_notes(entry.contact.notes.as_deref(), Some(&f.notes));
        if notes != entry.contact.notes {
            sink.write(
                DiaryEvent::AppointmentDetailsChanged {
                    contact_id: entry.contact.contact_id,
                    office_location_code: entry.contact.office_location_code.clone(),
                    notes,
                    external_reference: entry.contact.external_reference.clone(),
                },
                self,
            )
            .await;
        }
        self.record_outcome(
            entry.contact.contact_id,
            outcome,
            &f.referral,
            &f.event,
            now,
            services,
            sink,
        )
        .await
    }

    /// Withdraws the NSI's CRS appointments dated today or later that have no outcome.
    async fn withdraw_future(&mut self, nsi_id: i64, now: DateTime<Utc>, sink: &EventSink<Self>) {
        let today = london::local(now).date();
        let future: Vec<i64> = self
            .entries
            .values()
            .filter(|e| {
                e.contact.nsi_id == Some(nsi_id)
                    && matches!(
                        e.contact.contact_type_code.as_str(),
                        contact_type::CRS_RAR | contact_type::CRS
                    )
                    && e.outcome_code.is_none()
                    && !e.soft_deleted
                    && e.contact.contact_date >= today
            })
            .map(|e| e.contact.contact_id)
            .collect();
        for contact_id in future {
            let (attended, complied) = outcome::flags(outcome::APPOINTMENT_WITHDRAWN);
            sink.write(
                DiaryEvent::AppointmentOutcomeRecorded {
                    contact_id,
                    outcome_code: outcome::APPOINTMENT_WITHDRAWN.into(),
                    attended,
                    complied,
                    minutes_credited: None,
                    rar_activity: false,
                },
                self,
            )
            .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_outcome(
        &mut self,
        contact_id: i64,
        outcome: outcome::DeliusOutcome,
        referral: &ReferralFacts,
        event: &EventFacts,
        now: DateTime<Utc>,
        services: &Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DiaryError> {
        let Some(entry) = self.entries.get(&contact_id).cloned() else {
            return Ok(());
        };
        let (attended, complied) = outcome::flags(outcome.code);
        let minutes_credited = (outcome.code == outcome::ATTENDED_COMPLIED
            && entry.duration_minutes > 0)
            .then_some(entry.duration_minutes);
        let rar_activity = entry.rar_activity() && outcome.session_happened;
        let unchanged = entry.outcome_code.as_deref() == Some(outcome.code)
            && entry.rar_activity() == rar_activity;
        if !unchanged {
            sink.write(
                DiaryEvent::AppointmentOutcomeRecorded {
                    contact_id,
                    outcome_code: outcome.code.into(),
                    attended,
                    complied,
                    minutes_credited,
                    rar_activity,
                },
                self,
            )
            .await;
        }
        if complied == Some(false) && !entry.enforcement {
            let local = london::local(now);
            let enforcement_id = services.ids.next_id(IdSequence::Enforcement).await?;
            let action_contact_id = services.ids.next_id(IdSequence::Contact).await?;
            let notes = format!(
                "{}\n{}\nEnforcement Action: {}",
                entry.contact.notes.as_deref().unwrap_or_default(),
                local.format("%d/%m/%Y %H:%M"),
                enforcement::DESCRIPTION
            );
            let action_contact = linked_contact(
                &entry.contact,
                action_contact_id,
                contact_type::REFER_TO_OM,
                local,
                Some(notes),
            );
            sink.write(
                DiaryEvent::EnforcementRecorded {
                    enforcement_id,
                    contact_id,
                    action_code: enforcement::ROM.into(),
                    response_date: local.date() + Duration::days(enforcement::RESPONSE_DAYS),
                    action_contact,
                },
                self,
            )
            .await;
            let ftc_count = self.ftc_count(event);
            if self.ftc_counts.get(&event.event_id) != Some(&ftc_count) {
                sink.write(
                    DiaryEvent::FailureToComplyCounted {
                        event_id: event.event_id,
                        ftc_count,
                    },
                    self,
                )
                .await;
            }
            let limit_passed = event.ftc_limit.is_some_and(|limit| ftc_count > limit);
            if limit_passed && !self.outstanding_review(event) {
                let review_id = services.ids.next_id(IdSequence::Contact).await?;
                let review = linked_contact(
                    &entry.contact,
                    review_id,
                    contact_type::REVIEW_ENFORCEMENT,
                    local,
                    None,
                );
                sink.write(
                    DiaryEvent::EnforcementReviewRequested { contact: review },
                    self,
                )
                .await;
            }
        }
        if referral.rar_requirement_id.is_some() {
            let nsi_id = referral.nsi_id;
            let rar_count = self.rar_count(nsi_id);
            if self.rar_counts.get(&nsi_id).copied().unwrap_or(0) != rar_count
                || !self.rar_counts.contains_key(&nsi_id)
            {
                sink.write(DiaryEvent::RarCountUpdated { nsi_id, rar_count }, self)
                    .await;
            }
        }
        Ok(())
    }
}
