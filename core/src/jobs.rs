//! Job payloads and the transactional enqueue (SPEC: Jobs).
//!
//! A job that belongs to a business write is inserted through the caller's transaction
//! (`apalis_postgres::queries::push_tasks` accepts any connection), so the job exists
//! exactly when the write does. Queue names are frozen: renaming one orphans its jobs.

use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{EmailId, UserId};

/// A durable job: its payload and where it queues.
pub trait Job:
    Serialize + DeserializeOwned + Send + Sync + Unpin + std::fmt::Debug + 'static
{
    /// The queue name, frozen once deployed.
    const QUEUE: &'static str;
    /// Attempts before the job stays failed for an operator to look at.
    const MAX_ATTEMPTS: u32 = 8;
}

/// Send one stored e-mail over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendEmail {
    /// The e-mail row to send.
    pub email_id: EmailId,
}

impl Job for SendEmail {
    const QUEUE: &'static str = "send_email";
}

/// Grant the signup credit of an attributed signup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantSignupCredit {
    /// The referred user who signed up.
    pub user_id: UserId,
}

impl Job for GrantSignupCredit {
    const QUEUE: &'static str = "grant_signup_credit";
}

/// Remove what is left of a signup credit grant when it expires (timer, +30 days).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpireSignupCredit {
    /// The referred user whose signup credit expires.
    pub user_id: UserId,
    /// When it expires; the job re-checks it against the clock.
    pub due_at: DateTime<Utc>,
}

impl Job for ExpireSignupCredit {
    const QUEUE: &'static str = "expire_signup_credit";
}

/// Every queue the worker serves, for operations and tests.
pub const ALL_QUEUES: &[&str] = &[
    SendEmail::QUEUE,
    GrantSignupCredit::QUEUE,
    ExpireSignupCredit::QUEUE,
];

/// The id apalis knows a job by (a ULID string).
pub type JobId = String;

/// Enqueue `job` to run as soon as a worker is free, inside the caller's transaction.
pub async fn enqueue_now<J: Job>(conn: &mut PgConnection, job: &J) -> Result<JobId, StoreError> {
    push(conn, job, None).await
}

/// Enqueue `job` to run at `due_at`, inside the caller's transaction.
pub async fn enqueue_at<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: DateTime<Utc>,
) -> Result<JobId, StoreError> {
    push(conn, job, Some(due_at)).await
}

async fn push<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: Option<DateTime<Utc>>,
) -> Result<JobId, StoreError> {
    let payload = serde_json::to_vec(job)?;
    let id = ulid::Ulid::generate();
    let task = TaskBuilder::new(payload)
        .task_id(TaskId::from_ulid(id))
        .max_attempts(J::MAX_ATTEMPTS as usize)
        .build();
    apalis_postgres::queries::push_tasks(&mut *conn, J::QUEUE, vec![task]).await?;
    let id = id.to_string();
    if let Some(due_at) = due_at {
        // push_tasks stores whole seconds only; a timer should start at its instant, not up
        // to a second early or late, so store the exact instant (same transaction).
        sqlx::query("update apalis.jobs set run_at = $2 where id = $1")
            .bind(&id)
            .bind(due_at)
            .execute(&mut *conn)
            .await?;
    }
    tracing::debug!(queue = J::QUEUE, job_id = %id, ?due_at, "job enqueued");
    Ok(id)
}
