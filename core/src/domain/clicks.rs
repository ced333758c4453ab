//! Clicks on referral links (SPEC: Attribution, rule 1).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::ids::{ClickId, UserId};

/// Where a click was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ClickSource {
    /// `GET /r/{code}` in a browser.
    Redirect,
    /// The JSON endpoint, for platforms that track on their side.
    Api,
}

impl ClickSource {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redirect => "redirect",
            Self::Api => "api",
        }
    }
}

/// A click about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClick {
    /// Its id, chosen before it is stored.
    pub id: ClickId,
    /// The code of the link clicked.
    pub code: String,
    /// When.
    pub clicked_at: DateTime<Utc>,
    /// Where it was recorded.
    pub source: ClickSource,
    /// What the browser told us.
    pub meta: ClickMeta,
}

impl NewClick {
    /// Roughly how many bytes it adds to the statement that stores it.
    pub fn wire_size(&self) -> usize {
        const FIXED: usize = 16 + 8 + 8 + 40;
        FIXED
            + self.code.len()
            + [
                &self.meta.user_agent,
                &self.meta.referer,
                &self.meta.landing_page,
            ]
            .iter()
            .map(|field| field.as_ref().map_or(0, String::len))
            .sum::<usize>()
    }
}

/// What the browser told us about a click: metadata only, never used to attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickMeta {
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Referer header.
    pub referer: Option<String>,
    /// The page the visitor was sent to.
    pub landing_page: Option<String>,
}

/// A recorded click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// Its id.
    pub id: ClickId,
    /// The link's owner.
    pub referrer_id: UserId,
    /// The owner's platform user id.
    pub referrer_platform_id: String,
    /// When.
    pub clicked_at: DateTime<Utc>,
}
