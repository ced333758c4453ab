//! Several worker processes on one queue: do they share the work with no job run twice
//! and no timer started early?
//!
//! The bench starts `WORKERS` (3) copies of itself as worker processes (our runtime,
//! each with the worker's default settings), then enqueues `JOBS` (50,000) jobs due now
//! in batches of 1,000 and `TIMERS` (300) timers due 2–12 s ahead, one transaction each.
//! Every handler records its run (job, process, start instant) in a table; at the end
//! the bench counts runs per job (exactly one each), timers started before their due
//! instant (none), timer lateness, and how the jobs spread over the processes.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-worker --bench scale_out
//! ```
//! It creates (and drops) a scratch database next to `DATABASE_URL`'s, or, with
//! `SCALE_OUT_DATABASE_URL`, works in that (migrated) database beside whatever else runs
//! there (`scripts/bench-scale-out` runs it beside two api processes under load).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use referral_core::jobs::{self, Job};
use referral_core::{Clock, SystemClock};
use referral_worker::runtime::{JobError, JobHandler, JobOutcome};
use referral_worker::{JobEnv, Queues};
use sqlx::PgPool;
use support::{BoxError, Scratch, enqueue_batch, env_number, percentile};

/// Set in the worker processes the bench starts: the database to work in.
const CHILD_URL: &str = "SCALE_OUT_CHILD_URL";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Work {
    n: i64,
}

impl Job for Work {
    const QUEUE: &'static str = "bench_scale_work";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Timer {
    n: i64,
    due_at: DateTime<Utc>,
}

impl Job for Timer {
    const QUEUE: &'static str = "bench_scale_timer";
}

async fn record(
    env: &JobEnv,
    kind: &str,
    n: i64,
    due_at: Option<DateTime<Utc>>,
) -> Result<(), JobError> {
    let started_at = SystemClock.now();
    sqlx::query(
        "insert into bench_runs (kind, n, pid, started_at, due_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(kind)
    .bind(n)
    .bind(i64::from(std::process::id()))
    .bind(started_at)
    .bind(due_at)
    .execute(&env.pool)
    .await
    .map_err(JobError::transient)?;
    Ok(())
}

impl JobHandler for Work {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        record(env, "work", self.n, None).await?;
        Ok(JobOutcome::Done)
    }
}

impl JobHandler for Timer {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        record(env, "timer", self.n, Some(self.due_at)).await?;
        Ok(JobOutcome::Done)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    support::init_tracing();
    match std::env::var(CHILD_URL) {
        Ok(url) => run_worker(&url).await,
        Err(_) => coordinate().await,
    }
}

/// A worker process: runs both queues until its standard input closes.
async fn run_worker(url: &str) -> Result<(), BoxError> {
    // Two api processes, three of these and the coordinator share the server's 100
    // connections (see SCALING.md).
    let scratch = Scratch::attach(url, 14).await?;
    let worker = Queues::new(scratch.job_env()?, support::runtime_settings())
        .with::<Work>()
        .with::<Timer>()
        .spawn(async {
            // The coordinator closes our standard input to stop us.
            let _ = tokio::task::spawn_blocking(|| {
                std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
            })
            .await;
        });
    worker.wait().await
}

