//! `ExpireSignupCredit`: the 30-day timer that removes what is left of a signup grant.

use referral_core::jobs::ExpireSignupCredit;
use referral_core::usecases::credit::{self, ExpireOutcome};

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for ExpireSignupCredit {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = env.clock.now();
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let outcome = credit::expire_signup_credit(&mut tx, now, self.user_id, self.due_at).await?;
        tx.commit().await.map_err(JobError::transient)?;
        match outcome {
            ExpireOutcome::Expired { removed } => {
                tracing::info!(user_id = %self.user_id, %removed, "signup credit expired");
                Ok(JobOutcome::Done)
            }
            ExpireOutcome::AlreadyExpired => Ok(JobOutcome::Skipped("already expired")),
            ExpireOutcome::NotYetDue(due_at) => Ok(JobOutcome::NotYetDue(due_at)),
            // The grant is enqueued with this timer; it has not run yet (or is retrying).
            ExpireOutcome::NoGrantYet => Err(JobError::transient("signup credit not granted yet")),
        }
    }
}
