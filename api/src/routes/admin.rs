//! Operations (SPEC: Jobs): list jobs that stopped retrying, and retry them.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use referral_core::usecases::operations::{self, JobRow};

use crate::AppState;
use crate::auth::AdminKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{Bounded, JobIdText, Text};
use crate::routes::Tag;
use crate::routes::dto::example_instant;

/// Operations endpoints.
pub struct AdminApi;

/// A job in the queue.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
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

impl Example for JobView {
    fn example() -> Self {
        Self {
            id: "01JD8X3Y4Z5A6B7C8D9E0F1G2H".into(),
            queue: "send_email".into(),
            status: "Failed".into(),
            attempts: 8,
            max_attempts: 8,
            run_at: example_instant(3),
            last_error: Some(r#"{"Err":"transient: connection refused"}"#.into()),
            payload: r#"{"email_id":"0193a1c2-0000-7000-8000-000000000000"}"#.into(),
        }
    }
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

/// The most job ids one retry takes.
const MAX_RETRY_IDS: usize = 1000;

/// Jobs to retry.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct RetryJobs {
    /// Ids of failed jobs (1 to 1000).
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub ids: Vec<Text<JobIdText>>,
}

impl Example for RetryJobs {
    fn example() -> Self {
        Self {
            ids: vec![Text::known("01JD8X3Y4Z5A6B7C8D9E0F1G2H")],
        }
    }
}

/// What a retry did.
#[derive(Debug, Object)]
pub struct RetryOutcome {
    /// Jobs queued to run again now with fresh attempts.
    pub retried: Vec<String>,
    /// Ids left alone: unknown, or not failed (still retrying, running or done).
    pub skipped: Vec<String>,
}

/// Rows per listing.
type JobLimit = Bounded<1, 500>;

#[OpenApi(prefix_path = "/v1/admin", tag = "Tag::Operations")]
impl AdminApi {
    /// Failed jobs: they used all their attempts or failed permanently.
    #[oai(path = "/jobs/failed", method = "get", operation_id = "listFailedJobs")]
    async fn failed_jobs(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        /// At most this many, newest first (1–500, default 100).
        limit: Query<Option<JobLimit>>,
    ) -> Result<Json<Vec<JobView>>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let rows = operations::failed_jobs(&mut conn, limit.0.map_or(100, |l| l.0)).await?;
        Ok(Json(rows.into_iter().map(JobView::from).collect()))
    }

    /// Retry failed jobs: each gets a fresh set of attempts and runs now.
    #[oai(path = "/jobs/retry", method = "post", operation_id = "retryJobs")]
    async fn retry_jobs(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        body: JsonBody<RetryJobs>,
    ) -> Result<Json<RetryOutcome>, ApiError> {
        let ids = body.0.ids;
        if ids.is_empty() || ids.len() > MAX_RETRY_IDS {
            return Err(ApiError::invalid_field(
                "ids",
                format!("must hold 1 to {MAX_RETRY_IDS} job ids"),
            ));
        }
        let ids = ids.into_iter().map(Text::into_string).collect();
        let mut conn = state.pool.acquire().await?;
        let outcome = operations::retry(&mut conn, ids).await?;
        Ok(Json(RetryOutcome {
            retried: outcome.retried,
            skipped: outcome.skipped,
        }))
    }
}
