//! The consumers: competing consumers per queue with a registered handler, manual ack, the
//! retry path and the dead-letter queue, a supervisor that reconnects, and graceful shutdown.
//!
//! # One delivery
//! 1. The attempt is the `x-attempt` header (1 when absent).
//! 2. The body is parsed ([`Envelope::parse`]); a parse error, or an event type not bound to
//!    the queue, is [`HandlerOutcome::Rejected`] (permanent). Otherwise the queue's handler runs
//!    (in its own task, so a panic is a [`HandlerOutcome::Failed`]).
//! 3. Ignored, rejected and failed outcomes are recorded in the [`OutcomeLog`]; every outcome is
//!    counted ([`crate::metrics`]) and logged with `message_id`, `queue`, `event_type`,
//!    `outcome` and `reason`.
//! 4. [`disposition`] decides: **ack**; **retry** — a copy goes to the delay queue of that delay
//!    (`<queue>.retry.<ms>ms`) with `x-attempt` + 1, published with a confirm, then the
//!    original is acked; **dead-letter** — a copy goes to `<queue>.dlq` with the headers
//!    [`DEATH_REASON`], [`ATTEMPTS`], [`ORIGINAL_QUEUE`], [`EVENT_TYPE`], [`MESSAGE_ID`],
//!    [`DEAD_LETTERED_AT`], confirmed, then the original is acked.
//!
//! The ack comes only after the handler returned (it has committed its events) and after any
//! copy was confirmed by the broker. A copy that is not confirmed leaves the original unacked
//! and requeued (redelivered with the same attempt); an ack that fails (`Err` or `Ok(false)`)
//! leaves it to the broker to redeliver. Delivery is therefore at least once, and handlers are
//! idempotent (the command bus dedupes on the message id).
//!
//! # Concurrency
//! `AmqpArgs.consumers` consumers per queue, each on its own channel with
//! `basic_qos(prefetch)`, all on one connection; several processes compete for the same queues.
//! A consumer handles up to `prefetch` deliveries at once, but **one person's messages one
//! after the other**, in the order the broker delivered them: a delivery waits while a message
//! about its CRN or NOMS number is in hand or waiting before it (`PersonOrder`) — in hand in
//! **any** consumer of the process (`InHand`, shared by a session's consumers of every queue,
//! so one person's messages handed to two consumers are not decided side by side on the same
//! streams). So messages about one person are reordered no more than competing consumers
//! cause anyway, and never handled at once within a process; and the
//! messages in hand about different people share the event log's grouped loads and group
//! commits (one query, one statement for many) instead of taking turns.
//!
//! # Reconnecting: a supervisor, not lapin's recovery
//! [`Consumers::start`] runs a supervisor loop: connect, declare the topology, start the
//! consumers; when the connection or any consumer fails, stop the others gracefully, close the
//! connection, wait (exponential backoff, 200 ms to 30 s, reset once consumers ran again) and
//! start over. lapin's opt-in recovery (`enable_auto_recover`) was not chosen: it replays the
//! declarations and consumers behind the application's back, deliveries from before the drop
//! can no longer be acked (they are redelivered anyway), 4.11–4.12.3 are mostly fixes to it,
//! and every call site would need `wait_for_recovery`. The supervisor is a few dozen lines with
//! one obvious state per session, redeclares the topology on every reconnect (a broker that lost
//! its definitions gets them back), and is tested by the same code path as a normal start.
//!
//! # Shutdown
//! When `shutdown` turns true: each consumer is cancelled (`basic_cancel`: no new deliveries),
//! the messages in hand are finished and settled, deliveries not started (waiting behind the
//! same person's message, or prefetched after the cancel) are requeued (`nack` with requeue),
//! then channels and connection are closed and [`Consumers::join`] returns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::envelope::Envelope;
use super::handler::{outcome_label, Handlers, MessageHandler, MessageOutcome, OutcomeLog};
use super::outcome::{disposition, Disposition, HandlerOutcome, RetryPolicy};
use super::topology::{self, Names, QueueSpec};
use crate::config::AmqpArgs;

