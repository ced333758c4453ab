//! Starting a service while its database restarts.
//!
//! A process started a moment before PostgreSQL goes down (a crash, a failover, the
//! database restarting with the machine) would otherwise exit at its first query. Each
//! start-up step that talks to the database is retried for a while instead, with growing
//! pauses; a step still failing after [`PATIENCE`] ends the start with its last error.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How long a start-up step is retried.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `step` until it succeeds, retrying for [`PATIENCE`]; `what` names it in the logs.
pub async fn retried<T, E, F, Fut>(what: &'static str, mut step: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(250);
    loop {
        match step().await {
            Ok(done) => return Ok(done),
            Err(error) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(step = what, %error, retry_in_ms = pause.as_millis(), "cannot start yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_step_failing_for_a_while_is_retried_until_it_succeeds() {
        let tries = AtomicU32::new(0);
        let answer = retried("test", || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                Err("database restarting")
            } else {
                Ok(42)
            }
        })
        .await;
        assert_eq!(answer, Ok(42));
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_never_succeeds_ends_the_start_with_its_error() {
        let started = tokio::time::Instant::now();
        let answer: Result<(), &str> = retried("test", || async { Err("no such database") }).await;
        assert_eq!(answer, Err("no such database"));
        assert!(started.elapsed() <= PATIENCE);
        assert!(started.elapsed() >= PATIENCE - Duration::from_secs(5));
    }
}
