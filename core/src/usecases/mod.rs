//! One module per flow: read state, decide with `domain`, write rows, enqueue jobs, all
//! inside the caller's transaction. The api, the pages and the worker's job handlers
//! reach the database only through these. The one exception is the worker's queue
//! runtime (`worker/src/runtime.rs`, `wakeups.rs`), which calls `store::jobs` for the
//! queue's own bookkeeping (a timer woken early put back, a retry's delay, the next due
//! instant): machinery of the job queue, not a business rule.

pub mod api_keys;
pub mod clicks;
pub mod commissions;
pub mod credit;
pub mod dashboard;
pub mod earnings;
pub mod email;
pub mod ledger;
pub mod operations;
pub mod pages;
pub mod partner;
pub mod payouts;
pub mod purchases;
pub mod reconcile;
pub mod referrals;
pub mod signup;
pub mod users;
pub mod wallet;

use crate::error::StoreError;

/// A read or write about one user, named by the platform's id for them.
#[derive(Debug, thiserror::Error)]
pub enum UserLookupError {
    /// No user has this platform id.
    #[error("no user with user_id `{0}`")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
