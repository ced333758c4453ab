//! Running the queues: apalis workers plus what apalis-postgres 1.0 leaves to us. The SQL
//! on apalis's table, and the apalis behaviours it relies on, live in
//! `referral_core::store::jobs`.
//!
//! - **Backoff.** apalis re-fetches a failed job at once. [`BackoffLayer`] pushes the
//!   job's `run_at` out by `retry_base × 2^(attempt-1)` (capped) before the failure is
//!   acknowledged, so retries really wait. The last attempt stays `Failed` with its error
//!   for operators.
//! - **Timers woken early** go back to sleep on the same row: one row per timer, for its
//!   whole life, and an early wake-up does not spend an attempt.
//! - **Wake-ups.** An idle apalis worker only looks for jobs on its heartbeat, and can
//!   lose that wake-up for good. Each queue's fetch loop is woken instead by
//!   [`crate::wakeups`]: at once when a job due now is committed, at the due instant of
//!   the earliest timer, and not otherwise (see BENCHMARKS.md).
//! - **Outcomes written at once.** apalis hands an attempt's outcome to its backend after
//!   our layers return, and the backend writes it only when the fetch loop next turns
//!   (it never waits on that hand-over). An idle loop would sit on it until its next
//!   heartbeat, the job shown running meanwhile, and a retry whose backoff is shorter
//!   than the heartbeat run before its failure was even recorded. And a loop woken
//!   while one of its fetches is in flight skips the write (apalis writes outcomes only
//!   between fetches). [`BackoffLayer`] has the loop turned a few times after each
//!   attempt ([`QueueSignal::attempt_ended`]): apalis writes what it holds, then fetches,
//!   without the read of the next due instant a wake-up costs; one task per loop does
//!   this for all attempts.
//! - **Names.** A worker name is unique per process and never reused (queue, host, pid,
//!   random suffix), or apalis leaves a restarted worker's job `Running` forever.
//! - **Panics** are caught by apalis's catch-panic layer and retried like transient errors.
//! - **Restarts.** A queue worker that fails (its database connection cut) is restarted
//!   after a pause, or its queue would silently stop in a process that looks healthy.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::layers::catch_panic::CatchPanicLayer;
use apalis::prelude::{
    BoxDynError, Data, Monitor, ParallelizeExt, TaskId, WorkerBuilder, WorkerBuilderExt,
};
use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::ext::poll_strategy::PollWith;
use apalis_core::error::AbortError;
use apalis_core::task::Task;
use apalis_core::task::status::Status;
use apalis_core::worker::context::WorkerContext;
use apalis_postgres::{Config, PostgresStorage};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use referral_core::jobs::{self, Job};
use referral_core::store::jobs as jobs_store;
use referral_core::stripe::StripeGateway;
use referral_core::usecases::reconcile::SweepSettings;
use referral_core::{Clock, ProgramSettings, StoreError};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::mailer::Mailer;
use crate::wakeups::{QueueSignal, Wakeups};

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
    /// Stripe.
    pub stripe: StripeGateway,
    /// The reconciliation sweep's period and thresholds.
    pub sweep: SweepConfig,
}

/// The reconciliation sweep's period and thresholds.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Time between sweeps (`RECONCILE_INTERVAL_SECS`).
    pub interval: chrono::Duration,
    /// Overdue and retention thresholds.
    pub settings: SweepSettings,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            interval: chrono::Duration::minutes(5),
            settings: SweepSettings::default(),
        }
    }
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
    /// Jobs one queue runs at once in this process (split between its lanes).
    pub concurrency: usize,
    /// Fetch loops per queue in this process. apalis runs one loop's fetches and
    /// acknowledgements one after the other; a busy queue goes faster with a few loops
    /// working side by side (see BENCHMARKS.md). Each loop heartbeats on its own.
    pub lanes: usize,
    /// Longest an idle fetch loop sleeps without a notification or a due timer; `None`:
    /// as long as nothing is announced.
    pub safety_wake: Option<Duration>,
    /// Jobs one fetch claims for this process; the ones without a free slot yet wait
    /// in the process (and go back to the queue if it stops).
    pub batch_size: usize,
    /// First retry delay.
    pub retry_base: Duration,
    /// How long SIGTERM waits for in-flight jobs.
    pub shutdown_grace: Duration,
    /// How long a worker may be silent (killed, frozen, cut off) before the other workers
    /// take over its jobs. Its heartbeat is a fifth of this.
    pub orphan_after: Duration,
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
}

