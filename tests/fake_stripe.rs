//! A local stand-in for the parts of Stripe this engine uses: Connect accounts and their
//! onboarding links, transfers, payouts from a connected account, and signed webhooks.
//!
//! Stripe cannot be reached from CI, and the available fakes lack Connect. This one
//! keeps state, answers with Stripe's shapes (ids, error JSON), replays an idempotency
//! key's first answer as Stripe does (and refuses the key with other parameters), and
//! records every request so a test can assert on its path, form body, `Idempotency-Key`
//! and `Stripe-Account`. Tests and people drive what Stripe would do on its own (a user
//! finishing onboarding, the bank paying out or refusing) through `/_fake/...` routes or
//! the methods below.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use poem::http::{Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::{Body, Request, Response, Server};
use referral_core::domain::stripe_signature;
use referral_core::{Clock, SystemClock};
use serde_json::{Value, json};

/// One request as the stand-in received it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded form fields, in the order sent.
    pub form: Vec<(String, String)>,
    /// `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// `Stripe-Account`, if sent.
    pub stripe_account: Option<String>,
    /// Status answered.
    pub status: u16,
    /// Whether the answer repeated an earlier one of the same key.
    pub replayed: bool,
}

impl Recorded {
    /// A form field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Clone)]
struct Account {
    json: Value,
    return_url: Option<String>,
    closed: bool,
    balance: i64,
}

#[derive(Debug, Clone)]
struct Fault {
    path_prefix: String,
    status: u16,
    remaining: u32,
}

/// A stretch of time in which the stand-in misbehaves as Stripe sometimes does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Every API request fails with a 500 before doing anything.
    Down,
    /// Every API request is carried out, and its answer held back this long (longer than
    /// the client's timeout: the caller never learns that it worked).
    Slow(std::time::Duration),
}

/// A fault aimed at the next request that moves money: a transfer, a bank payout or a
/// transfer reversal, the first time it is carried out (replays are not aimed at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aimed {
    /// Carried out, and its answer held this long (past the client's timeout: the
    /// caller never learns the money moved).
    TimeOut(std::time::Duration),
    /// Carried out, [`FakeStripe::money_moving`]'s listener told, and the answer held
    /// this long: the listener kills the caller or crashes its database meanwhile.
    Signal(std::time::Duration),
}

impl Aimed {
    fn hold(self) -> std::time::Duration {
        match self {
            Aimed::TimeOut(hold) | Aimed::Signal(hold) => hold,
        }
    }
}

#[derive(Default)]
struct State {
    /// Set at start, so ids stay unique across restarts of the stand-in, as Stripe's are
    /// (a local database outlives the stand-in process).
    epoch: String,
    sequence: u64,
    accounts: HashMap<String, Account>,
    transfers: Vec<Value>,
    payouts: HashMap<String, Value>,
    idempotency: HashMap<String, (String, u16, Value)>,
    requests: Vec<Recorded>,
    faults: Vec<Fault>,
    outage: Option<(Outage, std::time::Instant)>,
    /// A deliberately broken Stripe that treats every request as new, to prove the fault
    /// suite notices money moved twice.
    forget_idempotency: bool,
    aimed: Option<Aimed>,
    money_moving: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    /// Aimed faults that struck, by kind.
    aimed_struck: HashMap<&'static str, u32>,
    webhook: Option<(String, String)>,
    events: Vec<Value>,
}

impl State {
    /// Strikes the aimed fault, if one is armed; answers how long to hold the answer.
    fn strike_aimed(&mut self) -> Option<std::time::Duration> {
        let aimed = self.aimed.take()?;
        let kind = match aimed {
            Aimed::TimeOut(_) => "aimed: stripe times out moving money",
            Aimed::Signal(_) => {
                if let Some(listener) = &self.money_moving {
                    let _ = listener.send(());
                }
                "aimed: signalled as stripe moves money"
            }
        };
        *self.aimed_struck.entry(kind).or_default() += 1;
        Some(aimed.hold())
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.sequence += 1;
        format!("{prefix}_fake{}{:04}", self.epoch, self.sequence)
    }

