//! Clicks on referral links (SPEC: Attribution, rule 1): the browser redirect and the
//! JSON endpoint for platforms that track on their side.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use referral_core::domain::clicks::{Click, ClickMeta, ClickSource};
use std::net::IpAddr;
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::fields::{ClickMetaText, CodeText, Text, TextRule};
use crate::routes::Tag;
use crate::routes::dto::url_with;

/// The cookie that carries the last click id for 7 days.
pub const CLICK_COOKIE: &str = "ref_click";

/// Click endpoints.
pub struct ClicksApi;

/// A click tracked on the platform's side.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RecordClick {
    /// The code of the link clicked.
    pub referral_code: Text<CodeText>,
    /// Visitor IP (IPv4 or IPv6).
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub ip: Option<IpAddr>,
    /// Visitor user agent.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub user_agent: Option<Text<ClickMetaText>>,
    /// Referer of the click.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub referer: Option<Text<ClickMetaText>>,
    /// Page the visitor landed on.
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub landing_page: Option<Text<ClickMetaText>>,
}

impl Example for RecordClick {
    fn example() -> Self {
        Self {
            referral_code: Text::known("k7m2x9qa"),
            ip: Some(IpAddr::from([203, 0, 113, 7])),
            user_agent: Some(Text::known("Mozilla/5.0")),
            referer: Some(Text::known("https://x.com/")),
            landing_page: Some(Text::known("https://platform.example/pricing")),
        }
    }
}

/// A recorded click.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ClickRecorded {
    /// Pass it as `click_id` when the visitor signs up.
    pub click_id: Uuid,
    /// The platform id of the link's owner.
    pub referrer_user_id: String,
    /// When the click happened.
    pub clicked_at: DateTime<Utc>,
    /// A signup after this instant is no longer attributed to this click.
    pub attribution_expires_at: DateTime<Utc>,
}

impl Example for ClickRecorded {
    fn example() -> Self {
        let clicked_at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        Self {
            click_id: Uuid::nil(),
            referrer_user_id: "user_17".into(),
            clicked_at,
            attribution_expires_at: clicked_at + chrono::Duration::days(7),
        }
    }
}

#[derive(ApiResponse)]
enum RecordClickResponse {
    /// Recorded.
    #[oai(status = 201)]
    Created(Json<ClickRecorded>),
}

#[derive(ApiResponse)]
enum RedirectResponse {
    /// Recorded; off to the landing page with `ref=CODE` (and `click_id`), and the
    /// `ref_click` cookie (HttpOnly, SameSite=Lax, 7 days) carries the click id.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// Too many requests from this address: nothing recorded; come back after
    /// `Retry-After` seconds. Other visitors are not affected.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

/// A browser header as click metadata: visible ASCII only (what `to_str` accepts), cut
/// to the length the JSON endpoint allows.
fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(ClickMetaText::MAX_CHARS).collect())
}

/// The address a visitor's requests are counted under: the connection's peer, or behind
/// a trusted proxy (`TRUST_FORWARDED_FOR`) the first `X-Forwarded-For` hop.
/// The visitor's address: the first `X-Forwarded-For` hop when the proxy is trusted to
/// set it, the connection's peer otherwise.
pub(crate) fn visitor_ip(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        client_ip(req)
    } else {
        req.remote_addr().as_socket_addr().map(|addr| addr.ip())
    }
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    // Behind a proxy the first X-Forwarded-For hop is the visitor; it is metadata only,
    // so a hop that is not an address is dropped rather than stored.
    header(req, "x-forwarded-for")
        .and_then(|v| v.split(',').next().and_then(|ip| ip.trim().parse().ok()))
        .or_else(|| req.remote_addr().as_socket_addr().map(|addr| addr.ip()))
}

impl ClicksApi {
    async fn redirect(
        &self,
        state: &AppState,
        req: &Request,
        code: &str,
    ) -> Result<RedirectResponse, ApiError> {
        if let Some(limiter) = &state.redirect_limiter
            && let Some(address) = visitor_ip(req, state.config.trust_forwarded_for)
            && let Err(wait) = limiter.check(address, std::time::Instant::now())
        {
            let error = ApiError::new(
                ErrorCode::RateLimited,
                "too many link visits from this address; try again after Retry-After seconds",
            );
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Ok(RedirectResponse::TooManyRequests(
                Json(error.body().clone()),
                seconds,
            ));
        }
        let now = state.clock.now();
        let landing = &state.config.landing_url;
        let meta = ClickMeta {
            ip: client_ip(req),
            user_agent: header(req, "user-agent"),
            referer: header(req, "referer"),
            landing_page: Some(landing.clone()),
        };
        let click = state
            .clicks
            .record(now, code, ClickSource::Redirect, meta)
            .await?;
        let location = url_with(
            landing,
            &[("ref", code), ("click_id", &click.id.to_string())],
        );
        let secure = if state.config.public_base_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{CLICK_COOKIE}={}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            click.id,
            state.settings.attribution_window.num_seconds()
        );
        Ok(RedirectResponse::Found(location, cookie, "no-store".into()))
    }

    fn recorded(state: &AppState, click: Click) -> ClickRecorded {
        ClickRecorded {
            click_id: click.id.0,
            referrer_user_id: click.referrer_platform_id,
            clicked_at: click.clicked_at,
            attribution_expires_at: click.clicked_at + state.settings.attribution_window,
        }
    }
}

#[OpenApi(tag = "Tag::Referrals")]
impl ClicksApi {
    /// Follow a referral link: records the click, sets the `ref_click` attribution
    /// cookie (7 days) and redirects to the landing page. Public: no API key.
    #[oai(path = "/r/:code", method = "get", operation_id = "followLink")]
    async fn follow_link(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// The referral code.
        code: Path<Text<CodeText>>,
    ) -> Result<RedirectResponse, ApiError> {
        self.redirect(&state, req, code.0.as_str()).await
    }

    /// Follow a share link of the form `PUBLIC_BASE_URL?ref=CODE` (same as `/r/{code}`).
    #[oai(path = "/r", method = "get", operation_id = "followShareLink")]
    async fn follow_share_link(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// The referral code.
        #[oai(name = "ref")]
        code: Query<Text<CodeText>>,
    ) -> Result<RedirectResponse, ApiError> {
        self.redirect(&state, req, code.0.as_str()).await
    }

    /// Record a click tracked on the platform's side. Returns the click id to pass at
    /// signup and when its 7-day attribution window closes.
    #[oai(path = "/v1/clicks", method = "post", operation_id = "recordClick")]
    async fn record_click(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        body: JsonBody<RecordClick>,
    ) -> Result<RecordClickResponse, ApiError> {
        let body = body.0;
        let meta = ClickMeta {
            ip: body.ip,
            user_agent: body.user_agent.map(Text::into_string),
            referer: body.referer.map(Text::into_string),
            landing_page: body.landing_page.map(Text::into_string),
        };
        let now = state.clock.now();
        let click = state
            .clicks
            .record(now, body.referral_code.as_str(), ClickSource::Api, meta)
            .await?;
        Ok(RecordClickResponse::Created(Json(Self::recorded(
            &state, click,
        ))))
    }
}
