//! Operations on the job queue (SPEC: Jobs): list the jobs that stopped retrying, and
//! give them a fresh set of attempts.

use sqlx::PgConnection;

use crate::error::StoreError;
use crate::store::jobs;

pub use crate::store::jobs::JobRow;

/// Jobs that used all their attempts or failed permanently, newest first.
pub async fn failed_jobs(conn: &mut PgConnection, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    jobs::list_dead(conn, limit).await
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOutcome {
    /// Jobs queued to run again now with fresh attempts.
    pub retried: Vec<String>,
    /// Ids left alone: unknown, or not failed (still retrying, running or done).
    pub skipped: Vec<String>,
}

/// Re-queues the failed jobs among `ids`.
pub async fn retry(conn: &mut PgConnection, ids: Vec<String>) -> Result<RetryOutcome, StoreError> {
    let retried = jobs::retry_dead(conn, &ids).await?;
    let skipped = ids.into_iter().filter(|id| !retried.contains(id)).collect();
    tracing::info!(count = retried.len(), "jobs re-queued by operator");
    Ok(RetryOutcome { retried, skipped })
}

/// Whether the database answers (readiness).
pub async fn database_answers(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    sqlx::query!("select 1 as answer").fetch_one(pool).await?;
    Ok(())
}
