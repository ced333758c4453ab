//! A referrer's referred users (SPEC: Referred-user status), newest first, by cursor.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, OpenApi};
use referral_core::domain::paging::Cursor;
use referral_core::domain::referrals::{ReferralStatus, Referred};
use referral_core::usecases::referrals;
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::error::ApiError;
use crate::fields::{Bounded, Choice, CursorText, PlatformId, Text};
use crate::routes::Tag;
use crate::routes::dto::example_instant;

/// Referred-users endpoints.
pub struct ReferralsApi;

/// Referred-user status (SPEC: `NOT_SIGNED_UP` → `SIGNED_UP` → `CONVERTED`).
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReferralStatusView {
    /// A click on the link that never signed up.
    NotSignedUp,
    /// Signed up, no qualifying purchase yet.
    SignedUp,
    /// Made a qualifying purchase ("Made a Spend").
    Converted,
}

impl From<ReferralStatus> for ReferralStatusView {
    fn from(status: ReferralStatus) -> Self {
        match status {
            ReferralStatus::NotSignedUp => Self::NotSignedUp,
            ReferralStatus::SignedUp => Self::SignedUp,
            ReferralStatus::Converted => Self::Converted,
        }
    }
}

impl From<ReferralStatusView> for ReferralStatus {
    fn from(status: ReferralStatusView) -> Self {
        match status {
            ReferralStatusView::NotSignedUp => Self::NotSignedUp,
            ReferralStatusView::SignedUp => Self::SignedUp,
            ReferralStatusView::Converted => Self::Converted,
        }
    }
}

/// One referred user (or click session).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ReferredUserView {
    /// Status.
    pub status: ReferralStatusView,
    /// Signup time, or click time for `NOT_SIGNED_UP`.
    pub at: DateTime<Utc>,
    /// The referred user's platform id (signed-up rows).
    pub user_id: Option<String>,
    /// The referred user's e-mail (signed-up rows).
    pub email: Option<String>,
    /// The click id (`NOT_SIGNED_UP` rows).
    pub click_id: Option<Uuid>,
    /// When they made their first qualifying purchase.
    pub converted_at: Option<DateTime<Utc>>,
}

/// A page of referred users, newest first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ReferredUsersPage {
    /// The rows.
    pub items: Vec<ReferredUserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Example for ReferredUsersPage {
    fn example() -> Self {
        Self {
            items: vec![
                ReferredUserView {
                    status: ReferralStatusView::SignedUp,
                    at: example_instant(2),
                    user_id: Some("user_8412".into()),
                    email: Some("bo@example.com".into()),
                    click_id: None,
                    converted_at: None,
                },
                ReferredUserView {
                    status: ReferralStatusView::NotSignedUp,
                    at: example_instant(1),
                    user_id: None,
                    email: None,
                    click_id: Some(Uuid::nil()),
                    converted_at: None,
                },
            ],
            next_cursor: None,
        }
    }
}

/// Rows per page.
type PageLimit = Bounded<1, 100>;

#[OpenApi(prefix_path = "/v1/users", tag = "Tag::Referrals")]
impl ReferralsApi {
    /// The users a referrer brought, newest first: signups (`SIGNED_UP`, `CONVERTED`)
    /// and clicks on their link that never signed up (`NOT_SIGNED_UP`).
    #[oai(
        path = "/:user_id/referrals",
        method = "get",
        operation_id = "listReferrals"
    )]
    async fn referrals(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<Text<PlatformId>>,
        /// Only rows with this status.
        status: Query<Option<Choice<ReferralStatusView>>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Text<CursorText>>>,
        /// Rows per page (1–100, default 20).
        limit: Query<Option<PageLimit>>,
    ) -> Result<Json<ReferredUsersPage>, ApiError> {
        // The cursor's type already checked that it decodes.
        let after = cursor.0.and_then(|text| Cursor::decode(text.as_str()));
        let limit = limit.0.map_or(20, |l| u16::try_from(l.0).unwrap_or(20));
        let mut conn = state.pool.acquire().await?;
        let page = referrals::page(
            &mut conn,
            user_id.0.as_str(),
            status.0.map(|s| s.0.into()),
            after,
            limit,
        )
        .await?;
        let items = page
            .items
            .into_iter()
            .map(|row| {
                let status = row.status.into();
                match row.who {
                    Referred::User {
                        platform_user_id,
                        email,
                        converted_at,
                        ..
                    } => ReferredUserView {
                        status,
                        at: row.at,
                        user_id: Some(platform_user_id),
                        email: Some(email),
                        click_id: None,
                        converted_at,
                    },
                    Referred::Click(click_id) => ReferredUserView {
                        status,
                        at: row.at,
                        user_id: None,
                        email: None,
                        click_id: Some(click_id.0),
                        converted_at: None,
                    },
                }
            })
            .collect();
        Ok(Json(ReferredUsersPage {
            items,
            next_cursor: page.next.map(|c| c.encode()),
        }))
    }
}
