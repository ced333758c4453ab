//! The page secret (migration 0012).

use sqlx::PgConnection;

use crate::error::StoreError;

/// The installation's page secret: the stored one, or `candidate` stored now when there
/// is none yet. Two processes racing both end up with the one that won.
pub async fn secret(conn: &mut PgConnection, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
    sqlx::query!(
        "insert into page_secret (secret) values ($1) on conflict (singleton) do nothing",
        candidate
    )
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar!("select secret from page_secret")
        .fetch_one(conn)
        .await?)
}
