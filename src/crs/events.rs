//! The Refer and Monitor domain events (REFERENCE.md §2.2–2.5) on queue
//! `refer-and-monitor-and-delius`: action plan submitted/approved, session feedback (delivery
//! session and initial assessment) and referral ended. Each message resolves what its
//! decision needs (the referral's NSI, the sentence, the upstream detail behind `detailUrl`),
//! runs its commands under the message's id and comes to one `HandlerOutcome`.
//!
//! A referral ending changes two aggregates: the `Referral` (status, outcome, end) and the
//! `Diary` (future appointments withdrawn). Both commands carry the same message id and each is
//! idempotent per (message, aggregate); the message is acked only after both committed, so a
//! crash between them is repaired by the redelivery.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use uuid::Uuid;

use aggregates::diary::{
    appointment_urn, Attended, Diary, DiaryCommand, DiaryError, NoSessionReason, OutcomeInput,
    RecordFeedback, ReferralFacts, WithdrawFutureAppointments,
};
use aggregates::referral::{
    referral_urn, ActionPlanStage, EndReferral, EndType, NotifyActionPlan, Referral,
    ReferralCommand, ReferralError,
};
use aggregates::Timed;
use projections::{Metadata, Source};

use crate::amqp::envelope::Envelope;
use crate::amqp::outcome::HandlerOutcome;
use crate::bus::{BusError, Routed};
use crate::engine::Engine;
use crate::upstream::UpstreamClient;

/// The Delius user the live integration writes as.
pub const SERVICE_USER: &str = aggregates::common::crs::USER;

/// The event types this integration handles.
pub mod event_type {
    pub const ACTION_PLAN_SUBMITTED: &str = "intervention.action-plan.submitted";
    pub const ACTION_PLAN_APPROVED: &str = "intervention.action-plan.approved";
    pub const SESSION_FEEDBACK: &str =
        "intervention.session-appointment.session-feedback-submitted";
    pub const INITIAL_ASSESSMENT_FEEDBACK: &str =
        "intervention.initial-assessment-appointment.session-feedback-submitted";
    pub const REFERRAL_ENDED: &str = "intervention.referral.ended";
}

/// Handles the Refer and Monitor queue.
#[derive(Debug, Clone)]
pub struct ReferAndMonitor {
    engine: Arc<Engine>,
    upstream: UpstreamClient,
}

type Props = BTreeMap<String, String>;

fn bus_outcome<E: std::error::Error>(
    error: BusError<E>,
    permanent: impl Fn(&E) -> bool,
) -> HandlerOutcome {
    match &error {
        BusError::Rejected(e) if permanent(e) => HandlerOutcome::rejected(e.to_string()),
        _ => HandlerOutcome::failed(error.to_string()),
    }
}

impl ReferAndMonitor {
    /// A handler writing through `engine`, fetching detail through `upstream`.
    pub fn new(engine: Arc<Engine>, upstream: UpstreamClient) -> Self {
        Self { engine, upstream }
    }

    /// Handles one message of the queue.
    pub async fn handle(&self, envelope: &Envelope) -> HandlerOutcome {
        let Some(crn) = envelope.event.crn().map(str::to_string) else {
            return HandlerOutcome::rejected("no CRN in personReference");
        };
        let result = match envelope.event_type.as_str() {
            event_type::ACTION_PLAN_SUBMITTED => {
                self.action_plan(envelope, &crn, ActionPlanStage::Submitted)
                    .await
            }
            event_type::ACTION_PLAN_APPROVED => {
                self.action_plan(envelope, &crn, ActionPlanStage::Approved)
                    .await
            }
            event_type::SESSION_FEEDBACK => {
                self.feedback(envelope, &crn, FeedbackSource::Session).await
            }
            event_type::INITIAL_ASSESSMENT_FEEDBACK => {
                self.feedback(envelope, &crn, FeedbackSource::InitialAssessment)
                    .await
            }
            event_type::REFERRAL_ENDED => self.referral_ended(envelope, &crn).await,
            other => Err(HandlerOutcome::rejected(format!(
                "unhandled event type {other}"
            ))),
        };
        result.unwrap_or_else(|outcome| outcome)
    }

