//! Shapes shared by several endpoints.

use poem_openapi::Object;
use referral_core::Money;
use referral_core::store::users::User;

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
    pub signed_up_at: chrono::DateTime<chrono::Utc>,
}

/// Builds the link and share intents of `user`.
pub fn user_view(
    user: &User,
    referred_by: Option<String>,
    public_base_url: &str,
    signup_credit: Money,
) -> UserView {
    let link = referral_link(public_base_url, &user.referral_code);
    let message = format!(
        "Join me and get ${} of credit when you sign up with my link:",
        signup_credit.amount()
    );
    let x = url_with(
        "https://x.com/intent/tweet",
        &[("text", message.as_str()), ("url", link.as_str())],
    );
    let linkedin = url_with(
        "https://www.linkedin.com/feed/",
        &[
            ("shareActive", "true"),
            ("text", &format!("{message} {link}")),
        ],
    );
    UserView {
        user_id: user.platform_user_id.clone(),
        email: user.email.clone(),
        referral_code: user.referral_code.clone(),
        referral_link: link,
        share: ShareLinks {
            message,
            x,
            linkedin,
        },
        referred_by,
        signed_up_at: user.signed_up_at,
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
