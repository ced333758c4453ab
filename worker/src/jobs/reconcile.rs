//! `Reconcile`: one sweep, then the next one scheduled, once per slot across all workers.

use referral_core::jobs::Reconcile;
use referral_core::usecases::reconcile;

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for Reconcile {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let report =
            reconcile::sweep(&env.pool, &env.stripe, env.clock.now(), &env.sweep.settings).await?;
        tracing::info!(slot = %self.slot, ?report, "reconciliation sweep done");
        schedule_next(env).await?;
        Ok(JobOutcome::Done)
    }
}

/// Schedules the next sweep unless another worker did (see
/// [`reconcile::schedule_next`]); returns whether this call did.
pub async fn schedule_next(env: &JobEnv) -> Result<bool, JobError> {
    Ok(reconcile::schedule_next(&env.pool, env.sweep.interval).await?)
}
