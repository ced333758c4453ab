//! A worker process killed with `kill -9` in the middle of a job: its job is finished by
//! another worker process once the first has been silent for `WORKER_ORPHAN_AFTER_SECS`,
//! and its effect happens once.
#![allow(clippy::unwrap_used)] // test: a failure is the test failing

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use referral_core::store::emails::NewEmail;
use referral_core::usecases::email::queue_email;
use referral_core::{Clock, SystemClock};
use sqlx::PgPool;

/// An SMTP server that accepts connections and never says a word: a send to it hangs,
/// which holds the job mid-run for as long as the test needs.
fn silent_smtp() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

/// The test suite's SMTP receiver, shared by file: this crate cannot depend on the
/// tests crate, which depends on it.
#[path = "../../tests/smtp_server.rs"]
mod smtp_server;

/// An SMTP server that accepts every message and counts them.
fn counting_smtp() -> (String, Arc<Mutex<usize>>) {
    struct Count(Arc<Mutex<usize>>);
    impl smtp_server::Mailbox for Count {
        fn deliver(&self, _to: Vec<String>, _data: Vec<u8>) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let count = Arc::new(Mutex::new(0));
    smtp_server::serve(listener, "count.test", Arc::new(Count(count.clone())));
    (url, count)
}

fn worker(database_url: &str, smtp_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_referral-worker"))
        .env("DATABASE_URL", database_url)
        .env("SMTP_URL", smtp_url)
        .env("WORKER_ORPHAN_AFTER_SECS", "2")
        .env("WORKER_HTTP_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn job_state(pool: &PgPool) -> (String, Option<String>, i32) {
    sqlx::query_as(
        "select status, lock_by, attempts from apalis.jobs where job_type = 'send_email'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_job_of_a_killed_worker_is_finished_by_another_once(pool: PgPool) {
    referral_migrations::run(&pool).await.unwrap();
    let options = pool.connect_options();
    let database_url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    );
    let mut tx = pool.begin().await.unwrap();
    queue_email(
        &mut tx,
        SystemClock.now(),
        &NewEmail {
            to: "orphan@example.com".into(),
            subject: "Survives a kill -9".into(),
            body: "Sent once.".into(),
            html_body: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // The first worker takes the job and hangs in SMTP; it is killed there.
    let mut first = worker(&database_url, &silent_smtp());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, lock_by, _) = job_state(&pool).await;
        if matches!(status.as_str(), "Queued" | "Running") && lock_by.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first worker never took the job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().unwrap(); // SIGKILL: no shutdown, no acknowledgement
    first.wait().unwrap();
    assert!(matches!(
        job_state(&pool).await.0.as_str(),
        "Queued" | "Running"
    ));

    // A second worker, with a working SMTP server, finishes it after the orphan delay.
    let (smtp_url, sent) = counting_smtp();
    let mut second = worker(&database_url, &smtp_url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let (status, _, attempts) = job_state(&pool).await;
        if status == "Done" {
            break attempts;
        }
        if tokio::time::Instant::now() > deadline {
            second.kill().unwrap();
            panic!("the orphaned job was never finished: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(*sent.lock().unwrap(), 1, "the e-mail went out once");
    assert!(finished >= 1);
    let sent_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select sent_at from emails")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(sent_at.is_some());
}
