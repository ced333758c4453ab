//! The worker runtime with jobs of its own: panics, graceful shutdown, concurrent start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use referral_core::jobs::{self, Job};
use referral_worker::runtime::{JobError, JobHandler, JobOutcome};
use referral_worker::{JobEnv, Queues};
use sqlx::PgPool;

use crate::harness::TestApp;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Explode;

impl Job for Explode {
    const QUEUE: &'static str = "test_explode";
    const MAX_ATTEMPTS: u32 = 3;
}

impl JobHandler for Explode {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        panic!("boom");
    }
}

static SLOW_FINISHED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Slow {
    millis: u64,
}

impl Job for Slow {
    const QUEUE: &'static str = "test_slow";
}

impl JobHandler for Slow {
    async fn handle(self, _env: &JobEnv) -> Result<JobOutcome, JobError> {
        tokio::time::sleep(Duration::from_millis(self.millis)).await;
        SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
        Ok(JobOutcome::Done)
    }
}

static TIMER_FIRED: AtomicUsize = AtomicUsize::new(0);

/// A timer like the expiry one: does its work only once the clock reaches `due_at`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Timer {
    due_at: chrono::DateTime<chrono::Utc>,
}

impl Job for Timer {
    const QUEUE: &'static str = "test_timer";
    // Fewer attempts than early wake-ups below: those must not spend any.
    const MAX_ATTEMPTS: u32 = 2;
}

impl JobHandler for Timer {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        if env.clock.now() < self.due_at {
            return Ok(JobOutcome::NotYetDue(self.due_at));
        }
        TIMER_FIRED.fetch_add(1, Ordering::SeqCst);
        Ok(JobOutcome::Done)
    }
}

#[sqlx::test(migrations = false)]
async fn a_timer_woken_early_many_times_stays_one_row_and_fires_when_due(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let worker = Queues::new(app.job_env(), TestApp::runtime_settings())
        .with::<Timer>()
        .spawn(std::future::pending());
    let due_at = app.clock_now() + chrono::Duration::milliseconds(3_600_250);
    let mut conn = app.pool.acquire().await.unwrap();
    let id = jobs::enqueue_at(&mut conn, &Timer { due_at }, due_at)
        .await
        .unwrap();
    drop(conn);

    for _ in 0..5 {
        app.run_job_now(&id).await;
        let asleep = app
            .wait_for_job::<Timer>(&id, |j| j.status == "Pending" && j.run_at == due_at)
            .await;
        assert_eq!(asleep.attempts, 0, "an early wake-up spent an attempt");
        assert_eq!(app.jobs::<Timer>().await.len(), 1, "a second timer row");
    }
    assert_eq!(TIMER_FIRED.load(Ordering::SeqCst), 0, "fired early");

    app.clock.set(due_at);
    app.make_due().await;
    let fired = app.wait_for_job::<Timer>(&id, |j| j.status == "Done").await;
    assert_eq!(fired.attempts, 1);
    assert_eq!(TIMER_FIRED.load(Ordering::SeqCst), 1);
    assert_eq!(app.jobs::<Timer>().await.len(), 1);
    worker.stop().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_panicking_job_is_retried_then_stays_failed_with_its_message(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let worker = Queues::new(app.job_env(), TestApp::runtime_settings())
        .with::<Explode>()
        .spawn(std::future::pending());
    let mut conn = app.pool.acquire().await.unwrap();
    let id = jobs::enqueue_now(&mut conn, &Explode).await.unwrap();
    drop(conn);

    let job = app.run_through_attempts::<Explode>(&id, 3).await;
    assert_eq!((job.status.as_str(), job.attempts), ("Failed", 3));
    assert!(job.last_error.unwrap().contains("job panicked: boom"));
    worker.stop().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn stopping_a_worker_lets_in_flight_jobs_finish(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let worker = Queues::new(app.job_env(), TestApp::runtime_settings())
        .with::<Slow>()
        .spawn(std::future::pending());
    let mut conn = app.pool.acquire().await.unwrap();
    let id = jobs::enqueue_now(&mut conn, &Slow { millis: 1_500 })
        .await
        .unwrap();
    drop(conn);
    app.wait_for_job::<Slow>(&id, |j| j.status == "Running")
        .await;

    let before = SLOW_FINISHED.load(Ordering::SeqCst);
    worker.stop().await.unwrap();
    assert_eq!(
        SLOW_FINISHED.load(Ordering::SeqCst),
        before + 1,
        "stop returned before the job finished"
    );
    let job = app.wait_for_job::<Slow>(&id, |j| j.status == "Done").await;
    assert_eq!(job.attempts, 1);
}

#[sqlx::test(migrations = false)]
async fn two_processes_migrating_at_once_both_succeed(pool: PgPool) {
    let (a, b) = tokio::join!(
        referral_migrations::run(&pool),
        referral_migrations::run(&pool)
    );
    a.unwrap();
    b.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_name in ('users', 'jobs')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 2);
}

#[sqlx::test(migrations = false)]
async fn a_queue_whose_worker_failed_is_restarted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.run_due_jobs().await;
    // Make every fetch and heartbeat fail for a moment: each queue's worker dies.
    sqlx::query("alter table apalis.jobs rename to jobs_away")
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    sqlx::query("alter table apalis.jobs_away rename to jobs")
        .execute(&app.pool)
        .await
        .unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    referral_core::usecases::email::queue_email(
        &mut tx,
        app.clock_now(),
        &referral_core::store::emails::NewEmail {
            to: "after-outage@example.com".into(),
            subject: "Still here".into(),
            body: "The queue came back.".into(),
            html_body: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["after-outage@example.com".to_string()]);
}
