//! `PayCommission`: credits an eligible commission where its track sends it, once.

use referral_core::jobs::PayCommission;
use referral_core::telemetry;
use referral_core::usecases::commissions::{self, Step};

use crate::jobs::step_outcome;
use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for PayCommission {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = env.clock.now();
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let step = commissions::pay(&mut tx, now, self.commission_id).await?;
        tx.commit().await.map_err(JobError::transient)?;
        if let Step::Done(commission) = &step {
            telemetry::money_moved("commission_paid", commission.amount);
        }
        Ok(step_outcome(step))
    }
}
