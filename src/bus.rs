//! The command bus: the one entry point through which anything changes. It takes a command
//! with its metadata, routes it to its aggregate, decides it (cqrs-es `Aggregate::handle`),
//! and appends the events with the command-log row in one transaction.
//!
//! - Idempotent: the same `message_id` for the same aggregate returns the first outcome and
//!   writes nothing (checked before deciding, and enforced by the command log's key).
//! - Optimistic concurrency: a conflicting append is decided again from fresh state, a
//!   bounded number of times with jittered backoff.
//! - Domain errors come back typed (`BusError::Rejected`); nothing is written for them.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use serde_json::Value;
use tokio::sync::Notify;

use aggregates::case::{Case, CaseCommand};
use aggregates::custody::{Custody, CustodyCommand};
use aggregates::diary::{appointment_urn, Diary, DiaryCommand};
use aggregates::pom::{PomAllocation, PomCommand};
use aggregates::reference::{ReferenceCommand, ReferenceData};
use aggregates::referral::{Referral, ReferralCommand};
use aggregates::{Services, Timed};
use projections::Metadata;

use crate::store::{
    AppendBatch, AppendError, CommandOutcome, MemEventLog, NewEvent, PgEventLog, StoreError,
};

/// An aggregate the bus can route to.
pub trait Routed: Aggregate<Services = Services> + 'static {
    /// The command's name in the command log.
    fn command_name(command: &Self::Command) -> &'static str;

    /// What the command answers its caller, from the state it left (an unchanged repeat
    /// answers like the first time) and the events it produced.
    fn reply(_state: &Self, _command: &Self::Command, _events: &[Self::Event]) -> Value {
        Value::Null
    }
}

impl Routed for ReferenceData {
    fn command_name(command: &Timed<ReferenceCommand>) -> &'static str {
        match command.command {
            ReferenceCommand::RecordEntry(_) => "RecordEntry",
        }
    }
}

impl Routed for Case {
    fn command_name(command: &Timed<CaseCommand>) -> &'static str {
        match command.command {
            CaseCommand::RecordBaseline(_) => "RecordCaseBaseline",
        }
    }
}

impl Routed for Custody {
    fn command_name(command: &Timed<CustodyCommand>) -> &'static str {
        match command.command {
            CustodyCommand::RecordBaseline(_) => "RecordCustodyBaseline",
        }
    }
}

impl Routed for PomAllocation {
    fn command_name(command: &Timed<PomCommand>) -> &'static str {
        match command.command {
            PomCommand::RecordBaseline(_) => "RecordPomBaseline",
        }
    }
}

impl Routed for Referral {
    fn command_name(command: &Timed<ReferralCommand>) -> &'static str {
        match command.command {
            ReferralCommand::Start(_) => "StartReferral",
            ReferralCommand::NotifyActionPlan(_) => "NotifyActionPlan",
            ReferralCommand::End(_) => "EndReferral",
        }
    }

    fn reply(state: &Self, _command: &Self::Command, _events: &[Self::Event]) -> Value {
        serde_json::json!({ "nsiId": state.nsi_id })
    }
}

impl Routed for Diary {
    fn command_name(command: &Timed<DiaryCommand>) -> &'static str {
        match command.command {
            DiaryCommand::MergeAppointment(_) => "MergeAppointment",
            DiaryCommand::RecordFeedback(_) => "RecordFeedback",
            DiaryCommand::WithdrawFutureAppointments(_) => "WithdrawFutureAppointments",
        }
    }

    /// `{"appointmentId": contact id}` of the appointment the merge left current.
    fn reply(state: &Self, command: &Self::Command, _events: &[Self::Event]) -> Value {
        match &command.command {
            DiaryCommand::MergeAppointment(merge) => {
                let urn = appointment_urn(merge.appointment_id);
                serde_json::json!({
                    "appointmentId": state.by_reference(&urn).map(|e| e.contact.contact_id)
                })
            }
            _ => Value::Null,
        }
    }
}

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum BusError<E: std::error::Error> {
    /// A domain rule rejected the command; nothing was written. HTTP 400/404/409 by variant;
    /// a dead letter for messages.
    #[error(transparent)]
    Rejected(E),
    /// The event log failed. HTTP 500; messages are retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The aggregate kept changing under the command. HTTP 503 with Retry-After; messages are
    /// retried.
    #[error("aggregate {aggregate_type}/{aggregate_id} still contended after {attempts} attempts")]
    Contention {
        aggregate_type: &'static str,
        aggregate_id: String,
        attempts: u32,
    },
}

