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

/// A refund about to be sent.
struct PlannedRefund {
    id: String,
    path: String,
    body: Value,
    /// Index of the purchase in the driver's list.
    purchase: usize,
    cents: i64,
}

#[derive(Debug, Clone)]
struct Purchase {
    id: String,
    cash_cents: i64,
    refunded_cents: i64,
}

/// The api as the platform reaches it: where, with which keys.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base_url: String,
    platform_key: String,
    admin_key: String,
}

impl Api {
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
}

pub struct Driver {
    rng: StdRng,
    seed: u64,
    api: Api,
    http: reqwest::Client,
    base_url: String,
    stripe: FakeStripe,
    /// Clock moves sent while the story goes on.
    clock_moves: Vec<tokio::task::JoinHandle<()>>,
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
            api: Api {
                http: booted.http.clone(),
                base_url: booted.base_url.clone(),
                platform_key: booted.platform_key.clone(),
                admin_key: booted.admin_key.clone(),
            },
            http: booted.http.clone(),
            base_url: booted.base_url.clone(),
            stripe: stripe.clone(),
            clock_moves: Vec::new(),
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
        for _ in 0..5 {
            self.new_referrer().await;
        }
        // Three Partners with Stripe connected, so that money leaves in every story, by
        // several payouts (the story upgrades and connects the others on its own).
        for _ in 0..3 {
            self.upgrade().await;
            self.connect().await;
        }
        self.customers_of_partners().await;
        for _ in 0..steps {
            let roll = self.rng.random_range(0..100);
            match roll {
                0..16 => self.click().await,
                16..29 => self.signup().await,
                29..47 => self.purchase().await,
                47..52 => self.refund().await,
                52..56 => self.refund_racing_the_hold().await,
                56..59 => self.spend().await,
                59..62 => self.upgrade().await,
                62..66 => self.connect().await,
                66..71 => self.request_payout().await,
                71..76 => self.payday().await,
                76..86 => {
                    let days = if self.rng.random_bool(0.5) {
                        31
                    } else {
                        self.rng.random_range(1..8)
                    };
                    self.advance_clock_meanwhile(days);
                }
                86..94 => self.settle_bank_payouts(false).await,
                _ => self.replay_or_forge_webhook().await?,
            }
            self.deliver_webhooks().await;
        }
        for clock_move in std::mem::take(&mut self.clock_moves) {
            let _ = clock_move.await;
        }
        Ok(())
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
            .api
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
            .api
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

    /// Each Partner brings two customers who buy at once: from the first month on, money
    /// waits to leave in every story.
    async fn customers_of_partners(&mut self) {
        let partners: Vec<String> = self
            .referrers
            .iter()
            .filter(|r| r.partner)
            .map(|r| r.code.clone())
            .collect();
        for code in partners {
            for _ in 0..2 {
                let id = self.next_name("buyer");
                if self
                    .create_user(&id, None, Some(code.clone()))
                    .await
                    .is_some()
                {
                    self.buyers.push(id.clone());
                    self.purchase_by(id, Some(600)).await;
                }
            }
        }
    }

    async fn purchase(&mut self) {
        if let Some(buyer) = self.pick_buyer() {
            self.purchase_by(buyer, None).await;
        }
    }

    /// A purchase by `buyer` of `dollars`, or of a random amount.
    async fn purchase_by(&mut self, buyer: String, dollars: Option<i64>) {
        let id = self.next_name("pur");
        let dollars =
            dollars.unwrap_or_else(|| [12, 50, 120, 300, 600, 900][self.rng.random_range(0..6)]);
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
            .api
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
        let Some(refund) = self.next_refund() else {
            return;
        };
        let answer = self
            .api
            .call(
                Method::POST,
                &refund.path,
                Some(refund.body.clone()),
                false,
                Repeat::Safe,
            )
            .await;
        self.refunded(refund, &answer);
    }

    /// A refund sent while the clock moves past a hold: the refund's job, the timer and
    /// the payment then race for the same commission.
    async fn refund_racing_the_hold(&mut self) {
        let Some(refund) = self.next_refund() else {
            return;
        };
        let (answer, _) = tokio::join!(
            self.api.call(
                Method::POST,
                &refund.path,
                Some(refund.body.clone()),
                false,
                Repeat::Safe
            ),
            self.api.call(
                Method::POST,
                "/v1/admin/dev/advance-clock",
                Some(json!({"days": 31})),
                true,
                Repeat::OnlyUnsent,
            ),
        );
        self.refunded(refund, &answer);
    }

