//! Purchases and refunds the platform reports.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::commission::PaymentOutcome;
use crate::domain::purchase::{Purchase, Refund};
use crate::error::{StoreError, violated_constraint};
use crate::ids::{PurchaseId, RefundId, UserId};
use crate::money::Money;
use crate::store::credit::usd;

impl Purchase {
    /// What the buyer paid in cash: the price less the credit applied.
    pub fn cash(&self) -> Result<Money, StoreError> {
        self.amount
            .checked_sub(self.credit_applied)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

struct PurchaseRow {
    id: PurchaseId,
    platform_purchase_id: String,
    user_id: UserId,
    platform_user_id: String,
    amount: Decimal,
    credit_applied: Decimal,
    outcome: PaymentOutcome,
    plan: String,
    purchased_at: DateTime<Utc>,
    fingerprint: String,
    refunded: Decimal,
}

impl TryFrom<PurchaseRow> for Purchase {
    type Error = StoreError;

    fn try_from(row: PurchaseRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            platform_purchase_id: row.platform_purchase_id,
            user_id: row.user_id,
            platform_user_id: row.platform_user_id,
            amount: usd(row.amount)?,
            credit_applied: usd(row.credit_applied)?,
            outcome: row.outcome,
            plan: row.plan,
            purchased_at: row.purchased_at,
            fingerprint: row.fingerprint,
            refunded: usd(row.refunded)?,
        })
    }
}

/// A purchase to insert.
#[derive(Debug, Clone)]
pub struct NewPurchase<'a> {
    /// The platform's id for it.
    pub platform_purchase_id: &'a str,
    /// The buyer.
    pub user_id: UserId,
    /// The price.
    pub amount: Money,
    /// Wallet credit applied.
    pub credit_applied: Money,
    /// Whether the payment went through.
    pub outcome: PaymentOutcome,
    /// The plan bought.
    pub plan: &'a str,
    /// When.
    pub purchased_at: DateTime<Utc>,
    /// What identifies the request.
    pub fingerprint: &'a str,
}

/// Unique rules named in the migrations, mapped to client errors here.
const PURCHASE_ID_UNIQUE: &str = "purchases_platform_id_unique";
const REFUND_ID_UNIQUE: &str = "refunds_platform_id_unique";

/// The purchase id is taken (by a purchase of another buyer, recorded meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum InsertPurchaseError {
    /// The platform's purchase id is used already.
    #[error("purchase id taken")]
    DuplicateId,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Inserts a purchase. The caller checked that its platform id is new while holding the
/// buyer's lock; a purchase of another buyer with the same id can still win the race.
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewPurchase<'_>,
) -> Result<PurchaseId, InsertPurchaseError> {
    let id = PurchaseId::generate();
    sqlx::query!(
        "insert into purchases (id, platform_purchase_id, user_id, amount, credit_applied, currency,
                                outcome, plan, purchased_at, fingerprint)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id as _,
        new.platform_purchase_id,
        new.user_id as _,
        new.amount.amount(),
        new.credit_applied.amount(),
        new.amount.currency().code(),
        new.outcome as _,
        new.plan,
        new.purchased_at,
        new.fingerprint,
    )
    .execute(conn)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some(PURCHASE_ID_UNIQUE) => InsertPurchaseError::DuplicateId,
        _ => InsertPurchaseError::Store(e.into()),
    })?;
    Ok(id)
}

/// A purchase by the platform's id for it.
pub async fn find(
    conn: &mut PgConnection,
    platform_purchase_id: &str,
) -> Result<Option<Purchase>, StoreError> {
    sqlx::query_as!(
        PurchaseRow,
        r#"select p.id as "id: PurchaseId", p.platform_purchase_id, p.user_id as "user_id: UserId",
                  u.platform_user_id, p.amount, p.credit_applied,
                  p.outcome as "outcome: PaymentOutcome", p.plan, p.purchased_at, p.fingerprint,
                  p.refunded
           from purchases p join users u on u.id = p.user_id
           where p.platform_purchase_id = $1"#,
        platform_purchase_id
    )
    .fetch_optional(conn)
    .await?
    .map(Purchase::try_from)
    .transpose()
}

/// A purchase by the platform's id for it, locked: its refunds take turns.
pub async fn lock(
    conn: &mut PgConnection,
    platform_purchase_id: &str,
) -> Result<Option<Purchase>, StoreError> {
    sqlx::query_as!(
        PurchaseRow,
        r#"select p.id as "id: PurchaseId", p.platform_purchase_id, p.user_id as "user_id: UserId",
                  u.platform_user_id, p.amount, p.credit_applied,
                  p.outcome as "outcome: PaymentOutcome", p.plan, p.purchased_at, p.fingerprint,
                  p.refunded
           from purchases p join users u on u.id = p.user_id
           where p.platform_purchase_id = $1
           for update of p"#,
        platform_purchase_id
    )
    .fetch_optional(conn)
    .await?
    .map(Purchase::try_from)
    .transpose()
}

