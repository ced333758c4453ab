//! Running the queues: apalis workers plus what apalis-postgres 1.0 leaves to us.
//!
//! - **Backoff.** apalis re-fetches a failed job at once. Before a failed attempt is
//!   acknowledged, we push the job's `run_at` out by `retry_base × 2^(attempt-1)` (capped),
//!   so retries really wait. The last attempt stays `Failed` with its error for operators.
//! - **Wake-up latency.** An idle apalis worker only looks for jobs on its heartbeat, 30 s
//!   by default, and can lose that wake-up for good. Our own ticker wakes each queue's
//!   fetch loop every poll interval (500 ms by default), so a due timer starts within
//!   about that much (see BENCHMARKS.md).
//! - **Names.** A worker name is unique per process and never reused (queue, host, pid,
//!   random suffix), or apalis leaves a restarted worker's job `Running` forever.
//! - **Panics** are caught and treated like transient errors.
//! - **Restarts.** A queue worker that fails (its database connection cut) is restarted,
//!   or its queue would silently stop in a process that looks healthy.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{
    BoxDynError, Data, Monitor, ParallelizeExt, TaskId, WorkerBuilder, WorkerBuilderExt,
};
use apalis_core::backend::ext::poll_strategy::{PollWith, StreamStrategy};
use apalis_core::error::AbortError;
use apalis_core::task::attempt::Attempt;
use apalis_postgres::{Config, PostgresStorage};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use referral_core::jobs::{self, Job};
use referral_core::store::jobs as jobs_store;
use referral_core::{Clock, ProgramSettings, StoreError};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::mailer::Mailer;

/// What every job handler may use.
#[derive(Clone, Debug)]
pub struct JobEnv {
    /// The database.
    pub pool: PgPool,
    /// The clock shared with the api.
    pub clock: Arc<dyn Clock>,
    /// Program numbers.
    pub settings: Arc<ProgramSettings>,
    /// Outgoing mail.
    pub mailer: Mailer,
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// It did its work.
    Done,
    /// Its work was already done or no longer applies.
    Skipped(&'static str),
    /// Woken before its due time: run again then.
    NotYetDue(DateTime<Utc>),
}

/// A failed attempt, classified.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// May pass on a later attempt (network, database, SMTP 4xx): retried with backoff.
    #[error("transient: {0}")]
    Transient(#[source] BoxDynError),
    /// Will never pass (bad address, broken invariant): not retried.
    #[error("permanent: {0}")]
    Permanent(#[source] BoxDynError),
}

impl JobError {
    /// A failure worth retrying.
    pub fn transient(error: impl Into<BoxDynError>) -> Self {
        Self::Transient(error.into())
    }

    /// A failure not worth retrying.
    pub fn permanent(error: impl Into<BoxDynError>) -> Self {
        Self::Permanent(error.into())
    }
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(_) | StoreError::Encode(_) => Self::permanent(error),
            StoreError::Database(_) | StoreError::Queue(_) => Self::transient(error),
        }
    }
}

/// A job the worker knows how to run.
pub trait JobHandler: Job + Clone {
    /// Runs one attempt. Must be idempotent: re-read state, do nothing if done.
    fn handle(self, env: &JobEnv) -> impl Future<Output = Result<JobOutcome, JobError>> + Send;
}

/// How the worker runs its queues.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Jobs one queue runs at once in this process.
    pub concurrency: usize,
    /// Idle poll interval (the apalis heartbeat).
    pub poll_interval: Duration,
    /// First retry delay.
    pub retry_base: Duration,
    /// How long SIGTERM waits for in-flight jobs.
    pub shutdown_grace: Duration,
}

const RETRY_CAP: Duration = Duration::from_secs(3600);

/// Delay before the attempt after `attempt` (1-based): base, 2×base, 4×base, … capped.
pub fn backoff(retry_base: Duration, attempt: usize) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    retry_base.saturating_mul(1 << exponent).min(RETRY_CAP)
}

#[derive(Clone, Debug)]
struct QueueContext {
    env: JobEnv,
    retry_base: Duration,
}

async fn execute<J: JobHandler>(
    job: J,
    ctx: Data<QueueContext>,
    task_id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let attempt = attempt.current();
    let span = tracing::info_span!("job", queue = J::QUEUE, job_id = %task_id, attempt);
    async move {
        let result = AssertUnwindSafe(job.clone().handle(&ctx.env))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                Err(JobError::transient(format!("job panicked: {message}")))
            });
        match result {
            Ok(JobOutcome::Done) => {
                tracing::info!("job done");
                Ok(())
            }
            Ok(JobOutcome::Skipped(why)) => {
                tracing::info!(why, "job skipped");
                Ok(())
            }
            Ok(JobOutcome::NotYetDue(due_at)) => {
                tracing::info!(%due_at, "woken early; rescheduled");
                let mut conn = ctx.env.pool.acquire().await?;
                jobs::enqueue_at(&mut conn, &job, due_at).await?;
                Ok(())
            }
            Err(JobError::Permanent(error)) => {
                tracing::error!(error = %error, "job failed permanently");
                Err(Box::new(AbortError::new(error)) as BoxDynError)
            }
            Err(JobError::Transient(error)) => {
                let max = J::MAX_ATTEMPTS as usize;
                if attempt < max {
                    let delay = backoff(ctx.retry_base, attempt);
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis(), "job failed; will retry");
                    let mut conn = ctx.env.pool.acquire().await?;
                    jobs_store::postpone(&mut conn, &task_id.to_string(), delay).await?;
                } else {
                    tracing::error!(error = %error, "job failed on its last attempt");
                }
                Err(error)
            }
        }
    }
    .instrument(span)
    .await
}

