//! Click recording throughput: the highest-volume write. Serves the real api in-process
//! over a scratch database, then fires requests from 32 concurrent clients over HTTP.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-api --bench click_throughput
//! ```

mod support;

use support::{Bench, BoxError, fire};

const REQUESTS: usize = 5_000;
const CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let bench = Bench::start("clicks", CONCURRENCY).await?;
    let code = bench.user("referrer").await?;
    let (http, base, key) = (&bench.http, &bench.base, &bench.key);

    fire(
        "POST /v1/clicks",
        REQUESTS,
        CONCURRENCY,
        |n| {
            http.post(format!("{base}/v1/clicks"))
                .bearer_auth(key)
                .json(&serde_json::json!({"referral_code": code, "ip": format!("203.0.113.{}", n % 256)}))
        },
        201,
    )
    .await?;
    fire(
        "GET /r/{code}",
        REQUESTS,
        CONCURRENCY,
        |_| {
            http.get(format!("{base}/r/{code}"))
                .header("user-agent", "bench")
        },
        302,
    )
    .await?;

    let clicks: i64 = sqlx::query_scalar("select count(*) from clicks")
        .fetch_one(&bench.pool)
        .await?;
    println!("clicks stored: {clicks}");
    bench.finish().await
}
