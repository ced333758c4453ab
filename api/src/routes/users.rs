//! Users, their referral links, signups with attribution, referred users and wallets
//! (SPEC: Actors, Attribution, Referred-user status, Signup credit).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use referral_core::domain::attribution::NotAttributed;
use referral_core::domain::email::EmailAddress;
use referral_core::ids::ClickId;
use referral_core::store::credit::{self as credit_store, CreditGrant, usd};
use referral_core::store::ledger::{self, Account};
use referral_core::store::referrals::{self, Cursor, ReferralStatus};
use referral_core::store::users::{self, User};
use referral_core::usecases::credit as credit_usecase;
use referral_core::usecases::signup::{self, SignUp};
use referral_core::{Money, MoneyError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, UserView, user_view};

/// User endpoints.
pub struct UsersApi;

/// A user the platform creates at signup.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The platform's id for the user (unique).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub user_id: String,
    /// E-mail (unique, case-insensitive).
    pub email: String,
    /// Click id from the `ref_click` cookie set by `GET /r/{code}`, if any.
    pub click_id: Option<Uuid>,
    /// Referral code entered at signup or carried in `?ref=`, if any.
    pub referral_code: Option<String>,
}

impl Example for CreateUser {
    fn example() -> Self {
        Self {
            user_id: "user_8412".into(),
            email: "ana@example.com".into(),
            click_id: Some(Uuid::nil()),
            referral_code: None,
        }
    }
}

/// Why a signup was not attributed.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum NotAttributedReason {
    /// No click or code came with the signup.
    NoReferral,
    /// The click was more than 7 days old.
    Expired,
    /// The referrer is the user themself (same account or same normalized e-mail).
    SelfReferral,
    /// The code matches no user.
    UnknownCode,
    /// The click id matches no click.
    UnknownClick,
}

impl From<NotAttributed> for NotAttributedReason {
    fn from(reason: NotAttributed) -> Self {
        match reason {
            NotAttributed::NoReferral => Self::NoReferral,
            NotAttributed::Expired => Self::Expired,
            NotAttributed::SelfReferral => Self::SelfReferral,
            NotAttributed::UnknownCode => Self::UnknownCode,
            NotAttributed::UnknownClick => Self::UnknownClick,
        }
    }
}

/// The outcome of attributing a signup.
#[derive(Debug, Object)]
pub struct AttributionView {
    /// Whether a referrer gets credit for this signup.
    pub attributed: bool,
    /// The referrer's platform user id, when attributed.
    pub referrer_user_id: Option<String>,
    /// The attributing click, when attributed through a click.
    pub click_id: Option<Uuid>,
    /// Why not, when not attributed.
    pub reason: Option<NotAttributedReason>,
    /// Why not, for people.
    pub message: Option<String>,
    /// The signup credit on its way to the new user's wallet, when attributed.
    pub signup_credit: Option<ScheduledCredit>,
}

/// Credit granted by a job right after signup.
#[derive(Debug, Object)]
pub struct ScheduledCredit {
    /// Amount.
    pub amount: MoneyView,
    /// When what is left of it expires.
    pub expires_at: DateTime<Utc>,
}

/// A created user.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UserCreated {
    /// The user, with their own referral link.
    pub user: UserView,
    /// Whether the signup was attributed.
    pub attribution: AttributionView,
}

/// Referred-user status (SPEC: `NOT_SIGNED_UP` → `SIGNED_UP` → `CONVERTED`).
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReferralStatusView {
    /// A click on the link that never signed up.
    NotSignedUp,
    /// Signed up, no qualifying purchase yet.
    SignedUp,
    /// Made a qualifying purchase ("Made a Spend").
    Converted,
}

impl From<ReferralStatus> for ReferralStatusView {
    fn from(status: ReferralStatus) -> Self {
        match status {
            ReferralStatus::NotSignedUp => Self::NotSignedUp,
            ReferralStatus::SignedUp => Self::SignedUp,
            ReferralStatus::Converted => Self::Converted,
        }
    }
}

impl From<ReferralStatusView> for ReferralStatus {
    fn from(status: ReferralStatusView) -> Self {
        match status {
            ReferralStatusView::NotSignedUp => Self::NotSignedUp,
            ReferralStatusView::SignedUp => Self::SignedUp,
            ReferralStatusView::Converted => Self::Converted,
        }
    }
}

