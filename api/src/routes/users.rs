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
use crate::fields::{CodeText, EmailText, PlatformId, Text};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, UserView, example_instant, usd_view};

/// User endpoints.
pub struct UsersApi;

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
}
