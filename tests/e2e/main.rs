//! End-to-end tests: the real api router and worker in-process, a fresh PostgreSQL
//! database per test (`#[sqlx::test]`), a real SMTP server, and a manual clock.

// A test binary: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod browser;
mod foundation;
mod hardening;
mod harness;
mod invariants;
mod operations;
mod pages;
mod partner;
mod payouts;
mod purchases;
mod reconcile;
mod referrals;
mod security;
mod worker;