    /// A new event, recorded.
    fn event(&mut self, event_type: &str, object: Value, account: Option<String>) -> Value {
        let id = self.next_id("evt");
        let mut event = json!({
            "id": id, "object": "event", "type": event_type, "api_version": "2026-09-30.endive",
            "created": SystemClock.now().timestamp(), "livemode": false, "pending_webhooks": 1,
            "data": {"object": object}
        });
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        self.events.push(event.clone());
        event
    }
}

/// The running stand-in.
#[derive(Clone)]
pub struct FakeStripe {
    /// Its base URL, e.g. `http://127.0.0.1:41234/`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

/// Whether a request moves money: a transfer, a payout to a bank, a transfer reversal.
fn moves_money(method: &Method, path: &str) -> bool {
    method == Method::POST
        && (path == "/v1/transfers" || path == "/v1/payouts" || path.ends_with("/reversals"))
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> (u16, Value) {
    let mut body = json!({"type": kind, "message": message});
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    (status, json!({ "error": body }))
}

impl FakeStripe {
    /// Starts on `listener` (bound, non-blocking) and serves until the process ends.
    pub fn serve(listener: std::net::TcpListener) -> std::io::Result<Self> {
        let base_url = format!("http://{}/", listener.local_addr()?);
        let fake = Self {
            base_url,
            state: Arc::new(Mutex::new(State {
                epoch: format!("{:x}", SystemClock.now().timestamp_millis()),
                ..State::default()
            })),
        };
        let served = fake.clone();
        let endpoint = poem::endpoint::make(move |request: Request| {
            let fake = served.clone();
            async move { fake.answer(request).await }
        });
        let acceptor = TcpAcceptor::from_std(listener)?;
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Ok(fake)
    }

    /// Starts on a free local port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake stripe");
        listener.set_nonblocking(true).expect("non-blocking");
        Self::serve(listener).expect("serve fake stripe")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where signed events go, and the secret that signs them.
    pub fn send_webhooks_to(&self, url: &str, secret: &str) {
        self.state().webhook = Some((url.to_owned(), secret.to_owned()));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Requests to `path` (exact) with `method`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Transfers created (not replays), as Stripe holds them.
    pub fn transfers(&self) -> Vec<Value> {
        self.state().transfers.clone()
    }

    /// Payouts to banks created (not replays).
    pub fn bank_payouts(&self) -> Vec<Value> {
        self.state().payouts.values().cloned().collect()
    }

    /// The next `times` requests whose path starts with `path_prefix` fail with `status`
    /// before doing anything (as an outage would).
    pub fn fail_next(&self, path_prefix: &str, status: u16, times: u32) {
        self.state().faults.push(Fault {
            path_prefix: path_prefix.to_owned(),
            status,
            remaining: times,
        });
    }

    /// Misbehaves as `outage` says until `until`.
    pub fn outage(&self, outage: Outage, until: std::time::Instant) {
        self.state().outage = Some((outage, until));
    }

    /// With `true`, from now on every request is carried out as new, whatever its
    /// `Idempotency-Key` (Stripe never does this: it checks that the fault suite would
    /// notice); `false` is Stripe again.
    pub fn forget_idempotency_keys(&self, forget: bool) {
        self.state().forget_idempotency = forget;
    }

    /// Aims `aimed` at the next request that moves money (replacing one not yet struck).
    pub fn aim(&self, aimed: Aimed) {
        self.state().aimed = Some(aimed);
    }

    /// Whether a fault is aimed and has not struck yet.
    pub fn is_aimed(&self) -> bool {
        self.state().aimed.is_some()
    }

    /// A channel told each time an [`Aimed::Signal`] strikes, while the answer is held.
    pub fn money_moving(&self) -> tokio::sync::mpsc::UnboundedReceiver<()> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.state().money_moving = Some(tx);
        rx
    }

    /// The aimed faults that struck since the last reset, by kind.
    pub fn aimed_struck(&self) -> HashMap<&'static str, u32> {
        self.state().aimed_struck.clone()
    }

    /// Forgets every account, transfer, payout, event, recorded request and fault, as a
    /// new Stripe account would have none (ids stay unique; the webhook target stays).
    pub fn reset(&self) {
        let mut state = self.state();
        let kept = State {
            epoch: state.epoch.clone(),
            sequence: state.sequence,
            webhook: state.webhook.clone(),
            forget_idempotency: state.forget_idempotency,
            money_moving: state.money_moving.clone(),
            ..State::default()
        };
        *state = kept;
    }

    /// Every event built so far (sent or not), oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.state().events.clone()
    }

