//! `Reconcile`: one sweep, then the next one scheduled, once per slot across all workers.

use chrono::{DateTime, Utc};
use referral_core::jobs::{self, Reconcile};
use referral_core::store::jobs as jobs_store;
use referral_core::usecases::reconcile;

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for Reconcile {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let db_now = database_now(env).await?;
        let report = reconcile::sweep(
            &env.pool,
            &env.stripe,
            env.clock.now(),
            db_now,
            &env.sweep.settings,
        )
        .await?;
        tracing::info!(slot = %self.slot, ?report, "reconciliation sweep done");
        schedule_next(env).await?;
        Ok(JobOutcome::Done)
    }
}

async fn database_now(env: &JobEnv) -> Result<DateTime<Utc>, JobError> {
    let mut conn = env.pool.acquire().await.map_err(JobError::transient)?;
    Ok(jobs_store::database_now(&mut conn).await?)
}

/// Schedules the sweep of the next slot boundary unless some worker did. Slots are
/// multiples of the interval on the database's clock (not the business clock, which a
/// local installation may move by days), so every worker names the same next slot; the
/// slot is the job's idempotency key. Called after each sweep and at worker start, which
/// makes the first one and revives the chain if it ever broke.
pub async fn schedule_next(env: &JobEnv) -> Result<bool, JobError> {
    let db_now = database_now(env).await?;
    let interval = env.sweep.interval.num_seconds().max(1);
    let next = (db_now.timestamp() / interval + 1) * interval;
    let slot = DateTime::from_timestamp(next, 0).unwrap_or(db_now);
    let mut conn = env.pool.acquire().await.map_err(JobError::transient)?;
    let key = next.to_string();
    Ok(jobs::enqueue_once_at(&mut conn, &Reconcile { slot }, slot, &key).await?)
}
