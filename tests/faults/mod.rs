//! The seeded fault suite: the real api and two real worker processes over a PostgreSQL
//! cluster of the suite's own, the Stripe stand-in and an SMTP sink, a driver playing a
//! random story from a seed while a fault schedule from the same seed kills processes,
//! crashes the database and makes Stripe and SMTP misbehave; then every invariant of the
//! money is checked. See RELIABILITY.md.

pub mod checks;
pub mod cluster;
pub mod driver;
pub mod services;
pub mod soak;
pub mod strikes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use tokio::sync::Mutex;

use crate::fake_stripe::{FakeStripe, Outage};
use crate::smtp_capture::SmtpCapture;
use cluster::Cluster;
use services::Service;

/// The webhook signing secret the api and the stand-in share during a run.
pub const WEBHOOK_SECRET: &str = "whsec_faults";
/// The api's and worker's time limit for one Stripe call in the suite.
pub const STRIPE_TIMEOUT: Duration = Duration::from_millis(1_000);

/// What one seed's run found.
#[derive(Debug, Default)]
pub struct RunReport {
    pub seed: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u32>,
    /// Writes the driver saw acknowledged (2xx), by kind.
    pub acknowledged: BTreeMap<&'static str, usize>,
    /// E-mails the SMTP sink received more than once (same `Message-ID`).
    pub duplicate_deliveries: usize,
    /// Broken invariants; empty when the run passed.
    pub violations: Vec<String>,
    pub elapsed: Duration,
    /// Where the run's service logs are.
    pub logs: PathBuf,
}

/// A bug planted for a run, to measure whether the suite sees it (`--mutants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planted {
    /// In the engine's code: a build with the `mutants` feature, switched on by name.
    Product(referral_core::mutants::Mutant),
    /// In the Stripe stand-in: every request carried out as new.
    StripeForgetsIdempotencyKeys,
}

impl Planted {
    /// Every bug the suite can plant.
    pub fn all() -> Vec<Planted> {
        std::iter::once(Planted::StripeForgetsIdempotencyKeys)
            .chain(
                referral_core::mutants::Mutant::ALL
                    .into_iter()
                    .map(Planted::Product),
            )
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Planted::Product(mutant) => mutant.name(),
            Planted::StripeForgetsIdempotencyKeys => "stripe-forgets-idempotency-keys",
        }
    }
}

/// What stays up across runs: the cluster, the stand-ins, the binaries.
pub struct Suite {
    cluster: Arc<Cluster>,
    stripe: FakeStripe,
    smtp: Arc<SmtpCapture>,
    api_port: u16,
    api_binary: PathBuf,
    worker_binary: PathBuf,
    log_root: PathBuf,
    /// Steps of each story.
    pub steps: usize,
}

/// The processes of one run: index 0 is the api, then the workers.
pub type Services = Arc<Mutex<Vec<Service>>>;

/// A database with the api and two workers serving it.
pub struct Booted {
    pub database_url: String,
    pub logs: PathBuf,
    pub services: Services,
    pub http: reqwest::Client,
    pub base_url: String,
    pub platform_key: String,
    pub admin_key: String,
}

impl Suite {
    /// Starts a cluster, the Stripe stand-in and the SMTP sink.
    pub fn start(steps: usize, log_root: PathBuf) -> anyhow::Result<Self> {
        let cluster = Cluster::start(services::free_port()?)?;
        let api_port = services::free_port()?;
        let stripe = FakeStripe::start();
        stripe.send_webhooks_to(
            &format!("http://127.0.0.1:{api_port}/v1/stripe/webhook"),
            WEBHOOK_SECRET,
        );
        std::fs::create_dir_all(&log_root).context("create the log directory")?;
        Ok(Self {
            cluster: Arc::new(cluster),
            stripe,
            smtp: Arc::new(SmtpCapture::start()),
            api_port,
            api_binary: services::binary("referral-api")?,
            worker_binary: services::binary("referral-worker")?,
            log_root,
            steps,
        })
    }

    /// A fresh database named `database` with migrations and two API keys, and the api
    /// and two workers serving it.
    async fn boot(
        &self,
        database: &str,
        extra_env: &[(&str, &str)],
        second_worker_skew: Option<chrono::Duration>,
    ) -> anyhow::Result<Booted> {
        let database_url = self.cluster.url(database);
        recreate_database(&self.cluster.url("postgres"), database).await?;
        let logs = self.log_root.join(database);
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs)?;

