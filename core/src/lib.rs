//! The referral engine's business: money, program rules, data access and job definitions.
//!
//! Nothing here speaks HTTP or runs a worker loop. The `domain` modules are pure rules
//! (no IO, no async) so they are tested without a database; `store` holds the SQL, one
//! file per table group; `usecases` combine the two inside a caller's transaction.
#![warn(missing_docs)]
#![deny(clippy::float_arithmetic)]

pub mod clock;
pub mod config;
pub mod dev_time;
pub mod domain;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod money;
pub mod mutants;
pub mod payments;
pub mod pool;
pub mod settings;
pub mod startup;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod usecases;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use money::{Currency, Money, MoneyError, Rate};
pub use settings::ProgramSettings;
