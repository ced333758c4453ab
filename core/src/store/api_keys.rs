//! API keys: stored only as SHA-256 hashes; the plaintext is shown once, at creation.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::ApiKeyId;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Server-to-server calls of the embedding platform.
    Platform,
    /// Operations: job lists and retries.
    Admin,
}

impl ApiRole {
    /// The role's name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Platform => "platform",
            ApiRole::Admin => "admin",
        }
    }
}

/// A key as the authenticator sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Human label.
    pub name: String,
    /// Its role.
    pub role: ApiRole,
}

/// A freshly created key: the only moment its plaintext exists.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The bearer token to hand to the client.
    pub plaintext: String,
}

fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Creates a key with 256 random bits and stores its hash.
pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    role: ApiRole,
) -> Result<CreatedApiKey, StoreError> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plaintext = format!("rk_{}_{}", role.as_str(), hex::encode(secret));
    let key = sqlx::query_as::<_, ApiKey>(
        "insert into api_keys (id, name, role, key_hash) values ($1, $2, $3, $4)
         returning id, name, role",
    )
    .bind(ApiKeyId::generate())
    .bind(name)
    .bind(role)
    .bind(hash(&plaintext))
    .fetch_one(conn)
    .await?;
    Ok(CreatedApiKey { key, plaintext })
}

/// The live key whose plaintext is `presented`, if any.
pub async fn find_by_plaintext(
    conn: &mut PgConnection,
    presented: &str,
) -> Result<Option<ApiKey>, StoreError> {
    // Looked up by hash: timing reveals nothing about the stored key.
    Ok(sqlx::query_as::<_, ApiKey>(
        "select id, name, role from api_keys where key_hash = $1 and revoked_at is null",
    )
    .bind(hash(presented))
    .fetch_optional(conn)
    .await?)
}
