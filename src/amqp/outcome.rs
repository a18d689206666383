//! What handling a message came to, and what the consumer then does with it: one pure,
//! tested function from outcome (and attempt) to disposition.

use std::collections::BTreeMap;
use std::time::Duration;

/// The result of handling one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// Delius was updated (or already was): ack.
    Success {
        /// Telemetry name, e.g. `ActionPlanSubmitted`.
        name: String,
        properties: BTreeMap<String, String>,
    },
    /// The live system's telemetry-only cases (`IgnorableMessageException`): ack and record.
    Ignored {
        name: String,
        properties: BTreeMap<String, String>,
    },
    /// A rule that retrying cannot change (unparseable, unknown type, not found, foreign
    /// detailUrl host): dead-letter at once with the reason.
    Rejected { reason: String },
    /// Database, upstream or timeout: retry with backoff, then dead-letter.
    Failed { reason: String },
}

impl HandlerOutcome {
    /// [`HandlerOutcome::Rejected`] with `reason`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }

    /// [`HandlerOutcome::Failed`] with `reason`.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }

    /// An upstream call's failure: transient ones are retried, the others rejected.
    pub fn upstream(error: crate::upstream::UpstreamError) -> Self {
        if error.is_transient() {
            Self::failed(error.to_string())
        } else {
            Self::rejected(error.to_string())
        }
    }
}

/// What the consumer does with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Acknowledge it (success or ignorable).
    Ack,
    /// Park it on the retry path for this long, then deliver it again.
    Retry { delay: Duration },
    /// Put it on `<queue>.dlq` with this reason.
    DeadLetter { reason: String },
}

/// Retry policy: how many deliveries a failing message gets, and the growing delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays before the 2nd, 3rd… delivery; after the last, the message is dead-lettered.
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
        }
    }
}

/// The disposition of `outcome` for a message delivered `attempt` times so far (1 = first).
pub fn disposition(outcome: &HandlerOutcome, attempt: u32, policy: &RetryPolicy) -> Disposition {
    match outcome {
        HandlerOutcome::Success { .. } | HandlerOutcome::Ignored { .. } => Disposition::Ack,
        HandlerOutcome::Rejected { reason } => Disposition::DeadLetter {
            reason: reason.clone(),
        },
        HandlerOutcome::Failed { reason } => {
            match policy.delays.get(attempt.saturating_sub(1) as usize) {
                Some(delay) => Disposition::Retry { delay: *delay },
                None => Disposition::DeadLetter {
                    reason: format!("failed after {attempt} attempts: {reason}"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> HandlerOutcome {
        HandlerOutcome::Failed {
            reason: "database down".into(),
        }
    }

    #[test]
    fn success_and_ignorable_are_acked() {
        let policy = RetryPolicy::default();
        let success = HandlerOutcome::Success {
            name: "ReferralEnded".into(),
            properties: BTreeMap::new(),
        };
        let ignored = HandlerOutcome::Ignored {
            name: "RecallNotRequired".into(),
            properties: BTreeMap::new(),
        };
        assert_eq!(disposition(&success, 1, &policy), Disposition::Ack);
        assert_eq!(disposition(&ignored, 7, &policy), Disposition::Ack);
    }

    #[test]
    fn rejected_goes_straight_to_the_dead_letter_queue() {
        let rejected = HandlerOutcome::Rejected {
            reason: "appointment not found".into(),
        };
        assert_eq!(
            disposition(&rejected, 1, &RetryPolicy::default()),
            Disposition::DeadLetter {
                reason: "appointment not found".into()
            }
        );
    }

    #[test]
    fn failures_retry_with_growing_delays_then_dead_letter() {
        let policy = RetryPolicy {
            delays: vec![Duration::from_millis(10), Duration::from_millis(100)],
        };
        assert_eq!(
            disposition(&failed(), 1, &policy),
            Disposition::Retry {
                delay: Duration::from_millis(10)
            }
        );
        assert_eq!(
            disposition(&failed(), 2, &policy),
            Disposition::Retry {
                delay: Duration::from_millis(100)
            }
        );
        assert_eq!(
            disposition(&failed(), 3, &policy),
            Disposition::DeadLetter {
                reason: "failed after 3 attempts: database down".into()
            }
        );
    }
}
