//! Plain lapin publish / consume / ack loops: the bare-broker ceiling of the async figure, and
//! the transport of the naive baseline (which runs its cqrs-es `execute` inside the loop).
//! Same shape as the service's consumers: two queues (one per integration), `consumers`
//! consumers per queue each on its own channel with `basic_qos(prefetch)`, one delivery at a
//! time per consumer, ack after handling; persistent messages published with confirms.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use delius_bridge::workload::{Message, MessageKind};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::Notify;

use crate::cpu::Usage;
use crate::setup::amqp_url;

/// Which of the two queues a message goes to (R&M or PCSTD).
pub fn lane(kind: MessageKind) -> usize {
    match kind {
        MessageKind::PrisonerReleased | MessageKind::PrisonerReceived => 1,
        _ => 0,
    }
}

/// Publishes `messages` to two fresh queues and consumes them with `handle` (then ack) on
/// `consumers` consumers per queue; the messages per second from the first publish to the
/// last ack, and the machine's CPU over that time.
pub async fn run<F, Fut>(
    label: &str,
    messages: &[Message],
    prefetch: u16,
    consumers: usize,
    handle: F,
) -> anyhow::Result<(f64, Usage)>
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let publisher = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let prefix = format!("bench-{label}-{}", uuid::Uuid::new_v4().simple());
    let queues = [format!("{prefix}-rm"), format!("{prefix}-pcstd")];
    let setup = connection.create_channel().await?;
    for queue in &queues {
        setup
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    let total = messages.len();
    let acked = Arc::new(AtomicUsize::new(0));
    let all_acked = Arc::new(Notify::new());
    let handle = Arc::new(handle);
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for queue in &queues {
        for n in 0..consumers {
            let channel = connection.create_channel().await?;
            channel
                .basic_qos(prefetch, BasicQosOptions { global: false })
                .await?;
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    format!("{queue}-{n}").as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let (acked, all_acked, handle) = (acked.clone(), all_acked.clone(), handle.clone());
            let failure = failure.clone();
            tasks.spawn(async move {
                let consumed = async {
                    while let Some(delivery) = consumer.next().await {
                        let delivery = delivery?;
                        handle(delivery.data.clone()).await?;
                        if !delivery.ack(BasicAckOptions::default()).await? {
                            bail!("ack not settled");
                        }
                        if acked.fetch_add(1, Ordering::SeqCst) + 1 >= total {
                            all_acked.notify_one();
                        }
                    }
                    anyhow::Ok(())
                };
                if let Err(error) = consumed.await {
                    if let Ok(mut slot) = failure.lock() {
                        slot.get_or_insert(error.to_string());
                    }
                    all_acked.notify_one();
                }
            });
        }
    }
    let channel = publisher.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let waiting = all_acked.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    let sample = crate::cpu::Sample::now();
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(total);
    for message in messages {
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    queues[lane(message.kind)].as_str().into(),
                    BasicPublishOptions::default(),
                    message.body.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
        );
    }
    for confirm in confirms {
        if !confirm.await?.is_ack() {
            bail!("publish not confirmed");
        }
    }
    tokio::time::timeout(Duration::from_secs(600), waiting)
        .await
        .with_context(|| format!("{label}: {} of {total} acked", acked.load(Ordering::SeqCst)))?;
    let elapsed = started.elapsed();
    let cpu = sample.usage(total as f64);
    if let Some(error) = failure.lock().ok().and_then(|slot| slot.clone()) {
        bail!("{label}: a consumer failed: {error}");
    }
    tasks.abort_all();
    for queue in &queues {
        let _ = setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
    let _ = publisher.close(200, "OK".into()).await;
    Ok((total as f64 / elapsed.as_secs_f64(), cpu))
}
