//! Purchases and refunds the platform reports (SPEC: Purchases and commission).
//!
//! Recording a purchase spends the credit it applies, creates the referrer's `PENDING`
//! commission with its 30-day timer and marks the buyer converted, all in the caller's
//! transaction. A refund is recorded at once and applied to the commission by the
//! `ReverseCommission` job, enqueued in the same transaction as the refund itself (and
//! the commission jobs settle any refund they find first, whichever runs first).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::domain::commission::Commission;
use crate::domain::commission::{self, CommissionStatus, NoCommission, PaymentOutcome};
use crate::domain::ledger::{Account, Concerning, EntryKind, Posting};
use crate::error::StoreError;
use crate::ids::CommissionId;
use crate::jobs::{self, MakeCommissionEligible, ReverseCommission};
use crate::money::Money;
use crate::settings::ProgramSettings;
use crate::store::commissions;
use crate::store::purchases::{
    self, InsertPurchaseError, InsertRefundError, NewPurchase, NewRefund,
};

pub use crate::domain::purchase::{Purchase, Refund};
use crate::store::users;
use crate::usecases::ledger;
use crate::usecases::wallet::{self, SpendError};

/// A purchase as the platform reports it.
#[derive(Debug, Clone)]
pub struct RecordPurchase {
    /// The platform's unique id for the purchase.
    pub purchase_id: String,
    /// The buyer's platform id.
    pub user_id: String,
    /// The price.
    pub amount: Money,
    /// Wallet credit applied to it (spent when the payment succeeded).
    pub credit_applied: Money,
    /// Whether the payment went through.
    pub outcome: PaymentOutcome,
    /// The plan bought.
    pub plan: String,
}

impl RecordPurchase {
    /// What identifies this request: a replay must carry the same.
    fn fingerprint(&self) -> String {
        let outcome = match self.outcome {
            PaymentOutcome::Succeeded => "succeeded",
            PaymentOutcome::Failed => "failed",
        };
        fingerprint(&[
            &self.user_id,
            &self.amount.to_string(),
            &self.credit_applied.to_string(),
            outcome,
            &self.plan,
        ])
    }
}

fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different part lists hash alike.
        hash.update(part.len().to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Why a purchase was not recorded; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// No user has the buyer's platform id.
    #[error("no user with user_id `{0}`")]
    UserNotFound(String),
    /// More credit applied than the price.
    #[error("credit_applied ({credit}) is more than the amount ({amount})")]
    CreditAboveAmount {
        /// Credit applied.
        credit: Money,
        /// Price.
        amount: Money,
    },
    /// The purchase id was used before with another body.
    #[error("purchase_id `{0}` was already recorded with a different body")]
    PurchaseIdReused(String),
    /// The wallet already holds a spend under this purchase's credit reference.
    #[error(
        "the wallet already has a spend with reference `{0}`; a purchase's credit is spent under that reference, once"
    )]
    CreditReferenceTaken(String),
    /// The credit applied could not be spent.
    #[error(transparent)]
    Credit(SpendError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A recorded purchase and what it earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRecorded {
    /// The purchase.
    pub purchase: Purchase,
    /// The referrer's commission, or why there is none.
    pub commission: Result<Commission, NoCommission>,
    /// True when this repeats an earlier identical request (nothing new written).
    pub replayed: bool,
}

/// Records a purchase, once per purchase id.
pub async fn record(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    settings: &ProgramSettings,
    cmd: &RecordPurchase,
) -> Result<PurchaseRecorded, PurchaseError> {
    if cmd.credit_applied > cmd.amount {
        return Err(PurchaseError::CreditAboveAmount {
            credit: cmd.credit_applied,
            amount: cmd.amount,
        });
    }
    // The buyer's lock makes a replay racing its original wait for it, then find it.
    let buyer = users::lock_by_platform_id(conn, &cmd.user_id)
        .await?
        .ok_or_else(|| PurchaseError::UserNotFound(cmd.user_id.clone()))?;
    let fingerprint = cmd.fingerprint();
    if let Some(existing) = purchases::find(conn, &cmd.purchase_id).await? {
        if existing.fingerprint != fingerprint {
            return Err(PurchaseError::PurchaseIdReused(cmd.purchase_id.clone()));
        }
        return replay(conn, existing).await;
    }

    // Credit pays only for a payment that went through.
    if cmd.outcome == PaymentOutcome::Succeeded && cmd.credit_applied.is_positive() {
        let reference = format!("purchase:{}", cmd.purchase_id);
        let spent = wallet::spend(conn, now, &cmd.user_id, cmd.credit_applied, &reference)
            .await
            .map_err(PurchaseError::Credit)?;
        // A spend recorded earlier under this reference (through the spend endpoint) is
        // not this purchase's: paying twice with one debit is refused.
        if spent.replayed {
            return Err(PurchaseError::CreditReferenceTaken(reference));
        }
    }
    let id = purchases::insert(
        conn,
        &NewPurchase {
            platform_purchase_id: &cmd.purchase_id,
            user_id: buyer.id,
            amount: cmd.amount,
            credit_applied: cmd.credit_applied,
            outcome: cmd.outcome,
            plan: &cmd.plan,
            purchased_at: now,
            fingerprint: &fingerprint,
        },
    )
    .await
    .map_err(|e| match e {
        InsertPurchaseError::DuplicateId => {
            PurchaseError::PurchaseIdReused(cmd.purchase_id.clone())
        }
        InsertPurchaseError::Store(e) => PurchaseError::Store(e),
    })?;
    // Everything about the new purchase is known here: no need to read it back.
    let purchase = Purchase {
        id,
        platform_purchase_id: cmd.purchase_id.clone(),
        user_id: buyer.id,
        platform_user_id: buyer.platform_user_id.clone(),
        amount: cmd.amount,
        credit_applied: cmd.credit_applied,
        outcome: cmd.outcome,
        plan: cmd.plan.clone(),
        purchased_at: now,
        fingerprint,
        refunded: Money::zero(cmd.amount.currency()),
    };

    let referrer_track = match buyer.referred_by {
        Some(referrer) => Some((referrer, users::track(conn, referrer).await?)),
        None => None,
    };
    let cash = purchase.cash()?;
    let decided = commission::on_purchase(
        cmd.outcome,
        cash,
        referrer_track.map(|(_, track)| track),
        now,
        settings,
    );
    let commission = match (decided, referrer_track) {
        (Ok(new), Some((referrer_id, _))) => {
            let commission = Commission {
                id: CommissionId::generate(),
                purchase_id: purchase.id,
                referrer_id,
                referred_user_id: buyer.id,
                track: new.track,
                rate: new.rate,
                cash: new.cash,
                original_amount: new.amount,
                amount: new.amount,
                destination: new.track.destination(),
                status: CommissionStatus::Pending,
                earned_at: now,
                eligible_at: new.eligible_at,
                paid_at: None,
                closed_at: None,
                credit_grant_id: None,
            };
            commissions::insert(conn, &commission).await?;
            ledger::post(
                conn,
                &Posting::inflow(
                    referrer_id,
                    EntryKind::CommissionPending,
                    Concerning {
                        commission_id: Some(commission.id),
                        ..Concerning::default()
                    },
                    Account::CommissionPending,
                    commission.amount,
                    now,
                ),
            )
            .await?;
            jobs::enqueue_at(
                conn,
                &MakeCommissionEligible {
                    commission_id: commission.id,
                    due_at: commission.eligible_at,
                },
                commission.eligible_at,
            )
            .await?;
            users::mark_converted(conn, buyer.id, now).await?;
            Ok(commission)
        }
        (Ok(_), None) => Err(NoCommission::NotReferred),
        (Err(why), _) => Err(why),
    };
    tracing::info!(
        purchase_id = %purchase.id,
        commission = ?commission.as_ref().map(|c| c.id).map_err(|why| *why),
        "purchase recorded"
    );
    Ok(PurchaseRecorded {
        purchase,
        commission,
        replayed: false,
    })
}

/// The first answer to a purchase, rebuilt: the commission as it was created.
async fn replay(
    conn: &mut PgConnection,
    purchase: Purchase,
) -> Result<PurchaseRecorded, PurchaseError> {
    let commission = match commissions::of_purchase(conn, purchase.id).await? {
        Some(current) => Ok(Commission {
            amount: current.original_amount,
            status: CommissionStatus::Pending,
            paid_at: None,
            closed_at: None,
            credit_grant_id: None,
            ..current
        }),
        None => Err(why_no_commission(conn, &purchase).await?),
    };
    let purchase = Purchase {
        refunded: Money::zero(purchase.amount.currency()),
        ..purchase
    };
    Ok(PurchaseRecorded {
        purchase,
        commission,
        replayed: true,
    })
}

async fn why_no_commission(
    conn: &mut PgConnection,
    purchase: &Purchase,
) -> Result<NoCommission, StoreError> {
    let buyer = users::find(conn, purchase.user_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("purchase {} has no buyer", purchase.id)))?;
    Ok(if buyer.referred_by.is_none() {
        NoCommission::NotReferred
    } else if purchase.outcome == PaymentOutcome::Failed {
        NoCommission::PaymentFailed
    } else {
        NoCommission::BelowMinimum
    })
}

/// A purchase as it stands now, with its refunds and commission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseView {
    /// The purchase.
    pub purchase: Purchase,
    /// Its refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// The referrer's commission as it stands, or why there is none.
    pub commission: Result<Commission, NoCommission>,
}

