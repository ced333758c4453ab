//! Local time travel (`DEV_TIME_TRAVEL`): move a local installation's clock forward so
//! 30-day timers can be watched firing. Everywhere else it answers 404.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use referral_core::dev_time;

use crate::AppState;
use crate::auth::AdminKey;
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorCode};
use crate::fields::Bounded;
use crate::routes::Tag;

/// Development endpoints.
pub struct DevApi;

/// How far to move the development clock; nothing moves it by zero and only starts the
/// timers already due.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Days to move forward (0–3650).
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub days: Option<Bounded<0, 3650>>,
    /// Hours to move forward (0–87600).
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub hours: Option<Bounded<0, 87600>>,
}

impl Example for AdvanceClock {
    fn example() -> Self {
        Self {
            days: Some(Bounded(30)),
            hours: None,
        }
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

#[OpenApi(prefix_path = "/v1/admin", tag = "Tag::Operations")]
impl DevApi {
    /// Development only (`DEV_TIME_TRAVEL=true`): move the service's clock forward, so a
    /// local installation can watch 30-day timers fire. Timers due by the new time run at
    /// once. Answers 404 `DEV_TIME_TRAVEL_DISABLED` everywhere else.
    #[oai(
        path = "/dev/advance-clock",
        method = "post",
        operation_id = "advanceDevClock"
    )]
    async fn advance_clock(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        body: JsonBody<AdvanceClock>,
    ) -> Result<Json<ClockAdvanced>, ApiError> {
        let Some(dev_clock) = &state.dev_clock else {
            return Err(ApiError::new(
                ErrorCode::DevTimeTravelDisabled,
                "the clock can only be moved on a local installation started with DEV_TIME_TRAVEL=true",
            ));
        };
        // Both bounded, so the sum cannot overflow.
        let by = chrono::Duration::days(body.0.days.map_or(0, |d| d.0))
            + chrono::Duration::hours(body.0.hours.map_or(0, |h| h.0));
        let advanced = dev_time::advance(&state.pool, dev_clock, by).await?;
        Ok(Json(ClockAdvanced {
            now: advanced.now,
            offset_seconds: advanced.offset.num_seconds(),
            jobs_made_due: advanced.jobs_made_due,
        }))
    }
}
