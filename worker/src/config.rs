//! Worker settings from environment variables.

use std::time::Duration;

use referral_core::config::{self, ConfigError};
use referral_core::stripe::StripeSettings;
use secrecy::SecretString;

/// Everything the worker reads at start. Secrets are `SecretString`s, so `Debug` (and any
/// log of this struct) shows them redacted.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Postgres connection string (`DATABASE_URL`); secret because it holds a password.
    pub database_url: SecretString,
    /// Jobs one queue runs at once in this process (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Jobs one fetch claims for this process (`WORKER_BATCH_SIZE`).
    pub batch_size: usize,
    /// Fetch loops per queue (`WORKER_LANES`).
    pub lanes: usize,
    /// Longest sleep of an idle fetch loop (`WORKER_SAFETY_WAKE_MS`; 0, the default: no
    /// limit).
    pub safety_wake: Option<Duration>,
    /// First retry delay; doubles per attempt (`JOB_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// SMTP server (`SMTP_URL`, e.g. `smtp://127.0.0.1:2525`).
    pub smtp_url: String,
    /// Sender of e-mails (`SMTP_FROM`).
    pub smtp_from: String,
    /// Stripe: key, API base, onboarding URLs (`STRIPE_*`).
    pub stripe: StripeSettings,
    /// Time between reconciliation sweeps (`RECONCILE_INTERVAL_SECS`).
    pub reconcile_interval: Duration,
    /// How long finished jobs are kept (`DONE_JOB_RETENTION_DAYS`).
    pub done_job_retention_days: u64,
    /// Where the worker's health and metrics listen (`WORKER_HTTP_ADDR`).
    pub http_addr: std::net::SocketAddr,
    /// Time between heartbeat log lines (`WORKER_HEARTBEAT_SECS`).
    pub heartbeat: Duration,
    /// Silence after which a worker's jobs go to the others (`WORKER_ORPHAN_AFTER_SECS`).
    pub orphan_after: Duration,
    /// Local installations only: follow the movable clock (`DEV_TIME_TRAVEL`).
    pub dev_time_travel: bool,
    /// With `DEV_TIME_TRAVEL` only: how far this worker's clock is off the others', in
    /// seconds, negative when behind (`DEV_CLOCK_SKEW_SECS`; the fault suite's skewed
    /// machine).
    pub dev_clock_skew: chrono::Duration,
}

impl WorkerConfig {
    /// Reads the environment; the error names the offending variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dev_time_travel = config::parsed("DEV_TIME_TRAVEL", false)?;
        let skew_secs: i64 = config::parsed("DEV_CLOCK_SKEW_SECS", 0)?;
        if skew_secs != 0 && !dev_time_travel {
            return Err(ConfigError {
                var: "DEV_CLOCK_SKEW_SECS",
                reason: "only a local installation (DEV_TIME_TRAVEL=true) may skew its clock"
                    .into(),
            });
        }
        let dev_clock_skew = chrono::Duration::try_seconds(skew_secs).ok_or(ConfigError {
            var: "DEV_CLOCK_SKEW_SECS",
            reason: "out of range".into(),
        })?;
        Ok(Self {
            database_url: SecretString::from(config::url(
                "DATABASE_URL",
                crate::config::DEFAULT_DATABASE_URL,
                &["postgres", "postgresql"],
            )?),
            concurrency: usize::try_from(config::positive("WORKER_CONCURRENCY", 4)?)
                .unwrap_or(usize::MAX),
            batch_size: usize::try_from(config::positive("WORKER_BATCH_SIZE", 100)?)
                .unwrap_or(usize::MAX),
            lanes: usize::try_from(config::positive("WORKER_LANES", 1)?).unwrap_or(usize::MAX),
            safety_wake: Some(config::parsed::<u64>("WORKER_SAFETY_WAKE_MS", 0)?)
                .filter(|&millis| millis > 0)
                .map(Duration::from_millis),
            retry_base: Duration::from_millis(config::positive("JOB_RETRY_BASE_MS", 5_000)?),
            smtp_url: config::url("SMTP_URL", "smtp://127.0.0.1:2525", &["smtp", "smtps"])?,
            smtp_from: config::string("SMTP_FROM", "Referral Program <no-reply@localhost>"),
            stripe: StripeSettings::from_env()?,
            reconcile_interval: Duration::from_secs(config::positive(
                "RECONCILE_INTERVAL_SECS",
                300,
            )?),
            done_job_retention_days: config::positive("DONE_JOB_RETENTION_DAYS", 7)?,
            http_addr: config::parsed(
                "WORKER_HTTP_ADDR",
                std::net::SocketAddr::from(([127, 0, 0, 1], 9464)),
            )?,
            heartbeat: Duration::from_secs(config::positive("WORKER_HEARTBEAT_SECS", 60)?),
            orphan_after: Duration::from_secs(config::positive("WORKER_ORPHAN_AFTER_SECS", 10)?),
            dev_time_travel,
            dev_clock_skew,
        })
    }
}

/// The database the README's start command provisions.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/referral";
