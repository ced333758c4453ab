//! Purchases and refunds (SPEC: Purchases and commission): the platform reports each
//! payment; a referred buyer's qualifying purchase earns their referrer a commission that
//! is paid 30 days later, and a refund takes it back.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use referral_core::domain::commission::{CommissionStatus, NoCommission, PaymentOutcome, Track};
use referral_core::domain::ledger::Account;
use referral_core::usecases::commissions::Commission;
use referral_core::usecases::purchases::{self, Purchase, RecordPurchase, RecordRefund, Refund};
use referral_core::{Currency, Money};
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{
    AmountText, CurrencyCode, MaybeZeroAmountText, PlanText, PlatformId, Reference, Text,
};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, example_instant, usd_view};

/// Purchase endpoints.
pub struct PurchasesApi;

/// Whether the payment went through.
#[derive(Debug, Clone, Copy, Enum, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OutcomeView {
    /// Paid: the purchase may earn commission.
    Succeeded,
    /// Not paid: stored, earns nothing.
    Failed,
}

impl From<OutcomeView> for PaymentOutcome {
    fn from(outcome: OutcomeView) -> Self {
        match outcome {
            OutcomeView::Succeeded => Self::Succeeded,
            OutcomeView::Failed => Self::Failed,
        }
    }
}

impl From<PaymentOutcome> for OutcomeView {
    fn from(outcome: PaymentOutcome) -> Self {
        match outcome {
            PaymentOutcome::Succeeded => Self::Succeeded,
            PaymentOutcome::Failed => Self::Failed,
        }
    }
}

/// A purchase the platform reports.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct RecordPurchaseBody {
    /// Your unique id for the purchase: the same id again answers the first result.
    pub purchase_id: Text<Reference>,
    /// The buyer's platform id.
    pub user_id: Text<PlatformId>,
    /// The price, a decimal string greater than zero.
    pub amount: Text<AmountText>,
    /// `USD`.
    pub currency: CurrencyCode,
    /// Whether the payment went through.
    pub outcome: OutcomeView,
    /// The plan bought.
    pub plan: Text<PlanText>,
    /// Wallet credit applied to the price (default `"0"`), at most `amount` (more is 422
    /// naming this field); spent from the buyer's wallet when the payment succeeded,
    /// refused with 409 when the wallet holds less.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub credit_applied: Option<Text<MaybeZeroAmountText>>,
}

impl Example for RecordPurchaseBody {
    fn example() -> Self {
        Self {
            purchase_id: Text::known("pur_5001"),
            user_id: Text::known("user_8412"),
            amount: Text::known("50.00"),
            currency: CurrencyCode("USD".into()),
            outcome: OutcomeView::Succeeded,
            plan: Text::known("pro-monthly"),
            credit_applied: Some(Text::known("0.00")),
        }
    }
}

/// Where a commission stands.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommissionStatusView {
    /// Earned, inside the 30-day hold.
    Pending,
    /// Past the hold, about to be paid.
    Eligible,
    /// Credited to the referrer.
    Paid,
    /// Refunded in full before payment.
    Cancelled,
    /// Refunded in full after payment, and taken back.
    Reversed,
}

impl From<CommissionStatus> for CommissionStatusView {
    fn from(status: CommissionStatus) -> Self {
        match status {
            CommissionStatus::Pending => Self::Pending,
            CommissionStatus::Eligible => Self::Eligible,
            CommissionStatus::Paid => Self::Paid,
            CommissionStatus::Cancelled => Self::Cancelled,
            CommissionStatus::Reversed => Self::Reversed,
        }
    }
}

impl From<CommissionStatusView> for CommissionStatus {
    fn from(status: CommissionStatusView) -> Self {
        match status {
            CommissionStatusView::Pending => Self::Pending,
            CommissionStatusView::Eligible => Self::Eligible,
            CommissionStatusView::Paid => Self::Paid,
            CommissionStatusView::Cancelled => Self::Cancelled,
            CommissionStatusView::Reversed => Self::Reversed,
        }
    }
}

