//! Configuration: flags with environment fallbacks (clap). Every subcommand reads
//! `DATABASE_URL` the same way; without it the engine runs on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// delius-bridge: keeps Delius in step with CRS, NOMIS, Manage POM Cases and Resettlement
/// Passport.
#[derive(Debug, Parser)]
#[command(name = "delius-bridge", version, about)]
pub struct Cli {
    /// PostgreSQL connection URL. Without it the engine runs on the embedded default
    /// (in-memory, nothing durable).
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Maximum PostgreSQL connections in the pool.
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,
    /// Log format: human-readable text or JSON lines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Output format of reports for people or tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP, consumers and projectors. Runs migrations on start.
    Serve(ServeArgs),
    /// Play the demo fixtures end to end on the embedded default and print the audit
    /// timeline and the resulting Delius rows. Needs no services.
    Demo(DemoArgs),
    /// Load a Delius baseline file (reference data and cases) through the command bus.
    /// Safe while `serve` runs: commands are idempotent and concurrency-checked.
    Seed(SeedArgs),
    /// Run the database migrations and exit.
    Migrate,
}

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// RabbitMQ URL (amqp://user:pass@host:port/vhost). Without it no broker is used.
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<String>,
    /// A seed file to load on start (the embedded default loads the demo seed anyway).
    #[arg(long, env = "SEED_FILE")]
    pub seed: Option<PathBuf>,
    /// PEM file with the RSA public key that verifies bearer tokens (RS256, HMPPS Auth).
    /// One of this or --jwks-url is required with DATABASE_URL; without either, on the
    /// embedded default, every protected endpoint answers 401.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", conflicts_with = "jwks_url")]
    pub jwt_public_key: Option<PathBuf>,
    /// URL of the JWKS with the keys that verify bearer tokens (HMPPS Auth serves it at
    /// `/auth/.well-known/jwks.json`). Keys are chosen by `kid`, cached, and refetched on an
    /// unknown `kid` (5 s timeout).
    #[arg(long, env = "JWKS_URL")]
    pub jwks_url: Option<String>,
}

/// Options of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// A seed file to play instead of the built-in `fixtures/delius/demo.json`.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Output for people (tables) or tools (JSON).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Options of `seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The seed file (see fixtures/delius/README.md).
    pub file: PathBuf,
    /// Only validate the file; load nothing.
    #[arg(long)]
    pub check: bool,
}
