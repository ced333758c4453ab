//! Operations (SPEC: Jobs): list jobs that stopped retrying, and retry them.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use referral_core::store::dev_clock;
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

/// How far to move the development clock.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Days to move forward.
    #[serde(default)]
    #[oai(default, validator(minimum(value = "0"), maximum(value = "3650")))]
    pub days: i64,
    /// Hours to move forward.
    #[serde(default)]
    #[oai(default, validator(minimum(value = "0"), maximum(value = "87600")))]
    pub hours: i64,
}

impl poem_openapi::types::Example for AdvanceClock {
    fn example() -> Self {
        Self { days: 30, hours: 0 }
    }
}

/// The development clock after a move.
#[derive(Debug, Object)]
pub struct ClockAdvanced {
    /// The service's "now".
    pub now: DateTime<Utc>,
    /// How far it runs ahead of the wall clock, in seconds.
    pub offset_seconds: i64,
    /// Waiting jobs (timers, retries) that became due and were started.
    pub jobs_made_due: u64,
}

/// How long workers may take to see a new offset (they re-read it every 250 ms).
const CLOCK_PROPAGATION: std::time::Duration = std::time::Duration::from_millis(600);

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

    /// Development only (`DEV_TIME_TRAVEL=true`): move the service's clock forward, so a
    /// local installation can watch 30-day timers fire. Timers due by the new time run at
    /// once. Answers 404 `DEV_TIME_TRAVEL_DISABLED` everywhere else.
    #[oai(path = "/dev/advance-clock", method = "post")]
    async fn advance_clock(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        body: JsonBody<AdvanceClock>,
    ) -> Result<Json<ClockAdvanced>, ApiError> {
        let Some(dev_clock) = &state.dev_clock else {
            return Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                "DEV_TIME_TRAVEL_DISABLED",
                "the clock can only be moved on a local installation started with DEV_TIME_TRAVEL=true",
            ));
        };
        let by = chrono::Duration::days(body.0.days) + chrono::Duration::hours(body.0.hours);
        if by <= chrono::Duration::zero() {
            return Err(ApiError::invalid_field(
                "days",
                "move the clock forward by at least an hour",
            ));
        }
        let mut conn = state.pool.acquire().await?;
        let offset = dev_clock::advance(&mut conn, by).await?;
        dev_clock.set_offset(offset);
        // Let every worker process pick up the new offset before its timers fire, or a
        // timer would see "not yet due" and go back to sleep.
        tokio::time::sleep(CLOCK_PROPAGATION).await;
        let now = state.clock.now();
        let jobs_made_due = jobs::make_due(&mut conn, now).await?;
        tracing::warn!(
            offset_seconds = offset.num_seconds(),
            jobs_made_due,
            "development clock moved"
        );
        Ok(Json(ClockAdvanced {
            now,
            offset_seconds: offset.num_seconds(),
            jobs_made_due,
        }))
    }
}
