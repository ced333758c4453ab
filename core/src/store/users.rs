//! Users: platform id, e-mail, permanent referral code, and who referred them.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::commission::Track;
use crate::domain::user::User;
use crate::error::{StoreError, violated_constraint};
use crate::ids::{ClickId, UserId};

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
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// The platform user id is taken.
    #[error("platform user id taken")]
    DuplicatePlatformId,
    /// The e-mail is taken (case-insensitive).
    #[error("e-mail taken")]
    DuplicateEmail,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Unique rules of `users`, named in the migrations so the mapping below never depends on
/// names Postgres would generate.
const PLATFORM_USER_ID_UNIQUE: &str = "users_platform_user_id_unique";
const EMAIL_UNIQUE: &str = "users_email_unique";

/// Inserts a user. `Ok(None)` when the referral code collided (pick another and retry);
/// other unique violations are reported by name.
pub async fn insert(
    conn: &mut PgConnection,
    row: &NewUserRow<'_>,
) -> Result<Option<User>, InsertUserError> {
    let result = sqlx::query_as!(
        User,
        r#"insert into users (id, platform_user_id, email, email_normalized, referral_code,
                              referred_by, attributed_click_id, signed_up_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           on conflict (referral_code) do nothing
           returning id as "id: UserId", platform_user_id, email, email_normalized,
                     referral_code, referred_by as "referred_by: UserId",
                     attributed_click_id as "attributed_click_id: ClickId",
                     signed_up_at, converted_at"#,
        row.id as _,
        row.platform_user_id,
        row.email,
        row.email_normalized,
        row.referral_code,
        row.referred_by as _,
        row.attributed_click_id as _,
        row.signed_up_at,
    )
    .fetch_optional(conn)
    .await;
    match result {
        Ok(user) => Ok(user),
        Err(e) => match violated_constraint(&e) {
            Some(PLATFORM_USER_ID_UNIQUE) => Err(InsertUserError::DuplicatePlatformId),
            Some(EMAIL_UNIQUE) => Err(InsertUserError::DuplicateEmail),
            _ => Err(InsertUserError::Store(e.into())),
        },
    }
}

/// The user with this platform id.
pub async fn find_by_platform_id(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as!(
        User,
        r#"select id as "id: UserId", platform_user_id, email, email_normalized, referral_code,
                  referred_by as "referred_by: UserId",
                  attributed_click_id as "attributed_click_id: ClickId", signed_up_at, converted_at
           from users where platform_user_id = $1"#,
        platform_user_id
    )
    .fetch_optional(conn)
    .await?)
}

/// The user with this platform id, locked until the transaction ends: serializes the
/// writes of one user that must see each other (a spend and its replay). `no key update`
/// so rows that merely reference the user (ledger entries, clicks) are not held up, and
/// a job that locks a grant before writing the user's ledger cannot deadlock with it.
pub async fn lock_by_platform_id(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as!(
        User,
        r#"select id as "id: UserId", platform_user_id, email, email_normalized, referral_code,
                  referred_by as "referred_by: UserId",
                  attributed_click_id as "attributed_click_id: ClickId", signed_up_at, converted_at
           from users where platform_user_id = $1 for no key update"#,
        platform_user_id
    )
    .fetch_optional(conn)
    .await?)
}

/// The owner of a referral code.
pub async fn find_by_code(conn: &mut PgConnection, code: &str) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as!(
        User,
        r#"select id as "id: UserId", platform_user_id, email, email_normalized, referral_code,
                  referred_by as "referred_by: UserId",
                  attributed_click_id as "attributed_click_id: ClickId", signed_up_at, converted_at
           from users where referral_code = $1"#,
        code
    )
    .fetch_optional(conn)
    .await?)
}

/// A user by id.
pub async fn find(conn: &mut PgConnection, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as!(
        User,
        r#"select id as "id: UserId", platform_user_id, email, email_normalized, referral_code,
                  referred_by as "referred_by: UserId",
                  attributed_click_id as "attributed_click_id: ClickId", signed_up_at, converted_at
           from users where id = $1"#,
        id as _,
    )
    .fetch_optional(conn)
    .await?)
}

/// The platform id of a user, for showing who referred whom.
pub async fn platform_id(
    conn: &mut PgConnection,
    id: UserId,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar!("select platform_user_id from users where id = $1", id as _,)
            .fetch_optional(conn)
            .await?,
    )
}

/// A user's commission track, share-locked until the transaction ends: a purchase that
/// reads a referrer's track commits before the referrer can change it, or after.
pub async fn track(conn: &mut PgConnection, id: UserId) -> Result<Track, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select track as "track: Track" from users where id = $1 for share"#,
        id as _
    )
    .fetch_one(conn)
    .await?)
}

/// A user's commission track as of the caller's snapshot, without a lock: for reads that
/// show it, never for a decision a write depends on (use [`track`] there).
pub async fn track_unlocked(conn: &mut PgConnection, id: UserId) -> Result<Track, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select track as "track: Track" from users where id = $1"#,
        id as _
    )
    .fetch_one(conn)
    .await?)
}

/// The e-mail address of a user.
pub async fn email_of(conn: &mut PgConnection, id: UserId) -> Result<String, StoreError> {
    Ok(
        sqlx::query_scalar!("select email from users where id = $1", id as _)
            .fetch_one(conn)
            .await?,
    )
}

/// Marks a referred user converted by their first qualifying purchase; later ones leave
/// the first instant alone.
pub async fn mark_converted(
    conn: &mut PgConnection,
    id: UserId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update users set converted_at = $2 where id = $1 and converted_at is null",
        id as _,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}
