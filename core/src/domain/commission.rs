//! Commission on referred purchases (SPEC: Purchases and commission): which purchases
//! qualify, what they earn, how a commission moves from `PENDING` to `PAID`, and what a
//! refund does to it.

use chrono::{DateTime, Utc};

use crate::domain::ledger::Account;
use crate::ids::{CommissionId, CreditGrantId, PurchaseId, UserId};
use crate::money::{Money, MoneyError, Rate};
use crate::settings::ProgramSettings;

/// A user's commission track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Track {
    /// Everyone: commission is paid as platform credit.
    Basic,
    /// Partners: commission is paid as withdrawable cash.
    Partner,
}

impl Track {
    /// The commission rate of this track.
    pub fn rate(self, settings: &ProgramSettings) -> Rate {
        match self {
            Track::Basic => settings.basic_rate,
            Track::Partner => settings.partner_rate,
        }
    }

    /// Where this track's commissions are paid.
    pub fn destination(self) -> Account {
        match self {
            Track::Basic => Account::Wallet,
            Track::Partner => Account::ReferralBalance,
        }
    }
}

/// Whether the payment of a purchase went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentOutcome {
    /// Paid.
    Succeeded,
    /// Not paid.
    Failed,
}

/// Why a purchase earns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoCommission {
    /// The buyer was not referred.
    #[error("the buyer was not referred")]
    NotReferred,
    /// The payment failed.
    #[error("the payment failed")]
    PaymentFailed,
    /// The cash part (amount minus credit applied) is under the minimum.
    #[error("the cash part is under the qualifying minimum")]
    BelowMinimum,
}

/// A commission to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCommission {
    /// What the buyer paid in cash (amount − credit applied).
    pub cash: Money,
    /// The referrer's rate at the moment of the purchase.
    pub rate: Rate,
    /// The referrer's track at that moment.
    pub track: Track,
    /// What it earns.
    pub amount: Money,
    /// When it becomes payable.
    pub eligible_at: DateTime<Utc>,
}

/// What a purchase by a referred user earns their referrer, decided when it happens.
pub fn on_purchase(
    outcome: PaymentOutcome,
    cash: Money,
    referrer_track: Option<Track>,
    purchased_at: DateTime<Utc>,
    settings: &ProgramSettings,
) -> Result<NewCommission, NoCommission> {
    let track = referrer_track.ok_or(NoCommission::NotReferred)?;
    if outcome == PaymentOutcome::Failed {
        return Err(NoCommission::PaymentFailed);
    }
    if cash < settings.minimum_qualifying_cash {
        return Err(NoCommission::BelowMinimum);
    }
    let rate = track.rate(settings);
    Ok(NewCommission {
        cash,
        rate,
        track,
        amount: cash.apply_rate(rate),
        eligible_at: purchased_at + settings.commission_hold,
    })
}

/// Where a commission stands (SPEC: `PENDING` → `ELIGIBLE` → `PAID`, or `CANCELLED` /
/// `REVERSED` after a refund).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommissionStatus {
    /// Earned, inside the 30-day hold.
    Pending,
    /// Past the hold, about to be paid.
    Eligible,
    /// Credited to the referrer.
    Paid,
    /// Refunded in full before it was paid.
    Cancelled,
    /// Refunded in full after it was paid, and taken back.
    Reversed,
}

impl CommissionStatus {
    /// Every status, for exhaustive tests and listings.
    pub const ALL: [CommissionStatus; 5] = [
        CommissionStatus::Pending,
        CommissionStatus::Eligible,
        CommissionStatus::Paid,
        CommissionStatus::Cancelled,
        CommissionStatus::Reversed,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommissionStatus::Pending => "PENDING",
            CommissionStatus::Eligible => "ELIGIBLE",
            CommissionStatus::Paid => "PAID",
            CommissionStatus::Cancelled => "CANCELLED",
            CommissionStatus::Reversed => "REVERSED",
        }
    }

    /// The ledger account holding the commission while it has this status, if it is not
    /// paid out yet.
    pub fn holding_account(self) -> Option<Account> {
        match self {
            CommissionStatus::Pending => Some(Account::CommissionPending),
            CommissionStatus::Eligible => Some(Account::CommissionEligible),
            CommissionStatus::Paid | CommissionStatus::Cancelled | CommissionStatus::Reversed => {
                None
            }
        }
    }
}

/// A transition that does not apply to a commission's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} commission cannot become {to:?}")]
pub struct NotApplicable {
    /// The current status.
    pub from: CommissionStatus,
    /// The status asked for.
    pub to: CommissionStatus,
}