/// A referrer's commission track.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackView {
    /// 5 %, paid as platform credit.
    Basic,
    /// 10 %, paid as withdrawable cash.
    Partner,
}

/// Where a commission is paid.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DestinationView {
    /// The referrer's wallet, as credit that never expires (Basic).
    Wallet,
    /// The referrer's withdrawable referral balance (Partner).
    ReferralBalance,
}

/// Why a purchase earns nothing.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum NoCommissionReason {
    /// The buyer was not referred.
    NotReferred,
    /// The payment failed.
    PaymentFailed,
    /// The cash part (amount − credit applied) is under $1.00.
    BelowMinimum,
}

impl From<NoCommission> for NoCommissionReason {
    fn from(why: NoCommission) -> Self {
        match why {
            NoCommission::NotReferred => Self::NotReferred,
            NoCommission::PaymentFailed => Self::PaymentFailed,
            NoCommission::BelowMinimum => Self::BelowMinimum,
        }
    }
}

/// A referrer's commission on a purchase.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CommissionView {
    /// Commission id.
    pub commission_id: Uuid,
    /// Where it stands.
    pub status: CommissionStatusView,
    /// What it is worth now (less any refunded part).
    pub amount: MoneyView,
    /// What it earned at purchase time.
    pub original_amount: MoneyView,
    /// The rate applied, as a fraction (`"0.05"`).
    pub rate: String,
    /// The referrer's track at purchase time.
    pub track: TrackView,
    /// Where it is paid.
    pub destination: DestinationView,
    /// When it was earned.
    pub earned_at: DateTime<Utc>,
    /// When its 30-day hold ends.
    pub eligible_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<&Commission> for CommissionView {
    fn from(c: &Commission) -> Self {
        Self {
            commission_id: c.id.0,
            status: c.status.into(),
            amount: c.amount.into(),
            original_amount: c.original_amount.into(),
            rate: c.rate.to_string(),
            track: match c.track {
                Track::Basic => TrackView::Basic,
                Track::Partner => TrackView::Partner,
            },
            destination: match c.destination {
                Account::ReferralBalance => DestinationView::ReferralBalance,
                // A commission's destination is only ever one of the two balances.
                Account::Wallet
                | Account::CommissionPending
                | Account::CommissionEligible
                | Account::PayoutInFlight => DestinationView::Wallet,
            },
            earned_at: c.earned_at,
            eligible_at: c.eligible_at,
            paid_at: c.paid_at,
        }
    }
}

/// A refund of a purchase.
#[derive(Debug, Object)]
pub struct RefundView {
    /// Your refund id.
    pub refund_id: String,
    /// Cash refunded.
    pub amount: MoneyView,
    /// When.
    pub refunded_at: DateTime<Utc>,
}

impl From<&Refund> for RefundView {
    fn from(refund: &Refund) -> Self {
        Self {
            refund_id: refund.platform_refund_id.clone(),
            amount: refund.amount.into(),
            refunded_at: refund.refunded_at,
        }
    }
}

/// A purchase and what it earned.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PurchaseView {
    /// Your purchase id.
    pub purchase_id: String,
    /// The buyer's platform id.
    pub user_id: String,
    /// The price.
    pub amount: MoneyView,
    /// Wallet credit applied.
    pub credit_applied: MoneyView,
    /// What was paid in cash (amount − credit applied): the base of the commission.
    pub cash: MoneyView,
    /// Whether the payment went through.
    pub outcome: OutcomeView,
    /// The plan bought.
    pub plan: String,
    /// When it was recorded.
    pub purchased_at: DateTime<Utc>,
    /// Cash refunded so far.
    pub refunded: MoneyView,
    /// The referrer's commission, when the purchase earned one.
    pub commission: Option<CommissionView>,
    /// Why the purchase earned nothing, when it did not.
    pub no_commission_reason: Option<NoCommissionReason>,
    /// Refunds, oldest first (on `GET` only).
    pub refunds: Option<Vec<RefundView>>,
}

