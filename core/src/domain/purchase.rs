//! Purchases the platform reported and their refunds (SPEC: Purchases and commission).

use chrono::{DateTime, Utc};

use crate::domain::commission::PaymentOutcome;
use crate::ids::{PurchaseId, RefundId, UserId};
use crate::money::Money;

/// A stored purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// Our id.
    pub id: PurchaseId,
    /// The platform's id for it.
    pub platform_purchase_id: String,
    /// The buyer.
    pub user_id: UserId,
    /// The buyer's platform id.
    pub platform_user_id: String,
    /// The price.
    pub amount: Money,
    /// Wallet credit applied to it.
    pub credit_applied: Money,
    /// Whether the payment went through.
    pub outcome: PaymentOutcome,
    /// The plan bought.
    pub plan: String,
    /// When.
    pub purchased_at: DateTime<Utc>,
    /// What identifies the request that created it (replays must match).
    pub fingerprint: String,
    /// Cash refunded so far.
    pub refunded: Money,
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Our id.
    pub id: RefundId,
    /// The platform's id for it.
    pub platform_refund_id: String,
    /// The purchase refunded.
    pub purchase_id: PurchaseId,
    /// Cash refunded.
    pub amount: Money,
    /// When.
    pub refunded_at: DateTime<Utc>,
    /// What identifies the request that created it.
    pub fingerprint: String,
    /// The purchase's refunded total right after it (what its answer said).
    pub refunded_total_after: Money,
    /// When its effect on the commission was applied.
    pub applied_at: Option<DateTime<Utc>>,
}
