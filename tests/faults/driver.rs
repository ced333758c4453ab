//! The driver: a random story from the seed, told through the public API as a platform
//! would, retrying as a careful client does, and remembering every write it saw
//! acknowledged. It also plays Stripe's part: users finishing onboarding, banks paying
//! out or refusing, webhooks delivered until acknowledged, replayed and forged.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::Rng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::Booted;
use crate::fake_stripe::FakeStripe;

/// What became of one request.
#[derive(Debug)]
enum Answer {
    /// 2xx: the write is acknowledged.
    Done(Value),
    /// The api answered with this refusal (4xx): nothing was written.
    Refused(u16, Value),
    /// No answer the driver can trust (connection lost, timeout, 5xx after retries).
    Unknown,
}

/// Whether repeating a request is safe when its first try may have been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// The body names the write (user id, purchase id, refund id, spend reference):
    /// repeating it answers the first answer.
    Safe,
    /// Repeat only a try that never reached the api (connection refused).
    OnlyUnsent,
}

#[derive(Debug, Clone)]
struct Referrer {
    id: String,
    code: String,
    partner: bool,
    connected: bool,
}

#[derive(Debug, Clone)]
struct Purchase {
    id: String,
    cash_cents: i64,
    refunded_cents: i64,
}

pub struct Driver {
    rng: StdRng,
    seed: u64,
    http: reqwest::Client,
    base_url: String,
    platform_key: String,
    admin_key: String,
    stripe: FakeStripe,
    agreement: Option<(String, String)>,
    referrers: Vec<Referrer>,
    buyers: Vec<String>,
    purchases: Vec<Purchase>,
    fresh_clicks: Vec<String>,
    delivered_events: HashSet<String>,
    settled_bank_payouts: HashSet<String>,
    sequence: u32,
    /// Writes seen acknowledged, by kind, with the id to look for.
    pub acknowledged: BTreeMap<&'static str, Vec<String>>,
}

impl Driver {
    /// A driver of the services `booted`, playing Stripe's part through `stripe`.
    pub fn new(rng: StdRng, seed: u64, booted: &Booted, stripe: &FakeStripe) -> Self {
        Self {
            rng,
            seed,
            http: booted.http.clone(),
            base_url: booted.base_url.clone(),
            platform_key: booted.platform_key.clone(),
            admin_key: booted.admin_key.clone(),
            stripe: stripe.clone(),
            agreement: None,
            referrers: Vec::new(),
            buyers: Vec::new(),
            purchases: Vec::new(),
            fresh_clicks: Vec::new(),
            delivered_events: HashSet::new(),
            settled_bank_payouts: HashSet::new(),
            sequence: 0,
            acknowledged: BTreeMap::new(),
        }
    }

