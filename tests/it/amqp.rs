//! The asynchronous ingestion path against the real RabbitMQ (`AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`): consumers, retries, dead letters, shutdown,
//! competing consumers, reconnection, the dead-letter endpoints and `/metrics`. Each test uses a
//! unique name prefix, so they run in parallel on one broker, and deletes its queues at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use delius_bridge::amqp::consumer::{
    Consumers, ATTEMPTS, DEATH_REASON, EVENT_TYPE, MESSAGE_ID, ORIGINAL_QUEUE,
};
use delius_bridge::amqp::envelope::Envelope;
use delius_bridge::amqp::handler::{Handlers, MessageHandler, OutcomeLog, ScriptedHandler};
use delius_bridge::amqp::outcome::HandlerOutcome;
use delius_bridge::amqp::topology::{MANAGE_POM_CASES, REFER_AND_MONITOR};
use delius_bridge::engine::Engine;
use delius_bridge::http::auth::ROLE_PROBATION_INTEGRATION_ADMIN;
use delius_bridge::http::{router, AppState};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::timeout;
use tower::ServiceExt;

use crate::auth::{auth, token};
use crate::broker::{Rig, PATIENCE};

const REFERRAL_ENDED: &str = "intervention.referral.ended";

/// An SNS notification around a domain event about `crn`.
fn body(message_id: &str, event_type: &str, crn: &str) -> Vec<u8> {
    let event = json!({
        "eventType": event_type,
        "version": 1,
        "occurredAt": "2024-03-01T10:00:00Z",
        "personReference": {"identifiers": [{"type": "CRN", "value": crn}]},
    });
    serde_json::to_vec(&json!({
        "Type": "Notification",
        "MessageId": message_id,
        "Message": event.to_string(),
        "MessageAttributes": {"eventType": {"Type": "String", "Value": event_type}},
    }))
    .unwrap()
}

fn failed(reason: &str) -> HandlerOutcome {
    HandlerOutcome::Failed {
        reason: reason.into(),
    }
}

fn rejected(reason: &str) -> HandlerOutcome {
    HandlerOutcome::Rejected {
        reason: reason.into(),
    }
}

/// Stops consumers and waits for them (bounded).
async fn stop(consumers: Consumers, stop: watch::Sender<bool>) {
    stop.send(true).unwrap();
    timeout(PATIENCE, consumers.join())
        .await
        .expect("consumers stop in time");
}

async fn get(state: AppState, uri: &str, bearer: Option<&str>) -> (StatusCode, String) {
    call(state, Request::get(uri), bearer).await
}

async fn call(
    state: AppState,
    builder: axum::http::request::Builder,
    bearer: Option<&str>,
) -> (StatusCode, String) {
    let builder = match bearer {
        Some(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        None => builder,
    };
    let response = router(state)
        .oneshot(builder.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn a_success_is_acked_and_counted() {
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::succeeding());
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), OutcomeLog::memory())
        .await;
    rig.publish(REFERRAL_ENDED, &body("ok-1", REFERRAL_ENDED, "X100001"))
        .await;
    assert!(handler.wait_for(1, PATIENCE).await);
    stop(consumers, stopper).await;
    assert_eq!(handler.seen(), ["ok-1"]);
    // Acked: nothing went back to the queue when the consumers closed, nothing dead-lettered.
    assert_eq!(rig.count(&rig.names.queue(REFER_AND_MONITOR)).await, 0);
    assert_eq!(rig.count(&rig.names.dlq(REFER_AND_MONITOR)).await, 0);

    let state = AppState {
        engine: Arc::new(Engine::memory()),
        broker: None,
        auth: auth(),
        dead_letters: None,
    };
    let (status, text) = get(state, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(&format!(
            "delius_bridge_messages_total{{queue=\"{REFER_AND_MONITOR}\",event_type=\"{REFERRAL_ENDED}\",outcome=\"success\"}}"
        )),
        "{text}"
    );
    assert!(
        text.contains("delius_bridge_message_handling_seconds_bucket"),
        "{text}"
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn an_ignorable_outcome_is_acked_and_recorded() {
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::new(HandlerOutcome::Ignored {
        name: "NotRelevant".into(),
        properties: BTreeMap::from([("why".into(), "no sentence".into())]),
    }));
    let outcomes = OutcomeLog::memory();
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), outcomes.clone())
        .await;
    rig.publish(REFERRAL_ENDED, &body("ign-1", REFERRAL_ENDED, "X100002"))
        .await;
    assert!(handler.wait_for(1, PATIENCE).await);
    stop(consumers, stopper).await;
    assert_eq!(rig.count(&rig.names.queue(REFER_AND_MONITOR)).await, 0);
    assert_eq!(rig.count(&rig.names.dlq(REFER_AND_MONITOR)).await, 0);
    let recorded = outcomes.for_crn("X100002").await.unwrap();
    assert_eq!(recorded.len(), 1);
    let outcome = &recorded[0].outcome;
    assert_eq!(
        (
            outcome.message_id.as_str(),
            outcome.queue.as_str(),
            outcome.event_type.as_str(),
            outcome.outcome.as_str(),
            outcome.name.as_deref(),
            outcome.attempt,
        ),
        (
            "ign-1",
            REFER_AND_MONITOR,
            REFERRAL_ENDED,
            "ignored",
            Some("NotRelevant"),
            1
        )
    );
    assert_eq!(outcome.properties["why"], "no sentence");
    rig.cleanup().await;
}

