//! `delius-bridge serve`: HTTP, consumers, broker connection and projectors until
//! SIGINT/SIGTERM. On the signal HTTP stops first, then the consumers finish and ack their
//! in-flight messages, then the projector stops.
//! Several `serve` processes may share one PostgreSQL and one RabbitMQ: projectors take an
//! advisory lock (one active instance each), commands are concurrency-checked.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::amqp::consumer::{ConsumerConfig, Consumers};
use crate::amqp::dead_letters::DeadLetters;
use crate::amqp::handler::OutcomeLog;
use crate::amqp::Broker;
use crate::config::{Cli, ServeArgs};
use crate::engine::Backend;
use crate::http::auth::Auth;
use crate::http::{self, AppState};
use crate::seed;

/// The built-in demo seed, loaded on the embedded default.
pub const DEMO_SEED: &str = include_str!("../../fixtures/delius/demo.json");

/// Runs `serve`.
pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    crate::metrics::install();
    let auth = Arc::new(auth(cli, args)?);
    auth.warm_up().await;
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
    let upstream = crate::upstream::UpstreamClient::from_args(&args.upstream)
        .context("configuring the upstream HTTP client")?;
    let settings = crate::handlers::HandlerSettings {
        prison_api_url: args.upstream.prison_api_url.clone(),
        feature_flags: crate::handlers::feature_flags(&args.feature_flags)
            .context("reading FEATURE_FLAGS")?,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let broker = args
        .amqp_url
        .clone()
        .map(|url| Broker::start(url, shutdown_rx.clone()));
    let consumers = args.amqp_url.clone().map(|url| {
        let config = ConsumerConfig::new(
            url,
            args.amqp.clone(),
            OutcomeLog::for_backend(&engine.backend),
        );
        let handlers = crate::handlers::registry_with(&engine, &upstream, &settings);
        if handlers.is_empty() {
            tracing::warn!(
                "no message handlers registered: queues are declared, nothing is consumed"
            );
        }
        Consumers::start(config, handlers, shutdown_rx.clone())
    });
    let dead_letters = broker
        .clone()
        .map(|broker| DeadLetters::new(broker, &args.amqp.prefix));
    let state = AppState {
        engine: engine.clone(),
        broker,
        auth,
        dead_letters,
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
    if let Some(consumers) = consumers {
        consumers.join().await;
    }
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    Ok(())
}

/// The token verifier from `--jwt-public-key` or `--jwks-url`.
///
/// Without either: with `DATABASE_URL` (a real deployment) `serve` refuses to start; on the
/// embedded default (a demo) it starts, warns loudly, and every protected endpoint answers 401
/// (health, info and the API docs stay open).
fn auth(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Auth> {
    match (&args.jwt_public_key, &args.jwks_url) {
        (Some(path), _) => {
            let auth = Auth::from_pem_file(path)
                .with_context(|| format!("loading --jwt-public-key {}", path.display()))?;
            tracing::info!(key = %path.display(), "bearer tokens verified with a public key");
            Ok(auth)
        }
        (None, Some(url)) => {
            let auth = Auth::from_jwks_url(url).context("configuring --jwks-url")?;
            tracing::info!(%url, "bearer tokens verified with a JWKS");
            Ok(auth)
        }
        (None, None) if cli.database_url.is_some() => anyhow::bail!(
            "no token verification key: set --jwt-public-key / JWT_PUBLIC_KEY_FILE or \
             --jwks-url / JWKS_URL (required with DATABASE_URL)"
        ),
        (None, None) => {
            tracing::warn!(
                "NO JWT_PUBLIC_KEY_FILE OR JWKS_URL: every protected endpoint answers 401 \
                 (allowed only on the embedded default)"
            );
            Ok(Auth::disabled())
        }
    }
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
