//! Stripe Connect through async-stripe: the connected accounts, their onboarding links,
//! and the two calls of a payout (a transfer to the connected account, then a payout of
//! it to the user's bank). The base URL is configurable, so tests and local runs talk to
//! a stand-in that answers as Stripe does.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use stripe::StripeRequest;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesTransfers,
    CreateAccountSettings, CreateAccountSettingsPayouts, CreateAccountSettingsPayoutsSchedule,
    CreateAccountSettingsPayoutsScheduleInterval, CreateAccountType,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::CreateTransfer;
use stripe_connect::transfer_reversal::CreateIdTransferReversal;
use stripe_core::payout::{CreatePayout, RetrievePayout};
use stripe_types::Currency as StripeCurrency;

use crate::config::{self, ConfigError};
use crate::domain::payout::ConnectState;
use crate::ids::{PayoutId, UserId};
use crate::money::{Money, MoneyError};

/// Where and how to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// Secret API key (`sk_test_…` or `sk_live_…`).
    pub secret_key: SecretString,
    /// API base, `https://api.stripe.com/` or a stand-in's.
    pub api_base: String,
    /// Where Stripe sends a user whose onboarding link expired.
    pub onboarding_refresh_url: String,
    /// Where Stripe sends a user who finished onboarding.
    pub onboarding_return_url: String,
    /// One call's time limit (`STRIPE_TIMEOUT_MS`): a call that takes longer is retried
    /// later by its job with the same idempotency key, rather than holding a worker slot.
    pub call_timeout: Duration,
}

impl StripeSettings {
    /// Reads `STRIPE_SECRET_KEY`, `STRIPE_API_BASE`, `STRIPE_CONNECT_REFRESH_URL`,
    /// `STRIPE_CONNECT_RETURN_URL` and `STRIPE_TIMEOUT_MS`; the defaults suit a local
    /// installation.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secret_key: SecretString::from(config::string("STRIPE_SECRET_KEY", "sk_test_local")),
            api_base: config::url(
                "STRIPE_API_BASE",
                "https://api.stripe.com/",
                &["http", "https"],
            )?,
            onboarding_refresh_url: config::url(
                "STRIPE_CONNECT_REFRESH_URL",
                "http://localhost:3000/partner/stripe/refresh",
                &["http", "https"],
            )?,
            onboarding_return_url: config::url(
                "STRIPE_CONNECT_RETURN_URL",
                "http://localhost:3000/partner/stripe/done",
                &["http", "https"],
            )?,
            call_timeout: Duration::from_millis(config::positive("STRIPE_TIMEOUT_MS", 20_000)?),
        })
    }

    /// Settings for tests that talk to a stand-in at `api_base`.
    pub fn for_tests(api_base: &str) -> Self {
        Self {
            secret_key: SecretString::from("sk_test_suite"),
            api_base: api_base.to_owned(),
            onboarding_refresh_url: "https://platform.test/partner/stripe/refresh".into(),
            onboarding_return_url: "https://platform.test/partner/stripe/done".into(),
            call_timeout: Duration::from_secs(20),
        }
    }
}

/// Why a Stripe call did not give an answer we can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// Stripe answered that the request will never pass as it is (an invalid or closed
    /// account, insufficient funds, a bad parameter). Its message is kept for people.
    #[error("stripe refused ({status}{code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stripe's error code, with a leading `, ` when there is one.
        code: String,
        /// Stripe's message.
        message: String,
    },
    /// Stripe could not be reached, timed out, failed (5xx), asked us to slow down (429),
    /// is still running the first request of this idempotency key (409), or refused our
    /// own key or settings (401, 403): asking again later with the same key is safe and
    /// may pass once the cause is fixed.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// An amount Stripe cannot take (too large for cents).
    #[error("amount cannot be sent to Stripe: {0}")]
    Amount(#[from] MoneyError),
}

impl GatewayError {
    /// Whether asking again cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, GatewayError::Unavailable(_))
    }
}

impl From<StripeError> for GatewayError {
    fn from(error: StripeError) -> Self {
        match error {
            // 401/403 are our key (missing, rotated, restricted): an operator fixes it and
            // the job then succeeds, so they are not the payout's fault.
            StripeError::Stripe(details, status)
                if (400..500).contains(&status) && ![401, 403, 409, 429].contains(&status) =>
            {
                GatewayError::Refused {
                    status,
                    code: details
                        .code
                        .as_ref()
                        .map(|code| format!(", {}", code.as_str()))
                        .unwrap_or_default(),
                    message: details.message.clone().unwrap_or_default(),
                }
            }
            StripeError::Stripe(details, status) => GatewayError::Unavailable(format!(
                "status {status}: {}",
                details.message.clone().unwrap_or_default()
            )),
            // A body we cannot read may be a proxy's error page: not Stripe's final word.
            StripeError::JSONDeserialize(message) | StripeError::ClientError(message) => {
                GatewayError::Unavailable(message)
            }
            StripeError::ConfigError(message) => {
                GatewayError::Unavailable(format!("configuration: {message}"))
            }
            StripeError::Timeout => GatewayError::Unavailable("timed out".into()),
        }
    }
}

/// A connected account Stripe created.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    /// `acct_…`.
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

/// Stripe, configured.
#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
    refresh_url: String,
    return_url: String,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("return_url", &self.return_url)
            .finish_non_exhaustive()
    }
}

