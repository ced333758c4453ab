//! Operator views of the job queue (apalis.jobs): list, retry, and reschedule for backoff.
//!
//! apalis-postgres 1.0 has no API to retry or reschedule, so these are plain SQL on its
//! table; its columns are documented in `../shared/APALIS.md`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;

/// A job as operators see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// apalis task id (ULID).
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// Pending, Queued, Running, Done, Failed or Killed.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    /// The last result or error, as apalis recorded it.
    pub last_error: Option<String>,
    /// The job payload as JSON text.
    pub payload: String,
}

macro_rules! select_jobs {
    ($tail:literal) => {
        concat!(
            "select id, job_type as queue, status, attempts, max_attempts, run_at,
                    last_result::text as last_error, convert_from(job, 'UTF8') as payload
             from apalis.jobs ",
            $tail
        )
    };
}

/// Jobs that exhausted their attempts or were aborted: what an operator must look at.
pub async fn list_dead(conn: &mut PgConnection, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as::<_, JobRow>(select_jobs!(
        "where (status = 'Failed' and attempts >= max_attempts) or status = 'Killed'
         order by done_at desc nulls last, id limit $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Jobs of a queue in any state, newest first (tests and diagnostics).
pub async fn list_queue(conn: &mut PgConnection, queue: &str) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as::<_, JobRow>(select_jobs!(
        "where job_type = $1 order by run_at desc, id desc"
    ))
    .bind(queue)
    .fetch_all(conn)
    .await?)
}

/// One job by id.
pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as::<_, JobRow>(select_jobs!("where id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Gives dead jobs a fresh set of attempts, to run now. Returns the ids re-queued; ids
/// that are not dead (running, done, still retrying) are left alone.
pub async fn retry_dead(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar::<_, String>(
        "update apalis.jobs set status = 'Pending', attempts = 0, run_at = now(),
                lock_by = null, lock_at = null, done_at = null
         where id = any($1)
           and ((status = 'Failed' and attempts >= max_attempts) or status = 'Killed')
         returning id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// Makes every waiting job due by business time `now` runnable at once. apalis compares
/// `run_at` with the database's wall clock, so when business time runs ahead of it (a
/// test's manual clock, a local installation's moved clock) timers need this. Returns
/// how many jobs it moved.
pub async fn make_due(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "update apalis.jobs set run_at = now()
         where status in ('Pending', 'Failed') and attempts < max_attempts
           and run_at > now() and run_at <= $1",
    )
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Pushes a failed job's next attempt `delay` into the future (apalis would re-fetch it
/// at once). Measured on the database clock, which is what apalis compares `run_at` to.
pub async fn postpone(
    conn: &mut PgConnection,
    id: &str,
    delay: std::time::Duration,
) -> Result<(), StoreError> {
    sqlx::query("update apalis.jobs set run_at = now() + $2 where id = $1")
        .bind(id)
        .bind(delay)
        .execute(conn)
        .await?;
    Ok(())
}
