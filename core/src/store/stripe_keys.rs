//! The generations of the idempotency keys jobs send to Stripe (migration 0014).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;

/// The generation in force for `base_key`: 0 until Stripe refused it for good.
pub async fn generation(conn: &mut PgConnection, base_key: &str) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar!(
        "select generation from stripe_request_generations where base_key = $1",
        base_key
    )
    .fetch_optional(conn)
    .await?
    .unwrap_or(0))
}

/// Stripe refused generation `refused` of `base_key` for good: the next request for the
/// same work goes out under generation `refused + 1`. Two runs that saw the same refusal
/// (a replay of it) advance it once.
pub async fn advance_after_refusal(
    conn: &mut PgConnection,
    base_key: &str,
    refused: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "insert into stripe_request_generations (base_key, generation, refused_at, last_refusal)
         values ($1, $2 + 1, $3, $4)
         on conflict (base_key) do update
            set generation = excluded.generation, refused_at = excluded.refused_at,
                last_refusal = excluded.last_refusal
          where stripe_request_generations.generation = $2",
        base_key,
        refused,
        now,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}
