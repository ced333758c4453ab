//! The job queue's table, `apalis.jobs`: every statement of ours that reads or writes it.
//!
//! apalis-postgres 1.0 owns this table and its life cycle; we add what it lacks (exact due
//! instants, backoff between attempts, re-scheduling a timer woken early, operator views,
//! retrying dead jobs). Each of those leans on a behaviour of apalis-postgres that is not
//! a documented promise, so `worker/tests/apalis_contract.rs` pins every one of them: an
//! upgrade that changes one fails that test instead of silently changing our retries.
//!
//! What apalis-postgres 1.0 does, as we rely on it:
//!
//! - **Insert.** `push_tasks` is one `INSERT` on the connection it is given, so inside our
//!   transaction the job exists exactly when the business write does. It stores `run_at`
//!   in whole seconds and, when the task names none, uses the current second, so the row
//!   is due at once. We therefore always give it a `run_at` rounded *up* and then store
//!   the exact instant: a row is never due before its time, even between the two
//!   statements.
//! - **Claim.** A fetch takes rows of one queue whose status is `Pending` (or `Failed` with
//!   attempts left) and whose `run_at` is strictly before the database's `now()`, with
//!   `FOR UPDATE SKIP LOCKED`, and marks them `Queued` with `lock_by` = the worker's name.
//!   (Migration 0010 replaces apalis's fetch function with one that claims in `run_at`
//!   order over an index that ends the scan at the first row not yet due, and lets a row
//!   that is no longer claimed drop its `lock_by`; it also notifies idle workers.)
//!   A claimed row is not claimed again by anyone, so moving `run_at` into the future is
//!   how a job is made to wait, and `run_at <= now()` how it is made runnable.
//! - **Lock.** When a job starts, apalis marks it `Running`, but only if it is still
//!   claimable-looking (`Pending`/`Queued`/`Failed`) *and* `run_at < now()`. That event is
//!   written lazily, often together with the acknowledgement. Migration 0013 lets it
//!   change only a claimed (`Queued`) row: a late one could otherwise take a row its
//!   worker had let go and made due again, for that worker's acknowledgement to finish.
//! - **Acknowledgement.** After an attempt, apalis writes `status` (`Done`, `Failed`, or
//!   `Killed` for an abort), `attempts` (the attempt number, absolute), `last_result` and
//!   `done_at`, and only for a row whose `lock_by` is still the acknowledging worker. It
//!   never touches `run_at` (nor `lock_by`, which our trigger then clears). Two consequences we use: a `run_at` we move
//!   before a failed attempt is acknowledged survives (backoff), and a row we release
//!   (`lock_by` cleared) is not acknowledged at all (a timer woken early goes back to
//!   `Pending` without spending an attempt).
//! - **Orphans.** A `Queued`/`Running` row of a worker silent for `heartbeat ×
//!   missed_heartbeats` goes back to `Pending` with one more attempt counted. Delivery
//!   is at least once; handlers are idempotent.

use std::time::Duration;

use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::operations::JobRow;
use crate::error::StoreError;
use crate::jobs::{Job, JobId};

/// Inserts `job` into its queue on `conn` (the caller's transaction), to run at `due_at`
/// or as soon as a worker is free.
pub async fn insert<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: Option<DateTime<Utc>>,
) -> Result<JobId, StoreError> {
    insert_keyed(conn, job, due_at, None).await
}

/// Inserts `job` to run at `due_at` unless its queue ever had a job with `key` (apalis's
/// unique `(job_type, idempotency_key)`); returns whether it did. The insert runs in a
/// savepoint, so losing a race with another process leaves the caller's transaction
/// usable.
pub async fn insert_once<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: DateTime<Utc>,
    key: &str,
) -> Result<bool, StoreError> {
    if key_used(conn, J::QUEUE, key).await? {
        return Ok(false);
    }
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    match insert_keyed(&mut savepoint, job, Some(due_at), Some(key)).await {
        Ok(_) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(error) => {
            savepoint.rollback().await?;
            if key_used(conn, J::QUEUE, key).await? {
                Ok(false)
            } else {
                Err(error)
            }
        }
    }
}