/// Header: the delivery attempt of a message (1 = first; absent = 1).
pub const ATTEMPT: &str = "x-attempt";
/// Dead-letter header: why the message was dead-lettered.
pub const DEATH_REASON: &str = "x-death-reason";
/// Dead-letter header: how many deliveries it had.
pub const ATTEMPTS: &str = "x-attempts";
/// Dead-letter header: the unprefixed queue it came from.
pub const ORIGINAL_QUEUE: &str = "x-original-queue";
/// Dead-letter header: its event type (`unknown` when the body did not parse).
pub const EVENT_TYPE: &str = "x-event-type";
/// Dead-letter header: its message id (the SNS `MessageId`; for an unparseable body the AMQP
/// `message_id` property, else a generated UUID).
pub const MESSAGE_ID: &str = "x-message-id";
/// Dead-letter header: when it was dead-lettered (RFC 3339, UTC).
pub const DEAD_LETTERED_AT: &str = "x-dead-lettered-at";

/// The event type of a message whose body did not parse.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a consumer waits before requeueing a message whose copy (retry or dead letter)
/// was not confirmed, so that a broker refusing copies does not spin the handler.
const FORWARD_FAILURE_PAUSE: Duration = Duration::from_secs(1);
/// How long a stopping consumer waits for its cancel to be confirmed while requeueing the
/// deliveries it had prefetched.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A broker operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker returned the message published to `{queue}`: {reply}")]
    Unroutable { queue: String, reply: String },
    #[error("the broker refused (nack) the message published to `{0}`")]
    Nacked(String),
    #[error("publisher confirms are not enabled on the channel")]
    NotConfirmed,
    #[error("the delivery could not be settled (channel closed or already settled)")]
    NotSettled,
    #[error("the broker cancelled the consumer of `{0}`")]
    Cancelled(String),
}

/// What the consumers need; nothing of the engine but the outcome log.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The broker URL (`amqp://user:pass@host:port/vhost`).
    pub url: String,
    /// Prefix, prefetch, consumers per queue and retry delays.
    pub amqp: AmqpArgs,
    /// Where ignored, rejected and failed outcomes are recorded.
    pub outcomes: OutcomeLog,
}

impl ConsumerConfig {
    /// A configuration.
    pub fn new(url: impl Into<String>, amqp: AmqpArgs, outcomes: OutcomeLog) -> Self {
        Self {
            url: url.into(),
            amqp,
            outcomes,
        }
    }

    /// The retry policy of `AmqpArgs.retry_delays_ms`.
    pub fn policy(&self) -> RetryPolicy {
        policy(&self.amqp)
    }

    /// The broker names under `AmqpArgs.prefix`.
    pub fn names(&self) -> Names {
        Names::new(self.amqp.prefix.clone())
    }
}

/// The retry policy of `AmqpArgs.retry_delays_ms`.
pub fn policy(amqp: &AmqpArgs) -> RetryPolicy {
    RetryPolicy {
        delays: amqp
            .retry_delays_ms
            .iter()
            .copied()
            .map(Duration::from_millis)
            .collect(),
    }
}

/// The running consumers of one process (one connection, supervised).
#[derive(Debug)]
pub struct Consumers {
    task: JoinHandle<()>,
    ready: watch::Receiver<bool>,
}

impl Consumers {
    /// Starts the supervisor: connects (retrying with backoff), declares the topology and
    /// starts `AmqpArgs.consumers` consumers on every queue of `handlers`, until `shutdown`
    /// turns true (or its sender is dropped). Also installs the metrics recorder.
    pub fn start(
        config: ConsumerConfig,
        handlers: Handlers,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        crate::metrics::install();
        let (ready_tx, ready) = watch::channel(false);
        let task = tokio::spawn(supervise(Arc::new(config), handlers, shutdown, ready_tx));
        Self { task, ready }
    }

