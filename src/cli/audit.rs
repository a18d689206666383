//! `delius-bridge audit --crn X123456` (a person's timeline) or `--table T --id N` (a row
//! back to the events that wrote it), as a table for people or JSON for tools. Read-only.

use std::io::Write;

use crate::amqp::handler::OutcomeLog;
use crate::audit;
use crate::config::{AuditArgs, Cli, OutputFormat};
use crate::engine::Backend;

/// Runs `audit`.
pub async fn run(cli: &Cli, args: &AuditArgs) -> anyhow::Result<()> {
    // The embedded default keeps no log between runs.
    let pool = super::migrated_pool(cli, "audit", 2).await?;
    let mut out = std::io::stdout();
    match (&args.crn, &args.table, &args.id) {
        (Some(crn), _, _) => {
            let backend = Backend::Postgres(pool.clone());
            let outcomes = OutcomeLog::Postgres(pool);
            let timeline = audit::case_timeline(&backend, &outcomes, crn).await?;
            match args.format {
                OutputFormat::Table => write!(out, "{}", audit::render_timeline(&timeline))?,
                OutputFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &timeline)?;
                    writeln!(out)?;
                }
            }
        }
        (None, Some(table), Some(id)) => {
            let row = audit::row_audit(&pool, table, id).await?;
            match args.format {
                OutputFormat::Table => write!(out, "{}", audit::render_row(&row))?,
                OutputFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &row)?;
                    writeln!(out)?;
                }
            }
        }
        _ => anyhow::bail!("give --crn, or --table with --id"),
    }
    Ok(())
}
