//! When an idle queue looks for work: when the database says a job became claimable, and
//! when the earliest waiting job falls due. Never on a fixed poll.
//!
//! One `LISTEN referral_jobs` connection per worker process ([`Wakeups::listen`]) hears
//! every queue's announcements ("<queue> <milliseconds until due>", sent at commit by the
//! triggers of migration 0010) and hands each to its queue's [`QueueSignal`]. Each queue's
//! fetch loop is woken by [`QueueSignal::wake_stream`]: at once for a job due now, at the
//! due instant for a later one. After each wake-up the stream asks the database when the
//! queue's next claimable job is due (one read of the claimable-rows index), so a timer
//! armed long ago, a retry's backoff, or an announcement missed while the connection was
//! down are found without polling.
//!
//! An idle worker costs nothing but apalis's own heartbeat: no query runs until a
//! notification arrives or a due instant passes. An optional safety wake-up
//! (`WORKER_SAFETY_WAKE_MS`, off by default) adds a fetch and a next-due read per queue
//! per interval for anyone who wants a belt with the braces.
//!
//! apalis's `PollWith` polls its strategy at the start of each backend poll and drops
//! what it yields; a stream that yielded is not polled again until something else wakes
//! the worker. When a wake-up landed while a fetch begun before the notification was in
//! flight, that fetch came back empty and nothing was left to wake the loop until apalis's
//! next heartbeat (up to 2 s later). [`WakeStrategy`] polls the stream again until it is
//! pending, so its next wake-up is always armed.
//!
//! Not apalis-postgres's `PostgresStorageFactory`: its trigger announces only rows due
//! when inserted (not timers, retries or re-queued jobs), one notification per row, and
//! its shared listener refuses a queue registered a second time, which a restarted queue
//! worker does.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use referral_core::store::jobs as jobs_store;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The channel the triggers of migration 0010 notify.
pub const CHANNEL: &str = "referral_jobs";

/// How long after a wake-up a queue whose due jobs are still unclaimed looks again. Its
/// fetch loop takes them anyway as slots free up; this covers a wake-up that arrived
/// while a fetch begun before the job's commit was in flight.
const BUSY_RECHECK: Duration = Duration::from_millis(25);

/// `run_at < now()` is strict, and a wake-up computed from a rounded delay may land a
/// hair early: waking this much after the due instant makes the fetch find the job.
const DUE_MARGIN: Duration = Duration::from_millis(2);

/// How long the listener waits before reconnecting after losing its connection.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// When, after an attempt ends, its fetch loop is turned so apalis writes the outcome.
/// apalis takes the outcome within the same poll once our layers return (the first turn
/// leaves it time for that); the later ones cover a turn that found a fetch in flight (a
/// fetch takes milliseconds, more on a loaded machine). A newer attempt's end starts
/// the sequence again from its own end, so a busy loop is turned about every 2 ms.
const OUTCOME_TURNS: [Duration; 4] = [
    Duration::from_millis(2),
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_millis(1000),
];

/// The wake-ups of one queue in this process.
#[derive(Debug, Default)]
pub struct QueueSignal {
    notify: Notify,
    /// The earliest due instant announced and not yet woken for.
    next_due: Mutex<Option<Instant>>,
    /// The fetch loop's task, as it last looked at its wake-ups: turned without a read of
    /// the next due instant when only an outcome waits.
    fetch_loop: AtomicWaker,
    /// The end of the latest attempt whose outcome may still wait inside apalis.
    outcome_ended: Mutex<Option<Instant>>,
    /// Whether a task is turning the loop for outcomes ([`Self::turn_for_outcomes`]).
    turning: AtomicBool,
}

