//! Operators and failed jobs: list by queue and state, retry one (recorded, effect once),
//! retry a queue, discard with a reason.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

impl TestApp {
    async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.get(path, Some(&self.admin_key)).await
    }

    async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(path, Some(&self.admin_key), body).await
    }

    /// Makes the jobs of `queue` fail for good, as if out of attempts.
    pub(crate) async fn exhaust(&self, queue: &str, error: &str) {
        sqlx::query(
            "update apalis.jobs set status = 'Failed', attempts = max_attempts,
                    last_result = $2::jsonb, done_at = now()
             where job_type = $1 and status <> 'Done'",
        )
        .bind(queue)
        .bind(json!({ "Err": error }).to_string())
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrations = false)]
async fn an_operator_sees_a_failed_payout_job_retries_it_and_it_pays_once(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    app.onboarded().await;
    app.stop_worker().await;
    let (_, payout) = app.request_payout("ana", json!({})).await;
    // Stripe refuses our key (a rotated secret): retried, and with a single attempt
    // allowed here the job is failed at once.
    app.stripe.fail_next("/v1/transfers", 401, 1);
    sqlx::query("update apalis.jobs set max_attempts = 1 where job_type = 'send_payout_transfer'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.start_worker();
    app.run_due_jobs().await;

    let (status, failed) = app
        .admin_get("/v1/admin/jobs?queue=send_payout_transfer&state=failed")
        .await;
    assert_eq!(status, 200, "{failed}");
    let failed = failed.as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["state"], "failed");
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("401"),
        "{failed:?}"
    );
    assert!(
        failed[0]["payload"]
            .as_str()
            .unwrap()
            .contains(payout["payout_id"].as_str().unwrap())
    );
    let job_id = failed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.payouts("ana").await[0]["status"], "REQUESTED");

    // The cause is fixed (the stand-in answers again); the operator retries it.
    let (status, retried) = app
        .admin_post(&format!("/v1/admin/jobs/{job_id}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{retried}");
    assert!(matches!(
        retried["state"].as_str(),
        Some("pending" | "running" | "done")
    ));
    app.run_due_jobs().await;
    assert_eq!(app.payouts("ana").await[0]["status"], "PROCESSING");
    assert_eq!(app.stripe.transfers().len(), 1, "paid once");

    let (status, again) = app
        .admin_post(&format!("/v1/admin/jobs/{job_id}/retry"), json!({}))
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("JOB_NOT_FAILED")),
        "{again}"
    );
    let (_, actions) = app
        .admin_get(&format!("/v1/admin/jobs/{job_id}/actions"))
        .await;
    assert_eq!(actions.as_array().map(Vec::len), Some(1), "{actions}");
    assert_eq!(actions[0]["action"], "RETRY");
    assert_eq!(actions[0]["actor"], "test admin");
    let (_, done) = app
        .admin_get("/v1/admin/jobs?queue=send_payout_transfer&state=done")
        .await;
    assert_eq!(done[0]["id"], json!(job_id));
}

