//! API settings from environment variables.

use std::net::SocketAddr;

use referral_core::config::{self, ConfigError};
use referral_core::stripe::StripeSettings;
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
    /// Secret that signs Stripe webhooks (`STRIPE_WEBHOOK_SECRET`).
    pub stripe_webhook_secret: SecretString,
    /// Stripe: key, API base, onboarding URLs (`STRIPE_*`).
    pub stripe: StripeSettings,
    /// Local installations only: a clock operators can move forward (`DEV_TIME_TRAVEL`).
    pub dev_time_travel: bool,
}

/// The database the README's start command provisions.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/referral";

impl ApiConfig {
    /// Reads the environment; the error names the offending variable.
    pub fn from_env() -> Result<Self, ConfigError> {
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
            stripe_webhook_secret: SecretString::from(config::string(
                "STRIPE_WEBHOOK_SECRET",
                "whsec_local",
            )),
            stripe: StripeSettings::from_env()?,
            dev_time_travel: config::parsed("DEV_TIME_TRAVEL", false)?,
        })
    }

    /// Settings for tests and tools that never read the environment.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            database_url: SecretString::from(database_url),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_base_url: "http://localhost:8080/r".into(),
            landing_url: "http://localhost:3000/welcome".into(),
            stripe_webhook_secret: SecretString::from("whsec_test"),
            stripe: StripeSettings::for_tests("http://127.0.0.1:9/"),
            dev_time_travel: false,
        }
    }
}
