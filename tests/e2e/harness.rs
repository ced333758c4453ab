//! `TestApp`: the api on 127.0.0.1:0, the worker in-process, an SMTP capture server,
//! and a `ManualClock` shared by both.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::Server;
use poem::listener::TcpAcceptor;
use referral_api::{ApiConfig, AppState};
use referral_core::domain::api_key::ApiRole;
use referral_core::domain::operations::JobRow;
use referral_core::jobs::Job;
use referral_core::store::jobs as jobs_store;
use referral_core::stripe::{StripeGateway, StripeSettings};
use referral_core::usecases::api_keys;
use referral_core::{Clock, ManualClock, ProgramSettings};
use referral_tests::fake_stripe::FakeStripe;
use referral_worker::mailer::Mailer;
use referral_worker::{JobEnv, Queues, RuntimeSettings, WorkerHandle};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use referral_tests::smtp_capture::SmtpCapture;

/// Polls `check` until it returns `Some`, or `limit` passes.
pub async fn wait_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct TestApp {
    pub pool: PgPool,
    pub clock: ManualClock,
    pub base_url: String,
    pub http: reqwest::Client,
    pub platform_key: String,
    pub admin_key: String,
    pub smtp: SmtpCapture,
    pub worker: Option<WorkerHandle>,
    /// The local Stripe stand-in the api and worker talk to.
    pub stripe: FakeStripe,
    smtp_url: String,
    /// The clock the api and worker read: the manual clock, or a dev clock.
    service_clock: Arc<dyn Clock>,
}

pub const RETRY_BASE: Duration = Duration::from_millis(300);
/// The webhook signing secret of `ApiConfig::for_tests`.
pub const WEBHOOK_SECRET: &str = "whsec_test";

impl TestApp {
    /// Another api process over the same database (as a second instance behind a
    /// balancer), with `config`'s redirect limit; returns its base URL.
    pub async fn spawn_another_api(&self, config: ApiConfig) -> String {
        let state = AppState::new(
            self.pool.clone(),
            self.service_clock.clone(),
            config,
            StripeGateway::new(&StripeSettings::for_tests(&self.stripe.base_url)).unwrap(),
            None,
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let acceptor = TcpAcceptor::from_std(listener).unwrap();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(referral_api::app(state)));
        base_url
    }

    /// Api, worker and SMTP capture over the test's database.
    pub async fn spawn(pool: PgPool) -> Self {
        let smtp = SmtpCapture::start();
        let url = smtp.url.clone();
        Self::spawn_with_smtp(pool, smtp, url).await
    }

    /// As [`spawn`], with the worker sending mail to `smtp_url` (e.g. a closed port).
    pub async fn spawn_with_smtp(pool: PgPool, smtp: SmtpCapture, smtp_url: String) -> Self {
        Self::spawn_inner(pool, smtp, smtp_url, None).await
    }

    /// As [`spawn`], with the api and worker on a `DEV_TIME_TRAVEL` clock.
    pub async fn spawn_with_dev_clock(pool: PgPool) -> Self {
        let smtp = SmtpCapture::start();
        let url = smtp.url.clone();
        Self::spawn_inner(
            pool,
            smtp,
            url,
            Some(referral_core::dev_time::OffsetClock::default()),
        )
        .await
    }

    async fn spawn_inner(
        pool: PgPool,
        smtp: SmtpCapture,
        smtp_url: String,
        dev_clock: Option<referral_core::dev_time::OffsetClock>,
    ) -> Self {
        // RUST_LOG=info shows the api's and worker's logs next to a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // The test pool from sqlx::test is small; api + worker need more connections.
        let pool = PgPoolOptions::new()
            .max_connections(30)
            .connect_with((*pool.connect_options()).clone())
            .await
            .unwrap();
        referral_migrations::run(&pool).await.unwrap();
        let clock = ManualClock::starting_now();
        let service_clock: Arc<dyn Clock> = match &dev_clock {
            Some(dev_clock) => Arc::new(dev_clock.clone()),
            None => Arc::new(clock.clone()),
        };
        let mut conn = pool.acquire().await.unwrap();
        let platform_key = api_keys::create(&mut conn, "test platform", ApiRole::Platform)
            .await
            .unwrap()
            .plaintext;
        let admin_key = api_keys::create(&mut conn, "test admin", ApiRole::Admin)
            .await
            .unwrap()
            .plaintext;
        drop(conn);

        let stripe = FakeStripe::start();
        let state = AppState::new(
            pool.clone(),
            service_clock.clone(),
            ApiConfig::for_tests("postgres://unused"),
            StripeGateway::new(&StripeSettings::for_tests(&stripe.base_url)).unwrap(),
            dev_clock,
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        stripe.send_webhooks_to(&format!("{base_url}/v1/stripe/webhook"), WEBHOOK_SECRET);
        let acceptor = TcpAcceptor::from_std(listener).unwrap();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(referral_api::app(state)));

        let mut app = Self {
            pool,
            clock,
            base_url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            platform_key,
            admin_key,
            smtp,
            worker: None,
            stripe,
            smtp_url,
            service_clock,
        };
        app.start_worker();
        app
    }