    fn metadata(envelope: &Envelope) -> Metadata {
        Metadata {
            message_id: envelope.message_id.clone(),
            correlation_id: envelope.message_id.clone(),
            causation_id: None,
            source: Source::Amqp,
            actor: SERVICE_USER.into(),
            received_at: envelope
                .published_at
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(Utc::now),
        }
    }

    async fn referral(&self, referral_id: Uuid, crn: &str) -> Result<Referral, HandlerOutcome> {
        let (referral, _) = self
            .engine
            .bus
            .load::<Referral>(&referral_id.to_string())
            .await
            .map_err(|e| HandlerOutcome::failed(e.to_string()))?;
        if referral.nsi_id.is_none() || referral.crn != crn {
            return Err(HandlerOutcome::rejected(format!(
                "NSI cannot be determined for {} and CRN {crn}",
                referral_urn(referral_id)
            )));
        }
        Ok(referral)
    }

    async fn execute<A: Routed>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        permanent: impl Fn(&A::Error) -> bool,
    ) -> Result<(), HandlerOutcome>
    where
        A::Command: Clone + Send + Sync,
        A::Error: Send + Sync + 'static,
    {
        self.engine
            .bus
            .execute::<A>(aggregate_id, command, metadata)
            .await
            .map(|_| ())
            .map_err(|e| bus_outcome(e, permanent))
    }

    async fn action_plan(
        &self,
        envelope: &Envelope,
        crn: &str,
        stage: ActionPlanStage,
    ) -> Result<HandlerOutcome, HandlerOutcome> {
        let event = &envelope.event;
        let referral_id = info_uuid(envelope, "referralId")?;
        self.referral(referral_id, crn).await.map_err(|_| {
            HandlerOutcome::rejected("Unable to find referral for action plan notification")
        })?;
        let metadata = Self::metadata(envelope);
        let occurred_at = event
            .occurred_at
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(metadata.received_at);
        let command = ReferralCommand::NotifyActionPlan(Box::new(NotifyActionPlan {
            crn: crn.to_string(),
            stage,
            occurred_at,
            contract_type_name: event
                .info_str("contractTypeName")
                .unwrap_or_default()
                .into(),
            referral_reference: event
                .info_str("referralReference")
                .unwrap_or_default()
                .into(),
            prime_provider_name: event
                .info_str("primeProviderName")
                .unwrap_or_default()
                .into(),
            url: event
                .info_str("actionPlanProbationUserUrl")
                .unwrap_or_default()
                .into(),
        }));
        self.execute::<Referral>(
            &referral_id.to_string(),
            Timed::new(metadata.received_at, command),
            &metadata,
            |e| !matches!(e, ReferralError::Ids(_)),
        )
        .await?;
        let name = match stage {
            ActionPlanStage::Submitted => "ActionPlanSubmitted",
            ActionPlanStage::Approved => "ActionPlanApproved",
        };
        Ok(success(name, crn, referral_id, Props::new()))
    }

    async fn feedback(
        &self,
        envelope: &Envelope,
        crn: &str,
        source: FeedbackSource,
    ) -> Result<HandlerOutcome, HandlerOutcome> {
        let event = &envelope.event;
        let detail_url = event
            .detail_url
            .as_deref()
            .ok_or_else(|| HandlerOutcome::rejected("detailUrl is required"))?;
        let referral_id = info_uuid(envelope, "referralId")?;
        let referral = self.referral(referral_id, crn).await?;
        let candidates = match source {
            FeedbackSource::Session => self
                .upstream
                .get_json::<ReferralSession>(detail_url)
                .await
                .map_err(HandlerOutcome::upstream)?
                .candidates(),
            FeedbackSource::InitialAssessment => self
                .upstream
                .get_json::<SupplierAssessment>(detail_url)
                .await
                .map_err(HandlerOutcome::upstream)?
                .candidates(),
        };
        let latest = latest_feedback(candidates).ok_or_else(|| {
            HandlerOutcome::failed("No feedback information available for the appointment")
        })?;
        let nsi_id = referral.nsi_id.unwrap_or_default();
        let (_, event_facts) = crate::crs::event_facts(&self.engine, crn, referral.event_id)
            .await
            .map_err(|e| HandlerOutcome::rejected(e.to_string()))?;
        let contract_type_name = event
            .info_str("contractTypeName")
            .map(str::to_string)
            .or_else(|| {
                event
                    .additional_information
                    .get("contractType")
                    .and_then(|c| c.get("name"))
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let notes = format!(
            "Session Feedback Recorded for {} Referral {} with Prime Provider {}\n{}",
            contract_type_name,
            event.info_str("referralReference").unwrap_or_default(),
            event.info_str("primeProviderName").unwrap_or_default(),
            event
                .info_str("referralProbationUserURL")
                .unwrap_or_default(),
        );
        let urn = appointment_urn(latest.appointment_id);
        let delius_id = event.info_i64("deliusAppointmentId");
        let metadata = Self::metadata(envelope);
        let command = DiaryCommand::RecordFeedback(Box::new(RecordFeedback {
            referral: ReferralFacts {
                urn: referral_urn(referral_id),
                nsi_id,
                event_id: referral.event_id,
                rar_requirement_id: referral.requirement_id,
            },
            event: event_facts,
            appointment_urn: urn.clone(),
            delius_id,
            outcome: latest.outcome,
            notes,
        }));
        self.execute::<Diary>(
            crn,
            Timed::new(metadata.received_at, command),
            &metadata,
            |e| !matches!(e, DiaryError::Ids(_)),
        )
        .await?;
        let name = match source {
            FeedbackSource::Session => "SessionAppointmentSubmitted",
            FeedbackSource::InitialAssessment => "InitialAppointmentSubmitted",
        };
        let mut props = Props::new();
        props.insert("appointmentUrn".into(), urn);
        if let Some(id) = delius_id {
            props.insert("deliusAppointmentId".into(), id.to_string());
        }
        Ok(success(name, crn, referral_id, props))
    }

    async fn referral_ended(
        &self,
        envelope: &Envelope,
        crn: &str,
    ) -> Result<HandlerOutcome, HandlerOutcome> {
        let event = &envelope.event;
        let detail_url = event
            .detail_url
            .as_deref()
            .ok_or_else(|| HandlerOutcome::rejected("detailUrl is required"))?;
        let urn = event
            .info_str("referralURN")
            .ok_or_else(|| HandlerOutcome::rejected("NSI cannot be determined: no referralURN"))?;
        let referral_id = urn
            .rsplit(':')
            .next()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                HandlerOutcome::rejected(format!(
                    "NSI cannot be determined: {urn} is not a referral URN"
                ))
            })?;
        let end_type = match event.info_str("deliveryState") {
            Some("CANCELLED") => EndType::Cancelled,
            Some("PREMATURELY_ENDED") => EndType::PrematurelyEnded,
            Some("COMPLETED") => EndType::Completed,
            other => {
                return Err(HandlerOutcome::rejected(format!(
                    "unknown deliveryState {other:?}"
                )))
            }
        };
        let referral = self.referral(referral_id, crn).await?;
        let sent: SentReferral = self
            .upstream
            .get_json(detail_url)
            .await
            .map_err(HandlerOutcome::upstream)?;
        let ended_at = sent
            .concluded_at
            .or(sent.end_requested_at)
            .ok_or_else(|| {
                HandlerOutcome::rejected(
                    "the sent referral has neither concludedAt nor endRequestedAt",
                )
            })?
            .with_timezone(&Utc);
        let metadata = Self::metadata(envelope);
        let command = ReferralCommand::End(Box::new(EndReferral {
            crn: crn.to_string(),
            end_type,
            ended_at,
            contract_type: sent.referral.contract_type_name.clone().unwrap_or_default(),
            reference_number: sent.reference_number.clone().unwrap_or_default(),
            provider: sent
                .referral
                .service_provider
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            ui_url: event
                .info_str("referralProbationUserURL")
                .unwrap_or_default()
                .into(),
            end_of_service_report_submitted_at: sent
                .end_of_service_report
                .and_then(|r| r.submitted_at)
                .map(|t| t.with_timezone(&Utc)),
        }));
        self.execute::<Referral>(
            &referral_id.to_string(),
            Timed::new(metadata.received_at, command),
            &metadata,
            |e| !matches!(e, ReferralError::Ids(_)),
        )
        .await?;
        let withdraw = DiaryCommand::WithdrawFutureAppointments(WithdrawFutureAppointments {
            nsi_id: referral.nsi_id.unwrap_or_default(),
        });
        self.execute::<Diary>(
            crn,
            Timed::new(metadata.received_at, withdraw),
            &metadata,
            |e| !matches!(e, DiaryError::Ids(_)),
        )
        .await?;
        let mut props = Props::new();
        props.insert("referralUrn".into(), urn.to_string());
        props.insert("endDate".into(), ended_at.to_rfc3339());
        props.insert("endType".into(), format!("{end_type:?}"));
        if let Some(code) = event.info_str("withdrawalCode") {
            props.insert("withdrawalCode".into(), code.to_string());
        }
        Ok(success("ReferralEnded", crn, referral_id, props))
    }
}

