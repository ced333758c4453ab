//! The reconciliation sweep (SPEC: Jobs — "or a sweeper finds and schedules what is
//! missing"), run periodically by the `reconcile` job: business rows whose timer or job
//! is missing or overdue get it scheduled, payouts whose webhook never came are asked of
//! Stripe, and finished jobs past their retention are deleted in small batches.
//!
//! Every job is idempotent, so scheduling one that turns out to exist after all costs a
//! no-op run, never a second effect.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::domain::payout::PayoutStatus;
use crate::error::StoreError;
use crate::jobs::{
    self, ExpireSignupCredit, MakeCommissionEligible, PayCommission, Reconcile, SendPayoutTransfer,
};
use crate::payments::{BankPayoutState, PaymentProvider};
use crate::store::jobs as jobs_store;
use crate::store::{payouts, reconcile};
use crate::usecases::payouts::{EventOutcome, settle_found};

/// How the sweep judges "overdue" and "old".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSettings {
    /// How late a timer or job may be before it counts as missing: a busy queue is late
    /// by seconds, a lost job forever.
    pub grace: Duration,
    /// How long finished jobs are kept.
    pub done_retention: Duration,
    /// Rows handled per category and sweep, and jobs deleted per statement.
    pub batch: i64,
    /// Days past the latest expected arrival before a payout is asked of Stripe.
    pub payout_slack_days: u64,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            grace: Duration::minutes(10),
            done_retention: Duration::days(7),
            batch: 500,
            payout_slack_days: 2,
        }
    }
}

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Commission timers scheduled again.
    pub commission_timers: usize,
    /// Commission payments scheduled again.
    pub commission_payments: usize,
    /// Signup-credit expiry timers scheduled again.
    pub expiry_timers: usize,
    /// Payout jobs scheduled again.
    pub payout_jobs: usize,
    /// Overdue payouts Stripe said were paid or failed, settled here.
    pub payouts_settled: usize,
    /// Overdue payouts still on their way at Stripe, or that Stripe could not tell.
    pub payouts_still_open: usize,
    /// Finished jobs deleted.
    pub done_jobs_deleted: u64,
}

impl SweepReport {
    /// Whether the sweep had to fix anything.
    pub fn fixed_anything(&self) -> bool {
        self.commission_timers
            + self.commission_payments
            + self.expiry_timers
            + self.payout_jobs
            + self.payouts_settled
            > 0
    }
}

/// Runs one sweep at business time `now`.
pub async fn sweep(
    pool: &PgPool,
    stripe: &impl PaymentProvider,
    now: DateTime<Utc>,
    settings: &SweepSettings,
) -> Result<SweepReport, StoreError> {
    // Retention is measured on the database's clock, which apalis stamps `done_at` by.
    let db_now = jobs_store::database_now(&mut *pool.acquire().await?).await?;
    let overdue_before = now - settings.grace;
    let mut report = SweepReport::default();
    let mut tx = pool.begin().await?;

    for (commission_id, due_at) in
        reconcile::pending_commissions_without_timer(&mut tx, overdue_before, settings.batch)
            .await?
    {
        tracing::warn!(%commission_id, %due_at, "commission timer missing; scheduled again");
        jobs::enqueue_now(
            &mut tx,
            &MakeCommissionEligible {
                commission_id,
                due_at,
            },
        )
        .await?;
        report.commission_timers += 1;
    }
    for commission_id in
        reconcile::eligible_commissions_without_payment(&mut tx, overdue_before, settings.batch)
            .await?
    {
        tracing::warn!(%commission_id, "commission payment missing; scheduled again");
        jobs::enqueue_now(&mut tx, &PayCommission { commission_id }).await?;
        report.commission_payments += 1;
    }
    for (user_id, due_at) in
        reconcile::grants_past_expiry_without_timer(&mut tx, overdue_before, settings.batch).await?
    {
        tracing::warn!(%user_id, %due_at, "credit expiry timer missing; scheduled again");
        jobs::enqueue_now(&mut tx, &ExpireSignupCredit { user_id, due_at }).await?;
        report.expiry_timers += 1;
    }
    for payout_id in
        reconcile::requested_payouts_without_job(&mut tx, overdue_before, settings.batch).await?
    {
        tracing::warn!(%payout_id, "payout job missing; scheduled again");
        jobs::enqueue_now(&mut tx, &SendPayoutTransfer { payout_id }).await?;
        report.payout_jobs += 1;
    }
    tx.commit().await?;

    settle_overdue_payouts(pool, stripe, now, settings, &mut report).await?;

    let before = db_now - settings.done_retention;
    loop {
        let deleted =
            reconcile::delete_done_jobs(&mut *pool.acquire().await?, before, settings.batch)
                .await?;
        report.done_jobs_deleted += deleted;
        if deleted < u64::try_from(settings.batch).unwrap_or(u64::MAX) {
            break;
        }
    }
    if report.fixed_anything() {
        tracing::warn!(?report, "reconciliation fixed what was missing");
    } else {
        tracing::info!(?report, "reconciliation found nothing missing");
    }
    Ok(report)
}

