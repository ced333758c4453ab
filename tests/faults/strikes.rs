//! The fault schedule: from the run's seed, at random instants, one fault at a time; some
//! aimed at the moment money moves at Stripe, some delivering finished jobs again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use referral_core::jobs::{
    self, ExpireSignupCredit, GrantSignupCredit, Job, MakeCommissionEligible, PayCommission,
    Reconcile, ReverseCommission, ReversePayoutTransfer, SendEmail, SendPayoutTransfer,
};
use sqlx::PgPool;

use super::cluster::Cluster;
use super::{STRIPE_TIMEOUT, Services};
use crate::fake_stripe::{Aimed, FakeStripe, Outage};
use crate::smtp_capture::SmtpCapture;

/// What to do when Stripe signals that it is moving money.
#[derive(Debug, Clone, Copy)]
enum OnMoneyMoving {
    KillWorkers,
    CrashPostgres,
}

impl OnMoneyMoving {
    fn kind(self) -> &'static str {
        match self {
            OnMoneyMoving::KillWorkers => "aimed: kill -9 of the workers as stripe moves money",
            OnMoneyMoving::CrashPostgres => "aimed: postgres crash as stripe moves money",
        }
    }
}

pub struct Striker {
    pub rng: StdRng,
    pub services: Services,
    pub cluster: Arc<Cluster>,
    pub stripe: FakeStripe,
    pub smtp: Arc<SmtpCapture>,
    /// The run's database, where finished jobs are delivered again.
    pub pool: PgPool,
}

impl Striker {
    /// Strikes until `stop` turns true; returns the faults injected by kind.
    pub async fn strike_until(
        mut self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> BTreeMap<&'static str, u32> {
        let mut injected = BTreeMap::new();
        // Aimed faults are carried out by a task of their own, at once: the stand-in holds
        // its answer only briefly, while this loop may be busy with a fault of its own.
        let on_money_moving: Arc<std::sync::Mutex<Option<OnMoneyMoving>>> = Arc::default();
        let reactor = tokio::spawn(react_to_money_moving(
            self.stripe.money_moving(),
            on_money_moving.clone(),
            self.services.clone(),
            self.cluster.clone(),
            StdRng::seed_from_u64(self.rng.random()),
            stop.clone(),
        ));
        loop {
            let pause = Duration::from_millis(self.rng.random_range(150..900));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            // Most of the time a fault waits for the next money movement at Stripe.
            if !self.stripe.is_aimed() && self.rng.random_bool(0.6) {
                let action = self.aim();
                *on_money_moving
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = action;
            }
            if let Some(kind) = self.strike().await {
                *injected.entry(kind).or_insert(0) += 1;
            }
        }
        if let Ok(reacted) = reactor.await {
            for (kind, n) in reacted {
                *injected.entry(kind).or_insert(0) += n;
            }
        }
        injected
    }

    /// Aims a fault at the next request that moves money at Stripe (counted when it
    /// strikes): its answer lost to a timeout, or the workers killed, or the database
    /// crashed, after Stripe did the work and before the worker can commit what it did.
    /// Answers what to do when it strikes, for a fault that signals.
    fn aim(&mut self) -> Option<OnMoneyMoving> {
        let roll = self.rng.random_range(0..100);
        if roll < 40 {
            self.stripe
                .aim(Aimed::TimeOut(STRIPE_TIMEOUT + Duration::from_millis(500)));
            return None;
        }
        self.stripe.aim(Aimed::Signal(Duration::from_millis(400)));
        Some(if roll < 75 {
            OnMoneyMoving::KillWorkers
        } else {
            OnMoneyMoving::CrashPostgres
        })
    }

