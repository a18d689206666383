//! Refer and Monitor an Intervention (CRS): the synchronous referral and appointment writes.
//! Each request resolves what its decision needs (the person and sentence from the `Case`
//! aggregate, the NSI from the `Referral` aggregate, reference rows), builds one command,
//! executes it on the bus and answers only once the Delius rows it wrote are visible.

pub mod events;
pub mod read;
pub mod wire;

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use aggregates::case::{Case, SentenceEvent};
use aggregates::diary::{
    Diary, DiaryCommand, DiaryError, EventFacts, MergeAppointment, ReferralFacts,
};
use aggregates::referral::{
    referral_urn, Referral, ReferralCommand, ReferralError, SentenceFacts, StartReferral,
};
use aggregates::Timed;
use projections::Metadata;

use crate::bus::BusError;
use crate::engine::{Engine, WaitError};
use crate::reference;
use crate::store::StoreError;

/// How long a synchronous request waits for its rows to become visible.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Refer and Monitor request failed. Each variant names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    /// 404: person, event, NSI or office location not found.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request breaks a rule.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// 409: the appointment clashes with another.
    #[error("{0}")]
    Conflict(String),
    /// 503: committed but not yet visible, or the aggregate stayed contended; retry.
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for CrsError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for CrsError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<WaitError> for CrsError {
    fn from(error: WaitError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

fn bus_error<E: std::error::Error + Send + Sync + 'static>(
    error: BusError<E>,
    rejected: impl FnOnce(E) -> CrsError,
) -> CrsError {
    match error {
        BusError::Rejected(e) => rejected(e),
        BusError::Contention { .. } => CrsError::Unavailable(error.to_string()),
        BusError::Store(e) => CrsError::Internal(e.into()),
    }
}

async fn case_sentence(
    engine: &Engine,
    crn: &str,
    event_id: i64,
) -> Result<(i64, SentenceEvent), CrsError> {
    let (case, _) = engine.bus.load::<Case>(crn).await?;
    let baseline = case
        .baseline
        .filter(|b| !b.person.soft_deleted)
        .ok_or_else(|| CrsError::NotFound(format!("Person with crn of {crn} not found")))?;
    let event = baseline
        .events
        .into_iter()
        .find(|e| e.event_id == event_id && e.disposal.is_some())
        .ok_or_else(|| CrsError::NotFound(format!("Event with id of {event_id} not found")))?;
    Ok((baseline.person.offender_id, event))
}

/// The person's offender id and what the failure-to-comply rules need of event `event_id`.
pub async fn event_facts(
    engine: &Engine,
    crn: &str,
    event_id: i64,
) -> Result<(i64, EventFacts), CrsError> {
    let (offender_id, event) = case_sentence(engine, crn, event_id).await?;
    let disposal = event
        .disposal
        .as_ref()
        .ok_or_else(|| CrsError::NotFound(format!("Event with id of {event_id} not found")))?;
    let ftc_limit = reference::row(engine, "r_disposal_type", &disposal.disposal_type_code)
        .await?
        .and_then(|row| reference::int(&row, "ftc_limit"))
        .map(|limit| limit as i32);
    Ok((
        offender_id,
        EventFacts {
            event_id: event.event_id,
            disposal_date: disposal.disposal_date,
            breach_end: event.breach_end,
            ftc_limit,
        },
    ))
}

/// `PUT /probation-case/{crn}/referrals`.
pub async fn start_referral(
    engine: &Engine,
    crn: &str,
    request: &wire::ReferralStarted,
    metadata: &Metadata,
) -> Result<(), CrsError> {
    // The person and sentence are looked up while the referral's stream loads.
    let prepare = async {
        let (offender_id, event) = case_sentence(engine, crn, request.sentence_id).await?;
        let rar_requirement_id = event
            .disposal
            .as_ref()
            .and_then(|d| {
                d.requirements
                    .iter()
                    .find(|r| r.active && r.main_category_code == "F")
            })
            .map(|r| r.requirement_id);
        let command = ReferralCommand::Start(Box::new(StartReferral {
            referral_id: request.referral_id,
            started_at: request.started_at.with_timezone(&Utc),
            contract_type: request.contract_type.clone(),
            notes: request.notes.clone(),
            sentence: SentenceFacts {
                offender_id,
                crn: crn.to_string(),
                event_id: event.event_id,
                rar_requirement_id,
            },
        }));
        Ok::<_, CrsError>(Timed::new(metadata.received_at, command))
    };
    let outcome = engine
        .bus
        .execute_prepared::<Referral, _>(&request.referral_id.to_string(), metadata, prepare)
        .await?
        .map_err(|e| {
            bus_error(e, |rejected| match rejected {
                ReferralError::UnknownContractType(_) => CrsError::Invalid {
                    code: "unknown_contract_type",
                    message: rejected.to_string(),
                },
                ReferralError::OtherPerson { .. } | ReferralError::NotFound { .. } => {
                    CrsError::NotFound(rejected.to_string())
                }
                ReferralError::Ids(e) => CrsError::Internal(e.into()),
            })
        })?;
    engine
        .wait_for_projection(&outcome, READ_YOUR_WRITES_TIMEOUT)
        .await?;
    Ok(())
}

/// `PUT /probation-case/{crn}/referrals/{referralId}/appointments`: the contact id.
pub async fn merge_appointment(
    engine: &Engine,
    crn: &str,
    referral_id: Uuid,
    request: &wire::MergeAppointment,
    metadata: &Metadata,
) -> Result<i64, CrsError> {
    if request.referral_id != referral_id {
        return Err(CrsError::Invalid {
            code: "referral_mismatch",
            message: format!(
                "referralId {} in the body differs from {referral_id} in the path",
                request.referral_id
            ),
        });
    }
    // The referral, office location and sentence are looked up while the diary loads.
    let prepare = async {
        let urn = referral_urn(referral_id);
        let (referral, _) = engine
            .bus
            .load::<Referral>(&referral_id.to_string())
            .await?;
        let nsi_id = match referral.nsi_id {
            Some(nsi_id) if referral.crn == crn => nsi_id,
            _ => {
                return Err(CrsError::NotFound(format!(
                    "Unable to match Referral {urn} => CRN {crn}"
                )))
            }
        };
        if let Some(code) = &request.office_location_code {
            let location = reference::row(engine, "office_location", code).await?;
            if !location.is_some_and(|l| reference::boolean(&l, "active").unwrap_or(false)) {
                return Err(CrsError::NotFound(format!(
                    "Office location with code {code} not found"
                )));
            }
        }
        let (offender_id, event_facts) = event_facts(engine, crn, referral.event_id).await?;
        let command = DiaryCommand::MergeAppointment(Box::new(MergeAppointment {
            offender_id,
            referral: ReferralFacts {
                urn,
                nsi_id,
                event_id: referral.event_id,
                rar_requirement_id: referral.requirement_id,
            },
            event: event_facts,
            appointment_id: request.id,
            referral_reference: request.referral_reference.clone(),
            start: request.start.with_timezone(&Utc),
            duration_minutes: request.duration_in_minutes,
            notes: request.notes.clone(),
            office_location_code: request.office_location_code.clone(),
            counts_towards_rar: request.counts_towards_rar,
            outcome: request.outcome.as_ref().map(Into::into),
            previous_id: request.previous_id,
            delius_id: request.delius_id,
            reschedule_requested_by: request.reschedule_requested_by.clone(),
        }));
        Ok(Timed::new(metadata.received_at, command))
    };
    let outcome = engine
        .bus
        .execute_prepared::<Diary, _>(crn, metadata, prepare)
        .await?
        .map_err(|e| {
            bus_error(e, |rejected| match rejected {
                DiaryError::PastAppointmentWithoutOutcome => CrsError::Invalid {
                    code: "past_appointment_without_outcome",
                    message: rejected.to_string(),
                },
                DiaryError::OutcomeScenarioNotMapped => CrsError::Invalid {
                    code: "outcome_not_mapped",
                    message: rejected.to_string(),
                },
                DiaryError::NegativeDuration => CrsError::Invalid {
                    code: "invalid_duration",
                    message: rejected.to_string(),
                },
                DiaryError::AppointmentClash => CrsError::Conflict(rejected.to_string()),
                DiaryError::AppointmentNotFound { .. } => CrsError::NotFound(rejected.to_string()),
                DiaryError::Ids(e) => CrsError::Internal(e.into()),
            })
        })?;
    engine
        .wait_for_projection(&outcome, READ_YOUR_WRITES_TIMEOUT)
        .await?;
    outcome
        .reply
        .get("appointmentId")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| CrsError::Internal(anyhow::anyhow!("merge answered no appointment id")))
}
