//! Clicks on referral links (SPEC: Attribution, rule 1): the browser redirect and the
//! JSON endpoint for platforms that track on their side.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use referral_core::store::clicks::{Click, ClickMeta, ClickSource};
use referral_core::usecases::clicks::record_click;
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::Tag;
use crate::routes::dto::url_with;

/// The cookie that carries the last click id for 7 days.
pub const CLICK_COOKIE: &str = "ref_click";

/// Click endpoints.
pub struct ClicksApi;

/// A click tracked on the platform's side.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example)]
#[serde(deny_unknown_fields)]
pub struct RecordClick {
    /// The code of the link clicked.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub referral_code: String,
    /// Visitor IP.
    pub ip: Option<String>,
    /// Visitor user agent.
    pub user_agent: Option<String>,
    /// Referer of the click.
    pub referer: Option<String>,
    /// Page the visitor landed on.
    pub landing_page: Option<String>,
}

impl Example for RecordClick {
    fn example() -> Self {
        Self {
            referral_code: "k7m2x9qa".into(),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            referer: Some("https://x.com/".into()),
            landing_page: Some("https://platform.example/pricing".into()),
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
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(1024).collect())
}

fn client_ip(req: &Request) -> Option<String> {
    // Behind a proxy the first X-Forwarded-For hop is the visitor; it is metadata only.
    header(req, "x-forwarded-for")
        .and_then(|v| v.split(',').next().map(|ip| ip.trim().to_owned()))
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            req.remote_addr()
                .as_socket_addr()
                .map(|addr| addr.ip().to_string())
        })
}

impl ClicksApi {
    async fn redirect(
        &self,
        state: &AppState,
        req: &Request,
        code: &str,
    ) -> Result<RedirectResponse, ApiError> {
        let now = state.clock.now();
        let landing = &state.config.landing_url;
        let meta = ClickMeta {
            ip: client_ip(req),
            user_agent: header(req, "user-agent"),
            referer: header(req, "referer"),
            landing_page: Some(landing.clone()),
        };
        let mut conn = state.pool.acquire().await?;
        let click = record_click(&mut conn, now, code, ClickSource::Redirect, &meta).await?;
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
    #[oai(path = "/r/:code", method = "get")]
    async fn follow_link(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// The referral code.
        code: Path<String>,
    ) -> Result<RedirectResponse, ApiError> {
        self.redirect(&state, req, &code.0).await
    }

    /// Follow a share link of the form `PUBLIC_BASE_URL?ref=CODE` (same as `/r/{code}`).
    #[oai(path = "/r", method = "get")]
    async fn follow_share_link(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// The referral code.
        #[oai(name = "ref")]
        code: Query<String>,
    ) -> Result<RedirectResponse, ApiError> {
        self.redirect(&state, req, &code.0).await
    }

    /// Record a click tracked on the platform's side. Returns the click id to pass at
    /// signup and when its 7-day attribution window closes.
    #[oai(path = "/v1/clicks", method = "post")]
    async fn record_click(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        body: JsonBody<RecordClick>,
    ) -> Result<RecordClickResponse, ApiError> {
        let body = body.0;
        let meta = ClickMeta {
            ip: body.ip,
            user_agent: body.user_agent,
            referer: body.referer,
            landing_page: body.landing_page,
        };
        let now = state.clock.now();
        let mut conn = state.pool.acquire().await?;
        let click =
            record_click(&mut conn, now, &body.referral_code, ClickSource::Api, &meta).await?;
        Ok(RecordClickResponse::Created(Json(Self::recorded(
            &state, click,
        ))))
    }
}