async fn key_used(conn: &mut PgConnection, queue: &str, key: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select exists(select 1 from apalis.jobs where job_type = $1 and idempotency_key = $2)
           as "used!""#,
        queue,
        key
    )
    .fetch_one(conn)
    .await?)
}

async fn insert_keyed<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: Option<DateTime<Utc>>,
    key: Option<&str>,
) -> Result<JobId, StoreError> {
    let payload = serde_json::to_vec(job)?;
    let id = ulid::Ulid::generate();
    let mut task = TaskBuilder::new(payload)
        .task_id(TaskId::from_ulid(id))
        .max_attempts(J::MAX_ATTEMPTS as usize);
    if let Some(key) = key {
        task = task.idempotency_key(key);
    }
    if let Some(due_at) = due_at {
        task = task.run_at_timestamp(ceil_seconds(due_at));
    }
    apalis_postgres::queries::push_tasks(&mut *conn, J::QUEUE, vec![task.build()]).await?;
    let id = id.to_string();
    if let Some(due_at) = due_at {
        // apalis stored the second after `due_at`; a timer starts at its instant.
        sqlx::query!(
            "update apalis.jobs set run_at = $2 where id = $1",
            id,
            due_at
        )
        .execute(&mut *conn)
        .await?;
    }
    tracing::debug!(queue = J::QUEUE, job_id = %id, ?due_at, "job enqueued");
    Ok(id)
}

/// The claiming statement of the installed fetch function (`apalis.get_jobs`, migration
/// 0013) for `count` jobs of `queue` by `worker`, as plain SQL: what an
/// `EXPLAIN (ANALYZE, BUFFERS)` needs to show how much of the table a fetch reads. Only
/// for diagnostics (benches, contract tests): the names go in as quoted literals.
pub async fn claim_statement(
    conn: &mut PgConnection,
    worker: &str,
    queue: &str,
    count: u32,
) -> Result<String, StoreError> {
    let body: String = sqlx::query_scalar("select prosrc from pg_proc where proname = 'get_jobs'")
        .fetch_one(conn)
        .await?;
    let statement = body
        .find("update apalis.jobs")
        .zip(body.find("returning *"))
        .map(|(start, end)| &body[start..end + "returning *".len()])
        .ok_or_else(|| StoreError::Corrupt("apalis.get_jobs has no claiming update".into()))?;
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
    Ok(statement
        .replace("worker_id", &quoted(worker))
        .replace("v_job_type", &quoted(queue))
        .replace("v_job_count", &count.to_string()))
}

/// Milliseconds until queue `queue`'s earliest claimable job is due, on the database's
/// clock (negative when due already); `None` when it has none. Reads the first entry of
/// the claimable-rows index, whatever the backlog.
pub async fn next_due_in(conn: &mut PgConnection, queue: &str) -> Result<Option<f64>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select (extract(epoch from run_at - clock_timestamp()) * 1000)::float8 as "millis!"
           from apalis.jobs
           where job_type = $1
             and (status = 'Pending' or (status = 'Failed' and attempts < max_attempts))
           order by run_at
           limit 1"#,
        queue
    )
    .fetch_optional(conn)
    .await?)
}

