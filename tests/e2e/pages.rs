//! The web pages over plain HTTP: embed tokens and what they open, and the console's
//! sign-in, session cookie and CSRF checks. The browser plays the whole story in
//! `browser.rs`.

use serde_json::json;
use sqlx::PgPool;

use crate::harness::TestApp;

impl TestApp {
    /// An embed token for `user_id`; returns the dashboard's path.
    pub(crate) async fn embed_path(&self, user_id: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/users/{user_id}/embed-tokens"),
                Some(&self.platform_key),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["path"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn page(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut request = self.http.get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub(crate) async fn submit(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }
}

fn token_of(path: &str) -> String {
    let url = url::Url::parse(&format!("http://x{path}")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn an_embed_token_opens_its_users_dashboard_and_nobody_elses(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.ana_refers_bo().await;
    let cy = app.referrer("cy", "cy@example.com").await;

    let (status, body) = app
        .post(
            "/v1/users/ana/embed-tokens",
            Some(&app.platform_key),
            json!({"ttl_seconds": 120}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:8080/embed/dashboard?token=")
    );
    let path = body["path"].as_str().unwrap().to_owned();

    let (status, html) = app.page(&path, None).await;
    assert_eq!(status, 200);
    assert!(html.contains(ana["referral_link"].as_str().unwrap()));
    assert!(
        html.contains("bo@example.com"),
        "Ana sees Bo, whom she referred"
    );
    assert!(!html.contains(cy["referral_link"].as_str().unwrap()));

    // The token names Ana inside its signature: put Cy's id in its place and it is refused.
    let token = token_of(&path);
    let forged = token.replacen(&hex_of("ana"), &hex_of("cy"), 1);
    assert_ne!(forged, token);
    let (status, html) = app
        .page(&format!("/embed/dashboard?token={forged}"), None)
        .await;
    assert_eq!(status, 401);
    assert!(!html.contains(cy["referral_link"].as_str().unwrap()));

    // Acting through Ana's token changes Ana, whatever else the form carries.
    let response = app
        .submit(
            "/embed/partner",
            None,
            &[
                ("token", &token),
                ("full_name", "Ana Souza"),
                ("user_id", "cy"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let partner = |id: &'static str| {
        let app = &app;
        async move {
            let (_, body) = app
                .get(&format!("/v1/users/{id}/partner"), Some(&app.platform_key))
                .await;
            body["track"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(partner("ana").await, "PARTNER");
    assert_eq!(partner("cy").await, "BASIC");

    // The ledger export follows the token too.
    let csv = app
        .http
        .get(app.url(&path.replacen("/embed/dashboard", "/embed/ledger.csv", 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );

    // A page asked for without its token is a page too, not a JSON error.
    let response = app
        .http
        .get(app.url("/embed/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Expired tokens are refused with a page saying so.
    app.advance(chrono::Duration::minutes(3)).await;
    let (status, html) = app.page(&path, None).await;
    assert_eq!(status, 401);
    assert!(html.contains("expired"));

    // Asking for an unknown user, or a token lasting too long, is refused and writes nothing.
    let (status, body) = app
        .post(
            "/v1/users/nobody/embed-tokens",
            Some(&app.platform_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .post(
            "/v1/users/ana/embed-tokens",
            Some(&app.platform_key),
            json!({"ttl_seconds": 86400}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ttl_seconds");
    let (status, _) = app
        .post(
            "/v1/users/ana/embed-tokens",
            Some(&app.admin_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The console's cookie from a response's `Set-Cookie` headers.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ops_session=") && !v.starts_with("ops_session=;"))
        .map(str::to_owned)
}

fn form_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

#[sqlx::test(migrations = false)]
async fn the_console_needs_a_live_admin_key_a_strict_cookie_and_its_csrf_token(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;

    // No session: to the sign-in form.
    let response = app.http.get(app.url("/ops")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/ops/login");

    let response = app.http.get(app.url("/ops/login")).send().await.unwrap();
    let nonce_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(nonce_cookie.contains("HttpOnly") && nonce_cookie.contains("SameSite=Strict"));
    let nonce_cookie = nonce_cookie.split(';').next().unwrap().to_owned();
    let html = response.text().await.unwrap();
    let nonce = form_value(&html, "csrf");

    // A platform key, a wrong key, or a form without the sign-in nonce: no session.
    for (key, csrf) in [
        (app.platform_key.as_str(), nonce.as_str()),
        ("rk_admin_wrong", nonce.as_str()),
        (app.admin_key.as_str(), "forged"),
    ] {
        let response = app
            .submit(
                "/ops/login",
                Some(&nonce_cookie),
                &[("csrf", csrf), ("admin_key", key)],
            )
            .await;
        assert!(
            [401, 403].contains(&response.status().as_u16()),
            "{}",
            response.status()
        );
        assert_eq!(session_cookie(&response), None);
    }

    let response = app
        .submit(
            "/ops/login",
            Some(&nonce_cookie),
            &[("csrf", &nonce), ("admin_key", &app.admin_key)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let set_cookie = session_cookie(&response).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ops"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(&app.admin_key),
        "the key never goes to the browser"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let (status, html) = app.page("/ops", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("send_email"), "every queue is listed");

    // A failed job: retrying it without the session's CSRF token changes nothing.
    let job_id = failed_credit_job(&mut app).await;
    let (_, html) = app.page("/ops", Some(&cookie)).await;
    assert!(html.contains(&job_id));
    let csrf = form_value(&html, "csrf");
    let response = app
        .submit(
            &format!("/ops/jobs/{job_id}/retry"),
            Some(&cookie),
            &[("csrf", "0000")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(job_state(&app, &job_id).await, "failed");
    let response = app
        .submit(
            &format!("/ops/jobs/{job_id}/retry"),
            None,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/ops/login");
    assert_eq!(job_state(&app, &job_id).await, "failed");

    let response = app
        .submit(
            &format!("/ops/jobs/{job_id}/retry"),
            Some(&cookie),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_ne!(job_state(&app, &job_id).await, "failed");
    app.run_due_jobs().await;
    assert_eq!(app.wallet("bo").await["available"]["amount"], "2.50");
    let (_, body) = app
        .get(
            &format!("/v1/admin/jobs/{job_id}/actions"),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(body[0]["action"], "RETRY", "{body}");

    // Revoking the key ends the session.
    let mut conn = app.pool.acquire().await.unwrap();
    referral_core::usecases::api_keys::revoke(&mut conn, "test admin", app.clock_now())
        .await
        .unwrap();
    let response = app
        .http
        .get(app.url("/ops"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
}

/// A signup whose credit job failed for good: Ana refers Bo while no worker runs, and
/// the grant is out of attempts. Returns the job's id.
pub(crate) async fn failed_credit_job(app: &mut TestApp) -> String {
    app.stop_worker().await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let (status, body) = app
        .create_user(json!({"user_id": "bo", "email": "bo@example.com", "referral_code": ana["referral_code"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    app.exhaust("grant_signup_credit", "database briefly unavailable")
        .await;
    app.start_worker();
    app.all_jobs()
        .await
        .into_iter()
        .find(|job| job.queue == "grant_signup_credit")
        .unwrap()
        .id
}

async fn job_state(app: &TestApp, id: &str) -> String {
    let mut conn = app.pool.acquire().await.unwrap();
    referral_core::store::jobs::find(&mut conn, id)
        .await
        .unwrap()
        .map(|row| row.state)
        .unwrap_or_default()
}

#[sqlx::test(migrations = false)]
async fn the_platform_sets_the_dashboards_name_colour_logo_and_who_may_frame_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.referrer("ana", "ana@example.com").await;
    let mut config = referral_api::ApiConfig::for_tests("postgres://unused");
    config.pages.brand_name = "Acme APIs".into();
    config.pages.brand_color = "#0a7d33".into();
    config.pages.brand_logo_url = Some("https://acme.test/logo.svg".into());
    config.pages.frame_ancestors = "https://app.acme.test".into();
    let branded = app.spawn_another_api(config).await;

    // A token from one api process opens the dashboard on another: the secret is shared.
    let path = app.embed_path("ana").await;
    let response = app
        .http
        .get(format!("{branded}{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors https://app.acme.test"),
        "{csp}"
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let html = response.text().await.unwrap();
    assert!(html.contains("Acme APIs"));
    assert!(html.contains("href=\"/assets/brand.css\""));
    assert!(html.contains("src=\"https://acme.test/logo.svg\""));

    let brand = app
        .http
        .get(format!("{branded}/assets/brand.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(brand.contains("--accent:#0a7d33"), "{brand}");

    // Assets come from the api itself.
    for asset in ["/assets/pages.css", "/assets/pages.js"] {
        let response = app
            .http
            .get(format!("{branded}{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
    }
    // The console never lets itself be framed.
    let response = app.http.get(app.url("/ops/login")).send().await.unwrap();
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[sqlx::test(migrations = false)]
async fn the_dashboard_pages_through_referred_users_keeping_its_filters(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    for n in 0..12 {
        let (status, body) = app
            .create_user(
                json!({"user_id": format!("u{n}"), "email": format!("u{n}@example.com"),
                                "referral_code": ana["referral_code"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let path = app.embed_path("ana").await;
    let (status, first) = app
        .page(&format!("{path}&status=PAID&interval=month"), None)
        .await;
    assert_eq!(status, 200);
    let shown = |html: &str| {
        (0..12)
            .filter(|n| html.contains(&format!("u{n}@example.com")))
            .count()
    };
    assert_eq!(shown(&first), 10);
    let marker = "class=\"more\" href=\"";
    let start = first.find(marker).unwrap() + marker.len();
    let next = first[start..][..first[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(
        next.contains("status=PAID") && next.contains("interval=month"),
        "{next}"
    );
    let (status, second) = app.page(&next, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown(&second), 2);
    assert!(!second.contains("More referred users"));
}
