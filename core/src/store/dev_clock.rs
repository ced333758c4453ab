//! The shared offset of the local time-travel clock, so the api and every worker
//! process of a local installation agree on "30 days later".

use std::time::Duration as StdDuration;

use chrono::Duration;
use sqlx::PgConnection;

use crate::clock::OffsetClock;
use crate::error::StoreError;

/// The stored offset.
pub async fn read(conn: &mut PgConnection) -> Result<Duration, StoreError> {
    let ms: i64 = sqlx::query_scalar("select offset_ms from dev_clock")
        .fetch_one(conn)
        .await?;
    Ok(Duration::milliseconds(ms))
}

/// Moves the offset forward by `by`; returns the new offset.
pub async fn advance(conn: &mut PgConnection, by: Duration) -> Result<Duration, StoreError> {
    let ms: i64 =
        sqlx::query_scalar("update dev_clock set offset_ms = offset_ms + $1 returning offset_ms")
            .bind(by.num_milliseconds())
            .fetch_one(conn)
            .await?;
    Ok(Duration::milliseconds(ms))
}

/// Keeps `clock` in step with the stored offset, refreshing every `every`, until the
/// returned task is dropped or aborted.
pub fn follow(
    pool: sqlx::PgPool,
    clock: OffsetClock,
    every: StdDuration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match pool.acquire().await {
                Ok(mut conn) => match read(&mut conn).await {
                    Ok(offset) => clock.set_offset(offset),
                    Err(error) => tracing::warn!(error = ?error, "cannot read dev clock offset"),
                },
                Err(error) => tracing::warn!(error = ?error, "cannot read dev clock offset"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
