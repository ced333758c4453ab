//! How late does a durable timer start? Schedules jobs a few seconds ahead on an idle
//! worker and reports lateness (start − due) as p50 / p99 / max.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-worker --bench timer_latency
//! ```
//! It creates (and drops) a scratch database next to `DATABASE_URL`'s.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use referral_core::jobs::{self, Job};
use referral_core::stripe::{StripeGateway, StripeSettings};
use referral_core::{Clock, ProgramSettings, SystemClock};
use referral_worker::mailer::Mailer;
use referral_worker::runtime::{JobError, JobHandler, JobOutcome};
use referral_worker::{JobEnv, Queues, RuntimeSettings};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const JOBS: usize = 200;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LatencyProbe {
    due_at: DateTime<Utc>,
}

impl Job for LatencyProbe {
    const QUEUE: &'static str = "bench_latency_probe";
}

static LATENESS: OnceLock<Mutex<Vec<i64>>> = OnceLock::new();

impl JobHandler for LatencyProbe {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        let late = SystemClock.now() - self.due_at;
        if let Some(samples) = LATENESS.get() {
            samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(late.num_milliseconds());
        }
        Ok(JobOutcome::Done)
    }
}

fn percentile(sorted: &[i64], p: usize) -> i64 {
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/referral".into());
    let admin: PgConnectOptions = url.parse()?;
    let scratch = format!("referral_bench_{}", std::process::id());
    let mut conn = admin.clone().database("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {scratch}")))
        .execute(&mut conn)
        .await?;

    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect_with(admin.clone().database(&scratch))
        .await?;
    referral_migrations::run(&pool).await?;
    LATENESS.get_or_init(|| Mutex::new(Vec::new()));

    let poll_interval = Duration::from_millis(
        std::env::var("WORKER_POLL_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
    );
    let env = JobEnv {
        pool: pool.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ProgramSettings::default()),
        mailer: Mailer::new("smtp://127.0.0.1:1", "bench@localhost")?,
        stripe: StripeGateway::new(&StripeSettings::for_tests("http://127.0.0.1:1/"))?,
        sweep: referral_worker::SweepConfig::default(),
    };
    let settings = RuntimeSettings {
        concurrency: 4,
        poll_interval,
        retry_base: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(5),
        orphan_after: Duration::from_secs(10),
    };
    let worker = Queues::new(env, settings)
        .with::<LatencyProbe>()
        .spawn(std::future::pending());
    // Let the worker register and go idle before timers are set.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let start = SystemClock.now();
    let mut tx = pool.begin().await?;
    for n in 0..JOBS {
        // Due 2–6 s ahead, spread over the window so due times fall between polls.
        let offset_ms = 2_000 + i64::try_from(n * 4_000 / JOBS)? + i64::try_from(n % 7)? * 13;
        let due_at = start + chrono::Duration::milliseconds(offset_ms);
        jobs::enqueue_at(&mut tx, &LatencyProbe { due_at }, due_at).await?;
    }
    tx.commit().await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = LATENESS
            .get()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .unwrap_or(0);
        if done >= JOBS || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop().await?;
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("drop database {scratch}")))
        .execute(&mut conn)
        .await?;

    let mut samples = LATENESS
        .get()
        .map(|s| {
            s.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
        .unwrap_or_default();
    samples.sort_unstable();
    if samples.is_empty() {
        return Err("no timer ran".into());
    }
    let early = samples.iter().filter(|&&ms| ms < 0).count();
    println!(
        "timers: {} of {JOBS} ran; poll interval {} ms; lateness ms: p50 {} p99 {} max {} min {}; started early: {early}",
        samples.len(),
        poll_interval.as_millis(),
        percentile(&samples, 50),
        percentile(&samples, 99),
        samples[samples.len() - 1],
        samples[0],
    );
    Ok(())
}
