//! `/healthz` (the process answers) and `/readyz` (and can reach the database).

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes::Tag;
use referral_core::telemetry;
use referral_core::usecases::operations;

use crate::auth::AdminKey;

/// Health endpoints.
pub struct HealthApi;

/// A health answer.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HealthStatus {
    /// `ok` or `ready`.
    pub status: String,
    /// Readiness only: each job queue's backlog.
    pub queues: Option<Vec<QueueBacklog>>,
}

/// A job queue's backlog.
#[derive(Debug, Object)]
pub struct QueueBacklog {
    /// Queue name.
    pub queue: String,
    /// Jobs due and waiting for a worker.
    pub due: i64,
    /// How long the oldest due job has waited, in seconds.
    pub oldest_due_seconds: f64,
    /// Jobs due later (timers, retries waiting out their backoff).
    pub scheduled: i64,
    /// Jobs failed for good, waiting for an operator.
    pub failed: i64,
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".into(),
            queues: None,
        })
    }

    /// Readiness: the database answers; with each job queue's backlog.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> Result<Json<HealthStatus>, ApiError> {
        let unavailable = |e: referral_core::StoreError| {
            tracing::warn!(error = ?e, "readiness check failed");
            ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database does not answer",
            )
        };
        operations::database_answers(&state.pool)
            .await
            .map_err(unavailable)?;
        let backlog = operations::backlog(&state.pool)
            .await
            .map_err(unavailable)?;
        Ok(Json(HealthStatus {
            status: "ready".into(),
            queues: Some(
                backlog
                    .into_iter()
                    .map(|q| QueueBacklog {
                        queue: q.queue,
                        due: q.due,
                        oldest_due_seconds: q.oldest_due_seconds,
                        scheduled: q.scheduled,
                        failed: q.failed,
                    })
                    .collect(),
            ),
        }))
    }
}

/// Prometheus metrics, for operators.
pub struct MetricsApi;

#[OpenApi(tag = "Tag::Operations")]
impl MetricsApi {
    /// Prometheus metrics (admin key): HTTP requests by operation and status with latency
    /// histograms, job attempts by queue and outcome with durations, money moved by
    /// kind, and each queue's backlog read at this scrape.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
    ) -> Result<PlainText<String>, ApiError> {
        Ok(PlainText(telemetry::render(&state.pool).await?))
    }
}