    /// Whether the topology is declared and every consumer is running now.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until [`Consumers::is_ready`], at most `timeout`; returns whether it is.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        let reached =
            tokio::time::timeout(timeout, async move { ready.wait_for(|r| *r).await.is_ok() })
                .await;
        matches!(reached, Ok(true))
    }

    /// Waits until the consumers have stopped (after `shutdown`): in-flight messages finished
    /// and acked, connection closed.
    pub async fn join(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "consumer supervisor failed");
        }
    }
}

/// Resolves when `shutdown` is true or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn is_stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

async fn supervise(
    config: Arc<ConsumerConfig>,
    handlers: Handlers,
    mut shutdown: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = INITIAL_BACKOFF;
    while !is_stopping(&shutdown) {
        let mut started = false;
        let result = session(&config, &handlers, &mut shutdown, &ready, &mut started).await;
        ready.send_replace(false);
        match result {
            Ok(SessionEnd::Shutdown) => break,
            Ok(SessionEnd::Lost) => tracing::warn!("broker connection lost; reconnecting"),
            Err(error) => tracing::warn!(%error, "broker unavailable; retrying"),
        }
        if started {
            backoff = INITIAL_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::info!("consumers stopped");
}

enum SessionEnd {
    Shutdown,
    Lost,
}

/// One connection's life: connect, declare, consume until shutdown or a failure.
async fn session(
    config: &Arc<ConsumerConfig>,
    handlers: &Handlers,
    shutdown: &mut watch::Receiver<bool>,
    ready: &watch::Sender<bool>,
    started: &mut bool,
) -> Result<SessionEnd, AmqpError> {
    let properties = ConnectionProperties::default().with_connection_name(
        format!("delius-bridge consumers {}", config.amqp.prefix)
            .trim_end()
            .into(),
    );
    let connection = Connection::connect(&config.url, properties).await?;
    let result = consume_on(&connection, config, handlers, shutdown, ready, started).await;
    if connection.status().connected() {
        let _ = connection.close(200, "OK".into()).await;
    }
    result
}

async fn consume_on(
    connection: &Connection,
    config: &Arc<ConsumerConfig>,
    handlers: &Handlers,
    shutdown: &mut watch::Receiver<bool>,
    ready: &watch::Sender<bool>,
    started: &mut bool,
) -> Result<SessionEnd, AmqpError> {
    let names = config.names();
    let policy = config.policy();
    let setup = connection.create_channel().await?;
    topology::declare(&setup, &names, &policy.delays).await?;
    let _ = setup.close(200, "OK".into()).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = JoinSet::new();
    let start = start_workers(
        connection,
        config,
        handlers,
        &names,
        &policy,
        &stop_rx,
        &mut workers,
    )
    .await;
    if let Err(error) = start {
        let _ = stop_tx.send(true);
        while workers.join_next().await.is_some() {}
        return Err(error);
    }
    *started = true;
    ready.send_replace(true);
    tracing::info!(
        queues = ?handlers.queues().collect::<Vec<_>>(),
        consumers = workers.len(),
        "consuming"
    );

    let end = tokio::select! {
        _ = stopped(shutdown) => SessionEnd::Shutdown,
        Some(joined) = workers.join_next() => {
            match joined {
                Ok(Ok(())) => tracing::warn!("a consumer stopped"),
                Ok(Err(error)) => tracing::warn!(%error, "a consumer failed"),
                Err(error) => tracing::error!(%error, "a consumer panicked"),
            }
            SessionEnd::Lost
        }
        _ = connection_lost(connection) => SessionEnd::Lost,
    };
    ready.send_replace(false);
    let _ = stop_tx.send(true);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "consumer ended with an error"),
            Err(error) => tracing::error!(%error, "a consumer panicked"),
        }
    }
    Ok(end)
}

