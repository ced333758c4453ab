//! The life of a commission after its purchase (SPEC: Purchases and commission, Jobs):
//! the 30-day timer makes it eligible, a payment job pays it, and a refund job cancels,
//! reduces or reverses it. Each runs in the caller's transaction with the commission
//! locked, re-reads its state and does nothing when its work is done or no longer
//! applies, so a job delivered twice, concurrently or after a crash, acts once.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::commission::{self, CommissionStatus};
use crate::domain::ledger::{Account, Concerning, EntryKind, Posting};
use crate::error::StoreError;
use crate::ids::{CommissionId, CreditGrantId, RefundId};
use crate::jobs::{self, PayCommission};
use crate::money::Money;
use crate::mutants::{self, Mutant};
use crate::store::commissions;

pub use crate::domain::commission::Commission;
use crate::store::credit;
use crate::store::purchases;
use crate::usecases::ledger;

/// What a step of a commission's life did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It moved; the commission as it is now.
    Done(Commission),
    /// Its work was done before, or no longer applies (the status it found).
    Skipped(CommissionStatus),
    /// Too early: the hold ends at this instant.
    NotYetDue(DateTime<Utc>),
}

/// What a commission's ledger entries concern.
fn concerning(commission: &Commission) -> Concerning {
    Concerning {
        commission_id: Some(commission.id),
        ..Concerning::default()
    }
}

/// What the entries of a commission paid as wallet credit concern: the commission and
/// that credit's grant, whose remaining amount is the sum of its entries.
fn concerning_credit(commission: &Commission, grant: CreditGrantId) -> Concerning {
    Concerning {
        credit_grant_id: Some(grant),
        ..concerning(commission)
    }
}

async fn locked(conn: &mut PgConnection, id: CommissionId) -> Result<Commission, StoreError> {
    commissions::lock(conn, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("commission {id} not found")))
}

/// Locks the commission and, when `transition` applies to it and its 30-day hold is over
/// by `now`, brings it in line with every refund recorded so far, so that a refund
/// whose own job has not run yet still counts: nothing refunded is ever made eligible or
/// paid. Answers the commission and the status it moves to, or the step to end with.
async fn prepare(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    id: CommissionId,
    transition: fn(CommissionStatus) -> Result<CommissionStatus, commission::NotApplicable>,
) -> Result<Result<(Commission, CommissionStatus), Step>, StoreError> {
    let mut commission = locked(conn, id).await?;
    if transition(commission.status).is_err() {
        return Ok(Err(Step::Skipped(commission.status)));
    }
    if now < commission.eligible_at && !mutants::planted(Mutant::HoldUnchecked) {
        return Ok(Err(Step::NotYetDue(commission.eligible_at)));
    }
    settle_refunds(conn, now, &mut commission, None).await?;
    Ok(match transition(commission.status) {
        Ok(next) => Ok((commission, next)),
        Err(_) => Err(Step::Skipped(commission.status)),
    })
}

/// The hold is over: `PENDING` → `ELIGIBLE`, and its payment is enqueued.
pub async fn make_eligible(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    id: CommissionId,
) -> Result<Step, StoreError> {
    let (mut commission, next) = match prepare(conn, now, id, commission::make_eligible).await? {
        Ok(ready) => ready,
        Err(step) => return Ok(step),
    };
    ledger::post(
        conn,
        &Posting::transfer(
            commission.referrer_id,
            EntryKind::CommissionEligible,
            concerning(&commission),
            Account::CommissionPending,
            Account::CommissionEligible,
            commission.amount,
            now,
        ),
    )
    .await?;
    commission.status = next;
    commissions::update_state(conn, &commission).await?;
    jobs::enqueue_now(conn, &PayCommission { commission_id: id }).await?;
    Ok(Step::Done(commission))
}

/// Pays an eligible commission where its track sent it when it was earned: Basic into the
/// wallet as credit that never expires, Partner into the referral balance.
///
/// The hold is checked again here, by the paying process's own clock: the process that
/// ended it may run ahead of this one (clock skew between machines; locally, a worker yet
/// to see the clock move), and no process may pay what by its clock is still on hold.
pub async fn pay(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    id: CommissionId,
) -> Result<Step, StoreError> {
    let (mut commission, next) = match prepare(conn, now, id, commission::pay).await? {
        Ok(ready) => ready,
        Err(step) => return Ok(step),
    };
    let amount = commission.amount;
    let paid = match commission.destination {
        // Wallet credit is a grant of its own that never expires: the commission leaves
        // the eligible account, and arrives as that grant's credit.
        Account::Wallet => {
            ledger::post(
                conn,
                &Posting::outflow(
                    commission.referrer_id,
                    EntryKind::CommissionPaid,
                    concerning(&commission),
                    Account::CommissionEligible,
                    amount,
                    now,
                ),
            )
            .await?;
            let grant =
                credit::insert_commission_grant(conn, commission.referrer_id, amount, now).await?;
            commission.credit_grant_id = Some(grant);
            Posting::inflow(
                commission.referrer_id,
                EntryKind::CommissionPaid,
                concerning_credit(&commission, grant),
                Account::Wallet,
                amount,
                now,
            )
        }
        Account::ReferralBalance => Posting::transfer(
            commission.referrer_id,
            EntryKind::CommissionPaid,
            concerning(&commission),
            Account::CommissionEligible,
            Account::ReferralBalance,
            amount,
            now,
        ),
        other @ (Account::CommissionPending
        | Account::CommissionEligible
        | Account::PayoutInFlight) => {
            return Err(StoreError::Corrupt(format!(
                "commission {id} is paid to {other:?}"
            )));
        }
    };
    ledger::post(conn, &paid).await?;
    commission.status = next;
    commission.paid_at = Some(now);
    commissions::update_state(conn, &commission).await?;
    Ok(Step::Done(commission))
}

