//! Operations on the job queue (SPEC: Jobs): list jobs by queue and state, retry one
//! failed job or all of a queue, discard one with a reason. Every action is recorded in
//! `job_actions` with who did it and when; a retry never duplicates an effect, because
//! every job is idempotent.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::store::{job_actions, jobs};

pub use crate::domain::operations::JobAction;

pub use crate::domain::operations::JobRow;

/// The states an operator filters by.
pub const JOB_STATES: &[&str] = &["pending", "scheduled", "running", "failed", "done"];

/// Why an action on a job was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// No job has this id.
    #[error("no job with id `{0}`")]
    JobNotFound(String),
    /// Only failed jobs (out of attempts, or aborted) are retried or discarded by hand;
    /// the others will still run, or ran.
    #[error("job `{id}` is {state}, not failed: only failed jobs can be retried or discarded")]
    NotFailed {
        /// The job.
        id: String,
        /// Its state.
        state: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Jobs that used all their attempts or failed permanently, newest first.
pub async fn failed_jobs(conn: &mut PgConnection, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    jobs::list_dead(conn, limit).await
}

/// Jobs of `queue` (or all) in `state` (or any), most recently due first.
pub async fn list(
    conn: &mut PgConnection,
    queue: Option<&str>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    jobs::list(conn, queue, state, limit).await
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOutcome {
    /// Jobs queued to run again now with fresh attempts.
    pub retried: Vec<String>,
    /// Ids left alone: unknown, or not failed (still retrying, running or done).
    pub skipped: Vec<String>,
}

/// Re-queues the failed jobs among `ids`, in the caller's transaction.
pub async fn retry(
    conn: &mut PgConnection,
    ids: Vec<String>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<RetryOutcome, StoreError> {
    let mut retried = Vec::new();
    for id in &ids {
        if let Some(row) = jobs::lock(conn, id).await?
            && row.state == "failed"
        {
            job_actions::insert(conn, &row, "RETRY", actor, None, now).await?;
            retried.extend(jobs::retry_dead(conn, std::slice::from_ref(id)).await?);
        }
    }
    let skipped = ids.into_iter().filter(|id| !retried.contains(id)).collect();
    tracing::info!(count = retried.len(), %actor, "jobs re-queued by operator");
    Ok(RetryOutcome { retried, skipped })
}

/// Re-queues one failed job; refuses any other.
pub async fn retry_one(
    conn: &mut PgConnection,
    id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<JobRow, OperationError> {
    let row = failed(conn, id).await?;
    job_actions::insert(conn, &row, "RETRY", actor, None, now).await?;
    jobs::retry_dead(conn, std::slice::from_ref(&row.id)).await?;
    tracing::info!(job_id = %row.id, queue = %row.queue, %actor, "job re-queued by operator");
    jobs::find(conn, id)
        .await?
        .ok_or_else(|| OperationError::JobNotFound(id.to_owned()))
}

/// Re-queues every failed job of `queue` (only those that failed at or after `since`,
/// when given); returns their ids.
pub async fn retry_queue(
    conn: &mut PgConnection,
    queue: &str,
    since: Option<DateTime<Utc>>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let ids = jobs::lock_failed_of_queue(conn, queue, since).await?;
    Ok(retry(conn, ids, actor, now).await?.retried)
}

/// Discards one failed job for good: its row is deleted, and its payload and last error
/// are kept in the record of the action with `reason`.
pub async fn discard(
    conn: &mut PgConnection,
    id: &str,
    reason: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<JobRow, OperationError> {
    let row = failed(conn, id).await?;
    job_actions::insert(conn, &row, "DISCARD", actor, Some(reason), now).await?;
    jobs::delete(conn, &row.id).await?;
    tracing::warn!(job_id = %row.id, queue = %row.queue, %actor, %reason, "job discarded by operator");
    Ok(row)
}

async fn failed(conn: &mut PgConnection, id: &str) -> Result<JobRow, OperationError> {
    let row = jobs::lock(conn, id)
        .await?
        .ok_or_else(|| OperationError::JobNotFound(id.to_owned()))?;
    if row.state != "failed" {
        return Err(OperationError::NotFailed {
            id: row.id,
            state: row.state,
        });
    }
    Ok(row)
}

/// The actions taken on `job_id`, newest first.
pub async fn actions(conn: &mut PgConnection, job_id: &str) -> Result<Vec<JobAction>, StoreError> {
    job_actions::of_job(conn, job_id).await
}

/// Every queue's backlog (queues with no job included, as zeros).
pub async fn backlog(pool: &sqlx::PgPool) -> Result<Vec<jobs::QueueDepth>, StoreError> {
    let depths = jobs::queue_depths(&mut *pool.acquire().await?).await?;
    Ok(crate::jobs::ALL_QUEUES
        .iter()
        .map(|name| {
            depths
                .iter()
                .find(|d| d.queue == *name)
                .cloned()
                .unwrap_or_else(|| jobs::QueueDepth::empty(name))
        })
        .collect())
}

/// Whether the database answers (readiness).
pub async fn database_answers(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    sqlx::query!("select 1 as answer").fetch_one(pool).await?;
    Ok(())
}

/// The latest payouts of all users, newest first, each with its user's platform id.
pub async fn recent_payouts(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(String, crate::domain::payout::Payout)>, StoreError> {
    crate::store::payouts::recent(conn, limit).await
}
