//! A referrer's referred users, newest first, a page at a time (SPEC: Referred-user status).

use sqlx::PgConnection;

use crate::domain::paging::Cursor;
use crate::domain::referrals::{ReferralStatus, ReferredUser};
use crate::store::{referrals, users};
use crate::usecases::UserLookupError;

/// One page of referred users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralPage {
    /// The rows, newest first.
    pub items: Vec<ReferredUser>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Up to `limit` referred users of the referrer with this platform id, after `after`.
pub async fn page(
    conn: &mut PgConnection,
    referrer_platform_id: &str,
    status: Option<ReferralStatus>,
    after: Option<Cursor>,
    limit: u16,
) -> Result<ReferralPage, UserLookupError> {
    let referrer = users::find_by_platform_id(conn, referrer_platform_id)
        .await?
        .ok_or_else(|| UserLookupError::NotFound(referrer_platform_id.to_owned()))?;
    let limit = usize::from(limit.max(1));
    // One row more than asked tells whether another page follows.
    let mut items = referrals::page(
        conn,
        referrer.id,
        status,
        after,
        i64::try_from(limit + 1).unwrap_or(i64::MAX),
    )
    .await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(ReferredUser::cursor)
    } else {
        None
    };
    Ok(ReferralPage { items, next })
}
