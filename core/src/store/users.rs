//! Users: platform id, e-mail, permanent referral code, and who referred them.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{ClickId, UserId};

/// A stored user.
#[derive(Debug, Clone, sqlx::FromRow)]
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

macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "select id, platform_user_id, email, email_normalized, referral_code, referred_by,
                    attributed_click_id, signed_up_at, converted_at from users ",
            $tail
        )
    };
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUserRow<'a> {
    /// Our id.
    pub id: UserId,
    /// The platform's id.
    pub platform_user_id: &'a str,
    /// E-mail as given.
    pub email: &'a str,
    /// Normalized e-mail.
    pub email_normalized: &'a str,
    /// Candidate referral code.
    pub referral_code: &'a str,
    /// Referrer, when attributed.
    pub referred_by: Option<UserId>,
    /// Attributing click.
    pub attributed_click_id: Option<ClickId>,
    /// Signup instant.
    pub signed_up_at: DateTime<Utc>,
}

/// Which unique rule an insert broke.
#[derive(Debug)]
pub enum InsertUserError {
    /// The platform user id is taken.
    DuplicatePlatformId,
    /// The e-mail is taken (case-insensitive).
    DuplicateEmail,
    /// The database failed.
    Store(StoreError),
}

/// Inserts a user. `Ok(None)` when the referral code collided (pick another and retry);
/// other unique violations are reported by name.
pub async fn insert(
    conn: &mut PgConnection,
    row: &NewUserRow<'_>,
) -> Result<Option<User>, InsertUserError> {
    let result = sqlx::query_as::<_, User>(concat!(
        "insert into users (id, platform_user_id, email, email_normalized, referral_code,
                            referred_by, attributed_click_id, signed_up_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (referral_code) do nothing
         returning ",
        "id, platform_user_id, email, email_normalized, referral_code, referred_by,
         attributed_click_id, signed_up_at, converted_at"
    ))
    .bind(row.id)
    .bind(row.platform_user_id)
    .bind(row.email)
    .bind(row.email_normalized)
    .bind(row.referral_code)
    .bind(row.referred_by)
    .bind(row.attributed_click_id)
    .bind(row.signed_up_at)
    .fetch_optional(conn)
    .await;
    match result {
        Ok(user) => Ok(user),
        Err(e) => match crate::error::violated_constraint(&e) {
            Some("users_platform_user_id_key") => Err(InsertUserError::DuplicatePlatformId),
            Some("users_email_unique") => Err(InsertUserError::DuplicateEmail),
            _ => Err(InsertUserError::Store(e.into())),
        },
    }
}

/// The user with this platform id.
pub async fn find_by_platform_id(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<Option<User>, StoreError> {
    Ok(
        sqlx::query_as::<_, User>(select_users!("where platform_user_id = $1"))
            .bind(platform_user_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The owner of a referral code.
pub async fn find_by_code(conn: &mut PgConnection, code: &str) -> Result<Option<User>, StoreError> {
    Ok(
        sqlx::query_as::<_, User>(select_users!("where referral_code = $1"))
            .bind(code)
            .fetch_optional(conn)
            .await?,
    )
}

/// A user by id.
pub async fn find(conn: &mut PgConnection, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>(select_users!("where id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}
