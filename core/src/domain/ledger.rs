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
}

impl EntryKind {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::CreditGranted => "CREDIT_GRANTED",
            EntryKind::CreditSpent => "CREDIT_SPENT",
            EntryKind::CreditExpired => "CREDIT_EXPIRED",
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
