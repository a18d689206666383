//! What the message-ingestion tests share: a seeded engine on the test database, a broker
//! topology under a unique prefix, consumers running the real handler registry, and ways to
//! look at the outcome — Delius rows, checksums, the command log, the outcome log and the
//! dead letters. `finish` stops the consumers, asserts that a full replay equals the live
//! tables, and cleans up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use delius_bridge::amqp::consumer::Consumers;
use delius_bridge::amqp::dead_letters::DeadLetters;
use delius_bridge::amqp::handler::{Handlers, OutcomeLog};
use delius_bridge::engine::Engine;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::broker::{Rig, PATIENCE};
use crate::{assert_replay_equals_live, demo_seed, engine, settle};

/// How a delivered message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Its commands committed (rows in the command log).
    Committed,
    /// Acked as ignorable, with the outcome's name.
    Ignored(String),
    /// On the dead-letter queue, with the reason.
    DeadLettered(String),
}

pub struct Harness {
    pub pool: PgPool,
    pub engine: Arc<Engine>,
    pub rig: Rig,
    consumers: Option<(Consumers, watch::Sender<bool>)>,
}

impl Harness {
    /// The demo seed loaded and projected, and a topology with these retry delays.
    pub async fn new(pool: PgPool, retry_delays_ms: &[u64]) -> Self {
        let engine = Arc::new(engine(pool.clone()));
        delius_bridge::seed::load(&engine, &demo_seed(), "seed:test")
            .await
            .unwrap();
        settle(&engine).await;
        let rig = Rig::new(retry_delays_ms).await;
        Self {
            pool,
            engine,
            rig,
            consumers: None,
        }
    }

    /// Starts consumers with `handlers` and waits until they consume.
    pub async fn start(&mut self, handlers: Handlers) {
        let (stop, stopped) = watch::channel(false);
        let config = self
            .rig
            .config(OutcomeLog::for_backend(&self.engine.backend));
        let consumers = Consumers::start(config, handlers, stopped);
        assert!(consumers.wait_ready(PATIENCE).await, "consumers start");
        self.consumers = Some((consumers, stop));
    }

    pub async fn dead_letters(&self) -> DeadLetters {
        self.rig.dead_letters().await
    }

    pub async fn dead_letter_count(&self) -> usize {
        self.dead_letters().await.list(None).await.unwrap().len()
    }

    /// Waits until message `id` committed, was ignored or was dead-lettered; then until the
    /// projector caught up.
    pub async fn ended(&self, id: &str) -> Ended {
        let dead_letters = self.dead_letters().await;
        let ended = timeout(PATIENCE, async {
            loop {
                let committed: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM command_log WHERE message_id = $1")
                        .bind(id)
                        .fetch_one(&self.pool)
                        .await
                        .unwrap();
                if committed > 0 {
                    return Ended::Committed;
                }
                let ignored: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM message_outcome WHERE message_id = $1 AND outcome = 'ignored' \
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .unwrap();
                if let Some(name) = ignored {
                    return Ended::Ignored(name);
                }
                let listed = dead_letters.list(None).await.unwrap();
                if let Some(letter) = listed.into_iter().find(|l| l.message_id == id) {
                    return Ended::DeadLettered(letter.reason.unwrap_or_default());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("message {id} did not end"));
        settle(&self.engine).await;
        ended
    }

    /// Waits for the ignorable outcome recorded for `id`; its name, or `None` in time.
    pub async fn ended_ignored(&self, id: &str) -> Option<String> {
        timeout(PATIENCE, async {
            loop {
                let name: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM message_outcome WHERE message_id = $1 AND outcome = 'ignored' \
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .unwrap();
                if let Some(name) = name {
                    return name;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .ok()
    }

    /// The rows of `sql` as JSON objects.
    pub async fn rows(&self, sql: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>(&format!("SELECT to_jsonb(t) FROM ({sql}) t"))
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Ordered checksums of every live Delius table.
    pub async fn checksums(&self) -> BTreeMap<&'static str, String> {
        let mut conn = self.pool.acquire().await.unwrap();
        projections::checksum::schema_checksums(&mut conn, "delius")
            .await
            .unwrap()
    }

    /// Stops the consumers, asserts a full replay equals the live tables, cleans up.
    pub async fn finish(mut self) {
        if let Some((consumers, stop)) = self.consumers.take() {
            stop.send(true).unwrap();
            timeout(PATIENCE, consumers.join())
                .await
                .expect("consumers stop");
        }
        assert_replay_equals_live(&self.pool).await;
        self.rig.cleanup().await;
        Arc::into_inner(self.engine).unwrap().shutdown().await;
    }
}

/// Replaces every Delius id the bridge allocated (≥ 10 000 000) by `{column}#n`, numbered
/// per column in order of first appearance, so snapshots do not depend on how many ids
/// earlier steps used (each sequence starts at 10 000 000, so the column names the sequence).
pub fn number_new_ids(value: &mut Value) {
    fn walk(value: &mut Value, key: &str, seen: &mut BTreeMap<String, Vec<i64>>) {
        match value {
            Value::Number(n) => {
                if let Some(id) = n.as_i64().filter(|id| *id >= 10_000_000) {
                    let ids = seen.entry(key.to_string()).or_default();
                    let index = match ids.iter().position(|s| *s == id) {
                        Some(index) => index,
                        None => {
                            ids.push(id);
                            ids.len() - 1
                        }
                    };
                    *value = Value::String(format!("{key}#{}", index + 1));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key, seen)),
            Value::Object(map) => map.iter_mut().for_each(|(k, v)| walk(v, k, seen)),
            _ => {}
        }
    }
    walk(value, "", &mut BTreeMap::new());
}
