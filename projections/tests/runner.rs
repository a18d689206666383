//! The catch-up runner stops when told to, and also when whoever could tell it is gone: a
//! dropped shutdown sender must not leave it looping on a `changed` that answers at once.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use projections::postgres::{run, RunnerConfig};
use projections::Checkpoint;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

fn start(pool: PgPool) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (progress, _) = watch::channel(Checkpoint::default());
    let runner = tokio::spawn(run(
        pool,
        RunnerConfig::delius(),
        Arc::new(Notify::new()),
        progress,
        shutdown_rx,
    ));
    (shutdown, runner)
}

#[sqlx::test(migrations = "../schema")]
async fn the_runner_stops_when_told(pool: PgPool) {
    let (shutdown, runner) = start(pool);
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("stopped")
        .unwrap();
}

#[sqlx::test(migrations = "../schema")]
async fn the_runner_stops_when_its_shutdown_sender_is_dropped(pool: PgPool) {
    let (shutdown, runner) = start(pool.clone());
    // Idle at the head of an empty log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(shutdown);
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("stopped once nobody can stop it")
        .unwrap();

    // And when its database goes away first (failing, retrying with backoff), likewise.
    let (shutdown, runner) = start(pool.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(shutdown);
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("stopped after failures too")
        .unwrap();
}
