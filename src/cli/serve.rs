//! `delius-bridge serve`: HTTP, broker connection and projectors until SIGINT/SIGTERM.
//! Several `serve` processes may share one PostgreSQL and one RabbitMQ: projectors take an
//! advisory lock (one active instance each), commands are concurrency-checked.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::amqp::Broker;
use crate::config::{Cli, ServeArgs};
use crate::engine::Backend;
use crate::http::{self, AppState};
use crate::seed;

/// The built-in demo seed, loaded on the embedded default.
pub const DEMO_SEED: &str = include_str!("../../fixtures/delius/demo.json");

/// Runs `serve`.
pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let engine = Arc::new(super::engine(cli).await?);
    if matches!(engine.backend, Backend::Memory { .. }) {
        let file = seed::parse(DEMO_SEED)?;
        let report = seed::load(&engine, &file, "seed:demo").await?;
        tracing::info!(
            changed = report.changed,
            events = report.events,
            "demo seed loaded"
        );
    }
    if let Some(path) = &args.seed {
        let file = seed::read(path)?;
        let report = seed::load(&engine, &file, &format!("seed:{}", path.display())).await?;
        tracing::info!(file = %path.display(), changed = report.changed, "seed loaded");
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let broker = args
        .amqp_url
        .clone()
        .map(|url| Broker::start(url, shutdown_rx.clone()));
    let state = AppState {
        engine: engine.clone(),
        broker,
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    tracing::info!(address = %args.bind, "listening");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
