//! `ReverseCommission`: applies a refund to its purchase's commission, once.

use referral_core::jobs::ReverseCommission;
use referral_core::usecases::commissions;

use crate::jobs::step_outcome;
use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for ReverseCommission {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = env.clock.now();
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let step = commissions::apply_refund(&mut tx, now, self.refund_id).await?;
        tx.commit().await.map_err(JobError::transient)?;
        Ok(step_outcome(step))
    }
}
