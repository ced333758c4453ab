//! The referral dashboard of one user, opened with an embed token
//! (`POST /v1/users/{user_id}/embed-tokens`). The token names the user: nothing here
//! takes a user id from the request, so a token for one user can neither show nor change
//! another's. Forms carry the token back (no cookie: the page lives in the platform's
//! iframe, where browsers often refuse third-party cookies).

use chrono::{Datelike, Duration, Months, NaiveDate};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, Route, get, handler, post};
use referral_core::Money;
use referral_core::domain::commission::{CommissionStatus, Track};
use referral_core::domain::credit::GrantReason;
use referral_core::domain::page_tokens::TokenError;
use referral_core::domain::paging::Cursor;
use referral_core::domain::partner::current_agreement;
use referral_core::domain::referrals::{ReferralStatus, Referred};
use referral_core::usecases::dashboard::{
    self as read_model, DashboardQuery as DashboardReadQuery, DashboardView,
};
use referral_core::usecases::earnings::{self, Interval, LedgerFilter};
use referral_core::usecases::partner::{self, SignAgreement};
use referral_core::usecases::{pages, payouts};
use serde::Deserialize;

use super::{Framing, flash, layout, page_response, see_other, usd};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::routes::clicks::visitor_ip;
use crate::routes::commissions::csv_download;
use crate::routes::dto::{UserView, url_with};

/// `/embed/...`.
pub fn routes() -> Route {
    Route::new()
        .at("/dashboard", get(dashboard))
        .at("/ledger.csv", get(ledger_csv))
        .at("/partner", post(upgrade))
        .at("/partner/basic", post(convert_to_basic))
        .at("/stripe", post(connect_stripe))
        .at("/payouts", post(request_payout))
}

/// The address of the dashboard for `token`, with `extra` query pairs.
pub fn dashboard_path(token: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![("token", token)];
    pairs.extend_from_slice(extra);
    let url = url_with("http://pages.invalid/embed/dashboard", &pairs);
    url.trim_start_matches("http://pages.invalid").to_owned()
}

/// A page error: its code (whose status the page answers, as the JSON API does) and
/// what it says.
#[derive(Debug)]
struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn token(error: TokenError) -> Self {
        let message = match error {
            TokenError::Expired => {
                "This page has expired. Open your referral dashboard again from the app."
            }
            TokenError::Invalid => {
                "This link is not valid. Open your referral dashboard from the app."
            }
        };
        Self::new(ErrorCode::Unauthenticated, message)
    }

    fn api(error: ApiError) -> Self {
        let body = error.body();
        Self::new(body.code, body.message.clone())
    }

    fn page(self, state: &AppState) -> Response {
        let Refusal { code, message } = self;
        page_response(
            code.status(),
            layout(
                "Referral dashboard",
                &state.config.pages,
                html! { p.flash.error role="alert" { (message) } },
            ),
            Framing::By(&state.config.pages.frame_ancestors),
        )
    }
}

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(error: E) -> Self {
        Self::api(error.into())
    }
}

/// The user the token was issued for.
async fn viewer(state: &AppState, token: &str) -> Result<String, Refusal> {
    let secret = state.page_secret.get(&state.pool).await?;
    pages::dashboard_user(&secret, token, state.clock.now()).map_err(Refusal::token)
}

#[derive(Debug, Deserialize)]
struct DashboardQuery {
    token: String,
    /// Ledger filters.
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Paging of the ledger and of the referred users.
    ledger_after: Option<String>,
    referrals_after: Option<String>,
    /// Chart interval: day, week or month.
    interval: Option<String>,
    /// What the last form did.
    notice: Option<String>,
}

/// The ledger filters as given; an unreadable one is reported, not ignored.
struct Filters {
    status: Option<CommissionStatus>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl Filters {
    fn read(status: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<Self, Refusal> {
        let status = match status.filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                CommissionStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str().eq_ignore_ascii_case(text))
                    .ok_or_else(|| {
                        Refusal::new(
                            ErrorCode::InvalidField,
                            format!("status: `{text}` is not a commission status"),
                        )
                    })?,
            ),
        };
        let day = |field: &str, text: Option<&str>| match text.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    Refusal::new(
                        ErrorCode::InvalidField,
                        format!("{field}: `{text}` is not a date (YYYY-MM-DD)"),
                    )
                }),
        };
        Ok(Self {
            status,
            from: day("from", from)?,
            to: day("to", to)?,
        })
    }

    fn ledger(&self) -> LedgerFilter {
        LedgerFilter::days(self.status, self.from, self.to)
    }
}