    /// The account is closed: transfers to it are refused for good.
    pub fn close_account(&self, account_id: &str) {
        if let Some(account) = self.state().accounts.get_mut(account_id) {
            account.closed = true;
        }
    }

    /// The connected account's available balance, in cents, becomes `cents`: the user
    /// spent what was there, or topped it up.
    pub fn set_balance(&self, account_id: &str, cents: i64) {
        if let Some(account) = self.state().accounts.get_mut(account_id) {
            account.balance = cents;
        }
    }

    /// What a user finishing onboarding does: Stripe enables payouts, nothing is due,
    /// and `account.updated` is sent. Returns the webhook's HTTP status.
    pub async fn complete_onboarding(&self, account_id: &str) -> Option<u16> {
        let account = {
            let mut state = self.state();
            let account = state.accounts.get_mut(account_id)?;
            account.json["payouts_enabled"] = json!(true);
            account.json["charges_enabled"] = json!(true);
            account.json["details_submitted"] = json!(true);
            account.json["requirements"] = json!({
                "currently_due": [], "past_due": [], "eventually_due": [], "disabled_reason": null
            });
            account.json.clone()
        };
        self.emit("account.updated", account, None).await
    }

    /// The bank paid the Stripe payout `po_id` out: sends `payout.paid`.
    pub async fn pay_out(&self, po_id: &str) -> Option<u16> {
        self.settle_payout(po_id, "paid", None).await
    }

    /// The bank refused the Stripe payout `po_id`: sends `payout.failed`.
    pub async fn fail_payout(&self, po_id: &str, message: &str) -> Option<u16> {
        self.settle_payout(po_id, "failed", Some(message)).await
    }

    async fn settle_payout(&self, po_id: &str, status: &str, failure: Option<&str>) -> Option<u16> {
        let event = self.settle_payout_quietly(po_id, status, failure)?;
        self.deliver(&event).await
    }

    /// The bank paid the Stripe payout `po_id`, and the `payout.paid` event is returned,
    /// not sent (a webhook lost on the way).
    pub fn pay_out_quietly(&self, po_id: &str) -> Option<Value> {
        self.settle_payout_quietly(po_id, "paid", None)
    }

    /// The bank refused the Stripe payout `po_id`: its money is back in the connected
    /// account, and the `payout.failed` event is returned, not sent.
    pub fn fail_payout_quietly(&self, po_id: &str, message: &str) -> Option<Value> {
        self.settle_payout_quietly(po_id, "failed", Some(message))
    }

    fn settle_payout_quietly(
        &self,
        po_id: &str,
        status: &str,
        failure: Option<&str>,
    ) -> Option<Value> {
        let mut state = self.state();
        let payout = state.payouts.get_mut(po_id)?;
        payout["status"] = json!(status);
        if let Some(message) = failure {
            payout["failure_code"] = json!("account_closed");
            payout["failure_message"] = json!(message);
        }
        let payout = payout.clone();
        let account = payout["destination_account"].as_str().map(str::to_owned);
        if failure.is_some()
            && let Some(account) = account.as_ref().and_then(|a| state.accounts.get_mut(a))
        {
            account.balance += payout["amount"].as_i64().unwrap_or(0);
        }
        Some(state.event(&format!("payout.{status}"), payout, account))
    }