async fn coordinate() -> Result<(), BoxError> {
    let workers: usize = env_number("WORKERS", 3);
    let job_count: i64 = env_number("JOBS", 50_000);
    let timer_count: i64 = env_number("TIMERS", 300);
    let scratch = match std::env::var("SCALE_OUT_DATABASE_URL") {
        Ok(url) => Scratch::attach(&url, 5).await?,
        Err(_) => Scratch::create("scale_out", 5).await?,
    };
    let pool = scratch.pool.clone();
    sqlx::query(
        "create table bench_runs (kind text not null, n bigint not null, pid bigint not null,
                                  started_at timestamptz not null, due_at timestamptz)",
    )
    .execute(&pool)
    .await?;

    let mut children: Vec<Child> = (0..workers)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .env(CHILD_URL, scratch.url())
                .stdin(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    // Let every process register and go idle before the load arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let timers = tokio::spawn(enqueue_timers(pool.clone(), timer_count));
    let mut conn = pool.acquire().await?;
    let mut n = 0;
    while n < job_count {
        let batch: Vec<Work> = (n..(n + 1_000).min(job_count))
            .map(|n| Work { n })
            .collect();
        enqueue_batch(&mut conn, &batch).await?;
        n += 1_000;
    }
    drop(conn);
    timers.await??;
    let enqueued = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (work, timers): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where kind = 'work'), count(*) filter (where kind = 'timer') from bench_runs",
        )
        .fetch_one(&pool)
        .await?;
        if work >= job_count && timers >= timer_count {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("after 300 s only {work} jobs and {timers} timers ran").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ran_by: DateTime<Utc> =
        sqlx::query_scalar("select max(started_at) from bench_runs where kind = 'work'")
            .fetch_one(&pool)
            .await?;
    let first: DateTime<Utc> =
        sqlx::query_scalar("select min(started_at) from bench_runs where kind = 'work'")
            .fetch_one(&pool)
            .await?;

    // Stop the workers (closing their input), then look for a second run of anything.
    for child in &mut children {
        drop(child.stdin.take());
    }
    for child in &mut children {
        child.wait()?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    report(&pool, job_count, timer_count, enqueued, ran_by - first).await?;
    sqlx::query("drop table bench_runs").execute(&pool).await?;
    sqlx::query("delete from apalis.jobs where job_type in ($1, $2)")
        .bind(Work::QUEUE)
        .bind(Timer::QUEUE)
        .execute(&pool)
        .await?;
    scratch.finish().await
}

/// Timers due 2 to 12 s from their own commit, one transaction each, spread over the
/// first few seconds of the load.
async fn enqueue_timers(pool: PgPool, count: i64) -> Result<(), BoxError> {
    for n in 0..count {
        let due_at =
            SystemClock.now() + chrono::Duration::milliseconds(2_000 + (n * 7_919) % 10_000);
        let mut tx = pool.begin().await?;
        jobs::enqueue_at(&mut tx, &Timer { n, due_at }, due_at).await?;
        tx.commit().await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn report(
    pool: &PgPool,
    job_count: i64,
    timer_count: i64,
    enqueued: Duration,
    running: chrono::Duration,
) -> Result<(), BoxError> {
    let (runs, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct (kind, n)) from bench_runs")
            .fetch_one(pool)
            .await?;
    let per_process: Vec<(i64, i64)> = sqlx::query_as(
        "select pid, count(*) from bench_runs where kind = 'work' group by pid order by pid",
    )
    .fetch_all(pool)
    .await?;
    let mut lateness: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from started_at - due_at)::float8 * 1000 from bench_runs where kind = 'timer'",
    )
    .fetch_all(pool)
    .await?;
    lateness.sort_by(f64::total_cmp);
    let early = lateness.iter().filter(|&&ms| ms < 0.0).count();
    let seconds = running.num_milliseconds() as f64 / 1_000.0;
    println!(
        "{job_count} jobs enqueued in {:.1} s, run in {seconds:.1} s: {:.0} jobs/s",
        enqueued.as_secs_f64(),
        job_count as f64 / seconds
    );
    println!(
        "jobs per process: {}",
        per_process
            .iter()
            .map(|(pid, count)| format!("{pid}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "runs: {runs} for {distinct} jobs and timers ({} run twice)",
        runs - distinct
    );
    if let (Some(min), Some(max)) = (lateness.first(), lateness.last()) {
        println!(
            "timers: {} of {timer_count} ran; lateness ms: p50 {:.1} p99 {:.1} max {max:.1} min {min:.1}; started early: {early}",
            lateness.len(),
            percentile(&lateness, 50),
            percentile(&lateness, 99),
        );
    }
    if runs != distinct || early > 0 || distinct != job_count + timer_count {
        return Err("a job ran twice, a timer started early, or a run is missing".into());
    }
    Ok(())
}