/// Where the bus keeps its events.
#[derive(Debug, Clone)]
pub enum EventLog {
    Postgres(PgEventLog),
    Memory(Arc<MemEventLog>),
}

/// The command bus.
pub struct CommandBus {
    log: EventLog,
    services: Services,
    wake: Arc<Notify>,
    max_attempts: u32,
}

impl std::fmt::Debug for CommandBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandBus")
            .field("log", &self.log)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl CommandBus {
    /// A bus writing to `log`, deciding with `services`, waking `wake` after every append.
    pub fn new(log: EventLog, services: Services, wake: Arc<Notify>) -> Self {
        Self {
            log,
            services,
            wake,
            max_attempts: 20,
        }
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Executes `command` on aggregate `A` with id `aggregate_id`.
    pub async fn execute<A: Routed>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<CommandOutcome, BusError<A::Error>>
    where
        A::Command: Clone + Send + Sync,
    {
        let command_type = A::command_name(&command);
        for attempt in 1..=self.max_attempts {
            if let Some(mut outcome) = self.recorded_outcome::<A>(metadata, aggregate_id).await? {
                outcome.duplicate = true;
                return Ok(outcome);
            }
            let (mut aggregate, sequence) = self.load::<A>(aggregate_id).await?;
            let sink = EventSink::<A>::default();
            aggregate
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(BusError::Rejected)?;
            let events = sink.collect().await;
            let reply = A::reply(&aggregate, &command, &events);
            let new_events = events
                .iter()
                .map(|event| {
                    Ok(NewEvent {
                        event_type: event.event_type(),
                        event_version: event.event_version(),
                        payload: serde_json::to_value(event)?,
                    })
                })
                .collect::<Result<Vec<_>, serde_json::Error>>()
                .map_err(StoreError::from)?;
            let batch = AppendBatch {
                aggregate_type: A::TYPE,
                aggregate_id,
                expected_sequence: sequence,
                events: new_events,
                metadata,
                command_type,
                reply,
            };
            let appended = match &self.log {
                EventLog::Postgres(log) => log.append(batch).await,
                EventLog::Memory(log) => log.append(batch),
            };
            match appended {
                Ok(outcome) => {
                    if !outcome.events.is_empty() {
                        self.wake.notify_one();
                    }
                    return Ok(outcome);
                }
                Err(AppendError::Conflict) | Err(AppendError::Duplicate) => {
                    tracing::debug!(
                        aggregate_type = A::TYPE,
                        aggregate_id,
                        attempt,
                        "append conflict; deciding again"
                    );
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Store(error)) => return Err(BusError::Store(error)),
            }
        }
        Err(BusError::Contention {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            attempts: self.max_attempts,
        })
    }

    async fn recorded_outcome<A: Routed>(
        &self,
        metadata: &Metadata,
        aggregate_id: &str,
    ) -> Result<Option<CommandOutcome>, StoreError> {
        match &self.log {
            EventLog::Postgres(log) => {
                log.outcome(&metadata.message_id, A::TYPE, aggregate_id)
                    .await
            }
            EventLog::Memory(log) => log.outcome(&metadata.message_id, A::TYPE, aggregate_id),
        }
    }

    /// Rebuilds an aggregate from its events (upcast first); returns it with its sequence.
    pub async fn load<A: Routed>(&self, aggregate_id: &str) -> Result<(A, usize), StoreError> {
        let serialized = match &self.log {
            EventLog::Postgres(log) => log.load::<A>(aggregate_id).await?,
            EventLog::Memory(log) => log.load(A::TYPE, aggregate_id)?,
        };
        rehydrate::<A>(serialized)
    }
}

/// Folds stored events into an aggregate, upcasting each first.
pub fn rehydrate<A: Aggregate>(events: Vec<SerializedEvent>) -> Result<(A, usize), StoreError> {
    let upcasters = aggregates::upcasters::all();
    let mut aggregate = A::default();
    let mut sequence = 0;
    for mut event in events {
        for upcaster in &upcasters {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        let envelope = EventEnvelope::<A>::try_from(event)?;
        sequence = envelope.sequence;
        aggregate.apply(envelope.payload);
    }
    Ok((aggregate, sequence))
}

/// Jittered exponential backoff: 2, 4, 8… ms up to 128 ms, plus up to as much again at random.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(7);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base + 1)) as u64;
    Duration::from_millis(base + jitter)
}