/// One attempt of a job: run its handler, then turn the outcome into what apalis records.
async fn execute<J: JobHandler>(
    job: J,
    ctx: Data<QueueContext>,
    task_id: TaskId,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let started = std::time::Instant::now();
    let result = job.handle(&ctx.env).await;
    let outcome = match &result {
        Ok(JobOutcome::Done) => "done",
        Ok(JobOutcome::Skipped(_)) => "skipped",
        Ok(JobOutcome::NotYetDue(_)) => "not_yet_due",
        Err(JobError::Transient(_)) => "retry",
        Err(JobError::Permanent(_)) => "failed",
    };
    metrics::counter!("referral_jobs_total", "queue" => J::QUEUE, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("referral_job_duration_seconds", "queue" => J::QUEUE)
        .record(started.elapsed().as_secs_f64());
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
            let mut conn = ctx.env.pool.acquire().await?;
            let id = task_id.to_string();
            if jobs_store::reschedule(&mut conn, &id, worker.name(), due_at).await? {
                tracing::info!(%due_at, "woken early; back to sleep until due");
            } else {
                // Re-queued to another worker meanwhile (this one looked dead): that
                // delivery decides.
                tracing::warn!(%due_at, "woken early, but the job is no longer ours");
            }
            Ok(())
        }
        Err(JobError::Permanent(error)) => {
            tracing::error!(error = %error, "job failed permanently");
            Err(Box::new(AbortError::new(error)))
        }
        Err(JobError::Transient(error)) => Err(error),
    }
}

/// A panic in a handler, caught by apalis's catch-panic layer; retried like a transient
/// error.
#[derive(Debug, thiserror::Error)]
#[error("job panicked: {0}")]
pub struct JobPanicked(String);

fn panic_to_error(panic: &Box<dyn std::any::Any + Send>) -> JobPanicked {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    JobPanicked(message)
}

/// Retries with backoff: after a failed attempt that may pass later, moves the job's
/// `run_at` out by [`backoff`] before apalis acknowledges the failure (the
/// acknowledgement leaves `run_at` alone). Also logs every attempt in a span, and has
/// the attempt's outcome written as soon as apalis has it (see the module docs).
#[derive(Clone, Debug)]
struct BackoffLayer {
    pool: PgPool,
    fetch_loop: Arc<QueueSignal>,
    queue: &'static str,
    retry_base: Duration,
    max_attempts: usize,
}

impl<S> tower_layer::Layer<S> for BackoffLayer {
    type Service = Backoff<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Backoff {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
struct Backoff<S> {
    inner: S,
    layer: BackoffLayer,
}

impl<S, Args> tower_service::Service<Task<Args>> for Backoff<S>
where
    S: tower_service::Service<Task<Args>>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let id = task.ctx().task_id().map(ToString::to_string);
        let attempt = task.ctx().raw_attempt().clone();
        let status = task.ctx().raw_status().clone();
        let layer = self.layer.clone();
        let span = tracing::info_span!(
            "job",
            queue = layer.queue,
            job_id = id.as_deref().unwrap_or("?"),
            attempt = tracing::field::Empty
        );
        let fut = self.inner.call(task);
        async move {
            // Turns the loop once this future is done, retry delay written included,
            // whichever way it ends.
            let _outcome_pending = OutcomePending(layer.fetch_loop.clone());
            let result = fut.await.map_err(Into::into);
            let attempt = attempt.current();
            tracing::Span::current().record("attempt", attempt);
            let Err(error) = result else {
                return result;
            };
            if error.is::<AbortError>() {
                return Err(error);
            }
            if error.is::<JobPanicked>() {
                // The panic unwound through apalis's own bookkeeping, which records the
                // status inside the layers: without this the attempt would be
                // acknowledged as still `Running` and never run again.
                status.store(Status::Failed);
            }
            let Some(id) = id.filter(|_| attempt < layer.max_attempts) else {
                tracing::error!(error = %error, "job failed on its last attempt");
                return Err(error);
            };
            let delay = backoff(layer.retry_base, attempt);
            tracing::warn!(error = %error, retry_in_ms = delay.as_millis(), "job failed; will retry");
            let postponed = match layer.pool.acquire().await {
                Ok(mut conn) => jobs_store::postpone(&mut conn, &id, delay).await,
                Err(e) => Err(StoreError::from(e)),
            };
            if let Err(e) = postponed {
                // The attempt still counts; it is retried at once instead of after a pause.
                tracing::error!(error = %e, "could not delay the retry");
            }
            Err(error)
        }
        .instrument(span)
        .boxed()
    }
}

/// Tells the fetch loop an attempt ended when dropped: when an attempt's future ends,
/// the moment apalis takes its outcome.
struct OutcomePending(Arc<QueueSignal>);

impl Drop for OutcomePending {
    fn drop(&mut self) {
        self.0.attempt_ended();
    }
}

