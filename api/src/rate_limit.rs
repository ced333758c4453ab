//! Per-address rate limit of the public link redirects (`GET /r/{code}`, `GET /r`): a
//! token bucket per client address, in this process's memory. A burst from one address
//! is refused with 429 and `Retry-After` while every other address is served as usual;
//! the check is a hash lookup under one of many small locks, so it slows no one.
//!
//! Each api process keeps its own buckets: with N processes behind a balancer an address
//! gets up to N times the rate, which is still a bound on what one address can write.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests an address may make: `burst` at once, then `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectLimit {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

const SHARDS: usize = 32;
/// A shard that grows past this forgets its full buckets (addresses idle long enough to
/// have refilled), so memory stays bounded under a scan of many addresses.
const SHARD_SOFT_CAP: usize = 4_096;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(limit: RedirectLimit) -> Self {
        Self {
            per_second: f64::from(limit.per_minute) / 60.0,
            burst: f64::from(limit.burst.max(1)),
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one token for `address` at `now`; when none is left, how long until one is.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let shard = usize::try_from(self.hasher.hash_one(address) % SHARDS as u64).unwrap_or(0);
        let mut buckets = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SHARD_SOFT_CAP {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        }
        let bucket = buckets.entry(address).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = self.refilled(*bucket, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if self.per_second > 0.0 {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        } else {
            Err(Duration::from_secs(60))
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RedirectLimit { per_minute, burst })
    }

    #[test]
    fn a_burst_passes_then_the_address_waits_for_the_rate() {
        let limiter = limiter(60, 3);
        let visitor: IpAddr = [203, 0, 113, 7].into();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(visitor, start), Ok(()));
        }
        let wait = limiter.check(visitor, start).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // One token a second comes back.
        assert_eq!(
            limiter.check(visitor, start + Duration::from_secs(1)),
            Ok(())
        );
        assert!(
            limiter
                .check(visitor, start + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn other_addresses_are_not_slowed_by_one_that_is_limited() {
        let limiter = limiter(60, 2);
        let now = Instant::now();
        let noisy: IpAddr = [203, 0, 113, 7].into();
        for _ in 0..50 {
            let _ = limiter.check(noisy, now);
        }
        for last in 1..=255u8 {
            let other: IpAddr = [198, 51, 100, last].into();
            assert_eq!(limiter.check(other, now), Ok(()));
        }
    }

    #[test]
    fn memory_stays_bounded_under_a_scan_of_addresses() {
        let limiter = limiter(600, 5);
        let start = Instant::now();
        for n in 0..200_000u32 {
            let address: IpAddr = std::net::Ipv4Addr::from(n).into();
            let _ = limiter.check(address, start + Duration::from_millis(u64::from(n)));
        }
        let kept: usize = limiter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= SHARDS * SHARD_SOFT_CAP, "{kept} buckets kept");
    }
}
