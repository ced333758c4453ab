//! `/healthz` (the process answers) and `/readyz` (and can reach the database).

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes::Tag;
use referral_core::usecases::operations;

/// Health endpoints.
pub struct HealthApi;

/// A health answer.
#[derive(Debug, Object)]
pub struct HealthStatus {
    /// `ok` or `ready`.
    pub status: String,
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".into(),
        })
    }

    /// Readiness: the database answers.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> Result<Json<HealthStatus>, ApiError> {
        operations::database_answers(&state.pool)
            .await
            .map_err(|e| {
                tracing::warn!(error = ?e, "readiness check failed");
                ApiError::new(
                    ErrorCode::DatabaseUnavailable,
                    "the database does not answer",
                )
            })?;
        Ok(Json(HealthStatus {
            status: "ready".into(),
        }))
    }
}
