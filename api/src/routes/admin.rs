//! Operations (SPEC: Jobs): list jobs that stopped retrying, and retry them.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use referral_core::store::jobs::{self, JobRow};

use crate::AppState;
use crate::auth::AdminKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::Tag;

/// Operations endpoints.
pub struct AdminApi;

/// A job in the queue.
#[derive(Debug, Object)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// `Pending`, `Queued`, `Running`, `Done`, `Failed` or `Killed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Next run (for pending and retrying jobs).
    pub run_at: DateTime<Utc>,
    /// The last error recorded.
    pub last_error: Option<String>,
    /// The job's arguments as JSON.
    pub payload: String,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            queue: row.queue,
            status: row.status,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            last_error: row.last_error,
            payload: row.payload,
        }
    }
}

/// Jobs to retry.
#[derive(Debug, Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryJobs {
    /// Ids of failed jobs.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub ids: Vec<String>,
}

/// What a retry did.
#[derive(Debug, Object)]
pub struct RetryOutcome {
    /// Jobs queued to run again now with fresh attempts.
    pub retried: Vec<String>,
    /// Ids left alone: unknown, or not failed (still retrying, running or done).
    pub skipped: Vec<String>,
}

#[OpenApi(prefix_path = "/v1/admin", tag = "Tag::Operations")]
impl AdminApi {
    /// Failed jobs: they used all their attempts or failed permanently.
    #[oai(path = "/jobs/failed", method = "get")]
    async fn failed_jobs(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        /// At most this many, newest first (1–500, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<JobView>>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let rows = jobs::list_dead(&mut conn, limit.0.unwrap_or(100)).await?;
        Ok(Json(rows.into_iter().map(JobView::from).collect()))
    }

    /// Retry failed jobs: each gets a fresh set of attempts and runs now.
    #[oai(path = "/jobs/retry", method = "post")]
    async fn retry_jobs(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        body: JsonBody<RetryJobs>,
    ) -> Result<Json<RetryOutcome>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let retried = jobs::retry_dead(&mut conn, &body.0.ids).await?;
        let skipped = body
            .0
            .ids
            .into_iter()
            .filter(|id| !retried.contains(id))
            .collect();
        tracing::info!(count = retried.len(), "jobs re-queued by operator");
        Ok(Json(RetryOutcome { retried, skipped }))
    }
}
