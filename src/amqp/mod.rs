//! RabbitMQ: the broker connection (opened in the background with backoff and reopened when
//! it drops, so that `serve` starts without the broker and readiness reports it), the
//! message envelope and the disposition of handling outcomes.
//!
//! - [`topology`]: the exchange, queues, bindings, delay and dead-letter queues, as data and
//!   declarations.
//! - [`handler`]: the [`handler::MessageHandler`] port, the [`handler::Handlers`] registry and
//!   the [`handler::OutcomeLog`].
//! - [`consumer`]: the supervised competing consumers ([`consumer::Consumers`]).
//! - [`dead_letters`]: listing, showing and re-driving dead letters.

pub mod consumer;
pub mod dead_letters;
pub mod envelope;
pub mod handler;
pub mod outcome;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::{watch, RwLock};

/// A broker connection kept open in the background.
#[derive(Debug, Clone)]
pub struct Broker {
    connection: Arc<RwLock<Option<Connection>>>,
}

impl Broker {
    /// Starts connecting to `url` until `shutdown` turns true or its sender is dropped.
    pub fn start(url: String, mut shutdown: watch::Receiver<bool>) -> Self {
        let connection = Arc::new(RwLock::new(None::<Connection>));
        let slot = connection.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            while !*shutdown.borrow() {
                let connected = match slot.read().await.as_ref() {
                    Some(c) => c.status().connected(),
                    None => false,
                };
                if !connected {
                    match Connection::connect(&url, ConnectionProperties::default()).await {
                        Ok(c) => {
                            tracing::info!("connected to the broker");
                            *slot.write().await = Some(c);
                            backoff = Duration::from_millis(200);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "broker unreachable; retrying");
                            backoff = (backoff * 2).min(Duration::from_secs(10));
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(if connected { Duration::from_secs(1) } else { backoff }) => {}
                    // The sender dropped without saying stop: stop, rather than spin.
                    changed = shutdown.changed() => if changed.is_err() { break; },
                }
            }
            if let Some(c) = slot.write().await.take() {
                let _ = c.close(200, "shutdown".into()).await;
            }
        });
        Self { connection }
    }

    /// A broker connected now, without the background reconnection (for one-shot commands).
    pub async fn connect(url: &str) -> Result<Self, lapin::Error> {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        Ok(Self {
            connection: Arc::new(RwLock::new(Some(connection))),
        })
    }

    /// A new channel on the current connection; `None` while not connected.
    pub async fn channel(&self) -> Result<Option<Channel>, lapin::Error> {
        match self.connection.read().await.as_ref() {
            Some(c) if c.status().connected() => c.create_channel().await.map(Some),
            _ => Ok(None),
        }
    }

    /// Closes the connection (a broker from [`Broker::connect`]; one from [`Broker::start`]
    /// closes on its shutdown signal).
    pub async fn close(&self) {
        if let Some(c) = self.connection.write().await.take() {
            let _ = c.close(200, "OK".into()).await;
        }
    }

    /// Whether the connection is open now.
    pub async fn is_connected(&self) -> bool {
        match self.connection.read().await.as_ref() {
            Some(c) => c.status().connected(),
            None => false,
        }
    }
}