fn success(name: &str, crn: &str, referral_id: Uuid, mut properties: Props) -> HandlerOutcome {
    properties.insert("crn".into(), crn.to_string());
    properties.insert("referralId".into(), referral_id.to_string());
    HandlerOutcome::Success {
        name: name.to_string(),
        properties,
    }
}

fn info_uuid(envelope: &Envelope, key: &str) -> Result<Uuid, HandlerOutcome> {
    envelope
        .event
        .info_str(key)
        .and_then(|v| Uuid::parse_str(v).ok())
        .ok_or_else(|| {
            HandlerOutcome::rejected(format!("additionalInformation.{key} is not a UUID"))
        })
}

#[derive(Debug, Clone, Copy)]
enum FeedbackSource {
    Session,
    InitialAssessment,
}

/// Feedback on one appointment, normalised from the newest and the legacy shapes.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    appointment_id: Uuid,
    outcome: OutcomeInput,
    submitted_at: Option<DateTime<FixedOffset>>,
    current: bool,
}

/// The latest feedback: the current appointment's when it has attendance, else the old
/// appointment with attendance submitted last.
fn latest_feedback(candidates: Vec<Candidate>) -> Option<Candidate> {
    if let Some(current) = candidates.iter().find(|c| c.current) {
        return Some(current.clone());
    }
    candidates.into_iter().max_by_key(|c| c.submitted_at)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttendanceFeedback {
    #[serde(default)]
    attended: Option<String>,
    #[serde(default)]
    did_session_happen: Option<bool>,
    #[serde(default)]
    submitted_at: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionFeedback {
    #[serde(default)]
    no_session_reason_type: Option<NoSessionReason>,
    #[serde(default, alias = "notifyProbationPractitionerOfBehaviour")]
    notify_probation_practitioner: Option<bool>,
    /// Legacy shape: `sessionFeedback.attendance`.
    #[serde(default)]
    attendance: Option<AttendanceFeedback>,
    /// Legacy shape: `sessionFeedback.behaviour`.
    #[serde(default)]
    behaviour: Option<Behaviour>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Behaviour {
    #[serde(default)]
    notify_probation_practitioner: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppointmentFeedback {
    #[serde(default)]
    attendance_feedback: Option<AttendanceFeedback>,
    #[serde(default)]
    session_feedback: Option<SessionFeedback>,
}

/// An appointment as the interventions service describes it (current or old).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpstreamAppointment {
    id: Uuid,
    #[serde(default)]
    appointment_id: Option<Uuid>,
    #[serde(default)]
    appointment_feedback: Option<AppointmentFeedback>,
    /// Legacy shape: feedback directly under `sessionFeedback`.
    #[serde(default)]
    session_feedback: Option<SessionFeedback>,
}

impl UpstreamAppointment {
    fn candidate(&self, current: bool) -> Option<Candidate> {
        let feedback = self.appointment_feedback.as_ref();
        let session = feedback
            .and_then(|f| f.session_feedback.as_ref())
            .or(self.session_feedback.as_ref());
        let attendance = feedback
            .and_then(|f| f.attendance_feedback.as_ref())
            .or_else(|| session.and_then(|s| s.attendance.as_ref()))?;
        let attended = match attendance
            .attended
            .as_deref()?
            .to_ascii_lowercase()
            .as_str()
        {
            "yes" => Attended::Yes,
            "late" => Attended::Late,
            "no" => Attended::No,
            _ => return None,
        };
        let notify = session
            .and_then(|s| {
                s.notify_probation_practitioner.or_else(|| {
                    s.behaviour
                        .as_ref()
                        .and_then(|b| b.notify_probation_practitioner)
                })
            })
            // Before didSessionHappen existed, an unanswered notify meant "notify".
            .unwrap_or(attendance.did_session_happen.is_none());
        Some(Candidate {
            appointment_id: self.appointment_id.unwrap_or(self.id),
            outcome: OutcomeInput {
                attended,
                did_session_happen: attendance.did_session_happen,
                no_session_reason: session.and_then(|s| s.no_session_reason_type),
                notify,
            },
            submitted_at: attendance.submitted_at,
            current,
        })
    }
}

/// `GET {detailUrl}` of a delivery-session feedback event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferralSession {
    #[serde(flatten)]
    current: UpstreamAppointment,
    #[serde(default)]
    old_appointments: Vec<UpstreamAppointment>,
}

impl ReferralSession {
    fn candidates(&self) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = self.current.candidate(true).into_iter().collect();
        candidates.extend(
            self.old_appointments
                .iter()
                .filter_map(|a| a.candidate(false)),
        );
        candidates
    }
}

/// `GET {detailUrl}` of an initial-assessment feedback event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SupplierAssessment {
    #[serde(default)]
    appointments: Vec<UpstreamAppointment>,
}