impl QueueSignal {
    /// An attempt of this loop ended: have the loop turned [`OUTCOME_TURNS`] after it, so
    /// its outcome is written at once rather than at apalis's next heartbeat. One task
    /// per loop does this for all attempts; it runs only while attempts end.
    pub fn attempt_ended(self: &Arc<Self>) {
        *self
            .outcome_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        if !self.turning.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(self.clone().turn_for_outcomes());
                }
                // Outside a runtime only when the process is ending: nothing to turn.
                Err(_) => self.turning.store(false, Ordering::Release),
            }
        }
    }

    fn take_outcome_end(&self) -> Option<Instant> {
        self.outcome_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    async fn turn_for_outcomes(self: Arc<Self>) {
        loop {
            while let Some(ended) = self.take_outcome_end() {
                let (mut base, mut step) = (ended, 0);
                while let Some(after) = OUTCOME_TURNS.get(step) {
                    tokio::time::sleep_until(base + *after).await;
                    self.fetch_loop.wake();
                    match self.take_outcome_end() {
                        Some(newer) => (base, step) = (newer, 0),
                        None => step += 1,
                    }
                }
            }
            self.turning.store(false, Ordering::SeqCst);
            // An attempt that ended after the last look saw this task still running.
            let missed = self
                .outcome_ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some();
            if !missed || self.turning.swap(true, Ordering::SeqCst) {
                return;
            }
        }
    }

    /// Records that a job of this queue is claimable from `due` on.
    pub fn announce(&self, due: Instant) {
        {
            let mut next = self.next_due.lock().unwrap_or_else(PoisonError::into_inner);
            *next = Some(next.map_or(due, |current| current.min(due)));
        }
        self.notify.notify_one();
    }

    fn next_due(&self) -> Option<Instant> {
        *self.next_due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Consumes the announcement if it is due by `now`.
    fn take_if_due(&self, now: Instant) -> bool {
        let mut next = self.next_due.lock().unwrap_or_else(PoisonError::into_inner);
        match *next {
            Some(due) if due <= now => {
                *next = None;
                true
            }
            _ => false,
        }
    }

    /// What wakes queue `queue`'s fetch loop: a stream that yields each time the loop
    /// should look for jobs (also after `safety`, when set, without any other reason),
    /// and the turns after attempts end.
    pub fn wake_strategy(
        self: Arc<Self>,
        pool: PgPool,
        queue: &'static str,
        safety: Option<Duration>,
    ) -> WakeStrategy {
        let state = WakeState {
            signal: self.clone(),
            pool,
            queue,
            safety,
            last_wake: None,
        };
        let wakes = Box::pin(futures::stream::unfold(state, |mut state| async move {
            state.refresh_from_database().await;
            tracing::trace!(queue = state.queue, next_due = ?state.signal.next_due(), "refreshed");
            state.wait_until_due().await;
            tracing::trace!(queue = state.queue, "wake");
            state.last_wake = Some(Instant::now());
            Some(((), state))
        }));
        WakeStrategy {
            wakes,
            signal: self,
        }
    }
}

struct WakeState {
    signal: Arc<QueueSignal>,
    pool: PgPool,
    queue: &'static str,
    safety: Option<Duration>,
    last_wake: Option<Instant>,
}

impl WakeState {
    /// Announces the queue's earliest claimable job as the database sees it.
    async fn refresh_from_database(&self) {
        let next_due = match self.pool.acquire().await {
            Ok(mut conn) => jobs_store::next_due_in(&mut conn, self.queue).await,
            Err(error) => Err(error.into()),
        };
        match next_due {
            Ok(Some(millis)) => {
                let now = Instant::now();
                let due = if millis > 0.0 {
                    due_in(millis)
                } else {
                    // Due and unclaimed: the fetch loop is busy or just missed it.
                    self.last_wake
                        .map_or(now, |last| (last + BUSY_RECHECK).max(now))
                };
                self.signal.announce(due);
            }
            Ok(None) => {}
            Err(error) => {
                // The heartbeat's fetch still runs; look again after a pause.
                tracing::warn!(queue = self.queue, %error, "could not read the next due job");
                self.signal.announce(Instant::now() + RECONNECT_PAUSE);
            }
        }
    }

    async fn wait_until_due(&self) {
        let safety_at = self.safety.map(|safety| Instant::now() + safety);
        loop {
            let now = Instant::now();
            if self.signal.take_if_due(now) || safety_at.is_some_and(|at| now >= at) {
                return;
            }
            let wake_at = match (self.signal.next_due(), safety_at) {
                (Some(due), Some(safety)) => Some(due.min(safety)),
                (due, safety) => due.or(safety),
            };
            let notified = self.signal.notify.notified();
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// The wake-ups of one fetch loop.
type WakeStream = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// Hands a fetch loop's wake-ups to apalis's `PollWith`, keeping them armed (see the
/// module docs); made by [`QueueSignal::wake_strategy`].
pub struct WakeStrategy {
    wakes: WakeStream,
    signal: Arc<QueueSignal>,
}

impl PollStrategy for WakeStrategy {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        self.signal.fetch_loop.register(cx.waker());
        // After a wake-up the stream reads the next due instant, which always waits on
        // the database; the bound only guards against a stream that never waits.
        const MAX_WAKES_PER_POLL: usize = 8;
        let mut woke = false;
        for _ in 0..MAX_WAKES_PER_POLL {
            match self.wakes.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => woke = true,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    return if woke {
                        Poll::Ready(Some(()))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
        // Not armed yet: have the loop polled again rather than left asleep.
        cx.waker().wake_by_ref();
        Poll::Ready(Some(()))
    }
}

/// The instant a job due in `millis` (on the database's clock; 0 or less: now) can be
/// claimed, with the margin `run_at < now()` needs.
fn due_in(millis: f64) -> Instant {
    let now = Instant::now();
    if millis > 0.0 {
        now + Duration::from_secs_f64(millis / 1_000.0) + DUE_MARGIN
    } else {
        now
    }
}

/// Every fetch loop's signal in this process, fed by one listening connection.
#[derive(Debug, Clone, Default)]
pub struct Wakeups {
    queues: Arc<Mutex<SignalsByQueue>>,
}

/// Each queue's fetch loops' signals.
type SignalsByQueue = HashMap<&'static str, Vec<Arc<QueueSignal>>>;

impl Wakeups {
    /// A new signal for one fetch loop of `queue`; every announcement for the queue
    /// reaches all of its loops.
    pub fn signal(&self, queue: &'static str) -> Arc<QueueSignal> {
        let signal = Arc::new(QueueSignal::default());
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(queue)
            .or_default()
            .push(signal.clone());
        signal
    }

    fn announce(&self, payload: &str) {
        let Some((queue, millis)) = payload.split_once(' ') else {
            tracing::warn!(payload, "unreadable job notification");
            return;
        };
        let millis: f64 = millis.parse().unwrap_or(0.0);
        let due = due_in(millis);
        tracing::trace!(queue, millis, "announced");
        // A queue this process does not serve has no entry.
        if let Some(signals) = self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(queue)
        {
            for signal in signals {
                signal.announce(due);
            }
        }
    }

    fn announce_all_now(&self) {
        let now = Instant::now();
        for signal in self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flatten()
        {
            signal.announce(now);
        }
    }

    /// Listens for announcements until the task is aborted, reconnecting when the
    /// connection drops. After each (re)connection every queue looks at once, as
    /// announcements sent meanwhile were lost.
    pub async fn listen(self, pool: PgPool) {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        self.announce_all_now();
                        self.relay(&mut listener).await;
                    }
                    Err(error) => tracing::warn!(%error, "could not listen for job notifications"),
                },
                Err(error) => {
                    tracing::warn!(%error, "could not connect to listen for job notifications")
                }
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    async fn relay(&self, listener: &mut PgListener) {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => self.announce(notification.payload()),
                Ok(None) => {
                    tracing::warn!("job notification connection lost; reconnecting");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "job notification connection failed; reconnecting");
                    return;
                }
            }
        }
    }
}