async fn start_workers(
    connection: &Connection,
    config: &Arc<ConsumerConfig>,
    handlers: &Handlers,
    names: &Names,
    policy: &RetryPolicy,
    stop: &watch::Receiver<bool>,
    workers: &mut JoinSet<Result<(), AmqpError>>,
) -> Result<(), AmqpError> {
    let process = uuid::Uuid::new_v4().simple().to_string();
    let in_hand = InHand::default();
    for queue in handlers.queues() {
        let (Some(spec), Some(handler)) = (topology::spec(queue), handlers.get(queue)) else {
            tracing::warn!(
                queue,
                "a handler is registered for an unknown queue; ignored"
            );
            continue;
        };
        let context = Arc::new(QueueContext {
            spec,
            names: names.clone(),
            handler: handler.clone(),
            policy: policy.clone(),
            outcomes: config.outcomes.clone(),
        });
        for n in 0..config.amqp.consumers.max(1) {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .basic_qos(config.amqp.prefetch.max(1), BasicQosOptions::default())
                .await?;
            let tag = format!("delius-bridge.{process}.{}.{n}", spec.name);
            let consumer = channel
                .basic_consume(
                    names.queue(spec.name).as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            workers.spawn(run_worker(
                channel,
                consumer,
                context.clone(),
                in_hand.clone(),
                stop.clone(),
            ));
        }
    }
    Ok(())
}

/// Resolves when the connection is no longer open.
async fn connection_lost(connection: &Connection) {
    while connection.status().connected() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a consumer of one queue needs.
struct QueueContext {
    spec: &'static QueueSpec,
    names: Names,
    handler: Arc<dyn MessageHandler>,
    policy: RetryPolicy,
    outcomes: OutcomeLog,
}

/// A delivery the consumer holds, parsed once.
struct Held {
    delivery: Delivery,
    parsed: Result<Envelope, String>,
}

impl Held {
    /// The delivery parsed, and the people it is about: its CRN and NOMS number (none when
    /// it did not parse).
    fn new(delivery: Delivery) -> (Vec<String>, Self) {
        let parsed = Envelope::parse(&delivery.data).map_err(|e| e.to_string());
        let people = match &parsed {
            Ok(envelope) => [envelope.event.crn(), envelope.event.noms_number()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            Err(_) => Vec::new(),
        };
        (people, Self { delivery, parsed })
    }
}

/// The people whose messages are in hand in any consumer of a session (its workers, of every
/// queue, share one), and a signal each time some are released, so that a consumer whose
/// deliveries wait for a person another consumer holds starts them then. With several
/// consumers per queue the broker hands one person's messages to any of them; without this
/// two of them could be handled at once — both decided on the same stream, one refused as a
/// conflict and decided again, and their order left to chance.
#[derive(Clone)]
struct InHand {
    busy: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    released: Arc<watch::Sender<u64>>,
}

impl Default for InHand {
    fn default() -> Self {
        Self {
            busy: Default::default(),
            released: Arc::new(watch::channel(0).0),
        }
    }
}

/// Which held deliveries may start: those about nobody in hand (in this consumer or another
/// sharing its [`InHand`]), in arrival order. A delivery waits while a message about one of
/// its people is being handled, or is waiting before it in this consumer, so the messages
/// about one person are handled one after the other — in the order this consumer received
/// them — and messages about different people are handled side by side.
struct PersonOrder<T> {
    in_hand: InHand,
    waiting: std::collections::VecDeque<(Vec<String>, T)>,
}

impl<T> Default for PersonOrder<T> {
    fn default() -> Self {
        Self::sharing(InHand::default())
    }
}

impl<T> PersonOrder<T> {
    fn sharing(in_hand: InHand) -> Self {
        Self {
            in_hand,
            waiting: Default::default(),
        }
    }

    /// Adds an item about `people`; returns the items that may start now.
    fn arrive(&mut self, people: Vec<String>, item: T) -> Vec<(Vec<String>, T)> {
        self.waiting.push_back((people, item));
        self.ready()
    }

    /// Marks the handling of an item about `people` finished (telling the consumers that
    /// share the people in hand); returns the items that may start now.
    fn finish(&mut self, people: Vec<String>) -> Vec<(Vec<String>, T)> {
        if !people.is_empty() {
            let mut busy = self.in_hand.busy.lock().unwrap_or_else(|e| e.into_inner());
            for person in &people {
                if let Some(count) = busy.get_mut(person) {
                    *count -= 1;
                    if *count == 0 {
                        busy.remove(person);
                    }
                }
            }
            drop(busy);
            self.in_hand
                .released
                .send_modify(|n| *n = n.wrapping_add(1));
        }
        self.ready()
    }

    /// The waiting items that may start now, their people marked in hand.
    fn ready(&mut self) -> Vec<(Vec<String>, T)> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let mut claimed = std::collections::HashSet::new();
        let mut start = Vec::new();
        let mut still = std::collections::VecDeque::with_capacity(self.waiting.len());
        let mut busy = self.in_hand.busy.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((people, item)) = self.waiting.pop_front() {
            let blocked = people
                .iter()
                .any(|p| busy.contains_key(p) || claimed.contains(p));
            if blocked {
                claimed.extend(people.iter().cloned());
                still.push_back((people, item));
            } else {
                for person in &people {
                    *busy.entry(person.clone()).or_default() += 1;
                }
                start.push((people, item));
            }
        }
        drop(busy);
        self.waiting = still;
        start
    }

    /// The items not started (to requeue on shutdown).
    fn take_waiting(&mut self) -> Vec<T> {
        self.waiting.drain(..).map(|(_, item)| item).collect()
    }
}

/// One consumer: handles its deliveries until stopped — up to `prefetch` at once, one person's
/// messages one after the other ([`PersonOrder`]) — then cancels, finishes the messages in
/// hand, requeues what it had not started and closes its channel.
async fn run_worker(
    channel: Channel,
    mut consumer: lapin::Consumer,
    context: Arc<QueueContext>,
    in_hand: InHand,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AmqpError> {
    let mut released = in_hand.released.subscribe();
    let mut order = PersonOrder::<Held>::sharing(in_hand);
    let mut in_hand = futures::stream::FuturesUnordered::new();
    let handle =
        |(people, held): (Vec<String>, Held)| handle_held(&context, &channel, people, held);
    let end = loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break Ok(()),
            Some(people) = in_hand.next(), if !in_hand.is_empty() => {
                in_hand.extend(order.finish(people).into_iter().map(handle));
            }
            // Another consumer released people this one's deliveries may wait for.
            Ok(()) = released.changed(), if !order.waiting.is_empty() => {
                in_hand.extend(order.ready().into_iter().map(handle));
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    let (people, held) = Held::new(delivery);
                    in_hand.extend(order.arrive(people, held).into_iter().map(handle));
                }
                Some(Err(error)) => break Err(AmqpError::from(error)),
                None => break Err(AmqpError::Cancelled(context.spec.name.to_owned())),
            },
        }
    };
    let requeue = BasicNackOptions {
        multiple: false,
        requeue: true,
    };
    if end.is_ok() {
        if let Err(error) = channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(%error, "cancelling a consumer");
        }
    }
    // Not started: back to the broker, so a message about a person never overtakes an
    // earlier one held here. Started: finished and settled.
    for held in order.take_waiting() {
        if !matches!(held.delivery.nack(requeue).await, Ok(true)) {
            tracing::debug!("a held delivery could not be requeued; the broker will");
        }
    }
    while in_hand.next().await.is_some() {}
    if end.is_ok() {
        // The deliveries prefetched before the cancel come first, then the end of the stream.
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(DRAIN_TIMEOUT, consumer.next()).await
        {
            if !matches!(delivery.nack(requeue).await, Ok(true)) {
                tracing::debug!("a prefetched delivery could not be requeued; the broker will");
            }
        }
        if let Err(error) = channel.close(200, "OK".into()).await {
            tracing::debug!(%error, "closing a consumer channel");
        }
    }
    end
}

