//! API keys: created by operators, checked on every request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

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

/// Revokes every live key named `name`. Each api process trusts a key it checked for at
/// most [`KeyCache`]'s lifetime (0.9 s), so within a second every request with one
/// of them is refused, whichever process serves it. Returns how many were revoked.
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
    require_role(key, required)
}

fn require_role(key: ApiKey, required: ApiRole) -> Result<ApiKey, AuthError> {
    if key.role != required {
        return Err(AuthError::WrongRole {
            required,
            presented: key.role,
        });
    }
    Ok(key)
}

/// The keys one api process found live lately, so that a busy client costs one key
/// lookup per second instead of one per request. Only live keys are kept: a new key
/// works at once and a wrong one is looked up every time.
#[derive(Debug)]
pub struct KeyCache {
    trust_for: Duration,
    checked: Mutex<HashMap<String, CheckedKey>>,
}

#[derive(Debug, Clone)]
struct CheckedKey {
    key: ApiKey,
    /// When the lookup that found it began: a revocation committed after that instant
    /// is seen by the first lookup after `trust_for`.
    looked_up_at: Instant,
}

/// More distinct live keys than any installation has; past it the cache starts over
/// rather than grow.
const MAX_CACHED_KEYS: usize = 10_000;

impl Default for KeyCache {
    /// Under a second, so that a revocation is in force everywhere within one even
    /// counting the time a request takes to arrive.
    fn default() -> Self {
        Self::new(Duration::from_millis(900))
    }
}

impl KeyCache {
    /// A cache that trusts a lookup for `trust_for`: the longest a revoked key keeps
    /// working in this process.
    pub fn new(trust_for: Duration) -> Self {
        Self {
            trust_for,
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// As [`authenticate`], answered from a lookup made less than `trust_for` ago when
    /// there is one.
    pub async fn authenticate(
        &self,
        pool: &PgPool,
        presented: &str,
        required: ApiRole,
    ) -> Result<ApiKey, AuthError> {
        let hash = api_key::hash(presented);
        if let Some(key) = self.fresh(&hash) {
            return require_role(key, required);
        }
        let looked_up_at = Instant::now();
        let found = {
            let mut conn = pool.acquire().await.map_err(StoreError::from)?;
            api_keys::find_by_hash(&mut conn, &hash).await?
        };
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(key) = found else {
            checked.remove(&hash);
            return Err(AuthError::UnknownKey);
        };
        if checked.len() >= MAX_CACHED_KEYS {
            checked.clear();
        }
        checked.insert(
            hash,
            CheckedKey {
                key: key.clone(),
                looked_up_at,
            },
        );
        drop(checked);
        require_role(key, required)
    }

    fn fresh(&self, hash: &str) -> Option<ApiKey> {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked
            .get(hash)
            .filter(|entry| entry.looked_up_at.elapsed() < self.trust_for)
            .map(|entry| entry.key.clone())
    }
}