impl PurchaseView {
    fn of(
        purchase: &Purchase,
        commission: &Result<Commission, NoCommission>,
        refunds: Option<&[Refund]>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            purchase_id: purchase.platform_purchase_id.clone(),
            user_id: purchase.platform_user_id.clone(),
            amount: purchase.amount.into(),
            credit_applied: purchase.credit_applied.into(),
            cash: purchase.cash()?.into(),
            outcome: purchase.outcome.into(),
            plan: purchase.plan.clone(),
            purchased_at: purchase.purchased_at,
            refunded: purchase.refunded.into(),
            commission: commission.as_ref().ok().map(CommissionView::from),
            no_commission_reason: commission.as_ref().err().map(|why| (*why).into()),
            refunds: refunds.map(|r| r.iter().map(RefundView::from).collect()),
        })
    }
}

impl Example for PurchaseView {
    fn example() -> Self {
        Self {
            purchase_id: "pur_5001".into(),
            user_id: "user_8412".into(),
            amount: usd_view("50.00"),
            credit_applied: usd_view("0.00"),
            cash: usd_view("50.00"),
            outcome: OutcomeView::Succeeded,
            plan: "pro-monthly".into(),
            purchased_at: example_instant(3),
            refunded: usd_view("0.00"),
            commission: Some(CommissionView {
                commission_id: Uuid::nil(),
                status: CommissionStatusView::Pending,
                amount: usd_view("2.50"),
                original_amount: usd_view("2.50"),
                rate: "0.05".into(),
                track: TrackView::Basic,
                destination: DestinationView::Wallet,
                earned_at: example_instant(3),
                eligible_at: example_instant(3) + chrono::Duration::days(30),
                paid_at: None,
            }),
            no_commission_reason: None,
            refunds: None,
        }
    }
}

/// A refund the platform reports.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct RecordRefundBody {
    /// Your unique id for the refund: the same id again answers the first result.
    pub refund_id: Text<Reference>,
    /// Cash refunded: at most what is left of the cash paid.
    pub amount: Text<AmountText>,
    /// `USD`.
    pub currency: CurrencyCode,
}

impl Example for RecordRefundBody {
    fn example() -> Self {
        Self {
            refund_id: Text::known("re_77"),
            amount: Text::known("25.00"),
            currency: CurrencyCode("USD".into()),
        }
    }
}

/// A recorded refund.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RefundRecordedView {
    /// Your refund id.
    pub refund_id: String,
    /// Your purchase id.
    pub purchase_id: String,
    /// Cash refunded by this refund.
    pub amount: MoneyView,
    /// When.
    pub refunded_at: DateTime<Utc>,
    /// Cash refunded on the purchase so far, this refund included.
    pub refunded_total: MoneyView,
    /// Cash still refundable.
    pub refundable: MoneyView,
}

impl Example for RefundRecordedView {
    fn example() -> Self {
        Self {
            refund_id: "re_77".into(),
            purchase_id: "pur_5001".into(),
            amount: usd_view("25.00"),
            refunded_at: example_instant(9),
            refunded_total: usd_view("25.00"),
            refundable: usd_view("25.00"),
        }
    }
}