/// The database's clock, which apalis compares `run_at` with and stamps `done_at` by.
pub async fn database_now(conn: &mut PgConnection) -> Result<DateTime<Utc>, StoreError> {
    Ok(sqlx::query_scalar!(r#"select now() as "now!""#)
        .fetch_one(conn)
        .await?)
}

/// Whole seconds since the epoch at or after `at` (0 for instants before it).
fn ceil_seconds(at: DateTime<Utc>) -> u64 {
    let seconds = at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
    u64::try_from(seconds).unwrap_or(0)
}

/// Pushes the next attempt of a failing job `delay` into the future, before apalis
/// acknowledges the failure (which leaves `run_at` alone). Measured on the database
/// clock, which is what a fetch compares `run_at` with.
pub async fn postpone(
    conn: &mut PgConnection,
    id: &str,
    delay: Duration,
) -> Result<(), StoreError> {
    let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    sqlx::query!(
        "update apalis.jobs set run_at = now() + $2::bigint * interval '1 millisecond'
         where id = $1",
        id,
        millis
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a timer woken before `due_at` back to sleep: the same row, `Pending` again, due at
/// `due_at`, its attempts untouched. Only while `worker` still holds it; returns whether
/// it did.
///
/// Clearing `lock_by` is what keeps apalis's acknowledgement of this attempt from
/// marking the row `Done` (or counting the attempt). The row never becomes due sooner
/// than a second from now by the database clock: a late "started" event from apalis
/// only applies to rows already due, and a timer that the business clock says is early
/// must not spin.
pub async fn reschedule(
    conn: &mut PgConnection,
    id: &str,
    worker: &str,
    due_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "update apalis.jobs
         set status = 'Pending', run_at = greatest($3, now() + interval '1 second'),
             lock_by = null, lock_at = null, done_at = null
         where id = $1 and lock_by = $2 and status in ('Queued', 'Running')",
        id,
        worker,
        due_at
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Jobs that exhausted their attempts or were aborted: what an operator must look at.
pub async fn list_dead(conn: &mut PgConnection, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as!(
        JobRow,
        r#"select id as "id!", queue as "queue!", status as "status!", attempts as "attempts!",
                  max_attempts as "max_attempts!", run_at as "run_at!", state as "state!",
                  last_error, payload as "payload!", done_at
           from job_states
           where state = 'failed'
           order by done_at desc nulls last, id limit $1"#,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Jobs of a queue in any state, newest first (tests and diagnostics).
pub async fn list_queue(conn: &mut PgConnection, queue: &str) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as!(
        JobRow,
        r#"select id as "id!", queue as "queue!", status as "status!", attempts as "attempts!",
                  max_attempts as "max_attempts!", run_at as "run_at!", state as "state!",
                  last_error, payload as "payload!", done_at
           from job_states
           where queue = $1 order by run_at desc, id desc"#,
        queue
    )
    .fetch_all(conn)
    .await?)
}

/// One job by id.
pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as!(
        JobRow,
        r#"select id as "id!", queue as "queue!", status as "status!", attempts as "attempts!",
                  max_attempts as "max_attempts!", run_at as "run_at!", state as "state!",
                  last_error, payload as "payload!", done_at
           from job_states where id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Gives dead jobs a fresh set of attempts, to run now. Returns the ids re-queued; ids
/// that are not dead (running, done, still retrying) are left alone.
pub async fn retry_dead(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        "update apalis.jobs set status = 'Pending', attempts = 0, run_at = now(),
                lock_by = null, lock_at = null, done_at = null
         where id = any($1)
           and ((status = 'Failed' and attempts >= max_attempts) or status = 'Killed')
         returning id",
        ids
    )
    .fetch_all(conn)
    .await?)
}

/// Makes every waiting job due by business time `now` runnable at once. apalis compares
/// `run_at` with the database's wall clock, so when business time runs ahead of it (a
/// test's manual clock, a local installation's moved clock) timers need this. Returns
/// how many jobs it moved.
pub async fn make_due(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "update apalis.jobs set run_at = now()
         where status in ('Pending', 'Failed') and attempts < max_attempts
           and run_at > now() and run_at <= $1",
        now
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Makes one waiting job runnable at once, whatever its due time or backoff (tests, and
/// an operator who will not wait). Returns whether it was waiting.
pub async fn run_now(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query!(
        "update apalis.jobs set run_at = now()
         where id = $1 and status in ('Pending', 'Failed') and attempts < max_attempts",
        id
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// How many jobs are running, claimed, or due by the database clock and not yet
/// claimed: zero means the queues are idle.
pub async fn count_busy(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from apalis.jobs
           where status in ('Queued', 'Running')
              or (status in ('Pending', 'Failed') and attempts < max_attempts and run_at <= now())"#
    )
    .fetch_one(conn)
    .await?)
}

/// Jobs of `queue` (or all queues) in `state` (or any), most recently due first.
pub async fn list(
    conn: &mut PgConnection,
    queue: Option<&str>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as!(
        JobRow,
        r#"select id as "id!", queue as "queue!", status as "status!", attempts as "attempts!",
                  max_attempts as "max_attempts!", run_at as "run_at!", state as "state!",
                  last_error, payload as "payload!", done_at
           from job_states
           where ($1::text is null or queue = $1) and ($2::text is null or state = $2)
           order by run_at desc, id desc limit $3"#,
        queue,
        state,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Locks one job row for an operator's action.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as!(
        JobRow,
        r#"select id as "id!", queue as "queue!", status as "status!", attempts as "attempts!",
                  max_attempts as "max_attempts!", run_at as "run_at!", state as "state!",
                  last_error, payload as "payload!", done_at
           from job_states where id = $1 for update"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Ids of the failed jobs of `queue` that failed at or after `since`, locked.
pub async fn lock_failed_of_queue(
    conn: &mut PgConnection,
    queue: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        "select id from apalis.jobs
         where job_type = $1
           and ((status = 'Failed' and attempts >= max_attempts) or status = 'Killed')
           and ($2::timestamptz is null or done_at >= $2)
         order by done_at, id
         for update skip locked",
        queue,
        since
    )
    .fetch_all(conn)
    .await?)
}

/// Deletes a job row (an operator discarding a failed job; its record is kept in
/// `job_actions`).
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query!("delete from apalis.jobs where id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A queue's backlog, as operators and `/metrics` see it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    /// Queue name.
    pub queue: String,
    /// Due and waiting for a worker.
    pub due: i64,
    /// Due later (timers, retries in backoff).
    pub scheduled: i64,
    /// Claimed or running.
    pub running: i64,
    /// Failed for good, waiting for an operator.
    pub failed: i64,
    /// How long the oldest due job has waited, in seconds (0 when none is due).
    pub oldest_due_seconds: f64,
}

impl QueueDepth {
    /// A queue with no job.
    pub fn empty(queue: &str) -> Self {
        Self {
            queue: queue.to_owned(),
            due: 0,
            scheduled: 0,
            running: 0,
            failed: 0,
            oldest_due_seconds: 0.0,
        }
    }
}

/// Every queue's backlog. Reads the rows not yet done, so it grows with the backlog:
/// fine for a scrape every few seconds, not for a hot path.
pub async fn queue_depths(conn: &mut PgConnection) -> Result<Vec<QueueDepth>, StoreError> {
    Ok(sqlx::query_as!(
        QueueDepth,
        r#"select job_type as "queue!",
                  count(*) filter (where status in ('Pending', 'Failed')
                                     and attempts < max_attempts and run_at <= now()) as "due!",
                  count(*) filter (where status in ('Pending', 'Failed')
                                     and attempts < max_attempts and run_at > now()) as "scheduled!",
                  count(*) filter (where status in ('Queued', 'Running')) as "running!",
                  count(*) filter (where status = 'Killed'
                                     or (status = 'Failed' and attempts >= max_attempts)) as "failed!",
                  coalesce(extract(epoch from now() - min(run_at) filter (
                      where status in ('Pending', 'Failed') and attempts < max_attempts
                        and run_at <= now())), 0)::float8 as "oldest_due_seconds!"
           from apalis.jobs where status <> 'Done' group by job_type"#
    )
    .fetch_all(conn)
    .await?)
}
