//! What the worker benches share: a scratch database on `DATABASE_URL`'s server, a job
//! environment whose mail and Stripe point nowhere (bench jobs use neither), and
//! percentiles.
#![allow(dead_code)] // each bench uses the part it needs

use std::sync::Arc;

use apalis_core::task::builder::TaskBuilder;
use referral_core::jobs::Job;
use referral_core::stripe::{StripeGateway, StripeSettings};
use referral_core::{ProgramSettings, SystemClock};
use referral_worker::JobEnv;
use referral_worker::mailer::Mailer;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection, PgPool};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A database created for one bench run and dropped by [`Scratch::finish`] (or an
/// existing one, attached to and left in place).
pub struct Scratch {
    pub pool: PgPool,
    url: String,
    /// The connection that drops the database, when the bench created it.
    created: Option<(PgConnection, String)>,
}

impl Scratch {
    pub async fn create(bench: &str, max_connections: u32) -> Result<Self, BoxError> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/referral".into());
        let options: PgConnectOptions = url.parse()?;
        let name = format!("referral_bench_{bench}_{}", std::process::id());
        let mut admin = options.clone().database("postgres").connect().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await?;
        let options = options.database(&name);
        let pool = referral_core::pool::pool_options()
            .max_connections(max_connections)
            .connect_with(options.clone())
            .await?;
        referral_migrations::run(&pool).await?;
        Ok(Self {
            pool,
            url: options.to_url_lossy().to_string(),
            created: Some((admin, name)),
        })
    }

    /// The database at `url`, migrated, left in place by [`Scratch::finish`].
    pub async fn attach(url: &str, max_connections: u32) -> Result<Self, BoxError> {
        let pool = referral_core::pool::pool_options()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        referral_migrations::run(&pool).await?;
        Ok(Self {
            pool,
            url: url.to_owned(),
            created: None,
        })
    }

    /// Where the database is, for other processes.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn job_env(&self) -> Result<JobEnv, BoxError> {
        Ok(JobEnv {
            pool: self.pool.clone(),
            clock: Arc::new(SystemClock),
            settings: Arc::new(ProgramSettings::default()),
            mailer: Mailer::new("smtp://127.0.0.1:1", "bench@localhost")?,
            stripe: StripeGateway::new(&StripeSettings::for_tests("http://127.0.0.1:1/"))?,
            sweep: referral_worker::SweepConfig::default(),
        })
    }

    pub async fn finish(self) -> Result<(), BoxError> {
        self.pool.close().await;
        if let Some((mut admin, name)) = self.created {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database {name} with (force)"
            )))
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }
}

/// Enqueues `jobs`, due now, with one INSERT (apalis's multi-row push).
pub async fn enqueue_batch<J: Job>(conn: &mut PgConnection, jobs: &[J]) -> Result<(), BoxError> {
    let tasks = jobs
        .iter()
        .map(|job| {
            Ok(TaskBuilder::new(serde_json::to_vec(job)?)
                .max_attempts(J::MAX_ATTEMPTS as usize)
                .build())
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    apalis_postgres::queries::push_tasks(conn, J::QUEUE, tasks).await?;
    Ok(())
}

/// Logs to stderr as `RUST_LOG` says (nothing by default), so a bench's output stays its
/// figures.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
}

/// The `p`th percentile (nearest rank) of sorted samples.
pub fn percentile<T: Copy>(sorted: &[T], p: usize) -> T {
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

/// An environment variable as a number, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runtime settings of a bench: the worker's defaults, overridden by the same
/// environment variables the worker reads.
pub fn runtime_settings() -> referral_worker::RuntimeSettings {
    let concurrency = env_number("WORKER_CONCURRENCY", 10);
    referral_worker::RuntimeSettings {
        concurrency,
        batch_size: env_number("WORKER_BATCH_SIZE", 100),
        lanes: env_number("WORKER_LANES", 1),
        safety_wake: Some(env_number("WORKER_SAFETY_WAKE_MS", 0))
            .filter(|&millis| millis > 0)
            .map(std::time::Duration::from_millis),
        retry_base: std::time::Duration::from_secs(1),
        shutdown_grace: std::time::Duration::from_secs(5),
        orphan_after: std::time::Duration::from_secs(10),
    }
}
