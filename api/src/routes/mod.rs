//! Endpoints, one module per feature.

pub mod admin;
pub mod clicks;
pub mod commissions;
pub mod dev;
pub mod dto;
pub mod health;
pub mod partner;
pub mod payouts;
pub mod purchases;
pub mod referrals;
pub mod users;
pub mod wallet;

/// Tags grouping the endpoints in the docs.
#[derive(poem_openapi::Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Users, referral links, clicks, attributed signups, referred users and wallets
    /// (platform key).
    Referrals,
    /// Stripe Connect onboarding, payouts (platform key) and Stripe's webhook (signed by
    /// Stripe).
    Payouts,
    /// Called by Stripe, authenticated by its signature (no API key).
    Webhooks,
    /// Operations: failed jobs and retries (admin key).
    Operations,
}
