//! `SendPayoutTransfer`: sends a requested payout through Stripe, once.

use referral_core::jobs::SendPayoutTransfer;
use referral_core::telemetry;
use referral_core::usecases::payouts::{self, PayoutError, Sent};

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for SendPayoutTransfer {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let clock = env.clock.clone();
        let sent = payouts::send(&env.pool, &env.stripe, move || clock.now(), self.payout_id)
            .await
            .map_err(|error| match error {
                PayoutError::Store(error) => JobError::from(error),
                // Stripe errors that will not heal already failed the payout; what is
                // left (network, 5xx, rate limits) heals with time.
                other => JobError::transient(other),
            })?;
        Ok(match sent {
            Sent::Processing(payout) => {
                telemetry::money_moved("payout_sent", payout.amount);
                JobOutcome::Done
            }
            Sent::Failed(payout) => {
                telemetry::money_moved("payout_failed", payout.amount);
                JobOutcome::Done
            }
            Sent::Skipped(_) => JobOutcome::Skipped("payout already sent or settled"),
        })
    }
}
