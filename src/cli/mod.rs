//! One module per subcommand. Each documents whether it is safe while `serve` runs.

pub mod audit;
pub mod dead_letters;
pub mod demo;
pub mod replay;
pub mod seed;
pub mod serve;

use anyhow::Context;

use crate::config::{Cli, Command};
use crate::engine::{self, Engine};

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(ref args) => serve::run(&cli, args).await,
        Command::Demo(ref args) => demo::run(args).await,
        Command::Seed(ref args) => seed::run(&cli, args).await,
        Command::DeadLetters(ref args) => dead_letters::run(args).await,
        Command::Replay(ref args) => replay::run(&cli, args).await,
        Command::Audit(ref args) => audit::run(&cli, args).await,
        Command::Migrate => {
            migrated_pool(&cli, "migrate", 2).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

/// A pool on `DATABASE_URL` with the migrations run; `command` names who needs it.
pub async fn migrated_pool(
    cli: &Cli,
    command: &str,
    max_connections: u32,
) -> anyhow::Result<sqlx::PgPool> {
    let url = cli
        .database_url
        .as_deref()
        .with_context(|| format!("{command} needs DATABASE_URL"))?;
    let pool = engine::connect(url, max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    engine::MIGRATOR
        .run(&pool)
        .await
        .context("running migrations")?;
    // A migration may have changed national codes: running processes drop their copies.
    projections::postgres::notify_reference_change(&mut *pool.acquire().await?)
        .await
        .context("announcing the migrated reference data")?;
    Ok(pool)
}

/// An engine on PostgreSQL when `DATABASE_URL` is set (migrations run first), else the
/// embedded default with a loud warning.
pub async fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    match cli.database_url.as_deref() {
        Some(_) => {
            let pool = migrated_pool(cli, "the engine", cli.database_max_connections).await?;
            Ok(Engine::postgres(pool))
        }
        None => {
            tracing::warn!(
                "NO DATABASE_URL: running on the embedded default — in-memory event log and \
                 tables, NOTHING IS DURABLE; everything is lost when the process stops"
            );
            Ok(Engine::memory())
        }
    }
}
