//! A user's wallet of platform credit (SPEC: Signup credit): what is spendable, each
//! grant and ledger entry, and spending it idempotently.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use referral_core::usecases::wallet;
use referral_core::{Currency, Money};
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{AmountText, CurrencyCode, PlatformId, Reference, Text};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, example_instant, usd_view};

/// Wallet endpoints.
pub struct WalletApi;

/// One credit grant in a wallet.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreditGrantView {
    /// Grant id.
    pub id: Uuid,
    /// Why it was granted: `SIGNUP` (expires) or `COMMISSION` (never expires).
    pub reason: String,
    /// Granted amount.
    pub amount: MoneyView,
    /// What is left of it.
    pub remaining: MoneyView,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When what is left expires; absent for credit that never expires (commission).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it expired, if it has.
    pub expired_at: Option<DateTime<Utc>>,
}

/// One ledger entry of a wallet.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LedgerEntryView {
    /// Sequence number.
    pub id: i64,
    /// `CREDIT_GRANTED`, `CREDIT_SPENT` or `CREDIT_EXPIRED`.
    pub kind: String,
    /// Signed amount: positive into the wallet, negative out.
    pub amount: MoneyView,
    /// The grant concerned.
    pub credit_grant_id: Option<Uuid>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// A user's wallet of platform credit.
#[derive(Debug, Object)]
#[oai(example)]
pub struct WalletView {
    /// The platform's id for the user.
    pub user_id: String,
    /// Credit spendable now (unexpired grants).
    pub available: MoneyView,
    /// Sum of the wallet's ledger entries (includes credit past its expiry instant
    /// until the expiry job has run).
    pub balance: MoneyView,
    /// Grants, soonest-expiring first.
    pub grants: Vec<CreditGrantView>,
    /// Ledger entries, oldest first.
    pub entries: Vec<LedgerEntryView>,
}

impl Example for WalletView {
    fn example() -> Self {
        Self {
            user_id: "user_8412".into(),
            available: usd_view("1.50"),
            balance: usd_view("1.50"),
            grants: vec![CreditGrantView {
                id: Uuid::nil(),
                reason: "SIGNUP".into(),
                amount: usd_view("2.50"),
                remaining: usd_view("1.50"),
                granted_at: example_instant(2),
                expires_at: Some(example_instant(2) + chrono::Duration::days(30)),
                expired_at: None,
            }],
            entries: vec![
                LedgerEntryView {
                    id: 1,
                    kind: "CREDIT_GRANTED".into(),
                    amount: usd_view("2.50"),
                    credit_grant_id: Some(Uuid::nil()),
                    occurred_at: example_instant(2),
                },
                LedgerEntryView {
                    id: 2,
                    kind: "CREDIT_SPENT".into(),
                    amount: usd_view("-1.00"),
                    credit_grant_id: Some(Uuid::nil()),
                    occurred_at: example_instant(5),
                },
            ],
        }
    }
}

/// Spend wallet credit.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct SpendCredit {
    /// Decimal string greater than zero with at most 2 decimals, e.g. `"1.00"`.
    pub amount: Text<AmountText>,
    /// `USD`.
    pub currency: CurrencyCode,
    /// Your idempotency key for this spend (e.g. the purchase id).
    pub reference: Text<Reference>,
}

impl Example for SpendCredit {
    fn example() -> Self {
        Self {
            amount: Text::known("1.00"),
            currency: CurrencyCode("USD".into()),
            reference: Text::known("purchase_1234"),
        }
    }
}

/// A spend of wallet credit.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CreditSpent {
    /// Your reference.
    pub reference: String,
    /// Amount spent.
    pub amount: MoneyView,
    /// When.
    pub spent_at: DateTime<Utc>,
    /// Credit spendable right after the spend.
    pub available: MoneyView,
}

impl Example for CreditSpent {
    fn example() -> Self {
        Self {
            reference: "purchase_1234".into(),
            amount: usd_view("1.00"),
            spent_at: example_instant(5),
            available: usd_view("1.50"),
        }
    }
}

#[derive(ApiResponse)]
enum SpendResponse {
    /// Spent; a replay of the same reference and amount answers the same status and
    /// body, with `Idempotent-Replayed: true`, and writes nothing.
    #[oai(status = 201)]
    Created(
        Json<CreditSpent>,
        /// `true` when this answer repeats an earlier spend of the reference.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[OpenApi(prefix_path = "/v1/users", tag = "Tag::Referrals")]
impl WalletApi {
    /// A user's wallet: credit available now, each grant with what is left and when it
    /// expires, and the wallet's ledger entries.
    #[oai(path = "/:user_id/wallet", method = "get", operation_id = "getWallet")]
    async fn wallet(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<WalletView>, ApiError> {
        let now = state.clock.now();
        let mut conn = state.pool.acquire().await?;
        let wallet = wallet::view(
            &mut conn,
            now,
            Money::zero(Currency::Usd),
            user_id.0.as_str(),
        )
        .await?;
        Ok(Json(WalletView {
            user_id: wallet.user.platform_user_id,
            available: wallet.available.into(),
            balance: wallet.balance.into(),
            grants: wallet
                .grants
                .into_iter()
                .map(|g| CreditGrantView {
                    id: g.id.0,
                    reason: g.reason.as_str().to_owned(),
                    amount: g.amount.into(),
                    remaining: g.remaining.into(),
                    granted_at: g.granted_at,
                    expires_at: g.expires_at,
                    expired_at: g.expired_at,
                })
                .collect(),
            entries: wallet
                .entries
                .into_iter()
                .map(|e| LedgerEntryView {
                    id: e.id,
                    kind: e.kind.as_str().to_owned(),
                    amount: e.amount.into(),
                    credit_grant_id: e.credit_grant_id.map(|g| g.0),
                    occurred_at: e.occurred_at,
                })
                .collect(),
        }))
    }

    /// Spend wallet credit, soonest-expiring first. Idempotent by `reference`: the same
    /// reference and amount again answers the first result and writes nothing; the same
    /// reference with another amount is 409. More than the unexpired balance is refused
    /// (409) with nothing written.
    #[oai(
        path = "/:user_id/wallet/spend",
        method = "post",
        operation_id = "spendCredit"
    )]
    async fn spend(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
        body: JsonBody<SpendCredit>,
    ) -> Result<SpendResponse, ApiError> {
        let amount = Money::parse(body.0.amount.as_str(), &body.0.currency.0)?;
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let outcome = wallet::spend(
            &mut tx,
            now,
            user_id.0.as_str(),
            amount,
            body.0.reference.as_str(),
        )
        .await?;
        tx.commit().await?;
        let view = CreditSpent {
            reference: outcome.spend.reference,
            amount: outcome.spend.amount.into(),
            spent_at: outcome.spend.spent_at,
            available: outcome.available_after.into(),
        };
        Ok(SpendResponse::Created(
            Json(view),
            outcome.replayed.then(|| "true".to_owned()),
        ))
    }
}
