//! Operations (SPEC: Jobs): list jobs that stopped retrying, and retry them.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, OpenApi};
use referral_core::usecases::operations::{self, JobRow};

use crate::AppState;
use crate::auth::AdminKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{Bounded, Choice, JobIdText, ReasonText, Text};
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
    /// `pending` (due), `scheduled` (due later, a retry's backoff included), `running`,
    /// `failed` (will not run again by itself: retry or discard it) or `done`.
    pub state: JobStateView,
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
    /// When it finished: done, or failed for the last time.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Example for JobView {
    fn example() -> Self {
        Self {
            id: "01JD8X3Y4Z5A6B7C8D9E0F1G2H".into(),
            queue: "send_email".into(),
            status: "Failed".into(),
            state: JobStateView::Failed,
            attempts: 8,
            max_attempts: 8,
            run_at: example_instant(3),
            last_error: Some(r#"{"Err":"transient: connection refused"}"#.into()),
            payload: r#"{"email_id":"0193a1c2-0000-7000-8000-000000000000"}"#.into(),
            finished_at: Some(example_instant(3)),
        }
    }
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        Self {
            id: row.id,
            queue: row.queue,
            state: JobStateView::from_name(&row.state),
            status: row.status,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            last_error: row.last_error,
            payload: row.payload,
            finished_at: row.done_at,
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

/// How a job reads to an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobStateView {
    /// Due, waiting for a free worker.
    Pending,
    /// Due later: a timer, or a retry waiting out its backoff.
    Scheduled,
    /// Claimed or running.
    Running,
    /// Will not run again by itself (out of attempts, or aborted): retry or discard it.
    Failed,
    /// Finished.
    Done,
}

impl JobStateView {
    fn from_name(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "scheduled" => Self::Scheduled,
            "running" => Self::Running,
            "done" => Self::Done,
            _ => Self::Failed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Done => "done",
        }
    }
}

/// A job queue (each kind of job has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum QueueName {
    /// E-mails.
    SendEmail,
    /// Signup credit grants.
    GrantSignupCredit,
    /// Signup credit expiry timers.
    ExpireSignupCredit,
    /// Commission 30-day timers.
    MakeCommissionEligible,
    /// Commission payments.
    PayCommission,
    /// Refunds applied to commissions.
    ReverseCommission,
    /// Payouts sent to Stripe.
    SendPayoutTransfer,
    /// Failed payouts' transfers taken back.
    ReversePayoutTransfer,
    /// The reconciliation sweep.
    Reconcile,
}

impl QueueName {
    /// The queue's frozen name.
    pub fn as_str(self) -> &'static str {
        use referral_core::jobs::{self as j, Job};
        match self {
            Self::SendEmail => j::SendEmail::QUEUE,
            Self::GrantSignupCredit => j::GrantSignupCredit::QUEUE,
            Self::ExpireSignupCredit => j::ExpireSignupCredit::QUEUE,
            Self::MakeCommissionEligible => j::MakeCommissionEligible::QUEUE,
            Self::PayCommission => j::PayCommission::QUEUE,
            Self::ReverseCommission => j::ReverseCommission::QUEUE,
            Self::SendPayoutTransfer => j::SendPayoutTransfer::QUEUE,
            Self::ReversePayoutTransfer => j::ReversePayoutTransfer::QUEUE,
            Self::Reconcile => j::Reconcile::QUEUE,
        }
    }
}

/// Retry every failed job of a queue.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RetryQueue {
    /// The queue.
    pub queue: QueueName,
    /// Only jobs that failed at or after this instant.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub failed_since: Option<DateTime<Utc>>,
}

impl Example for RetryQueue {
    fn example() -> Self {
        Self {
            queue: QueueName::SendPayoutTransfer,
            failed_since: Some(example_instant(25)),
        }
    }
}

/// Jobs re-queued.
#[derive(Debug, Object)]
pub struct Retried {
    /// Their ids.
    pub retried: Vec<String>,
}

/// Discard a failed job.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct DiscardJob {
    /// Why: kept with the job's payload and last error in its record.
    pub reason: Text<ReasonText>,
}

impl Example for DiscardJob {
    fn example() -> Self {
        Self {
            reason: Text::known("customer closed their account; refunded by hand"),
        }
    }
}