#[derive(ApiResponse)]
enum PurchaseResponse {
    /// Recorded; a replay of the same purchase id and body answers the same status and
    /// body, with `Idempotent-Replayed: true`, and writes nothing.
    #[oai(status = 201)]
    Created(
        Json<PurchaseView>,
        /// `true` when this answer repeats an earlier request.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum RefundResponse {
    /// Recorded; its effect on the commission follows at once, by a job. A replay of the
    /// same refund id and body answers the same status and body, with
    /// `Idempotent-Replayed: true`, and writes nothing.
    #[oai(status = 201)]
    Created(
        Json<RefundRecordedView>,
        /// `true` when this answer repeats an earlier request.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

fn replayed(replayed: bool) -> Option<String> {
    replayed.then(|| "true".to_owned())
}

#[OpenApi(prefix_path = "/v1/purchases", tag = "Tag::Referrals")]
impl PurchasesApi {
    /// Record a purchase. A referred buyer's successful purchase whose cash part (amount
    /// − credit applied) is at least $1.00 earns their referrer a `PENDING` commission at
    /// the referrer's rate at this moment (Basic 5 %, Partner 10 %, rounded half away
    /// from zero to the cent), paid 30 days later; the buyer's first one makes them
    /// `CONVERTED`. Failed and smaller purchases are stored and earn nothing. Idempotent
    /// by `purchase_id`; the same id with a different body is 409.
    ///
    /// One rule joins two fields and so cannot be written in the schema: `credit_applied`
    /// may not exceed `amount`. A body that breaks it is 422 `INVALID_FIELD` with `field`
    /// `credit_applied`, and nothing is written.
    #[oai(path = "/", method = "post", operation_id = "recordPurchase")]
    async fn record(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        body: JsonBody<RecordPurchaseBody>,
    ) -> Result<PurchaseResponse, ApiError> {
        let body = body.0;
        let amount = Money::parse(body.amount.as_str(), &body.currency.0)?;
        let credit_applied = match &body.credit_applied {
            Some(credit) => Money::parse(credit.as_str(), &body.currency.0)?,
            None => Money::zero(Currency::Usd),
        };
        let cmd = RecordPurchase {
            purchase_id: body.purchase_id.into_string(),
            user_id: body.user_id.into_string(),
            amount,
            credit_applied,
            outcome: body.outcome.into(),
            plan: body.plan.into_string(),
        };
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let recorded = purchases::record(&mut tx, now, &state.settings, &cmd).await?;
        tx.commit().await?;
        let view = PurchaseView::of(&recorded.purchase, &recorded.commission, None)?;
        Ok(PurchaseResponse::Created(
            Json(view),
            replayed(recorded.replayed),
        ))
    }

    /// A purchase as it stands now: refunds, and its commission's current status.
    #[oai(path = "/:purchase_id", method = "get", operation_id = "getPurchase")]
    async fn get(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// Your purchase id.
        purchase_id: Path<Text<Reference>>,
    ) -> Result<Json<PurchaseView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let view = purchases::view(&mut conn, purchase_id.0.as_str()).await?;
        Ok(Json(PurchaseView::of(
            &view.purchase,
            &view.commission,
            Some(&view.refunds),
        )?))
    }

    /// Record a refund of a purchase, in full or in part: never more than what is left
    /// of the cash paid. Before the commission is paid it is cancelled (or reduced in
    /// proportion); after, it is reversed: taken back from where it was paid, even below
    /// zero. Idempotent by `refund_id`; the same id with a different body is 409.
    #[oai(
        path = "/:purchase_id/refunds",
        method = "post",
        operation_id = "recordRefund"
    )]
    async fn refund(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// Your purchase id.
        purchase_id: Path<Text<Reference>>,
        body: JsonBody<RecordRefundBody>,
    ) -> Result<RefundResponse, ApiError> {
        let body = body.0;
        let cmd = RecordRefund {
            purchase_id: purchase_id.0.into_string(),
            refund_id: body.refund_id.into_string(),
            amount: Money::parse(body.amount.as_str(), &body.currency.0)?,
        };
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let recorded = purchases::refund(&mut tx, now, &cmd).await?;
        tx.commit().await?;
        Ok(RefundResponse::Created(
            Json(RefundRecordedView {
                refund_id: recorded.refund.platform_refund_id,
                purchase_id: cmd.purchase_id,
                amount: recorded.refund.amount.into(),
                refunded_at: recorded.refund.refunded_at,
                refunded_total: recorded.refunded_total.into(),
                refundable: recorded.refundable.into(),
            }),
            replayed(recorded.replayed),
        ))
    }
}
