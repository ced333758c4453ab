//! Payouts (SPEC: Payouts): who may withdraw how much, the life of a payout, and when
//! the money is expected to arrive.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::domain::commission::Track;
use crate::money::Money;

/// Where a payout is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatus {
    /// Taken out of the referral balance; the transfer is not sent yet.
    Requested,
    /// Stripe accepted the transfer; the money is on its way to the bank.
    Processing,
    /// The bank received it.
    Paid,
    /// It did not arrive; the amount is back in the referral balance.
    Failed,
}

impl PayoutStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Requested => "REQUESTED",
            PayoutStatus::Processing => "PROCESSING",
            PayoutStatus::Paid => "PAID",
            PayoutStatus::Failed => "FAILED",
        }
    }

    /// Whether nothing can change it any more.
    pub fn is_final(self) -> bool {
        matches!(self, PayoutStatus::Paid | PayoutStatus::Failed)
    }
}

/// What Stripe last told us about a user's connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectState {
    /// Stripe may pay this account out to its bank.
    pub payouts_enabled: bool,
    /// What Stripe still needs from the user (currently or past due).
    pub requirements_due: Vec<String>,
}

/// Why a payout request was refused. Each condition of the SPEC has its own variant, in
/// the order a user fixes them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutRefused {
    /// Only Partners withdraw; Basic earnings are platform credit.
    #[error("only Partners can request payouts; this user is on the Basic track")]
    NotPartner,
    /// No connected account yet.
    #[error("no Stripe account is connected: start onboarding first")]
    StripeNotConnected,
    /// Stripe has not enabled payouts on the account yet.
    #[error("Stripe has not enabled payouts on the connected account yet")]
    PayoutsNotEnabled,
    /// Stripe needs more information first.
    #[error("Stripe needs more information before paying out: {}", .0.join(", "))]
    RequirementsDue(Vec<String>),
    /// The amount asked for is under the minimum.
    #[error("amount {requested} is below the minimum payout of {minimum}")]
    BelowMinimum {
        /// What was asked.
        requested: Money,
        /// The smallest payout.
        minimum: Money,
    },
    /// The available balance is short of what was asked (or of the minimum, when nothing
    /// was asked).
    #[error("the available referral balance is {available}, short of {needed}")]
    InsufficientBalance {
        /// What the balance holds.
        available: Money,
        /// What the payout needs.
        needed: Money,
    },
}

/// Decides how much a payout request withdraws: `requested`, or the whole `available`
/// balance when nothing was asked for.
pub fn may_request(
    track: Track,
    account: Option<&ConnectState>,
    available: Money,
    requested: Option<Money>,
    minimum: Money,
) -> Result<Money, PayoutRefused> {
    if track != Track::Partner {
        return Err(PayoutRefused::NotPartner);
    }
    let account = account.ok_or(PayoutRefused::StripeNotConnected)?;
    if !account.payouts_enabled {
        return Err(PayoutRefused::PayoutsNotEnabled);
    }
    if !account.requirements_due.is_empty() {
        return Err(PayoutRefused::RequirementsDue(
            account.requirements_due.clone(),
        ));
    }
    let amount = requested.unwrap_or(available);
    if requested.is_some() && amount.amount() < minimum.amount() {
        return Err(PayoutRefused::BelowMinimum {
            requested: amount,
            minimum,
        });
    }
    let needed = if requested.is_some() { amount } else { minimum };
    if available.amount() < needed.amount() {
        return Err(PayoutRefused::InsufficientBalance { available, needed });
    }
    Ok(amount)
}

/// The business days (Monday to Friday) within which a payout sent on `sent_on` is
/// expected at the bank: 2 to 7 business days later (SPEC). Bank holidays are not known
/// here, so the latest date is an estimate, as Stripe's own is.
pub fn arrival_window(sent_on: NaiveDate) -> (NaiveDate, NaiveDate) {
    (add_business_days(sent_on, 2), add_business_days(sent_on, 7))
}

