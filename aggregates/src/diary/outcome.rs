//! Appointment outcomes: what an upstream attendance answer becomes in Delius, and the flags
//! of each Delius outcome (`R_CONTACT_OUTCOME_TYPE`, loaded by `0003_reference_data.sql`; a
//! test checks the two agree).

use serde::{Deserialize, Serialize};

use super::DiaryError;

/// Attended and complied.
pub const ATTENDED_COMPLIED: &str = "ATTC";
/// Attended, failed to comply.
pub const ATTENDED_FAILED_TO_COMPLY: &str = "AFTC";
/// Failed to attend.
pub const FAILED_TO_ATTEND: &str = "AFTA";
/// Rescheduled at the service provider's request.
pub const RESCHEDULED_SERVICE_REQUEST: &str = "RSSR";
/// Rescheduled at the person's request (code chosen: the live one was not found).
pub const RESCHEDULED_POP_REQUEST: &str = "RSOF";
/// Sent home: the session did not happen for logistical reasons (code chosen).
pub const SENT_HOME: &str = "SHOM";
/// Appointment kept, the session did not happen for an acceptable reason (code chosen).
pub const APPOINTMENT_KEPT: &str = "AKPT";
/// Appointment withdrawn (the referral ended).
pub const APPOINTMENT_WITHDRAWN: &str = "APPW";

/// `(attended, complied)` of a Delius outcome.
pub fn flags(code: &str) -> (Option<bool>, Option<bool>) {
    match code {
        ATTENDED_COMPLIED => (Some(true), Some(true)),
        ATTENDED_FAILED_TO_COMPLY => (Some(true), Some(false)),
        FAILED_TO_ATTEND => (Some(false), Some(false)),
        RESCHEDULED_SERVICE_REQUEST | RESCHEDULED_POP_REQUEST => (Some(false), Some(true)),
        SENT_HOME | APPOINTMENT_KEPT => (Some(true), Some(true)),
        APPOINTMENT_WITHDRAWN => (Some(false), Some(true)),
        _ => (None, None),
    }
}

/// The outcome put on an appointment moved to another time.
pub fn rescheduled(requested_by: Option<&str>) -> &'static str {
    match requested_by {
        None | Some("Service Provider") => RESCHEDULED_SERVICE_REQUEST,
        Some(_) => RESCHEDULED_POP_REQUEST,
    }
}

/// Whether the person attended, as upstream says it (case-insensitive on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Attended {
    Yes,
    Late,
    No,
}

/// Why a session did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NoSessionReason {
    Logistics,
    PopAcceptable,
    PopUnacceptable,
}

/// An outcome as upstream reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeInput {
    pub attended: Attended,
    pub did_session_happen: Option<bool>,
    pub no_session_reason: Option<NoSessionReason>,
    /// Whether the probation practitioner must be told of the person's behaviour.
    pub notify: bool,
}

/// A Delius outcome and whether the session took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliusOutcome {
    pub code: &'static str,
    pub session_happened: bool,
}

impl OutcomeInput {
    /// The Delius outcome (REFERENCE.md §2.4, newest mapping; the older one when upstream
    /// answers neither whether the session happened nor why not).
    pub fn delius_outcome(&self) -> Result<DeliusOutcome, DiaryError> {
        let happened = |code| DeliusOutcome {
            code,
            session_happened: true,
        };
        let not_happened = |code| DeliusOutcome {
            code,
            session_happened: false,
        };
        let complied_or_not = if self.notify {
            ATTENDED_FAILED_TO_COMPLY
        } else {
            ATTENDED_COMPLIED
        };
        match (
            self.did_session_happen,
            self.attended,
            self.no_session_reason,
        ) {
            (Some(true), _, _) => Ok(happened(complied_or_not)),
            (_, Attended::No, _) => Ok(not_happened(FAILED_TO_ATTEND)),
            (_, _, Some(NoSessionReason::PopUnacceptable)) => {
                Ok(not_happened(ATTENDED_FAILED_TO_COMPLY))
            }
            (_, _, Some(NoSessionReason::PopAcceptable)) => Ok(not_happened(APPOINTMENT_KEPT)),
            (_, _, Some(NoSessionReason::Logistics)) => Ok(not_happened(SENT_HOME)),
            (None, _, None) => Ok(happened(complied_or_not)),
            (Some(false), _, None) => Err(DiaryError::OutcomeScenarioNotMapped),
        }
    }
}
