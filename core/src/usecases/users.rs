//! A user as the platform sees them: their code, and who referred them.

use sqlx::PgConnection;

use crate::domain::user::User;
use crate::store::users;
use crate::usecases::UserLookupError;

/// A user and the platform id of their referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The user.
    pub user: User,
    /// The platform id of who referred them, when the signup was attributed.
    pub referred_by: Option<String>,
}

/// The user with this platform id.
pub async fn profile(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<UserProfile, UserLookupError> {
    let user = users::find_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| UserLookupError::NotFound(platform_user_id.to_owned()))?;
    let referred_by = match user.referred_by {
        Some(referrer) => users::platform_id(conn, referrer).await?,
        None => None,
    };
    Ok(UserProfile { user, referred_by })
}