#[tokio::test]
async fn a_rejected_message_is_dead_lettered_at_once_with_its_reason() {
    let rig = Rig::new(&[50, 100]).await;
    let handler = Arc::new(ScriptedHandler::new(rejected("appointment not found")));
    let outcomes = OutcomeLog::memory();
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), outcomes.clone())
        .await;
    rig.publish(REFERRAL_ENDED, &body("rej-1", REFERRAL_ENDED, "X100003"))
        .await;
    rig.wait_count(&rig.names.dlq(REFER_AND_MONITOR), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(consumers, stopper).await;
    assert_eq!(handler.seen(), ["rej-1"], "not retried");
    let metrics = delius_bridge::metrics::render();
    assert!(
        metrics.contains(&format!(
            "delius_bridge_dead_letters_total{{queue=\"{REFER_AND_MONITOR}\"}}"
        )),
        "{metrics}"
    );
    assert_eq!(rig.count(&rig.names.queue(REFER_AND_MONITOR)).await, 0);

    let listed = rig.dead_letters().await.list(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    let letter = &listed[0];
    assert_eq!(letter.queue, REFER_AND_MONITOR);
    assert_eq!(letter.message_id, "rej-1");
    assert_eq!(letter.event_type.as_deref(), Some(REFERRAL_ENDED));
    assert_eq!(letter.reason.as_deref(), Some("appointment not found"));
    assert_eq!(letter.attempts, Some(1));
    assert!(letter.dead_lettered_at.is_some());
    let recorded = outcomes.for_crn("X100003").await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].outcome.outcome, "rejected");
    assert_eq!(
        recorded[0].outcome.reason.as_deref(),
        Some("appointment not found")
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn a_message_failing_twice_then_succeeding_is_delivered_three_times() {
    let rig = Rig::new(&[50, 100]).await;
    let handler = Arc::new(
        ScriptedHandler::succeeding().then([failed("database down"), failed("database down")]),
    );
    let outcomes = OutcomeLog::memory();
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), outcomes.clone())
        .await;
    rig.publish(REFERRAL_ENDED, &body("flaky-1", REFERRAL_ENDED, "X100004"))
        .await;
    assert!(handler.wait_for(3, PATIENCE).await, "three deliveries");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(consumers, stopper).await;
    assert_eq!(handler.seen(), ["flaky-1", "flaky-1", "flaky-1"]);
    for queue in [
        rig.names.queue(REFER_AND_MONITOR),
        rig.names.dlq(REFER_AND_MONITOR),
        rig.names
            .retry(REFER_AND_MONITOR, Duration::from_millis(50)),
        rig.names
            .retry(REFER_AND_MONITOR, Duration::from_millis(100)),
    ] {
        assert_eq!(rig.count(&queue).await, 0, "{queue}");
    }
    let attempts: Vec<_> = outcomes
        .for_crn("X100004")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.outcome.outcome, r.outcome.attempt))
        .collect();
    assert_eq!(
        attempts,
        [("failed".to_owned(), 1), ("failed".to_owned(), 2)]
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn a_message_that_always_fails_is_dead_lettered_after_the_last_retry() {
    let rig = Rig::new(&[50, 100]).await;
    let handler = Arc::new(ScriptedHandler::new(failed("database down")));
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), OutcomeLog::memory())
        .await;
    rig.publish(REFERRAL_ENDED, &body("down-1", REFERRAL_ENDED, "X100005"))
        .await;
    rig.wait_count(&rig.names.dlq(REFER_AND_MONITOR), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(consumers, stopper).await;
    assert_eq!(handler.seen().len(), 3, "1 delivery + 2 retries");
    let listed = rig
        .dead_letters()
        .await
        .list(Some(REFER_AND_MONITOR))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].reason.as_deref(),
        Some("failed after 3 attempts: database down")
    );
    assert_eq!(listed[0].attempts, Some(3));
    rig.cleanup().await;
}

