//! The fault schedule: from the run's seed, at random instants, one fault at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use super::cluster::Cluster;
use super::{STRIPE_TIMEOUT, Services};
use crate::fake_stripe::{FakeStripe, Outage};
use crate::smtp_capture::SmtpCapture;

pub struct Striker {
    pub rng: StdRng,
    pub services: Services,
    pub cluster: Arc<Cluster>,
    pub stripe: FakeStripe,
    pub smtp: Arc<SmtpCapture>,
}

impl Striker {
    /// Strikes until `stop` turns true; returns the faults injected by kind.
    pub async fn strike_until(
        mut self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> BTreeMap<&'static str, u32> {
        let mut injected = BTreeMap::new();
        loop {
            let pause = Duration::from_millis(self.rng.random_range(150..900));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return injected,
            }
            if *stop.borrow() {
                return injected;
            }
            let kind = self.strike().await;
            *injected.entry(kind).or_insert(0) += 1;
        }
    }

    async fn strike(&mut self) -> &'static str {
        let roll = self.rng.random_range(0..100);
        let lasting = Duration::from_millis(self.rng.random_range(300..2_500));
        match roll {
            0..30 => {
                let index = self.rng.random_range(1..=2);
                self.kill_and_restart(index, lasting).await;
                "kill -9 worker"
            }
            30..45 => {
                self.kill_and_restart(0, lasting / 3).await;
                "kill -9 api"
            }
            45..55 => {
                let cluster = self.cluster.clone();
                match tokio::task::spawn_blocking(move || cluster.crash_and_restart()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(%error, "postgres restart failed"),
                    Err(error) => tracing::error!(%error, "postgres restart panicked"),
                }
                "postgres crash and restart"
            }
            55..70 => {
                self.stripe.outage(Outage::Down, Instant::now() + lasting);
                "stripe answering 500"
            }
            70..80 => {
                let hold = STRIPE_TIMEOUT + Duration::from_millis(500);
                self.stripe
                    .outage(Outage::Slow(hold), Instant::now() + lasting);
                "stripe timing out (after doing the work)"
            }
            _ => {
                self.smtp.refuse_until(Instant::now() + lasting);
                "smtp refusing"
            }
        }
    }

    async fn kill_and_restart(&mut self, index: usize, down_for: Duration) {
        self.services.lock().await[index].kill();
        tokio::time::sleep(down_for).await;
        if let Err(error) = self.services.lock().await[index].start() {
            tracing::error!(%error, "restart failed");
        }
    }
}