/// An operator's action on a job.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct JobActionView {
    /// The job.
    pub job_id: String,
    /// Its queue.
    pub queue: String,
    /// `RETRY` or `DISCARD`.
    pub action: String,
    /// Who: the admin key's name, or `cli:<user>` from the command line.
    pub actor: String,
    /// Why (discards).
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

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

    /// Jobs by queue and state, most recently due first, with attempts, last error and
    /// due time.
    #[oai(path = "/jobs", method = "get", operation_id = "listJobs")]
    async fn jobs(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        /// Only this queue.
        queue: Query<Option<Choice<QueueName>>>,
        /// Only jobs in this state.
        #[oai(name = "state")]
        job_state: Query<Option<Choice<JobStateView>>>,
        /// At most this many (1–500, default 100).
        limit: Query<Option<JobLimit>>,
    ) -> Result<Json<Vec<JobView>>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let rows = operations::list(
            &mut conn,
            queue.0.map(|q| q.0.as_str()),
            job_state.0.map(|s| s.0.name()),
            limit.0.map_or(100, |l| l.0),
        )
        .await?;
        Ok(Json(rows.into_iter().map(JobView::from).collect()))
    }

    /// Retry one failed job: a fresh set of attempts, due now; recorded with the admin
    /// key's name. A job that is not failed is 409 `JOB_NOT_FAILED`.
    #[oai(
        path = "/jobs/:job_id/retry",
        method = "post",
        operation_id = "retryJob"
    )]
    async fn retry_job(
        &self,
        key: AdminKey,
        state: Data<&AppState>,
        /// The job.
        job_id: Path<Text<JobIdText>>,
    ) -> Result<Json<JobView>, ApiError> {
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let row = operations::retry_one(&mut tx, job_id.0.as_str(), &key.0.name, now).await?;
        tx.commit().await?;
        Ok(Json(row.into()))
    }

    /// Retry every failed job of a queue (only those that failed since `failed_since`,
    /// when given); each retry is recorded.
    #[oai(
        path = "/jobs/retry-failed",
        method = "post",
        operation_id = "retryFailedJobs"
    )]
    async fn retry_queue(
        &self,
        key: AdminKey,
        state: Data<&AppState>,
        body: JsonBody<RetryQueue>,
    ) -> Result<Json<Retried>, ApiError> {
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let retried = operations::retry_queue(
            &mut tx,
            body.0.queue.as_str(),
            body.0.failed_since,
            &key.0.name,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Json(Retried { retried }))
    }

    /// Discard a failed job for good, with a reason: its row goes, its payload and last
    /// error stay in the record of the action. A job that is not failed is 409
    /// `JOB_NOT_FAILED`.
    #[oai(
        path = "/jobs/:job_id/discard",
        method = "post",
        operation_id = "discardJob"
    )]
    async fn discard_job(
        &self,
        key: AdminKey,
        state: Data<&AppState>,
        /// The job.
        job_id: Path<Text<JobIdText>>,
        body: JsonBody<DiscardJob>,
    ) -> Result<Json<JobView>, ApiError> {
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let row = operations::discard(
            &mut tx,
            job_id.0.as_str(),
            body.0.reason.as_str(),
            &key.0.name,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Json(row.into()))
    }

    /// What operators did to a job: retries and discards, who and when, newest first.
    #[oai(
        path = "/jobs/:job_id/actions",
        method = "get",
        operation_id = "listJobActions"
    )]
    async fn job_actions(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        /// The job.
        job_id: Path<Text<JobIdText>>,
    ) -> Result<Json<Vec<JobActionView>>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let actions = operations::actions(&mut conn, job_id.0.as_str()).await?;
        Ok(Json(
            actions
                .into_iter()
                .map(|a| JobActionView {
                    job_id: a.job_id,
                    queue: a.queue,
                    action: a.action,
                    actor: a.actor,
                    reason: a.reason,
                    at: a.at,
                })
                .collect(),
        ))
    }

    /// Retry failed jobs: each gets a fresh set of attempts and runs now.
    #[oai(path = "/jobs/retry", method = "post", operation_id = "retryJobs")]
    async fn retry_jobs(
        &self,
        key: AdminKey,
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
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let outcome = operations::retry(&mut tx, ids, &key.0.name, now).await?;
        tx.commit().await?;
        Ok(Json(RetryOutcome {
            retried: outcome.retried,
            skipped: outcome.skipped,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_can_be_named() {
        let named: Vec<&str> = [
            QueueName::SendEmail,
            QueueName::GrantSignupCredit,
            QueueName::ExpireSignupCredit,
            QueueName::MakeCommissionEligible,
            QueueName::PayCommission,
            QueueName::ReverseCommission,
            QueueName::SendPayoutTransfer,
            QueueName::ReversePayoutTransfer,
            QueueName::Reconcile,
        ]
        .into_iter()
        .map(QueueName::as_str)
        .collect();
        assert_eq!(named, referral_core::jobs::ALL_QUEUES);
    }
}
