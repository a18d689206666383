//! Prometheus metrics: one recorder per process ([`install`], idempotent, so `serve`, the
//! consumers and every test may call it), rendered in the text format by `GET /metrics`
//! ([`render`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | [`MESSAGES_TOTAL`] | counter | `queue`, `event_type`, `outcome` (success, ignored, rejected, failed) |
//! | [`MESSAGE_HANDLING_SECONDS`] | histogram | `queue`, `event_type` |
//! | [`DEAD_LETTERS_TOTAL`] | counter | `queue` |
//! | [`APPEND_STATEMENTS_TOTAL`] | counter | – |
//! | [`APPENDS_TOTAL`] | counter | – |
//! | [`APPEND_CONFLICTS_TOTAL`] | counter | – |
//! | [`APPEND_GROUP_FAILURES_TOTAL`] | counter | – |
//! | [`LOAD_QUERIES_TOTAL`] | counter | – |
//! | [`LOADS_TOTAL`] | counter | – |
//! | [`LOOKUP_QUERIES_TOTAL`] | counter | – |
//! | [`LOOKUPS_TOTAL`] | counter | – |
//! | [`REFERENCE_CACHE_ANSWERS_TOTAL`] | counter | – |
//! | [`REFERENCE_CACHE_COPIES_TOTAL`] | counter | – |
//! | [`PROJECTION_WAIT_SECONDS`] | histogram | `outcome` (reached, timeout) |
//!
//! `APPENDS_TOTAL / APPEND_STATEMENTS_TOTAL` is the mean size of a group commit,
//! `APPEND_CONFLICTS_TOTAL` counts appends decided on a stale stream (decided again), and
//! `APPEND_GROUP_FAILURES_TOTAL` group statements that failed as a whole, so that their
//! appends were written one by one (a statement each: should it rise, group commit is lost),
//! `LOADS_TOTAL / LOAD_QUERIES_TOTAL` that of a grouped stream load,
//! `LOOKUPS_TOTAL / LOOKUP_QUERIES_TOTAL` that of a grouped reference lookup;
//! `REFERENCE_CACHE_COPIES_TOTAL` rising steadily means reference rows keep changing (each
//! change drops the copies of `reference::cache`).
//! `PROJECTION_WAIT_SECONDS` is the part of a synchronous request spent after its command
//! committed, waiting for the projector to make its rows visible (read-your-writes): a rising
//! share of the request's time points at the projector (BENCHMARKS.md measured ~4 ms of
//! ~12 at 32 concurrent referrals on two cores).
//!
//! `event_type` is one of the queue's bound event types, `unknown` for a body that did not
//! parse, or `other` for an unbound type (so a bad publisher cannot grow the label set).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Messages handled, by queue, event type and outcome.
pub const MESSAGES_TOTAL: &str = "delius_bridge_messages_total";
/// Time from delivery to settled (parse, handler, forward, ack), by queue and event type.
pub const MESSAGE_HANDLING_SECONDS: &str = "delius_bridge_message_handling_seconds";
/// Messages put on a dead-letter queue (rejected, or failed after the last retry), by queue.
pub const DEAD_LETTERS_TOTAL: &str = "delius_bridge_dead_letters_total";

/// Group commits: statements the event log's committers ran (one per group).
pub const APPEND_STATEMENTS_TOTAL: &str = "delius_bridge_append_statements_total";
/// Appends (a command, or a unit of commands) committed through those statements.
pub const APPENDS_TOTAL: &str = "delius_bridge_appends_total";
/// Appends refused because their caller decided on a stale stream (the caller decides again).
pub const APPEND_CONFLICTS_TOTAL: &str = "delius_bridge_append_conflicts_total";
/// Group statements that failed as a whole, their appends then written one by one.
pub const APPEND_GROUP_FAILURES_TOTAL: &str = "delius_bridge_append_group_failures_total";

/// Grouped loads: queries the event log's loaders ran (one per group).
pub const LOAD_QUERIES_TOTAL: &str = "delius_bridge_load_queries_total";
/// Stream loads answered through those queries.
pub const LOADS_TOTAL: &str = "delius_bridge_loads_total";

/// Grouped reference lookups: queries the lookup tasks ran (one per group).
pub const LOOKUP_QUERIES_TOTAL: &str = "delius_bridge_lookup_queries_total";
/// `reference::lookup_many` calls answered through those queries.
pub const LOOKUPS_TOTAL: &str = "delius_bridge_lookups_total";

/// Reference lookups the in-memory copies answered (`reference::cache`).
pub const REFERENCE_CACHE_ANSWERS_TOTAL: &str = "delius_bridge_reference_cache_answers_total";
/// Reference tables copied into memory (on first use, and after each change).
pub const REFERENCE_CACHE_COPIES_TOTAL: &str = "delius_bridge_reference_cache_copies_total";

/// Time a synchronous request waited, after its command committed, for the projector to pass
/// its events (`Engine::wait_for_projection`), by outcome: `reached`, or `timeout`.
pub const PROJECTION_WAIT_SECONDS: &str = "delius_bridge_projection_wait_seconds";

