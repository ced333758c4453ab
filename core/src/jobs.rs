//! Job payloads and the transactional enqueue (SPEC: Jobs).
//!
//! A job that belongs to a business write is inserted through the caller's transaction,
//! so the job exists exactly when the write does (the SQL lives in [`store::jobs`]).
//! Queue names are frozen: renaming one orphans its jobs.

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{CommissionId, EmailId, PayoutId, RefundId, UserId};
use crate::store;

/// A durable job: its payload and where it queues.
pub trait Job:
    Serialize + DeserializeOwned + Send + Sync + Unpin + std::fmt::Debug + 'static
{
    /// The queue name, frozen once deployed.
    const QUEUE: &'static str;
    /// Attempts before the job stays failed for an operator to look at.
    const MAX_ATTEMPTS: u32 = 8;
}

/// Send one stored e-mail over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendEmail {
    /// The e-mail row to send.
    pub email_id: EmailId,
}

impl Job for SendEmail {
    const QUEUE: &'static str = "send_email";
    /// As long as a payout's: about four hours of a mail provider's outage (5 s doubling,
    /// capped at an hour) before an operator is needed, not ten minutes.
    const MAX_ATTEMPTS: u32 = 14;
}

/// Grant the signup credit of an attributed signup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantSignupCredit {
    /// The referred user who signed up.
    pub user_id: UserId,
}

impl Job for GrantSignupCredit {
    const QUEUE: &'static str = "grant_signup_credit";
}

/// Remove what is left of a signup credit grant when it expires (timer, +30 days).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpireSignupCredit {
    /// The referred user whose signup credit expires.
    pub user_id: UserId,
    /// When it expires; the job re-checks it against the clock.
    pub due_at: DateTime<Utc>,
}

impl Job for ExpireSignupCredit {
    const QUEUE: &'static str = "expire_signup_credit";
}

/// Make a commission payable once its 30-day hold is over (timer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MakeCommissionEligible {
    /// The commission.
    pub commission_id: CommissionId,
    /// When its hold ends; the job re-checks it against the clock.
    pub due_at: DateTime<Utc>,
}

impl Job for MakeCommissionEligible {
    const QUEUE: &'static str = "make_commission_eligible";
}

/// Pay an eligible commission to the wallet (Basic) or the referral balance (Partner).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PayCommission {
    /// The commission.
    pub commission_id: CommissionId,
}

impl Job for PayCommission {
    const QUEUE: &'static str = "pay_commission";
}

/// Apply a refund to its purchase's commission: cancel, reduce or reverse it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReverseCommission {
    /// The refund.
    pub refund_id: RefundId,
}

impl Job for ReverseCommission {
    const QUEUE: &'static str = "reverse_commission";
}

/// Send a requested payout to Stripe: the transfer, then the payout to the bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendPayoutTransfer {
    /// The payout.
    pub payout_id: PayoutId,
}

impl Job for SendPayoutTransfer {
    const QUEUE: &'static str = "send_payout_transfer";
    /// With the default backoff (5 s doubling, capped at an hour), about four hours of
    /// retries through a Stripe outage before an operator is needed; every retry is safe
    /// (idempotency keys).
    const MAX_ATTEMPTS: u32 = 14;
}

/// Take a failed payout's money back from the connected account (a transfer reversal),
/// so it is not both in the user's referral balance and in their Stripe balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReversePayoutTransfer {
    /// The failed payout.
    pub payout_id: PayoutId,
}

impl Job for ReversePayoutTransfer {
    const QUEUE: &'static str = "reverse_payout_transfer";
    const MAX_ATTEMPTS: u32 = 14;
}

/// The periodic reconciliation sweep and retention of finished jobs. Each run schedules
/// the next one, one per time slot (the slot is the job's idempotency key), so any number
/// of workers keep exactly one sweep going.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reconcile {
    /// The instant this sweep was scheduled for.
    pub slot: DateTime<Utc>,
}

impl Job for Reconcile {
    const QUEUE: &'static str = "reconcile";
    const MAX_ATTEMPTS: u32 = 3;
}

/// Every queue the worker serves, for operations and tests.
pub const ALL_QUEUES: &[&str] = &[
    SendEmail::QUEUE,
    GrantSignupCredit::QUEUE,
    ExpireSignupCredit::QUEUE,
    MakeCommissionEligible::QUEUE,
    PayCommission::QUEUE,
    ReverseCommission::QUEUE,
    SendPayoutTransfer::QUEUE,
    ReversePayoutTransfer::QUEUE,
    Reconcile::QUEUE,
];

/// The id apalis knows a job by (a ULID string).
pub type JobId = String;

/// Enqueue `job` to run as soon as a worker is free, inside the caller's transaction.
pub async fn enqueue_now<J: Job>(conn: &mut PgConnection, job: &J) -> Result<JobId, StoreError> {
    store::jobs::insert(conn, job, None).await
}

/// Enqueue `job` to run at `due_at` unless a job of its queue with `key` was ever
/// enqueued; returns whether it was. Runs in a savepoint of the caller's transaction, so a
/// concurrent insert of the same key costs nothing but this `false`.
pub async fn enqueue_once_at<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: DateTime<Utc>,
    key: &str,
) -> Result<bool, StoreError> {
    store::jobs::insert_once(conn, job, due_at, key).await
}

/// Enqueue `job` to run at `due_at`, inside the caller's transaction.
pub async fn enqueue_at<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    due_at: DateTime<Utc>,
) -> Result<JobId, StoreError> {
    store::jobs::insert(conn, job, Some(due_at)).await
}
