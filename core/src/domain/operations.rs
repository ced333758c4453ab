//! What operators do to failed jobs, as recorded.

use chrono::{DateTime, Utc};

/// An operator's action, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAction {
    /// The job.
    pub job_id: String,
    /// Its queue.
    pub queue: String,
    /// `RETRY` or `DISCARD`.
    pub action: String,
    /// Who: the admin key's name, or `cli:<user>`.
    pub actor: String,
    /// Why (discards).
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A job as operators see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// apalis task id (ULID).
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// apalis's status: Pending, Queued, Running, Done, Failed or Killed.
    pub status: String,
    /// How it reads to an operator: `pending`, `scheduled`, `running`, `failed` or
    /// `done`, as the `job_states` view of the schema defines them.
    pub state: String,
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
    /// When it finished (done, or failed for the last time).
    pub done_at: Option<DateTime<Utc>>,
}