    pub fn job_env(&self) -> JobEnv {
        JobEnv {
            pool: self.pool.clone(),
            clock: self.service_clock.clone(),
            settings: Arc::new(ProgramSettings::default()),
            mailer: Mailer::new(&self.smtp_url, "Referral Program <no-reply@test.local>").unwrap(),
            stripe: StripeGateway::new(&StripeSettings::for_tests(&self.stripe.base_url)).unwrap(),
            sweep: referral_worker::SweepConfig::default(),
        }
    }

    pub fn runtime_settings() -> RuntimeSettings {
        RuntimeSettings {
            concurrency: 4,
            batch_size: 4,
            lanes: 1,
            safety_wake: None,
            retry_base: RETRY_BASE,
            shutdown_grace: Duration::from_secs(10),
            orphan_after: Duration::from_secs(10),
        }
    }

    /// Starts a worker process' worth of queues (a new, unique worker name each time).
    pub fn start_worker(&mut self) {
        self.start_worker_with(Self::runtime_settings());
    }

    /// As [`start_worker`], with other runtime settings.
    pub fn start_worker_with(&mut self, settings: RuntimeSettings) {
        assert!(self.worker.is_none(), "worker already running");
        let handle = Queues::all(self.job_env(), settings).spawn(std::future::pending());
        self.worker = Some(handle);
    }

    /// Stops the worker as SIGTERM would: in-flight jobs finish first.
    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await.unwrap();
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        self.post_raw(path, key, &body.to_string()).await
    }

    /// The jobs of `J`'s queue, newest first.
    pub async fn jobs<J: Job>(&self) -> Vec<JobRow> {
        let mut conn = self.pool.acquire().await.unwrap();
        jobs_store::list_queue(&mut conn, J::QUEUE).await.unwrap()
    }

    /// Makes every waiting job that is due by the manual clock due for the database too
    /// (apalis compares `run_at` with the database's `now()`).
    pub async fn make_due(&self) {
        let mut conn = self.pool.acquire().await.unwrap();
        jobs_store::make_due(&mut conn, self.clock.now())
            .await
            .unwrap();
    }

    /// Moves the clock, makes what is due runnable, and waits until the queues are idle.
    pub async fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.run_due_jobs().await;
    }

    /// Makes due jobs runnable and waits (bounded) until none is due or in flight.
    pub async fn run_due_jobs(&self) {
        self.make_due().await;
        let idle = wait_until(Duration::from_secs(15), || async {
            let mut conn = self.pool.acquire().await.unwrap();
            let busy = jobs_store::count_busy(&mut conn).await.unwrap();
            (busy == 0).then_some(())
        })
        .await;
        assert!(
            idle.is_some(),
            "jobs still due or running after 15 s: {:#?}",
            self.all_jobs().await
        );
    }

    /// Runs job `id` through its retries without waiting out their backoff, until it has
    /// made `attempts` attempts and is not running; returns its row then.
    pub async fn run_through_attempts<J: Job>(&self, id: &str, attempts: i32) -> JobRow {
        let found = wait_until(Duration::from_secs(15), || async {
            let mut conn = self.pool.acquire().await.unwrap();
            let row = jobs_store::find(&mut conn, id).await.unwrap()?;
            let in_flight = matches!(row.status.as_str(), "Queued" | "Running");
            if row.attempts >= attempts && !in_flight {
                return Some(row);
            }
            // Waiting out a backoff before attempt `attempts`: due now instead (a no-op
            // while it runs, and never the backoff after that attempt).
            sqlx::query(
                "update apalis.jobs set run_at = now()
                 where id = $1 and status in ('Pending', 'Failed')
                   and attempts < $2 and attempts < max_attempts",
            )
            .bind(id)
            .bind(attempts)
            .execute(&mut *conn)
            .await
            .unwrap();
            None
        })
        .await;
        found.unwrap_or_else(|| panic!("job {id} of {} never made {attempts} attempts", J::QUEUE))
    }

    /// Makes job `id` runnable now, whatever its due time or backoff.
    pub async fn run_job_now(&self, id: &str) {
        let mut conn = self.pool.acquire().await.unwrap();
        assert!(
            jobs_store::run_now(&mut conn, id).await.unwrap(),
            "job {id} is not waiting"
        );
    }

    pub async fn all_jobs(&self) -> Vec<JobRow> {
        let mut rows = Vec::new();
        let mut conn = self.pool.acquire().await.unwrap();
        for queue in referral_core::jobs::ALL_QUEUES {
            rows.extend(jobs_store::list_queue(&mut conn, queue).await.unwrap());
        }
        rows
    }

    /// Waits (bounded) for a job of `J` to reach `status`.
    pub async fn wait_for_job<J: Job>(&self, id: &str, pred: impl Fn(&JobRow) -> bool) -> JobRow {
        let found = wait_until(Duration::from_secs(15), || async {
            let mut conn = self.pool.acquire().await.unwrap();
            jobs_store::find(&mut conn, id)
                .await
                .unwrap()
                .filter(|row| pred(row))
        })
        .await;
        match found {
            Some(row) => row,
            None => {
                let mut conn = self.pool.acquire().await.unwrap();
                panic!(
                    "job {id} of {} never reached the expected state: {:#?}",
                    J::QUEUE,
                    jobs_store::find(&mut conn, id).await.unwrap()
                )
            }
        }
    }
}

impl Drop for TestApp {
    /// Every end-to-end test ends by checking that the cached balances and counters still
    /// equal the ledger (unless it already failed: one failure at a time).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::invariants::assert_hold((*self.pool.connect_options()).clone());
        }
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}