/// Schedules the sweep of the next slot boundary unless some process did. Slots are
/// multiples of `interval` on the database's clock (not the business clock, which a
/// local installation may move by days), so every worker names the same next slot; the
/// slot is the job's idempotency key. Called after each sweep and at worker start, which
/// makes the first one and revives the chain if it ever broke. Returns whether this call
/// scheduled it.
pub async fn schedule_next(pool: &PgPool, interval: Duration) -> Result<bool, StoreError> {
    let mut conn = pool.acquire().await?;
    let db_now = jobs_store::database_now(&mut conn).await?;
    let interval = interval.num_seconds().max(1);
    let next = (db_now.timestamp() / interval + 1) * interval;
    let slot = DateTime::from_timestamp(next, 0).unwrap_or(db_now);
    jobs::enqueue_once_at(&mut conn, &Reconcile { slot }, slot, &next.to_string()).await
}

/// Asks Stripe about payouts still `PROCESSING` days after their latest expected arrival,
/// and settles those Stripe says are paid or failed, as their webhook would have.
async fn settle_overdue_payouts(
    pool: &PgPool,
    stripe: &impl PaymentProvider,
    now: DateTime<Utc>,
    settings: &SweepSettings,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let before = now
        .date_naive()
        .checked_sub_days(chrono::Days::new(settings.payout_slack_days))
        .unwrap_or(now.date_naive());
    let overdue =
        reconcile::payouts_past_arrival(&mut *pool.acquire().await?, before, settings.batch)
            .await?;
    for payout_id in overdue {
        let Some(payout) = payouts::lock(&mut *pool.acquire().await?, payout_id).await? else {
            continue;
        };
        let Some(stripe_payout_id) = payout.stripe_payout_id.as_deref() else {
            continue;
        };
        let state = match stripe
            .bank_payout_state(&payout.stripe_account_id, stripe_payout_id)
            .await
        {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%payout_id, %error, "cannot ask Stripe about an overdue payout");
                report.payouts_still_open += 1;
                continue;
            }
        };
        let failure = match state {
            BankPayoutState::Paid => None,
            BankPayoutState::Failed(reason) => Some(reason),
            BankPayoutState::OnItsWay(status) => {
                tracing::warn!(%payout_id, %status, "overdue payout still on its way at Stripe");
                report.payouts_still_open += 1;
                continue;
            }
        };
        let mut tx = pool.begin().await?;
        let Some(payout) = payouts::lock(&mut tx, payout_id).await? else {
            continue;
        };
        if payout.status != PayoutStatus::Processing {
            continue;
        }
        if settle_found(&mut tx, now, &payout, failure.as_deref()).await? == EventOutcome::Applied {
            tracing::warn!(%payout_id, paid = failure.is_none(), "overdue payout settled from Stripe's answer");
            report.payouts_settled += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}
