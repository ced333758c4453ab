//! Users and their signups (SPEC: Actors, Attribution): creating a user attributes the
//! signup and schedules its credit; reading one shows their link and share intents.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use referral_core::domain::attribution::NotAttributed;
use referral_core::domain::email::EmailAddress;
use referral_core::ids::ClickId;
use referral_core::usecases::signup::{self, SignUp};
use referral_core::usecases::users::{self, UserProfile};
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{Bounded, CodeText, EmailText, PlatformId, Text};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, UserView, example_instant, usd_view};

/// User endpoints.
pub struct UsersApi;

/// How long an embed token lasts, in seconds: 1 to 60 minutes.
pub type EmbedSeconds = Bounded<60, 3600>;

/// A request for an embed token.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct CreateEmbedToken {
    /// How long the token opens the dashboard, in seconds (60–3600, default 900). A page
    /// left open longer asks the user to open it again from your app.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub ttl_seconds: Option<EmbedSeconds>,
}

impl Example for CreateEmbedToken {
    fn example() -> Self {
        Self {
            ttl_seconds: Some(Bounded(900)),
        }
    }
}

/// A token that opens one user's referral dashboard.
#[derive(Debug, Object)]
#[oai(example)]
pub struct EmbedTokenView {
    /// The token (opaque).
    pub token: String,
    /// The dashboard for this user, to put in an iframe's `src` or redirect the browser
    /// to: `API_PUBLIC_URL/embed/dashboard?token=...`.
    pub url: String,
    /// The same address without the host.
    pub path: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

impl Example for EmbedTokenView {
    fn example() -> Self {
        Self {
            token: "dash.757365725f38343132.1795772700.9f2c…".into(),
            url: "http://localhost:8080/embed/dashboard?token=dash.757365725f38343132.1795772700.9f2c…".into(),
            path: "/embed/dashboard?token=dash.757365725f38343132.1795772700.9f2c…".into(),
            expires_at: example_instant(26),
        }
    }
}

/// A user the platform creates at signup.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The platform's id for the user (unique).
    pub user_id: Text<PlatformId>,
    /// E-mail (unique, case-insensitive).
    pub email: Text<EmailText>,
    /// Click id from the `ref_click` cookie set by `GET /r/{code}`, if any.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub click_id: Option<Uuid>,
    /// Referral code entered at signup or carried in `?ref=`, if any.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub referral_code: Option<Text<CodeText>>,
}

impl Example for CreateUser {
    fn example() -> Self {
        Self {
            user_id: Text::known("user_8412"),
            email: Text::known("bo@example.com"),
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
#[oai(skip_serializing_if_is_none)]
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

impl Example for UserCreated {
    fn example() -> Self {
        let user = UserView::example();
        Self {
            attribution: AttributionView {
                attributed: true,
                referrer_user_id: user.referred_by.clone(),
                click_id: Some(Uuid::nil()),
                reason: None,
                message: None,
                signup_credit: Some(ScheduledCredit {
                    amount: usd_view("2.50"),
                    expires_at: example_instant(2) + chrono::Duration::days(30),
                }),
            },
            user,
        }
    }
}

#[derive(ApiResponse)]
enum CreateUserResponse {
    /// Created (attributed or not: see `attribution`).
    #[oai(status = 201)]
    Created(Json<UserCreated>),
}

#[OpenApi(prefix_path = "/v1/users", tag = "Tag::Referrals")]
impl UsersApi {
    /// Create a user (at signup). Attributes the signup to a referrer when it carries a
    /// click id (from the `ref_click` cookie) or a referral code: last click wins, within
    /// 7 days, never to the user themself. An attributed user gets $2.50 of credit
    /// (granted by a job) that expires 30 days after signup. A refused attribution still
    /// creates the user; `attribution.reason` says why.
    #[oai(path = "/", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        body: JsonBody<CreateUser>,
    ) -> Result<CreateUserResponse, ApiError> {
        let body = body.0;
        let email = EmailAddress::parse(body.email.as_str())
            .map_err(|e| ApiError::invalid_field("email", e))?;
        let signup = SignUp {
            platform_user_id: body.user_id.into_string(),
            email,
            click_id: body.click_id.map(ClickId),
            referral_code: body
                .referral_code
                .map(Text::into_string)
                .filter(|c| !c.trim().is_empty()),
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
        let profile = UserProfile {
            user: outcome.user,
            referred_by: referrer,
        };
        Ok(CreateUserResponse::Created(Json(UserCreated {
            user: UserView::of(&profile, &state),
            attribution,
        })))
    }

    /// A user, with their referral link and share intents.
    #[oai(path = "/:user_id", method = "get", operation_id = "getUser")]
    async fn get_user(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<UserView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let profile = users::profile(&mut conn, user_id.0.as_str()).await?;
        Ok(Json(UserView::of(&profile, &state)))
    }

    /// Issue an embed token: a short-lived, signed token that opens this user's referral
    /// dashboard (link, stats, referred users, commissions with CSV export, earnings
    /// chart, wallet, Partner upgrade, Stripe onboarding and payouts). Everything the
    /// page shows or does is this user's and nobody else's. Ask for a new token each
    /// time you show the page; never put a platform key in a browser.
    #[oai(
        path = "/:user_id/embed-tokens",
        method = "post",
        operation_id = "createEmbedToken"
    )]
    async fn create_embed_token(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
        body: JsonBody<CreateEmbedToken>,
    ) -> Result<CreateEmbedTokenResponse, ApiError> {
        let ttl = chrono::Duration::seconds(body.0.ttl_seconds.map_or(900, |s| s.0));
        let secret = state.page_secret.get(&state.pool).await?;
        let mut conn = state.pool.acquire().await?;
        let issued = referral_core::usecases::pages::issue_dashboard_token(
            &mut conn,
            &secret,
            state.clock.now(),
            user_id.0.as_str(),
            ttl,
        )
        .await?;
        let path = crate::pages::dashboard::dashboard_path(&issued.token, &[]);
        Ok(CreateEmbedTokenResponse::Created(Json(EmbedTokenView {
            url: format!("{}{path}", state.config.pages.api_public_url),
            path,
            token: issued.token,
            expires_at: issued.expires_at,
        })))
    }
}

#[derive(ApiResponse)]
enum CreateEmbedTokenResponse {
    /// Issued.
    #[oai(status = 201)]
    Created(Json<EmbedTokenView>),
}