/// `date` plus `days` business days; a weekend day counts from the next Monday.
pub fn add_business_days(date: NaiveDate, days: u32) -> NaiveDate {
    let mut day = date;
    let mut left = days;
    while left > 0 {
        day = day.checked_add_days(Days::new(1)).unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

/// The idempotency key of a payout's transfer, one per payout: a job that dies after
/// Stripe answered asks again with it and gets the first transfer. Stripe keeps a key
/// for a day, so the job also records the transfer as soon as Stripe answers and never
/// asks again once it is recorded.
pub fn transfer_idempotency_key(payout_id: uuid::Uuid) -> String {
    format!("payout-{payout_id}-transfer")
}

/// The idempotency key of the Stripe payout (connected balance to bank) of a payout.
pub fn bank_payout_idempotency_key(payout_id: uuid::Uuid) -> String {
    format!("payout-{payout_id}-bank")
}

/// The idempotency key of the reversal of a failed payout's transfer.
pub fn reversal_idempotency_key(payout_id: uuid::Uuid) -> String {
    format!("payout-{payout_id}-reversal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> ConnectState {
        ConnectState {
            payouts_enabled: true,
            requirements_due: vec![],
        }
    }

    fn usd(cents: i64) -> Money {
        Money::usd_cents(cents)
    }

    #[test]
    fn each_condition_is_refused_on_its_own() {
        let min = usd(2500);
        let ready = ready();
        assert_eq!(
            may_request(Track::Basic, Some(&ready), usd(5000), None, min),
            Err(PayoutRefused::NotPartner)
        );
        assert_eq!(
            may_request(Track::Partner, None, usd(5000), None, min),
            Err(PayoutRefused::StripeNotConnected)
        );
        let disabled = ConnectState {
            payouts_enabled: false,
            requirements_due: vec![],
        };
        assert_eq!(
            may_request(Track::Partner, Some(&disabled), usd(5000), None, min),
            Err(PayoutRefused::PayoutsNotEnabled)
        );
        let due = ConnectState {
            payouts_enabled: true,
            requirements_due: vec!["external_account".into()],
        };
        assert_eq!(
            may_request(Track::Partner, Some(&due), usd(5000), None, min),
            Err(PayoutRefused::RequirementsDue(vec![
                "external_account".into()
            ]))
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready),
                usd(5000),
                Some(usd(2499)),
                min
            ),
            Err(PayoutRefused::BelowMinimum {
                requested: usd(2499),
                minimum: min
            })
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready), usd(2499), None, min),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(2499),
                needed: min
            })
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready),
                usd(3000),
                Some(usd(3001)),
                min
            ),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(3000),
                needed: usd(3001)
            })
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready), usd(-500), None, min),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(-500),
                needed: min
            })
        );
    }

    #[test]
    fn the_amount_defaults_to_the_whole_balance() {
        let min = usd(2500);
        assert_eq!(
            may_request(Track::Partner, Some(&ready()), usd(3000), None, min),
            Ok(usd(3000))
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready()), usd(2500), None, min),
            Ok(usd(2500))
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready()),
                usd(9000),
                Some(usd(2500)),
                min
            ),
            Ok(usd(2500))
        );
    }

    #[test]
    fn arrival_skips_weekends() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        // Thursday: +2 business days is Monday, +7 the Monday after.
        assert_eq!(
            arrival_window(day("2026-11-26")),
            (day("2026-11-30"), day("2026-12-07"))
        );
        // Saturday counts from Monday.
        assert_eq!(
            arrival_window(day("2026-11-28")),
            (day("2026-12-01"), day("2026-12-08"))
        );
        // Monday.
        assert_eq!(
            arrival_window(day("2026-11-30")),
            (day("2026-12-02"), day("2026-12-09"))
        );
    }

    #[test]
    fn a_payout_has_one_key_per_stripe_call_for_life() {
        let id = uuid::Uuid::nil();
        assert_eq!(transfer_idempotency_key(id), transfer_idempotency_key(id));
        assert_ne!(transfer_idempotency_key(id), reversal_idempotency_key(id));
        assert_ne!(
            transfer_idempotency_key(id),
            bank_payout_idempotency_key(id)
        );
    }
}