/// How long a failed queue worker waits before it starts again.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// A queue worker whose fetch or heartbeat failed (the database went away, a connection
/// was cut) ends; without a restart its queue would stay unserved while the process
/// looks healthy. It restarts under a new name; the pause before it talks to the
/// database again is an async delay in the new worker's backend (see [`Queues::with`]),
/// as this callback is synchronous and runs on a Tokio thread.
fn restart_after_failure(
    worker: &apalis_core::worker::context::WorkerContext,
    error: &apalis_core::error::WorkerError,
) -> bool {
    if worker.is_shutting_down() {
        return false;
    }
    tracing::error!(worker = worker.name(), error = %error, "queue worker failed; restarting");
    true
}

/// Silent heartbeats after which a worker's jobs are re-queued: a worker heartbeats five
/// times per `orphan_after`, so one or two slow heartbeats do not hand its jobs away.
const MISSED_HEARTBEATS: u32 = 5;

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
    wakeups: Wakeups,
}

impl Queues {
    /// No queues yet.
    pub fn new(env: JobEnv, settings: RuntimeSettings) -> Self {
        Self {
            monitor: Monitor::new()
                .shutdown_timeout(settings.shutdown_grace)
                .should_restart(restart_after_failure),
            ctx: QueueContext { env },
            settings,
            wakeups: Wakeups::default(),
        }
    }

    /// Every production queue (SPEC: Jobs).
    pub fn all(env: JobEnv, settings: RuntimeSettings) -> Self {
        Self::new(env, settings)
            .with::<jobs::SendEmail>()
            .with::<jobs::GrantSignupCredit>()
            .with::<jobs::ExpireSignupCredit>()
            .with::<jobs::MakeCommissionEligible>()
            .with::<jobs::PayCommission>()
            .with::<jobs::ReverseCommission>()
            .with::<jobs::SendPayoutTransfer>()
            .with::<jobs::ReversePayoutTransfer>()
            .with::<jobs::Reconcile>()
    }

    /// Adds the queue of job type `J`.
    pub fn with<J: JobHandler>(mut self) -> Self {
        let lanes = self.settings.lanes.max(1);
        let concurrency = self.settings.concurrency.div_ceil(lanes).max(1);
        for _ in 0..lanes {
            self = self.with_lane::<J>(concurrency);
        }
        self
    }

    /// One fetch loop of `J`'s queue (an apalis worker of its own) running `concurrency`
    /// jobs at once.
    fn with_lane<J: JobHandler>(mut self, concurrency: usize) -> Self {
        let pool = self.ctx.env.pool.clone();
        let ctx = self.ctx.clone();
        let settings = self.settings.clone();
        let signal = self.wakeups.signal(J::QUEUE);
        // Jobs of a worker that stopped heartbeating (killed mid-job) are re-queued by the
        // others after `orphan_after` of silence.
        let heartbeat = (settings.orphan_after / MISSED_HEARTBEATS).max(Duration::from_millis(200));
        self.monitor = self.monitor.register(move |restart| {
            let config = Config::default()
                .queue(J::QUEUE)
                .batch_size(settings.batch_size.max(1))
                .heartbeat_interval(heartbeat)
                .missed_heartbeats(MISSED_HEARTBEATS as usize);
            let storage = PostgresStorage::<J>::new(&pool).with_config(config);
            let wake = signal
                .clone()
                .wake_strategy(pool.clone(), J::QUEUE, settings.safety_wake);
            let backend = PollWith::new(storage, wake)
                // A restarted worker waits before registering and fetching again, so a
                // database that is down is not hammered.
                .before_start(move |_| async move {
                    if restart > 0 {
                        tokio::time::sleep(RESTART_PAUSE).await;
                    }
                    Ok(())
                });
            let backoff = BackoffLayer {
                pool: pool.clone(),
                fetch_loop: signal.clone(),
                queue: J::QUEUE,
                retry_base: settings.retry_base,
                max_attempts: J::MAX_ATTEMPTS as usize,
            };
            WorkerBuilder::new(worker_name(J::QUEUE, restart))
                .backend(backend)
                .data(ctx.clone())
                .concurrency(concurrency)
                .parallelize(tokio::spawn)
                .layer(backoff)
                .layer(CatchPanicLayer::with_panic_handler(panic_to_error))
                .build(execute::<J>)
        });
        self
    }

    /// Starts the queues. They stop taking jobs when `shutdown` resolves (or on
    /// [`WorkerHandle::stop`]) and return once in-flight jobs finish.
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> WorkerHandle {
        let listener = tokio::spawn(self.wakeups.listen(self.ctx.env.pool.clone()));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let signal = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop_rx => {}
            }
            tracing::info!("worker stopping: no new jobs, waiting for in-flight ones");
            Ok(())
        };
        let monitor = self.monitor;
        let join = tokio::spawn(async move {
            let ended = monitor.run_with_signal(signal).await;
            listener.abort();
            ended
        });
        WorkerHandle {
            stop: Some(stop_tx),
            join,
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
