//! The payment provider port: what the payout flows ask of a provider, and what they
//! hear back, in this engine's own types. Stripe Connect is the provider today
//! (`crate::stripe`, the adapter); a second provider, or a test double, implements
//! [`PaymentProvider`] and parses its own events into [`ProviderEvent`], and the use
//! cases do not change.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::payout::ConnectState;
use crate::ids::{PayoutId, UserId};
use crate::money::{Money, MoneyError};

/// Why a provider call did not give an answer we can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The provider answered that the request will never pass as it is (an invalid or
    /// closed account, insufficient funds, a bad parameter). Its message is kept for
    /// people.
    #[error("stripe refused ({status}{code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The provider's error code, with a leading `, ` when there is one.
        code: String,
        /// The provider's message.
        message: String,
    },
    /// The provider could not be reached, timed out, failed (5xx), asked us to slow down
    /// (429), is still running the first request of this idempotency key (409), or
    /// refused our own key or settings (401, 403): asking again later with the same key
    /// is safe and may pass once the cause is fixed.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// An amount the provider cannot take (too large for cents).
    #[error("amount cannot be sent to Stripe: {0}")]
    Amount(#[from] MoneyError),
}

impl GatewayError {
    /// Whether asking again cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, GatewayError::Unavailable(_))
    }
}

/// A connected account the provider created.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    /// The provider's id (`acct_…`).
    pub account_id: String,
    /// Its state at creation.
    pub state: ConnectState,
}

/// An onboarding link.
#[derive(Debug, Clone)]
pub struct OnboardingLink {
    /// Where to send the user.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Where a payout to a bank stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankPayoutState {
    /// The bank has it.
    Paid,
    /// It failed or was cancelled, for this reason.
    Failed(String),
    /// Still on its way (the provider's own word for it).
    OnItsWay(String),
}

/// What the payout flows ask of a payment provider. Every call that moves money takes
/// an idempotency key: the same key again gets the first answer, not a second movement.
pub trait PaymentProvider: Send + Sync {
    /// Creates a connected account for `email`, able to receive transfers, paid out to
    /// the bank only when this engine asks.
    fn create_express_account(
        &self,
        idempotency_key: &str,
        email: &str,
        user_id: UserId,
    ) -> impl Future<Output = Result<CreatedAccount, GatewayError>> + Send;

    /// A fresh onboarding link for `account_id`.
    fn onboarding_link(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<OnboardingLink, GatewayError>> + Send;

    /// Transfers `amount` from the platform to `account_id`; returns the transfer id.
    fn create_transfer(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Pays `amount` out of `account_id`'s balance to its bank; returns the bank payout's
    /// id, which the provider's events name.
    fn create_bank_payout(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Takes `amount` of transfer `transfer_id` back from its connected account; returns
    /// the reversal id.
    fn reverse_transfer(
        &self,
        idempotency_key: &str,
        transfer_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Where the bank payout `bank_payout_id` of `account_id` stands now.
    fn bank_payout_state(
        &self,
        account_id: &str,
        bank_payout_id: &str,
    ) -> impl Future<Output = Result<BankPayoutState, GatewayError>> + Send;
}

/// One of the provider's objects a payout event is about: by the provider's id, and by
/// the payout id we sent along with it, when present (an event may arrive before our
/// job recorded the provider's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutObject {
    /// The provider's id of the transfer or bank payout.
    pub provider_id: String,
    /// Ours, from the object's metadata.
    pub payout_id: Option<PayoutId>,
}

/// What a provider's event says, as far as this engine is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A connected account changed.
    AccountUpdated {
        /// The provider's account id.
        account_id: String,
        /// What it can do now.
        state: ConnectState,
    },
    /// A bank payout arrived.
    BankPayoutPaid(PayoutObject),
    /// A bank payout failed, or came back.
    BankPayoutFailed {
        /// The bank payout.
        object: PayoutObject,
        /// Why, for people.
        reason: String,
    },
    /// A transfer was reversed at the provider, in part or in full.
    TransferReversed {
        /// The transfer.
        object: PayoutObject,
        /// How much of it is reversed by now, in cents.
        reversed_cents: i64,
    },
    /// Something this engine does not act on.
    Other,
}

/// A provider's event, verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id: each is applied once.
    pub id: String,
    /// The provider's name for its type, as recorded.
    pub type_name: String,
    /// When the provider created it.
    pub created: DateTime<Utc>,
    /// What it says.
    pub kind: EventKind,
}

/// Why a verified event body cannot be applied; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EventRejected {
    /// Not JSON, or not shaped like an event.
    #[error("not a Stripe event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A string holds the NUL character, which no Stripe id or message holds and the
    /// database cannot store.
    #[error("the event holds a NUL character (\\u0000) in `{0}`")]
    NulCharacter(String),
}
