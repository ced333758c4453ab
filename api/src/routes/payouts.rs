//! Stripe Connect onboarding, payouts and Stripe's webhooks (SPEC: Partner program,
//! Payouts).

use chrono::{DateTime, NaiveDate, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use referral_core::domain::paging::Cursor;
use referral_core::domain::payout::PayoutStatus;
use referral_core::domain::stripe_signature;
use referral_core::money::Money;
use referral_core::usecases::payouts::{self, EventOutcome, Payout, StripeAccount};
use referral_core::{Clock, SystemClock};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::body::{JsonBody, SignedBody};
use crate::error::{ApiError, ErrorCode};
use crate::fields::{AmountText, Bounded, CursorText, PlatformId, Text};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, example_instant, usd_view};

/// Stripe Connect and payout endpoints.
pub struct PayoutsApi;

/// A user's Stripe connected account.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct StripeAccountView {
    /// Whether the user has a connected account.
    pub connected: bool,
    /// Stripe's id of the account (`acct_…`).
    pub account_id: Option<String>,
    /// Whether Stripe may pay the account out to its bank.
    pub payouts_enabled: bool,
    /// What Stripe still needs from the user (currently or past due), as Stripe names it.
    pub requirements_due: Vec<String>,
    /// Whether a payout may be requested as far as Stripe is concerned.
    pub ready_for_payouts: bool,
}

impl From<Option<StripeAccount>> for StripeAccountView {
    fn from(account: Option<StripeAccount>) -> Self {
        match account {
            None => Self {
                connected: false,
                account_id: None,
                payouts_enabled: false,
                requirements_due: vec![],
                ready_for_payouts: false,
            },
            Some(account) => Self {
                connected: true,
                ready_for_payouts: account.state.payouts_enabled
                    && account.state.requirements_due.is_empty(),
                account_id: Some(account.account_id),
                payouts_enabled: account.state.payouts_enabled,
                requirements_due: account.state.requirements_due,
            },
        }
    }
}

impl Example for StripeAccountView {
    fn example() -> Self {
        Self {
            connected: true,
            account_id: Some("acct_1QxExample".into()),
            payouts_enabled: false,
            requirements_due: vec!["external_account".into(), "individual.dob.day".into()],
            ready_for_payouts: false,
        }
    }
}

/// A link to Stripe's onboarding for the user's connected account.
#[derive(Debug, Object)]
#[oai(example)]
pub struct OnboardingView {
    /// Stripe's id of the account (`acct_…`).
    pub account_id: String,
    /// Send the user here to finish onboarding on Stripe.
    pub onboarding_url: String,
    /// When the link stops working; ask again for a new one.
    pub expires_at: DateTime<Utc>,
    /// The account as we last heard of it.
    pub account: StripeAccountView,
}

impl Example for OnboardingView {
    fn example() -> Self {
        Self {
            account_id: "acct_1QxExample".into(),
            onboarding_url: "https://connect.stripe.com/setup/e/acct_1QxExample/abc".into(),
            expires_at: example_instant(6),
            account: StripeAccountView::example(),
        }
    }
}

/// A payout request.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RequestPayoutBody {
    /// USD to withdraw, e.g. `"30.00"`; the whole available referral balance when absent.
    /// At least the minimum payout ($25.00).
    #[serde(default, deserialize_with = "crate::fields::present")]
    pub amount: Option<Text<AmountText>>,
}

impl Example for RequestPayoutBody {
    fn example() -> Self {
        Self {
            amount: Some(Text::known("30.00")),
        }
    }
}

/// Where a payout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatusView {
    /// Taken out of the referral balance; being sent to Stripe.
    Requested,
    /// Stripe accepted it; on its way to the bank.
    Processing,
    /// The bank received it.
    Paid,
    /// It did not go through; the amount is back in the referral balance.
    Failed,
}

impl From<PayoutStatus> for PayoutStatusView {
    fn from(status: PayoutStatus) -> Self {
        match status {
            PayoutStatus::Requested => Self::Requested,
            PayoutStatus::Processing => Self::Processing,
            PayoutStatus::Paid => Self::Paid,
            PayoutStatus::Failed => Self::Failed,
        }
    }
}

