//! What the api benches share: a scratch database on `DATABASE_URL`'s server, the real
//! api served in-process over it, and a load loop that reports throughput and latency.
#![allow(dead_code)] // each bench uses the part it needs

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use poem::Server;
use poem::listener::TcpAcceptor;
use referral_api::listener::NoDelay;
use referral_api::{ApiConfig, AppState};
use referral_core::SystemClock;
use referral_core::domain::api_key::ApiRole;
use referral_core::stripe::StripeGateway;
use referral_core::usecases::api_keys;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection, PgPool};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The api on a free local port over a fresh database, dropped by [`Bench::finish`].
pub struct Bench {
    pub pool: PgPool,
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
    admin: PgConnection,
    scratch: String,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Bench {
    pub async fn start(name: &str, concurrency: usize) -> Result<Self, BoxError> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/referral".into());
        let options: PgConnectOptions = url.parse()?;
        let scratch = format!("referral_bench_{name}_{}", std::process::id());
        let mut admin = options.clone().database("postgres").connect().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {scratch}")))
            .execute(&mut admin)
            .await?;
        let pool = referral_core::pool::pool_options()
            .max_connections(32)
            .connect_with(options.database(&scratch))
            .await?;
        referral_migrations::run(&pool).await?;
        let key = api_keys::create(&mut *pool.acquire().await?, "bench", ApiRole::Platform)
            .await?
            .plaintext;
        // The test configuration has no redirect limit: the benchmark's load comes from
        // one address.
        let config = ApiConfig::for_tests(&url);
        let stripe = StripeGateway::new(&config.stripe)?;
        let state = AppState::new(pool.clone(), Arc::new(SystemClock), config, stripe, None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(
            Server::new_with_acceptor(NoDelay(TcpAcceptor::from_std(listener)?))
                .run(referral_api::app(state)),
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(concurrency)
            .build()?;
        Ok(Self {
            pool,
            base,
            key,
            http,
            admin,
            scratch,
            server,
        })
    }

    /// Creates a user through the api; returns their referral code.
    pub async fn user(&self, user_id: &str) -> Result<String, BoxError> {
        let created: serde_json::Value = self
            .http
            .post(format!("{}/v1/users", self.base))
            .bearer_auth(&self.key)
            .json(
                &serde_json::json!({"user_id": user_id, "email": format!("{user_id}@example.com")}),
            )
            .send()
            .await?
            .json()
            .await?;
        Ok(created["user"]["referral_code"]
            .as_str()
            .ok_or("no code")?
            .to_owned())
    }

    pub async fn finish(mut self) -> Result<(), BoxError> {
        self.server.abort();
        self.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database {} with (force)",
            self.scratch
        )))
        .execute(&mut self.admin)
        .await?;
        Ok(())
    }
}

/// Sends `requests` requests, `concurrency` at a time, and prints the rate and latency.
pub async fn fire(
    label: &str,
    requests: usize,
    concurrency: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
    expect: u16,
) -> Result<(), BoxError> {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|n| {
            let request = request(n);
            async move {
                let sent = Instant::now();
                let response = request.send().await?;
                if response.status().as_u16() != expect {
                    return Err(format!("status {}", response.status()).into());
                }
                Ok::<_, BoxError>(sent.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{label}: {requests} requests, {concurrency} clients: {:.0} req/s; latency p50 {:.1} ms, p99 {:.1} ms",
        requests as f64 / elapsed.as_secs_f64(),
        at(50).as_secs_f64() * 1000.0,
        at(99).as_secs_f64() * 1000.0,
    );
    Ok(())
}
