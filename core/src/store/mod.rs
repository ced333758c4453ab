//! SQL, one file per table group. Every function takes the caller's connection so it
//! can run inside the caller's transaction.

pub mod api_keys;
pub mod clicks;
pub mod commissions;
pub mod credit;
pub mod emails;
pub mod job_actions;
pub mod jobs;
pub mod ledger;
pub mod pages;
pub mod partners;
pub mod payouts;
pub mod purchases;
pub mod reconcile;
pub mod referrals;
pub mod stripe_keys;
pub mod users;
