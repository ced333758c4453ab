//! API settings from environment variables.

use std::net::SocketAddr;

use referral_core::config::{self, ConfigError};
use referral_core::stripe::StripeSettings;
use referral_core::usecases::clicks::ClickBatching;

use crate::rate_limit::RedirectLimit;
use secrecy::SecretString;

/// Everything the API reads at start. Secrets are `SecretString`s, so `Debug` (and any log
/// of this struct) shows them redacted.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Postgres connection string (`DATABASE_URL`); secret because it holds a password.
    pub database_url: SecretString,
    /// Where to listen (`LISTEN_ADDR`).
    pub listen_addr: SocketAddr,
    /// Base of share links, `PUBLIC_BASE_URL?ref=CODE` (`PUBLIC_BASE_URL`).
    pub public_base_url: String,
    /// Where `GET /r/{code}` redirects (`LANDING_URL`).
    pub landing_url: String,
    /// Secret that signs Stripe webhooks (`STRIPE_WEBHOOK_SECRET`); required to serve,
    /// except on a local installation.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Stripe: key, API base, onboarding URLs (`STRIPE_*`).
    pub stripe: StripeSettings,
    /// Local installations only: a clock operators can move forward (`DEV_TIME_TRAVEL`).
    pub dev_time_travel: bool,
    /// Requests one address may make to the public link redirects
    /// (`REDIRECT_RATE_PER_MINUTE`, `REDIRECT_RATE_BURST`); `None` when the rate is 0.
    pub redirect_limit: Option<RedirectLimit>,
    /// Whether the client address is the first `X-Forwarded-For` hop
    /// (`TRUST_FORWARDED_FOR`): only behind a proxy that sets it, or anyone could pick
    /// the address their requests are counted under.
    pub trust_forwarded_for: bool,
    /// How clicks are committed in groups (`CLICK_WRITERS`, `CLICK_GROUP_MAX`).
    pub click_batching: ClickBatching,
    /// The web pages: where the api is reached and the platform's look.
    pub pages: PagesConfig,
}

/// Settings of the referral dashboard and the ops console.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    /// Where browsers reach this api (`API_PUBLIC_URL`): the base of dashboard links.
    pub api_public_url: String,
    /// The platform's name, shown in the dashboard's header (`BRAND_NAME`).
    pub brand_name: String,
    /// The platform's accent colour, `#rrggbb` (`BRAND_COLOR`).
    pub brand_color: String,
    /// The platform's logo, an https address (`BRAND_LOGO_URL`).
    pub brand_logo_url: Option<String>,
    /// Who may frame the dashboard, a CSP `frame-ancestors` list (`EMBED_FRAME_ANCESTORS`):
    /// the platform's own origin in production.
    pub frame_ancestors: String,
    /// The key that signs embed tokens and console sessions (`PAGE_SECRET`, 64+ hex
    /// digits), the same on every api process. Unset, the installation makes one and
    /// keeps it in the database: fine locally, but then whoever can read the database
    /// can sign tokens too.
    pub page_secret: Option<SecretBytes>,
}

/// Secret bytes that never show in `Debug`.
#[derive(Clone)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A page secret written as hex, at least 32 bytes.
fn page_secret(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim())
        .ok()
        .filter(|bytes| bytes.len() >= 32)
}

impl PagesConfig {
    fn from_env() -> Result<Self, ConfigError> {
        let api_public_url = config::url(
            "API_PUBLIC_URL",
            "http://localhost:8080",
            &["http", "https"],
        )?;
        let brand_color = config::string("BRAND_COLOR", "#4f46e5");
        if !is_hex_colour(&brand_color) {
            return Err(ConfigError {
                var: "BRAND_COLOR",
                reason: "must be a colour written #rrggbb".into(),
            });
        }
        let brand_logo_url = match config::string("BRAND_LOGO_URL", "") {
            logo if logo.is_empty() => None,
            _ => Some(config::url("BRAND_LOGO_URL", "", &["https"])?),
        };
        let frame_ancestors = config::string("EMBED_FRAME_ANCESTORS", "*");
        if frame_ancestors.contains([';', ',', '\n', '\r']) {
            return Err(ConfigError {
                var: "EMBED_FRAME_ANCESTORS",
                reason: "is a space-separated list of origins".into(),
            });
        }
        let page_secret = match config::string("PAGE_SECRET", "") {
            text if text.is_empty() => None,
            text => Some(SecretBytes(page_secret(&text).ok_or_else(|| {
                ConfigError {
                    var: "PAGE_SECRET",
                    reason: "must be at least 64 hex digits (32 random bytes), e.g. from \
                         `openssl rand -hex 32`"
                        .into(),
                }
            })?)),
        };
        Ok(Self {
            page_secret,
            api_public_url: api_public_url.trim_end_matches('/').to_owned(),
            brand_name: config::string("BRAND_NAME", "Referral program"),
            brand_color,
            brand_logo_url,
            frame_ancestors,
        })
    }