#[handler]
async fn dashboard(state: Data<&AppState>, query: poem::Result<Query<DashboardQuery>>) -> Response {
    let Ok(Query(query)) = query else {
        return unreadable(&state);
    };
    match render(&state, &query).await {
        Ok(page) => page_response(
            StatusCode::OK,
            page,
            Framing::By(&state.config.pages.frame_ancestors),
        ),
        Err(refusal) => refusal.page(&state),
    }
}

#[handler]
async fn ledger_csv(
    state: Data<&AppState>,
    query: poem::Result<Query<DashboardQuery>>,
) -> Response {
    let Ok(Query(query)) = query else {
        return unreadable(&state);
    };
    let user_id = match viewer(&state, &query.token).await {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.page(&state),
    };
    let filters = match Filters::read(
        query.status.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    ) {
        Ok(filters) => filters,
        Err(refusal) => return refusal.page(&state),
    };
    match csv_download(&state, &user_id, filters.ledger()).await {
        Ok((body, disposition)) => Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header("content-disposition", disposition)
            .header("cache-control", "no-store")
            .body(body),
        Err(error) => Refusal::api(error).page(&state),
    }
}

/// How many referred users and ledger lines a page shows.
const PAGE_SIZE: u16 = 10;

async fn render(state: &AppState, query: &DashboardQuery) -> Result<Markup, Refusal> {
    let user_id = viewer(state, &query.token).await?;
    let filters = Filters::read(
        query.status.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    )?;
    let interval = match query.interval.as_deref().unwrap_or("week") {
        "day" => Interval::Day,
        "month" => Interval::Month,
        _ => Interval::Week,
    };
    let now = state.clock.now();
    let today = now.date_naive();
    let view = read_model::view(
        &state.pool,
        &state.settings,
        now,
        &user_id,
        &DashboardReadQuery {
            ledger: filters.ledger(),
            ledger_after: query.ledger_after.as_deref().and_then(Cursor::decode),
            referrals_after: query.referrals_after.as_deref().and_then(Cursor::decode),
            page_size: PAGE_SIZE,
            interval,
            chart: (chart_start(interval, today), today),
            payouts: 10,
        },
    )
    .await?;
    let DashboardView {
        profile,
        stats: card,
        referred,
        ledger,
        chart,
        wallet,
        partner,
        stripe,
        readiness,
        payouts: payout_history,
    } = view;
    let share = UserView::of(&profile, state);

    let token = query.token.as_str();
    let notice = match query.notice.as_deref() {
        Some("upgraded") => Some("You are a Partner now: your next commissions are paid in cash."),
        Some("basic") => Some("You are back on the Basic track."),
        Some("payout") => Some("Payout requested: it is on its way to your bank."),
        _ => None,
    };
    // The page's state (filters, chart interval, both lists' positions) carried into a
    // link, with `extra` replacing what it names.
    let keep = |extra: &[(&'static str, String)]| {
        let state = [
            ("status", &query.status),
            ("from", &query.from),
            ("to", &query.to),
            ("interval", &query.interval),
            ("ledger_after", &query.ledger_after),
            ("referrals_after", &query.referrals_after),
        ];
        let mut pairs: Vec<(&str, &str)> = state
            .iter()
            .filter(|(name, _)| !extra.iter().any(|(replaced, _)| replaced == name))
            .filter_map(|(name, value)| value.as_deref().map(|v| (*name, v)))
            .collect();
        pairs.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        dashboard_path(token, &pairs)
    };
    let csv_pairs: Vec<(&str, &str)> = [
        ("status", query.status.as_deref()),
        ("from", query.from.as_deref()),
        ("to", query.to.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let csv_href =
        dashboard_path(token, &csv_pairs).replacen("/embed/dashboard", "/embed/ledger.csv", 1);
    let agreement = current_agreement();

    Ok(layout(
        "Referral dashboard",
        &state.config.pages,
        html! {
            (flash(notice, None))
            section aria-labelledby="share-h" {
                h2 #share-h { "Your link" }
                div.share {
                    label for="link" { "Referral link" }
                    input #link type="text" readonly value=(share.referral_link);
                    button #copy type="button" data-copy="link" { "Copy link" }
                    span #copy-status role="status" {}
                }
                p.share-intents {
                    a href=(share.share.x) target="_blank" rel="noopener noreferrer" { "Share on X" }
                    " · "
                    a href=(share.share.linkedin) target="_blank" rel="noopener noreferrer" { "Share on LinkedIn" }
                }
            }
            section aria-labelledby="stats-h" {
                h2 #stats-h { "Stats" }
                dl.stats {
                    div { dt { "Referrals" } dd #stat-referrals { (card.referrals) } }
                    div { dt { "Conversions" } dd #stat-conversions { (card.conversions) } }
                    div { dt { "Total earnings" } dd #stat-earnings { (usd(card.total_earnings)) } }
                    div { dt { "Pending earnings" } dd #stat-pending { (usd(card.pending_earnings)) } }
                    div { dt { "Conversion rate" } dd #stat-rate { (format!("{:.1} %", card.conversion_rate * rust_decimal::Decimal::ONE_HUNDRED)) } }
                    div { dt { "Clicks" } dd #stat-clicks { (card.clicks) } }
                    div { dt { "Pending referrals" } dd #stat-pending-referrals { (card.pending_referrals) } }
                }
            }
            section aria-labelledby="chart-h" {
                h2 #chart-h { "Earnings over time" }
                form.inline method="get" action="/embed/dashboard" {
                    input type="hidden" name="token" value=(token);
                    @for (name, value) in [("status", &query.status), ("from", &query.from), ("to", &query.to)] {
                        @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
                    }
                    label for="interval" { "Group by" }
                    select #interval name="interval" {
                        @for (value, label) in [("day", "Day"), ("week", "Week"), ("month", "Month")] {
                            option value=(value) selected[query.interval.as_deref().unwrap_or("week") == value] { (label) }
                        }
                    }
                    button type="submit" { "Show" }
                }
                (earnings_chart(&chart.buckets))
            }
            section aria-labelledby="referred-h" {
                h2 #referred-h { "Referred users" }
                @if referred.items.is_empty() {
                    p.empty { "Nobody has signed up through your link yet." }
                } @else {
                    table #referred {
                        thead { tr { th scope="col" { "Who" } th scope="col" { "Status" } th scope="col" { "Since" } } }
                        tbody {
                            @for row in &referred.items {
                                tr {
                                    td { @match &row.who { Referred::User { email, .. } => (email), Referred::Click(_) => "A visitor" } }
                                    td { (referral_status(row.status)) }
                                    td { (row.at.format("%Y-%m-%d")) }
                                }
                            }
                        }
                    }
                    @if let Some(next) = referred.next {
                        a.more href=(keep(&[("referrals_after", next.encode())])) { "More referred users" }
                    }
                }
            }
            section aria-labelledby="ledger-h" {
                h2 #ledger-h { "Commissions" }
                form.inline method="get" action="/embed/dashboard" {
                    input type="hidden" name="token" value=(token);
                    @if let Some(interval) = &query.interval { input type="hidden" name="interval" value=(interval); }
                    label for="status" { "Status" }
                    select #status name="status" {
                        option value="" { "All" }
                        @for status in CommissionStatus::ALL {
                            option value=(status.as_str()) selected[filters.status == Some(status)] { (status.as_str()) }
                        }
                    }
                    label for="from" { "From" }
                    input #from type="date" name="from" value=[filters.from.map(|d| d.to_string())];
                    label for="to" { "To" }
                    input #to type="date" name="to" value=[filters.to.map(|d| d.to_string())];
                    button type="submit" { "Filter" }
                    a #csv href=(csv_href) download { "Download CSV" }
                }
                @if ledger.lines.is_empty() {
                    p.empty { "No commission matches." }
                } @else {
                    table #ledger {
                        thead { tr { th scope="col" { "Date" } th scope="col" { "Referred user" } th scope="col" { "Commission" } th scope="col" { "Status" } } }
                        tbody {
                            @for line in &ledger.lines {
                                tr {
                                    td { (line.earned_at.format("%Y-%m-%d")) }
                                    td { (line.referred_email) }
                                    td.num { (usd(line.amount)) }
                                    td.status { (line.status.as_str()) }
                                }
                            }
                        }
                    }
                    @if let Some(next) = ledger.next {
                        a.more href=(keep(&[("ledger_after", next.encode())])) { "Older commissions" }
                    }
                }
            }
            section aria-labelledby="wallet-h" {
                h2 #wallet-h { "Wallet" }
                p { "Credit available: " strong #wallet-available { (usd(wallet.available)) } }
                @let live: Vec<_> = wallet.grants.iter().filter(|g| !g.remaining.amount().is_zero()).collect();
                @if !live.is_empty() {
                    table #credit {
                        thead { tr { th scope="col" { "Credit" } th scope="col" { "Left" } th scope="col" { "Expires" } } }
                        tbody {
                            @for grant in live {
                                tr {
                                    td { @match grant.reason { GrantReason::Signup => "Signup credit", GrantReason::Commission => "Commission credit" } }
                                    td.num { (usd(grant.remaining)) }
                                    td { @match grant.expires_at { Some(at) => (at.format("%Y-%m-%d")), None => "Never" } }
                                }
                            }
                        }
                    }
                }
            }
            section #partner aria-labelledby="partner-h" {
                h2 #partner-h { "Partner program" }
                @if partner.track == Track::Partner {
                    p { "You are a " strong { "Partner" } ": commissions are paid to your referral balance, in cash." }
                    p { "Referral balance: " strong #referral-balance { (usd(partner.referral_balance)) } }
                    h3 { "Stripe" }
                    @match &stripe {
                        None => { p #stripe-status { "Not connected." } }
                        Some(account) => {
                            p #stripe-status {
                                "Connected (" (account.account_id) "). "
                                @if account.state.payouts_enabled { "Payouts enabled." } @else { "Payouts not enabled yet." }
                            }
                            @if !account.state.requirements_due.is_empty() {
                                p { "Stripe still needs: " (account.state.requirements_due.join(", ")) }
                            }
                        }
                    }
                    @let stripe_ready = stripe.as_ref().is_some_and(|a| a.state.payouts_enabled && a.state.requirements_due.is_empty());
                    @if !stripe_ready {
                        // Stripe's onboarding will not show inside another site's frame:
                        // the whole window goes there, and Stripe sends it back to the app.
                        form method="post" action="/embed/stripe" target="_top" {
                            input type="hidden" name="token" value=(token);
                            button #connect-stripe type="submit" { @if stripe.is_some() { "Continue Stripe onboarding" } @else { "Connect Stripe" } }
                        }
                    }
                    h3 { "Payouts" }
                    @match &readiness {
                        Ok(amount) => {
                            form method="post" action="/embed/payouts" {
                                input type="hidden" name="token" value=(token);
                                input type="hidden" name="amount" value=(amount.amount().to_string());
                                button #request-payout type="submit" { "Request payout of " (usd(*amount)) }
                            }
                        }
                        Err(missing) => { p #payout-missing { "Payouts: " (missing.to_string()) "." } }
                    }
                    @if !payout_history.payouts.is_empty() {
                        table #payouts {
                            thead { tr { th scope="col" { "Requested" } th scope="col" { "Amount" } th scope="col" { "Status" } th scope="col" { "Expected" } } }
                            tbody {
                                @for payout in &payout_history.payouts {
                                    tr {
                                        td { (payout.requested_at.format("%Y-%m-%d")) }
                                        td.num { (usd(payout.amount)) }
                                        td.status { (payout.status.as_str()) }
                                        td {
                                            @if let (Some(a), Some(b)) = (payout.arrival_earliest, payout.arrival_latest) { (a) " – " (b) }
                                            @if let Some(reason) = &payout.failure_reason { (reason) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Convert to Basic" }
                    form method="post" action="/embed/partner/basic" {
                        input type="hidden" name="token" value=(token);
                        button #convert type="submit" { "Convert to Basic" }
                    }
                } @else {
                    p { "Partners earn " strong { "10 %" } " in cash, paid out through Stripe, instead of 5 % in platform credit." }
                    details {
                        summary { "Partner agreement, version " (agreement.version) }
                        pre.agreement { (agreement.text) }
                    }
                    form method="post" action="/embed/partner" {
                        input type="hidden" name="token" value=(token);
                        label for="full_name" { "Type your full name to sign the agreement" }
                        input #full_name type="text" name="full_name" required autocomplete="name" maxlength="200";
                        button #upgrade type="submit" { "Sign and upgrade to Partner" }
                    }
                }
            }
        },
    ))
}

/// The first day the chart shows: 30 days, 12 weeks (from a Monday) or 12 months (from
/// the 1st), ending today.
fn chart_start(interval: Interval, today: NaiveDate) -> NaiveDate {
    match interval {
        Interval::Day => today - Duration::days(29),
        Interval::Week => {
            today
                - Duration::weeks(11)
                - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        }
        Interval::Month => today
            .with_day(1)
            .and_then(|first| first.checked_sub_months(Months::new(11)))
            .unwrap_or(today),
    }
}

fn referral_status(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::NotSignedUp => "Not signed up",
        ReferralStatus::SignedUp => "Signed up",
        ReferralStatus::Converted => "Made a Spend",
    }
}

/// Earned per period as bars, drawn on the server (no chart library); each bar names its
/// period and amounts for screen readers.
fn earnings_chart(buckets: &[earnings::EarningsBucket]) -> Markup {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 18.0;
    let values: Vec<f64> = buckets
        .iter()
        .map(|b| b.earned.amount().to_string().parse::<f64>().unwrap_or(0.0))
        .collect();
    let top = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let width = BAR * values.len().max(1) as f64;
    html! {
        svg #earnings-chart role="img" aria-label="Commission earned per period"
            viewBox=(format!("0 0 {width} {}", HEIGHT + 2.0)) preserveAspectRatio="none" {
            @for (i, (bucket, value)) in buckets.iter().zip(&values).enumerate() {
                @let h = (value / top * HEIGHT).max(if *value > 0.0 { 2.0 } else { 0.0 });
                rect x=(i as f64 * BAR + 2.0) y=(HEIGHT - h) width=(BAR - 4.0) height=(h) {
                    title { (bucket.start) ": earned " (usd(bucket.earned)) ", paid " (usd(bucket.paid)) ", pending " (usd(bucket.pending)) }
                }
            }
            line x1="0" y1=(HEIGHT) x2=(width) y2=(HEIGHT);
        }
        @if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
            p.chart-range { (first.start) " – " (last.start) }
        }
    }
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: String,
}

#[derive(Debug, Deserialize)]
struct UpgradeForm {
    token: String,
    full_name: String,
}

/// The user's address and browser as the signature records them.
fn signer(req: &Request, trust_forwarded_for: bool) -> (Option<String>, Option<String>) {
    let ip = visitor_ip(req, trust_forwarded_for).map(|ip| ip.to_string());
    let agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    (ip, agent)
}

#[handler]
async fn upgrade(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<UpgradeForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let outcome = async {
        let user_id = viewer(&state, &form.token).await?;
        let full_name = form.full_name.trim();
        if full_name.is_empty() || full_name.chars().count() > 200 {
            return Err(Refusal::new(
                ErrorCode::InvalidField,
                "full_name: type your full name (up to 200 characters) to sign",
            ));
        }
        let agreement = current_agreement();
        let (ip, user_agent) = signer(req, state.config.trust_forwarded_for);
        let mut tx = state.pool.begin().await.map_err(ApiError::from)?;
        partner::upgrade(
            &mut tx,
            state.clock.now(),
            &user_id,
            SignAgreement {
                agreement_version: agreement.version.to_owned(),
                agreement_sha256: agreement.sha256.clone(),
                full_name: full_name.to_owned(),
                ip,
                user_agent,
            },
        )
        .await?;
        tx.commit().await.map_err(ApiError::from)?;
        Ok(())
    }
    .await;
    after_form(&state, &form.token, outcome, "upgraded")
}

#[handler]
async fn convert_to_basic(state: Data<&AppState>, form: poem::Result<Form<TokenForm>>) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let outcome = async {
        let user_id = viewer(&state, &form.token).await?;
        let mut tx = state.pool.begin().await.map_err(ApiError::from)?;
        partner::downgrade(&mut tx, &user_id).await?;
        tx.commit().await.map_err(ApiError::from)?;
        Ok(())
    }
    .await;
    after_form(&state, &form.token, outcome, "basic")
}

#[derive(Debug, Deserialize)]
struct PayoutForm {
    token: String,
    /// The amount the button showed: what is withdrawn, even if the balance has moved
    /// since the page was drawn.
    amount: String,
}

#[handler]
async fn request_payout(state: Data<&AppState>, form: poem::Result<Form<PayoutForm>>) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let outcome = async {
        let user_id = viewer(&state, &form.token).await?;
        let amount = Money::parse(&form.amount, "USD").map_err(ApiError::from)?;
        let mut tx = state.pool.begin().await.map_err(ApiError::from)?;
        let payout = payouts::request(
            &mut tx,
            &state.settings,
            state.clock.now(),
            &user_id,
            Some(amount),
        )
        .await?;
        tx.commit().await.map_err(ApiError::from)?;
        referral_core::telemetry::money_moved("payout_requested", payout.amount);
        Ok(())
    }
    .await;
    after_form(&state, &form.token, outcome, "payout")
}

#[handler]
async fn connect_stripe(state: Data<&AppState>, form: poem::Result<Form<TokenForm>>) -> Response {
    let Ok(Form(form)) = form else {
        return unreadable(&state);
    };
    let outcome = async {
        let user_id = viewer(&state, &form.token).await?;
        let mut conn = state.pool.acquire().await.map_err(ApiError::from)?;
        let onboarding =
            payouts::connect(&mut conn, &state.stripe, state.clock.now(), &user_id).await?;
        Ok::<_, Refusal>(onboarding.url)
    }
    .await;
    match outcome {
        // On to Stripe's onboarding, which returns the user to the platform's URLs. Not a
        // redirect of the form's answer: the page's CSP lets forms reach only this origin
        // and https ones, and browsers apply that to a form's redirects too, so a local
        // Stripe stand-in on http would be blocked.
        Ok(url) => page_response(
            StatusCode::OK,
            layout(
                "Stripe onboarding",
                &state.config.pages,
                html! {
                    meta http-equiv="refresh" content=(format!("0;url={url}"));
                    p { "Taking you to Stripe to set up payouts… " a #stripe-onboarding href=(url) { "Continue to Stripe" } }
                },
            ),
            Framing::By(&state.config.pages.frame_ancestors),
        ),
        Err(refusal) => refusal.page(&state),
    }
}

/// A request missing a field the page needs (the token, a form field): a page saying so.
fn unreadable(state: &AppState) -> Response {
    Refusal::new(
        ErrorCode::MalformedRequest,
        "This request is incomplete. Open your referral dashboard again from the app.",
    )
    .page(state)
}

/// After a form: back to the dashboard with a notice (a reload does not post again), or
/// the refusal's message on its own page with a way back.
fn after_form(
    state: &AppState,
    token: &str,
    outcome: Result<(), Refusal>,
    notice: &str,
) -> Response {
    match outcome {
        Ok(()) => see_other(&dashboard_path(token, &[("notice", notice)])),
        Err(Refusal { code, message }) => page_response(
            code.status(),
            layout(
                "Referral dashboard",
                &state.config.pages,
                html! {
                    p.flash.error role="alert" { (message) }
                    p { a #back href=(dashboard_path(token, &[])) { "Back to the dashboard" } }
                },
            ),
            Framing::By(&state.config.pages.frame_ancestors),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_chart_ends_today_and_starts_on_a_period_boundary() {
        let friday = day("2026-11-27");
        assert_eq!(chart_start(Interval::Day, friday), day("2026-10-29"));
        assert_eq!(chart_start(Interval::Week, friday), day("2026-09-07"));
        assert_eq!(chart_start(Interval::Month, friday), day("2025-12-01"));
        assert_eq!(
            chart_start(Interval::Month, day("2026-01-31")),
            day("2025-02-01")
        );
    }

    #[test]
    fn dashboard_addresses_carry_the_token_percent_encoded() {
        assert_eq!(
            dashboard_path("dash.ab+c", &[("notice", "payout")]),
            "/embed/dashboard?token=dash.ab%2Bc&notice=payout"
        );
    }

    #[test]
    fn ledger_filters_name_the_field_they_cannot_read() {
        let Err(Refusal { code, message }) = Filters::read(Some("LOST"), None, None) else {
            panic!("an unknown status is refused");
        };
        assert_eq!(code.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.starts_with("status:"));
        let Err(Refusal { message, .. }) = Filters::read(None, None, Some("27/11/2026")) else {
            panic!("a date in another format is refused");
        };
        assert!(message.starts_with("to:"));
        let filters = Filters::read(Some("paid"), Some("2026-11-01"), Some("2026-11-30")).unwrap();
        assert_eq!(filters.status, Some(CommissionStatus::Paid));
        let ledger = filters.ledger();
        assert_eq!(
            ledger.until.unwrap().date_naive(),
            day("2026-12-01"),
            "the last day is included"
        );
    }
}
