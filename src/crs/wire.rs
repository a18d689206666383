//! The Refer and Monitor HTTP bodies, as the interventions service sends them (camelCase).
//! Wire types only; `super` turns them into commands.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use aggregates::diary::{Attended, NoSessionReason, OutcomeInput};

/// `PUT /probation-case/{crn}/referrals`: a referral was sent to a provider.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReferralStarted {
    pub referral_id: Uuid,
    /// When the referral was sent (zoned date-time).
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<FixedOffset>,
    /// The CRS contract type code (ACC, ETE, MTR, DNR…, PWB, WOS, WSM, FBD-…).
    pub contract_type: String,
    /// The Delius event id of the sentence the referral is for.
    pub sentence_id: i64,
    pub notes: String,
}

/// `PUT /probation-case/{crn}/referrals/{referralId}/appointments`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeAppointment {
    /// The appointment id in the interventions service.
    pub id: Uuid,
    pub referral_id: Uuid,
    pub referral_reference: String,
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<FixedOffset>,
    pub duration_in_minutes: i64,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub office_location_code: Option<String>,
    pub counts_towards_rar: bool,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub sentence_id: Option<i64>,
    /// The appointment this one replaces (a reschedule).
    #[serde(default)]
    pub previous_id: Option<Uuid>,
    /// The Delius contact id, when upstream knows it.
    #[serde(default)]
    pub delius_id: Option<i64>,
    /// "Service Provider" or the person on probation.
    #[serde(default)]
    pub reschedule_requested_by: Option<String>,
}

/// The outcome of an appointment.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// YES, LATE or NO (any case).
    #[serde(deserialize_with = "attended")]
    #[schema(value_type = String, example = "YES")]
    pub attended: Attended,
    #[serde(default)]
    pub did_session_happen: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "POP_UNACCEPTABLE")]
    pub no_session_reason_type: Option<NoSessionReason>,
    #[serde(default, alias = "notifyProbationPractitionerOfBehaviour")]
    pub notify: bool,
}

fn attended<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Attended, D::Error> {
    let value = String::deserialize(deserializer)?;
    match value.to_ascii_uppercase().as_str() {
        "YES" => Ok(Attended::Yes),
        "LATE" => Ok(Attended::Late),
        "NO" => Ok(Attended::No),
        _ => Err(serde::de::Error::custom(format!(
            "unknown attendance `{value}`, expected YES, LATE or NO"
        ))),
    }
}

impl From<&Outcome> for OutcomeInput {
    fn from(outcome: &Outcome) -> Self {
        OutcomeInput {
            attended: outcome.attended,
            did_session_happen: outcome.did_session_happen,
            no_session_reason: outcome.no_session_reason_type,
            notify: outcome.notify,
        }
    }
}

/// `200` answer of a merge.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentMerged {
    /// The Delius contact id of the appointment.
    pub appointment_id: i64,
}