#[tokio::test]
async fn unparseable_and_unbound_messages_are_dead_lettered_at_once() {
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::succeeding());
    let (consumers, stopper) = rig
        .consumers(MANAGE_POM_CASES, handler.clone(), OutcomeLog::memory())
        .await;
    let queue = rig.names.queue(MANAGE_POM_CASES);
    rig.publish_to(&queue, b"not json at all", FieldTable::default())
        .await;
    // Bound to the refer-and-monitor queue, not to this one.
    rig.publish_to(
        &queue,
        &body("unbound-1", REFERRAL_ENDED, "X100006"),
        FieldTable::default(),
    )
    .await;
    rig.wait_count(&rig.names.dlq(MANAGE_POM_CASES), 2).await;
    stop(consumers, stopper).await;
    assert!(handler.seen().is_empty(), "the handler never sees them");
    let listed = rig
        .dead_letters()
        .await
        .list(Some(MANAGE_POM_CASES))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let unparseable = &listed[0];
    assert!(!unparseable.message_id.is_empty(), "gets an id to act on");
    assert_eq!(unparseable.event_type.as_deref(), Some("unknown"));
    assert!(
        unparseable
            .reason
            .as_deref()
            .unwrap()
            .starts_with("unparseable message"),
        "{unparseable:?}"
    );
    let unbound = &listed[1];
    assert_eq!(unbound.message_id, "unbound-1");
    assert_eq!(
        unbound.reason.as_deref(),
        Some("event type `intervention.referral.ended` is not bound to queue manage-pom-cases-and-delius")
    );
    // The unparseable one can be shown and acted on by its id.
    let shown = rig
        .dead_letters()
        .await
        .show(&unparseable.message_id, None)
        .await
        .unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].body, "not json at all");
    rig.cleanup().await;
}

#[tokio::test]
async fn shutdown_finishes_the_message_in_hand_and_acks_it() {
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::succeeding().with_delay(Duration::from_millis(1500)));
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), OutcomeLog::memory())
        .await;
    rig.publish(REFERRAL_ENDED, &body("slow-1", REFERRAL_ENDED, "X100007"))
        .await;
    let queue = rig.names.queue(REFER_AND_MONITOR);
    rig.wait_count(&queue, 0).await; // delivered, in the handler
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(handler.seen().is_empty(), "still in hand");
    stop(consumers, stopper).await;
    assert_eq!(handler.seen(), ["slow-1"], "finished before stopping");
    assert_eq!(rig.count(&queue).await, 0, "acked, not requeued");
    assert_eq!(rig.count(&rig.names.dlq(REFER_AND_MONITOR)).await, 0);
    rig.cleanup().await;
}

/// A handler that takes `delay` over each message and notes when it started and ended.
struct Probe {
    delay: Duration,
    log: std::sync::Mutex<Vec<(String, std::time::Instant, std::time::Instant)>>,
}

impl Probe {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            log: Default::default(),
        })
    }

    /// (message id, started, ended) of every message handled, in the order they ended.
    fn log(&self) -> Vec<(String, std::time::Instant, std::time::Instant)> {
        self.log.lock().unwrap().clone()
    }

    fn span(&self, id: &str) -> (std::time::Instant, std::time::Instant) {
        let log = self.log();
        let (_, started, ended) = log
            .iter()
            .find(|(seen, ..)| seen == id)
            .unwrap_or_else(|| panic!("{id} handled: {log:?}"));
        (*started, *ended)
    }
}