    /// One fault; `None` when it found nothing to strike.
    async fn strike(&mut self) -> Option<&'static str> {
        let roll = self.rng.random_range(0..100);
        let lasting = Duration::from_millis(self.rng.random_range(300..2_500));
        let held = STRIPE_TIMEOUT + Duration::from_millis(500);
        Some(match roll {
            0..26 => {
                let index = self.rng.random_range(1..=2);
                self.kill_and_restart(index, lasting).await;
                "kill -9 worker"
            }
            26..38 => {
                self.kill_and_restart(0, lasting / 3).await;
                "kill -9 api"
            }
            38..46 => {
                self.crash_postgres().await;
                "postgres crash and restart"
            }
            46..58 => {
                self.stripe.outage(Outage::Down, Instant::now() + lasting);
                "stripe answering 500"
            }
            58..66 => {
                self.stripe
                    .outage(Outage::Slow(held), Instant::now() + lasting);
                "stripe timing out (after doing the work)"
            }
            66..82 => {
                self.smtp.refuse_until(Instant::now() + lasting);
                "smtp refusing"
            }
            _ => {
                let delivered = self.deliver_finished_jobs_again().await;
                if delivered == 0 {
                    return None;
                }
                "finished jobs delivered again"
            }
        })
    }

    async fn crash_postgres(&self) {
        crash_postgres(&self.cluster).await;
    }

    /// At-least-once delivery: a finished job of each of the money's queues is enqueued
    /// again, as a queue may deliver a job twice; each must find its work done. Answers
    /// how many were.
    async fn deliver_finished_jobs_again(&mut self) -> usize {
        let mut delivered = 0;
        // One job of each queue: rare queues are struck as often as busy ones.
        for queue in redelivered_queues() {
            let done: Option<Vec<u8>> = match sqlx::query_scalar(
                "select job from apalis.jobs
                 where status = 'Done' and job_type = $1 order by random() limit 1",
            )
            .bind(queue)
            .fetch_optional(&self.pool)
            .await
            {
                Ok(done) => done,
                Err(_) => continue,
            };
            let Some(payload) = done else {
                continue;
            };
            match deliver_again(&self.pool, queue, &payload).await {
                Ok(()) => delivered += 1,
                Err(error) => tracing::warn!(%error, queue, "could not deliver a job again"),
            }
        }
        delivered
    }

    async fn kill_and_restart(&mut self, index: usize, down_for: Duration) {
        self.services.lock().await[index].kill();
        tokio::time::sleep(down_for).await;
        if let Err(error) = self.services.lock().await[index].start() {
            tracing::error!(%error, "restart failed");
        }
    }
}

/// Carries out the aimed fault each time Stripe signals that money is moving; returns
/// what it did, by kind, once `stop` turns true.
async fn react_to_money_moving(
    mut money_moving: tokio::sync::mpsc::UnboundedReceiver<()>,
    on_money_moving: Arc<std::sync::Mutex<Option<OnMoneyMoving>>>,
    services: Services,
    cluster: Arc<Cluster>,
    mut rng: StdRng,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<&'static str, u32> {
    let mut done = BTreeMap::new();
    loop {
        tokio::select! {
            signal = money_moving.recv() => if signal.is_none() { break },
            _ = stop.changed() => break,
        }
        let action = on_money_moving
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(action) = action else {
            continue;
        };
        match action {
            OnMoneyMoving::KillWorkers => {
                let down_for = Duration::from_millis(rng.random_range(300..1_500));
                {
                    let mut services = services.lock().await;
                    services[1].kill();
                    services[2].kill();
                }
                tokio::time::sleep(down_for).await;
                let mut services = services.lock().await;
                for index in 1..=2 {
                    if let Err(error) = services[index].start() {
                        tracing::error!(%error, "restart failed");
                    }
                }
            }
            OnMoneyMoving::CrashPostgres => crash_postgres(&cluster).await,
        }
        *done.entry(action.kind()).or_insert(0) += 1;
    }
    done
}

async fn crash_postgres(cluster: &Arc<Cluster>) {
    let cluster = cluster.clone();
    match tokio::task::spawn_blocking(move || cluster.crash_and_restart()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "postgres restart failed"),
        Err(error) => tracing::error!(%error, "postgres restart panicked"),
    }
}

/// The queues whose finished jobs are delivered again: every one but the sweep's.
fn redelivered_queues() -> impl Iterator<Item = &'static str> {
    jobs::ALL_QUEUES
        .iter()
        .copied()
        .filter(|queue| *queue != Reconcile::QUEUE)
}

/// Enqueues a copy of a finished job of `queue`, through the engine's own enqueue.
async fn deliver_again(pool: &PgPool, queue: &str, payload: &[u8]) -> anyhow::Result<()> {
    async fn again<J: Job>(pool: &PgPool, payload: &[u8]) -> anyhow::Result<()> {
        let job: J = serde_json::from_slice(payload)?;
        jobs::enqueue_now(&mut *pool.acquire().await?, &job).await?;
        Ok(())
    }
    match queue {
        SendEmail::QUEUE => again::<SendEmail>(pool, payload).await,
        GrantSignupCredit::QUEUE => again::<GrantSignupCredit>(pool, payload).await,
        ExpireSignupCredit::QUEUE => again::<ExpireSignupCredit>(pool, payload).await,
        MakeCommissionEligible::QUEUE => again::<MakeCommissionEligible>(pool, payload).await,
        PayCommission::QUEUE => again::<PayCommission>(pool, payload).await,
        ReverseCommission::QUEUE => again::<ReverseCommission>(pool, payload).await,
        SendPayoutTransfer::QUEUE => again::<SendPayoutTransfer>(pool, payload).await,
        ReversePayoutTransfer::QUEUE => again::<ReversePayoutTransfer>(pool, payload).await,
        other => anyhow::bail!("{other} is not delivered again"),
    }
}
