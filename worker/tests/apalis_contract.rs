//! The apalis-postgres 1.0 behaviours `referral_core::store::jobs` relies on, each pinned
//! against a real database through apalis's own query functions. If an apalis upgrade
//! changes one of them, this fails, instead of our retries, timers or transactional
//! enqueue silently changing.
#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::str::FromStr;
use std::time::Duration;

use apalis_core::backend::TaskResult;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use apalis_postgres::Config;
use apalis_postgres::queries::{fetch_next, handle_results, lock_tasks};
use chrono::{DateTime, Utc};
use referral_core::domain::operations::JobRow;
use referral_core::jobs::{self, Job};
use referral_core::store::jobs as jobs_store;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Probe;

impl Job for Probe {
    const QUEUE: &'static str = "contract_probe";
    const MAX_ATTEMPTS: u32 = 3;
}

/// A registered apalis worker (its name is what `lock_by` holds).
async fn worker(conn: &mut PgConnection, name: &str) -> WorkerContext {
    sqlx::query(
        "insert into apalis.workers (id, worker_type, storage_name, layers, last_seen)
         values ($1, $2, 'PgStorage', '', now())",
    )
    .bind(name)
    .bind(Probe::QUEUE)
    .execute(&mut *conn)
    .await
    .unwrap();
    WorkerContext::new(name)
}

async fn fetch(conn: &mut PgConnection, worker: &WorkerContext) -> Vec<String> {
    fetch_of(conn, worker, 10).await
}

async fn fetch_of(conn: &mut PgConnection, worker: &WorkerContext, count: usize) -> Vec<String> {
    let config = Config::default().queue(Probe::QUEUE).batch_size(count);
    fetch_next(&mut *conn, &config, worker)
        .await
        .unwrap()
        .iter()
        .map(|task| task.task_id().unwrap().to_string())
        .collect()
}

async fn ack(conn: &mut PgConnection, worker: &WorkerContext, id: &str, status: Status) {
    let payload = TaskResult {
        task_id: TaskId::from_str(id).unwrap(),
        attempt: 1,
        status: status.clone(),
        result: if status == Status::Done {
            Ok(serde_json::Value::Null)
        } else {
            Err("it failed".to_owned())
        },
    };
    handle_results(&mut *conn, &[&payload], worker.name())
        .await
        .unwrap();
}

async fn row(conn: &mut PgConnection, id: &str) -> JobRow {
    jobs_store::find(conn, id).await.unwrap().unwrap()
}

async fn db_now(conn: &mut PgConnection) -> DateTime<Utc> {
    sqlx::query_scalar("select now()")
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn setup(pool: &PgPool) -> PgConnection {
    referral_migrations::run(pool).await.unwrap();
    pool.acquire().await.unwrap().detach()
}

#[sqlx::test(migrations = false)]
async fn a_job_pushed_in_a_rolled_back_transaction_does_not_exist(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    let id = jobs::enqueue_now(&mut tx, &Probe).await.unwrap();
    assert!(jobs_store::find(&mut tx, &id).await.unwrap().is_some());
    tx.rollback().await.unwrap();
    assert!(jobs_store::find(&mut conn, &id).await.unwrap().is_none());
}

#[sqlx::test(migrations = false)]
async fn a_fetch_claims_only_due_rows_once_and_a_timer_is_never_due_early(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let a = worker(&mut conn, "probe-a").await;
    let b = worker(&mut conn, "probe-b").await;
    // Sub-second instant: apalis itself keeps whole seconds only.
    let due = db_now(&mut conn).await + chrono::Duration::milliseconds(60_250);
    let later = jobs::enqueue_at(&mut conn, &Probe, due).await.unwrap();
    let now = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    assert_eq!(row(&mut conn, &later).await.run_at, due);
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert_eq!(fetch(&mut conn, &a).await, vec![now.clone()]);
    let claimed = row(&mut conn, &now).await;
    assert_eq!(claimed.status, "Queued");
    assert_eq!(
        fetch(&mut conn, &b).await,
        Vec::<String>::new(),
        "a claimed row was claimed again"
    );

    // Due by the database clock: claimable.
    assert!(jobs_store::run_now(&mut conn, &later).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fetch(&mut conn, &b).await, vec![later]);
}

#[sqlx::test(migrations = false)]
async fn acknowledging_a_failed_attempt_leaves_run_at_alone(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let a = worker(&mut conn, "probe-a").await;
    let id = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fetch(&mut conn, &a).await, vec![id.clone()]);

    jobs_store::postpone(&mut conn, &id, Duration::from_secs(3_600))
        .await
        .unwrap();
    let postponed = row(&mut conn, &id).await.run_at;
    ack(&mut conn, &a, &id, Status::Failed).await;

    let failed = row(&mut conn, &id).await;
    assert_eq!(failed.status, "Failed");
    assert_eq!(failed.attempts, 1);
    assert_eq!(
        failed.run_at, postponed,
        "the ack moved run_at: backoff lost"
    );
    assert!(failed.last_error.unwrap().contains("it failed"));
    assert_eq!(
        fetch(&mut conn, &a).await,
        Vec::<String>::new(),
        "a failed job was re-fetched before its backoff"
    );
}

