//! A RabbitMQ test rig shared by the ingestion tests: a topology declared under a unique name
//! prefix (so tests run in parallel on one broker), a confirming channel to publish with, and
//! queue inspection. Needs the real broker at `AMQP_URL` (default localhost).

use std::sync::Arc;
use std::time::Duration;

use delius_bridge::amqp::consumer::{ConsumerConfig, Consumers};
use delius_bridge::amqp::dead_letters::DeadLetters;
use delius_bridge::amqp::handler::{Handlers, OutcomeLog, ScriptedHandler};
use delius_bridge::amqp::topology::{self, Names};
use delius_bridge::amqp::Broker;
use delius_bridge::config::AmqpArgs;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::time::timeout;

/// Generous bound on anything a test waits for: a broken test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The broker the tests use.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A declared topology under a unique prefix, and a channel to publish and inspect with.
pub struct Rig {
    pub names: Names,
    pub args: AmqpArgs,
    pub connection: Connection,
    pub channel: Channel,
}

impl Rig {
    pub async fn new(retry_delays_ms: &[u64]) -> Self {
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let args = AmqpArgs {
            prefix: prefix.clone(),
            prefetch: 4,
            consumers: 1,
            retry_delays_ms: retry_delays_ms.to_vec(),
        };
        let connection = timeout(
            PATIENCE,
            Connection::connect(&amqp_url(), ConnectionProperties::default()),
        )
        .await
        .expect("connecting in time")
        .unwrap_or_else(|e| {
            panic!(
                "RabbitMQ at {} is not reachable ({e}): start it (see .ci/run)",
                amqp_url()
            )
        });
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let names = Names::new(prefix);
        topology::declare(&channel, &names, &Self::delays(&args))
            .await
            .unwrap();
        Self {
            names,
            args,
            connection,
            channel,
        }
    }

    pub fn delays(args: &AmqpArgs) -> Vec<Duration> {
        args.retry_delays_ms
            .iter()
            .copied()
            .map(Duration::from_millis)
            .collect()
    }

    pub fn config(&self, outcomes: OutcomeLog) -> ConsumerConfig {
        ConsumerConfig::new(amqp_url(), self.args.clone(), outcomes)
    }

    /// Starts consumers of `queue` with `handler` and waits until they consume.
    pub async fn consumers(
        &self,
        queue: &str,
        handler: Arc<ScriptedHandler>,
        outcomes: OutcomeLog,
    ) -> (Consumers, watch::Sender<bool>) {
        let (stop, stopped) = watch::channel(false);
        let handlers = Handlers::new().with(queue, handler);
        let consumers = Consumers::start(self.config(outcomes), handlers, stopped);
        assert!(consumers.wait_ready(PATIENCE).await, "consumers start");
        (consumers, stop)
    }

    /// Publishes to the exchange with routing key `event_type` (confirmed and routed).
    pub async fn publish(&self, event_type: &str, body: &[u8]) {
        let confirmation = self
            .channel
            .basic_publish(
                self.names.exchange().as_str().into(),
                event_type.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(confirmation, lapin::Confirmation::Ack(None), "routed");
    }

    /// Publishes straight to the queue `queue` (broker name) through the default exchange.
    pub async fn publish_to(&self, queue: &str, body: &[u8], headers: FieldTable) {
        let confirmation = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(confirmation, lapin::Confirmation::Ack(None), "routed");
    }

    /// Ready messages on the queue `queue` (broker name).
    pub async fn count(&self, queue: &str) -> u32 {
        let channel = self.connection.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = channel.close(200, "OK".into()).await;
        declared.message_count()
    }

    /// Waits until the queue `queue` holds `n` ready messages.
    pub async fn wait_count(&self, queue: &str, n: u32) {
        let reached = timeout(PATIENCE, async {
            while self.count(queue).await != n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            reached.is_ok(),
            "{queue} holds {} messages, expected {n}",
            self.count(queue).await
        );
    }

    pub async fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(
            Broker::connect(&amqp_url()).await.unwrap(),
            self.names.prefix(),
        )
    }

    /// Deletes the test's exchange and queues (best effort).
    pub async fn cleanup(self) {
        topology::delete(&self.connection, &self.names, &Self::delays(&self.args)).await;
        let _ = self.connection.close(200, "OK".into()).await;
    }
}