/// Handles a held delivery; the people it was about.
async fn handle_held(
    context: &QueueContext,
    channel: &Channel,
    people: Vec<String>,
    held: Held,
) -> Vec<String> {
    handle_delivery(context, channel, held.delivery, held.parsed).await;
    people
}

/// Handles one delivery from parsing to ack (see the module documentation).
async fn handle_delivery(
    context: &QueueContext,
    channel: &Channel,
    delivery: Delivery,
    parsed: Result<Envelope, String>,
) {
    let started = Instant::now();
    let queue = context.spec.name;
    let attempt = header_u32(delivery.properties.headers(), ATTEMPT)
        .unwrap_or(1)
        .max(1);
    let (envelope, outcome) = match parsed {
        Err(error) => (
            None,
            HandlerOutcome::Rejected {
                reason: format!("unparseable message: {error}"),
            },
        ),
        Ok(envelope) if !context.spec.binds(&envelope.event_type) => {
            let reason = format!(
                "event type `{}` is not bound to queue {queue}",
                envelope.event_type
            );
            (Some(envelope), HandlerOutcome::Rejected { reason })
        }
        Ok(envelope) => {
            let outcome = call(context.handler.clone(), envelope.clone()).await;
            (Some(envelope), outcome)
        }
    };
    let message_id = envelope
        .as_ref()
        .map(|e| e.message_id.clone())
        .or_else(|| header_string(delivery.properties.headers(), MESSAGE_ID))
        .or_else(|| {
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned())
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let event_type = envelope
        .as_ref()
        .map_or(UNKNOWN_EVENT_TYPE, |e| e.event_type.as_str());
    let label = outcome_label(&outcome);

    if !matches!(outcome, HandlerOutcome::Success { .. }) {
        let record = MessageOutcome::new(
            &message_id,
            queue,
            event_type,
            envelope.as_ref(),
            &outcome,
            attempt,
        );
        if let Err(error) = context.outcomes.record(&record).await {
            tracing::error!(%error, message_id, queue, "could not record a message outcome");
        }
    }

    let decided = disposition(&outcome, attempt, &context.policy);
    let settled = settle(
        context,
        channel,
        &delivery,
        &decided,
        attempt,
        &message_id,
        event_type,
    )
    .await;

    let metric_event_type = if context.spec.binds(event_type) {
        event_type
    } else {
        "other"
    };
    crate::metrics::record_message(queue, metric_event_type, label, started.elapsed());
    if matches!(
        (&decided, &settled),
        (Disposition::DeadLetter { .. }, Ok(()))
    ) {
        crate::metrics::record_dead_letter(queue);
    }
    let reason = match &outcome {
        HandlerOutcome::Rejected { reason } | HandlerOutcome::Failed { reason } => reason.as_str(),
        _ => "",
    };
    let action = match &decided {
        Disposition::Ack => "acked".to_owned(),
        Disposition::Retry { delay } => format!("retry in {delay:?}"),
        Disposition::DeadLetter { .. } => "dead-lettered".to_owned(),
    };
    match (&outcome, &settled) {
        (_, Err(error)) => tracing::error!(
            message_id, queue, event_type, outcome = label, reason, attempt, %error,
            "message not settled; the broker will redeliver it"
        ),
        (HandlerOutcome::Success { name, .. }, Ok(())) => tracing::info!(
            message_id,
            queue,
            event_type,
            outcome = label,
            reason,
            attempt,
            name,
            "message handled"
        ),
        (HandlerOutcome::Ignored { name, .. }, Ok(())) => tracing::info!(
            message_id,
            queue,
            event_type,
            outcome = label,
            reason,
            attempt,
            name,
            "message ignored"
        ),
        (_, Ok(())) => tracing::warn!(
            message_id,
            queue,
            event_type,
            outcome = label,
            reason,
            attempt,
            action,
            "message not handled"
        ),
    }
}

/// Runs the handler in its own task: a panic becomes a failure (retried, then dead-lettered).
async fn call(handler: Arc<dyn MessageHandler>, envelope: Envelope) -> HandlerOutcome {
    let task = tokio::spawn(async move { handler.handle(&envelope).await });
    match task.await {
        Ok(outcome) => outcome,
        Err(error) => HandlerOutcome::Failed {
            reason: format!("handler panicked: {error}"),
        },
    }
}

/// Carries out a disposition: ack, or forward a copy (confirmed) and then ack. A copy that was
/// not confirmed requeues the original.
async fn settle(
    context: &QueueContext,
    channel: &Channel,
    delivery: &Delivery,
    decided: &Disposition,
    attempt: u32,
    message_id: &str,
    event_type: &str,
) -> Result<(), AmqpError> {
    let queue = context.spec.name;
    let forwarded = match decided {
        Disposition::Ack => Ok(()),
        Disposition::Retry { delay } => {
            let mut headers = copied_headers(delivery.properties.headers());
            headers.insert(ATTEMPT.into(), int(attempt.saturating_add(1)));
            let target = context.names.retry(queue, *delay);
            publish_confirmed(
                channel,
                &target,
                &delivery.data,
                copy_properties(delivery, headers),
            )
            .await
        }
        Disposition::DeadLetter { reason } => {
            let mut headers = copied_headers(delivery.properties.headers());
            headers.remove(ATTEMPT);
            headers.insert(DEATH_REASON.into(), text(reason));
            headers.insert(ATTEMPTS.into(), int(attempt));
            headers.insert(ORIGINAL_QUEUE.into(), text(queue));
            headers.insert(EVENT_TYPE.into(), text(event_type));
            headers.insert(MESSAGE_ID.into(), text(message_id));
            headers.insert(
                DEAD_LETTERED_AT.into(),
                text(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
            let target = context.names.dlq(queue);
            publish_confirmed(
                channel,
                &target,
                &delivery.data,
                copy_properties(delivery, headers),
            )
            .await
        }
    };
    if let Err(error) = forwarded {
        tokio::time::sleep(FORWARD_FAILURE_PAUSE).await;
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        let _ = delivery.nack(requeue).await;
        return Err(error);
    }
    match delivery
        .ack(lapin::options::BasicAckOptions::default())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(AmqpError::NotSettled),
        Err(error) => Err(error.into()),
    }
}

/// Publishes `body` to the queue `queue` (default exchange, mandatory) and waits for the
/// broker's confirm; a return (no such queue), a nack or no confirm at all is an error. The
/// channel must be in confirm mode.
pub async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), AmqpError> {
    let confirmation = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(AmqpError::Unroutable {
            queue: queue.to_owned(),
            reply: returned.reply_text.to_string(),
        }),
        Confirmation::Nack(_) => Err(AmqpError::Nacked(queue.to_owned())),
        Confirmation::NotRequested => Err(AmqpError::NotConfirmed),
    }
}

