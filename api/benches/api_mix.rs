//! The api under a realistic mix at a fixed rate: signups, clicks, wallet reads,
//! referred-user pages and spends, sent on a schedule (open loop: a slow answer does not
//! slow the senders down, as with real users). The worker runs in the same process, so
//! signups are credited while the load goes on.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-api --bench api_mix              # 500 req/s for 30 s
//! RATE=1000 SECONDS=60 cargo bench -p referral-api --bench api_mix
//! ```

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use referral_core::stripe::{StripeGateway, StripeSettings};
use referral_core::{ProgramSettings, SystemClock};
use referral_worker::mailer::Mailer;
use referral_worker::{JobEnv, Queues, RuntimeSettings, SweepConfig};
use serde_json::json;
use support::{Bench, BoxError};

const REFERRERS: usize = 50;
const CREDITED_USERS: usize = 200;

/// What one scheduled request does; the schedule cycles through [`MIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Click,
    Signup,
    Spend,
    Wallet,
    Referrals,
}

impl Op {
    fn is_write(self) -> bool {
        matches!(self, Op::Click | Op::Signup | Op::Spend)
    }
}

/// 20 slots: 35 % clicks, 10 % signups, 10 % spends, 25 % wallet reads, 20 % referred-user
/// pages.
const MIX: [Op; 20] = {
    use Op::*;
    [
        Click, Wallet, Referrals, Click, Signup, Wallet, Click, Spend, Referrals, Wallet, Click,
        Referrals, Click, Wallet, Signup, Click, Spend, Referrals, Click, Wallet,
    ]
};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let rate = env_number("RATE", 500).max(1);
    let seconds = env_number("SECONDS", 30).max(1);
    let bench = Arc::new(Bench::start("mix", 64).await?);
    let worker = Queues::all(
        JobEnv {
            pool: bench.pool.clone(),
            clock: Arc::new(SystemClock),
            settings: Arc::new(ProgramSettings::default()),
            mailer: Mailer::new("smtp://127.0.0.1:1", "bench@localhost")?,
            stripe: StripeGateway::new(&StripeSettings::for_tests("http://127.0.0.1:1/"))?,
            sweep: SweepConfig::default(),
        },
        RuntimeSettings {
            concurrency: 10,
            lanes: 1,
            safety_wake: None,
            batch_size: 100,
            retry_base: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            orphan_after: Duration::from_secs(10),
        },
    )
    .spawn(std::future::pending());

    let mut codes = Vec::with_capacity(REFERRERS);
    for n in 0..REFERRERS {
        codes.push(bench.user(&format!("referrer_{n}")).await?);
    }
    for n in 0..CREDITED_USERS {
        signup(&bench, &format!("credited_{n}"), &codes[n % REFERRERS]).await?;
    }
    wait_for_credits(&bench).await?;
    let codes = Arc::new(codes);

    println!(
        "mix: {rate} req/s for {seconds} s, {REFERRERS} referrers, {CREDITED_USERS} credited users"
    );
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        let due = started + period.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let op = MIX[n % MIX.len()];
        let (bench, codes) = (bench.clone(), codes.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = send(&bench, &codes, op, n).await;
            (op, sent.elapsed(), ok)
        }));
    }
    let mut latencies: BTreeMap<Op, Vec<Duration>> = BTreeMap::new();
    let mut failures = 0usize;
    for task in tasks {
        let (op, latency, ok) = task.await?;
        if !ok {
            failures += 1;
        }
        latencies.entry(op).or_default().push(latency);
    }
    let elapsed = started.elapsed();
    println!(
        "sent {total} in {:.1} s ({:.0} req/s), {failures} unexpected answers",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for (op, mut samples) in latencies {
        if op.is_write() {
            writes.extend_from_slice(&samples);
        } else {
            reads.extend_from_slice(&samples);
        }
        report(&format!("{op:?}"), &mut samples);
    }
    report("reads", &mut reads);
    report("writes", &mut writes);
    worker.stop().await?;
    match Arc::try_unwrap(bench) {
        Ok(bench) => bench.finish().await,
        Err(_) => Err("requests still hold the bench".into()),
    }
}

async fn signup(bench: &Bench, user_id: &str, code: &str) -> Result<(), BoxError> {
    let response = bench
        .http
        .post(format!("{}/v1/users", bench.base))
        .bearer_auth(&bench.key)
        .json(&json!({"user_id": user_id, "email": format!("{user_id}@example.com"), "referral_code": code}))
        .send()
        .await?;
    if response.status() != 201 {
        return Err(format!("signup {user_id}: {}", response.status()).into());
    }
    Ok(())
}

/// Waits until the worker has credited every referred user of the setup.
async fn wait_for_credits(bench: &Bench) -> Result<(), BoxError> {
    for _ in 0..600 {
        let credited: i64 = sqlx::query_scalar(
            "select count(*) from apalis.jobs where job_type = 'grant_signup_credit' and status = 'Done'",
        )
        .fetch_one(&bench.pool)
        .await?;
        if credited >= CREDITED_USERS as i64 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the worker did not credit the setup's users within a minute".into())
}

/// Sends the `n`th request of the schedule; whether it got the answer it should.
async fn send(bench: &Bench, codes: &[String], op: Op, n: usize) -> bool {
    let base = &bench.base;
    let credited = format!("credited_{}", n % CREDITED_USERS);
    let referrer = format!("referrer_{}", n % REFERRERS);
    let code = &codes[n % REFERRERS];
    let (request, expect) = match op {
        Op::Click => (
            bench
                .http
                .post(format!("{base}/v1/clicks"))
                .json(&json!({"referral_code": code, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"})),
            201,
        ),
        Op::Signup => (
            bench.http.post(format!("{base}/v1/users")).json(&json!({
                "user_id": format!("mix_{n}"),
                "email": format!("mix_{n}@example.com"),
                "referral_code": code,
            })),
            201,
        ),
        Op::Spend => (
            bench
                .http
                .post(format!("{base}/v1/users/{credited}/wallet/spend"))
                .json(&json!({"amount": "0.01", "currency": "USD", "reference": format!("spend_{n}")})),
            201,
        ),
        Op::Wallet => (
            bench.http.get(format!("{base}/v1/users/{credited}/wallet")),
            200,
        ),
        Op::Referrals => (
            bench.http.get(format!("{base}/v1/users/{referrer}/referrals")),
            200,
        ),
    };
    match request.bearer_auth(&bench.key).send().await {
        Ok(response) if response.status().as_u16() == expect => response.bytes().await.is_ok(),
        Ok(response) => {
            eprintln!("{op:?} #{n}: status {}", response.status());
            false
        }
        Err(error) => {
            eprintln!("{op:?} #{n}: {error}");
            false
        }
    }
}

fn report(label: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        return;
    }
    samples.sort_unstable();
    let at = |per_mille: usize| {
        let index = (samples.len() * per_mille / 1000).min(samples.len() - 1);
        samples[index].as_secs_f64() * 1000.0
    };
    println!(
        "  {label:<10} {:>6} requests  p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        samples.len(),
        at(500),
        at(990),
        at(1000)
    );
}