/// One referred user (or click session).
#[derive(Debug, Object)]
pub struct ReferredUser {
    /// Status.
    pub status: ReferralStatusView,
    /// Signup time, or click time for `NOT_SIGNED_UP`.
    pub at: DateTime<Utc>,
    /// The referred user's platform id (signed-up rows).
    pub user_id: Option<String>,
    /// The referred user's e-mail (signed-up rows).
    pub email: Option<String>,
    /// The click id (`NOT_SIGNED_UP` rows).
    pub click_id: Option<Uuid>,
    /// When they made their first qualifying purchase.
    pub converted_at: Option<DateTime<Utc>>,
}

/// A page of referred users, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ReferredUsersPage {
    /// The rows.
    pub items: Vec<ReferredUser>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One credit grant in a wallet.
#[derive(Debug, Object)]
pub struct CreditGrantView {
    /// Grant id.
    pub id: Uuid,
    /// Why it was granted (`SIGNUP`).
    pub reason: String,
    /// Granted amount.
    pub amount: MoneyView,
    /// What is left of it.
    pub remaining: MoneyView,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When what is left expires.
    pub expires_at: DateTime<Utc>,
    /// When it expired, if it has.
    pub expired_at: Option<DateTime<Utc>>,
}

/// One ledger entry of a wallet.
#[derive(Debug, Object)]
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

/// Spend wallet credit.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct SpendCredit {
    /// Decimal string with at most 2 decimals, greater than zero.
    pub amount: String,
    /// `USD`.
    pub currency: String,
    /// Your idempotency key for this spend (e.g. the purchase id).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub reference: String,
}

