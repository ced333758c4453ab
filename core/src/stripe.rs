//! Stripe Connect through async-stripe: the connected accounts, their onboarding links,
//! and the two calls of a payout (a transfer to the connected account, then a payout of
//! it to the user's bank). The base URL is configurable, so tests and local runs talk to
//! a stand-in that answers as Stripe does. This is the adapter behind
//! [`crate::payments::PaymentProvider`]: Stripe's answers and events become the port's
//! types here, and nowhere else.

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
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
use crate::money::Money;
use crate::payments::{
    BankPayoutState, CreatedAccount, EventKind, EventRejected, GatewayError, OnboardingLink,
    PaymentProvider, PayoutObject, ProviderEvent,
};

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
}

impl PaymentProvider for StripeGateway {
    /// Creates an Express connected account for `email`, with the transfers capability
    /// requested and payouts on a manual schedule (this engine decides when money goes to
    /// the bank). `idempotency_key` makes two concurrent requests one account.
    async fn create_express_account(
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
    async fn onboarding_link(&self, account_id: &str) -> Result<OnboardingLink, GatewayError> {
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
    async fn create_transfer(
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
    async fn create_bank_payout(
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

    /// Takes `amount` of transfer `transfer_id` back from its connected account; returns
    /// the reversal id.
    async fn reverse_transfer(
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

    /// Asks Stripe where the bank payout `stripe_payout_id` of `account_id` stands, for
    /// payouts whose webhook never came.
    async fn bank_payout_state(
        &self,
        account_id: &str,
        bank_payout_id: &str,
    ) -> Result<BankPayoutState, GatewayError> {
        let connected: stripe::AccountId = account_id.into();
        let payout = RetrievePayout::new(bank_payout_id)
            .customize()
            .account_id(connected)
            .send(&self.client)
            .await?;
        Ok(match payout.status.as_str() {
            "paid" => BankPayoutState::Paid,
            "failed" | "canceled" => BankPayoutState::Failed(
                payout
                    .failure_message
                    .unwrap_or_else(|| format!("Stripe reports the payout {}", payout.status)),
            ),
            _ => BankPayoutState::OnItsWay(payout.status),
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

/// A Stripe event as it arrives, as much of it as we read.
#[derive(Debug, serde::Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    data: RawEventData,
}

#[derive(Debug, serde::Deserialize)]
struct RawEventData {
    object: serde_json::Value,
}

/// Reads a Stripe event from its verified body into the provider-neutral shape. A NUL
/// anywhere refuses the whole event rather than reaching the database, which would
/// refuse it only halfway through.
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, EventRejected> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if let Some(path) = nul_at(&value, "") {
        return Err(EventRejected::NulCharacter(path));
    }
    let raw: RawEvent = serde_json::from_value(value)?;
    let object = &raw.data.object;
    let text = |field: &str| object.get(field).and_then(|v| v.as_str());
    let payout_object = || PayoutObject {
        provider_id: text("id").unwrap_or_default().to_owned(),
        payout_id: object
            .get("metadata")
            .and_then(|m| m.get("payout_id"))
            .and_then(|v| v.as_str())
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
            .map(PayoutId),
    };
    let kind = match raw.event_type.as_str() {
        "account.updated" => EventKind::AccountUpdated {
            account_id: text("id").unwrap_or_default().to_owned(),
            state: ConnectState {
                payouts_enabled: object
                    .get("payouts_enabled")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                requirements_due: requirements_due(object),
            },
        },
        "payout.paid" => EventKind::BankPayoutPaid(payout_object()),
        "payout.failed" => EventKind::BankPayoutFailed {
            object: payout_object(),
            reason: text("failure_message")
                .or_else(|| text("failure_code"))
                .unwrap_or("the bank refused the payout")
                .to_owned(),
        },
        "transfer.reversed" => EventKind::TransferReversed {
            object: payout_object(),
            reversed_cents: object
                .get("amount_reversed")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
        },
        _ => EventKind::Other,
    };
    Ok(ProviderEvent {
        created: DateTime::from_timestamp(raw.created, 0).unwrap_or_default(),
        id: raw.id,
        type_name: raw.event_type,
        kind,
    })
}

/// `currently_due` and `past_due` of an account's requirements, without repeats.
fn requirements_due(account: &serde_json::Value) -> Vec<String> {
    let mut due: Vec<String> = ["currently_due", "past_due"]
        .iter()
        .filter_map(|list| account.get("requirements")?.get(*list)?.as_array())
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect();
    due.sort();
    due.dedup();
    due
}

/// Where the first string (or key) holding NUL is, as a dotted path.
fn nul_at(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_at(item, &format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(at)
            } else {
                nul_at(item, &at)
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One crypto provider is compiled in (ring, through every crate's features), so the
    /// TLS client builds without one installed by hand.
    #[test]
    fn the_https_client_builds_with_the_one_crypto_provider() {
        let settings = StripeSettings::for_tests("https://api.stripe.com/");
        assert!(StripeGateway::new(&settings).is_ok());
    }

    #[test]
    fn an_event_with_nul_anywhere_is_refused_and_names_where() {
        let body = br#"{"id":"evt_1","type":"account.updated","created":1,
            "data":{"object":{"id":"acct_1","requirements":{"currently_due":["a","b\u0000"]}}}}"#;
        match parse_event(body) {
            Err(EventRejected::NulCharacter(path)) => {
                assert_eq!(path, "data.object.requirements.currently_due[1]");
            }
            other => panic!("{other:?}"),
        }
        let id = br#"{"id":"evt_\u0000x","type":"payout.paid","created":1,"data":{"object":{}}}"#;
        assert!(matches!(
            parse_event(id),
            Err(EventRejected::NulCharacter(path)) if path == "id"
        ));
        let key =
            br#"{"id":"evt_1","type":"payout.paid","created":1,"data":{"object":{"a\u0000":1}}}"#;
        assert!(matches!(
            parse_event(key),
            Err(EventRejected::NulCharacter(_))
        ));
    }

    #[test]
    fn stripe_events_become_typed_events() {
        let payout_id = uuid::Uuid::now_v7();
        let failed = format!(
            r#"{{"id":"evt_1","type":"payout.failed","created":1700000000,"data":{{"object":
                {{"id":"po_1","failure_code":"account_closed","metadata":{{"payout_id":"{payout_id}"}}}}}}}}"#
        );
        let event = parse_event(failed.as_bytes()).expect("an event");
        assert_eq!(event.type_name, "payout.failed");
        assert_eq!(event.created.timestamp(), 1_700_000_000);
        assert_eq!(
            event.kind,
            EventKind::BankPayoutFailed {
                object: PayoutObject {
                    provider_id: "po_1".into(),
                    payout_id: Some(PayoutId(payout_id)),
                },
                reason: "account_closed".into(),
            }
        );
        let account = br#"{"id":"evt_2","type":"account.updated","created":1,"data":{"object":
            {"id":"acct_1","payouts_enabled":true,
             "requirements":{"currently_due":["b","a"],"past_due":["a"]}}}}"#;
        assert_eq!(
            parse_event(account).expect("an event").kind,
            EventKind::AccountUpdated {
                account_id: "acct_1".into(),
                state: ConnectState {
                    payouts_enabled: true,
                    requirements_due: vec!["a".into(), "b".into()],
                },
            }
        );
        let other = br#"{"id":"evt_3","type":"charge.succeeded","created":1,"data":{"object":{}}}"#;
        assert_eq!(parse_event(other).expect("an event").kind, EventKind::Other);
    }
}
