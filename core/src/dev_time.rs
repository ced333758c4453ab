//! Local time travel (`DEV_TIME_TRAVEL`): everything about it lives here.
//!
//! A local installation can move its clock forward so the README walk-through reaches
//! "30 days later" on a running system. The offset is one row in the database so the api
//! and every worker process agree on it. A normal installation never builds an
//! [`OffsetClock`]: its processes read [`crate::SystemClock`], and the admin endpoint
//! that moves the clock answers that time travel is off.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::store::jobs;

/// The wall clock moved forward by an offset that a *local* installation can change.
/// Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock {
    offset_ms: Arc<AtomicI64>,
    /// This process's own error, on top of the shared offset: a local stand-in for a
    /// machine whose clock is off (`DEV_CLOCK_SKEW_SECS`, used by the fault suite).
    skew: Duration,
}

impl OffsetClock {
    /// Sets the offset from the wall clock.
    pub fn set_offset(&self, offset: Duration) {
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::SeqCst);
    }

    /// The current offset.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.offset() + self.skew
    }
}

/// How often processes re-read the shared offset.
pub const REFRESH: StdDuration = StdDuration::from_millis(250);

/// How long other processes may take to see a new offset.
const PROPAGATION: StdDuration = StdDuration::from_millis(600);

async fn read_offset(conn: &mut PgConnection) -> Result<Duration, StoreError> {
    let ms = sqlx::query_scalar!("select offset_ms from dev_clock")
        .fetch_one(conn)
        .await?;
    Ok(Duration::milliseconds(ms))
}

async fn add_offset(conn: &mut PgConnection, by: Duration) -> Result<Duration, StoreError> {
    let ms = sqlx::query_scalar!(
        "update dev_clock set offset_ms = offset_ms + $1 returning offset_ms",
        by.num_milliseconds()
    )
    .fetch_one(conn)
    .await?;
    Ok(Duration::milliseconds(ms))
}

/// A clock that follows the stored offset, refreshed every [`REFRESH`] for as long as
/// the process runs. The offset is read once before it returns: a process restarted
/// after the clock moved must never stamp a purchase or a timer with the wall clock.
pub async fn follow(pool: PgPool) -> Result<OffsetClock, StoreError> {
    follow_skewed(pool, Duration::zero()).await
}

/// [`follow`], for a process whose clock is `skew` off the others'.
pub async fn follow_skewed(pool: PgPool, skew: Duration) -> Result<OffsetClock, StoreError> {
    let clock = OffsetClock {
        skew,
        ..OffsetClock::default()
    };
    clock.set_offset(read_offset(&mut *pool.acquire().await?).await?);
    let following = clock.clone();
    tokio::spawn(async move {
        loop {
            match pool.acquire().await {
                Ok(mut conn) => match read_offset(&mut conn).await {
                    Ok(offset) => following.set_offset(offset),
                    Err(error) => tracing::warn!(error = ?error, "cannot read dev clock offset"),
                },
                Err(error) => tracing::warn!(error = ?error, "cannot read dev clock offset"),
            }
            tokio::time::sleep(REFRESH).await;
        }
    });
    Ok(clock)
}

/// What moving the clock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// The installation's "now" after the move.
    pub now: DateTime<Utc>,
    /// How far it runs ahead of the wall clock.
    pub offset: Duration,
    /// Waiting jobs that became due and were started.
    pub jobs_made_due: u64,
}

/// Moves the shared clock forward by `by`, waits until every process can have seen it,
/// then starts the jobs due by the new time.
pub async fn advance(
    pool: &PgPool,
    clock: &OffsetClock,
    by: Duration,
) -> Result<Advanced, StoreError> {
    let offset = {
        let mut conn = pool.acquire().await?;
        add_offset(&mut conn, by).await?
    };
    clock.set_offset(offset);
    // Without the wait a worker could run a timer before it sees the new offset, find it
    // "not yet due" and put it back to sleep. No connection is held while waiting.
    tokio::time::sleep(PROPAGATION).await;
    let now = clock.now();
    let mut conn = pool.acquire().await?;
    let jobs_made_due = jobs::make_due(&mut conn, now).await?;
    tracing::warn!(
        offset_seconds = offset.num_seconds(),
        jobs_made_due,
        "development clock moved"
    );
    Ok(Advanced {
        now,
        offset,
        jobs_made_due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_runs_ahead_by_its_offset() {
        let clock = OffsetClock::default();
        let shared = clock.clone();
        shared.set_offset(Duration::days(30));
        let ahead = clock.now() - SystemClock.now();
        assert!(ahead > Duration::days(30) - Duration::seconds(5) && ahead <= Duration::days(30));
    }

    #[test]
    fn a_skewed_clock_follows_the_shared_offset_from_behind() {
        let clock = OffsetClock {
            skew: Duration::days(-2),
            ..OffsetClock::default()
        };
        clock.set_offset(Duration::days(30));
        let ahead = clock.now() - SystemClock.now();
        assert!(ahead > Duration::days(28) - Duration::seconds(5) && ahead <= Duration::days(28));
    }
}
