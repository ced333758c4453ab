//! The stats card of a large referrer: 100,000 referred users (a quarter converted) and
//! 1,000,000 clicks, read over HTTP by 8 concurrent clients; then the same numbers are
//! recounted from the rows, to show what the counters save. The rows are bulk-inserted
//! with SQL. The click counter's trigger is paused for that load and the counter set
//! once from the rows, as the migration does: a million updates of the same 16 counter
//! rows inside one transaction would take many minutes, while in production each click
//! is its own transaction.
//!
//! ```text
//! DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/referral scripts/pg-ensure
//! cargo bench -p referral-api --bench stats_card
//! ```

mod support;

use std::time::Instant;

use support::{Bench, BoxError, fire};

const REFERRED: i64 = 100_000;
const CLICKS: i64 = 1_000_000;
const REQUESTS: usize = 4_000;
const CONCURRENCY: usize = 8;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let bench = Bench::start("stats", CONCURRENCY).await?;
    bench.user("ana").await?;
    let loading = Instant::now();
    sqlx::query(
        "insert into users (id, platform_user_id, email, email_normalized, referral_code,
                            referred_by, signed_up_at, converted_at)
         select gen_random_uuid(), 'r' || n, 'r' || n || '@example.com', 'r' || n || '@example.com',
                'bench' || n, ana.id, now() - n * interval '1 minute',
                case when n % 4 = 0 then now() end
         from generate_series(1, $1) n, (select id from users where platform_user_id = 'ana') ana",
    )
    .bind(REFERRED)
    .execute(&bench.pool)
    .await?;
    let mut tx = bench.pool.begin().await?;
    sqlx::query("alter table clicks disable trigger clicks_counted")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into clicks (id, referrer_id, clicked_at, source)
         select gen_random_uuid(), ana.id, now() - n * interval '1 second', 'api'
         from generate_series(1, $1) n, (select id from users where platform_user_id = 'ana') ana",
    )
    .bind(CLICKS)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into click_counts (referrer_id, shard, clicks)
         select referrer_id, 0, count(*) from clicks group by referrer_id",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("alter table clicks enable trigger clicks_counted")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("analyze").execute(&bench.pool).await?;
    println!(
        "loaded {REFERRED} referred users and {CLICKS} clicks in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let (http, base, key) = (&bench.http, &bench.base, &bench.key);
    let card: serde_json::Value = http
        .get(format!("{base}/v1/users/ana/stats"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    println!("card: {card}");
    fire(
        "GET /v1/users/{id}/stats",
        REQUESTS,
        CONCURRENCY,
        |_| {
            http.get(format!("{base}/v1/users/ana/stats"))
                .bearer_auth(key)
        },
        200,
    )
    .await?;

    let recount = Instant::now();
    for _ in 0..5 {
        sqlx::query(
            "select (select count(*) from users where referred_by = a.id),
                    (select count(*) from users where referred_by = a.id and converted_at is not null),
                    (select count(*) from clicks where referrer_id = a.id)
             from users a where platform_user_id = 'ana'",
        )
        .execute(&bench.pool)
        .await?;
    }
    println!(
        "the same numbers recounted from the rows: {:.1} ms each",
        recount.elapsed().as_secs_f64() * 1000.0 / 5.0
    );
    bench.finish().await
}
