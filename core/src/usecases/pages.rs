//! Who is looking at a web page: the user an embed token was issued for (the referral
//! dashboard), or the operator a console session belongs to. The pages themselves only
//! call the other use cases, scoped to that user or operator.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sqlx::{PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::domain::api_key::{ApiKey, ApiRole};
use crate::domain::page_tokens::{self, Purpose, TokenError};
use crate::error::StoreError;
use crate::ids::ApiKeyId;
use crate::store::{api_keys, pages, users};
use crate::usecases::UserLookupError;
use crate::usecases::api_keys::{AuthError, authenticate};

/// The installation's page secret, read from the database once per process.
#[derive(Debug, Default)]
pub struct PageSecret {
    secret: OnceCell<Arc<[u8]>>,
}

impl PageSecret {
    /// A secret given by configuration; the database's is then never read or made.
    pub fn fixed(secret: Vec<u8>) -> Self {
        Self {
            secret: OnceCell::new_with(Some(Arc::from(secret))),
        }
    }

    /// The secret: the configured one, or the database's, created on first use by
    /// whichever process gets there first and then kept for the life of the process.
    pub async fn get(&self, pool: &PgPool) -> Result<Arc<[u8]>, StoreError> {
        self.secret
            .get_or_try_init(|| async {
                let mut candidate = [0u8; 32];
                rand::rng().fill_bytes(&mut candidate);
                let mut conn = pool.acquire().await?;
                Ok::<_, StoreError>(Arc::from(pages::secret(&mut conn, &candidate).await?))
            })
            .await
            .cloned()
    }
}

/// An embed token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedToken {
    /// The token, for the dashboard's address.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// A token that opens `platform_user_id`'s dashboard for `ttl`.
pub async fn issue_dashboard_token(
    conn: &mut PgConnection,
    secret: &[u8],
    now: DateTime<Utc>,
    platform_user_id: &str,
    ttl: Duration,
) -> Result<EmbedToken, UserLookupError> {
    if users::find_by_platform_id(conn, platform_user_id)
        .await?
        .is_none()
    {
        return Err(UserLookupError::NotFound(platform_user_id.to_owned()));
    }
    let expires_at = now + ttl;
    Ok(EmbedToken {
        token: page_tokens::sign(secret, Purpose::Dashboard, platform_user_id, expires_at),
        expires_at,
    })
}

/// The platform id of the user whose dashboard `token` opens.
pub fn dashboard_user(
    secret: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<String, TokenError> {
    page_tokens::verify(secret, Purpose::Dashboard, token, now).map(|claims| claims.subject)
}

/// Why a console request is refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session, or an altered or expired one.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The admin key the session was opened with has been revoked since.
    #[error("the API key this session was opened with has been revoked")]
    KeyRevoked,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A console session: its cookie value and the operator's key.
#[derive(Debug, Clone)]
pub struct OpsSession {
    /// The cookie's value.
    pub cookie: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// The admin key it was opened with.
    pub key: ApiKey,
}

/// Opens a console session for whoever holds a live admin key.
pub async fn sign_in(
    conn: &mut PgConnection,
    secret: &[u8],
    now: DateTime<Utc>,
    presented_key: &str,
    lasts: Duration,
) -> Result<OpsSession, AuthError> {
    let key = authenticate(conn, presented_key, ApiRole::Admin).await?;
    let expires_at = now + lasts;
    Ok(OpsSession {
        cookie: page_tokens::sign(secret, Purpose::OpsSession, &key.id.to_string(), expires_at),
        expires_at,
        key,
    })
}

/// The operator of a console session, while the session lasts and its key is live.
pub async fn ops_session(
    conn: &mut PgConnection,
    secret: &[u8],
    cookie: &str,
    now: DateTime<Utc>,
) -> Result<ApiKey, SessionError> {
    let claims = page_tokens::verify(secret, Purpose::OpsSession, cookie, now)?;
    let id = claims
        .subject
        .parse()
        .map(ApiKeyId)
        .map_err(|_| TokenError::Invalid)?;
    match api_keys::find_live(conn, id).await? {
        Some(key) if key.role == ApiRole::Admin => Ok(key),
        _ => Err(SessionError::KeyRevoked),
    }
}

/// The CSRF token for the forms of console session `cookie`.
pub fn csrf_token(secret: &[u8], cookie: &str) -> String {
    page_tokens::csrf_token(secret, cookie)
}

/// Whether a form of console session `cookie` carries its CSRF token.
pub fn csrf_matches(secret: &[u8], cookie: &str, presented: &str) -> bool {
    page_tokens::csrf_matches(secret, cookie, presented)
}
