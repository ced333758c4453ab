//! Wallet credit: grants, spends and their ledger entries.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::credit::GrantBalance;
use crate::error::StoreError;
use crate::ids::{CreditGrantId, UserId};
use crate::money::{Currency, Money};
use crate::store::ledger::{self, Account, EntryKind, NewEntry};

/// A credit grant as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreditGrant {
    /// Its id.
    pub id: CreditGrantId,
    /// Whose wallet.
    pub user_id: UserId,
    /// Why it was granted (`SIGNUP`).
    pub reason: String,
    /// Granted amount.
    pub amount: Decimal,
    /// Unspent, unexpired amount.
    pub remaining: Decimal,
    /// When granted.
    pub granted_at: DateTime<Utc>,
    /// When what is left expires.
    pub expires_at: DateTime<Utc>,
    /// When the expiry ran.
    pub expired_at: Option<DateTime<Utc>>,
}

impl CreditGrant {
    /// Granted amount as money.
    pub fn amount(&self) -> Result<Money, StoreError> {
        usd(self.amount)
    }

    /// What is left as money.
    pub fn remaining(&self) -> Result<Money, StoreError> {
        usd(self.remaining)
    }
}

/// A USD amount read from a `numeric(12,2)` column.
pub fn usd(amount: Decimal) -> Result<Money, StoreError> {
    Money::new(amount, Currency::Usd).map_err(|e| StoreError::Corrupt(e.to_string()))
}

macro_rules! select_grants {
    ($tail:literal) => {
        concat!(
            "select id, user_id, reason, amount, remaining, granted_at, expires_at, expired_at
             from credit_grants ",
            $tail
        )
    };
}

/// Inserts the signup grant and its `CREDIT_GRANTED` entry; `None` if the user already has one.
pub async fn insert_signup_grant(
    conn: &mut PgConnection,
    user_id: UserId,
    amount: Money,
    granted_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<CreditGrant>, StoreError> {
    let grant = sqlx::query_as::<_, CreditGrant>(
        "insert into credit_grants (id, user_id, reason, amount, remaining, currency, granted_at, expires_at)
         values ($1, $2, 'SIGNUP', $3, $3, $4, $5, $6)
         on conflict (user_id) where reason = 'SIGNUP' do nothing
         returning id, user_id, reason, amount, remaining, granted_at, expires_at, expired_at",
    )
    .bind(CreditGrantId::generate())
    .bind(user_id)
    .bind(amount.amount())
    .bind(amount.currency().code())
    .bind(granted_at)
    .bind(expires_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(grant) = &grant {
        ledger::append(
            conn,
            &NewEntry {
                user_id,
                account: Account::Wallet,
                kind: EntryKind::CreditGranted,
                amount,
                credit_grant_id: Some(grant.id),
                credit_spend_id: None,
                occurred_at: granted_at,
            },
        )
        .await?;
    }
    Ok(grant)
}

/// The user's signup grant, locked.
pub async fn lock_signup_grant(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Option<CreditGrant>, StoreError> {
    Ok(sqlx::query_as::<_, CreditGrant>(select_grants!(
        "where user_id = $1 and reason = 'SIGNUP' for update"
    ))
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Removes what is left of `grant` (a `CREDIT_EXPIRED` entry of exactly that amount).
pub async fn expire(
    conn: &mut PgConnection,
    grant: &CreditGrant,
    now: DateTime<Utc>,
) -> Result<Money, StoreError> {
    let left = grant.remaining()?;
    if left.is_positive() {
        ledger::append(
            &mut *conn,
            &NewEntry {
                user_id: grant.user_id,
                account: Account::Wallet,
                kind: EntryKind::CreditExpired,
                amount: left.negated(),
                credit_grant_id: Some(grant.id),
                credit_spend_id: None,
                occurred_at: now,
            },
        )
        .await?;
    }
    sqlx::query("update credit_grants set remaining = 0, expired_at = $2 where id = $1")
        .bind(grant.id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(left)
}

/// All grants of a user, soonest-expiring first.
pub async fn grants_of(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Vec<CreditGrant>, StoreError> {
    Ok(sqlx::query_as::<_, CreditGrant>(select_grants!(
        "where user_id = $1 order by expires_at, id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Grants that can still be spent, locked so concurrent spends and expiries serialize.
pub async fn lock_spendable(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Vec<GrantBalance>, StoreError> {
    let rows = sqlx::query_as::<_, CreditGrant>(select_grants!(
        "where user_id = $1 and expired_at is null and remaining > 0
         order by expires_at, id for update"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|g| {
            Ok(GrantBalance {
                id: g.id,
                remaining: usd(g.remaining)?,
                expires_at: g.expires_at,
            })
        })
        .collect()
}

/// A recorded spend.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreditSpend {
    /// Its id.
    pub id: uuid::Uuid,
    /// The caller's reference (idempotency key).
    pub reference: String,
    /// Amount spent.
    pub amount: Decimal,
    /// When.
    pub spent_at: DateTime<Utc>,
}

/// A spend by its reference.
pub async fn find_spend(
    conn: &mut PgConnection,
    user_id: UserId,
    reference: &str,
) -> Result<Option<CreditSpend>, StoreError> {
    Ok(sqlx::query_as::<_, CreditSpend>(
        "select id, reference, amount, spent_at from credit_spends where user_id = $1 and reference = $2",
    )
    .bind(user_id)
    .bind(reference)
    .fetch_optional(conn)
    .await?)
}

/// Records a spend split over grants: the spend row, one `CREDIT_SPENT` entry per grant,
/// and each grant's `remaining` lowered.
pub async fn insert_spend(
    conn: &mut PgConnection,
    user_id: UserId,
    reference: &str,
    amount: Money,
    parts: &[(CreditGrantId, Money)],
    now: DateTime<Utc>,
) -> Result<CreditSpend, StoreError> {
    let spend = sqlx::query_as::<_, CreditSpend>(
        "insert into credit_spends (id, user_id, reference, amount, currency, spent_at)
         values ($1, $2, $3, $4, $5, $6)
         returning id, reference, amount, spent_at",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(user_id)
    .bind(reference)
    .bind(amount.amount())
    .bind(amount.currency().code())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    for (grant_id, taken) in parts {
        ledger::append(
            &mut *conn,
            &NewEntry {
                user_id,
                account: Account::Wallet,
                kind: EntryKind::CreditSpent,
                amount: taken.negated(),
                credit_grant_id: Some(*grant_id),
                credit_spend_id: Some(spend.id),
                occurred_at: now,
            },
        )
        .await?;
        sqlx::query("update credit_grants set remaining = remaining - $2 where id = $1")
            .bind(grant_id)
            .bind(taken.amount())
            .execute(&mut *conn)
            .await?;
    }
    Ok(spend)
}
