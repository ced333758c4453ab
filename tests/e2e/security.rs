//! Who may call what: only the documented public endpoints answer without a key, a
//! revoked key is refused at once by every api process, and a burst of link visits from
//! one address is limited without touching other visitors. (Oversized bodies: 413 in
//! `hardening`; forged and replayed webhooks: `payouts`; both also in the fault suite.)

use std::time::Duration;

use referral_api::ApiConfig;
use referral_api::rate_limit::RedirectLimit;
use referral_core::usecases::api_keys;
use referral_core::{Clock, SystemClock};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

/// The operations anyone may call: link redirects, health probes, and the Stripe
/// webhook (which proves itself with its signature instead).
const PUBLIC: &[&str] = &[
    "followLink",
    "followShareLink",
    "healthz",
    "readyz",
    "receiveStripeWebhook",
];

/// Every operation of the spec: (method, path with placeholders filled, operation id,
/// whether it needs an admin key).
fn operations() -> Vec<(String, String, String, Option<bool>)> {
    let spec: Value = serde_json::from_str(&referral_api::spec_json()).unwrap();
    let mut all = Vec::new();
    for (path, methods) in spec["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            let scheme = operation["security"].as_array().and_then(|schemes| {
                schemes
                    .first()
                    .and_then(|s| s.as_object())
                    .and_then(|s| s.keys().next().cloned())
            });
            let admin = scheme.map(|s| s == "AdminKey");
            let filled = path
                .replace("{user_id}", "someone")
                .replace("{purchase_id}", "pur-1")
                .replace("{job_id}", "01JOBID")
                .replace("{code}", "CODE1234");
            all.push((method.to_uppercase(), filled, id, admin));
        }
    }
    all
}

#[sqlx::test(migrations = false)]
async fn only_the_documented_public_endpoints_answer_without_a_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let operations = operations();
    assert!(operations.len() > 30, "the spec lists every operation");
    for (method, path, id, admin) in operations {
        let Some(admin) = admin else {
            assert!(
                PUBLIC.contains(&id.as_str()),
                "{id} ({method} {path}) needs no key but is not a documented public endpoint"
            );
            continue;
        };
        let send = |key: Option<&str>| {
            let mut request = app
                .http
                .request(method.parse().unwrap(), format!("{}{path}", app.base_url))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            request.send()
        };
        for key in [None, Some("rk_live_not_a_key"), Some("")] {
            let response = send(key).await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("UNAUTHENTICATED")),
                "{id} ({method} {path}) with key {key:?}"
            );
        }
        if admin {
            let response = send(Some(&app.platform_key)).await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                403,
                "{id} ({method} {path}) with a platform key"
            );
        }
    }
    // Nothing those calls carried was written.
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrations = false)]
async fn a_revoked_key_is_refused_within_a_second_by_every_api_process(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let second = app
        .spawn_another_api(ApiConfig::for_tests("postgres://unused"))
        .await;
    let instances = [app.base_url.clone(), second];
    let status_on = |base: &str| {
        app.http
            .get(format!("{base}/v1/partner-agreement"))
            .bearer_auth(&app.platform_key)
            .send()
    };
    for base in &instances {
        assert_eq!(status_on(base).await.unwrap().status().as_u16(), 200);
    }

    let mut conn = app.pool.acquire().await.unwrap();
    let revoked = api_keys::revoke(&mut conn, "test platform", SystemClock.now())
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    let revoked_at = tokio::time::Instant::now();
    for base in &instances {
        loop {
            let response = status_on(base).await.unwrap();
            if response.status().as_u16() == 401 {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "{base} still accepts the revoked key"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The other keys still work.
    let (status, _) = app.get("/v1/admin/jobs", Some(&app.admin_key)).await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrations = false)]
async fn a_burst_of_link_visits_from_one_address_is_limited_without_touching_others(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, created) = app
        .post(
            "/v1/users",
            Some(&app.platform_key),
            json!({"user_id": "ana", "email": "ana@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let code = created["user"]["referral_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut config = ApiConfig::for_tests("postgres://unused");
    config.redirect_limit = Some(RedirectLimit {
        per_minute: 60,
        burst: 5,
    });
    let limited = app.spawn_another_api(config).await;
    let from = |address: [u8; 4]| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(Some(std::net::IpAddr::from(address)))
            .build()
            .unwrap()
    };
    let noisy = from([127, 0, 0, 1]);
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..20 {
        let response = noisy
            .get(format!("{limited}/r/{code}"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: Value = response.json().await.unwrap();
            refusal = Some((retry_after, body));
        }
    }
    assert_eq!(statuses[..5], [302; 5], "the burst passes: {statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "then 429: {statuses:?}"
    );
    let (retry_after, body) = refusal.unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["status"], 429);
    // Refused visits recorded nothing.
    let clicks: i64 = sqlx::query_scalar("select count(*) from clicks")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clicks, 5);

    // Another visitor, from another address, is served as usual meanwhile.
    let other = from([127, 0, 0, 2]);
    for _ in 0..3 {
        let response = other
            .get(format!("{limited}/r/{code}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302);
    }
    // The share-link form shares the limit of the address.
    let response = noisy
        .get(format!("{limited}/r?ref={code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
}