/// A purchase by our id.
pub async fn get(conn: &mut PgConnection, id: PurchaseId) -> Result<Purchase, StoreError> {
    sqlx::query_as!(
        PurchaseRow,
        r#"select p.id as "id: PurchaseId", p.platform_purchase_id, p.user_id as "user_id: UserId",
                  u.platform_user_id, p.amount, p.credit_applied,
                  p.outcome as "outcome: PaymentOutcome", p.plan, p.purchased_at, p.fingerprint,
                  p.refunded
           from purchases p join users u on u.id = p.user_id
           where p.id = $1"#,
        id as _
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

struct RefundRow {
    id: RefundId,
    platform_refund_id: String,
    purchase_id: PurchaseId,
    amount: Decimal,
    refunded_at: DateTime<Utc>,
    fingerprint: String,
    refunded_total_after: Decimal,
    applied_at: Option<DateTime<Utc>>,
}

impl TryFrom<RefundRow> for Refund {
    type Error = StoreError;

    fn try_from(row: RefundRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            platform_refund_id: row.platform_refund_id,
            purchase_id: row.purchase_id,
            amount: usd(row.amount)?,
            refunded_at: row.refunded_at,
            fingerprint: row.fingerprint,
            refunded_total_after: usd(row.refunded_total_after)?,
            applied_at: row.applied_at,
        })
    }
}

/// A refund by the platform's id for it.
pub async fn find_refund(
    conn: &mut PgConnection,
    platform_refund_id: &str,
) -> Result<Option<Refund>, StoreError> {
    sqlx::query_as!(
        RefundRow,
        r#"select id as "id: RefundId", platform_refund_id, purchase_id as "purchase_id: PurchaseId",
                  amount, refunded_at, fingerprint, refunded_total_after, applied_at
           from refunds where platform_refund_id = $1"#,
        platform_refund_id
    )
    .fetch_optional(conn)
    .await?
    .map(Refund::try_from)
    .transpose()
}

/// A refund by our id, locked so its effect is applied once.
pub async fn lock_refund(
    conn: &mut PgConnection,
    id: RefundId,
) -> Result<Option<Refund>, StoreError> {
    sqlx::query_as!(
        RefundRow,
        r#"select id as "id: RefundId", platform_refund_id, purchase_id as "purchase_id: PurchaseId",
                  amount, refunded_at, fingerprint, refunded_total_after, applied_at
           from refunds where id = $1 for update"#,
        id as _
    )
    .fetch_optional(conn)
    .await?
    .map(Refund::try_from)
    .transpose()
}

/// The refunds of a purchase, oldest first.
pub async fn refunds_of(
    conn: &mut PgConnection,
    purchase: PurchaseId,
) -> Result<Vec<Refund>, StoreError> {
    sqlx::query_as!(
        RefundRow,
        r#"select id as "id: RefundId", platform_refund_id, purchase_id as "purchase_id: PurchaseId",
                  amount, refunded_at, fingerprint, refunded_total_after, applied_at
           from refunds where purchase_id = $1 order by refunded_at, id"#,
        purchase as _
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Refund::try_from)
    .collect()
}

/// A refund to insert.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    /// The platform's id for it.
    pub platform_refund_id: &'a str,
    /// The purchase.
    pub purchase_id: PurchaseId,
    /// Cash refunded.
    pub amount: Money,
    /// When.
    pub refunded_at: DateTime<Utc>,
    /// What identifies the request.
    pub fingerprint: &'a str,
    /// The purchase's refunded total with this refund.
    pub refunded_total_after: Money,
}

/// The refund id is taken (by a refund of another purchase, recorded meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum InsertRefundError {
    /// The platform's refund id is used already.
    #[error("refund id taken")]
    DuplicateId,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records a refund and adds it to its purchase's refunded total. The caller holds the
/// purchase's lock and checked the amount fits.
pub async fn insert_refund(
    conn: &mut PgConnection,
    new: &NewRefund<'_>,
) -> Result<Refund, InsertRefundError> {
    let refund = sqlx::query_as!(
        RefundRow,
        r#"insert into refunds (id, platform_refund_id, purchase_id, amount, currency, refunded_at,
                                fingerprint, refunded_total_after)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           returning id as "id: RefundId", platform_refund_id, purchase_id as "purchase_id: PurchaseId",
                     amount, refunded_at, fingerprint, refunded_total_after, applied_at"#,
        RefundId::generate() as _,
        new.platform_refund_id,
        new.purchase_id as _,
        new.amount.amount(),
        new.amount.currency().code(),
        new.refunded_at,
        new.fingerprint,
        new.refunded_total_after.amount(),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some(REFUND_ID_UNIQUE) => InsertRefundError::DuplicateId,
        _ => InsertRefundError::Store(e.into()),
    })?;
    sqlx::query!(
        "update purchases set refunded = refunded + $2 where id = $1",
        new.purchase_id as _,
        new.amount.amount()
    )
    .execute(conn)
    .await
    .map_err(StoreError::from)?;
    Ok(refund.try_into()?)
}

/// Marks a refund's effect on the commission as applied.
pub async fn mark_refund_applied(
    conn: &mut PgConnection,
    id: RefundId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update refunds set applied_at = $2 where id = $1",
        id as _,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}