/// Histogram buckets of [`PROJECTION_WAIT_SECONDS`], in seconds.
const PROJECTION_WAIT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram buckets of [`MESSAGE_HANDLING_SECONDS`], in seconds.
const HANDLING_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms are folded when nobody scrapes (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
/// Should another recorder already be installed, metrics go there and this handle renders
/// nothing.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(MESSAGE_HANDLING_SECONDS.to_owned()),
                HANDLING_BUCKETS,
            )
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(PROJECTION_WAIT_SECONDS.to_owned()),
                    PROJECTION_WAIT_BUCKETS,
                )
            })
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "histogram buckets refused; using summaries");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "a metrics recorder was already installed");
        }
        metrics::describe_counter!(
            MESSAGES_TOTAL,
            "Messages handled, by queue, event type and outcome"
        );
        metrics::describe_counter!(
            DEAD_LETTERS_TOTAL,
            "Messages put on a dead-letter queue, by queue"
        );
        metrics::describe_counter!(
            APPEND_STATEMENTS_TOTAL,
            "Group-commit statements the event log ran"
        );
        metrics::describe_counter!(
            APPENDS_TOTAL,
            "Appends committed through the group-commit statements"
        );
        metrics::describe_counter!(
            APPEND_CONFLICTS_TOTAL,
            "Appends refused because they were decided on a stale stream"
        );
        metrics::describe_counter!(
            APPEND_GROUP_FAILURES_TOTAL,
            "Group-commit statements that failed as a whole (appends then written one by one)"
        );
        metrics::describe_counter!(
            LOAD_QUERIES_TOTAL,
            "Grouped stream-load queries the event log ran"
        );
        metrics::describe_counter!(
            LOADS_TOTAL,
            "Stream loads answered through the grouped queries"
        );
        metrics::describe_counter!(
            LOOKUP_QUERIES_TOTAL,
            "Grouped reference-lookup queries the lookup tasks ran"
        );
        metrics::describe_counter!(
            LOOKUPS_TOTAL,
            "Reference-lookup calls answered through the grouped queries"
        );
        metrics::describe_counter!(
            REFERENCE_CACHE_ANSWERS_TOTAL,
            "Reference lookups answered from the in-memory copies"
        );
        metrics::describe_counter!(
            REFERENCE_CACHE_COPIES_TOTAL,
            "Reference tables copied into memory"
        );
        metrics::describe_histogram!(
            MESSAGE_HANDLING_SECONDS,
            metrics::Unit::Seconds,
            "Time from delivery to settled, by queue and event type"
        );
        metrics::describe_histogram!(
            PROJECTION_WAIT_SECONDS,
            metrics::Unit::Seconds,
            "Time a synchronous request waited for the projector to show its rows, by outcome"
        );
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no metrics upkeep thread; histograms fold on scrape only");
        }
        handle
    })
}

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    install().render()
}

/// Counts one handled message and its handling time.
pub fn record_message(queue: &str, event_type: &str, outcome: &str, elapsed: Duration) {
    metrics::counter!(
        MESSAGES_TOTAL,
        "queue" => queue.to_owned(),
        "event_type" => event_type.to_owned(),
        "outcome" => outcome.to_owned(),
    )
    .increment(1);
    metrics::histogram!(
        MESSAGE_HANDLING_SECONDS,
        "queue" => queue.to_owned(),
        "event_type" => event_type.to_owned(),
    )
    .record(elapsed.as_secs_f64());
}

/// Counts one message put on `queue`'s dead-letter queue.
pub fn record_dead_letter(queue: &str) {
    metrics::counter!(DEAD_LETTERS_TOTAL, "queue" => queue.to_owned()).increment(1);
}

/// Counts one grouped query answering `calls` reference-lookup calls.
pub fn record_lookup_group(calls: usize) {
    metrics::counter!(LOOKUP_QUERIES_TOTAL).increment(1);
    metrics::counter!(LOOKUPS_TOTAL).increment(calls as u64);
}

/// Counts a lookup the reference cache answered (`answered`) or a table it copied.
pub fn record_reference_cache(answered: bool) {
    if answered {
        metrics::counter!(REFERENCE_CACHE_ANSWERS_TOTAL).increment(1);
    } else {
        metrics::counter!(REFERENCE_CACHE_COPIES_TOTAL).increment(1);
    }
}

/// Counts one grouped query answering `loads` stream loads.
pub fn record_load_group(loads: usize) {
    metrics::counter!(LOAD_QUERIES_TOTAL).increment(1);
    metrics::counter!(LOADS_TOTAL).increment(loads as u64);
}

/// Counts one group commit of `appends` appends.
pub fn record_append_group(appends: usize) {
    metrics::counter!(APPEND_STATEMENTS_TOTAL).increment(1);
    metrics::counter!(APPENDS_TOTAL).increment(appends as u64);
}

/// Counts one append refused as a conflict (decided on a stale stream).
pub fn record_append_conflict() {
    metrics::counter!(APPEND_CONFLICTS_TOTAL).increment(1);
}

/// Counts one group statement that failed as a whole.
pub fn record_append_group_failure() {
    metrics::counter!(APPEND_GROUP_FAILURES_TOTAL).increment(1);
}

/// Records how long a synchronous request waited for its rows to become visible, and
/// whether they did (`reached`) or the wait gave up.
pub fn record_projection_wait(reached: bool, elapsed: Duration) {
    let outcome = if reached { "reached" } else { "timeout" };
    metrics::histogram!(PROJECTION_WAIT_SECONDS, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_in_the_text_format() {
        install();
        install();
        record_message(
            "unit-test-queue",
            "a.b",
            "success",
            Duration::from_millis(3),
        );
        let text = render();
        assert!(
            text.contains(
                r#"delius_bridge_messages_total{queue="unit-test-queue",event_type="a.b",outcome="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("delius_bridge_message_handling_seconds_bucket"),
            "{text}"
        );
    }
}
