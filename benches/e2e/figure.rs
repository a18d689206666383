//! One measured figure and its JSON line.

use std::io::Write;

use serde::Serialize;

/// A figure beside its ceiling and baseline (measured in the same run).
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub ceiling: Option<f64>,
    /// `value / ceiling`.
    pub ratio: Option<f64>,
    pub baseline: Option<f64>,
    /// `value / baseline` (throughput: how many times faster than the baseline).
    pub speedup: Option<f64>,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value: round(value),
            unit,
            ceiling: None,
            ratio: None,
            baseline: None,
            speedup: None,
        }
    }

    pub fn ceiling(mut self, ceiling: f64) -> Self {
        self.ceiling = Some(round(ceiling));
        self.ratio = (ceiling > 0.0).then(|| round(self.value / ceiling));
        self
    }

    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(round(baseline));
        self.speedup = (baseline > 0.0).then(|| round(self.value / baseline));
        self
    }

    /// Writes the figure as one JSON line on stdout.
    pub fn print(&self) -> anyhow::Result<()> {
        let line = serde_json::to_string(self)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        Ok(())
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// With `BENCH_METRICS` set, installs the service's metrics recorder (the consumers install it
/// when they start; the sync figure starts none), so that [`print_metrics`] has counts.
pub fn install_metrics() {
    if std::env::var_os("BENCH_METRICS").is_some() {
        delius_bridge::metrics::install();
    }
}

/// With `BENCH_METRICS` set, prints the service's counters (cumulative since the process
/// started; histograms as their sums and counts) to stderr, under `label`.
pub fn print_metrics(label: &str) {
    if std::env::var_os("BENCH_METRICS").is_none() {
        return;
    }
    for line in delius_bridge::metrics::render().lines() {
        if line.starts_with("delius_bridge_") && !line.contains("_bucket") {
            eprintln!("metric ({label}) {line}");
        }
    }
}
