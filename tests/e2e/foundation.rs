//! The machinery every feature runs on: transactional enqueue, durable timers, retries
//! with backoff, API keys, the error shape and the docs.

use std::time::Duration;

use chrono::Duration as Days;
use referral_core::jobs::{self, SendEmail};
use referral_core::store::emails::NewEmail;
use referral_core::usecases::email::queue_email;
use serde_json::json;
use sqlx::PgPool;

use crate::harness::{SmtpCapture, TestApp, wait_until};

fn welcome(to: &str) -> NewEmail {
    NewEmail {
        to: to.into(),
        subject: "Welcome aboard".into(),
        body: "Your referral link is ready.".into(),
        html_body: None,
    }
}

#[sqlx::test(migrations = false)]
async fn rolled_back_write_leaves_no_job(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut tx = app.pool.begin().await.unwrap();
    queue_email(&mut tx, app.clock_now(), &welcome("ana@example.com"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert!(
        app.jobs::<SendEmail>().await.is_empty(),
        "a rolled-back write left a job"
    );
    let emails: i64 = sqlx::query_scalar("select count(*) from emails")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(emails, 0);
    app.run_due_jobs().await;
    assert!(app.smtp.mails().is_empty());
}

#[sqlx::test(migrations = false)]
async fn committed_write_runs_its_job(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut tx = app.pool.begin().await.unwrap();
    let email_id = queue_email(&mut tx, app.clock_now(), &welcome("ana@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["ana@example.com".to_string()]);
    assert!(
        mails[0].data.contains("Subject: Welcome aboard"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("Your referral link is ready."));

    app.run_due_jobs().await;
    let jobs = app.jobs::<SendEmail>().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, "Done");
    let sent_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select sent_at from emails where id = $1")
            .bind(email_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sent_at, Some(app.clock_now()));
}

#[sqlx::test(migrations = false)]
async fn a_job_delivered_twice_sends_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut tx = app.pool.begin().await.unwrap();
    let email_id = queue_email(&mut tx, app.clock_now(), &welcome("bo@example.com"))
        .await
        .unwrap();
    // A second delivery of the same job (at-least-once queues do this).
    jobs::enqueue_now(&mut tx, &SendEmail { email_id })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    app.run_due_jobs().await;
    assert_eq!(app.smtp.mails().len(), 1);
    assert!(
        app.jobs::<SendEmail>()
            .await
            .iter()
            .all(|j| j.status == "Done")
    );
}

#[sqlx::test(migrations = false)]
async fn scheduled_job_survives_worker_restart_and_runs_when_due(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    let due_at = app.clock_now() + Days::days(30);
    let mut tx = app.pool.begin().await.unwrap();
    let email_id =
        referral_core::store::emails::insert(&mut tx, &welcome("cy@example.com"), app.clock_now())
            .await
            .unwrap();
    let job_id = jobs::enqueue_at(&mut tx, &SendEmail { email_id }, due_at)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The worker that saw it scheduled goes away; a new one (new name) takes over.
    app.run_due_jobs().await;
    app.stop_worker().await;
    app.start_worker();

    // 29 days later it has not run.
    app.advance(Days::days(29)).await;
    let job = app.jobs::<SendEmail>().await.remove(0);
    assert_eq!(
        (job.id.as_str(), job.status.as_str()),
        (job_id.as_str(), "Pending")
    );
    assert_eq!(job.run_at, due_at);
    assert!(app.smtp.mails().is_empty(), "ran before its due time");

    // At 30 days it runs, on the restarted worker.
    app.advance(Days::days(1)).await;
    assert_eq!(
        app.smtp.wait_for(1).await[0].to,
        vec!["cy@example.com".to_string()]
    );
    app.wait_for_job::<SendEmail>(&job_id, |j| j.status == "Done")
        .await;
}

#[sqlx::test(migrations = false)]
async fn failing_job_retries_with_growing_backoff_then_stays_failed(pool: PgPool) {
    // Nothing listens on this port: every delivery fails with a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_smtp = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut app = TestApp::spawn_with_smtp(pool, SmtpCapture::start(), dead_smtp).await;
    // The production default: each failure is written long before its retry is due,
    // even on a loaded machine, so every attempt's failed state can be looked at (the
    // waits themselves are skipped below).
    let retry_base = Duration::from_secs(5);
    app.stop_worker().await;
    app.start_worker_with(referral_worker::RuntimeSettings {
        retry_base,
        ..TestApp::runtime_settings()
    });

    let mut tx = app.pool.begin().await.unwrap();
    queue_email(&mut tx, app.clock_now(), &welcome("di@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job_id = app.jobs::<SendEmail>().await.remove(0).id;

    let max = i32::try_from(<SendEmail as referral_core::jobs::Job>::MAX_ATTEMPTS).unwrap();
    let mut previous_wait = Duration::ZERO;
    for attempt in 1..max {
        let job = app
            .wait_for_job::<SendEmail>(&job_id, |j| j.status == "Failed" && j.attempts == attempt)
            .await;
        // The next attempt waits base × 2^(attempt-1), at most an hour, from when this one
        // was picked up, measured on the database clock.
        let (wait_ms,): (f64,) = sqlx::query_as(
            "select (extract(epoch from (run_at - lock_at)) * 1000)::float8 from apalis.jobs where id = $1",
        )
        .bind(&job_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let wait = Duration::from_secs_f64(wait_ms / 1000.0);
        let expected = (retry_base * 2u32.pow(u32::try_from(attempt - 1).unwrap()))
            .min(Duration::from_secs(3600));
        assert!(
            wait >= expected
                && wait < expected + Duration::from_secs(2)
                && (wait > previous_wait || expected == Duration::from_secs(3600)),
            "attempt {attempt}: waits {wait:?}, expected about {expected:?}"
        );
        previous_wait = wait;
        assert!(
            job.last_error
                .unwrap_or_default()
                .to_lowercase()
                .contains("connect")
        );
        // Skip the wait instead of sleeping through it, until the next attempt has run.
        app.run_through_attempts::<SendEmail>(&job_id, attempt + 1)
            .await;
    }

    let job = app
        .wait_for_job::<SendEmail>(&job_id, |j| j.status == "Failed" && j.attempts == max)
        .await;
    assert!(
        job.last_error
            .unwrap_or_default()
            .to_lowercase()
            .contains("connect")
    );

    // Out of attempts: it stays failed and operators see it.
    let (status, body) = app.get("/v1/admin/jobs/failed", Some(&app.admin_key)).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![job_id.as_str()]);
    assert_eq!(body[0]["queue"], "send_email");
    assert_eq!(body[0]["attempts"], max);

    // An operator retries it: fresh attempts, runs again (and fails again here).
    let (status, body) = app
        .post(
            "/v1/admin/jobs/retry",
            Some(&app.admin_key),
            json!({"ids": [job_id, "01JD8X3Y4Z5A6B7C8D9E0F1G2H"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retried"], json!([job_id]));
    assert_eq!(body["skipped"], json!(["01JD8X3Y4Z5A6B7C8D9E0F1G2H"]));
    // Its attempts start again from zero (the first of them may be over before we look).
    app.wait_for_job::<SendEmail>(&job_id, |j| (1..max).contains(&j.attempts))
        .await;
}

#[sqlx::test(migrations = false)]
async fn two_workers_share_a_queue_without_double_delivery(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let second = referral_worker::Queues::all(app.job_env(), TestApp::runtime_settings())
        .spawn(std::future::pending());
    let mut tx = app.pool.begin().await.unwrap();
    for n in 0..40 {
        queue_email(
            &mut tx,
            app.clock_now(),
            &welcome(&format!("user{n}@example.com")),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let delivered = wait_until(Duration::from_secs(15), || async {
        (app.smtp.mails().len() >= 40).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "{:#?}", app.jobs::<SendEmail>().await);
    let mails = app.smtp.mails();
    app.run_due_jobs().await;
    second.stop().await.unwrap();
    let mut recipients: Vec<String> = app.smtp.mails().into_iter().flat_map(|m| m.to).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 40);
    assert_eq!(app.smtp.mails().len(), 40, "some e-mail was sent twice");
    assert!(mails.len() >= 40);
}

#[sqlx::test(migrations = false)]
async fn api_keys_are_checked_and_roles_enforced(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app.get("/v1/admin/jobs/failed", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "UNAUTHENTICATED");

    let (status, body) = app
        .get("/v1/admin/jobs/failed", Some("rk_admin_not-a-real-key"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "UNAUTHENTICATED");
    assert_eq!(body["status"], 401);

    let (status, body) = app
        .get("/v1/admin/jobs/failed", Some(&app.platform_key))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "FORBIDDEN");
    assert!(body["message"].as_str().unwrap().contains("admin"));

    let (status, body) = app.get("/v1/admin/jobs/failed", Some(&app.admin_key)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([]));

    // Keys are stored only as hashes.
    let stored: Vec<String> = sqlx::query_scalar("select key_hash from api_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains("rk_")));
    assert!(!stored.contains(&app.admin_key));
}

#[sqlx::test(migrations = false)]
async fn every_error_has_one_json_shape(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app.get("/no/such/route", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "ROUTE_NOT_FOUND");
    assert_eq!(body["status"], 404);
    assert!(body["message"].is_string());

    let (status, body) = app
        .post_raw("/v1/admin/jobs/retry", Some(&app.admin_key), "{\"ids\": [")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "MALFORMED_JSON");

    let (status, body) = app
        .post(
            "/v1/admin/jobs/retry",
            Some(&app.admin_key),
            json!({"ids": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "INVALID_FIELD");
    assert_eq!(body["field"], "ids");

    let (status, body) = app
        .get("/v1/admin/jobs/failed?limit=abc", Some(&app.admin_key))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "limit");
}

#[sqlx::test(migrations = false)]
async fn health_docs_and_request_ids(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(
        app.get("/healthz", None).await,
        (200, json!({"status": "ok"}))
    );
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")));
    assert_eq!(
        ready["queues"].as_array().map(Vec::len),
        Some(referral_core::jobs::ALL_QUEUES.len()),
        "{ready}"
    );

    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
    let (status, spec) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/v1/admin/jobs/retry"].is_object());

    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
    let generated = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(!generated.headers()["x-request-id"].is_empty());
    let _ = wait_until(Duration::from_millis(1), || async { Some(()) }).await;
}
