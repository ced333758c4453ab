//! A referrer's referred users (SPEC: Referred-user status): `NOT_SIGNED_UP` (a click
//! that never signed up) → `SIGNED_UP` → `CONVERTED` after the first qualifying purchase.

use chrono::{DateTime, Utc};

use crate::domain::paging::Cursor;
use crate::ids::{ClickId, UserId};

/// Where a referred user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReferralStatus {
    /// A click session that never signed up.
    NotSignedUp,
    /// Signed up, no qualifying purchase yet.
    SignedUp,
    /// Made a qualifying purchase ("Made a Spend").
    Converted,
}

/// Who a row of the referred-users table is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referred {
    /// A user who signed up through the link.
    User {
        /// Our id.
        id: UserId,
        /// The platform's id for them.
        platform_user_id: String,
        /// Their e-mail.
        email: String,
        /// When they first made a qualifying purchase.
        converted_at: Option<DateTime<Utc>>,
    },
    /// A click on the link that never led to a signup.
    Click(ClickId),
}

/// One row of the referred-users table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferredUser {
    /// Status.
    pub status: ReferralStatus,
    /// Signup time, or click time for `NOT_SIGNED_UP`.
    pub at: DateTime<Utc>,
    /// The user or the click.
    pub who: Referred,
}

impl ReferredUser {
    /// The paging position of this row.
    pub fn cursor(&self) -> Cursor {
        let id = match &self.who {
            Referred::User { id, .. } => id.0,
            Referred::Click(id) => id.0,
        };
        Cursor { at: self.at, id }
    }
}
