//! The command bus: the one entry point through which anything changes. It takes a command
//! with its metadata, routes it to its aggregate, decides it (cqrs-es `Aggregate::handle`),
//! and appends the events with the command-log row in one transaction.
//!
//! - Idempotent: the same `message_id` for the same aggregate returns the first outcome and
//!   writes nothing (checked before deciding, and enforced by the command log's key).
//! - Optimistic concurrency: a conflicting append is decided again from fresh state, a
//!   bounded number of times with jittered backoff.
//! - Domain errors come back typed (`BusError::Rejected`); nothing is written for them.
//!
//! On [`EventLog::CqrsEs`] (the cqrs-es book's storage, only the benchmarks' naive baseline
//! uses it) a command is decided the same way but committed as the book does: no command log
//! (so no idempotency), and a [`Unit`]'s commands each commit as they are executed.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use tokio::sync::Notify;

use aggregates::case::{Case, CaseCommand};
use aggregates::custody::{Custody, CustodyCommand, MovementSummary};
use aggregates::diary::{appointment_urn, Diary, DiaryCommand};
use aggregates::pom::{PomAllocation, PomCommand};
use aggregates::reference::{ReferenceCommand, ReferenceData};
use aggregates::referral::{Referral, ReferralCommand};
use aggregates::{Services, Timed};
use projections::Metadata;

use crate::store::cqrs_book::CqrsEsLog;
use crate::store::postgres::Recorded;
use crate::store::{
    AppendBatch, AppendError, CommandOutcome, MemEventLog, NewEvent, PgEventLog, StoreError,
    StoredEvent, WrittenEvent,
};

/// An aggregate the bus can route to.
pub trait Routed: Aggregate<Services = Services, Command: Clone + Send + Sync> + 'static {
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
            CustodyCommand::RecordMovement(_) => "RecordMovement",
        }
    }

    /// A movement answers its [`MovementSummary`].
    fn reply(_state: &Self, command: &Self::Command, events: &[Self::Event]) -> Value {
        match command.command {
            CustodyCommand::RecordMovement(_) => {
                serde_json::to_value(MovementSummary::of(events)).unwrap_or(Value::Null)
            }
            CustodyCommand::RecordBaseline(_) => Value::Null,
        }
    }
}

