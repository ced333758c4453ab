//! Wallet credit: grants and spends. Their ledger entries are posted by the use cases
//! (`usecases::ledger::post`), beside these writes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::credit::{CreditGrant, CreditSpend};
use crate::domain::credit::{GrantBalance, GrantReason};
use crate::error::StoreError;
use crate::ids::{CreditGrantId, CreditSpendId, UserId};
use crate::money::{Currency, Money};

impl CreditGrant {
    /// What the spending rules need of this grant.
    pub fn balance(&self) -> GrantBalance {
        GrantBalance {
            id: self.id,
            remaining: self.remaining,
            expires_at: self.expires_at,
        }
    }
}

struct GrantRow {
    id: CreditGrantId,
    user_id: UserId,
    reason: GrantReason,
    amount: Decimal,
    remaining: Decimal,
    granted_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    expired_at: Option<DateTime<Utc>>,
}

impl TryFrom<GrantRow> for CreditGrant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            user_id: row.user_id,
            reason: row.reason,
            amount: usd(row.amount)?,
            remaining: usd(row.remaining)?,
            granted_at: row.granted_at,
            expires_at: row.expires_at,
            expired_at: row.expired_at,
        })
    }
}

/// A USD amount read from a `numeric(12,2)` column.
pub(crate) fn usd(amount: Decimal) -> Result<Money, StoreError> {
    Money::new(amount, Currency::Usd).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Inserts the signup grant and its `CREDIT_GRANTED` entry; `None` if the user already has one.
pub async fn insert_signup_grant(
    conn: &mut PgConnection,
    user_id: UserId,
    amount: Money,
    granted_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<CreditGrant>, StoreError> {
    let row = sqlx::query_as!(
        GrantRow,
        r#"insert into credit_grants (id, user_id, reason, amount, remaining, currency, granted_at, expires_at)
           values ($1, $2, 'SIGNUP', $3, $3, $4, $5, $6)
           on conflict (user_id) where reason = 'SIGNUP' do nothing
           returning id as "id: CreditGrantId", user_id as "user_id: UserId",
                     reason as "reason: GrantReason", amount, remaining, granted_at, expires_at,
                     expired_at"#,
        CreditGrantId::generate() as _,
        user_id as _,
        amount.amount(),
        amount.currency().code(),
        granted_at,
        expires_at,
    )
    .fetch_optional(conn)
    .await?;
    row.map(CreditGrant::try_from).transpose()
}

/// A grant of `amount` of commission into the referrer's wallet, as credit that never
/// expires. Returns the grant.
pub async fn insert_commission_grant(
    conn: &mut PgConnection,
    user_id: UserId,
    amount: Money,
    now: DateTime<Utc>,
) -> Result<CreditGrantId, StoreError> {
    let id = CreditGrantId::generate();
    sqlx::query!(
        "insert into credit_grants (id, user_id, reason, amount, remaining, currency, granted_at)
         values ($1, $2, 'COMMISSION', $3, $3, $4, $5)",
        id as _,
        user_id as _,
        amount.amount(),
        amount.currency().code(),
        now,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Takes `amount` of a reversed commission back out of the wallet credit it was paid as,
/// even below zero: a debt that nets against the rest of the wallet.
pub async fn take_back_commission_credit(
    conn: &mut PgConnection,
    grant_id: CreditGrantId,
    amount: Money,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update credit_grants set remaining = remaining - $2 where id = $1",
        grant_id as _,
        amount.amount()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's signup grant, locked.
pub async fn lock_signup_grant(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Option<CreditGrant>, StoreError> {
    sqlx::query_as!(
        GrantRow,
        r#"select id as "id: CreditGrantId", user_id as "user_id: UserId",
                  reason as "reason: GrantReason", amount, remaining, granted_at, expires_at,
                  expired_at
           from credit_grants where user_id = $1 and reason = 'SIGNUP' for update"#,
        user_id as _
    )
    .fetch_optional(conn)
    .await?
    .map(CreditGrant::try_from)
    .transpose()
}

/// Removes what is left of `grant`; returns that amount.
pub async fn expire(
    conn: &mut PgConnection,
    grant: &CreditGrant,
    now: DateTime<Utc>,
) -> Result<Money, StoreError> {
    let left = grant.remaining;
    sqlx::query!(
        "update credit_grants set remaining = 0, expired_at = $2 where id = $1",
        grant.id as _,
        now
    )
    .execute(conn)
    .await?;
    Ok(left)
}

/// All grants of a user, soonest-expiring first.
pub async fn grants_of(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Vec<CreditGrant>, StoreError> {
    sqlx::query_as!(
        GrantRow,
        r#"select id as "id: CreditGrantId", user_id as "user_id: UserId",
                  reason as "reason: GrantReason", amount, remaining, granted_at, expires_at,
                  expired_at
           from credit_grants where user_id = $1 order by expires_at nulls last, id"#,
        user_id as _
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(CreditGrant::try_from)
    .collect()
}

/// Grants that can still be spent, locked so concurrent spends and expiries serialize.
pub async fn lock_spendable(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Vec<GrantBalance>, StoreError> {
    sqlx::query_as!(
        GrantRow,
        r#"select id as "id: CreditGrantId", user_id as "user_id: UserId",
                  reason as "reason: GrantReason", amount, remaining, granted_at, expires_at,
                  expired_at
           from credit_grants where user_id = $1 and expired_at is null and remaining <> 0
           order by expires_at nulls last, id for update"#,
        user_id as _
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| CreditGrant::try_from(row).map(|g| g.balance()))
    .collect()
}

struct SpendRow {
    id: CreditSpendId,
    reference: String,
    amount: Decimal,
    spent_at: DateTime<Utc>,
    available_after: Option<Decimal>,
}

impl TryFrom<SpendRow> for CreditSpend {
    type Error = StoreError;

    fn try_from(row: SpendRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            reference: row.reference,
            amount: usd(row.amount)?,
            spent_at: row.spent_at,
            available_after: row.available_after.map(usd).transpose()?,
        })
    }
}

/// A spend by its reference.
pub async fn find_spend(
    conn: &mut PgConnection,
    user_id: UserId,
    reference: &str,
) -> Result<Option<CreditSpend>, StoreError> {
    sqlx::query_as!(
        SpendRow,
        r#"select id as "id: CreditSpendId", reference, amount, spent_at, available_after
           from credit_spends where user_id = $1 and reference = $2"#,
        user_id as _,
        reference
    )
    .fetch_optional(conn)
    .await?
    .map(CreditSpend::try_from)
    .transpose()
}

/// A spend to record, split over grants.
#[derive(Debug, Clone)]
pub struct NewSpend<'a> {
    /// Whose wallet.
    pub user_id: UserId,
    /// The caller's reference.
    pub reference: &'a str,
    /// The amount.
    pub amount: Money,
    /// How much each grant gives.
    pub parts: &'a [(CreditGrantId, Money)],
    /// Credit available after the spend.
    pub available_after: Money,
    /// When.
    pub now: DateTime<Utc>,
}

/// Records a spend: the spend row and each grant's `remaining` lowered by its part. The
/// caller holds the user's lock, so the reference is free.
pub async fn insert_spend(
    conn: &mut PgConnection,
    spend: &NewSpend<'_>,
) -> Result<CreditSpend, StoreError> {
    let row = sqlx::query_as!(
        SpendRow,
        r#"insert into credit_spends (id, user_id, reference, amount, currency, spent_at, available_after)
           values ($1, $2, $3, $4, $5, $6, $7)
           returning id as "id: CreditSpendId", reference, amount, spent_at, available_after"#,
        CreditSpendId::generate() as _,
        spend.user_id as _,
        spend.reference,
        spend.amount.amount(),
        spend.amount.currency().code(),
        spend.now,
        spend.available_after.amount(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let row = CreditSpend::try_from(row)?;
    for (grant_id, taken) in spend.parts {
        sqlx::query!(
            "update credit_grants set remaining = remaining - $2 where id = $1",
            grant_id as _,
            taken.amount()
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(row)
}
