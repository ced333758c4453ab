//! How fast does one worker process run jobs, and how soon does a job due now start?
//!
//! 1. Throughput: `JOBS` (100,000) no-op jobs are enqueued in batches of 1,000, then one
//!    worker process (our runtime, `WORKER_CONCURRENCY`, default 10) runs them; the
//!    clock stops when the last one's acknowledgement (status `Done`) is committed.
//!    Every job must run exactly once.
//! 2. Enqueue→start: with the worker idle, `LAT_JOBS` (200) jobs are enqueued one at a
//!    time, each in its own committed transaction, at 20 per second; latency = handler
//!    start − the instant before the insert was sent.
//!
//! These are the measurements of graphile-worker's reference script (its throughput (a)
//! and latency (b)), so the two can be run back to back:
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-worker --bench job_throughput
//! ```
//! It creates (and drops) a scratch database next to `DATABASE_URL`'s.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use referral_core::jobs::{self, Job};
use referral_worker::runtime::{JobError, JobHandler, JobOutcome};
use referral_worker::{JobEnv, Queues};
use support::{BoxError, Scratch, enqueue_batch, env_number, percentile};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct NoOp {
    n: u64,
}

impl Job for NoOp {
    const QUEUE: &'static str = "bench_noop";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Probe {
    n: usize,
}

impl Job for Probe {
    const QUEUE: &'static str = "bench_probe";
}

static RAN: AtomicUsize = AtomicUsize::new(0);
static SEEN: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
static STARTED: OnceLock<Mutex<Vec<Option<Instant>>>> = OnceLock::new();

impl JobHandler for NoOp {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        RAN.fetch_add(1, Ordering::Relaxed);
        if let Some(seen) = SEEN.get() {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(self.n);
        }
        Ok(JobOutcome::Done)
    }
}

impl JobHandler for Probe {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        let now = Instant::now();
        if let Some(started) = STARTED.get() {
            let mut started = started.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = started.get_mut(self.n) {
                slot.get_or_insert(now);
            }
        }
        Ok(JobOutcome::Done)
    }
}

async fn not_done(scratch: &Scratch, queue: &str) -> Result<i64, BoxError> {
    Ok(sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = $1 and status <> 'Done'",
    )
    .bind(queue)
    .fetch_one(&scratch.pool)
    .await?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    support::init_tracing();
    let job_count: u64 = env_number("JOBS", 100_000);
    let latency_jobs: usize = env_number("LAT_JOBS", 200);
    let settings = support::runtime_settings();
    let scratch = Scratch::create("jobs", 40).await?;
    SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    STARTED.get_or_init(|| Mutex::new(vec![None; latency_jobs]));

    // 1. Throughput.
    let enqueue_started = Instant::now();
    let mut conn = scratch.pool.acquire().await?;
    let mut next = 0;
    while next < job_count {
        let batch: Vec<NoOp> = (next..(next + 1_000).min(job_count))
            .map(|n| NoOp { n })
            .collect();
        enqueue_batch(&mut conn, &batch).await?;
        next += 1_000;
    }
    drop(conn);
    let enqueue_secs = enqueue_started.elapsed().as_secs_f64();
    sqlx::query("vacuum analyze apalis.jobs")
        .execute(&scratch.pool)
        .await?;

    let started = Instant::now();
    let worker = Queues::new(scratch.job_env()?, settings.clone())
        .with::<NoOp>()
        .with::<Probe>()
        .spawn(std::future::pending());
    let deadline = started + Duration::from_secs(600);
    while RAN.load(Ordering::Relaxed) < usize::try_from(job_count)? && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while not_done(&scratch, NoOp::QUEUE).await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ran = RAN.load(Ordering::Relaxed);
    let distinct = SEEN
        .get()
        .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
        .unwrap_or(0);
    let left = not_done(&scratch, NoOp::QUEUE).await?;
    println!(
        "throughput: {job_count} jobs in {elapsed:.2} s -> {:.0} jobs/s (concurrency {}, lanes {}, fetch batch {}); executions {ran}, distinct {distinct}, not done {left}; enqueue {:.0} jobs/s",
        job_count as f64 / elapsed,
        settings.concurrency,
        settings.lanes,
        settings.batch_size,
        job_count as f64 / enqueue_secs,
    );

    // 2. Enqueue→start, one job at a time on an idle worker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sent = Vec::with_capacity(latency_jobs);
    let pace = Instant::now();
    for n in 0..latency_jobs {
        let at = pace + Duration::from_millis(50 * u64::try_from(n)?);
        tokio::time::sleep_until(at.into()).await;
        let mut tx = scratch.pool.begin().await?;
        sent.push(Instant::now());
        jobs::enqueue_now(&mut tx, &Probe { n }).await?;
        tx.commit().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let latencies = loop {
        let started = STARTED
            .get()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default();
        if started.iter().all(Option::is_some) || Instant::now() > deadline {
            break started;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.stop().await?;
    scratch.finish().await?;

    let mut millis: Vec<f64> = latencies
        .iter()
        .zip(&sent)
        .filter_map(|(start, sent)| start.map(|s| (s - *sent).as_secs_f64() * 1_000.0))
        .collect();
    millis.sort_by(f64::total_cmp);
    if millis.is_empty() {
        return Err("no probe job ran".into());
    }
    println!(
        "enqueue->start: {} of {latency_jobs} started; p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        millis.len(),
        percentile(&millis, 50),
        percentile(&millis, 99),
        millis[millis.len() - 1],
    );
    if ran != usize::try_from(job_count)? || distinct != ran || left != 0 {
        return Err("throughput run incomplete or duplicated".into());
    }
    Ok(())
}