#[sqlx::test(migrations = false)]
async fn a_rescheduled_timer_ignores_the_ack_and_the_lock_of_its_early_attempt(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let a = worker(&mut conn, "probe-a").await;
    let id = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    let done = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fetch(&mut conn, &a).await.len(), 2);

    let due = db_now(&mut conn).await + chrono::Duration::days(30);
    assert!(
        jobs_store::reschedule(&mut conn, &id, a.name(), due)
            .await
            .unwrap()
    );
    // apalis's late "started" event and its acknowledgement of the early attempt.
    lock_tasks(&mut conn, std::slice::from_ref(&id), a.name())
        .await
        .unwrap();
    ack(&mut conn, &a, &id, Status::Done).await;
    let timer = row(&mut conn, &id).await;
    assert_eq!(
        (timer.status.as_str(), timer.attempts, timer.run_at),
        ("Pending", 0, due),
        "the early attempt's ack or lock overwrote the rescheduled timer"
    );
    assert!(
        !jobs_store::reschedule(&mut conn, &id, a.name(), due)
            .await
            .unwrap(),
        "rescheduled a row this worker no longer holds"
    );

    // The same ack on a row still held is applied (so the case above is not vacuous).
    ack(&mut conn, &a, &done, Status::Done).await;
    let finished = row(&mut conn, &done).await;
    assert_eq!((finished.status.as_str(), finished.attempts), ("Done", 1));
    // A finished row lets go of its worker (migration 0010), so only rows in flight name one.
    let holder: Option<String> =
        sqlx::query_scalar("select lock_by from apalis.jobs where id = $1")
            .bind(&done)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(holder, None);
}

#[sqlx::test(migrations = false)]
async fn a_late_start_does_not_take_a_timer_made_due_again(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let a = worker(&mut conn, "probe-a").await;
    let id = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fetch(&mut conn, &a).await, vec![id.clone()]);
    let due = db_now(&mut conn).await + chrono::Duration::days(30);
    assert!(
        jobs_store::reschedule(&mut conn, &id, a.name(), due)
            .await
            .unwrap()
    );
    // An operator runs the sleeping timer at once, before apalis has written the early
    // attempt's "started" event and acknowledgement.
    assert!(jobs_store::run_now(&mut conn, &id).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    lock_tasks(&mut conn, std::slice::from_ref(&id), a.name())
        .await
        .unwrap();
    ack(&mut conn, &a, &id, Status::Done).await;
    let timer = row(&mut conn, &id).await;
    assert_eq!(
        (timer.status.as_str(), timer.attempts),
        ("Pending", 0),
        "the early attempt's late start and ack finished a timer that never fired"
    );
    // Still claimable, by anyone.
    let b = worker(&mut conn, "probe-b").await;
    assert_eq!(fetch(&mut conn, &b).await, vec![id]);
}

/// Shared buffers (hit + read) an `EXPLAIN (ANALYZE, BUFFERS)` of `query` reports.
async fn buffers_read(conn: &mut PgConnection, query: &str) -> i64 {
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "explain (analyze, buffers, format json) {query}"
    )))
    .fetch_one(conn)
    .await
    .unwrap();
    let top = &plan[0]["Plan"];
    top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap()
}