/// Applies a refund to its purchase's commission, once: before payment it is cancelled
/// (or reduced, for a partial refund); after payment it is taken back from where it was
/// paid, even below zero.
pub async fn apply_refund(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    refund_id: RefundId,
) -> Result<Step, StoreError> {
    let refund = purchases::lock_refund(conn, refund_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("refund {refund_id} not found")))?;
    let Some(found) = commissions::of_purchase(conn, refund.purchase_id).await? else {
        return Err(StoreError::Corrupt(format!(
            "refund {refund_id} has no commission"
        )));
    };
    let mut commission = locked(conn, found.id).await?;
    if refund.applied_at.is_some() {
        return Ok(Step::Skipped(commission.status));
    }
    purchases::mark_refund_applied(conn, refund_id, now).await?;
    let counted_again = if mutants::planted(Mutant::ClawbackTwice) {
        Some(refund.amount)
    } else {
        None
    };
    if !settle_refunds(conn, now, &mut commission, counted_again).await? {
        return Ok(Step::Skipped(commission.status));
    }
    Ok(Step::Done(commission))
}

/// Brings a (locked) commission in line with every refund of its purchase recorded so
/// far: the commission is the rate times the cash not refunded. Whichever runs first, a
/// refund's own job or the commission's timer or payment, applies it; the others then
/// find nothing left to do. Returns whether the commission changed. `counted_again` is
/// only ever set by the planted [`Mutant::ClawbackTwice`].
async fn settle_refunds(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    commission: &mut Commission,
    counted_again: Option<Money>,
) -> Result<bool, StoreError> {
    let purchase = purchases::get(conn, commission.purchase_id).await?;
    let refunded = match counted_again {
        Some(again) => purchase.refunded.checked_add(again)?,
        None => purchase.refunded,
    };
    let effect = commission::after_refund(
        commission.status,
        commission.cash,
        commission.rate,
        commission.amount,
        refunded,
        commission.destination,
    )?;
    let Some(from) = effect.from else {
        return Ok(false);
    };
    let kind = match commission.status {
        CommissionStatus::Paid => EntryKind::CommissionReversed,
        CommissionStatus::Pending
        | CommissionStatus::Eligible
        | CommissionStatus::Cancelled
        | CommissionStatus::Reversed => EntryKind::CommissionCancelled,
    };
    match (from, commission.credit_grant_id) {
        (Account::Wallet, Some(grant)) => {
            ledger::post(
                conn,
                &Posting::outflow(
                    commission.referrer_id,
                    kind,
                    concerning_credit(commission, grant),
                    Account::Wallet,
                    effect.reduction,
                    now,
                ),
            )
            .await?;
            credit::take_back_commission_credit(conn, grant, effect.reduction).await?;
        }
        (Account::Wallet, None) => {
            return Err(StoreError::Corrupt(format!(
                "commission {} paid to the wallet without credit",
                commission.id
            )));
        }
        (
            Account::ReferralBalance | Account::CommissionPending | Account::CommissionEligible,
            _,
        ) => {
            ledger::post(
                conn,
                &Posting::outflow(
                    commission.referrer_id,
                    kind,
                    concerning(commission),
                    from,
                    effect.reduction,
                    now,
                ),
            )
            .await?;
        }
        (Account::PayoutInFlight, _) => {
            return Err(StoreError::Corrupt(format!(
                "commission {} sits in the payout account",
                commission.id
            )));
        }
    }
    commission.amount = effect.amount_after;
    if effect.status_after != commission.status {
        commission.status = effect.status_after;
        commission.closed_at = Some(now);
    }
    commissions::update_state(conn, commission).await?;
    tracing::info!(commission_id = %commission.id, reduction = %effect.reduction, status = ?commission.status, "refund applied to commission");
    Ok(true)
}
