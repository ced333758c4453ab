//! The soak: link visits and signups at a steady rate (open loop: a slow answer does not
//! slow the load) while the workers are killed and restarted; then error rate, latency
//! percentiles, and whether every acknowledged visit and signup is there and every
//! referred signup got its credit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::Mutex;

use super::Suite;

#[derive(Debug, Default)]
pub struct SoakReport {
    pub seconds: u64,
    pub rate: u32,
    pub requests: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub worker_kills: u32,
    pub clicks_acknowledged: usize,
    pub clicks_missing: usize,
    pub signups_acknowledged: usize,
    pub signups_missing: usize,
    pub referred_without_credit: i64,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
    clicks: Vec<String>,
    signups: Vec<String>,
}

impl Suite {
    /// Runs the soak for `seconds` at `rate` requests a second.
    pub async fn soak(&self, seconds: u64, rate: u32) -> anyhow::Result<SoakReport> {
        // Every visit comes from this one machine: the per-address limit is off here.
        let booted = self
            .boot("faults_soak", &[("REDIRECT_RATE_PER_MINUTE", "0")], None)
            .await?;
        let http = booted.http.clone();
        let base = booted.base_url.clone();
        let key = booted.platform_key.clone();
        let created: serde_json::Value = http
            .post(format!("{base}/v1/users"))
            .bearer_auth(&key)
            .json(&json!({"user_id": "soak-referrer", "email": "soak-referrer@example.com"}))
            .send()
            .await?
            .json()
            .await?;
        let code = created["user"]["referral_code"]
            .as_str()
            .context("referral code")?
            .to_owned();

        let tally = Arc::new(Mutex::new(Tally::default()));
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let services = booted.services.clone();
        let killer = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(7);
            let mut kills = 0u32;
            loop {
                let pause = Duration::from_millis(rng.random_range(1_500..4_000));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop_rx.changed() => return kills,
                }
                let index = rng.random_range(1..=2);
                services.lock().await[index].kill();
                kills += 1;
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
                if let Err(error) = services.lock().await[index].start() {
                    tracing::error!(%error, "worker restart failed");
                }
            }
        });

        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut sent = 0usize;
        let mut in_flight = Vec::new();
        while Instant::now() < end {
            ticks.tick().await;
            sent += 1;
            let (http, base, key, code, tally) = (
                http.clone(),
                base.clone(),
                key.clone(),
                code.clone(),
                tally.clone(),
            );
            let signup = sent.is_multiple_of(5);
            in_flight.push(tokio::spawn(async move {
                let started = Instant::now();
                if signup {
                    let click = tally.lock().await.clicks.last().cloned();
                    let user = format!("soak-{sent}");
                    let mut body = json!({"user_id": user, "email": format!("{user}@example.com")});
                    if let Some(click) = click {
                        body["click_id"] = json!(click);
                    }
                    let result = http
                        .post(format!("{base}/v1/users"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await;
                    let elapsed = started.elapsed();
                    let mut tally = tally.lock().await;
                    tally.latencies.push(elapsed);
                    match result {
                        Ok(response) if response.status().as_u16() == 201 => {
                            tally.signups.push(user)
                        }
                        _ => tally.errors += 1,
                    }
                } else {
                    let result = http.get(format!("{base}/r/{code}")).send().await;
                    let elapsed = started.elapsed();
                    let click = result
                        .ok()
                        .filter(|r| r.status().as_u16() == 302)
                        .and_then(|r| {
                            r.headers()
                                .get_all("set-cookie")
                                .iter()
                                .filter_map(|v| v.to_str().ok())
                                .find_map(|c| c.strip_prefix("ref_click="))
                                .and_then(|c| c.split(';').next())
                                .map(str::to_owned)
                        });
                    let mut tally = tally.lock().await;
                    tally.latencies.push(elapsed);
                    match click {
                        Some(click) => tally.clicks.push(click),
                        None => tally.errors += 1,
                    }
                }
            }));
        }
        for request in in_flight {
            let _ = request.await;
        }
        let _ = stop_tx.send(true);
        let worker_kills = killer.await.context("worker killer")?;
        {
            let mut services = booted.services.lock().await;
            for service in services.iter_mut() {
                if !service.is_running() {
                    service.start()?;
                }
            }
        }

        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&booted.database_url)
            .await?;
        let tally = tally.lock().await;
        let present: i64 =
            sqlx::query_scalar("select count(*) from clicks where id::text = any($1)")
                .bind(&tally.clicks)
                .fetch_one(&pool)
                .await?;
        let users: i64 =
            sqlx::query_scalar("select count(*) from users where platform_user_id = any($1)")
                .bind(&tally.signups)
                .fetch_one(&pool)
                .await?;
        // Credit is granted by the workers being killed: wait (bounded) for all of it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let referred_without_credit = loop {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from users u where u.referred_by is not null
                   and not exists (select 1 from credit_grants g where g.user_id = u.id)",
            )
            .fetch_one(&pool)
            .await?;
            if waiting == 0 || Instant::now() >= deadline {
                break waiting;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let mut latencies = tally.latencies.clone();
        latencies.sort();
        // The value below which `per_mille` of the latencies fall.
        let at = |per_mille: usize| {
            latencies
                .get((latencies.len() * per_mille / 1000).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        let report = SoakReport {
            seconds,
            rate,
            requests: latencies.len(),
            errors: tally.errors,
            p50: at(500),
            p99: at(990),
            max: latencies.last().copied().unwrap_or_default(),
            worker_kills,
            clicks_acknowledged: tally.clicks.len(),
            clicks_missing: tally
                .clicks
                .len()
                .saturating_sub(usize::try_from(present).unwrap_or(0)),
            signups_acknowledged: tally.signups.len(),
            signups_missing: tally
                .signups
                .len()
                .saturating_sub(usize::try_from(users).unwrap_or(0)),
            referred_without_credit,
        };
        pool.close().await;
        for service in booted.services.lock().await.iter_mut() {
            service.kill();
        }
        Ok(report)
    }
}
