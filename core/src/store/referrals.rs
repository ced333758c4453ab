//! A referrer's referred users (SPEC: Referred-user status): signups they brought, and
//! clicks on their link that never signed up.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::UserId;

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

/// One row of the referred-users table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReferralRow {
    /// The user's or the click's id (the row's identity).
    pub id: uuid::Uuid,
    /// Status.
    pub status: ReferralStatus,
    /// Signup time, or click time for `NOT_SIGNED_UP`.
    pub at: DateTime<Utc>,
    /// The platform's id of the referred user (signed-up rows).
    pub platform_user_id: Option<String>,
    /// Their e-mail (signed-up rows).
    pub email: Option<String>,
    /// When they converted.
    pub converted_at: Option<DateTime<Utc>>,
}

/// Position after which a page starts: the last row's `(at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `at` of the last row seen.
    pub at: DateTime<Utc>,
    /// `id` of the last row seen.
    pub id: uuid::Uuid,
}

impl Cursor {
    /// Opaque text form.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: uuid::Uuid::parse_str(id).ok()?,
        })
    }
}

/// A page of a referrer's referred users, newest first.
pub async fn page(
    conn: &mut PgConnection,
    referrer: UserId,
    status: Option<ReferralStatus>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<ReferralRow>, StoreError> {
    Ok(sqlx::query_as::<_, ReferralRow>(
        "select * from (
             select u.id, case when u.converted_at is null then 'SIGNED_UP' else 'CONVERTED' end as status,
                    u.signed_up_at as at, u.platform_user_id, u.email, u.converted_at
             from users u where u.referred_by = $1
             union all
             select c.id, 'NOT_SIGNED_UP', c.clicked_at, null, null, null
             from clicks c where c.referrer_id = $1 and c.signed_up_user_id is null
         ) r
         where ($2::text is null or r.status = $2)
           and ($3::timestamptz is null or (r.at, r.id) < ($3, $4))
         order by r.at desc, r.id desc
         limit $5",
    )
    .bind(referrer)
    .bind(status)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            id: uuid::Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("garbage"), None);
    }
}