/// A payout.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PayoutView {
    /// Our id of the payout (also in the confirmation e-mail).
    pub payout_id: Uuid,
    /// How much.
    pub amount: MoneyView,
    /// Where it is.
    pub status: PayoutStatusView,
    /// Stripe's transfer to the connected account, once sent.
    pub transfer_id: Option<String>,
    /// Stripe's payout from the connected account to the bank (`po_…`), once sent: the
    /// id Stripe's `payout.paid` and `payout.failed` events carry.
    pub stripe_payout_id: Option<String>,
    /// Earliest expected arrival at the bank (business days only).
    pub expected_arrival_from: Option<NaiveDate>,
    /// Latest expected arrival at the bank.
    pub expected_arrival_by: Option<NaiveDate>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When it was paid or failed.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Payout> for PayoutView {
    fn from(payout: Payout) -> Self {
        Self {
            payout_id: payout.id.0,
            amount: payout.amount.into(),
            status: payout.status.into(),
            transfer_id: payout.transfer_id,
            stripe_payout_id: payout.stripe_payout_id,
            expected_arrival_from: payout.arrival_earliest,
            expected_arrival_by: payout.arrival_latest,
            failure_reason: payout.failure_reason,
            requested_at: payout.requested_at,
            finished_at: payout.finished_at,
        }
    }
}

impl Example for PayoutView {
    fn example() -> Self {
        Self {
            payout_id: Uuid::nil(),
            amount: usd_view("30.00"),
            status: PayoutStatusView::Processing,
            transfer_id: Some("tr_1QxExample".into()),
            stripe_payout_id: Some("po_1QxExample".into()),
            expected_arrival_from: NaiveDate::from_ymd_opt(2026, 11, 30),
            expected_arrival_by: NaiveDate::from_ymd_opt(2026, 12, 7),
            failure_reason: None,
            requested_at: example_instant(26),
            finished_at: None,
        }
    }
}

/// A page of payouts, newest first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PayoutsPage {
    /// The payouts.
    pub items: Vec<PayoutView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Example for PayoutsPage {
    fn example() -> Self {
        Self {
            items: vec![PayoutView::example()],
            next_cursor: None,
        }
    }
}

#[derive(ApiResponse)]
enum PayoutCreated {
    /// Requested: the amount left the available referral balance, and the payout job
    /// sends it to Stripe.
    #[oai(status = 201)]
    Created(Json<PayoutView>),
}

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookOutcome {
    /// The event changed our state.
    Applied,
    /// This event id was received before; nothing changed.
    Duplicate,
    /// Nothing of ours is concerned, or the event type is not used.
    Ignored,
}

/// Acknowledgement of a Stripe event.
#[derive(Debug, Object)]
#[oai(example)]
pub struct WebhookReceived {
    /// Stripe's event id.
    pub event_id: String,
    /// What it did.
    pub outcome: WebhookOutcome,
}

impl Example for WebhookReceived {
    fn example() -> Self {
        Self {
            event_id: "evt_1QxExample".into(),
            outcome: WebhookOutcome::Applied,
        }
    }
}

/// The parts of a Stripe event the webhook reads; Stripe sends many more.
#[derive(Debug, Object, serde::Deserialize)]
pub struct StripeEventBody {
    /// `evt_…`.
    pub id: String,
    /// `account.updated`, `payout.paid`, `payout.failed`, `transfer.reversed`; others are
    /// acknowledged and ignored.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    /// `{"object": {...}}`: the account, payout or transfer.
    pub data: serde_json::Value,
}

type PageLimit = Bounded<1, 100>;

