//! The pages in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver), playing the referral story from a platform's embed token to a payout,
//! and an operator retrying a failed job in `/ops`. Each step saves a screenshot under
//! `target/browser/` so a person can look at what the test saw.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `scripts/test` installs them when missing), or `CHROMEDRIVER` and
//! `CHROMIUM` pointing at others.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Duration as Days;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use sqlx::PgPool;

use crate::harness::{TestApp, wait_until};

/// A chromedriver of our own on a free port, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}): install Debian's chromium and chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let up = wait_until(Duration::from_secs(20), || async {
            reqwest::get(&status)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        assert!(up.is_some(), "chromedriver did not start on {url}");
        Self { process, url }
    }

    async fn browser(&self) -> Client {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1100,1600"]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Where the screenshots go: `target/browser/`.
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Scrolls the element `css` finds to the top of the window, for the screenshot.
async fn show(browser: &Client, css: &str) {
    browser
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView()",
            vec![json!(css)],
        )
        .await
        .unwrap();
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Clicks what `locator` finds and waits for the page it leads to.
async fn click_through(browser: &Client, locator: Locator<'_>) {
    let before = browser.current_url().await.unwrap();
    browser.find(locator).await.unwrap().click().await.unwrap();
    let moved = wait_until(Duration::from_secs(10), || async {
        let now = browser.current_url().await.ok()?;
        let ready = browser
            .execute("return document.readyState", vec![])
            .await
            .ok()?;
        (now != before && ready == "complete").then_some(())
    })
    .await;
    assert!(moved.is_some(), "clicking {locator:?} led nowhere");
}

/// Opens `user_id`'s dashboard with a fresh embed token, as the platform would.
async fn open_dashboard(browser: &Client, app: &TestApp, user_id: &str) {
    browser
        .goto(&app.url(&app.embed_path(user_id).await))
        .await
        .unwrap();
}

async fn page_text(browser: &Client) -> String {
    text_of(browser, "main").await
}

#[sqlx::test(migrations = false)]
async fn a_referrer_plays_the_whole_story_in_the_dashboard_and_an_operator_retries_a_job(
    pool: PgPool,
) {
    let mut app = TestApp::spawn(pool).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // The platform opens Ana's dashboard with an embed token.
    let ana = app.referrer("ana", "ana@example.com").await;
    open_dashboard(&browser, &app, "ana").await;
    let link = browser
        .find(Locator::Id("link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link, ana["referral_link"].as_str().unwrap());
    // The platform's colour reaches the page (a stylesheet of its own: the page's CSP
    // allows no inline style), here on a second api process with another colour.
    let mut config = referral_api::ApiConfig::for_tests("postgres://unused");
    config.pages.brand_color = "#0a7d33".into();
    let branded = app.spawn_another_api(config).await;
    let path = app.embed_path("ana").await;
    browser.goto(&format!("{branded}{path}")).await.unwrap();
    let accent = browser
        .execute(
            "return getComputedStyle(document.querySelector('header.top')).borderBottomColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(accent, json!("rgb(10, 125, 51)"));
    browser.goto(&app.url(&path)).await.unwrap();
    browser
        .find(Locator::Id("copy"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let copied = wait_until(Duration::from_secs(5), || async {
        Some(text_of(&browser, "#copy-status").await).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(copied.as_deref(), Some("Copied"));
    screenshot(&browser, "01-dashboard").await;

    // Bo signs up through the link's code: he appears, and his credit lands in his wallet.
    let code = link.rsplit("ref=").next().unwrap();
    let (status, body) = app
        .create_user(json!({"user_id": "bo", "email": "bo@example.com", "referral_code": code}))
        .await;
    assert_eq!(status, 201, "{body}");
    app.run_due_jobs().await;
    browser.refresh().await.unwrap();
    assert!(
        text_of(&browser, "#referred")
            .await
            .contains("bo@example.com")
    );
    assert_eq!(text_of(&browser, "#stat-referrals").await, "1");
    open_dashboard(&browser, &app, "bo").await;
    assert_eq!(text_of(&browser, "#wallet-available").await, "$2.50");
    assert!(text_of(&browser, "#credit").await.contains("Signup credit"));
    screenshot(&browser, "02-referred-user-wallet").await;

    // Bo buys: Ana's commission is pending, then paid once the 30 days have passed.
    app.buy("pur-1", "bo", "50.00").await;
    open_dashboard(&browser, &app, "ana").await;
    assert!(text_of(&browser, "#ledger").await.contains("PENDING"));
    assert_eq!(text_of(&browser, "#stat-pending").await, "$2.50");
    app.advance(Days::days(30)).await;
    app.run_due_jobs().await;
    open_dashboard(&browser, &app, "ana").await;
    // Filter the ledger to paid commissions with the form, as a user would.
    browser
        .find(Locator::Css("#status option[value=PAID]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_through(
        &browser,
        Locator::Css("#ledger-h + form button[type=submit]"),
    )
    .await;
    let ledger = text_of(&browser, "#ledger").await;
    assert!(
        ledger.contains("PAID") && ledger.contains("$2.50"),
        "{ledger}"
    );
    assert_eq!(text_of(&browser, "#stat-earnings").await, "$2.50");
    screenshot(&browser, "03-commission-paid").await;

    // The CSV the page links to, with the filter it shows.
    let csv_href = browser
        .find(Locator::Id("csv"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(csv_href.contains("status=PAID"), "{csv_href}");
    let csv = reqwest::get(app.url(&csv_href))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains("bo@example.com") && lines[1].contains("PAID"));

    // Ana signs the agreement and becomes a Partner.
    browser
        .find(Locator::Id("full_name"))
        .await
        .unwrap()
        .send_keys("Ana Souza")
        .await
        .unwrap();
    click_through(&browser, Locator::Id("upgrade")).await;
    assert!(page_text(&browser).await.contains("You are a Partner now"));
    assert!(
        text_of(&browser, "#payout-missing")
            .await
            .contains("no Stripe account is connected")
    );
    show(&browser, "#partner").await;
    screenshot(&browser, "04-partner").await;

    // Connect Stripe: the button leads to (the stand-in of) Stripe's onboarding.
    click_through(&browser, Locator::Id("connect-stripe")).await;
    let onboarding_url = browser.current_url().await.unwrap();
    assert!(
        onboarding_url.as_str().starts_with(&app.stripe.base_url),
        "{onboarding_url}"
    );
    let (_, account) = app
        .get("/v1/users/ana/stripe-account", Some(&app.platform_key))
        .await;
    let account_id = account["account_id"].as_str().unwrap().to_owned();
    assert_eq!(app.stripe.complete_onboarding(&account_id).await, Some(200));

    // Bo buys more; 30 days on Ana has $30.00 to withdraw. The payout job fails for good
    // while Stripe refuses our key.
    app.buy("pur-2", "bo", "300.00").await;
    app.advance(Days::days(30)).await;
    app.run_due_jobs().await;
    open_dashboard(&browser, &app, "ana").await;
    assert!(
        text_of(&browser, "#stripe-status")
            .await
            .contains("Payouts enabled")
    );
    assert_eq!(text_of(&browser, "#referral-balance").await, "$30.00");
    app.stop_worker().await;
    click_through(&browser, Locator::Id("request-payout")).await;
    assert!(page_text(&browser).await.contains("Payout requested"));
    assert!(text_of(&browser, "#payouts").await.contains("REQUESTED"));
    show(&browser, "#partner").await;
    screenshot(&browser, "05-payout-requested").await;
    app.exhaust("send_payout_transfer", "Stripe: invalid API key (401)")
        .await;
    app.start_worker();

    // The operator signs in to /ops, sees the failed job and retries it: the payout goes.
    browser.goto(&app.url("/ops")).await.unwrap();
    screenshot(&browser, "06-ops-sign-in").await;
    browser
        .find(Locator::Id("admin_key"))
        .await
        .unwrap()
        .send_keys(&app.admin_key)
        .await
        .unwrap();
    click_through(&browser, Locator::Id("sign-in")).await;
    let failed = text_of(&browser, "#failed-jobs").await;
    assert!(
        failed.contains("send_payout_transfer") && failed.contains("401"),
        "{failed}"
    );
    assert!(
        text_of(&browser, "#recent-payouts")
            .await
            .contains("REQUESTED")
    );
    screenshot(&browser, "07-ops-failed-job").await;
    click_through(&browser, Locator::Css("#failed-jobs button.retry")).await;
    assert!(page_text(&browser).await.contains("Job re-queued"));
    app.run_due_jobs().await;
    let processing = wait_until(Duration::from_secs(10), || async {
        let payouts = app.payouts("ana").await;
        (payouts[0]["status"] == "PROCESSING").then_some(())
    })
    .await;
    assert!(
        processing.is_some(),
        "the retried payout job sent the transfer"
    );
    browser.refresh().await.unwrap();
    assert!(
        text_of(&browser, "#recent-payouts")
            .await
            .contains("PROCESSING")
    );
    assert_eq!(app.stripe.transfers().len(), 1, "paid once");
    screenshot(&browser, "08-ops-after-retry").await;

    browser.close().await.unwrap();
}