    /// Defaults, for tests and tools.
    pub fn local() -> Self {
        Self {
            api_public_url: "http://localhost:8080".into(),
            brand_name: "Referral program".into(),
            brand_color: "#4f46e5".into(),
            brand_logo_url: None,
            frame_ancestors: "*".into(),
            page_secret: None,
        }
    }
}

/// `#rrggbb`: the only colour form the pages accept, as it goes into their stylesheet.
fn is_hex_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text.bytes().skip(1).all(|b| b.is_ascii_hexdigit())
}

/// The webhook secret of a local installation, shared with the local Stripe stand-in.
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_local";

/// The database the README's start command provisions.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/referral";

impl ApiConfig {
    /// Reads the environment; the error names the offending variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dev_time_travel = config::parsed("DEV_TIME_TRAVEL", false)?;
        // The secret guards money (a forged `payout.failed` would credit a paid payout
        // back): only a local installation may fall back to the well-known local one.
        let stripe_webhook_secret = match config::string("STRIPE_WEBHOOK_SECRET", "") {
            secret if !secret.is_empty() => Some(SecretString::from(secret)),
            _ if dev_time_travel => Some(SecretString::from(LOCAL_WEBHOOK_SECRET)),
            _ => None,
        };
        Ok(Self {
            database_url: SecretString::from(config::url(
                "DATABASE_URL",
                DEFAULT_DATABASE_URL,
                &["postgres", "postgresql"],
            )?),
            listen_addr: config::parsed("LISTEN_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            public_base_url: config::url(
                "PUBLIC_BASE_URL",
                "http://localhost:8080/r",
                &["http", "https"],
            )?,
            landing_url: config::url("LANDING_URL", "http://localhost:3000/", &["http", "https"])?,
            stripe_webhook_secret,
            stripe: StripeSettings::from_env()?,
            dev_time_travel,
            redirect_limit: match config::parsed("REDIRECT_RATE_PER_MINUTE", 120u32)? {
                0 => None,
                per_minute => Some(RedirectLimit {
                    per_minute,
                    burst: u32::try_from(config::positive("REDIRECT_RATE_BURST", 30)?)
                        .unwrap_or(u32::MAX),
                }),
            },
            trust_forwarded_for: config::parsed("TRUST_FORWARDED_FOR", false)?,
            click_batching: {
                let default = ClickBatching::default();
                ClickBatching {
                    writers: usize::try_from(config::positive(
                        "CLICK_WRITERS",
                        default.writers as u64,
                    )?)
                    .unwrap_or(usize::MAX),
                    max_clicks: usize::try_from(config::positive(
                        "CLICK_GROUP_MAX",
                        default.max_clicks as u64,
                    )?)
                    .unwrap_or(usize::MAX),
                    ..default
                }
            },
            pages: PagesConfig::from_env()?,
        })
    }

    /// The webhook secret, which serving requires (the CLI's commands do not).
    pub fn webhook_secret(&self) -> Result<&SecretString, ConfigError> {
        self.stripe_webhook_secret
            .as_ref()
            .ok_or_else(|| ConfigError {
                var: "STRIPE_WEBHOOK_SECRET",
                reason: "is required to serve (the signing secret of your Stripe webhook \
                     endpoint, whsec_...); only a local installation (DEV_TIME_TRAVEL=true) \
                     may leave it out"
                    .into(),
            })
    }

    /// Settings for tests and tools that never read the environment.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            database_url: SecretString::from(database_url),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_base_url: "http://localhost:8080/r".into(),
            landing_url: "http://localhost:3000/welcome".into(),
            stripe_webhook_secret: Some(SecretString::from("whsec_test")),
            stripe: StripeSettings::for_tests("http://127.0.0.1:9/"),
            dev_time_travel: false,
            redirect_limit: None,
            trust_forwarded_for: false,
            click_batching: ClickBatching::default(),
            pages: PagesConfig::local(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_secrets_are_hex_and_long_enough() {
        assert_eq!(page_secret(&"ab".repeat(32)).map(|s| s.len()), Some(32));
        assert_eq!(page_secret(&"ab".repeat(31)), None);
        assert_eq!(page_secret(&"zz".repeat(32)), None);
    }

    #[test]
    fn brand_colours_are_six_hex_digits_and_nothing_else() {
        assert!(is_hex_colour("#4f46e5"));
        assert!(is_hex_colour("#A0B1C2"));
        for bad in ["4f46e5", "#4f46e", "#4f46e5;}", "#xyzxyz", "red", "#4f46é5"] {
            assert!(!is_hex_colour(bad), "{bad}");
        }
    }
}