#[sqlx::test(migrations = false)]
async fn failed_jobs_of_a_queue_are_retried_together_or_discarded_with_a_reason(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    let ana = app.ana_refers_bo().await;
    app.stop_worker().await;
    for (user, email) in [("cy", "cy@example.com"), ("di", "di@example.com")] {
        let (status, body) = app
            .post(
                "/v1/users",
                Some(&app.platform_key),
                json!({"user_id": user, "email": email, "referral_code": ana["referral_code"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    app.exhaust("grant_signup_credit", "simulated outage").await;
    let (_, failed) = app.admin_get("/v1/admin/jobs?state=failed").await;
    let failed_ids: Vec<String> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failed_ids.len(), 2, "{failed}");

    // Discarding needs a reason, and a failed job.
    let (status, body) = app
        .admin_post(
            &format!("/v1/admin/jobs/{}/discard", failed_ids[0]),
            json!({"reason": "  "}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );
    let (status, body) = app
        .admin_post(
            "/v1/admin/jobs/01JD8X3Y4Z5A6B7C8D9E0F1G2H/discard",
            json!({"reason": "typo"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("JOB_NOT_FOUND")),
        "{body}"
    );
    let (_, pending) = app.admin_get("/v1/admin/jobs?state=scheduled").await;
    let timer = pending[0]["id"].as_str().unwrap();
    let (status, body) = app
        .admin_post(
            &format!("/v1/admin/jobs/{timer}/discard"),
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("JOB_NOT_FAILED")),
        "{body}"
    );

    let (status, body) = app
        .admin_post(
            &format!("/v1/admin/jobs/{}/discard", failed_ids[0]),
            json!({"reason": "granted by hand"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, actions) = app
        .admin_get(&format!("/v1/admin/jobs/{}/actions", failed_ids[0]))
        .await;
    assert_eq!(actions[0]["action"], "DISCARD");
    assert_eq!(actions[0]["reason"], "granted by hand");
    let gone: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where id = $1")
        .bind(&failed_ids[0])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(gone, 0);

    // The rest of the queue is retried in one go, and runs.
    let (status, body) = app
        .admin_post(
            "/v1/admin/jobs/retry-failed",
            json!({"queue": "grant_signup_credit"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["retried"].as_array().map(Vec::len),
        Some(failed_ids.len() - 1),
        "{body}"
    );
    app.start_worker();
    app.run_due_jobs().await;
    let (_, failed) = app.admin_get("/v1/admin/jobs?state=failed").await;
    assert_eq!(failed.as_array().map(Vec::len), Some(0), "{failed}");
    let credited = [app.wallet("cy").await, app.wallet("di").await]
        .iter()
        .filter(|w| w["available"]["amount"] == "2.50")
        .count();
    assert_eq!(
        credited, 1,
        "the retried grant ran, the discarded one did not"
    );
    let (status, body) = app
        .admin_post(
            "/v1/admin/jobs/retry-failed",
            json!({"queue": "no_such_queue"}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("queue")),
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn metrics_show_requests_jobs_money_and_backlog_to_operators_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let (status, _) = app.get("/metrics", None).await;
    assert_eq!(status, 401);
    let (status, _) = app.get("/metrics", Some(&app.platform_key)).await;
    assert_eq!(status, 403);

    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for expected in [
        r#"referral_http_requests_total{operation="createUser",status="201"}"#,
        r#"referral_http_request_duration_seconds_bucket{operation="createUser""#,
        r#"referral_jobs_total{queue="grant_signup_credit",outcome="done"}"#,
        r#"referral_job_duration_seconds_count{queue="grant_signup_credit"}"#,
        r#"referral_queue_scheduled_jobs{queue="expire_signup_credit"} 1"#,
        r#"referral_queue_due_jobs{queue="send_payout_transfer"} 0"#,
        r#"referral_queue_oldest_due_seconds{queue="send_email"} 0"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    // The api's readiness carries the backlog too.
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    let expiry = ready["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "expire_signup_credit")
        .cloned()
        .unwrap();
    assert_eq!(
        (expiry["scheduled"].as_i64(), expiry["due"].as_i64()),
        (Some(1), Some(0))
    );
}

#[sqlx::test(migrations = false)]
async fn the_worker_answers_health_and_metrics_on_its_own_port(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tokio::spawn(referral_worker::http::serve(
        addr,
        app.pool.clone(),
        std::future::pending(),
    ));
    let get = |path: &'static str| {
        let http = app.http.clone();
        async move {
            for _ in 0..50 {
                if let Ok(response) = http.get(format!("http://{addr}{path}")).send().await {
                    let status = response.status().as_u16();
                    return (status, response.text().await.unwrap());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("worker http never answered");
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(get("/readyz").await, (200, "ready".to_owned()));
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("referral_queue_failed_jobs{queue=\"reconcile\"} 0"),
        "{text}"
    );
}
