//! `delius-bridge seed FILE.json`: validates the file, then loads it through the command bus
//! (source `seed`). Safe while `serve` runs. An invalid file loads nothing.

use std::io::Write;

use anyhow::Context;

use crate::config::{Cli, SeedArgs};
use crate::seed;

/// Runs `seed`.
pub async fn run(cli: &Cli, args: &SeedArgs) -> anyhow::Result<()> {
    let file = seed::read(&args.file)?;
    let engine = super::engine(cli).await?;
    if args.check {
        let known = seed::KnownCodes::for_engine(&engine).await?;
        seed::validate(&file, &known)?;
        writeln!(std::io::stdout(), "{} is valid", args.file.display())?;
        engine.shutdown().await;
        return Ok(());
    }
    let actor = format!("seed:{}", args.file.display());
    let report = seed::load(&engine, &file, &actor).await?;
    // The rows are visible once the projector has passed everything just written.
    let target = engine.head().await.context("reading the log position")?;
    engine
        .wait_for_checkpoint(target, std::time::Duration::from_secs(60))
        .await?;
    writeln!(
        std::io::stdout(),
        "seeded {}: {} commands changed Delius ({} events), {} unchanged",
        args.file.display(),
        report.changed,
        report.events,
        report.unchanged
    )?;
    engine.shutdown().await;
    Ok(())
}
