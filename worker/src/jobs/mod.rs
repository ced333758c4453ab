//! One handler per job. Each re-reads state and does nothing when its work is done or
//! no longer applies, because delivery is at-least-once.

mod expire_signup_credit;
mod grant_signup_credit;
mod make_commission_eligible;
mod pay_commission;
pub mod reconcile;
mod reverse_commission;
mod reverse_payout_transfer;
mod send_email;
mod send_payout_transfer;

use referral_core::usecases::commissions::Step;

use crate::runtime::JobOutcome;

/// How a step of a commission's life ends a job.
fn step_outcome(step: Step) -> JobOutcome {
    match step {
        Step::Done(commission) => {
            tracing::info!(commission_id = %commission.id, status = ?commission.status, amount = %commission.amount, "commission moved");
            JobOutcome::Done
        }
        Step::Skipped(_) => JobOutcome::Skipped("commission already past this step"),
        Step::NotYetDue(due_at) => JobOutcome::NotYetDue(due_at),
    }
}