/// The original's properties with `headers`, persistent.
pub(crate) fn copy_properties(
    delivery: &Delivery,
    headers: BTreeMap<ShortString, AMQPValue>,
) -> BasicProperties {
    delivery
        .properties
        .clone()
        .with_headers(FieldTable::from(headers))
        .with_delivery_mode(2)
}

/// The headers of a message without RabbitMQ's dead-lettering history (`x-death`,
/// `x-first-death-*`, `x-last-death-*`): a copy we publish starts a new history.
pub(crate) fn copied_headers(headers: &Option<FieldTable>) -> BTreeMap<ShortString, AMQPValue> {
    let mut copied = headers
        .as_ref()
        .map(|h| h.inner().clone())
        .unwrap_or_default();
    copied.retain(|key, _| {
        let key = key.as_str();
        key != "x-death" && !key.starts_with("x-first-death-") && !key.starts_with("x-last-death-")
    });
    copied
}

/// A string header value.
pub(crate) fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// An integer header value.
pub(crate) fn int(value: u32) -> AMQPValue {
    AMQPValue::LongLongInt(i64::from(value))
}

/// A header as a string (string or number values).
pub fn header_string(headers: &Option<FieldTable>, key: &str) -> Option<String> {
    match headers.as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        other => integer(other).map(|n| n.to_string()),
    }
}

