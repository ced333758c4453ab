//! How late does a durable timer start, and does a backlog of far timers slow it down?
//!
//! With `PENDING_TIMERS` (default 0) jobs first parked 30 days ahead in the same queue,
//! one idle worker process (our runtime, `WORKER_CONCURRENCY`, default 10) is given
//! timers due 3 s after they are set:
//! - spread: `TIMERS` (200) set one at a time at 10 per second, each in its own
//!   transaction, each due 3 s after its own insert;
//! - burst: 50 set in one transaction, all due at the same instant.
//!
//! Lateness = handler start − due instant (negative = early), as p50 / p99 / max. Before
//! the timers, it prints `EXPLAIN (ANALYZE, BUFFERS)` of an idle fetch (the body of
//! `apalis.get_jobs`) and of the worker's next-due read, to show what they read with the
//! backlog in place. These match graphile-worker's reference script (c2), (c1) and its
//! `PENDING_TIMERS`, so the two can be run back to back:
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-worker --bench timer_latency
//! PENDING_TIMERS=1000000 cargo bench -p referral-worker --bench timer_latency
//! ```
//! It creates (and drops) a scratch database next to `DATABASE_URL`'s.

mod support;

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use apalis_core::task::builder::TaskBuilder;
use chrono::{DateTime, Utc};
use referral_core::jobs::{self, Job};
use referral_core::{Clock, SystemClock};
use referral_worker::runtime::{JobError, JobHandler, JobOutcome};
use referral_worker::{JobEnv, Queues};
use support::{BoxError, Scratch, env_number, percentile};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Timer {
    /// Which measurement it belongs to: "spread", "burst" or "far".
    kind: String,
    due_at: DateTime<Utc>,
}

impl Job for Timer {
    const QUEUE: &'static str = "bench_timer";
}

/// (kind, lateness in ms) of every timer that ran.
static LATENESS: OnceLock<Mutex<Vec<(String, f64)>>> = OnceLock::new();

impl JobHandler for Timer {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        let late = SystemClock.now() - self.due_at;
        let late_ms = late.num_microseconds().unwrap_or(i64::MAX) as f64 / 1_000.0;
        tracing::trace!(late_ms, due = %self.due_at, "timer ran");
        if let Some(samples) = LATENESS.get() {
            samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((self.kind, late_ms));
        }
        Ok(JobOutcome::Done)
    }
}

fn samples_of(kind: &str) -> Vec<f64> {
    let mut samples: Vec<f64> = LATENESS
        .get()
        .map(|s| {
            s.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, ms)| *ms)
                .collect()
        })
        .unwrap_or_default();
    samples.sort_by(f64::total_cmp);
    samples
}

async fn wait_for(kind: &str, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while samples_of(kind).len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report(kind: &str, expected: usize) {
    let samples = samples_of(kind);
    if samples.is_empty() {
        println!("{kind}: none of {expected} timers ran");
        return;
    }
    let early = samples.iter().filter(|&&ms| ms < 0.0).count();
    println!(
        "{kind}: {} of {expected} ran; lateness ms: p50 {:.1} p99 {:.1} max {:.1} min {:.1}; started early: {early}",
        samples.len(),
        percentile(&samples, 50),
        percentile(&samples, 99),
        samples[samples.len() - 1],
        samples[0],
    );
}

async fn park_far_timers(scratch: &Scratch, count: usize) -> Result<(), BoxError> {
    let started = Instant::now();
    let due_at = SystemClock.now() + chrono::Duration::days(30);
    let payload = serde_json::to_vec(&Timer {
        kind: "far".into(),
        due_at,
    })?;
    let run_at = u64::try_from(due_at.timestamp())?;
    let mut conn = scratch.pool.acquire().await?;
    let mut parked = 0;
    while parked < count {
        let batch = (count - parked).min(10_000);
        let tasks = (0..batch)
            .map(|_| {
                TaskBuilder::new(payload.clone())
                    .run_at_timestamp(run_at)
                    .build()
            })
            .collect();
        apalis_postgres::queries::push_tasks(&mut *conn, Timer::QUEUE, tasks).await?;
        parked += batch;
    }
    sqlx::query("vacuum analyze apalis.jobs")
        .execute(&mut *conn)
        .await?;
    println!(
        "parked {count} timers due in 30 days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of an idle fetch of the timers' queue (the body of
/// `apalis.get_jobs`, rolled back) and of the next-due read.
async fn explain_idle_reads(scratch: &Scratch) -> Result<(), BoxError> {
    let fetch = referral_core::store::jobs::claim_statement(
        &mut *scratch.pool.acquire().await?,
        "bench",
        Timer::QUEUE,
        10,
    )
    .await?;
    let next_due = format!(
        "select run_at from apalis.jobs where job_type = '{}'
           and (status = 'Pending' or (status = 'Failed' and attempts < max_attempts))
         order by run_at limit 1",
        Timer::QUEUE
    );
    let mut tx = scratch.pool.begin().await?;
    for (what, query) in [("idle fetch", fetch), ("next-due read", next_due)] {
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "explain (analyze, buffers, costs off) {query}"
        )))
        .fetch_all(&mut *tx)
        .await?;
        println!("{what}:\n  {}", plan.join("\n  "));
    }
    tx.rollback().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    support::init_tracing();
    let pending: usize = env_number("PENDING_TIMERS", 0);
    let spread: usize = env_number("TIMERS", 200);
    const BURST: usize = 50;
    let delay = chrono::Duration::seconds(3);
    let scratch = Scratch::create("timers", 20).await?;
    LATENESS.get_or_init(|| Mutex::new(Vec::new()));
    if pending > 0 {
        park_far_timers(&scratch, pending).await?;
    }
    explain_idle_reads(&scratch).await?;

    let settings = support::runtime_settings();
    let worker = Queues::new(scratch.job_env()?, settings)
        .with::<Timer>()
        .spawn(std::future::pending());
    // Let the worker register and go idle before timers are set.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pace = Instant::now();
    for n in 0..spread {
        tokio::time::sleep_until((pace + Duration::from_millis(100 * u64::try_from(n)?)).into())
            .await;
        let due_at = SystemClock.now() + delay;
        let mut tx = scratch.pool.begin().await?;
        let timer = Timer {
            kind: "spread".into(),
            due_at,
        };
        jobs::enqueue_at(&mut tx, &timer, due_at).await?;
        tx.commit().await?;
    }
    wait_for("spread", spread, Duration::from_secs(20)).await;

    let due_at = SystemClock.now() + delay;
    let mut tx = scratch.pool.begin().await?;
    for _ in 0..BURST {
        let timer = Timer {
            kind: "burst".into(),
            due_at,
        };
        jobs::enqueue_at(&mut tx, &timer, due_at).await?;
    }
    tx.commit().await?;
    wait_for("burst", BURST, Duration::from_secs(20)).await;

    worker.stop().await?;
    scratch.finish().await?;
    println!("pending timers in the queue: {pending}");
    report("spread", spread);
    report("burst", BURST);
    if samples_of("far").is_empty() {
        Ok(())
    } else {
        Err("a 30-day timer ran".into())
    }
}
