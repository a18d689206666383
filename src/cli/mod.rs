//! One module per subcommand. Each documents whether it is safe while `serve` runs.

pub mod dead_letters;
pub mod demo;
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
        Command::Migrate => {
            let url = cli
                .database_url
                .as_deref()
                .context("migrate needs DATABASE_URL")?;
            let pool = engine::connect(url, 2)
                .await
                .context("connecting to PostgreSQL")?;
            engine::MIGRATOR
                .run(&pool)
                .await
                .context("running migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

/// An engine on PostgreSQL when `DATABASE_URL` is set (migrations run first), else the
/// embedded default with a loud warning.
pub async fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    match cli.database_url.as_deref() {
        Some(url) => {
            let pool = engine::connect(url, cli.database_max_connections)
                .await
                .context("connecting to PostgreSQL")?;
            engine::MIGRATOR
                .run(&pool)
                .await
                .context("running migrations")?;
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