        let mut env = self.environment(&database_url);
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let cli = |args: &[&str]| -> anyhow::Result<String> {
            let out = std::process::Command::new(&self.api_binary)
                .args(args)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output()
                .context("run referral-api")?;
            anyhow::ensure!(
                out.status.success(),
                "referral-api {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        cli(&["migrate"])?;
        let platform_key = cli(&["create-key", "--role", "platform", "--name", "faults"])?;
        let admin_key = cli(&["create-key", "--role", "admin", "--name", "faults admin"])?;

        let mut processes = vec![Service::new(
            "api",
            &self.api_binary,
            &["serve"],
            env.clone(),
            &logs,
        )];
        for n in 1..=2 {
            let mut worker_env = env.clone();
            worker_env.push(("WORKER_HTTP_ADDR".into(), "127.0.0.1:0".into()));
            if let Some(skew) = second_worker_skew.filter(|_| n == 2) {
                worker_env.push(("DEV_CLOCK_SKEW_SECS".into(), skew.num_seconds().to_string()));
            }
            processes.push(Service::new(
                &format!("worker-{n}"),
                &self.worker_binary,
                &[],
                worker_env,
                &logs,
            ));
        }
        for process in &mut processes {
            process.start()?;
        }
        let base_url = format!("http://127.0.0.1:{}", self.api_port);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()?;
        services::wait_ready(
            &http,
            &format!("{base_url}/healthz"),
            Duration::from_secs(30),
        )
        .await?;
        Ok(Booted {
            database_url,
            logs,
            services: Arc::new(Mutex::new(processes)),
            http,
            base_url,
            platform_key,
            admin_key,
        })
    }

    /// The Stripe stand-in of every run.
    pub fn stripe(&self) -> &FakeStripe {
        &self.stripe
    }

    /// Plays the story of `seed` under the faults of `seed`, drains, checks; with `planted`,
    /// over a build with that bug in it.
    pub async fn run(&self, seed: u64, planted: Option<Planted>) -> anyhow::Result<RunReport> {
        let started = Instant::now();
        let database = format!("faults_{seed}");
        // Each run starts with a Stripe and a mailbox of its own: what the checks count is
        // this run's.
        self.stripe.reset();
        self.stripe
            .forget_idempotency_keys(planted == Some(Planted::StripeForgetsIdempotencyKeys));
        self.smtp.clear();
        let mutant_env: Vec<(&str, &str)> = match planted {
            Some(Planted::Product(mutant)) => vec![("REFERRAL_MUTANT", mutant.name())],
            _ => Vec::new(),
        };
        // The second worker's clock runs behind the others' (machines disagree), by one to
        // five days: it is asked to end holds that by its clock are not over.
        let skew = chrono::Duration::minutes(
            -StdRng::seed_from_u64(seed ^ 0xc10c).random_range(24 * 60..5 * 24 * 60),
        );
        let booted = self.boot(&database, &mutant_env, Some(skew)).await?;
        let Booted {
            database_url,
            logs,
            services,
            http,
            base_url,
            ..
        } = &booted;

        let mut report = RunReport {
            seed,
            logs: logs.clone(),
            ..RunReport::default()
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(database_url)
            .await?;
        let striker = strikes::Striker {
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
            services: services.clone(),
            cluster: self.cluster.clone(),
            stripe: self.stripe.clone(),
            smtp: self.smtp.clone(),
            pool: pool.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let strikes = tokio::spawn(striker.strike_until(stop_rx));

        let mut driver =
            driver::Driver::new(StdRng::seed_from_u64(seed), seed, &booted, &self.stripe);
        let played = driver.play(self.steps).await;
        let _ = stop_tx.send(true);
        report.faults = strikes.await.context("fault task")?;
        for (kind, struck) in self.stripe.aimed_struck() {
            // Those that signal are counted by the striker, which acts on them.
            if kind.contains("times out") {
                *report.faults.entry(kind).or_default() += struck;
            }
        }
        // Faults over: every service back up, Stripe and SMTP well again.
        self.stripe.outage(Outage::Down, Instant::now());
        self.smtp.refuse_until(Instant::now());
        report
            .violations
            .extend(settle_services(services, Settle::Restart).await?);
        services::wait_ready(
            http,
            &format!("{base_url}/healthz"),
            Duration::from_secs(30),
        )
        .await?;
        if let Err(error) = played {
            report
                .violations
                .push(format!("the story could not be played: {error:#}"));
        }

        if let Err(stuck) = driver.drain(&pool).await {
            report
                .violations
                .push(format!("work did not drain: {stuck:#}"));
        }
        let found = checks::check(&pool, &driver, &self.stripe, &self.smtp).await?;
        report.violations.extend(found.violations);
        report.duplicate_deliveries = found.duplicate_deliveries;
        report.acknowledged = driver.acknowledged_counts();
        report
            .violations
            .extend(settle_services(services, Settle::Stop).await?);
        pool.close().await;
        if report.violations.is_empty() {
            let _ = std::fs::remove_dir_all(logs);
            drop_database(&self.cluster.url("postgres"), &database).await;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    fn environment(&self, database_url: &str) -> Vec<(String, String)> {
        let stripe_base = self.stripe.base_url.clone();
        [
            ("DATABASE_URL", database_url.to_owned()),
            ("LISTEN_ADDR", format!("127.0.0.1:{}", self.api_port)),
            (
                "PUBLIC_BASE_URL",
                format!("http://127.0.0.1:{}/r", self.api_port),
            ),
            ("DEV_TIME_TRAVEL", "true".into()),
            ("STRIPE_SECRET_KEY", "sk_test_faults".into()),
            ("STRIPE_API_BASE", stripe_base),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("STRIPE_TIMEOUT_MS", STRIPE_TIMEOUT.as_millis().to_string()),
            ("SMTP_URL", self.smtp.url.clone()),
            ("JOB_RETRY_BASE_MS", "200".into()),
            ("WORKER_ORPHAN_AFTER_SECS", "2".into()),
            ("RECONCILE_INTERVAL_SECS", "5".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// What to do with each service once the faults are over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// Start the ones that are down.
    Restart,
    /// Stop them all.
    Stop,
}

/// Settles every service; returns one violation per service that exited by itself.
async fn settle_services(services: &Services, settle: Settle) -> anyhow::Result<Vec<String>> {
    let mut crashed = Vec::new();
    for process in services.lock().await.iter_mut() {
        if let Err(crash) = process.check_alive() {
            crashed.push(format!("a service crashed: {crash}"));
        }
        match settle {
            Settle::Restart if !process.is_running() => process.start()?,
            Settle::Restart => {}
            Settle::Stop => process.kill(),
        }
    }
    Ok(crashed)
}

async fn recreate_database(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    // Names are built from a number above.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {database} with (force)"
    )))
    .execute(&mut conn)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {database}")))
        .execute(&mut conn)
        .await?;
    Ok(())
}

async fn drop_database(admin_url: &str, database: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {database} with (force)"
        )))
        .execute(&mut conn)
        .await;
    }
}
