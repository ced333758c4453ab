//! The append-only ledger (SPEC: Ledger). Balances are sums of entries.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{CreditGrantId, UserId};
use crate::money::Money;

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

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Whose account.
    pub user_id: UserId,
    /// Which account.
    pub account: Account,
    /// What happened.
    pub kind: EntryKind,
    /// Signed: positive into the account, negative out of it.
    pub amount: Money,
    /// The credit grant concerned.
    pub credit_grant_id: Option<CreditGrantId>,
    /// The spend concerned.
    pub credit_spend_id: Option<uuid::Uuid>,
    /// Business time of the movement.
    pub occurred_at: DateTime<Utc>,
}

/// A stored entry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    /// Sequence number.
    pub id: i64,
    /// Which account.
    pub account: Account,
    /// What happened.
    pub kind: EntryKind,
    /// Signed amount.
    pub amount: Decimal,
    /// The credit grant concerned.
    pub credit_grant_id: Option<CreditGrantId>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// Appends one entry.
pub async fn append(conn: &mut PgConnection, entry: &NewEntry) -> Result<(), StoreError> {
    sqlx::query(
        "insert into ledger_entries (user_id, account, kind, amount, currency, credit_grant_id,
                                     credit_spend_id, occurred_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.user_id)
    .bind(entry.account)
    .bind(entry.kind)
    .bind(entry.amount.amount())
    .bind(entry.amount.currency().code())
    .bind(entry.credit_grant_id)
    .bind(entry.credit_spend_id)
    .bind(entry.occurred_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The entries of one account, oldest first.
pub async fn entries(
    conn: &mut PgConnection,
    user_id: UserId,
    account: Account,
) -> Result<Vec<Entry>, StoreError> {
    Ok(sqlx::query_as::<_, Entry>(
        "select id, account, kind, amount, credit_grant_id, occurred_at from ledger_entries
         where user_id = $1 and account = $2 order by occurred_at, id",
    )
    .bind(user_id)
    .bind(account)
    .fetch_all(conn)
    .await?)
}
