//! The `delius-bridge` binary: parse the configuration, set up telemetry, run the subcommand.

use clap::Parser;

// The projector and the replay build many small maps and strings per event; glibc's malloc
// took a fifth of the replay's CPU (BENCHMARKS.md, replay section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // sqlx and lapin bring rustls with ring and reqwest has no provider of its own: install
    // ring as the process default before any TLS client is built (STACK.md pitfall 12). An
    // error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = delius_bridge::config::Cli::parse();
    delius_bridge::telemetry::init(cli.log_format);
    delius_bridge::cli::run(cli).await
}
