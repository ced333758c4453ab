//! Referral links, clicks, attributed signups, signup credit and its expiry
//! (SPEC: Attribution, Referred-user status, Signup credit).

use chrono::Duration as Days;
use referral_core::jobs::{self, ExpireSignupCredit, GrantSignupCredit};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

impl TestApp {
    pub(crate) async fn create_user(&self, body: Value) -> (u16, Value) {
        self.post("/v1/users", Some(&self.platform_key), body).await
    }

    pub(crate) async fn referrer(&self, user_id: &str, email: &str) -> Value {
        let (status, body) = self
            .create_user(json!({"user_id": user_id, "email": email}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["user"].clone()
    }

    /// Ana refers Bo by code; the credit job has run. Returns Ana.
    pub(crate) async fn ana_refers_bo(&self) -> Value {
        let ana = self.referrer("ana", "ana@example.com").await;
        let (status, body) = self
            .create_user(json!({"user_id": "bo", "email": "bo@example.com", "referral_code": ana["referral_code"]}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["attribution"]["attributed"], true);
        self.run_due_jobs().await;
        ana
    }

    pub(crate) async fn wallet(&self, user_id: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/v1/users/{user_id}/wallet"),
                Some(&self.platform_key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub(crate) async fn spend(&self, user_id: &str, amount: &str, reference: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/users/{user_id}/wallet/spend"),
            Some(&self.platform_key),
            json!({"amount": amount, "currency": "USD", "reference": reference}),
        )
        .await
    }

    pub(crate) async fn api_click(&self, code: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/clicks",
                Some(&self.platform_key),
                json!({"referral_code": code}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The wallet's ledger entries as (kind, amount) pairs.
    pub(crate) async fn wallet_entries(&self, user_id: &str) -> Vec<(String, String)> {
        self.wallet(user_id).await["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_owned(),
                    e["amount"]["amount"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every grant's cached `remaining` equals the sum of its ledger entries.
    async fn assert_grants_match_ledger(&self) {
        let mismatched: i64 = sqlx::query_scalar(
            "select count(*) from credit_grants g
             where g.remaining <> (select coalesce(sum(amount), 0) from ledger_entries e
                                   where e.credit_grant_id = g.id)",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap();
        assert_eq!(
            mismatched, 0,
            "a grant's remaining differs from its ledger sum"
        );
    }
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Follows `/r/{code}` like a browser; returns the click id from the cookie it set.
async fn follow_link(app: &TestApp, browser: &reqwest::Client, code: &str) -> String {
    let response = browser
        .get(app.url(&format!("/r/{code}")))
        .header("user-agent", "test-browser/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://localhost:3000/welcome?ref="),
        "{location}"
    );
    assert!(location.contains(&format!("ref={code}")));
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("ref_click=")
        .unwrap();
    value.to_owned()
}

#[sqlx::test(migrations = false)]
async fn a_user_gets_a_permanent_code_link_and_share_urls(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let code = ana["referral_code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        ana["referral_link"],
        format!("http://localhost:8080/r?ref={code}")
    );
    assert!(ana["share"]["message"].as_str().unwrap().contains("$2.50"));
    let x = ana["share"]["x"].as_str().unwrap();
    assert!(
        x.starts_with("https://x.com/intent/tweet?text=") && x.contains(code),
        "{x}"
    );
    let linkedin = ana["share"]["linkedin"].as_str().unwrap();
    assert!(linkedin.starts_with("https://www.linkedin.com/") && linkedin.contains(code));
    assert!(linkedin.contains("2.50"));

    // The share link's form (`PUBLIC_BASE_URL?ref=CODE`) is served too.
    let response = app
        .http
        .get(app.url(&format!("/r?ref={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("ref_click=")
    );

    let (status, again) = app.get("/v1/users/ana", Some(&app.platform_key)).await;
    assert_eq!(status, 200);
    assert_eq!(again["referral_code"], code, "the code is permanent");

    let (status, body) = app
        .create_user(json!({"user_id": "ana", "email": "other@example.com"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (409, Some("USER_ALREADY_EXISTS"), Some("user_id"))
    );
    let (status, body) = app
        .create_user(json!({"user_id": "ana2", "email": "ANA@example.com"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (409, Some("EMAIL_ALREADY_REGISTERED"), Some("email"))
    );
    let (status, body) = app.get("/v1/users/nobody", Some(&app.platform_key)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("USER_NOT_FOUND"))
    );
}

#[sqlx::test(migrations = false)]
async fn click_then_signup_within_seven_days_is_attributed_and_credited(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let code = ana["referral_code"].as_str().unwrap();

    let browser = cookie_client();
    let response = browser
        .get(app.url(&format!("/r/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=604800"), "{cookie}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let click_id = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("ref_click=")
        .unwrap();

    app.clock.advance(Days::days(7));
    let (status, body) = app
        .create_user(json!({"user_id": "bo", "email": "bo@example.com", "click_id": click_id}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attribution"]["attributed"], true);
    assert_eq!(body["attribution"]["referrer_user_id"], "ana");
    assert_eq!(body["attribution"]["click_id"], click_id);
    assert_eq!(
        body["attribution"]["signup_credit"]["amount"],
        json!({"amount": "2.50", "currency": "USD"})
    );
    assert_eq!(body["user"]["referred_by"], "ana");

    app.run_due_jobs().await;
    let wallet = app.wallet("bo").await;
    assert_eq!(wallet["available"]["amount"], "2.50");
    assert_eq!(wallet["balance"]["amount"], "2.50");
    assert_eq!(wallet["grants"][0]["remaining"]["amount"], "2.50");
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(wallet["grants"][0]["expires_at"].clone()).unwrap();
    assert_eq!(expires_at, app.clock_now() + Days::days(30));
    assert_eq!(
        app.wallet_entries("bo").await,
        vec![("CREDIT_GRANTED".to_owned(), "2.50".to_owned())]
    );

    // The click recorded what the browser said.
    let (ip, clicked_at): (Option<String>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select ip, clicked_at from clicks")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(clicked_at, app.clock_now() - Days::days(7));
    app.assert_grants_match_ledger().await;
}

#[sqlx::test(migrations = false)]
async fn signup_seven_days_and_one_second_after_the_click_is_not_attributed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let click = app.api_click(ana["referral_code"].as_str().unwrap()).await;
    let window_closes: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(click["attribution_expires_at"].clone()).unwrap();
    assert_eq!(window_closes, app.clock_now() + Days::days(7));

    app.clock.advance(Days::days(7) + Days::seconds(1));
    let (status, body) = app
        .create_user(
            json!({"user_id": "bo", "email": "bo@example.com", "click_id": click["click_id"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attribution"]["attributed"], false);
    assert_eq!(body["attribution"]["reason"], "expired");
    assert!(body["user"]["referred_by"].is_null());
    app.run_due_jobs().await;
    assert!(
        app.jobs::<GrantSignupCredit>().await.is_empty(),
        "no credit for an unattributed signup"
    );
    assert_eq!(app.wallet("bo").await["available"]["amount"], "0.00");
}

#[sqlx::test(migrations = false)]
async fn last_click_wins(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let cy = app.referrer("cy", "cy@example.com").await;

    // One browser clicks Ana's link, then Cy's: the cookie now holds Cy's click.
    let browser = cookie_client();
    follow_link(&app, &browser, ana["referral_code"].as_str().unwrap()).await;
    app.clock.advance(Days::hours(1));
    let last = follow_link(&app, &browser, cy["referral_code"].as_str().unwrap()).await;
    let (status, body) = app
        .create_user(json!({"user_id": "bo", "email": "bo@example.com", "click_id": last}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["attribution"]["referrer_user_id"], "cy");

    // A code entered at signup is a click at signup time: it beats an older click.
    let older = app.api_click(cy["referral_code"].as_str().unwrap()).await;
    app.clock.advance(Days::hours(1));
    let (_, body) = app
        .create_user(json!({
            "user_id": "di", "email": "di@example.com",
            "click_id": older["click_id"], "referral_code": ana["referral_code"],
        }))
        .await;
    assert_eq!(body["attribution"]["referrer_user_id"], "ana");
    assert!(body["attribution"]["click_id"].is_null());

    // Attribution happens once, at signup: later clicks do not move a user.
    let (_, bo) = app.get("/v1/users/bo", Some(&app.platform_key)).await;
    assert_eq!(bo["referred_by"], "cy");
}

#[sqlx::test(migrations = false)]
async fn self_referral_by_the_same_normalized_email_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let john = app.referrer("john", "john.doe@gmail.com").await;
    let code = john["referral_code"].as_str().unwrap();
    for (user_id, email) in [
        ("j2", "JohnDoe+promo@googlemail.com"),
        ("j3", "j.o.h.n.d.o.e@gmail.com"),
    ] {
        let (status, body) = app
            .create_user(json!({"user_id": user_id, "email": email, "referral_code": code}))
            .await;
        assert_eq!(status, 201, "the user is created all the same: {body}");
        assert_eq!(body["attribution"]["attributed"], false);
        assert_eq!(body["attribution"]["reason"], "self_referral");
    }
    let ana = app.referrer("ana", "ana+work@example.com").await;
    let (_, body) = app
        .create_user(json!({"user_id": "ana2", "email": "ana@example.com", "referral_code": ana["referral_code"]}))
        .await;
    assert_eq!(body["attribution"]["reason"], "self_referral");
    app.run_due_jobs().await;
    assert!(app.jobs::<GrantSignupCredit>().await.is_empty());
}

#[sqlx::test(migrations = false)]
async fn unknown_codes_and_clicks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app.get("/r/nosuchcode", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "UNKNOWN_REFERRAL_CODE");
    assert_eq!(body["status"], 404);
    let (status, body) = app
        .post(
            "/v1/clicks",
            Some(&app.platform_key),
            json!({"referral_code": "nosuchcode"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("UNKNOWN_REFERRAL_CODE"))
    );

    let (status, body) = app
        .create_user(
            json!({"user_id": "bo", "email": "bo@example.com", "referral_code": "nosuchcode"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["attribution"]["reason"], "unknown_code");
    let (_, body) = app
        .create_user(
            json!({"user_id": "cy", "email": "cy@example.com", "click_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(body["attribution"]["reason"], "unknown_click");
    let clicks: i64 = sqlx::query_scalar("select count(*) from clicks")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clicks, 0);
}

#[sqlx::test(migrations = false)]
async fn bad_input_gets_a_clear_error_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app
        .post_raw("/v1/users", Some(&app.platform_key), "{\"user_id\": \"x\",")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("MALFORMED_JSON"))
    );

    for (payload, field) in [
        (json!({"user_id": "x", "email": "not-an-email"}), "email"),
        (
            json!({"user_id": "x", "email": "x@example.com", "click_id": "nope"}),
            "click_id",
        ),
        (json!({"user_id": 7, "email": "x@example.com"}), "user_id"),
        (json!({"email": "x@example.com"}), "user_id"),
        (
            json!({"user_id": "x", "email": "x@example.com", "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, body) = app.create_user(payload.clone()).await;
        assert_eq!(status, 422, "{payload} → {body}");
        assert_eq!(body["code"], "INVALID_FIELD");
        assert_eq!(body["field"], field, "{payload} → {body}");
        assert!(body["message"].as_str().unwrap().starts_with(field));
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);

    let (status, body) = app
        .get(
            "/v1/users/x/referrals?status=MAYBE",
            Some(&app.platform_key),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("status")));
}

#[sqlx::test(migrations = false)]
async fn the_credit_job_grants_exactly_once_even_when_run_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;

    // The same job delivered again.
    let bo_id: uuid::Uuid =
        sqlx::query_scalar("select id from users where platform_user_id = 'bo'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    jobs::enqueue_now(
        &mut conn,
        &GrantSignupCredit {
            user_id: referral_core::ids::UserId(bo_id),
        },
    )
    .await
    .unwrap();
    drop(conn);
    app.run_due_jobs().await;

    let grant_jobs = app.jobs::<GrantSignupCredit>().await;
    assert_eq!(grant_jobs.len(), 2);
    assert!(grant_jobs.iter().all(|j| j.status == "Done"));
    let wallet = app.wallet("bo").await;
    assert_eq!(wallet["available"]["amount"], "2.50");
    assert_eq!(wallet["grants"].as_array().unwrap().len(), 1);
    assert_eq!(app.wallet_entries("bo").await.len(), 1);
    // The referrer's own wallet is untouched.
    assert_eq!(app.wallet("ana").await["available"]["amount"], "0.00");
}

#[sqlx::test(migrations = false)]
async fn thirty_days_later_expiry_removes_only_what_is_left(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;

    app.clock.advance(Days::days(10));
    let (status, body) = app.spend("bo", "1.00", "purchase-1").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["available"]["amount"], "1.50");
    let (status, replay) = app.spend("bo", "1.00", "purchase-1").await;
    assert_eq!(
        (status, &replay),
        (201, &body),
        "a replayed spend answers the first result"
    );

    // Day 29: not yet.
    app.advance(Days::days(19)).await;
    assert_eq!(app.wallet("bo").await["available"]["amount"], "1.50");
    let expiry = app.jobs::<ExpireSignupCredit>().await.remove(0);
    assert_eq!(expiry.status, "Pending");

    // Day 30: what is left (1.50) expires, and no more.
    app.advance(Days::days(1)).await;
    let wallet = app.wallet("bo").await;
    assert_eq!(wallet["available"]["amount"], "0.00");
    assert_eq!(wallet["balance"]["amount"], "0.00");
    assert!(wallet["grants"][0]["expired_at"].is_string());
    assert_eq!(
        app.wallet_entries("bo").await,
        vec![
            ("CREDIT_GRANTED".to_owned(), "2.50".to_owned()),
            ("CREDIT_SPENT".to_owned(), "-1.00".to_owned()),
            ("CREDIT_EXPIRED".to_owned(), "-1.50".to_owned()),
        ]
    );

    // The timer delivered again changes nothing.
    let bo_id: uuid::Uuid =
        sqlx::query_scalar("select id from users where platform_user_id = 'bo'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let due_at = app.clock_now();
    jobs::enqueue_now(
        &mut conn,
        &ExpireSignupCredit {
            user_id: referral_core::ids::UserId(bo_id),
            due_at,
        },
    )
    .await
    .unwrap();
    drop(conn);
    app.run_due_jobs().await;
    assert_eq!(app.wallet_entries("bo").await.len(), 3);
    app.assert_grants_match_ledger().await;
}

#[sqlx::test(migrations = false)]
async fn an_expiry_timer_woken_early_does_nothing_and_waits(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;

    // Wake the 30-day timer now, on day 0.
    let timer = app.jobs::<ExpireSignupCredit>().await.remove(0);
    let due_at = timer.run_at;
    assert_eq!(due_at, app.clock_now() + Days::days(30));
    app.run_job_now(&timer.id).await;
    // It goes back to sleep: the same row, Pending, due at its instant, no attempt spent.
    let asleep = app
        .wait_for_job::<ExpireSignupCredit>(&timer.id, |j| {
            j.status == "Pending" && j.run_at == due_at
        })
        .await;
    assert_eq!(asleep.attempts, 0);
    assert_eq!(app.jobs::<ExpireSignupCredit>().await.len(), 1);
    assert_eq!(
        app.wallet("bo").await["available"]["amount"],
        "2.50",
        "expired early"
    );

    app.advance(Days::days(30)).await;
    assert_eq!(app.wallet("bo").await["available"]["amount"], "0.00");
    let jobs = app.jobs::<ExpireSignupCredit>().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].status.as_str(), jobs[0].attempts), ("Done", 1));
}

#[sqlx::test(migrations = false)]
async fn spending_more_than_available_is_refused_with_nothing_written(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;

    let (status, body) = app.spend("bo", "2.51", "too-much").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "INSUFFICIENT_CREDIT");
    assert!(body["message"].as_str().unwrap().contains("2.50"));
    let spends: i64 = sqlx::query_scalar("select count(*) from credit_spends")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(spends, 0);
    assert_eq!(app.wallet_entries("bo").await.len(), 1);
    assert_eq!(
        app.wallet("bo").await["grants"][0]["remaining"]["amount"],
        "2.50"
    );

    let (status, body) = app.spend("bo", "1.00", "eur").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            "/v1/users/bo/wallet/spend",
            Some(&app.platform_key),
            json!({"amount": "1.00", "currency": "EUR", "reference": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (422, Some("UNSUPPORTED_CURRENCY"), Some("currency"))
    );
    let (status, body) = app.spend("bo", "0.001", "tiny").await;
    assert_eq!((status, body["field"].as_str()), (422, Some("amount")));
    let (status, body) = app.spend("bo", "1.25", "eur").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("REFERENCE_REUSED"))
    );

    // Credit past its expiry instant cannot be spent, even before the expiry job runs.
    app.clock.advance(Days::days(30));
    let (status, body) = app.spend("bo", "0.50", "late").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("INSUFFICIENT_CREDIT"))
    );
    app.assert_grants_match_ledger().await;
}

#[sqlx::test(migrations = false)]
async fn a_referrer_sees_referred_users_by_status_page_by_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let code = ana["referral_code"].as_str().unwrap();
    let browser = cookie_client();
    let click_for_bo = follow_link(&app, &browser, code).await;
    app.clock.advance(Days::minutes(1));
    app.create_user(json!({"user_id": "bo", "email": "bo@example.com", "click_id": click_for_bo}))
        .await;
    app.clock.advance(Days::minutes(1));
    let stray = follow_link(&app, &cookie_client(), code).await;
    app.clock.advance(Days::minutes(1));
    app.create_user(json!({"user_id": "cy", "email": "cy@example.com", "referral_code": code}))
        .await;

    let (status, page) = app
        .get("/v1/users/ana/referrals", Some(&app.platform_key))
        .await;
    assert_eq!(status, 200, "{page}");
    let rows: Vec<(String, Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_owned(),
                r["user_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("SIGNED_UP".to_owned(), json!("cy")),
            ("NOT_SIGNED_UP".to_owned(), Value::Null),
            ("SIGNED_UP".to_owned(), json!("bo")),
        ]
    );
    assert_eq!(page["items"][1]["click_id"], stray);
    assert!(page["next_cursor"].is_null());

    let (_, only) = app
        .get(
            "/v1/users/ana/referrals?status=NOT_SIGNED_UP",
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);

    let (_, first) = app
        .get("/v1/users/ana/referrals?limit=2", Some(&app.platform_key))
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/v1/users/ana/referrals?limit=2&cursor={cursor}"),
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["user_id"], "bo");
    assert!(second["next_cursor"].is_null());

    let (status, body) = app
        .get(
            "/v1/users/ana/referrals?cursor=bogus",
            Some(&app.platform_key),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("cursor")));
}

#[sqlx::test(migrations = false)]
async fn a_local_installation_can_move_its_clock_thirty_days(pool: PgPool) {
    let app = TestApp::spawn_with_dev_clock(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    app.create_user(
        json!({"user_id": "bo", "email": "bo@example.com", "referral_code": ana["referral_code"]}),
    )
    .await;
    let granted = crate::harness::wait_until(std::time::Duration::from_secs(10), || async {
        let wallet = app.wallet("bo").await;
        (wallet["available"]["amount"] == "2.50").then_some(())
    })
    .await;
    assert!(granted.is_some(), "the credit job did not run");

    let (status, body) = app
        .post(
            "/v1/admin/dev/advance-clock",
            Some(&app.admin_key),
            json!({"days": 30}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offset_seconds"], 30 * 24 * 3600);
    assert_eq!(body["jobs_made_due"], 1);
    let expired = crate::harness::wait_until(std::time::Duration::from_secs(10), || async {
        let wallet = app.wallet("bo").await;
        (wallet["available"]["amount"] == "0.00"
            && wallet["entries"].as_array().unwrap().len() == 2)
            .then_some(())
    })
    .await;
    assert!(expired.is_some(), "{}", app.wallet("bo").await);
}

#[sqlx::test(migrations = false)]
async fn the_clock_cannot_move_in_a_normal_installation(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app
        .post(
            "/v1/admin/dev/advance-clock",
            Some(&app.admin_key),
            json!({"days": 30}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("DEV_TIME_TRAVEL_DISABLED"))
    );
    let (status, _) = app
        .post(
            "/v1/admin/dev/advance-clock",
            Some(&app.platform_key),
            json!({"days": 30}),
        )
        .await;
    assert_eq!(status, 403);
}

#[sqlx::test(migrations = false)]
async fn clicks_arriving_together_are_each_stored_once_and_answered_with_their_own(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let codes = [
        app_referrer_code(&app, "ana", "ana@example.com").await,
        app_referrer_code(&app, "ben", "ben@example.com").await,
    ];
    // Clicks on two links and on a code no one has, all at once: the api commits the
    // ones that arrive together in one statement.
    let targets: Vec<(Option<&str>, String)> = (0..240)
        .map(|n| match n % 3 {
            0 => (Some("ana"), codes[0].clone()),
            1 => (Some("ben"), codes[1].clone()),
            _ => (None, "nosuchcode".to_owned()),
        })
        .collect();
    let answers: Vec<(u16, Value)> = futures::future::join_all(targets.iter().map(|(_, code)| {
        app.post(
            "/v1/clicks",
            Some(&app.platform_key),
            json!({"referral_code": code, "user_agent": format!("agent {code}")}),
        )
    }))
    .await;

    let mut recorded = std::collections::HashSet::new();
    for ((owner, _), (status, body)) in targets.iter().zip(&answers) {
        match owner {
            Some(owner) => {
                assert_eq!(*status, 201, "{body}");
                assert_eq!(body["referrer_user_id"], *owner, "{body}");
                let id = body["click_id"].as_str().unwrap().to_owned();
                assert!(
                    recorded.insert(id),
                    "two clicks answered with one id: {body}"
                );
            }
            None => assert_eq!(
                (*status, body["code"].as_str()),
                (404, Some("UNKNOWN_REFERRAL_CODE"))
            ),
        }
    }
    let stored: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select c.id::text, u.platform_user_id, c.user_agent from clicks c join users u on u.id = c.referrer_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 160);
    for (id, owner, user_agent) in &stored {
        assert!(
            recorded.contains(id),
            "stored click {id} was never answered"
        );
        let code = &codes[usize::from(owner == "ben")];
        assert_eq!(
            user_agent.as_deref(),
            Some(format!("agent {code}").as_str())
        );
    }
    for owner in ["ana", "ben"] {
        let (status, stats) = app
            .get(&format!("/v1/users/{owner}/stats"), Some(&app.platform_key))
            .await;
        assert_eq!(status, 200, "{stats}");
        assert_eq!(stats["total_clicks"], 80, "{stats}");
    }
}

async fn app_referrer_code(app: &TestApp, user_id: &str, email: &str) -> String {
    app.referrer(user_id, email).await["referral_code"]
        .as_str()
        .unwrap()
        .to_owned()
}
