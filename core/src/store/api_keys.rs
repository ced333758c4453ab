//! API keys: stored only as SHA-256 hashes (see `domain::api_key`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::api_key::{ApiKey, ApiRole};
use crate::error::StoreError;
use crate::ids::ApiKeyId;

/// Stores a key by the hash of its plaintext.
pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    role: ApiRole,
    key_hash: &str,
) -> Result<ApiKey, StoreError> {
    Ok(sqlx::query_as!(
        ApiKey,
        r#"insert into api_keys (id, name, role, key_hash) values ($1, $2, $3, $4)
           returning id as "id: ApiKeyId", name, role as "role: ApiRole""#,
        ApiKeyId::generate() as _,
        name,
        role as _,
        key_hash,
    )
    .fetch_one(conn)
    .await?)
}

/// The live key with this hash, if any.
pub async fn find_by_hash(
    conn: &mut PgConnection,
    key_hash: &str,
) -> Result<Option<ApiKey>, StoreError> {
    Ok(sqlx::query_as!(
        ApiKey,
        r#"select id as "id: ApiKeyId", name, role as "role: ApiRole" from api_keys
           where key_hash = $1 and revoked_at is null"#,
        key_hash
    )
    .fetch_optional(conn)
    .await?)
}

/// Revokes the live keys named `name`; returns how many.
pub async fn revoke_by_name(
    conn: &mut PgConnection,
    name: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "update api_keys set revoked_at = $2 where name = $1 and revoked_at is null",
        name,
        now
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The live key with this id, if any.
pub async fn find_live(
    conn: &mut PgConnection,
    id: ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    Ok(sqlx::query_as!(
        ApiKey,
        r#"select id as "id: ApiKeyId", name, role as "role: ApiRole" from api_keys
           where id = $1 and revoked_at is null"#,
        id as _
    )
    .fetch_optional(conn)
    .await?)
}