/// The hold is over: `PENDING` → `ELIGIBLE`.
pub fn make_eligible(status: CommissionStatus) -> Result<CommissionStatus, NotApplicable> {
    match status {
        CommissionStatus::Pending => Ok(CommissionStatus::Eligible),
        from @ (CommissionStatus::Eligible
        | CommissionStatus::Paid
        | CommissionStatus::Cancelled
        | CommissionStatus::Reversed) => Err(NotApplicable {
            from,
            to: CommissionStatus::Eligible,
        }),
    }
}

/// Credited: `ELIGIBLE` → `PAID`.
pub fn pay(status: CommissionStatus) -> Result<CommissionStatus, NotApplicable> {
    match status {
        CommissionStatus::Eligible => Ok(CommissionStatus::Paid),
        from @ (CommissionStatus::Pending
        | CommissionStatus::Paid
        | CommissionStatus::Cancelled
        | CommissionStatus::Reversed) => Err(NotApplicable {
            from,
            to: CommissionStatus::Paid,
        }),
    }
}

/// What a refund does to a commission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundEffect {
    /// How much the commission loses (zero when nothing changes).
    pub reduction: Money,
    /// What the commission is worth afterwards.
    pub amount_after: Money,
    /// Its status afterwards.
    pub status_after: CommissionStatus,
    /// The account the reduction comes out of: where the commission sits or was paid.
    pub from: Option<Account>,
}

/// The commission after `refunded_total` of its purchase's cash has been refunded: the
/// rate applied to the cash that is left, with the same single rounding as at purchase
/// time (half away from zero, to the cent). Recomputing from the remaining cash, rather
/// than rounding each refund's share, means a purchase refunded in parts loses exactly
/// its whole commission once fully refunded.
pub fn after_refund(
    status: CommissionStatus,
    cash: Money,
    rate: Rate,
    current: Money,
    refunded_total: Money,
    destination: Account,
) -> Result<RefundEffect, MoneyError> {
    let zero = Money::zero(cash.currency());
    let cash_left = cash.checked_sub(refunded_total)?.max(zero)?;
    // Never more than it is worth now: earlier refunds already took their part.
    let amount_after = cash_left.apply_rate(rate).min(current)?;
    let reduction = current.checked_sub(amount_after)?;
    let unchanged = RefundEffect {
        reduction: zero,
        amount_after: current,
        status_after: status,
        from: None,
    };
    if reduction.is_zero() {
        return Ok(unchanged);
    }
    let fully = amount_after.is_zero();
    Ok(match status {
        CommissionStatus::Pending | CommissionStatus::Eligible => RefundEffect {
            reduction,
            amount_after,
            status_after: if fully {
                CommissionStatus::Cancelled
            } else {
                status
            },
            from: status.holding_account(),
        },
        CommissionStatus::Paid => RefundEffect {
            reduction,
            amount_after,
            status_after: if fully {
                CommissionStatus::Reversed
            } else {
                status
            },
            from: Some(destination),
        },
        CommissionStatus::Cancelled | CommissionStatus::Reversed => unchanged,
    })
}