impl MessageHandler for Probe {
    fn handle<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> aggregates::common::BoxFuture<'a, HandlerOutcome> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            tokio::time::sleep(self.delay).await;
            let ended = std::time::Instant::now();
            self.log
                .lock()
                .unwrap()
                .push((envelope.message_id.clone(), started, ended));
            HandlerOutcome::Success {
                name: "Handled".into(),
                properties: BTreeMap::new(),
            }
        })
    }
}

async fn probe_consumers(rig: &Rig, probe: Arc<Probe>) -> (Consumers, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    let handlers = Handlers::new().with(REFER_AND_MONITOR, probe);
    let consumers = Consumers::start(rig.config(OutcomeLog::memory()), handlers, stopped);
    assert!(consumers.wait_ready(PATIENCE).await, "consumers start");
    (consumers, stop)
}

#[tokio::test]
async fn one_consumer_handles_other_peoples_messages_beside_a_persons_which_keep_their_order() {
    let mut rig = Rig::new(&[50]).await;
    rig.args.prefetch = 8;
    // Each message is held 1 s: b-1 and c-1 must arrive while a-1 is still in hand, and on a
    // loaded CI machine publishing the five (with confirms) has taken longer than 300 ms.
    let probe = Probe::new(Duration::from_millis(1_000));
    let (consumers, stopper) = probe_consumers(&rig, probe.clone()).await;
    let messages = [
        ("a-1", "X200001"),
        ("a-2", "X200001"),
        ("b-1", "X200002"),
        ("a-3", "X200001"),
        ("c-1", "X200003"),
    ];
    for (id, crn) in messages {
        rig.publish(REFERRAL_ENDED, &body(id, REFERRAL_ENDED, crn))
            .await;
    }
    let all = timeout(PATIENCE, async {
        while probe.log().len() < messages.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(all.is_ok(), "every message handled: {:?}", probe.log());
    stop(consumers, stopper).await;

    // One person's messages: one after the other, in the order published.
    let (a1, a2, a3) = (probe.span("a-1"), probe.span("a-2"), probe.span("a-3"));
    assert!(a1.1 <= a2.0 && a2.1 <= a3.0, "a-1, a-2, a-3 in turn");
    // Other people's: beside the first, on the same single consumer.
    let (b1, c1) = (probe.span("b-1"), probe.span("c-1"));
    assert!(
        b1.0 < a1.1 && c1.0 < a1.1,
        "b-1 and c-1 started while a-1 was in hand"
    );
    assert_eq!(
        rig.count(&rig.names.queue(REFER_AND_MONITOR)).await,
        0,
        "all acked"
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn two_consumers_of_a_queue_never_hold_one_persons_messages_at_once() {
    let mut rig = Rig::new(&[50]).await;
    rig.args.prefetch = 8;
    rig.args.consumers = 2;
    // The broker hands deliveries to the two consumers in turn, so without the shared people
    // in hand p-1 and p-2 would be handled side by side.
    let probe = Probe::new(Duration::from_millis(400));
    let (consumers, stopper) = probe_consumers(&rig, probe.clone()).await;
    let messages = ["p-1", "p-2", "p-3", "p-4", "q-1"];
    for id in messages {
        let crn = if id.starts_with('p') {
            "X200005"
        } else {
            "X200006"
        };
        rig.publish(REFERRAL_ENDED, &body(id, REFERRAL_ENDED, crn))
            .await;
    }
    let all = timeout(PATIENCE, async {
        while probe.log().len() < messages.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(all.is_ok(), "every message handled: {:?}", probe.log());
    stop(consumers, stopper).await;

    let mut spans: Vec<_> = ["p-1", "p-2", "p-3", "p-4"]
        .into_iter()
        .map(|id| probe.span(id))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "one person's messages overlapped: {:?}",
            probe.log()
        );
    }
    let (q1, first) = (probe.span("q-1"), spans[0]);
    assert!(q1.0 < first.1, "another person's message went beside them");
    assert_eq!(rig.count(&rig.names.queue(REFER_AND_MONITOR)).await, 0);
    rig.cleanup().await;
}

#[tokio::test]
async fn shutdown_requeues_a_message_waiting_behind_the_same_persons_message_in_hand() {
    let mut rig = Rig::new(&[50]).await;
    rig.args.prefetch = 8;
    let probe = Probe::new(Duration::from_millis(1500));
    let (consumers, stopper) = probe_consumers(&rig, probe.clone()).await;
    rig.publish(REFERRAL_ENDED, &body("w-1", REFERRAL_ENDED, "X200004"))
        .await;
    rig.publish(REFERRAL_ENDED, &body("w-2", REFERRAL_ENDED, "X200004"))
        .await;
    let queue = rig.names.queue(REFER_AND_MONITOR);
    rig.wait_count(&queue, 0).await; // both delivered: w-1 in hand, w-2 waiting for it
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop(consumers, stopper).await;
    let handled: Vec<String> = probe.log().into_iter().map(|(id, ..)| id).collect();
    assert_eq!(handled, ["w-1"], "w-1 finished, w-2 never started");
    assert_eq!(rig.count(&queue).await, 1, "w-2 is back on the queue");
    assert_eq!(rig.count(&rig.names.dlq(REFER_AND_MONITOR)).await, 0);
    rig.cleanup().await;
}

#[tokio::test]
async fn competing_consumers_share_the_messages_and_handle_each_once() {
    let mut rig = Rig::new(&[50]).await;
    rig.args.prefetch = 1;
    let first = Arc::new(ScriptedHandler::succeeding().with_delay(Duration::from_millis(20)));
    let second = Arc::new(ScriptedHandler::succeeding().with_delay(Duration::from_millis(20)));
    let (a, stop_a) = rig
        .consumers(REFER_AND_MONITOR, first.clone(), OutcomeLog::memory())
        .await;
    let (b, stop_b) = rig
        .consumers(REFER_AND_MONITOR, second.clone(), OutcomeLog::memory())
        .await;
    let ids: Vec<String> = (0..30).map(|n| format!("cc-{n}")).collect();
    for id in &ids {
        rig.publish(REFERRAL_ENDED, &body(id, REFERRAL_ENDED, "X100008"))
            .await;
    }
    let all_handled = timeout(PATIENCE, async {
        while first.seen().len() + second.seen().len() < ids.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(all_handled.is_ok(), "every message handled");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop(a, stop_a).await;
    stop(b, stop_b).await;
    let (seen_a, seen_b) = (first.seen(), second.seen());
    assert!(
        !seen_a.is_empty() && !seen_b.is_empty(),
        "{seen_a:?} / {seen_b:?}"
    );
    assert_eq!(seen_a.len() + seen_b.len(), ids.len(), "each once");
    let distinct: BTreeSet<_> = seen_a.iter().chain(&seen_b).cloned().collect();
    assert_eq!(distinct, ids.iter().cloned().collect());
    rig.cleanup().await;
}

#[tokio::test]
async fn dead_letters_are_browsed_without_loss_and_redriven() {
    let rig = Rig::new(&[50]).await;
    let handler =
        Arc::new(ScriptedHandler::succeeding().then([rejected("not yet"), rejected("not yet")]));
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), OutcomeLog::memory())
        .await;
    rig.publish(REFERRAL_ENDED, &body("dl-a", REFERRAL_ENDED, "X100009"))
        .await;
    assert!(handler.wait_for(1, PATIENCE).await);
    rig.publish(REFERRAL_ENDED, &body("dl-b", REFERRAL_ENDED, "X100009"))
        .await;
    let dlq = rig.names.dlq(REFER_AND_MONITOR);
    rig.wait_count(&dlq, 2).await;

    let dead_letters = rig.dead_letters().await;
    let first = dead_letters.list(None).await.unwrap();
    let second = dead_letters.list(Some(REFER_AND_MONITOR)).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first, second, "a listing loses nothing and keeps the order");
    assert_eq!(
        first
            .iter()
            .map(|d| d.message_id.as_str())
            .collect::<Vec<_>>(),
        ["dl-a", "dl-b"]
    );
    let shown = dead_letters.show("dl-a", None).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(
        shown[0].body.as_bytes(),
        body("dl-a", REFERRAL_ENDED, "X100009")
    );
    assert_eq!(shown[0].summary.reason.as_deref(), Some("not yet"));
    assert!(dead_letters.show("no-such", None).await.unwrap().is_empty());
    assert_eq!(rig.count(&dlq).await, 2, "browsing requeued everything");

    assert_eq!(dead_letters.redrive("dl-a", None).await.unwrap(), 1);
    assert!(
        handler.wait_for(3, PATIENCE).await,
        "the handler sees it again"
    );
    assert_eq!(handler.seen()[2], "dl-a");
    rig.wait_count(&dlq, 1).await;
    assert_eq!(dead_letters.redrive("dl-a", None).await.unwrap(), 0);

    assert_eq!(
        dead_letters
            .redrive_all(Some(REFER_AND_MONITOR))
            .await
            .unwrap(),
        1
    );
    assert!(handler.wait_for(4, PATIENCE).await);
    assert_eq!(handler.seen()[3], "dl-b");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.count(&dlq).await, 0, "handled after the re-drive");
    assert!(dead_letters.list(None).await.unwrap().is_empty());
    assert!(dead_letters.list(Some("nope")).await.is_err());
    stop(consumers, stopper).await;
    dead_letters.broker().close().await;
    rig.cleanup().await;
}

#[tokio::test]
async fn the_dead_letter_endpoints_need_the_admin_role() {
    let rig = Rig::new(&[50]).await;
    let dlq = rig.names.dlq(MANAGE_POM_CASES);
    let mut headers = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    headers.insert(MESSAGE_ID.into(), text("http-1"));
    headers.insert(DEATH_REASON.into(), text("no such person"));
    headers.insert(ATTEMPTS.into(), AMQPValue::LongLongInt(1));
    headers.insert(ORIGINAL_QUEUE.into(), text(MANAGE_POM_CASES));
    headers.insert(EVENT_TYPE.into(), text("SENTENCE_CHANGED"));
    rig.publish_to(
        &dlq,
        &body("http-1", "SENTENCE_CHANGED", "X100010"),
        headers,
    )
    .await;

    let state = AppState {
        engine: Arc::new(Engine::memory()),
        broker: None,
        auth: auth(),
        dead_letters: Some(rig.dead_letters().await),
    };
    let admin = token(&[ROLE_PROBATION_INTEGRATION_ADMIN]);
    let other = token(&["ROLE_CRS_REFERRAL"]);
    let (status, _) = get(state.clone(), "/dead-letters", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(state.clone(), "/dead-letters", Some(&other)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        state.clone(),
        Request::post("/dead-letters/http-1/redrive"),
        Some(&other),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, listed) = get(state.clone(), "/dead-letters", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        json!([{
            "queue": MANAGE_POM_CASES,
            "messageId": "http-1",
            "eventType": "SENTENCE_CHANGED",
            "reason": "no such person",
            "attempts": 1,
            "deadLetteredAt": null,
        }])
    );
    let (status, _) = get(
        state.clone(),
        "/dead-letters?queue=no-such-queue",
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, shown) = get(state.clone(), "/dead-letters/http-1", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown[0]["messageId"], "http-1");
    assert_eq!(
        shown[0]["body"].as_str().unwrap().as_bytes(),
        body("http-1", "SENTENCE_CHANGED", "X100010")
    );
    let (status, _) = get(state.clone(), "/dead-letters/nope", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, redriven) = call(
        state.clone(),
        Request::post("/dead-letters/http-1/redrive"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{redriven}");
    assert_eq!(
        serde_json::from_str::<Value>(&redriven).unwrap(),
        json!({"redriven": 1})
    );
    assert_eq!(rig.count(&dlq).await, 0);
    assert_eq!(rig.count(&rig.names.queue(MANAGE_POM_CASES)).await, 1);
    let (status, _) = call(
        state.clone(),
        Request::post("/dead-letters/http-1/redrive"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without a broker: 503.
    let no_broker = AppState {
        dead_letters: None,
        ..state.clone()
    };
    let (status, _) = get(no_broker, "/dead-letters", Some(&admin)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    if let Some(dead_letters) = &state.dead_letters {
        dead_letters.broker().close().await;
    }
    rig.cleanup().await;
}

/// Closes the broker side of the connection named `name` with `rabbitmqctl`.
async fn close_connection_named(name: &str) {
    let listed = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "name", "client_properties"])
        .output()
        .await
        .expect("rabbitmqctl runs (the broker's CLI, installed with rabbitmq-server)");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let line = listed
        .lines()
        .find(|line| line.contains(name))
        .unwrap_or_else(|| panic!("no connection named {name} in:\n{listed}"));
    let pid = line.split('\t').next().unwrap();
    let closed = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "close_connection", pid, "test: broker went away"])
        .status()
        .await
        .unwrap();
    assert!(closed.success());
}

#[tokio::test]
async fn consumers_reconnect_when_the_broker_drops_the_connection() {
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::succeeding());
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), OutcomeLog::memory())
        .await;
    rig.publish(REFERRAL_ENDED, &body("rc-1", REFERRAL_ENDED, "X100011"))
        .await;
    assert!(handler.wait_for(1, PATIENCE).await);

    close_connection_named(&format!("delius-bridge consumers {}", rig.names.prefix())).await;
    let went_down = timeout(PATIENCE, async {
        while consumers.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(went_down.is_ok(), "the loss is noticed");
    assert!(consumers.wait_ready(PATIENCE).await, "reconnected");
    rig.publish(REFERRAL_ENDED, &body("rc-2", REFERRAL_ENDED, "X100011"))
        .await;
    assert!(handler.wait_for(2, PATIENCE).await, "consuming again");
    stop(consumers, stopper).await;
    assert_eq!(handler.seen(), ["rc-1", "rc-2"]);
    rig.cleanup().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn outcomes_are_recorded_in_postgres(pool: PgPool) {
    let engine = crate::engine(pool.clone());
    let outcomes = OutcomeLog::for_backend(&engine.backend);
    assert!(matches!(outcomes, OutcomeLog::Postgres(_)));
    let rig = Rig::new(&[50]).await;
    let handler = Arc::new(ScriptedHandler::succeeding().then([
        HandlerOutcome::Ignored {
            name: "NoSentence".into(),
            properties: BTreeMap::from([("crn".into(), "X100012".into())]),
        },
        rejected("no such appointment"),
    ]));
    let (consumers, stopper) = rig
        .consumers(REFER_AND_MONITOR, handler.clone(), outcomes.clone())
        .await;
    rig.publish(REFERRAL_ENDED, &body("pg-1", REFERRAL_ENDED, "X100012"))
        .await;
    assert!(handler.wait_for(1, PATIENCE).await);
    rig.publish(REFERRAL_ENDED, &body("pg-2", REFERRAL_ENDED, "X100012"))
        .await;
    assert!(handler.wait_for(2, PATIENCE).await);
    rig.publish(REFERRAL_ENDED, &body("pg-3", REFERRAL_ENDED, "X100012"))
        .await;
    assert!(handler.wait_for(3, PATIENCE).await);
    stop(consumers, stopper).await;

    let recorded = outcomes.for_crn("X100012").await.unwrap();
    let summary: Vec<_> = recorded
        .iter()
        .map(|r| {
            (
                r.outcome.message_id.as_str(),
                r.outcome.outcome.as_str(),
                r.outcome.name.as_deref(),
                r.outcome.reason.as_deref(),
                r.outcome.attempt,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pg-1", "ignored", Some("NoSentence"), None, 1),
            ("pg-2", "rejected", None, Some("no such appointment"), 1),
        ],
        "successes are not recorded"
    );
    assert_eq!(recorded[0].outcome.properties["crn"], "X100012");
    assert_eq!(recorded[0].outcome.queue, REFER_AND_MONITOR);
    assert_eq!(recorded[0].outcome.event_type, REFERRAL_ENDED);
    let (properties, crn): (Value, String) =
        sqlx::query_as("SELECT properties, crn FROM message_outcome WHERE message_id = 'pg-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(properties, json!({"crn": "X100012"}));
    assert_eq!(crn, "X100012");
    assert!(outcomes.for_crn("X999999").await.unwrap().is_empty());
    engine.shutdown().await;
    rig.cleanup().await;
}

/// A broker connection whose shutdown sender is dropped (its owner gone without saying stop)
/// closes instead of looping on a `changed` that answers at once.
#[tokio::test]
async fn a_broker_whose_shutdown_sender_is_dropped_closes() {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let broker = delius_bridge::amqp::Broker::start(crate::broker::amqp_url(), shutdown_rx);
    timeout(crate::broker::PATIENCE, async {
        while !broker.is_connected().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("connected");
    drop(shutdown);
    timeout(Duration::from_secs(5), async {
        while broker.is_connected().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed once nobody can stop it");
}
