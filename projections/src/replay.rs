//! Rebuilding projections from the log into a fresh schema: the tables are created like the
//! live ones, migration-loaded reference rows are copied, then every event is projected in
//! global order in large batches. Live tables are never touched.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgPool};

use crate::postgres::{identifier, project_events, read_events_after, PgSink, ProjectionError};
use crate::rows::TABLES;
use crate::Checkpoint;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub events: u64,
    pub checkpoint: Checkpoint,
}

/// Creates `schema` with empty copies of every projected table of `delius` (dropping any
/// previous copy) and the migration-loaded reference rows.
pub async fn create_shadow(pool: &PgPool, schema: &str) -> Result<(), ProjectionError> {
    let schema = identifier(schema)?;
    if schema == "delius" {
        return Err(ProjectionError::Identifier(schema.to_string()));
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut *tx)
        .await?;
    for table in TABLES {
        let name = table.name;
        sqlx::query(&format!(
            "CREATE TABLE \"{schema}\".\"{name}\" (LIKE delius.\"{name}\" INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
        if table.reference {
            sqlx::query(&format!(
                "INSERT INTO \"{schema}\".\"{name}\" SELECT * FROM delius.\"{name}\" \
                 WHERE last_event_position IS NULL"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Rebuilds every projected table into `schema` from the first event (up to `until`, when
/// given), one transaction per batch of `batch_size` events.
pub async fn rebuild(
    pool: &PgPool,
    schema: &str,
    until: Option<DateTime<Utc>>,
    batch_size: i64,
) -> Result<ReplayStats, ProjectionError> {
    create_shadow(pool, schema).await?;
    let mut conn = pool.acquire().await?;
    let mut stats = ReplayStats::default();
    loop {
        let mut tx = conn.begin().await?;
        let events = read_events_after(&mut tx, stats.checkpoint, batch_size, until).await?;
        let Some(last) = events.last() else {
            tx.commit().await?;
            return Ok(stats);
        };
        stats.checkpoint = Checkpoint::of(last);
        stats.events += events.len() as u64;
        let mut sink = PgSink::new(schema)?;
        project_events(&mut tx, &mut sink, &events).await?;
        tx.commit().await?;
    }
}
