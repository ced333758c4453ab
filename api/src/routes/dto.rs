//! Shapes shared by several endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use poem_openapi::types::Example;
use referral_core::Money;
use referral_core::usecases::users::UserProfile;

use crate::AppState;

/// An amount of money: a decimal string with cents, and a currency code.
#[derive(Debug, Clone, Object)]
pub struct MoneyView {
    /// Decimal string, e.g. `"2.50"`.
    pub amount: String,
    /// ISO 4217 code; only `USD` for now.
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        Self {
            amount: money.amount().to_string(),
            currency: money.currency().code().to_owned(),
        }
    }
}

/// Ready-made ways to share a referral link.
#[derive(Debug, Clone, Object)]
pub struct ShareLinks {
    /// The default message, mentioning the signup credit.
    pub message: String,
    /// X (Twitter) share intent.
    pub x: String,
    /// LinkedIn share intent.
    pub linkedin: String,
}

/// A user as the platform sees it.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserView {
    /// The platform's id for the user.
    pub user_id: String,
    /// E-mail as given.
    pub email: String,
    /// Permanent, URL-safe referral code.
    pub referral_code: String,
    /// The share link, `PUBLIC_BASE_URL?ref=CODE`.
    pub referral_link: String,
    /// Share intents with a default message.
    pub share: ShareLinks,
    /// Platform id of the referrer, if the signup was attributed.
    pub referred_by: Option<String>,
    /// When the user signed up.
    pub signed_up_at: DateTime<Utc>,
}

impl UserView {
    /// The user of `profile`, with their link and share intents.
    pub fn of(profile: &UserProfile, state: &AppState) -> Self {
        share_view(
            profile,
            &state.config.public_base_url,
            state.settings.signup_credit,
        )
    }
}

impl Example for UserView {
    fn example() -> Self {
        Self {
            user_id: "user_8412".into(),
            email: "bo@example.com".into(),
            referral_code: "az2mjqnv".into(),
            referral_link: referral_link("https://platform.example/join", "az2mjqnv"),
            share: share_links(
                "https://platform.example/join?ref=az2mjqnv",
                Money::usd_cents(250),
            ),
            referred_by: Some("user_17".into()),
            signed_up_at: example_instant(2),
        }
    }
}

fn share_links(link: &str, signup_credit: Money) -> ShareLinks {
    let message = format!(
        "Join me and get ${} of credit when you sign up with my link:",
        signup_credit.amount()
    );
    let x = url_with(
        "https://x.com/intent/tweet",
        &[("text", message.as_str()), ("url", link)],
    );
    let linkedin = url_with(
        "https://www.linkedin.com/feed/",
        &[
            ("shareActive", "true"),
            ("text", &format!("{message} {link}")),
        ],
    );
    ShareLinks {
        message,
        x,
        linkedin,
    }
}

fn share_view(profile: &UserProfile, public_base_url: &str, signup_credit: Money) -> UserView {
    let user = &profile.user;
    let link = referral_link(public_base_url, &user.referral_code);
    UserView {
        user_id: user.platform_user_id.clone(),
        email: user.email.clone(),
        referral_code: user.referral_code.clone(),
        share: share_links(&link, signup_credit),
        referral_link: link,
        referred_by: profile.referred_by.clone(),
        signed_up_at: user.signed_up_at,
    }
}

/// A fixed instant in November 2026 for the docs' examples.
pub fn example_instant(day: u32) -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(2026, 11, day)
        .and_then(|d| d.and_hms_opt(9, 30, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

/// A USD amount for the docs' examples.
pub fn usd_view(amount: &str) -> MoneyView {
    MoneyView {
        amount: amount.into(),
        currency: "USD".into(),
    }
}

/// `base?ref=CODE` (or `&ref=` when `base` already has a query).
pub fn referral_link(base: &str, code: &str) -> String {
    url_with(base, &[("ref", code)])
}

/// `base` with `pairs` appended to its query string, percent-encoded.
pub fn url_with(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        // Config validated the scheme at start; keep the link usable regardless.
        Err(_) => {
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{base}?{}", query.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_code() {
        assert_eq!(
            referral_link("https://ex.com/r", "abc23456"),
            "https://ex.com/r?ref=abc23456"
        );
        assert_eq!(
            referral_link("https://ex.com/join?src=x", "abc23456"),
            "https://ex.com/join?src=x&ref=abc23456"
        );
    }
}