    /// A refund of some of what is left of a random purchase, if any is left.
    fn next_refund(&mut self) -> Option<PlannedRefund> {
        if self.purchases.is_empty() {
            return None;
        }
        let index = self.rng.random_range(0..self.purchases.len());
        let left = self.purchases[index].cash_cents - self.purchases[index].refunded_cents;
        if left <= 0 {
            return None;
        }
        let cents = if self.rng.random_bool(0.5) {
            left
        } else {
            self.rng.random_range(1..=left)
        };
        let id = self.next_name("refund");
        let purchase = &self.purchases[index].id;
        Some(PlannedRefund {
            body: json!({"refund_id": id, "amount": format!("{}.{:02}", cents / 100, cents % 100), "currency": "USD"}),
            path: format!("/v1/purchases/{purchase}/refunds"),
            purchase: index,
            cents,
            id,
        })
    }

    fn refunded(&mut self, refund: PlannedRefund, answer: &Answer) {
        if let Answer::Done(_) = answer {
            self.purchases[refund.purchase].refunded_cents += refund.cents;
            self.acknowledge("refunds", refund.id);
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
            .api
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
                .api
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
            .api
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
            .api
            .call(Method::POST, &path, Some(json!({})), false, Repeat::Safe)
            .await
            && let Some(account) = onboarding["account_id"].as_str()
        {
            // The user finishes Stripe's forms: Stripe sends account.updated.
            let _ = self.stripe.complete_onboarding(account).await;
            self.referrers[index].connected = true;
        }
    }

    /// A payout of the whole balance; sometimes two or three at once, as a double click
    /// or two open tabs would send them: the balance pays one of them.
    async fn request_payout(&mut self) {
        if let Some(index) = self.pick_index(|r| r.connected) {
            self.request_payout_of(index).await;
        }
    }

    /// A month passes; every connected Partner then asks for their money.
    async fn payday(&mut self) {
        self.advance_clock(31).await;
        // Time for the timers and payments that the move made due.
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(100..800))).await;
        for index in 0..self.referrers.len() {
            if self.referrers[index].connected {
                self.request_payout_of(index).await;
            }
        }
    }

    async fn request_payout_of(&mut self, index: usize) {
        let id = self.referrers[index].id.clone();
        let path = format!("/v1/users/{id}/payouts");
        let at_once = if self.rng.random_bool(0.5) {
            self.rng.random_range(2..=3)
        } else {
            1
        };
        let request = || {
            self.api.call(
                Method::POST,
                &path,
                Some(json!({})),
                false,
                Repeat::OnlyUnsent,
            )
        };
        let answers = futures::future::join_all((0..at_once).map(|_| request())).await;
        for answer in answers {
            if let Answer::Done(payout) = answer
                && let Some(payout_id) = payout["payout_id"].as_str()
            {
                self.acknowledge("payouts", payout_id.to_owned());
            }
        }
    }

    /// Moves the installation's clock; not repeatable once it may have reached the api.
    pub async fn advance_clock(&mut self, days: u32) {
        let body = json!({"days": days});
        let _ = self
            .api
            .call(
                Method::POST,
                "/v1/admin/dev/advance-clock",
                Some(body),
                true,
                Repeat::OnlyUnsent,
            )
            .await;
    }

    /// Moves the clock while the story goes on: time passes under whatever the next
    /// steps do (and the api takes a while to answer a move).
    fn advance_clock_meanwhile(&mut self, days: u32) {
        let api = self.api.clone();
        self.clock_moves.push(tokio::spawn(async move {
            let body = json!({"days": days});
            let path = "/v1/admin/dev/advance-clock";
            let _ = api
                .call(Method::POST, path, Some(body), true, Repeat::OnlyUnsent)
                .await;
        }));
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
            // A job that failed for good waits for an operator: no wait will drain it.
            if left.iter().any(|w| w.ends_with(" failed")) {
                bail!("a job failed for good: {left:?}");
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
