//! The `delius-bridge` binary: parse the configuration, set up telemetry, run the subcommand.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = delius_bridge::config::Cli::parse();
    delius_bridge::telemetry::init(cli.log_format);
    delius_bridge::cli::run(cli).await
}
