//! Database connection pools of the api and the worker: process setup, not data access.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

/// A connection idle for longer than this is checked (one round trip) before use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool settings for the api and the worker. sqlx pings every connection before handing
/// it out, a round trip per request, on top of the ping it sends when a connection comes
/// back (which closes a broken one). A connection used within the last second is known
/// to be alive, so only one idle longer is pinged before use. A connection that died
/// within that second (the server restarted) fails its statement, which the caller
/// answers as the database being unavailable, and is closed on its way back.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}
