//! The worker: apalis workers over the Postgres queues, one per job type.
//!
//! `runtime` owns what apalis-postgres 1.0 leaves out (backoff, unique worker names) and
//! `wakeups` wakes idle queues by notification instead of polling; `jobs/` holds one handler per job, each a thin shell around a use case.

pub mod config;
pub mod http;
pub mod jobs;
pub mod mailer;
pub mod runtime;
pub mod wakeups;

pub use config::WorkerConfig;
pub use runtime::{JobEnv, Queues, RuntimeSettings, SweepConfig, WorkerHandle};
