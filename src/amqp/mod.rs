//! RabbitMQ: the broker connection (opened in the background with backoff and reopened when
//! it drops, so that `serve` starts without the broker and readiness reports it), the
//! message envelope and the disposition of handling outcomes.

pub mod envelope;
pub mod outcome;

use std::sync::Arc;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use tokio::sync::{watch, RwLock};

/// A broker connection kept open in the background.
#[derive(Debug, Clone)]
pub struct Broker {
    connection: Arc<RwLock<Option<Connection>>>,
}

impl Broker {
    /// Starts connecting to `url` until `shutdown` turns true.
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
                    _ = shutdown.changed() => {}
                }
            }
            if let Some(c) = slot.write().await.take() {
                let _ = c.close(200, "shutdown".into()).await;
            }
        });
        Self { connection }
    }

    /// Whether the connection is open now.
    pub async fn is_connected(&self) -> bool {
        match self.connection.read().await.as_ref() {
            Some(c) => c.status().connected(),
            None => false,
        }
    }
}