#[OpenApi(prefix_path = "/v1", tag = "Tag::Payouts")]
impl PayoutsApi {
    /// Connect Stripe: creates the user's Express connected account (transfers
    /// requested, payouts on a manual schedule) if they have none, and returns a fresh
    /// onboarding link. Asking again reuses the account with a new link. Partners only
    /// (409 `PARTNER_ONLY`); 502 `STRIPE_ERROR` when Stripe refuses or cannot be reached.
    #[oai(
        path = "/users/:user_id/stripe-account",
        method = "post",
        operation_id = "connectStripe"
    )]
    async fn connect(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<OnboardingView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let onboarding = payouts::connect(
            &mut conn,
            &state.stripe,
            state.clock.now(),
            user_id.0.as_str(),
        )
        .await?;
        Ok(Json(OnboardingView {
            account_id: onboarding.account.account_id.clone(),
            onboarding_url: onboarding.url,
            expires_at: onboarding.expires_at,
            account: Some(onboarding.account).into(),
        }))
    }

    /// The user's Stripe account: connected? payouts enabled? which requirements are due?
    #[oai(
        path = "/users/:user_id/stripe-account",
        method = "get",
        operation_id = "getStripeAccount"
    )]
    async fn stripe_account(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<StripeAccountView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        Ok(Json(
            payouts::stripe_status(&mut conn, user_id.0.as_str())
                .await?
                .into(),
        ))
    }

    /// Request a payout of the referral balance. Needs, in this order: a Partner (409
    /// `PARTNER_ONLY`), a connected Stripe account (409 `STRIPE_NOT_CONNECTED`), payouts
    /// enabled (409 `PAYOUTS_NOT_ENABLED`), nothing due (409 `STRIPE_REQUIREMENTS_DUE`),
    /// an amount of at least $25.00 (422 `BELOW_MINIMUM_PAYOUT`) that the available
    /// balance covers (409 `INSUFFICIENT_REFERRAL_BALANCE`). The amount defaults to the
    /// whole balance and leaves it at once: of two requests at once, one gets 409.
    #[oai(
        path = "/users/:user_id/payouts",
        method = "post",
        operation_id = "requestPayout"
    )]
    async fn request(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
        body: JsonBody<RequestPayoutBody>,
    ) -> Result<PayoutCreated, ApiError> {
        let amount = match &body.0.amount {
            Some(amount) => Some(Money::parse(amount.as_str(), "USD")?),
            None => None,
        };
        let now = state.clock.now();
        let mut tx = state.pool.begin().await?;
        let payout =
            payouts::request(&mut tx, &state.settings, now, user_id.0.as_str(), amount).await?;
        tx.commit().await?;
        referral_core::telemetry::money_moved("payout_requested", payout.amount);
        Ok(PayoutCreated::Created(Json(payout.into())))
    }

    /// The user's payouts, newest first.
    #[oai(
        path = "/users/:user_id/payouts",
        method = "get",
        operation_id = "listPayouts"
    )]
    async fn history(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The platform's id for the user.
        user_id: Path<Text<PlatformId>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Text<CursorText>>>,
        /// Rows per page (1–100, default 20).
        limit: Query<Option<PageLimit>>,
    ) -> Result<Json<PayoutsPage>, ApiError> {
        let after = cursor.0.and_then(|text| Cursor::decode(text.as_str()));
        let limit = limit.0.map_or(20, |l| l.0);
        let mut conn = state.pool.acquire().await?;
        let page = payouts::history(&mut conn, user_id.0.as_str(), after, limit).await?;
        Ok(Json(PayoutsPage {
            items: page.payouts.into_iter().map(PayoutView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        }))
    }
}

/// Stripe's webhook, apart: Stripe calls it, not the platform.
pub struct StripeWebhookApi;

#[OpenApi(prefix_path = "/v1", tag = "Tag::Webhooks")]
impl StripeWebhookApi {
    /// Stripe's webhook endpoint (no API key: the `Stripe-Signature` header, made with the
    /// endpoint's signing secret, authenticates it). A missing, malformed, stale (over 5
    /// minutes) or wrong signature is 400 `INVALID_SIGNATURE` and changes nothing; a signed
    /// body that is not an event, or holds a NUL character anywhere, is 400
    /// `MALFORMED_EVENT` and changes nothing. Applies
    /// `account.updated`, `payout.paid`, `payout.failed` and `transfer.reversed`; each
    /// event id once (a redelivery answers `DUPLICATE`). An event about a payout whose
    /// sending is still being recorded is 503 `EVENT_ARRIVED_EARLY`: nothing is kept, and
    /// Stripe's next delivery applies it.
    #[oai(
        path = "/stripe/webhook",
        method = "post",
        operation_id = "receiveStripeWebhook"
    )]
    async fn webhook(
        &self,
        state: Data<&AppState>,
        /// `t=<unix seconds>,v1=<HMAC-SHA256 hex>`, as Stripe sends it.
        #[oai(name = "Stripe-Signature")]
        signature: Header<Option<String>>,
        body: SignedBody<StripeEventBody>,
    ) -> Result<Json<WebhookReceived>, ApiError> {
        let now = state.clock.now();
        // Checked against the wall clock, not the movable one of a local installation:
        // Stripe signs with real time.
        let secret = state
            .config
            .webhook_secret()
            .map_err(|e| ApiError::new(ErrorCode::InvalidSignature, e.to_string()))?;
        stripe_signature::verify(
            signature.0.as_deref().unwrap_or_default(),
            &body.raw,
            secret.expose_secret().as_bytes(),
            SystemClock.now(),
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidSignature, e.to_string()))?;
        let event = referral_core::stripe::parse_event(&body.raw)?;
        let mut tx = state.pool.begin().await?;
        let outcome = payouts::apply_event(&mut tx, now, &event).await?;
        if outcome == EventOutcome::Early {
            // Dropping the transaction forgets the event, so Stripe's next delivery of
            // it is applied rather than taken for a duplicate.
            return Err(ApiError::new(
                ErrorCode::EventArrivedEarly,
                "the payout this event names is still being sent; deliver it again later",
            ));
        }
        tx.commit().await?;
        Ok(Json(WebhookReceived {
            event_id: event.id.clone(),
            outcome: match outcome {
                EventOutcome::Applied => WebhookOutcome::Applied,
                EventOutcome::Duplicate => WebhookOutcome::Duplicate,
                EventOutcome::Ignored | EventOutcome::Early => WebhookOutcome::Ignored,
            },
        }))
    }
}