    pub fn acknowledged_counts(&self) -> BTreeMap<&'static str, usize> {
        self.acknowledged
            .iter()
            .map(|(kind, ids)| (*kind, ids.len()))
            .collect()
    }

    fn acknowledge(&mut self, kind: &'static str, id: String) {
        self.acknowledged.entry(kind).or_default().push(id);
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.sequence += 1;
        format!("{prefix}{}-s{}", self.sequence, self.seed)
    }

    /// Plays `steps` random steps after a few referrers exist.
    pub async fn play(&mut self, steps: usize) -> anyhow::Result<()> {
        for _ in 0..3 {
            self.new_referrer().await;
        }
        // Two Partners, one of them with Stripe connected, so that payouts have a chance
        // to happen in every story (the story upgrades and connects others on its own).
        self.upgrade().await;
        self.upgrade().await;
        self.connect().await;
        for _ in 0..steps {
            let roll = self.rng.random_range(0..100);
            match roll {
                0..18 => self.click().await,
                18..32 => self.signup().await,
                32..52 => self.purchase().await,
                52..58 => self.refund().await,
                58..62 => self.spend().await,
                62..66 => self.upgrade().await,
                66..71 => self.connect().await,
                71..79 => self.request_payout().await,
                79..88 => {
                    let days = if self.rng.random_bool(0.3) {
                        31
                    } else {
                        self.rng.random_range(1..8)
                    };
                    self.advance_clock(days).await;
                }
                88..95 => self.settle_bank_payouts(false).await,
                _ => self.replay_or_forge_webhook().await?,
            }
            self.deliver_webhooks().await;
        }
        Ok(())
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        admin: bool,
        repeat: Repeat,
    ) -> Answer {
        let key = if admin {
            &self.admin_key
        } else {
            &self.platform_key
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let retry = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let value = response.json::<Value>().await.unwrap_or(Value::Null);
                    match status {
                        200..=299 => return Answer::Done(value),
                        400..=499 => return Answer::Refused(status, value),
                        _ => repeat == Repeat::Safe,
                    }
                }
                Err(error) if error.is_connect() => true,
                Err(_) => repeat == Repeat::Safe,
            };
            if !retry || tokio::time::Instant::now() >= deadline {
                return Answer::Unknown;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn new_referrer(&mut self) {
        let id = self.next_name("ref");
        if let Some(user) = self.create_user(&id, None, None).await {
            let code = user["user"]["referral_code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.referrers.push(Referrer {
                id,
                code,
                partner: false,
                connected: false,
            });
        }
    }

    async fn create_user(
        &mut self,
        id: &str,
        click: Option<String>,
        code: Option<String>,
    ) -> Option<Value> {
        let mut body = json!({"user_id": id, "email": format!("{id}@example.com")});
        if let Some(click) = click {
            body["click_id"] = json!(click);
        }
        if let Some(code) = code {
            body["referral_code"] = json!(code);
        }
        match self
            .call(Method::POST, "/v1/users", Some(body), false, Repeat::Safe)
            .await
        {
            Answer::Done(user) => {
                self.acknowledge("users", id.to_owned());
                Some(user)
            }
            // A repeat of a signup that went through the first time.
            Answer::Refused(409, _) => self.get_user(id).await,
            _ => None,
        }
    }

    async fn get_user(&self, id: &str) -> Option<Value> {
        match self
            .call(
                Method::GET,
                &format!("/v1/users/{id}"),
                None,
                false,
                Repeat::Safe,
            )
            .await
        {
            Answer::Done(user) => Some(json!({ "user": user })),
            _ => None,
        }
    }

    async fn click(&mut self) {
        let Some(referrer) = self.pick_referrer() else {
            return;
        };
        let url = format!("{}/r/{}", self.base_url, referrer.code);
        for _ in 0..100 {
            match self.http.get(&url).send().await {
                Ok(response) if response.status().is_redirection() => {
                    let click = response
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(|c| c.strip_prefix("ref_click="))
                        .and_then(|c| c.split(';').next())
                        .map(str::to_owned);
                    if let Some(click) = click {
                        self.acknowledge("clicks", click.clone());
                        self.fresh_clicks.push(click);
                    }
                    return;
                }
                Err(error) if error.is_connect() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => return,
            }
        }
    }

    async fn signup(&mut self) {
        let id = self.next_name("buyer");
        let (click, code) = match self.rng.random_range(0..10) {
            0..7 if !self.fresh_clicks.is_empty() => {
                let index = self.rng.random_range(0..self.fresh_clicks.len());
                (Some(self.fresh_clicks.swap_remove(index)), None)
            }
            0..9 => (None, self.pick_referrer().map(|r| r.code)),
            _ => (None, None),
        };
        if self.create_user(&id, click, code).await.is_some() {
            self.buyers.push(id);
        }
    }

    async fn purchase(&mut self) {
        let Some(buyer) = self.pick_buyer() else {
            return;
        };
        let id = self.next_name("pur");
        let dollars = [12, 50, 120, 300, 600, 900][self.rng.random_range(0..6)];
        let credit = self.rng.random_bool(0.25);
        let succeeded = self.rng.random_bool(0.9);
        let mut body = json!({
            "purchase_id": id, "user_id": buyer, "amount": format!("{dollars}.00"),
            "currency": "USD", "outcome": if succeeded { "succeeded" } else { "failed" },
            "plan": "pro",
        });
        if credit {
            body["credit_applied"] = json!("1.00");
        }
        if let Answer::Done(_) = self
            .call(
                Method::POST,
                "/v1/purchases",
                Some(body),
                false,
                Repeat::Safe,
            )
            .await
        {
            self.acknowledge("purchases", id.clone());
            if succeeded {
                let cash_cents = dollars * 100 - if credit { 100 } else { 0 };
                self.purchases.push(Purchase {
                    id,
                    cash_cents,
                    refunded_cents: 0,
                });
            }
        }
    }

    async fn refund(&mut self) {
        if self.purchases.is_empty() {
            return;
        }
        let index = self.rng.random_range(0..self.purchases.len());
        let left = self.purchases[index].cash_cents - self.purchases[index].refunded_cents;
        if left <= 0 {
            return;
        }
        let cents = if self.rng.random_bool(0.5) {
            left
        } else {
            self.rng.random_range(1..=left)
        };
        let refund_id = self.next_name("refund");
        let purchase = self.purchases[index].id.clone();
        let body = json!({"refund_id": refund_id, "amount": format!("{}.{:02}", cents / 100, cents % 100), "currency": "USD"});
        let path = format!("/v1/purchases/{purchase}/refunds");
        if let Answer::Done(_) = self
            .call(Method::POST, &path, Some(body), false, Repeat::Safe)
            .await
        {
            self.purchases[index].refunded_cents += cents;
            self.acknowledge("refunds", refund_id);
        }
    }

    async fn spend(&mut self) {
        let Some(buyer) = self.pick_buyer() else {
            return;
        };
        let reference = self.next_name("spend");
        let body = json!({"amount": "0.50", "currency": "USD", "reference": reference});
        let path = format!("/v1/users/{buyer}/wallet/spend");
        if let Answer::Done(_) = self
            .call(Method::POST, &path, Some(body), false, Repeat::Safe)
            .await
        {
            self.acknowledge("credit spends", reference);
        }
    }

    async fn upgrade(&mut self) {
        let Some(index) = self.pick_index(|r| !r.partner) else {
            return;
        };
        if self.agreement.is_none()
            && let Answer::Done(agreement) = self
                .call(
                    Method::GET,
                    "/v1/partner-agreement",
                    None,
                    false,
                    Repeat::Safe,
                )
                .await
        {
            self.agreement = Some((
                agreement["version"].as_str().unwrap_or_default().to_owned(),
                agreement["sha256"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        let Some((version, sha256)) = self.agreement.clone() else {
            return;
        };
        let id = self.referrers[index].id.clone();
        let body = json!({"agreement_version": version, "agreement_sha256": sha256, "full_name": "Fault Suite"});
        match self
            .call(
                Method::POST,
                &format!("/v1/users/{id}/partner"),
                Some(body),
                false,
                Repeat::Safe,
            )
            .await
        {
            Answer::Done(_) => {
                self.acknowledge("partner upgrades", id);
                self.referrers[index].partner = true;
            }
            Answer::Refused(409, error) if error["code"] == "ALREADY_PARTNER" => {
                self.referrers[index].partner = true;
            }
            _ => {}
        }
    }

    async fn connect(&mut self) {
        let Some(index) = self.pick_index(|r| r.partner && !r.connected) else {
            return;
        };
        let id = self.referrers[index].id.clone();
        let path = format!("/v1/users/{id}/stripe-account");
        if let Answer::Done(onboarding) = self
            .call(Method::POST, &path, Some(json!({})), false, Repeat::Safe)
            .await
            && let Some(account) = onboarding["account_id"].as_str()
        {
            // The user finishes Stripe's forms: Stripe sends account.updated.
            let _ = self.stripe.complete_onboarding(account).await;
            self.referrers[index].connected = true;
        }
    }

    async fn request_payout(&mut self) {
        let Some(index) = self.pick_index(|r| r.connected) else {
            return;
        };
        let id = self.referrers[index].id.clone();
        let path = format!("/v1/users/{id}/payouts");
        if let Answer::Done(payout) = self
            .call(
                Method::POST,
                &path,
                Some(json!({})),
                false,
                Repeat::OnlyUnsent,
            )
            .await
            && let Some(payout_id) = payout["payout_id"].as_str()
        {
            self.acknowledge("payouts", payout_id.to_owned());
        }
    }

    /// Moves the installation's clock; not repeatable once it may have reached the api.
    pub async fn advance_clock(&mut self, days: u32) {
        let body = json!({"days": days});
        let _ = self
            .call(
                Method::POST,
                "/v1/admin/dev/advance-clock",
                Some(body),
                true,
                Repeat::OnlyUnsent,
            )
            .await;
    }

    /// The banks answer every Stripe payout not yet settled: most are paid, some
    /// refused; `all_paid` pays every one (draining).
    async fn settle_bank_payouts(&mut self, all_paid: bool) {
        for payout in self.stripe.bank_payouts() {
            let Some(po) = payout["id"].as_str() else {
                continue;
            };
            if self.settled_bank_payouts.contains(po) {
                continue;
            }
            let _ = if all_paid || self.rng.random_bool(0.85) {
                self.stripe.pay_out_quietly(po)
            } else {
                self.stripe
                    .fail_payout_quietly(po, "The bank account has been closed.")
            };
            self.settled_bank_payouts.insert(po.to_owned());
        }
    }

    /// Stripe's side of webhooks: every event is sent until a 2xx comes back.
    async fn deliver_webhooks(&mut self) {
        for event in self.stripe.events() {
            let Some(id) = event["id"].as_str() else {
                continue;
            };
            if self.delivered_events.contains(id) {
                continue;
            }
            if let Some(200..=299) = self.stripe.deliver(&event).await {
                self.delivered_events.insert(id.to_owned());
            }
        }
    }

    /// A delivered event sent again (Stripe does), or one with a forged signature: either
    /// must change nothing; a forged one must be refused.
    async fn replay_or_forge_webhook(&mut self) -> anyhow::Result<()> {
        let events = self.stripe.events();
        let delivered: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["id"]
                    .as_str()
                    .is_some_and(|id| self.delivered_events.contains(id))
            })
            .collect();
        let Some(event) = self.pick(&delivered).cloned() else {
            return Ok(());
        };
        if self.rng.random_bool(0.5) {
            let _ = self.stripe.deliver(event).await;
            return Ok(());
        }
        let body = serde_json::to_vec(event)?;
        let forged = format!(
            "t={},v1={}",
            referral_core::Clock::now(&referral_core::SystemClock).timestamp(),
            "0".repeat(64)
        );
        match self
            .http
            .post(format!("{}/v1/stripe/webhook", self.base_url))
            .header("content-type", "application/json")
            .header("stripe-signature", forged)
            .body(body)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => {
                bail!(
                    "a webhook with a forged signature was accepted ({})",
                    response.status()
                )
            }
            _ => Ok(()),
        }
    }

    /// After the faults: the clock moves past every due time and Stripe settles
    /// everything, until no work is left or a minute passes.
    pub async fn drain(&mut self, pool: &PgPool) -> anyhow::Result<()> {
        self.advance_clock(400).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            self.settle_bank_payouts(true).await;
            self.deliver_webhooks().await;
            // Timers set during the drain (credit expiry of a late grant) and retries
            // waiting out their backoff are brought forward rather than waited for.
            let left = work_left(pool).await?;
            let waiting = left.iter().any(|w| w.ends_with(" scheduled"));
            self.advance_clock(if waiting { 40 } else { 0 }).await;
            let undelivered = self.stripe.events().len() > self.delivered_events.len();
            if left.is_empty() && !undelivered {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("after 90 s still: {left:?}; webhooks undelivered: {undelivered}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn pick_buyer(&mut self) -> Option<String> {
        let buyers = self.buyers.clone();
        self.pick(&buyers).cloned()
    }

    fn pick_referrer(&mut self) -> Option<Referrer> {
        let referrers = self.referrers.clone();
        self.pick(&referrers).cloned()
    }

    fn pick_index(&mut self, filter: impl Fn(&Referrer) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.referrers.len())
            .filter(|&i| filter(&self.referrers[i]))
            .collect();
        self.pick(&candidates).copied()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.rng.random_range(0..items.len())])
        }
    }
}

/// What still waits: jobs not finished (other than the next reconciliation sweep), and
/// payouts not settled.
async fn work_left(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let jobs: Vec<(String, String, i64)> = sqlx::query_as(
        "select s.state, j.job_type, count(*) from apalis.jobs j join job_states s on s.id = j.id
         where s.state in ('pending', 'running', 'failed')
            or (s.state = 'scheduled' and j.job_type <> 'reconcile')
         group by 1, 2",
    )
    .fetch_all(pool)
    .await
    .context("read the queues")?;
    let payouts: Vec<(String, i64)> = sqlx::query_as(
        "select status, count(*) from payouts where status in ('REQUESTED', 'PROCESSING') group by 1",
    )
    .fetch_all(pool)
    .await
    .context("read the payouts")?;
    Ok(jobs
        .into_iter()
        .map(|(state, job, n)| format!("{n} {job} job(s) {state}"))
        .chain(
            payouts
                .into_iter()
                .map(|(status, n)| format!("{n} payout(s) {status}")),
        )
        .collect())
}
