//! Injectable time. Every business decision reads "now" from a [`Clock`] once per
//! transaction, so 30-day timers are tested by moving a [`ManualClock`], never by waiting.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, used in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // Whole microseconds, what Postgres keeps: an instant the API returns equals the one
    // it stored.
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to; shared by the api and worker under test.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing still at `start`, cut to whole microseconds: what Postgres keeps,
    /// so an instant read back from the database equals the one written.
    pub fn new(start: DateTime<Utc>) -> Self {
        let start = start.trunc_subsecs(6);
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock starting at the wall clock's current instant.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Jump to `instant`.
    pub fn set(&self, instant: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = instant.trunc_subsecs(6);
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::days(30));
        assert_eq!(clock.now(), start + Duration::days(30));
        let shared = clock.clone();
        shared.set(start);
        assert_eq!(clock.now(), start, "clones share one instant");
    }
}