/// Why a purchase could not be read or refunded.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// No purchase has this id.
    #[error("no purchase with purchase_id `{0}`")]
    PurchaseNotFound(String),
    /// The payment failed: there is nothing to refund.
    #[error("purchase `{0}` was not paid, so there is nothing to refund")]
    NotPaid(String),
    /// More than what is left of the cash paid.
    #[error("amount: only {refundable} of the cash paid is left to refund")]
    ExceedsPayment {
        /// What can still be refunded.
        refundable: Money,
    },
    /// The refund id was used before with another body.
    #[error("refund_id `{0}` was already recorded with a different body")]
    RefundIdReused(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The purchase with this platform id.
pub async fn view(conn: &mut PgConnection, purchase_id: &str) -> Result<PurchaseView, RefundError> {
    let purchase = purchases::find(conn, purchase_id)
        .await?
        .ok_or_else(|| RefundError::PurchaseNotFound(purchase_id.to_owned()))?;
    let refunds = purchases::refunds_of(conn, purchase.id).await?;
    let commission = match commissions::of_purchase(conn, purchase.id).await? {
        Some(commission) => Ok(commission),
        None => Err(why_no_commission(conn, &purchase).await?),
    };
    Ok(PurchaseView {
        purchase,
        refunds,
        commission,
    })
}

/// A refund as the platform reports it.
#[derive(Debug, Clone)]
pub struct RecordRefund {
    /// The purchase's platform id.
    pub purchase_id: String,
    /// The platform's unique id for the refund.
    pub refund_id: String,
    /// Cash refunded.
    pub amount: Money,
}

/// A recorded refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecorded {
    /// The refund.
    pub refund: Refund,
    /// Cash refunded on the purchase, this refund included.
    pub refunded_total: Money,
    /// Cash still refundable after it.
    pub refundable: Money,
    /// True when this repeats an earlier identical request (nothing new written).
    pub replayed: bool,
}

/// Records a refund of a purchase, once per refund id; its commission is adjusted by a job
/// enqueued in the same transaction.
pub async fn refund(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    cmd: &RecordRefund,
) -> Result<RefundRecorded, RefundError> {
    // The purchase's lock makes its refunds take turns: two can never overdraw it.
    let purchase = purchases::lock(conn, &cmd.purchase_id)
        .await?
        .ok_or_else(|| RefundError::PurchaseNotFound(cmd.purchase_id.clone()))?;
    let fingerprint = fingerprint(&[&cmd.purchase_id, &cmd.amount.to_string()]);
    let cash = purchase.cash()?;
    if let Some(existing) = purchases::find_refund(conn, &cmd.refund_id).await? {
        if existing.fingerprint != fingerprint {
            return Err(RefundError::RefundIdReused(cmd.refund_id.clone()));
        }
        return replay_refund(existing, cash);
    }
    if purchase.outcome == PaymentOutcome::Failed {
        return Err(RefundError::NotPaid(cmd.purchase_id.clone()));
    }
    let refundable = cash
        .checked_sub(purchase.refunded)
        .map_err(StoreError::from)?;
    if cmd.amount > refundable {
        return Err(RefundError::ExceedsPayment { refundable });
    }
    let refunded_total = purchase
        .refunded
        .checked_add(cmd.amount)
        .map_err(StoreError::from)?;
    let refund = purchases::insert_refund(
        conn,
        &NewRefund {
            platform_refund_id: &cmd.refund_id,
            purchase_id: purchase.id,
            amount: cmd.amount,
            refunded_at: now,
            fingerprint: &fingerprint,
            refunded_total_after: refunded_total,
        },
    )
    .await
    .map_err(|e| match e {
        InsertRefundError::DuplicateId => RefundError::RefundIdReused(cmd.refund_id.clone()),
        InsertRefundError::Store(e) => RefundError::Store(e),
    })?;
    if commissions::of_purchase(conn, purchase.id).await?.is_some() {
        jobs::enqueue_now(
            conn,
            &ReverseCommission {
                refund_id: refund.id,
            },
        )
        .await?;
    }
    Ok(RefundRecorded {
        refund,
        refunded_total,
        refundable: cash.checked_sub(refunded_total).map_err(StoreError::from)?,
        replayed: false,
    })
}

/// The first answer to a refund, from what was stored with it.
fn replay_refund(refund: Refund, cash: Money) -> Result<RefundRecorded, RefundError> {
    Ok(RefundRecorded {
        refundable: cash
            .checked_sub(refund.refunded_total_after)
            .map_err(StoreError::from)?,
        refunded_total: refund.refunded_total_after,
        refund,
        replayed: true,
    })
}
