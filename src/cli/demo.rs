//! `delius-bridge demo`: plays the fixtures end to end on the embedded default (no services)
//! and prints the audit timeline and the resulting Delius rows. Touches no database.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::config::{DemoArgs, OutputFormat};
use crate::engine::{Backend, Engine};
use crate::render;
use crate::seed;

/// Runs `demo`.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let file = match &args.seed {
        Some(path) => seed::read(path)?,
        None => seed::parse(super::serve::DEMO_SEED)?,
    };
    let engine = Engine::memory();
    let report = seed::load(&engine, &file, "seed:demo").await?;
    let head = engine.head().await?;
    engine
        .wait_for_checkpoint(head, Duration::from_secs(30))
        .await?;
    let Backend::Memory { log, tables } = &engine.backend else {
        anyhow::bail!("the demo runs on the embedded default");
    };
    let events = log.read_after(Default::default(), usize::MAX)?;
    let tables = tables
        .read()
        .map_err(|_| anyhow::anyhow!("embedded tables lock poisoned"))?
        .clone();
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Table => {
            writeln!(
                out,
                "delius-bridge demo — embedded default, nothing is durable\n\nseed: {} commands changed Delius ({} events)\n",
                report.changed, report.events
            )?;
            writeln!(
                out,
                "== Audit timeline ({} events)\n{}",
                events.len(),
                render::timeline(&events)
            )?;
            writeln!(out, "== Delius rows\n{}", render::delius(&tables))?;
        }
        OutputFormat::Json => {
            let timeline: Vec<_> = events
                .iter()
                .map(|e| {
                    json!({
                        "position": e.global_position,
                        "eventType": e.event_type,
                        "aggregate": format!("{}/{}", e.aggregate_type, e.aggregate_id),
                        "metadata": e.metadata,
                    })
                })
                .collect();
            let rows: serde_json::Map<String, serde_json::Value> = tables
                .table_names()
                .into_iter()
                .map(|name| (name.to_string(), json!(tables.rows(name))))
                .collect();
            serde_json::to_writer_pretty(&mut out, &json!({"timeline": timeline, "delius": rows}))?;
            writeln!(out)?;
        }
    }
    drop(out);
    engine.shutdown().await;
    Ok(())
}
