//! Program settings (SPEC: every number is a default that lives in one place).

use chrono::Duration;

use crate::money::{Money, Rate};

/// The referral program's numbers. The only home of these defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSettings {
    /// How long a click attributes a signup (SPEC: 7 days).
    pub attribution_window: Duration,
    /// Credit granted to an attributed signup (SPEC: $2.50).
    pub signup_credit: Money,
    /// How long the signup credit lasts (SPEC: 30 days).
    pub signup_credit_lifetime: Duration,
    /// Smallest cash part of a qualifying purchase (SPEC: $1.00).
    pub minimum_qualifying_cash: Money,
    /// Basic track commission rate (SPEC: 5 %).
    pub basic_rate: Rate,
    /// Partner track commission rate (SPEC: 10 %).
    pub partner_rate: Rate,
    /// Time from purchase to an eligible commission (SPEC: 30 days).
    pub commission_hold: Duration,
    /// Smallest payout (SPEC: $25.00).
    pub minimum_payout: Money,
}

impl Default for ProgramSettings {
    fn default() -> Self {
        Self {
            attribution_window: Duration::days(7),
            signup_credit: Money::usd_cents(250),
            signup_credit_lifetime: Duration::days(30),
            minimum_qualifying_cash: Money::usd_cents(100),
            basic_rate: Rate::percent(5),
            partner_rate: Rate::percent(10),
            commission_hold: Duration::days(30),
            minimum_payout: Money::usd_cents(2500),
        }
    }
}
