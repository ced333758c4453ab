//! A referrer's referred users: the signups they brought, and clicks on their link that
//! never signed up, merged newest first.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::paging::Cursor;
use crate::domain::referrals::{ReferralStatus, Referred, ReferredUser};
use crate::error::StoreError;
use crate::ids::{ClickId, UserId};

struct Row {
    id: uuid::Uuid,
    status: ReferralStatus,
    at: DateTime<Utc>,
    platform_user_id: Option<String>,
    email: Option<String>,
    converted_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for ReferredUser {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let who = match row.status {
            ReferralStatus::NotSignedUp => Referred::Click(ClickId(row.id)),
            ReferralStatus::SignedUp | ReferralStatus::Converted => Referred::User {
                id: UserId(row.id),
                platform_user_id: row.platform_user_id.ok_or_else(|| {
                    StoreError::Corrupt(format!("referred user {} has no platform id", row.id))
                })?,
                email: row.email.unwrap_or_default(),
                converted_at: row.converted_at,
            },
        };
        Ok(Self {
            status: row.status,
            at: row.at,
            who,
        })
    }
}

/// A page of a referrer's referred users, newest first, after `after`.
pub async fn page(
    conn: &mut PgConnection,
    referrer: UserId,
    status: Option<ReferralStatus>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<ReferredUser>, StoreError> {
    sqlx::query_as!(
        Row,
        r#"select r.id as "id!", r.status as "status!: ReferralStatus", r.at as "at!",
                  r.platform_user_id, r.email, r.converted_at
           from (
               select u.id,
                      case when u.converted_at is null then 'SIGNED_UP' else 'CONVERTED' end as status,
                      u.signed_up_at as at, u.platform_user_id, u.email, u.converted_at
               from users u where u.referred_by = $1
               union all
               select c.id, 'NOT_SIGNED_UP', c.clicked_at, null, null, null
               from clicks c where c.referrer_id = $1 and c.signed_up_user_id is null
           ) r
           where ($2::text is null or r.status = $2)
             and ($3::timestamptz is null or (r.at, r.id) < ($3, $4::uuid))
           order by r.at desc, r.id desc
           limit $5"#,
        referrer as _,
        status as _,
        after.map(|c| c.at),
        after.map(|c| c.id),
        limit,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(ReferredUser::try_from)
    .collect()
}
