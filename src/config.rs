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
// `Serve` carries all the service's settings; the enum is built once per process, so its size
// does not matter.
#[allow(clippy::large_enum_variant)]
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
    /// Support: list, show and re-drive dead-lettered messages (the `<queue>.dlq` queues).
    /// Safe while `serve` runs: browsing requeues every message, a re-drive removes the dead
    /// letter only after its copy is confirmed.
    DeadLetters(DeadLettersArgs),
    /// Rebuild a projection from the event log into a fresh schema, then swap it in
    /// atomically (or, with --until / --into, keep it beside the live one). Safe while `serve`
    /// runs: live projectors keep running; readers never see a half-built table; an
    /// interrupted rebuild resumes from its last committed batch.
    Replay(ReplayArgs),
    /// A person's audit timeline: every event of their aggregates with its source, message,
    /// actor and correlation id, the Delius rows each wrote, and the messages about them that
    /// were ignored, rejected or failed. Read-only; safe while `serve` runs.
    Audit(AuditArgs),
}

/// Options of `replay`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["projection", "all"])))]
pub struct ReplayArgs {
    /// The projection to rebuild (`delius`).
    #[arg(long)]
    pub projection: Option<String>,
    /// Rebuild every projection.
    #[arg(long)]
    pub all: bool,
    /// Build the picture as of this moment (RFC 3339, e.g. 2026-11-30T12:00:00Z) from the
    /// events recorded at or before it, into its own schema; the live tables are left alone.
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Build into this schema and keep it there (no swap). Default: `{projection}_rebuild`,
    /// swapped in; with --until, `{projection}_asof_{yyyymmddThhmmss_micros}`.
    #[arg(long)]
    pub into: Option<String>,
    /// Events per batch (one transaction each).
    #[arg(long, default_value_t = projections::replay::DEFAULT_BATCH)]
    pub batch_size: i64,
    /// Pause after each batch, in milliseconds, to spare a busy database.
    #[arg(long, default_value_t = 0)]
    pub throttle_ms: u64,
    /// Start from the first event even if an interrupted rebuild of the same target exists.
    #[arg(long)]
    pub fresh: bool,
    /// After building, compare the result with the live tables table by table.
    #[arg(long)]
    pub compare: bool,
    /// Never draw the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Options of `audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The person's CRN.
    #[arg(long, required_unless_present = "table")]
    pub crn: Option<String>,
    /// Instead of a person: the Delius table of a row (with --id).
    #[arg(long, requires = "id", conflicts_with = "crn")]
    pub table: Option<String>,
    /// The row's key (numeric id, or code for reference tables).
    #[arg(long, requires = "table")]
    pub id: Option<String>,
    /// Output for people (table) or tools (JSON).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
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
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Feature flags of the prison movement table, `name=true|false`, comma separated
    /// (`messages_released_hospital`, `messages_released_absconded`; every flag is on unless
    /// set false).
    #[arg(long = "feature-flags", env = "FEATURE_FLAGS", value_delimiter = ',')]
    pub feature_flags: Vec<String>,
}

/// How the bridge consumes domain events.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpArgs {
    /// Prefix for the exchange and queue names (empty in production; tests use a unique one
    /// so that they run in parallel on one broker).
    #[arg(long = "amqp-prefix", env = "AMQP_PREFIX", default_value = "")]
    pub prefix: String,
    /// Unacknowledged messages each consumer may hold.
    #[arg(long = "amqp-prefetch", env = "AMQP_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,
    /// Consumers per queue in this process.
    #[arg(long = "amqp-consumers", env = "AMQP_CONSUMERS", default_value_t = 2)]
    pub consumers: u16,
    /// Delays before each redelivery of a failing message, in milliseconds; after the last,
    /// the message goes to `<queue>.dlq`.
    #[arg(
        long = "amqp-retry-delays-ms",
        env = "AMQP_RETRY_DELAYS_MS",
        value_delimiter = ',',
        default_value = "1000,5000,30000,120000"
    )]
    pub retry_delays_ms: Vec<u64>,
}

/// The upstream HTTP services behind `detailUrl`s, and the token endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// Base URL of the interventions service (Refer and Monitor detailUrls).
    #[arg(long, env = "INTERVENTIONS_API_URL")]
    pub interventions_url: Option<String>,
    /// Base URL of Manage POM Cases (allocation and handover detailUrls).
    #[arg(long, env = "MANAGE_POM_CASES_API_URL")]
    pub manage_pom_cases_url: Option<String>,
    /// Base URL of the Prison API.
    #[arg(long, env = "PRISON_API_URL")]
    pub prison_api_url: Option<String>,
    /// HMPPS Auth base URL; client-credentials tokens come from `{url}/auth/oauth/token`.
    #[arg(long, env = "HMPPS_AUTH_URL")]
    pub hmpps_auth_url: Option<String>,
    /// OAuth client id for upstream calls.
    #[arg(long, env = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret for upstream calls.
    #[arg(long, env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Timeout of one upstream request, in milliseconds.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 5000)]
    pub upstream_timeout_ms: u64,
    /// Attempts per upstream request (transient failures only).
    #[arg(long, env = "UPSTREAM_ATTEMPTS", default_value_t = 3)]
    pub upstream_attempts: u32,
}

/// Options of `dead-letters`.
#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    /// RabbitMQ URL (amqp://user:pass@host:port/vhost).
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: String,
    /// Prefix of the exchange and queue names (as `serve` was given).
    #[arg(long = "amqp-prefix", env = "AMQP_PREFIX", default_value = "")]
    pub prefix: String,
    #[command(subcommand)]
    pub command: DeadLettersCommand,
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List the dead letters: queue, message id, event type, reason, attempts, when.
    List {
        /// Only this queue (unprefixed, e.g. refer-and-monitor-and-delius).
        #[arg(long)]
        queue: Option<String>,
        /// Output for people (table) or tools (JSON).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Show a dead letter with its original body (every queue holding it).
    Show {
        /// The message id (SNS MessageId).
        message_id: String,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Output for people (text) or tools (JSON).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Move a dead letter (or all of them) back to its queue, attempt 1.
    Redrive {
        /// The message id (SNS MessageId).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        message_id: Option<String>,
        /// Every dead letter (of --queue, or of every queue).
        #[arg(long)]
        all: bool,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
    },
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