    /// The last event the stand-in built, as sent.
    pub fn last_event(&self) -> Option<Value> {
        self.state().events.last().cloned()
    }

    /// Builds, records and delivers an event; returns the webhook's status.
    pub async fn emit(
        &self,
        event_type: &str,
        object: Value,
        account: Option<String>,
    ) -> Option<u16> {
        let event = self.state().event(event_type, object, account);
        self.deliver(&event).await
    }

    /// Delivers `event` (again, or tampered) signed with the configured secret.
    pub async fn deliver(&self, event: &Value) -> Option<u16> {
        let (url, secret) = self.state().webhook.clone()?;
        let body = serde_json::to_vec(event).ok()?;
        let signature =
            stripe_signature::sign(secret.as_bytes(), SystemClock.now().timestamp(), &body);
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        tracing::info!(event_type = %event["type"], status, "webhook delivered");
        Some(status)
    }

    async fn answer(&self, request: Request) -> Response {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let idempotency_key = header("idempotency-key");
        let stripe_account = header("stripe-account");
        let authorized = header("authorization").is_some_and(|a| a.starts_with("Bearer sk_"));
        let mut request = request;
        let body = request.take_body().into_bytes().await.unwrap_or_default();
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();

        if path.starts_with("/_fake/") || path.starts_with("/connect/") {
            return self.control(&method, &path).await;
        }
        let mut aimed_hold = None;
        let (status, value, replayed, hold) = {
            let mut state = self.state();
            let outage = state
                .outage
                .filter(|(_, until)| std::time::Instant::now() < *until)
                .map(|(outage, _)| outage);
            let fault = state
                .faults
                .iter_mut()
                .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix));
            let (status, value, replayed) = if outage == Some(Outage::Down) {
                let (status, value) = error(500, "api_error", None, "the stand-in is down");
                (status, value, false)
            } else if let Some(fault) = fault {
                fault.remaining -= 1;
                let (status, value) = error(
                    fault.status,
                    "api_error",
                    None,
                    "the stand-in is failing on purpose",
                );
                (status, value, false)
            } else if !authorized {
                let (status, value) = error(
                    401,
                    "invalid_request_error",
                    None,
                    "Invalid API Key provided",
                );
                (status, value, false)
            } else {
                let fingerprint = format!("{method} {path} {}", String::from_utf8_lossy(&body));
                match idempotency_key
                    .as_ref()
                    .filter(|_| !state.forget_idempotency)
                    .and_then(|key| state.idempotency.get(key).cloned())
                {
                    Some((first, status, value)) if first == fingerprint => (status, value, true),
                    Some(_) => {
                        let (status, value) = error(
                            400,
                            "idempotency_error",
                            None,
                            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                        );
                        (status, value, false)
                    }
                    None => {
                        let (status, value) = route(
                            &mut state,
                            &method,
                            &path,
                            &form,
                            stripe_account.as_deref(),
                            &self.base_url,
                        );
                        if moves_money(&method, &path) && (200..300).contains(&status) {
                            aimed_hold = state.strike_aimed();
                        }
                        if let Some(key) = &idempotency_key {
                            state
                                .idempotency
                                .insert(key.clone(), (fingerprint, status, value.clone()));
                        }
                        (status, value, false)
                    }
                }
            };
            state.requests.push(Recorded {
                method: method.to_string(),
                path: path.clone(),
                form,
                idempotency_key,
                stripe_account,
                status,
                replayed,
            });
            let hold = match outage {
                Some(Outage::Slow(hold)) => Some(hold),
                _ => None,
            }
            .or(aimed_hold);
            (status, value, replayed, hold)
        };
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
        }
        tracing::info!(%method, %path, status, replayed, "stripe request");
        let mut response = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .content_type("application/json");
        if replayed {
            response = response.header("Idempotent-Replayed", "true");
        }
        response.body(Body::from_json(value).unwrap_or_default())
    }

    async fn control(&self, method: &Method, path: &str) -> Response {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let json_response = |status: u16, value: Value| {
            Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .content_type("application/json")
                .body(Body::from_json(value).unwrap_or_default())
        };
        match (method.as_str(), parts.as_slice()) {
            // The page an onboarding link opens: as if the user filled in Stripe's forms.
            ("GET", ["connect", "onboarding", account_id]) => {
                let return_url = self
                    .state()
                    .accounts
                    .get(*account_id)
                    .and_then(|a| a.return_url.clone());
                match self.complete_onboarding(account_id).await {
                    None if return_url.is_none() => {
                        json_response(404, json!({"error": "no such account"}))
                    }
                    delivered => Response::builder()
                        .content_type("text/html; charset=utf-8")
                        .body(format!(
                            "<!doctype html><title>Stripe onboarding (local stand-in)</title>\
                         <p>Onboarding of {account_id} is complete: payouts are enabled. \
                         (account.updated webhook: {})</p>\
                         <p><a href=\"{}\">Back to the platform</a></p>",
                            delivered.map_or("not delivered".to_owned(), |status| format!(
                                "answered {status}"
                            )),
                            return_url.unwrap_or_default()
                        )),
                }
            }
            ("GET", ["_fake", "requests"]) => json_response(200, json!(self.requests())),
            ("POST", ["_fake", "payouts", po_id, "paid"]) => {
                let status = self.pay_out(po_id).await;
                json_response(
                    if status.is_some() { 200 } else { 404 },
                    json!({"webhook_status": status}),
                )
            }
            ("POST", ["_fake", "payouts", po_id, "failed"]) => {
                let status = self
                    .fail_payout(po_id, "The bank account has been closed")
                    .await;
                json_response(
                    if status.is_some() { 200 } else { 404 },
                    json!({"webhook_status": status}),
                )
            }
            _ => json_response(404, json!({"error": "unknown stand-in route"})),
        }
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn metadata(form: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key.to_owned(), json!(v)))
        })
        .collect();
    Value::Object(map)
}

fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    form: &[(String, String)],
    stripe_account: Option<&str>,
    base_url: &str,
) -> (u16, Value) {
    let now = SystemClock.now().timestamp();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "accounts"]) => {
            if field(form, "type") != Some("express") {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_missing"),
                    "type must be express here",
                );
            }
            let id = state.next_id("acct");
            let json = json!({
                "id": id, "object": "account", "type": "express", "created": now,
                "email": field(form, "email"), "metadata": metadata(form),
                "charges_enabled": false, "payouts_enabled": false, "details_submitted": false,
                "capabilities": {"transfers": if field(form, "capabilities[transfers][requested]") == Some("true") { "inactive" } else { "unrequested" }},
                "requirements": {
                    "currently_due": ["external_account", "individual.first_name", "tos_acceptance.date"],
                    "past_due": [], "eventually_due": [], "disabled_reason": "requirements.past_due"
                }
            });
            state.accounts.insert(
                id,
                Account {
                    json: json.clone(),
                    return_url: None,
                    closed: false,
                    balance: 0,
                },
            );
            (200, json)
        }
        ("GET", ["v1", "accounts", id]) => match state.accounts.get(*id) {
            Some(account) => (200, account.json.clone()),
            None => error(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                "No such account",
            ),
        },
        ("POST", ["v1", "account_links"]) => {
            let Some(account_id) = field(form, "account") else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_missing"),
                    "Missing required param: account.",
                );
            };
            let Some(account) = state.accounts.get_mut(account_id) else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    "No such account",
                );
            };
            account.return_url = field(form, "return_url").map(str::to_owned);
            (
                200,
                json!({
                    "object": "account_link", "created": now, "expires_at": now + 300,
                    "url": format!("{base_url}connect/onboarding/{account_id}")
                }),
            )
        }
        ("POST", ["v1", "transfers"]) => {
            let amount: i64 = field(form, "amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let destination = field(form, "destination").unwrap_or_default().to_owned();
            if amount <= 0 || field(form, "currency") != Some("usd") {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    "amount and currency=usd are required",
                );
            }
            let Some(account) = state.accounts.get_mut(&destination) else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    "No such destination",
                );
            };
            if account.closed {
                return error(
                    400,
                    "invalid_request_error",
                    Some("account_invalid"),
                    "The destination account is closed.",
                );
            }
            account.balance += amount;
            let id = state.next_id("tr");
            let transfer = json!({
                "id": id, "object": "transfer", "amount": amount, "amount_reversed": 0, "created": now,
                "currency": "usd", "destination": destination, "livemode": false,
                "metadata": metadata(form), "reversed": false,
                "reversals": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/transfers/{id}/reversals")}
            });
            state.transfers.push(transfer.clone());
            (200, transfer)
        }
        ("POST", ["v1", "transfers", transfer_id, "reversals"]) => {
            let Some(index) = state
                .transfers
                .iter()
                .position(|t| t["id"] == json!(transfer_id))
            else {
                return error(
                    404,
                    "invalid_request_error",
                    Some("resource_missing"),
                    "No such transfer",
                );
            };
            let transfer = state.transfers[index].clone();
            let left = transfer["amount"].as_i64().unwrap_or(0)
                - transfer["amount_reversed"].as_i64().unwrap_or(0);
            let amount: i64 = field(form, "amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(left);
            let destination = transfer["destination"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let Some(account) = state.accounts.get_mut(&destination) else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    "No such destination",
                );
            };
            if amount <= 0 || amount > left || amount > account.balance {
                return error(
                    400,
                    "invalid_request_error",
                    Some("balance_insufficient"),
                    "The connected account's balance cannot cover this reversal.",
                );
            }
            account.balance -= amount;
            state.transfers[index]["amount_reversed"] =
                json!(transfer["amount_reversed"].as_i64().unwrap_or(0) + amount);
            state.transfers[index]["reversed"] = json!(amount == left);
            let id = state.next_id("trr");
            (
                200,
                json!({
                    "id": id, "object": "transfer_reversal", "amount": amount, "created": now,
                    "currency": "usd", "transfer": transfer_id, "metadata": metadata(form)
                }),
            )
        }
        ("GET", ["v1", "payouts", po_id]) => match state.payouts.get(*po_id) {
            Some(payout) if payout["destination_account"].as_str() == stripe_account => {
                (200, payout.clone())
            }
            _ => error(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                "No such payout",
            ),
        },
        ("POST", ["v1", "payouts"]) => {
            let Some(account_id) = stripe_account else {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    "The stand-in only pays out connected accounts (Stripe-Account header).",
                );
            };
            let amount: i64 = field(form, "amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let Some(account) = state.accounts.get_mut(account_id) else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    "No such account",
                );
            };
            if amount <= 0 || amount > account.balance {
                return error(
                    400,
                    "invalid_request_error",
                    Some("balance_insufficient"),
                    "Insufficient funds in the account's Stripe balance.",
                );
            }
            account.balance -= amount;
            let id = state.next_id("po");
            let payout = json!({
                "id": id, "object": "payout", "amount": amount, "arrival_date": now + 2 * 86_400,
                "automatic": false, "created": now, "currency": "usd", "livemode": false,
                "method": "standard", "reconciliation_status": "not_applicable", "source_type": "card",
                "status": "pending", "type": "bank_account", "metadata": metadata(form),
                "destination_account": account_id
            });
            state.payouts.insert(id, payout.clone());
            (200, payout)
        }
        _ => error(
            404,
            "invalid_request_error",
            None,
            &format!("Unrecognized request URL ({method}: {path})."),
        ),
    }
}
