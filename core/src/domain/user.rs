//! A platform user as this engine knows them: referrer, referred user, or both.

use chrono::{DateTime, Utc};

use crate::ids::{ClickId, UserId};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Our id.
    pub id: UserId,
    /// The platform's id for them.
    pub platform_user_id: String,
    /// E-mail as given.
    pub email: String,
    /// Normalized e-mail (self-referral checks).
    pub email_normalized: String,
    /// Their permanent referral code.
    pub referral_code: String,
    /// Who referred them, if anyone.
    pub referred_by: Option<UserId>,
    /// The click that attributed them, if any.
    pub attributed_click_id: Option<ClickId>,
    /// When they signed up.
    pub signed_up_at: DateTime<Utc>,
    /// When they first made a qualifying purchase.
    pub converted_at: Option<DateTime<Utc>>,
}
