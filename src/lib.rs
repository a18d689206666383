//! delius-bridge: keeps Delius (probation case management) in step with Refer and Monitor an
//! Intervention, prison custody events, Manage POM Cases and Resettlement Passport.
//!
//! HTTP requests and domain events become commands on the [`bus::CommandBus`]; commands go to
//! event-sourced aggregates (crate `aggregates`); their events are projected into Delius rows
//! (crate `projections`). See ARCHITECTURE.md.
//!
//! # Layout
//! - [`config`]: the command line and environment (clap).
//! - [`engine`]: wires the bus, the event log and the projector for PostgreSQL or memory.
//! - [`bus`]: the command bus; [`store`]: the event log it appends to; [`ids`]: Delius ids.
//! - [`seed`]: loads a Delius baseline file through the bus.
//! - [`crs`]: Refer and Monitor — resolving lookups, building commands, read-your-writes, and
//!   the case-information reads; [`mod@reference`]: reading Delius reference and case rows.
//! - [`pcstd`]: prison custody status — prison movements applied to every active custody
//!   of the person in one unit, the movement table's feature flags, the Prison API.
//! - [`http`]: the axum router — bearer-JWT auth, `{status, code, message}` errors, JSON and
//!   path extractors, OpenAPI, health and the Refer and Monitor endpoints;
//!   [`amqp`]: the broker connection.
//! - [`audit`]: a person's timeline across aggregates and a row's history, for support staff.
//! - [`cli`]: one module per subcommand (serve, demo, seed, migrate, replay, audit,
//!   dead-letters); [`render`]: text tables.
//! - [`telemetry`]: tracing setup.
//! - [`workload`]: deterministic generator of large realistic workloads (seed, requests,
//!   messages) for the benchmarks.

pub mod amqp;
pub mod audit;
pub mod bus;
pub mod cli;
pub mod config;
pub mod crs;
pub mod engine;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod pcstd;
pub mod reference;
pub mod render;
pub mod seed;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod workload;