/// A stored commission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commission {
    /// Its id.
    pub id: CommissionId,
    /// The purchase that earned it.
    pub purchase_id: PurchaseId,
    /// Who earns it.
    pub referrer_id: UserId,
    /// Who bought.
    pub referred_user_id: UserId,
    /// The referrer's track when the purchase happened.
    pub track: Track,
    /// The rate applied.
    pub rate: Rate,
    /// The purchase's cash part.
    pub cash: Money,
    /// What it earned at purchase time.
    pub original_amount: Money,
    /// What it is worth now (after refunds).
    pub amount: Money,
    /// Where it is paid.
    pub destination: Account,
    /// Where it stands.
    pub status: CommissionStatus,
    /// When it was earned (the purchase time).
    pub earned_at: DateTime<Utc>,
    /// When its hold ends.
    pub eligible_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was cancelled or reversed.
    pub closed_at: Option<DateTime<Utc>>,
    /// The wallet credit it was paid as (Basic).
    pub credit_grant_id: Option<CreditGrantId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings() -> ProgramSettings {
        ProgramSettings::default()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn earn(cents: i64, track: Track) -> Result<NewCommission, NoCommission> {
        on_purchase(
            PaymentOutcome::Succeeded,
            Money::usd_cents(cents),
            Some(track),
            now(),
            &settings(),
        )
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            earn(5000, Track::Basic).unwrap().amount,
            Money::usd_cents(250)
        );
        assert_eq!(
            earn(5000, Track::Partner).unwrap().amount,
            Money::usd_cents(500)
        );
        // $10.99 with $10.00 of credit applied: $0.99 of cash does not qualify.
        assert_eq!(earn(99, Track::Basic), Err(NoCommission::BelowMinimum));
        assert_eq!(earn(100, Track::Basic).unwrap().amount, Money::usd_cents(5));
        let failed = on_purchase(
            PaymentOutcome::Failed,
            Money::usd_cents(5000),
            Some(Track::Basic),
            now(),
            &settings(),
        );
        assert_eq!(failed, Err(NoCommission::PaymentFailed));
        let unreferred = on_purchase(
            PaymentOutcome::Succeeded,
            Money::usd_cents(5000),
            None,
            now(),
            &settings(),
        );
        assert_eq!(unreferred, Err(NoCommission::NotReferred));
    }

    #[test]
    fn the_hold_is_thirty_days_and_the_destination_follows_the_track() {
        let basic = earn(5000, Track::Basic).unwrap();
        assert_eq!(basic.eligible_at, now() + chrono::Duration::days(30));
        assert_eq!(Track::Basic.destination(), Account::Wallet);
        assert_eq!(Track::Partner.destination(), Account::ReferralBalance);
    }

    #[test]
    fn every_transition_is_decided() {
        for status in CommissionStatus::ALL {
            let expected_eligible =
                (status == CommissionStatus::Pending).then_some(CommissionStatus::Eligible);
            assert_eq!(make_eligible(status).ok(), expected_eligible, "{status:?}");
            let expected_paid =
                (status == CommissionStatus::Eligible).then_some(CommissionStatus::Paid);
            assert_eq!(pay(status).ok(), expected_paid, "{status:?}");
        }
    }

    fn refund(status: CommissionStatus, refunded_cents: i64) -> RefundEffect {
        let cash = Money::usd_cents(5000);
        after_refund(
            status,
            cash,
            Rate::percent(5),
            Money::usd_cents(250),
            Money::usd_cents(refunded_cents),
            Account::Wallet,
        )
        .unwrap()
    }

    #[test]
    fn refunds_cancel_reverse_or_reduce() {
        let full = refund(CommissionStatus::Pending, 5000);
        assert_eq!(
            (full.reduction, full.status_after, full.from),
            (
                Money::usd_cents(250),
                CommissionStatus::Cancelled,
                Some(Account::CommissionPending)
            )
        );
        let paid = refund(CommissionStatus::Paid, 5000);
        assert_eq!(
            (paid.status_after, paid.from),
            (CommissionStatus::Reversed, Some(Account::Wallet))
        );
        // Half of $50 refunded: the commission is 5 % of the $25 left.
        let half = refund(CommissionStatus::Eligible, 2500);
        assert_eq!(
            (half.reduction, half.amount_after, half.status_after),
            (
                Money::usd_cents(125),
                Money::usd_cents(125),
                CommissionStatus::Eligible
            )
        );
        for closed in [CommissionStatus::Cancelled, CommissionStatus::Reversed] {
            assert!(refund(closed, 5000).reduction.is_zero());
        }
    }

    proptest! {
        #[test]
        fn refunds_in_parts_take_back_exactly_the_commission(
            cash in 100i64..1_000_000,
            cuts in proptest::collection::vec(1i64..100, 1..6),
        ) {
            let cash = Money::usd_cents(cash);
            let rate = Rate::percent(5);
            let mut current = cash.apply_rate(rate);
            let original = current;
            let mut refunded = Money::usd_cents(0);
            let mut taken = Money::usd_cents(0);
            let total: i64 = cuts.iter().sum();
            let cash_cents = cash.to_minor_units().unwrap();
            for (i, cut) in cuts.iter().enumerate() {
                // The last cut refunds what is left, so the purchase ends fully refunded.
                let part = if i + 1 == cuts.len() {
                    cash.checked_sub(refunded).unwrap()
                } else {
                    Money::usd_cents(cash_cents * cut / total / 2)
                };
                refunded = refunded.checked_add(part).unwrap();
                let effect = after_refund(
                    CommissionStatus::Paid, cash, rate, current, refunded, Account::Wallet,
                ).unwrap();
                prop_assert!(effect.reduction >= Money::usd_cents(0));
                prop_assert!(effect.amount_after <= current);
                current = effect.amount_after;
                taken = taken.checked_add(effect.reduction).unwrap();
            }
            prop_assert_eq!(taken, original);
            prop_assert!(current.is_zero());
        }
    }
}