impl Routed for PomAllocation {
    fn command_name(command: &Timed<PomCommand>) -> &'static str {
        match command.command {
            PomCommand::RecordBaseline(_) => "RecordPomBaseline",
            PomCommand::AutoAllocate(_) => "AutoAllocatePom",
        }
    }

    /// An allocation answers `{"result": "PomAllocated" | "NoPomChange"}`.
    fn reply(_state: &Self, command: &Self::Command, events: &[Self::Event]) -> Value {
        match command.command {
            PomCommand::AutoAllocate(_) => serde_json::json!({
                "result": if events.is_empty() { "NoPomChange" } else { "PomAllocated" }
            }),
            PomCommand::RecordBaseline(_) => Value::Null,
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

/// A decided command, not yet appended.
struct Decided<A: Aggregate> {
    aggregate: A,
    aggregate_id: String,
    sequence: usize,
    command_type: &'static str,
    events: Vec<A::Event>,
    reply: Value,
}

impl<A: Routed> Decided<A> {
    /// The events in the log's stored form.
    fn new_events(&self) -> Result<Vec<NewEvent>, StoreError> {
        self.events
            .iter()
            .map(|event| {
                Ok(NewEvent {
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: serde_json::to_value(event)?,
                })
            })
            .collect()
    }

    fn batch<'a>(&'a self, metadata: &'a Metadata, events: Vec<NewEvent>) -> AppendBatch<'a> {
        AppendBatch {
            aggregate_type: A::TYPE,
            aggregate_id: &self.aggregate_id,
            expected_sequence: self.sequence,
            events,
            metadata,
            command_type: self.command_type,
            reply: self.reply.clone(),
        }
    }

    /// What a command committed by the cqrs-es backend answers: its events by sequence (that
    /// log has no global positions or transaction ids, so there is nothing to wait for).
    fn outcome(&self, metadata: &Metadata) -> CommandOutcome {
        let events = self
            .events
            .iter()
            .enumerate()
            .map(|(n, event)| WrittenEvent {
                sequence: (self.sequence + n + 1) as i64,
                global_position: 0,
                event_type: event.event_type(),
            })
            .collect();
        CommandOutcome {
            message_id: metadata.message_id.clone(),
            aggregate_type: A::TYPE.to_string(),
            aggregate_id: self.aggregate_id.clone(),
            command_type: self.command_type.to_string(),
            events,
            transaction_id: None,
            reply: self.reply.clone(),
            duplicate: false,
        }
    }
}

/// What a command in a [`Unit`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDecision<E> {
    /// The command's reply ([`Routed::reply`]); for a duplicate, the recorded one.
    pub reply: Value,
    /// The events it will append when the unit commits (none for a duplicate).
    pub events: Vec<E>,
    /// True when this message was already recorded for the aggregate: nothing is staged.
    pub duplicate: bool,
}

/// Why a unit could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// An aggregate in the unit changed since it was decided, or the message was recorded
    /// concurrently: plan the unit again from fresh state.
    #[error("an aggregate of the unit changed concurrently")]
    Conflict,
    /// The event log failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Commands on several aggregates, decided one after the other under one message (each sees
/// the state its aggregate has in the log) and appended in **one transaction** by
/// [`Unit::commit`]: either every command's events and command-log row are written, or none.
///
/// A unit is single-use: on [`UnitError::Conflict`] the caller plans a new unit from fresh
/// state (bounded by [`CommandBus::max_attempts`], waiting [`CommandBus::back_off`]). Each
/// aggregate may take one command per unit.
pub struct Unit<'b> {
    bus: &'b CommandBus,
    metadata: &'b Metadata,
    staged: Vec<Staged>,
    /// What [`Unit::preload`] was given: (type, id, `Result<(A, usize), CommandOutcome>`).
    preloaded: Vec<(&'static str, String, Box<dyn std::any::Any + Send + Sync>)>,
}

struct Staged {
    aggregate_type: &'static str,
    aggregate_id: String,
    expected_sequence: usize,
    /// The aggregate as the staged commands left it (`A`, type-erased).
    state: Box<dyn std::any::Any + Send + Sync>,
    events: Vec<NewEvent>,
    /// The staged commands' names, joined with `+` in the command log.
    command_type: String,
    reply: Value,
}

impl std::fmt::Debug for Unit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("message_id", &self.metadata.message_id)
            .field(
                "staged",
                &self
                    .staged
                    .iter()
                    .map(|s| format!("{}/{}", s.aggregate_type, s.aggregate_id))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Unit<'_> {
    /// Decides `command` on aggregate `A` `aggregate_id` and stages its events. A message
    /// already recorded for the aggregate stages nothing and answers the recorded reply.
    /// A second command on an aggregate already staged in this unit is decided against the
    /// state the first left; the command log then records both names and the last reply.
    pub async fn execute<A: Routed>(
        &mut self,
        aggregate_id: &str,
        command: A::Command,
    ) -> Result<UnitDecision<A::Event>, BusError<A::Error>> {
        if let EventLog::CqrsEs(_) = &self.bus.log {
            // The book has no units: the command commits on its own, now.
            let loaded = self.take_preloaded::<A>(aggregate_id).map(Ok);
            let (outcome, events) = self
                .bus
                .decide_and_append::<A>(aggregate_id, command, self.metadata, loaded)
                .await?;
            return Ok(UnitDecision {
                reply: outcome.reply,
                events,
                duplicate: outcome.duplicate,
            });
        }
        let staged = self
            .staged
            .iter()
            .position(|s| s.aggregate_type == A::TYPE && s.aggregate_id == aggregate_id);
        let (aggregate, sequence) = match staged {
            Some(index) => {
                let entry = &mut self.staged[index];
                let state = std::mem::replace(&mut entry.state, Box::new(()));
                match state.downcast::<A>() {
                    Ok(state) => (*state, entry.expected_sequence + entry.events.len()),
                    // The type tag matched, so the state is an `A`; reload to be safe.
                    Err(_) => self.bus.load::<A>(aggregate_id).await?,
                }
            }
            None => {
                let loaded = match self.take_preloaded::<A>(aggregate_id) {
                    Some(loaded) => loaded,
                    None => self.bus.load_for::<A>(self.metadata, aggregate_id).await?,
                };
                match loaded {
                    Err(outcome) => {
                        return Ok(UnitDecision {
                            reply: outcome.reply,
                            events: Vec::new(),
                            duplicate: true,
                        })
                    }
                    Ok(loaded) => loaded,
                }
            }
        };
        let decided = self
            .bus
            .decide_from::<A>(aggregate_id, aggregate, sequence, command)
            .await?;
        let new_events = decided.new_events()?;
        let decision = UnitDecision {
            reply: decided.reply.clone(),
            events: decided.events,
            duplicate: false,
        };
        match staged {
            Some(index) => {
                let entry = &mut self.staged[index];
                entry.state = Box::new(decided.aggregate);
                entry.events.extend(new_events);
                entry.command_type = format!("{}+{}", entry.command_type, decided.command_type);
                entry.reply = decided.reply;
            }
            None => self.staged.push(Staged {
                aggregate_type: A::TYPE,
                aggregate_id: decided.aggregate_id,
                expected_sequence: decided.sequence,
                state: Box::new(decided.aggregate),
                events: new_events,
                command_type: decided.command_type.to_string(),
                reply: decided.reply,
            }),
        }
        Ok(decision)
    }

    /// Hands the unit what [`CommandBus::load_for`] answered for this unit's message and
    /// aggregate `A` `aggregate_id` before the unit began, so that its command is decided on
    /// it instead of reading the stream again. A state that moved on meanwhile is caught at
    /// commit like any other (the expected sequence conflicts, and the caller plans a new unit
    /// from fresh state); a recorded outcome never stops being recorded.
    pub fn preload<A: Routed>(
        &mut self,
        aggregate_id: &str,
        loaded: Result<(A, usize), CommandOutcome>,
    ) {
        self.preloaded
            .push((A::TYPE, aggregate_id.to_string(), Box::new(loaded)));
    }

    fn take_preloaded<A: Routed>(
        &mut self,
        aggregate_id: &str,
    ) -> Option<Result<(A, usize), CommandOutcome>> {
        let at = self
            .preloaded
            .iter()
            .position(|(t, id, _)| *t == A::TYPE && id == aggregate_id)?;
        let (_, _, loaded) = self.preloaded.swap_remove(at);
        match loaded.downcast::<Result<(A, usize), CommandOutcome>>() {
            Ok(loaded) => Some(*loaded),
            // The type tag matched, so this cannot happen; the unit reads the stream instead.
            Err(_) => None,
        }
    }

    /// Appends every staged command in one transaction.
    pub async fn commit(self) -> Result<Vec<CommandOutcome>, UnitError> {
        if self.staged.is_empty() {
            return Ok(Vec::new());
        }
        let batches = self
            .staged
            .iter()
            .map(|s| AppendBatch {
                aggregate_type: s.aggregate_type,
                aggregate_id: &s.aggregate_id,
                expected_sequence: s.expected_sequence,
                events: s.events.clone(),
                metadata: self.metadata,
                command_type: &s.command_type,
                reply: s.reply.clone(),
            })
            .collect();
        let appended = match &self.bus.log {
            EventLog::Postgres(log) => log.append_all(batches).await,
            EventLog::Memory(log) => log.append_all(batches),
            // `Unit::execute` committed each command already.
            EventLog::CqrsEs(_) => Ok(Vec::new()),
        };
        match appended {
            Ok(outcomes) => {
                if outcomes.iter().any(|o| !o.events.is_empty()) {
                    self.bus.wake.notify_one();
                }
                Ok(outcomes)
            }
            Err(AppendError::Conflict) | Err(AppendError::Duplicate) => Err(UnitError::Conflict),
            Err(AppendError::Store(error)) => Err(UnitError::Store(error)),
        }
    }
}

/// Where the bus keeps its events.
#[derive(Debug, Clone)]
pub enum EventLog {
    Postgres(PgEventLog),
    Memory(Arc<MemEventLog>),
    /// The cqrs-es reference backend: the benchmarks' naive baseline, never `serve`'s
    /// ([`crate::store::cqrs_book`]).
    CqrsEs(CqrsEsLog),
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

/// An aggregate loaded for a command: its state and sequence, or (`Err`) the outcome already
/// recorded for the command's message on it (a redelivery): what [`CommandBus::load_for`]
/// answers.
pub type Loaded<A> = Result<Result<(A, usize), CommandOutcome>, StoreError>;

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
        self.decide_and_append::<A>(aggregate_id, command, metadata, None)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// Executes the command `prepare` builds (from lookups of its own, e.g. the person and
    /// sentence a referral needs) on aggregate `A`, loading the aggregate **while** `prepare`
    /// runs instead of after it: one round trip less on the caller's path. `prepare`'s error
    /// comes back as the outer `Err`; nothing is written then.
    pub async fn execute_prepared<A: Routed, E>(
        &self,
        aggregate_id: &str,
        metadata: &Metadata,
        prepare: impl std::future::Future<Output = Result<A::Command, E>>,
    ) -> Result<Result<CommandOutcome, BusError<A::Error>>, E>
    where
        A::Command: Clone + Send + Sync,
    {
        let (loaded, command) = tokio::join!(self.load_for::<A>(metadata, aggregate_id), prepare);
        let command = command?;
        Ok(self
            .decide_and_append::<A>(aggregate_id, command, metadata, Some(loaded))
            .await
            .map(|(outcome, _)| outcome))
    }

    /// Loads the aggregate (or takes `loaded`), decides the command and appends its events
    /// to the log — on the cqrs-es book backend, commits and projects them — deciding again
    /// from a fresh load on a conflict. The outcome and the events appended (none for a
    /// message already recorded).
    async fn decide_and_append<A: Routed>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        mut loaded: Option<Loaded<A>>,
    ) -> Result<(CommandOutcome, Vec<A::Event>), BusError<A::Error>> {
        for attempt in 1..=self.max_attempts {
            let load = match loaded.take() {
                Some(load) => load,
                None => self.load_for::<A>(metadata, aggregate_id).await,
            };
            let (aggregate, sequence) = match load? {
                Err(mut outcome) => {
                    outcome.duplicate = true;
                    return Ok((outcome, Vec::new()));
                }
                Ok(loaded) => loaded,
            };
            let mut decided = self
                .decide_from::<A>(aggregate_id, aggregate, sequence, command.clone())
                .await?;
            let appended = match &self.log {
                EventLog::Postgres(log) => {
                    log.append(decided.batch(metadata, decided.new_events()?))
                        .await
                }
                EventLog::Memory(log) => log.append(decided.batch(metadata, decided.new_events()?)),
                EventLog::CqrsEs(log) => {
                    let outcome = decided.outcome(metadata);
                    let events = std::mem::take(&mut decided.events);
                    log.commit::<A>(aggregate_id, sequence, events, metadata)
                        .await
                        .map(|events| {
                            decided.events = events;
                            outcome
                        })
                }
            };
            match appended {
                Ok(outcome) => {
                    if !outcome.events.is_empty() {
                        self.wake.notify_one();
                    }
                    return Ok((outcome, decided.events));
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

    /// Starts a [`Unit`]: commands on several aggregates decided under one message and
    /// appended in one transaction, all or nothing.
    pub fn unit<'b>(&'b self, metadata: &'b Metadata) -> Unit<'b> {
        Unit {
            bus: self,
            metadata,
            staged: Vec::new(),
            preloaded: Vec::new(),
        }
    }

    /// How many times a caller re-plans a [`Unit`] whose commit conflicted before giving up
    /// (the same bound [`CommandBus::execute`] uses).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Waits the jittered backoff before attempt `attempt + 1` of a conflicting [`Unit`].
    pub async fn back_off(&self, attempt: u32) {
        tokio::time::sleep(backoff(attempt)).await;
    }

    /// Decides the command on `aggregate` (at `sequence`) and serializes its events.
    async fn decide_from<A: Routed>(
        &self,
        aggregate_id: &str,
        mut aggregate: A,
        sequence: usize,
        command: A::Command,
    ) -> Result<Decided<A>, BusError<A::Error>> {
        let command_type = A::command_name(&command);
        let sink = EventSink::<A>::default();
        let reply_command = command.clone();
        aggregate
            .handle(command, &self.services, &sink)
            .await
            .map_err(BusError::Rejected)?;
        let events = sink.collect().await;
        let reply = A::reply(&aggregate, &reply_command, &events);
        Ok(Decided {
            aggregate,
            aggregate_id: aggregate_id.to_string(),
            sequence,
            command_type,
            events,
            reply,
        })
    }

    /// The outcome recorded for this message on the aggregate (`Err`: a redelivery), else the
    /// aggregate rebuilt with its sequence; one round trip on PostgreSQL.
    pub async fn load_for<A: Routed>(&self, metadata: &Metadata, aggregate_id: &str) -> Loaded<A> {
        match &self.log {
            EventLog::Postgres(log) => {
                match log
                    .load_unless_recorded(&metadata.message_id, A::TYPE, aggregate_id)
                    .await?
                {
                    Recorded::Outcome(outcome) => Ok(Err(outcome)),
                    Recorded::Events(events) => rehydrate::<A, _>(events).map(Ok),
                }
            }
            EventLog::Memory(log) => {
                match log.outcome(&metadata.message_id, A::TYPE, aggregate_id)? {
                    Some(outcome) => Ok(Err(outcome)),
                    None => rehydrate::<A, _>(log.load(A::TYPE, aggregate_id)?).map(Ok),
                }
            }
            // The book keeps no command log: every delivery is decided.
            EventLog::CqrsEs(log) => log.load::<A>(aggregate_id).await.map(Ok),
        }
    }

    /// Rebuilds an aggregate from its events (upcast first); returns it with its sequence.
    pub async fn load<A: Routed>(&self, aggregate_id: &str) -> Result<(A, usize), StoreError> {
        match &self.log {
            EventLog::Postgres(log) => rehydrate::<A, _>(log.load::<A>(aggregate_id).await?),
            EventLog::Memory(log) => rehydrate::<A, _>(log.load(A::TYPE, aggregate_id)?),
            EventLog::CqrsEs(log) => log.load::<A>(aggregate_id).await,
        }
    }
}

/// Folds stored events into an aggregate, each decoded once from its stored form straight
/// into the aggregate's event type, upcast first where an upcaster applies
/// ([`projections::log::upcast`], shared with the projectors).
pub fn rehydrate<A: Aggregate, J: projections::Json>(
    events: Vec<StoredEvent<J>>,
) -> Result<(A, usize), StoreError> {
    let mut aggregate = A::default();
    let mut sequence = 0;
    for event in events {
        let upcast = projections::log::upcast(
            &event.aggregate_type,
            &event.aggregate_id,
            event.sequence as i64,
            &event.event_type,
            &event.event_version,
            &event.payload,
        )?;
        let payload: A::Event = match upcast {
            Some(upcast) => serde_json::from_value(upcast)?,
            None => event.payload.parse()?,
        };
        sequence = event.sequence;
        aggregate.apply(payload);
    }
    Ok((aggregate, sequence))
}

/// Jittered exponential backoff: 2, 4, 8… ms up to 128 ms, plus up to as much again at random.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(7);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base + 1)) as u64;
    Duration::from_millis(base + jitter)
}