/// A header as a non-negative integer (integer values, or digits in a string).
pub fn header_u32(headers: &Option<FieldTable>, key: &str) -> Option<u32> {
    let value = headers.as_ref()?.inner().get(key)?;
    let n = match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).trim().parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().trim().parse().ok(),
        other => integer(other),
    }?;
    u32::try_from(n).ok()
}

fn integer(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, AMQPValue)]) -> Option<FieldTable> {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert((*key).into(), value.clone());
        }
        Some(table)
    }

    #[test]
    fn attempts_read_any_integer_or_digits() {
        assert_eq!(header_u32(&None, ATTEMPT), None);
        assert_eq!(
            header_u32(&headers(&[(ATTEMPT, AMQPValue::LongInt(3))]), ATTEMPT),
            Some(3)
        );
        assert_eq!(
            header_u32(
                &headers(&[(ATTEMPT, AMQPValue::ShortShortUInt(2))]),
                ATTEMPT
            ),
            Some(2)
        );
        assert_eq!(
            header_u32(&headers(&[(ATTEMPT, text("4"))]), ATTEMPT),
            Some(4)
        );
        assert_eq!(
            header_u32(&headers(&[(ATTEMPT, AMQPValue::LongLongInt(-1))]), ATTEMPT),
            None
        );
        assert_eq!(
            header_string(&headers(&[(MESSAGE_ID, text("m-1"))]), MESSAGE_ID).as_deref(),
            Some("m-1")
        );
    }

    fn people(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn started<T: Copy>(ready: Vec<(Vec<String>, T)>) -> Vec<T> {
        ready.into_iter().map(|(_, item)| item).collect()
    }

    #[test]
    fn one_persons_messages_wait_for_each_other_and_others_do_not() {
        let mut order = PersonOrder::default();
        assert_eq!(started(order.arrive(people(&["A"]), 1)), [1]);
        assert_eq!(started(order.arrive(people(&["B"]), 2)), [2]);
        assert!(order.arrive(people(&["A"]), 3).is_empty(), "A is in hand");
        assert_eq!(started(order.arrive(people(&["C"]), 4)), [4]);
        // A message naming A and D waits for A, and so does a later one about D alone.
        assert!(order.arrive(people(&["A", "D"]), 5).is_empty());
        assert!(order.arrive(people(&["D"]), 6).is_empty(), "behind 5");
        // A message about nobody (it did not parse) never waits.
        assert_eq!(started(order.arrive(Vec::new(), 7)), [7]);
        assert!(order.finish(people(&["B"])).is_empty());
        assert_eq!(started(order.finish(people(&["A"]))), [3], "then 5, then 6");
        assert_eq!(started(order.finish(people(&["A"]))), [5]);
        assert_eq!(started(order.finish(people(&["A", "D"]))), [6]);
        assert!(order.arrive(people(&["D"]), 8).is_empty(), "D is in hand");
        assert_eq!(order.take_waiting(), [8]);
        assert!(order.finish(people(&["D"])).is_empty());
        assert!(order.finish(people(&["C"])).is_empty());
        assert!(
            order.in_hand.busy.lock().unwrap().is_empty(),
            "nobody left in hand"
        );
    }

    #[test]
    fn consumers_sharing_people_in_hand_wait_for_each_other() {
        let in_hand = InHand::default();
        let mut released = in_hand.released.subscribe();
        let mut first = PersonOrder::sharing(in_hand.clone());
        let mut second = PersonOrder::sharing(in_hand);
        assert_eq!(started(first.arrive(people(&["A"]), 1)), [1]);
        assert!(
            second.arrive(people(&["A"]), 2).is_empty(),
            "A is in hand in the first consumer"
        );
        assert_eq!(started(second.arrive(people(&["B"]), 3)), [3]);
        assert!(!released.has_changed().unwrap());
        assert!(first.finish(people(&["A"])).is_empty());
        assert!(released.has_changed().unwrap(), "the others are told");
        released.mark_unchanged();
        assert_eq!(started(second.ready()), [2]);
        assert!(
            first.arrive(people(&["A"]), 4).is_empty(),
            "now in the second"
        );
        assert!(second.finish(people(&["A"])).is_empty());
        assert_eq!(started(first.ready()), [4]);
    }

    #[test]
    fn copies_drop_the_brokers_dead_letter_history() {
        let original = headers(&[
            ("x-death", AMQPValue::Void),
            ("x-first-death-queue", text("q")),
            ("x-last-death-reason", text("expired")),
            ("traceparent", text("00-1")),
        ]);
        let copied = copied_headers(&original);
        assert_eq!(
            copied.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["traceparent"]
        );
    }
}