impl Example for SpendCredit {
    fn example() -> Self {
        Self {
            amount: "1.00".into(),
            currency: "USD".into(),
            reference: "purchase_1234".into(),
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
    /// Credit spendable after it.
    pub available: MoneyView,
}

fn example_instant(day: u32) -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(2026, 11, day)
        .and_then(|d| d.and_hms_opt(9, 30, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

fn usd_view(amount: &str) -> MoneyView {
    MoneyView {
        amount: amount.into(),
        currency: "USD".into(),
    }
}

impl Example for UserCreated {
    fn example() -> Self {
        let user = User {
            id: referral_core::ids::UserId(Uuid::nil()),
            platform_user_id: "user_8412".into(),
            email: "bo@example.com".into(),
            email_normalized: "bo@example.com".into(),
            referral_code: "az2mjqnv".into(),
            referred_by: None,
            attributed_click_id: None,
            signed_up_at: example_instant(2),
            converted_at: None,
        };
        Self {
            user: user_view(
                &user,
                Some("user_17".into()),
                "https://platform.example/join",
                Money::usd_cents(250),
            ),
            attribution: AttributionView {
                attributed: true,
                referrer_user_id: Some("user_17".into()),
                click_id: Some(Uuid::nil()),
                reason: None,
                message: None,
                signup_credit: Some(ScheduledCredit {
                    amount: usd_view("2.50"),
                    expires_at: example_instant(2) + chrono::Duration::days(30),
                }),
            },
        }
    }
}

impl Example for ReferredUsersPage {
    fn example() -> Self {
        Self {
            items: vec![
                ReferredUser {
                    status: ReferralStatusView::SignedUp,
                    at: example_instant(2),
                    user_id: Some("user_8412".into()),
                    email: Some("bo@example.com".into()),
                    click_id: None,
                    converted_at: None,
                },
                ReferredUser {
                    status: ReferralStatusView::NotSignedUp,
                    at: example_instant(1),
                    user_id: None,
                    email: None,
                    click_id: Some(Uuid::nil()),
                    converted_at: None,
                },
            ],
            next_cursor: None,
        }
    }
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
                expires_at: example_instant(2) + chrono::Duration::days(30),
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
enum CreateUserResponse {
    /// Created (attributed or not: see `attribution`).
    #[oai(status = 201)]
    Created(Json<UserCreated>),
}

#[derive(ApiResponse)]
enum SpendResponse {
    /// Spent.
    #[oai(status = 201)]
    Created(Json<CreditSpent>),
    /// This reference was spent before; nothing new was written.
    #[oai(status = 200)]
    Replayed(Json<CreditSpent>),
}

fn invalid_money(error: MoneyError) -> ApiError {
    match error {
        MoneyError::UnsupportedCurrency(_) => ApiError::new(
            poem::http::StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED_CURRENCY",
            format!("currency: {error}"),
        )
        .with_field("currency"),
        other => ApiError::invalid_field("amount", other),
    }
}

async fn user_by_platform_id(conn: &mut PgConnection, user_id: &str) -> Result<User, ApiError> {
    users::find_by_platform_id(conn, user_id)
        .await?
        .ok_or_else(|| ApiError::user_not_found(user_id))
}

async fn platform_id_of(
    conn: &mut PgConnection,
    id: Option<referral_core::ids::UserId>,
) -> Result<Option<String>, ApiError> {
    match id {
        Some(id) => Ok(users::find(conn, id).await?.map(|u| u.platform_user_id)),
        None => Ok(None),
    }
}

/// Credit spendable at `now`: what is left of grants not yet past their expiry.
fn available_credit(grants: &[CreditGrant], now: DateTime<Utc>) -> Result<Money, ApiError> {
    grants
        .iter()
        .filter(|g| g.expired_at.is_none() && g.expires_at > now)
        .try_fold(Money::zero(referral_core::Currency::Usd), |sum, g| {
            sum.checked_add(g.remaining()?)
                .map_err(|e| ApiError::internal(&e))
        })
}

#[OpenApi(prefix_path = "/v1/users", tag = "Tag::Referrals")]
impl UsersApi {
    /// Create a user (at signup). Attributes the signup to a referrer when it carries a
    /// click id (from the `ref_click` cookie) or a referral code: last click wins, within
    /// 7 days, never to the user themself. An attributed user gets $2.50 of credit
    /// (granted by a job) that expires 30 days after signup. A refused attribution still
    /// creates the user; `attribution.reason` says why.
    #[oai(path = "/", method = "post")]
    async fn create_user(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        body: JsonBody<CreateUser>,
    ) -> Result<CreateUserResponse, ApiError> {
        let body = body.0;
        let email =
            EmailAddress::parse(&body.email).map_err(|e| ApiError::invalid_field("email", e))?;
        let signup = SignUp {
            platform_user_id: body.user_id,
            email,
            click_id: body.click_id.map(ClickId),
            referral_code: body.referral_code.filter(|c| !c.trim().is_empty()),
        };
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let outcome = signup::sign_up(&mut tx, now, &state.settings, &signup).await?;
        tx.commit().await?;
        let referrer = outcome
            .attribution
            .as_ref()
            .ok()
            .map(|a| a.referrer_platform_id.clone());

        let attribution = match outcome.attribution {
            Ok(a) => AttributionView {
                attributed: true,
                referrer_user_id: referrer.clone(),
                click_id: a.click_id.map(|c| c.0),
                reason: None,
                message: None,
                signup_credit: outcome.credit_expires_at.map(|expires_at| ScheduledCredit {
                    amount: state.settings.signup_credit.into(),
                    expires_at,
                }),
            },
            Err(reason) => AttributionView {
                attributed: false,
                referrer_user_id: None,
                click_id: None,
                reason: Some(reason.into()),
                message: Some(reason.to_string()),
                signup_credit: None,
            },
        };
        Ok(CreateUserResponse::Created(Json(UserCreated {
            user: user_view(
                &outcome.user,
                referrer,
                &state.config.public_base_url,
                state.settings.signup_credit,
            ),
            attribution,
        })))
    }

    /// A user, with their referral link and share intents.
    #[oai(path = "/:user_id", method = "get")]
    async fn get_user(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<String>,
    ) -> Result<Json<UserView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let user = user_by_platform_id(&mut conn, &user_id.0).await?;
        let referrer = platform_id_of(&mut conn, user.referred_by).await?;
        Ok(Json(user_view(
            &user,
            referrer,
            &state.config.public_base_url,
            state.settings.signup_credit,
        )))
    }

    /// The users a referrer brought, newest first: signups (`SIGNED_UP`, `CONVERTED`)
    /// and clicks on their link that never signed up (`NOT_SIGNED_UP`).
    #[oai(path = "/:user_id/referrals", method = "get")]
    async fn referrals(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<String>,
        /// Only rows with this status.
        status: Query<Option<ReferralStatusView>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Rows per page (1–100, default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> Result<Json<ReferredUsersPage>, ApiError> {
        let after =
            match cursor.0.as_deref() {
                Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                    ApiError::invalid_field("cursor", "not a cursor from this API")
                })?),
                None => None,
            };
        let limit = limit.0.unwrap_or(20);
        let mut conn = state.pool.acquire().await?;
        let referrer = user_by_platform_id(&mut conn, &user_id.0).await?;
        let mut rows = referrals::page(
            &mut conn,
            referrer.id,
            status.0.map(Into::into),
            after,
            limit + 1,
        )
        .await?;
        let next_cursor = if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            rows.pop();
            rows.last().map(|r| Cursor { at: r.at, id: r.id }.encode())
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|r| ReferredUser {
                status: r.status.into(),
                at: r.at,
                click_id: (r.status == ReferralStatus::NotSignedUp).then_some(r.id),
                user_id: r.platform_user_id,
                email: r.email,
                converted_at: r.converted_at,
            })
            .collect();
        Ok(Json(ReferredUsersPage { items, next_cursor }))
    }

    /// A user's wallet: credit available now, each grant with what is left and when it
    /// expires, and the wallet's ledger entries.
    #[oai(path = "/:user_id/wallet", method = "get")]
    async fn wallet(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<String>,
    ) -> Result<Json<WalletView>, ApiError> {
        let now = state.clock.now();
        let mut conn = state.pool.acquire().await?;
        let user = user_by_platform_id(&mut conn, &user_id.0).await?;
        let grants = credit_store::grants_of(&mut conn, user.id).await?;
        let entries = ledger::entries(&mut conn, user.id, Account::Wallet).await?;
        let available = available_credit(&grants, now)?;
        Ok(Json(WalletView {
            user_id: user.platform_user_id,
            available: available.into(),
            // The balance is the ledger's sum; the entries are already here.
            balance: entries
                .iter()
                .try_fold(Money::zero(referral_core::Currency::Usd), |sum, e| {
                    sum.checked_add(usd(e.amount)?)
                        .map_err(|err| ApiError::internal(&err))
                })?
                .into(),
            grants: grants
                .into_iter()
                .map(|g| {
                    Ok(CreditGrantView {
                        id: g.id.0,
                        amount: g.amount()?.into(),
                        remaining: g.remaining()?.into(),
                        reason: g.reason,
                        granted_at: g.granted_at,
                        expires_at: g.expires_at,
                        expired_at: g.expired_at,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            entries: entries
                .into_iter()
                .map(|e| {
                    Ok(LedgerEntryView {
                        id: e.id,
                        kind: e.kind.as_str().to_owned(),
                        amount: usd(e.amount)?.into(),
                        credit_grant_id: e.credit_grant_id.map(|g| g.0),
                        occurred_at: e.occurred_at,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        }))
    }

    /// Spend wallet credit, soonest-expiring first. Idempotent by `reference`: the same
    /// reference and amount again returns the first result (200) and writes nothing.
    /// More than the unexpired balance is refused (409) with nothing written.
    #[oai(path = "/:user_id/wallet/spend", method = "post")]
    async fn spend(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<String>,
        body: JsonBody<SpendCredit>,
    ) -> Result<SpendResponse, ApiError> {
        let amount = Money::parse(&body.0.amount, &body.0.currency).map_err(invalid_money)?;
        if !amount.is_positive() {
            return Err(ApiError::invalid_field("amount", MoneyError::NotPositive));
        }
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let user = user_by_platform_id(&mut tx, &user_id.0).await?;
        let outcome =
            credit_usecase::spend_credit(&mut tx, now, user.id, amount, &body.0.reference).await?;
        let grants = credit_store::grants_of(&mut tx, user.id).await?;
        let available = available_credit(&grants, now)?;
        tx.commit().await?;
        let view = CreditSpent {
            reference: outcome.spend.reference,
            amount: usd(outcome.spend.amount)?.into(),
            spent_at: outcome.spend.spent_at,
            available: available.into(),
        };
        Ok(if outcome.replayed {
            SpendResponse::Replayed(Json(view))
        } else {
            SpendResponse::Created(Json(view))
        })
    }
}
