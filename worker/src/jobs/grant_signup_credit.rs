//! `GrantSignupCredit`: $2.50 into an attributed user's wallet, once.

use referral_core::jobs::GrantSignupCredit;
use referral_core::usecases::credit::{self, GrantOutcome};

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for GrantSignupCredit {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = env.clock.now();
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let outcome =
            credit::grant_signup_credit(&mut tx, now, &env.settings, self.user_id).await?;
        tx.commit().await.map_err(JobError::transient)?;
        Ok(match outcome {
            GrantOutcome::Granted(grant) => {
                tracing::info!(user_id = %self.user_id, grant_id = %grant.id, "signup credit granted");
                JobOutcome::Done
            }
            GrantOutcome::AlreadyGranted => JobOutcome::Skipped("already granted"),
            GrantOutcome::NotAttributed => JobOutcome::Skipped("signup not attributed"),
        })
    }
}
