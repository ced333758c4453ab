//! Bad input of every kind gets a clear 4xx naming the field and writes nothing; the
//! idempotency of spends holds under concurrency.

use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

/// Rows of the tables a refused request could have written to.
async fn row_counts(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar(
        "select array[(select count(*) from users), (select count(*) from clicks),
                      (select count(*) from credit_spends), (select count(*) from ledger_entries),
                      (select count(*) from api_keys)]",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn assert_refused(what: &str, (status, body): &(u16, Value), expected_status: u16, field: &str) {
    assert_eq!(*status, expected_status, "{what}: {body}");
    assert_eq!(body["status"], expected_status, "{what}: {body}");
    assert_eq!(body["field"], field, "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(field),
        "{what}: message names the field: {body}"
    );
}

#[sqlx::test(migrations = false)]
async fn every_bad_input_is_a_4xx_naming_its_field_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let code = ana["referral_code"].as_str().unwrap().to_owned();
    let before = row_counts(&app).await;
    let key = Some(app.platform_key.as_str());
    let long = "x".repeat(10_000);

    let user_cases = [
        (
            "NUL in user_id",
            json!({"user_id": "a\u{0}b", "email": "a@example.com"}),
            "user_id",
        ),
        (
            "empty user_id",
            json!({"user_id": "", "email": "a@example.com"}),
            "user_id",
        ),
        (
            "blank user_id",
            json!({"user_id": "   ", "email": "a@example.com"}),
            "user_id",
        ),
        (
            "10,000-character user_id",
            json!({"user_id": long, "email": "a@example.com"}),
            "user_id",
        ),
        (
            "markup in the e-mail",
            json!({"user_id": "u1", "email": "<script>alert(1)</script>x@example.com"}),
            "email",
        ),
        (
            "NUL in the code",
            json!({"user_id": "u1", "email": "a@example.com", "referral_code": "a\u{0}"}),
            "referral_code",
        ),
    ];
    for (what, body, field) in user_cases {
        assert_refused(what, &app.post("/v1/users", key, body).await, 422, field);
    }

    for field in ["user_agent", "referer", "landing_page"] {
        let mut body = json!({"referral_code": code});
        body[field] = json!("a\u{0}b");
        assert_refused(field, &app.post("/v1/clicks", key, body).await, 422, field);
    }
    for ip in ["not-an-ip", "1.2.3.4\u{0}", "999.1.1.1"] {
        let body = json!({"referral_code": code, "ip": ip});
        assert_refused(ip, &app.post("/v1/clicks", key, body).await, 422, "ip");
    }

    let spend = |amount: &str, reference: &str| json!({"amount": amount, "currency": "USD", "reference": reference});
    for amount in [
        " 0.01", "+0.01", ".01", "0.010", "0", "0.00", "1e3", "-1.00", "01.00",
    ] {
        let response = app
            .post("/v1/users/ana/wallet/spend", key, spend(amount, "r1"))
            .await;
        assert_refused(amount, &response, 422, "amount");
    }
    for reference in ["", "a\u{0}b", long.as_str()] {
        let response = app
            .post("/v1/users/ana/wallet/spend", key, spend("1.00", reference))
            .await;
        assert_refused("reference", &response, 422, "reference");
    }

    assert_refused(
        "NUL in a path segment",
        &app.get("/v1/users/a%00b", key).await,
        422,
        "user_id",
    );
    assert_refused(
        "NUL in a wallet path",
        &app.get("/v1/users/a%00b/wallet", key).await,
        422,
        "user_id",
    );

    let admin = Some(app.admin_key.as_str());
    assert_refused(
        "NUL in a job id",
        &app.post("/v1/admin/jobs/retry", admin, json!({"ids": ["a\u{0}"]}))
            .await,
        422,
        "ids[0]",
    );
    assert_refused(
        "no job ids",
        &app.post("/v1/admin/jobs/retry", admin, json!({"ids": []}))
            .await,
        422,
        "ids",
    );

    let huge = format!(r#"{{"user_id": "u", "email": "{}"}}"#, "a".repeat(3 << 20));
    let (status, body) = app.post_raw("/v1/users", key, &huge).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{body}"
    );

    assert_eq!(
        row_counts(&app).await,
        before,
        "a refused request wrote nothing"
    );
}

#[sqlx::test(migrations = false)]
async fn parameter_errors_state_the_rule_not_library_internals(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.referrer("ana", "ana@example.com").await;
    let key = Some(app.platform_key.as_str());

    let (status, body) = app.get("/v1/users/ana/referrals?status=BOGUS", key).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("status")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "status: must be one of NOT_SIGNED_UP, SIGNED_UP, CONVERTED"
    );
    let (status, body) = app.get("/v1/users/ana/referrals?limit=0", key).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("limit")),
        "{body}"
    );
    assert_eq!(body["message"], "limit: must be an integer from 1 to 100");
    let (status, body) = app.get("/v1/users/ana/referrals?cursor=garbage", key).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("cursor")),
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_wrong_method_is_405_with_the_allowed_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (method, path, allowed) in [
        ("TRACE", "/healthz", "GET, HEAD, OPTIONS"),
        ("DELETE", "/v1/users/ana/wallet", "GET, HEAD, OPTIONS"),
        ("GET", "/v1/admin/jobs/retry", "POST, OPTIONS"),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allowed, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    }
}

#[sqlx::test(migrations = false)]
async fn the_dev_clock_refuses_moves_out_of_range_without_moving(pool: PgPool) {
    let app = TestApp::spawn_with_dev_clock(pool).await;
    let admin = Some(app.admin_key.as_str());
    for (body, field) in [
        (json!({"days": i64::MAX}), "days"),
        (json!({"days": 3651}), "days"),
        (json!({"hours": 87_601}), "hours"),
        (json!({"days": -1}), "days"),
    ] {
        let response = app
            .post("/v1/admin/dev/advance-clock", admin, body.clone())
            .await;
        assert_refused(&body.to_string(), &response, 422, field);
    }
    let (status, body) = app
        .post("/v1/admin/dev/advance-clock", admin, json!({"hours": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["offset_seconds"], 3600,
        "only the valid move moved the clock"
    );
}

#[sqlx::test(migrations = false)]
async fn twenty_identical_spends_at_once_debit_once_and_answer_alike(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;

    let answers = join_all((0..20).map(|_| app.spend("bo", "1.00", "purchase-42"))).await;
    let first = &answers[0];
    assert_eq!(first.0, 201, "{}", first.1);
    assert!(
        answers.iter().all(|answer| answer == first),
        "every answer is the first one: {answers:#?}"
    );
    assert_eq!(first.1["available"]["amount"], "1.50");
    let spends: i64 = sqlx::query_scalar("select count(*) from credit_spends")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(spends, 1);
    assert_eq!(
        app.wallet_entries("bo").await,
        vec![
            ("CREDIT_GRANTED".to_owned(), "2.50".to_owned()),
            ("CREDIT_SPENT".to_owned(), "-1.00".to_owned()),
        ]
    );
}
