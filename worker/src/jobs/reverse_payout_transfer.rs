//! `ReversePayoutTransfer`: takes a failed payout's money back from the connected
//! account, once.

use referral_core::jobs::ReversePayoutTransfer;
use referral_core::usecases::payouts::{self, PayoutError, Reversed};

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for ReversePayoutTransfer {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let clock = env.clock.clone();
        match payouts::reverse_transfer(&env.pool, &env.stripe, move || clock.now(), self.payout_id)
            .await
        {
            Ok(Reversed::Done(_)) => Ok(JobOutcome::Done),
            Ok(Reversed::Skipped) => Ok(JobOutcome::Skipped("nothing to reverse")),
            // Refused for good (the money already left the account): an operator decides,
            // and a retry of theirs goes out under a new idempotency key.
            Err(PayoutError::Stripe(error)) if error.is_permanent() => {
                Err(JobError::permanent(error))
            }
            Err(PayoutError::Store(error)) => Err(JobError::from(error)),
            Err(other) => Err(JobError::transient(other)),
        }
    }
}
