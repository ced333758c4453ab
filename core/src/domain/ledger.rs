//! Ledger vocabulary (SPEC: Ledger): which balance an entry moves and what kind of
//! movement it is. Entries are append-only; a balance is the sum of its entries.

use chrono::{DateTime, Utc};

use crate::ids::CreditGrantId;
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