#[sqlx::test(migrations = false)]
async fn an_idle_fetch_reads_a_few_pages_whatever_the_timer_backlog(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let fetch = jobs_store::claim_statement(&mut conn, "probe-a", Probe::QUEUE, 10)
        .await
        .unwrap();

    let far =
        u64::try_from((db_now(&mut conn).await + chrono::Duration::days(30)).timestamp()).unwrap();
    for _ in 0..5 {
        let timers = (0..10_000)
            .map(|_| {
                apalis_core::task::builder::TaskBuilder::new(b"null".to_vec())
                    .run_at_timestamp(far)
                    .build()
            })
            .collect();
        apalis_postgres::queries::push_tasks(&mut conn, Probe::QUEUE, timers)
            .await
            .unwrap();
    }
    sqlx::query("analyze apalis.jobs")
        .execute(&mut conn)
        .await
        .unwrap();

    let mut tx = pool.begin().await.unwrap();
    let idle = buffers_read(&mut tx, &fetch).await;
    tx.rollback().await.unwrap();
    // The 50,000 timers' index entries alone fill a few hundred pages.
    assert!(idle <= 20, "an idle fetch read {idle} pages of the backlog");

    // With a job due, the same fetch still claims it (oldest first).
    let due = jobs::enqueue_now(&mut conn, &Probe).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a = worker(&mut conn, "probe-a").await;
    assert_eq!(fetch_of(&mut conn, &a, 10).await, vec![due]);
}

/// The next notification on the job channel within `wait`, as (queue, milliseconds).
async fn next_notice(
    listener: &mut sqlx::postgres::PgListener,
    wait: Duration,
) -> Option<(String, i64)> {
    let notification = tokio::time::timeout(wait, listener.recv())
        .await
        .ok()?
        .unwrap();
    let (queue, millis) = notification.payload().split_once(' ').unwrap();
    Some((queue.to_owned(), millis.parse().unwrap()))
}

#[sqlx::test(migrations = false)]
async fn a_committed_claimable_job_is_announced_with_its_delay_and_nothing_else_is(pool: PgPool) {
    let mut conn = setup(&pool).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener
        .listen(referral_worker::wakeups::CHANNEL)
        .await
        .unwrap();
    let quiet = Duration::from_millis(300);

    // A rolled-back insert says nothing; a committed batch (one statement) says it once.
    let mut tx = pool.begin().await.unwrap();
    jobs::enqueue_now(&mut tx, &Probe).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(next_notice(&mut listener, quiet).await, None);
    let batch = (0..3)
        .map(|_| apalis_core::task::builder::TaskBuilder::new(b"null".to_vec()).build())
        .collect();
    apalis_postgres::queries::push_tasks(&mut conn, Probe::QUEUE, batch)
        .await
        .unwrap();
    let (queue, millis) = next_notice(&mut listener, quiet).await.unwrap();
    assert_eq!(queue, Probe::QUEUE);
    assert!(millis <= 0, "a job due now announced {millis} ms ahead");
    assert_eq!(next_notice(&mut listener, quiet).await, None);

    // A timer is announced with the time left until it is due.
    let due = db_now(&mut conn).await + chrono::Duration::seconds(60);
    jobs::enqueue_at(&mut conn, &Probe, due).await.unwrap();
    let mut delays = vec![];
    while let Some((_, millis)) = next_notice(&mut listener, quiet).await {
        delays.push(millis);
    }
    let earliest = delays.iter().min().copied().unwrap();
    assert!(
        (58_000..=60_000).contains(&earliest),
        "announced {delays:?}"
    );

    // Claiming and finishing say nothing; a failure with attempts left is a retry.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a = worker(&mut conn, "probe-a").await;
    let claimed = fetch_of(&mut conn, &a, 2).await;
    assert_eq!(claimed.len(), 2);
    ack(&mut conn, &a, &claimed[0], Status::Done).await;
    assert_eq!(next_notice(&mut listener, quiet).await, None);
    ack(&mut conn, &a, &claimed[1], Status::Failed).await;
    let (queue, millis) = next_notice(&mut listener, quiet).await.unwrap();
    assert_eq!((queue.as_str(), millis <= 0), (Probe::QUEUE, true));
}