/// How long a failed queue worker waits before it starts again.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// A queue worker whose fetch or heartbeat failed (the database went away, a connection
/// was cut) ends; without a restart its queue would stay unserved while the process
/// looks healthy. It restarts under a new name after a short pause. apalis offers no
/// async hook here, so the pause blocks the monitor, which can do nothing useful while
/// its database fails anyway.
fn restart_after_failure(
    worker: &apalis_core::worker::context::WorkerContext,
    error: &apalis_core::error::WorkerError,
) -> bool {
    if worker.is_shutting_down() {
        return false;
    }
    tracing::error!(worker = worker.name(), error = %error, "queue worker failed; restarting");
    std::thread::sleep(RESTART_PAUSE);
    true
}

/// How often a worker tells the others it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Silent heartbeats after which a worker's jobs are re-queued (10 s).
const MISSED_HEARTBEATS: usize = 5;

/// A stream that yields every `interval`, for ever.
fn ticker(interval: Duration) -> std::pin::Pin<Box<dyn futures::Stream<Item = ()> + Send>> {
    Box::pin(futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(interval).await;
        Some(((), ()))
    }))
}

/// A unique, never reused name for one worker of one queue in this process.
fn worker_name(queue: &str, restart: usize) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| "host".into());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{queue}@{host}-{}-{suffix}-{restart}", std::process::id())
}

/// The queues one worker process serves; [`Queues::spawn`] starts them.
pub struct Queues {
    monitor: Monitor,
    ctx: QueueContext,
    settings: RuntimeSettings,
}

impl Queues {
    /// No queues yet.
    pub fn new(env: JobEnv, settings: RuntimeSettings) -> Self {
        Self {
            monitor: Monitor::new()
                .shutdown_timeout(settings.shutdown_grace)
                .should_restart(restart_after_failure),
            ctx: QueueContext {
                env,
                retry_base: settings.retry_base,
            },
            settings,
        }
    }

    /// Every production queue (SPEC: Jobs).
    pub fn all(env: JobEnv, settings: RuntimeSettings) -> Self {
        Self::new(env, settings)
            .with::<jobs::SendEmail>()
            .with::<jobs::GrantSignupCredit>()
            .with::<jobs::ExpireSignupCredit>()
    }

    /// Adds the queue of job type `J`.
    pub fn with<J: JobHandler>(mut self) -> Self {
        let pool = self.ctx.env.pool.clone();
        let ctx = self.ctx.clone();
        let settings = self.settings.clone();
        // Jobs of a worker that stopped heartbeating (killed mid-job) are re-queued by the
        // others after HEARTBEAT × MISSED_HEARTBEATS of silence.
        self.monitor = self.monitor.register(move |restart| {
            let config = Config::default()
                .queue(J::QUEUE)
                .batch_size(settings.concurrency.max(1))
                .heartbeat_interval(HEARTBEAT)
                .missed_heartbeats(MISSED_HEARTBEATS);
            let storage = PostgresStorage::<J>::new(&pool).with_config(config);
            // apalis-postgres fetches on its heartbeat, and a heartbeat that fires while a
            // fetch is in flight is lost: the queue then sleeps until the next job is
            // pushed through this process, possibly forever. A ticker of our own wakes the
            // fetch loop every poll interval, whatever happened before.
            let backend =
                PollWith::new(storage, StreamStrategy::new(ticker(settings.poll_interval)));
            WorkerBuilder::new(worker_name(J::QUEUE, restart))
                .backend(backend)
                .data(ctx.clone())
                .concurrency(settings.concurrency)
                .parallelize(tokio::spawn)
                .build(execute::<J>)
        });
        self
    }

    /// Starts the queues. They stop taking jobs when `shutdown` resolves (or on
    /// [`WorkerHandle::stop`]) and return once in-flight jobs finish.
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> WorkerHandle {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let signal = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop_rx => {}
            }
            tracing::info!("worker stopping: no new jobs, waiting for in-flight ones");
            Ok(())
        };
        WorkerHandle {
            stop: Some(stop_tx),
            join: tokio::spawn(self.monitor.run_with_signal(signal)),
        }
    }
}

/// A running worker; stop it to let in-flight jobs finish.
pub struct WorkerHandle {
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Result<(), apalis_core::monitor::MonitorError>>,
}

impl WorkerHandle {
    /// Stops taking jobs, waits for in-flight ones (up to the grace period), returns.
    pub async fn stop(mut self) -> Result<(), BoxDynError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join.await??;
        Ok(())
    }

    /// Waits until the worker stops by itself (after its shutdown signal).
    pub async fn wait(self) -> Result<(), BoxDynError> {
        self.join.await??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), RETRY_CAP);
    }
}