impl StripeGateway {
    /// A gateway for `settings`.
    pub fn new(settings: &StripeSettings) -> Result<Self, GatewayError> {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // async-stripe appends `v1/...` to the base as it is.
        let mut api_base = settings.api_base.clone();
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        let client = ClientBuilder::new(settings.secret_key.expose_secret())
            .url(api_base)
            .timeout(settings.call_timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(GatewayError::from)?;
        Ok(Self {
            client,
            refresh_url: settings.onboarding_refresh_url.clone(),
            return_url: settings.onboarding_return_url.clone(),
        })
    }

    /// Creates an Express connected account for `email`, with the transfers capability
    /// requested and payouts on a manual schedule (this engine decides when money goes to
    /// the bank). `idempotency_key` makes two concurrent requests one account.
    pub async fn create_express_account(
        &self,
        idempotency_key: &str,
        email: &str,
        user_id: UserId,
    ) -> Result<CreatedAccount, GatewayError> {
        let mut capabilities = CreateAccountCapabilities::new();
        capabilities.transfers = Some(CreateAccountCapabilitiesTransfers {
            requested: Some(true),
        });
        let mut schedule = CreateAccountSettingsPayoutsSchedule::new();
        schedule.interval = Some(CreateAccountSettingsPayoutsScheduleInterval::Manual);
        let mut payouts = CreateAccountSettingsPayouts::new();
        payouts.schedule = Some(schedule);
        let mut settings = CreateAccountSettings::new();
        settings.payouts = Some(payouts);
        let account = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .email(email)
            .capabilities(capabilities)
            .settings(settings)
            .metadata(HashMap::from([("user_id".to_owned(), user_id.to_string())]))
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        let requirements = account.requirements.as_ref();
        let mut due: Vec<String> = requirements
            .and_then(|r| r.currently_due.clone())
            .unwrap_or_default();
        due.extend(
            requirements
                .and_then(|r| r.past_due.clone())
                .unwrap_or_default(),
        );
        due.sort();
        due.dedup();
        Ok(CreatedAccount {
            account_id: account.id.as_str().to_owned(),
            state: ConnectState {
                payouts_enabled: account.payouts_enabled.unwrap_or(false),
                requirements_due: due,
            },
        })
    }

    /// A fresh onboarding link for `account_id`.
    pub async fn onboarding_link(&self, account_id: &str) -> Result<OnboardingLink, GatewayError> {
        let link = CreateAccountLink::new(account_id, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(&self.refresh_url)
            .return_url(&self.return_url)
            .send(&self.client)
            .await?;
        Ok(OnboardingLink {
            url: link.url,
            expires_at: DateTime::from_timestamp(link.expires_at, 0).unwrap_or_default(),
        })
    }

    /// Transfers `amount` from the platform to `account_id`; returns the transfer id.
    pub async fn create_transfer(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> Result<String, GatewayError> {
        let transfer = CreateTransfer::new(StripeCurrency::USD, account_id)
            .amount(amount.to_minor_units()?)
            .metadata(metadata(payout_id))
            // Lets an operator find a payout's transfers in Stripe's dashboard by our id.
            .transfer_group(payout_id.to_string())
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(transfer.id.as_str().to_owned())
    }

    /// Pays `amount` out of `account_id`'s Stripe balance to its bank; returns the Stripe
    /// payout id, which `payout.paid` and `payout.failed` events name.
    pub async fn create_bank_payout(
        &self,
        idempotency_key: &str,
        account_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> Result<String, GatewayError> {
        let connected: stripe::AccountId = account_id.into();
        let payout = CreatePayout::new(amount.to_minor_units()?, StripeCurrency::USD)
            .metadata(metadata(payout_id))
            .customize()
            .account_id(connected)
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(payout.id.as_str().to_owned())
    }
}

impl StripeGateway {
    /// Takes `amount` of transfer `transfer_id` back from its connected account; returns
    /// the reversal id.
    pub async fn reverse_transfer(
        &self,
        idempotency_key: &str,
        transfer_id: &str,
        amount: Money,
        payout_id: PayoutId,
    ) -> Result<String, GatewayError> {
        let reversal = CreateIdTransferReversal::new(transfer_id)
            .amount(amount.to_minor_units()?)
            .metadata(metadata(payout_id))
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(reversal.id.as_str().to_owned())
    }
}

/// What Stripe says of a payout to a bank now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPayoutState {
    /// `paid`, `pending`, `in_transit`, `canceled` or `failed`.
    pub status: String,
    /// Why it failed, when it did.
    pub failure_message: Option<String>,
}

impl StripeGateway {
    /// Asks Stripe where the bank payout `stripe_payout_id` of `account_id` stands, for
    /// payouts whose webhook never came.
    pub async fn bank_payout_state(
        &self,
        account_id: &str,
        stripe_payout_id: &str,
    ) -> Result<BankPayoutState, GatewayError> {
        let connected: stripe::AccountId = account_id.into();
        let payout = RetrievePayout::new(stripe_payout_id)
            .customize()
            .account_id(connected)
            .send(&self.client)
            .await?;
        Ok(BankPayoutState {
            status: payout.status,
            failure_message: payout.failure_message,
        })
    }
}

fn metadata(payout_id: PayoutId) -> HashMap<String, String> {
    HashMap::from([("payout_id".to_owned(), payout_id.to_string())])
}

fn idempotent(key: &str) -> Result<RequestStrategy, GatewayError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| GatewayError::Refused {
            status: 0,
            code: String::new(),
            message: format!("idempotency key refused: {e}"),
        })
}
