//! `MakeCommissionEligible`: the 30-day timer that makes a commission payable.

use referral_core::jobs::MakeCommissionEligible;
use referral_core::usecases::commissions;

use crate::jobs::step_outcome;
use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for MakeCommissionEligible {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = env.clock.now();
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let step = commissions::make_eligible(&mut tx, now, self.commission_id).await?;
        tx.commit().await.map_err(JobError::transient)?;
        Ok(step_outcome(step))
    }
}