impl SupplierAssessment {
    fn candidates(&self) -> Vec<Candidate> {
        self.appointments
            .iter()
            .filter_map(|a| a.candidate(false))
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct Provider {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentReferralDetail {
    #[serde(default, alias = "provider")]
    service_provider: Option<Provider>,
    #[serde(default, alias = "contractType")]
    contract_type_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndOfServiceReport {
    #[serde(default)]
    submitted_at: Option<DateTime<FixedOffset>>,
}

/// `GET {detailUrl}` of a referral-ended event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentReferral {
    #[serde(default)]
    reference_number: Option<String>,
    #[serde(default)]
    referral: SentReferralDetail,
    #[serde(default)]
    end_requested_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    concluded_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    end_of_service_report: Option<EndOfServiceReport>,
}

impl crate::amqp::handler::MessageHandler for ReferAndMonitor {
    fn handle<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> aggregates::common::BoxFuture<'a, HandlerOutcome> {
        Box::pin(ReferAndMonitor::handle(self, envelope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulation(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/fixtures/upstream/refer-and-monitor-and-delius/simulations/__files/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn latest(name: &str) -> Candidate {
        let session: ReferralSession = serde_json::from_str(&simulation(name)).unwrap();
        latest_feedback(session.candidates()).unwrap()
    }

    #[test]
    fn the_current_appointments_feedback_wins_when_it_has_attendance() {
        let c = latest("session-appointment-feedback-submitted-compliant");
        assert_eq!(
            c.appointment_id.to_string(),
            "48911ad2-1213-4bd3-8312-3824dc29f131"
        );
        assert_eq!(c.outcome.delius_outcome().unwrap().code, "ATTC");
    }

    #[test]
    fn an_old_appointment_with_attendance_when_the_current_has_none() {
        let c = latest("session-appointment-feedback-submitted-not-attended");
        assert_eq!(
            c.appointment_id.to_string(),
            "3b8282cd-baa5-45d3-8489-b5836a58a0e8"
        );
        assert_eq!(c.outcome.delius_outcome().unwrap().code, "AFTA");
    }

    #[test]
    fn no_session_for_logistics_is_sent_home() {
        let c = latest("session-appointment-feedback-submitted-no-session");
        assert_eq!(c.outcome.delius_outcome().unwrap().code, "SHOM");
    }

    #[test]
    fn the_legacy_shape_is_understood() {
        let c = latest("session-appointment-feedback-submitted");
        assert!(matches!(
            c.outcome.attended,
            Attended::Yes | Attended::Late | Attended::No
        ));
    }

    #[test]
    fn the_sent_referral_reads_its_end_and_report() {
        let sent: SentReferral =
            serde_json::from_str(&simulation("referral-prematurely-ended")).unwrap();
        assert_eq!(sent.reference_number.as_deref(), Some("FE4536C"));
        assert_eq!(
            sent.concluded_at.unwrap().to_rfc3339(),
            "2023-02-23T15:29:54.197+00:00"
        );
        assert!(sent.end_of_service_report.unwrap().submitted_at.is_some());
        assert_eq!(
            sent.referral.service_provider.unwrap().name,
            "Special Provider"
        );
    }
}
