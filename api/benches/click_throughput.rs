//! Click recording throughput: the highest-volume write. Serves the real api in-process
//! over a scratch database, then fires requests from 32 concurrent clients over HTTP.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-api --bench click_throughput
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use poem::Server;
use poem::listener::TcpAcceptor;
use referral_api::{ApiConfig, AppState};
use referral_core::domain::api_key::ApiRole;
use referral_core::usecases::api_keys;
use referral_core::{ProgramSettings, SystemClock};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const REQUESTS: usize = 5_000;
const CONCURRENCY: usize = 32;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn fire(
    label: &str,
    requests: impl Fn(usize) -> reqwest::RequestBuilder,
    expect: u16,
) -> Result<(), BoxError> {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..REQUESTS)
        .map(|n| {
            let request = requests(n);
            async move {
                let sent = Instant::now();
                let response = request.send().await?;
                if response.status().as_u16() != expect {
                    return Err(format!("status {}", response.status()).into());
                }
                Ok::<_, BoxError>(sent.elapsed())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{label}: {REQUESTS} requests, {CONCURRENCY} clients: {:.0} req/s; latency p50 {:.1} ms, p99 {:.1} ms",
        REQUESTS as f64 / elapsed.as_secs_f64(),
        at(50).as_secs_f64() * 1000.0,
        at(99).as_secs_f64() * 1000.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/referral".into());
    let admin: PgConnectOptions = url.parse()?;
    let scratch = format!("referral_bench_clicks_{}", std::process::id());
    let mut conn = admin.clone().database("postgres").connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {scratch}")))
        .execute(&mut conn)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(32)
        .connect_with(admin.clone().database(&scratch))
        .await?;
    referral_migrations::run(&pool).await?;
    let key = api_keys::create(&mut *pool.acquire().await?, "bench", ApiRole::Platform)
        .await?
        .plaintext;

    let state = AppState {
        pool: pool.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ProgramSettings::default()),
        config: Arc::new(ApiConfig::for_tests(&url)),
        dev_clock: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(
        Server::new_with_acceptor(TcpAcceptor::from_std(listener)?).run(referral_api::app(state)),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let created: serde_json::Value = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"user_id": "referrer", "email": "referrer@example.com"}))
        .send()
        .await?
        .json()
        .await?;
    let code = created["user"]["referral_code"]
        .as_str()
        .ok_or("no code")?
        .to_owned();

    fire(
        "POST /v1/clicks",
        |n| {
            http.post(format!("{base}/v1/clicks"))
                .bearer_auth(&key)
                .json(&serde_json::json!({"referral_code": code, "ip": format!("203.0.113.{}", n % 256)}))
        },
        201,
    )
    .await?;
    fire(
        "GET /r/{code}",
        |_| {
            http.get(format!("{base}/r/{code}"))
                .header("user-agent", "bench")
        },
        302,
    )
    .await?;

    let clicks: i64 = sqlx::query_scalar("select count(*) from clicks")
        .fetch_one(&pool)
        .await?;
    println!("clicks stored: {clicks}");
    server.abort();
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database {scratch} with (force)"
    )))
    .execute(&mut conn)
    .await?;
    Ok(())
}
