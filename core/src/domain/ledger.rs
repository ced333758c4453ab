//! Ledger vocabulary (SPEC: Ledger): which balance an entry moves and what kind of
//! movement it is. Entries are append-only; a balance is the sum of its entries.

use chrono::{DateTime, Utc};

use crate::ids::{CommissionId, CreditGrantId, CreditSpendId, PayoutId, UserId};
use crate::money::{Money, MoneyError};

/// Which balance an entry moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Account {
    /// Platform credit.
    Wallet,
    /// Withdrawable partner earnings.
    ReferralBalance,
    /// A referrer's commissions inside their 30-day hold.
    CommissionPending,
    /// A referrer's commissions past the hold, not yet paid.
    CommissionEligible,
    /// Payouts taken out of the referral balance and not yet paid or failed.
    PayoutInFlight,
}

/// What kind of movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryKind {
    /// Credit granted (+).
    CreditGranted,
    /// Credit spent (−).
    CreditSpent,
    /// Credit expired (−).
    CreditExpired,
    /// Commission earned, into the pending account (+).
    CommissionPending,
    /// Commission past its hold: out of pending (−), into eligible (+).
    CommissionEligible,
    /// Commission paid: out of eligible (−), into the wallet or referral balance (+).
    CommissionPaid,
    /// Commission refunded before payment, in full or in part (−).
    CommissionCancelled,
    /// Commission refunded after payment, taken back from where it was paid (−).
    CommissionReversed,
    /// Payout requested: out of the referral balance (−), into in-flight (+).
    PayoutRequested,
    /// Payout paid: out of in-flight (−), to the bank.
    PayoutPaid,
    /// Payout failed: out of in-flight (−), back into the referral balance (+).
    PayoutFailed,
}

impl EntryKind {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::CreditGranted => "CREDIT_GRANTED",
            EntryKind::CreditSpent => "CREDIT_SPENT",
            EntryKind::CreditExpired => "CREDIT_EXPIRED",
            EntryKind::CommissionPending => "COMMISSION_PENDING",
            EntryKind::CommissionEligible => "COMMISSION_ELIGIBLE",
            EntryKind::CommissionPaid => "COMMISSION_PAID",
            EntryKind::CommissionCancelled => "COMMISSION_CANCELLED",
            EntryKind::CommissionReversed => "COMMISSION_REVERSED",
            EntryKind::PayoutRequested => "PAYOUT_REQUESTED",
            EntryKind::PayoutPaid => "PAYOUT_PAID",
            EntryKind::PayoutFailed => "PAYOUT_FAILED",
        }
    }
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number.
    pub id: i64,
    /// Which account.
    pub account: Account,
    /// What happened.
    pub kind: EntryKind,
    /// Signed: positive into the account, negative out of it.
    pub amount: Money,
    /// The credit grant concerned.
    pub credit_grant_id: Option<CreditGrantId>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// The balance of `entries`: their sum.
pub fn balance(entries: &[Entry], zero: Money) -> Result<Money, MoneyError> {
    entries
        .iter()
        .try_fold(zero, |sum, entry| sum.checked_add(entry.amount))
}

/// The rows a movement of money belongs to, recorded on each of its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Concerning {
    /// The credit grant.
    pub credit_grant_id: Option<CreditGrantId>,
    /// The spend of credit.
    pub credit_spend_id: Option<CreditSpendId>,
    /// The commission.
    pub commission_id: Option<CommissionId>,
    /// The payout.
    pub payout_id: Option<PayoutId>,
}

/// One leg of a posting: an account and the signed amount it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// Which account.
    pub account: Account,
    /// Signed: positive into the account, negative out of it.
    pub amount: Money,
}

/// One movement of money in one user's accounts: every leg is appended together, with
/// one kind, one instant and the same references. The use cases build them with the
/// constructors below, which give each movement the shape the ledger expects (a move
/// between two accounts nets to zero; money that comes in from, or goes out to, the
/// world is one leg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Whose accounts.
    pub user_id: UserId,
    /// What happened.
    pub kind: EntryKind,
    /// What it concerns.
    pub concerning: Concerning,
    /// The legs, in the order they are appended.
    pub legs: Vec<Leg>,
    /// Business time of the movement.
    pub occurred_at: DateTime<Utc>,
}

impl Posting {
    /// `amount` arrives into `account` from outside the user's accounts (credit granted,
    /// commission earned, a commission paid as wallet credit).
    pub fn inflow(
        user_id: UserId,
        kind: EntryKind,
        concerning: Concerning,
        account: Account,
        amount: Money,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            user_id,
            kind,
            concerning,
            legs: vec![Leg { account, amount }],
            occurred_at,
        }
    }

    /// `amount` leaves `account` for outside the user's accounts (credit spent or
    /// expired, a commission cancelled or reversed, a payout paid to the bank).
    pub fn outflow(
        user_id: UserId,
        kind: EntryKind,
        concerning: Concerning,
        account: Account,
        amount: Money,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self::inflow(
            user_id,
            kind,
            concerning,
            account,
            amount.negated(),
            occurred_at,
        )
    }

    /// `amount` moves from one of the user's accounts to another (a commission past its
    /// hold, a commission paid as cash, a payout requested or failed).
    pub fn transfer(
        user_id: UserId,
        kind: EntryKind,
        concerning: Concerning,
        from: Account,
        to: Account,
        amount: Money,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            user_id,
            kind,
            concerning,
            legs: vec![
                Leg {
                    account: from,
                    amount: amount.negated(),
                },
                Leg {
                    account: to,
                    amount,
                },
            ],
            occurred_at,
        }
    }

    /// What the posting adds to the user's accounts taken together: zero for a transfer.
    pub fn net(&self) -> Result<Money, MoneyError> {
        let zero = Money::zero(
            self.legs
                .first()
                .map_or(crate::money::Currency::Usd, |leg| leg.amount.currency()),
        );
        self.legs
            .iter()
            .try_fold(zero, |sum, leg| sum.checked_add(leg.amount))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_nets_to_zero_and_money_from_or_to_the_world_does_not() {
        let user = UserId(uuid::Uuid::nil());
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let amount = Money::usd_cents(250);
        let none = Concerning::default();
        let moved = Posting::transfer(
            user,
            EntryKind::CommissionEligible,
            none,
            Account::CommissionPending,
            Account::CommissionEligible,
            amount,
            at,
        );
        assert_eq!(moved.net(), Ok(Money::usd_cents(0)));
        assert_eq!(moved.legs[0].amount, Money::usd_cents(-250));
        let granted = Posting::inflow(
            user,
            EntryKind::CreditGranted,
            none,
            Account::Wallet,
            amount,
            at,
        );
        assert_eq!(granted.net(), Ok(amount));
        let spent = Posting::outflow(
            user,
            EntryKind::CreditSpent,
            none,
            Account::Wallet,
            amount,
            at,
        );
        assert_eq!(spent.net(), Ok(Money::usd_cents(-250)));
    }
}
