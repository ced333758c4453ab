//! API keys: created by operators, checked on every request.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::api_key::{self, ApiKey, ApiRole};
use crate::error::StoreError;
use crate::store::api_keys;

/// A freshly created key: the only moment its plaintext exists.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The bearer token to hand to the client.
    pub plaintext: String,
}

/// Creates a key of `role` and stores only its hash.
pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    role: ApiRole,
) -> Result<CreatedApiKey, StoreError> {
    let plaintext = api_key::generate_plaintext(role);
    let key = api_keys::insert(conn, name, role, &api_key::hash(&plaintext)).await?;
    Ok(CreatedApiKey { key, plaintext })
}

/// Revokes every live key named `name`: each api process checks keys against the
/// database on every request, so the next request with one of them is refused,
/// whichever process serves it. Returns how many were revoked.
pub async fn revoke(
    conn: &mut PgConnection,
    name: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    api_keys::revoke_by_name(conn, name, now).await
}

/// Why a presented key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No live key has this plaintext.
    #[error("unknown or revoked API key")]
    UnknownKey,
    /// The key is live but of another role.
    #[error("this endpoint needs a {} key; the key sent is a {} key", .required.as_str(), .presented.as_str())]
    WrongRole {
        /// The role the endpoint needs.
        required: ApiRole,
        /// The role of the key sent.
        presented: ApiRole,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The live key whose plaintext is `presented`, if it has the `required` role.
pub async fn authenticate(
    conn: &mut PgConnection,
    presented: &str,
    required: ApiRole,
) -> Result<ApiKey, AuthError> {
    let key = api_keys::find_by_hash(conn, &api_key::hash(presented))
        .await?
        .ok_or(AuthError::UnknownKey)?;
    if key.role != required {
        return Err(AuthError::WrongRole {
            required,
            presented: key.role,
        });
    }
    Ok(key)
}
