//! The Partner track (SPEC: Partner program): the agreement, upgrading by signing it,
//! and going back to Basic.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use referral_core::domain::commission::Track;
use referral_core::domain::partner::current_agreement;
use referral_core::usecases::partner::{self, PartnerStatus, SignAgreement};

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::fields::{ClickMetaText, FullNameText, PlatformId, Sha256Text, Text, VersionText};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, example_instant, usd_view};
use crate::routes::purchases::TrackView;

/// Partner endpoints.
pub struct PartnerApi;

/// The partner agreement a user signs today.
#[derive(Debug, Object)]
pub struct AgreementView {
    /// Its version: sign with it.
    pub version: String,
    /// SHA-256 of `text`, hex: sign with it.
    pub sha256: String,
    /// The agreement, to show the user in full.
    pub text: String,
}

/// A signature of the partner agreement.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct SignAgreementBody {
    /// The version of the agreement shown to the user.
    pub agreement_version: Text<VersionText>,
    /// The SHA-256 of the text shown to the user.
    pub agreement_sha256: Text<Sha256Text>,
    /// The full name the user typed to sign.
    pub full_name: Text<FullNameText>,
    /// The user's IP when they signed (their browser's, not your server's).
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub ip: Option<IpAddr>,
    /// The user's browser when they signed.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub user_agent: Option<Text<ClickMetaText>>,
}

impl Example for SignAgreementBody {
    fn example() -> Self {
        let agreement = current_agreement();
        Self {
            agreement_version: Text::known(agreement.version),
            agreement_sha256: Text::known(&agreement.sha256),
            full_name: Text::known("Ana María Souza"),
            ip: Some(IpAddr::from([203, 0, 113, 7])),
            user_agent: Some(Text::known("Mozilla/5.0")),
        }
    }
}

/// A signature as stored.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SignatureView {
    /// The version signed.
    pub agreement_version: String,
    /// SHA-256 of the text signed.
    pub agreement_sha256: String,
    /// The typed full name.
    pub full_name: String,
    /// The signer's IP.
    pub ip: Option<String>,
    /// The signer's browser.
    pub user_agent: Option<String>,
    /// When.
    pub signed_at: DateTime<Utc>,
}

/// Where a user stands on the Partner track.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PartnerStatusView {
    /// `BASIC` or `PARTNER`.
    pub track: TrackView,
    /// Their latest signature of the agreement.
    pub signature: Option<SignatureView>,
    /// Partner earnings not yet withdrawn (may be negative after a reversal).
    pub referral_balance: MoneyView,
}

impl From<PartnerStatus> for PartnerStatusView {
    fn from(status: PartnerStatus) -> Self {
        Self {
            track: match status.track {
                Track::Basic => TrackView::Basic,
                Track::Partner => TrackView::Partner,
            },
            signature: status.signature.map(|s| SignatureView {
                agreement_version: s.agreement_version,
                agreement_sha256: s.agreement_sha256,
                full_name: s.full_name,
                ip: s.ip,
                user_agent: s.user_agent,
                signed_at: s.signed_at,
            }),
            referral_balance: status.referral_balance.into(),
        }
    }
}

impl Example for PartnerStatusView {
    fn example() -> Self {
        let agreement = current_agreement();
        Self {
            track: TrackView::Partner,
            signature: Some(SignatureView {
                agreement_version: agreement.version.into(),
                agreement_sha256: agreement.sha256,
                full_name: "Ana María Souza".into(),
                ip: Some("203.0.113.7".into()),
                user_agent: Some("Mozilla/5.0".into()),
                signed_at: example_instant(4),
            }),
            referral_balance: usd_view("0.00"),
        }
    }
}

#[derive(ApiResponse)]
enum UpgradeResponse {
    /// The user is a Partner: new commissions are 10 %, paid into the referral balance.
    #[oai(status = 201)]
    Created(Json<PartnerStatusView>),
}

#[OpenApi(tag = "Tag::Referrals")]
impl PartnerApi {
    /// The partner agreement a user signs today: show its text, then send its version and
    /// SHA-256 with the signature.
    #[oai(
        path = "/v1/partner-agreement",
        method = "get",
        operation_id = "getPartnerAgreement"
    )]
    // A `Result` although nothing here fails: the key check can, and the spec then lists
    // its error answers.
    async fn agreement(&self, _key: PlatformKey) -> Result<Json<AgreementView>, ApiError> {
        let agreement = current_agreement();
        Ok(Json(AgreementView {
            version: agreement.version.into(),
            sha256: agreement.sha256,
            text: agreement.text.into(),
        }))
    }

    /// Where a user stands on the Partner track.
    #[oai(
        path = "/v1/users/:user_id/partner",
        method = "get",
        operation_id = "getPartnerStatus"
    )]
    async fn status(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<PartnerStatusView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        Ok(Json(
            partner::status(&mut conn, user_id.0.as_str()).await?.into(),
        ))
    }

    /// Upgrade to Partner: the user accepts the current agreement (its version and
    /// SHA-256) and signs with their typed full name; the signature is kept with its time,
    /// IP and user agent. From then on their new commissions are 10 %, paid into the
    /// referral balance. A Partner upgrading again is 409 `ALREADY_PARTNER`; another
    /// agreement than the current one is 409 `AGREEMENT_NOT_CURRENT`.
    #[oai(
        path = "/v1/users/:user_id/partner",
        method = "post",
        operation_id = "upgradeToPartner"
    )]
    async fn upgrade(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
        body: JsonBody<SignAgreementBody>,
    ) -> Result<UpgradeResponse, ApiError> {
        let body = body.0;
        let signed = SignAgreement {
            agreement_version: body.agreement_version.into_string(),
            agreement_sha256: body.agreement_sha256.into_string(),
            full_name: body.full_name.into_string(),
            ip: body.ip.map(|ip| ip.to_string()),
            user_agent: body.user_agent.map(Text::into_string),
        };
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let status = partner::upgrade(&mut tx, now, user_id.0.as_str(), signed).await?;
        tx.commit().await?;
        Ok(UpgradeResponse::Created(Json(status.into())))
    }

    /// Go back to Basic: only with a zero referral balance (409
    /// `REFERRAL_BALANCE_NOT_ZERO`) and no `PENDING` or `ELIGIBLE` commission (409
    /// `COMMISSIONS_OUTSTANDING`) and no payout on its way (409 `PAYOUTS_IN_FLIGHT`); a
    /// user who is not a Partner is 409 `NOT_A_PARTNER`.
    #[oai(
        path = "/v1/users/:user_id/partner",
        method = "delete",
        operation_id = "convertToBasic"
    )]
    async fn downgrade(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<PartnerStatusView>, ApiError> {
        let mut tx = state.pool.begin().await?;
        let status = partner::downgrade(&mut tx, user_id.0.as_str()).await?;
        tx.commit().await?;
        Ok(Json(status.into()))
    }
}
