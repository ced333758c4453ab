//! Stripe connected accounts, applied Stripe events, and payouts (SPEC: Partner program,
//! Payouts). A payout's ledger entries are posted by the use cases, beside these writes.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::paging::Cursor;
use crate::domain::payout::{ConnectState, PayoutStatus};
use crate::domain::payout::{Payout, StripeAccount};
use crate::error::StoreError;
use crate::ids::{PayoutId, UserId};
use crate::money::Money;
use crate::store::credit::usd;

/// The user's connected account, if any.
pub async fn stripe_account(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Option<StripeAccount>, StoreError> {
    Ok(sqlx::query!(
        "select account_id, payouts_enabled, requirements_due from stripe_accounts where user_id = $1",
        user_id as _
    )
    .fetch_optional(conn)
    .await?
    .map(|row| StripeAccount {
        account_id: row.account_id,
        state: ConnectState {
            payouts_enabled: row.payouts_enabled,
            requirements_due: row.requirements_due,
        },
    }))
}

/// Records the user's connected account, unless one is recorded already; returns the
/// recorded one either way.
pub async fn save_stripe_account(
    conn: &mut PgConnection,
    user_id: UserId,
    account_id: &str,
    state: &ConnectState,
    now: DateTime<Utc>,
) -> Result<StripeAccount, StoreError> {
    sqlx::query!(
        "insert into stripe_accounts (user_id, account_id, payouts_enabled, requirements_due, created_at)
         values ($1, $2, $3, $4, $5) on conflict (user_id) do nothing",
        user_id as _,
        account_id,
        state.payouts_enabled,
        &state.requirements_due,
        now
    )
    .execute(&mut *conn)
    .await?;
    stripe_account(conn, user_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("stripe account vanished after insert".into()))
}

/// Applies Stripe's view of an account, unless a newer one was applied already.
/// Returns whether an account of ours was changed.
pub async fn update_stripe_account(
    conn: &mut PgConnection,
    account_id: &str,
    state: &ConnectState,
    stripe_state_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query!(
        "update stripe_accounts
         set payouts_enabled = $2, requirements_due = $3, stripe_state_at = $4
         where account_id = $1 and (stripe_state_at is null or stripe_state_at <= $4)",
        account_id,
        state.payouts_enabled,
        &state.requirements_due,
        stripe_state_at
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Records a Stripe event as applied; false when it was applied before.
pub async fn record_event(
    conn: &mut PgConnection,
    event_id: &str,
    event_type: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query!(
        "insert into stripe_events (event_id, event_type, received_at) values ($1, $2, $3)
         on conflict (event_id) do nothing",
        event_id,
        event_type,
        now
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

struct PayoutRow {
    id: PayoutId,
    user_id: UserId,
    amount: Decimal,
    status: PayoutStatus,
    stripe_account_id: String,
    transfer_id: Option<String>,
    stripe_payout_id: Option<String>,
    transfer_reversal_id: Option<String>,
    arrival_earliest: Option<NaiveDate>,
    arrival_latest: Option<NaiveDate>,
    failure_reason: Option<String>,
    requested_at: DateTime<Utc>,
    processing_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<PayoutRow> for Payout {
    type Error = StoreError;

    fn try_from(row: PayoutRow) -> Result<Self, StoreError> {
        Ok(Payout {
            id: row.id,
            user_id: row.user_id,
            amount: usd(row.amount)?,
            status: row.status,
            stripe_account_id: row.stripe_account_id,
            transfer_id: row.transfer_id,
            stripe_payout_id: row.stripe_payout_id,
            transfer_reversal_id: row.transfer_reversal_id,
            arrival_earliest: row.arrival_earliest,
            arrival_latest: row.arrival_latest,
            failure_reason: row.failure_reason,
            requested_at: row.requested_at,
            processing_at: row.processing_at,
            finished_at: row.finished_at,
        })
    }
}

/// Records a requested payout.
pub async fn insert_requested(
    conn: &mut PgConnection,
    user_id: UserId,
    amount: Money,
    stripe_account_id: &str,
    now: DateTime<Utc>,
) -> Result<Payout, StoreError> {
    let id = PayoutId::generate();
    sqlx::query!(
        "insert into payouts (id, user_id, amount, currency, status, stripe_account_id, requested_at)
         values ($1, $2, $3, $4, 'REQUESTED', $5, $6)",
        id as _,
        user_id as _,
        amount.amount(),
        amount.currency().code(),
        stripe_account_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    lock(conn, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("payout vanished after insert".into()))
}

/// Loads a payout and locks it for the caller's transaction.
pub async fn lock(conn: &mut PgConnection, id: PayoutId) -> Result<Option<Payout>, StoreError> {
    lock_one(conn, Some(id), None).await
}

/// Locks the payout Stripe knows by this transfer or bank-payout id.
pub async fn lock_by_stripe_id(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<Payout>, StoreError> {
    lock_one(conn, None, Some(stripe_id)).await
}

async fn lock_one(
    conn: &mut PgConnection,
    id: Option<PayoutId>,
    stripe_id: Option<&str>,
) -> Result<Option<Payout>, StoreError> {
    sqlx::query_as!(
        PayoutRow,
        r#"select id as "id: PayoutId", user_id as "user_id: UserId", amount,
                  status as "status: PayoutStatus", stripe_account_id, transfer_id,
                  stripe_payout_id, transfer_reversal_id, arrival_earliest, arrival_latest,
                  failure_reason, requested_at, processing_at, finished_at
           from payouts where id = $1 or transfer_id = $2 or stripe_payout_id = $2
           for update"#,
        id as _,
        stripe_id
    )
    .fetch_optional(conn)
    .await?
    .map(Payout::try_from)
    .transpose()
}

/// A page of the user's payouts, newest first, after `after`.
pub async fn page(
    conn: &mut PgConnection,
    user_id: UserId,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Payout>, StoreError> {
    sqlx::query_as!(
        PayoutRow,
        r#"select id as "id: PayoutId", user_id as "user_id: UserId", amount,
                  status as "status: PayoutStatus", stripe_account_id, transfer_id,
                  stripe_payout_id, transfer_reversal_id, arrival_earliest, arrival_latest, failure_reason,
                  requested_at, processing_at, finished_at
           from payouts
           where user_id = $1 and ($2::timestamptz is null or (requested_at, id) < ($2, $3::uuid))
           order by requested_at desc, id desc
           limit $4"#,
        user_id as _,
        after.map(|c| c.at),
        after.map(|c| c.id),
        limit
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Payout::try_from)
    .collect()
}

/// Marks a requested payout sent: Stripe accepted its transfer and bank payout.
pub async fn mark_processing(
    conn: &mut PgConnection,
    id: PayoutId,
    transfer_id: &str,
    stripe_payout_id: &str,
    arrival: (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update payouts set status = 'PROCESSING', transfer_id = $2, stripe_payout_id = $3,
                            arrival_earliest = $4, arrival_latest = $5, processing_at = $6
         where id = $1 and status = 'REQUESTED'",
        id as _,
        transfer_id,
        stripe_payout_id,
        arrival.0,
        arrival.1,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a payout paid.
pub async fn mark_paid(
    conn: &mut PgConnection,
    payout: &Payout,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update payouts set status = 'PAID', finished_at = $2 where id = $1",
        payout.id as _,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a payout failed (still on its way, or paid and sent back by the bank).
/// `transfer_id` records a transfer Stripe made before the payout failed, if it was not
/// recorded yet.
pub async fn mark_failed(
    conn: &mut PgConnection,
    payout: &Payout,
    transfer_id: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update payouts set status = 'FAILED', failure_reason = $2, finished_at = $3,
                            transfer_id = coalesce(transfer_id, $4)
         where id = $1",
        payout.id as _,
        reason,
        now,
        transfer_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the transfer Stripe made for a requested payout, as soon as Stripe answers,
/// so that no later run asks for it again.
pub async fn record_transfer(
    conn: &mut PgConnection,
    id: PayoutId,
    transfer_id: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update payouts set transfer_id = $2
         where id = $1 and status = 'REQUESTED' and transfer_id is null",
        id as _,
        transfer_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the reversal of a failed payout's transfer.
pub async fn record_reversal(
    conn: &mut PgConnection,
    id: PayoutId,
    reversal_id: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update payouts set transfer_reversal_id = $2 where id = $1 and transfer_reversal_id is null",
        id as _,
        reversal_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the user has a payout not yet paid or failed.
pub async fn in_flight(conn: &mut PgConnection, user_id: UserId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from payouts
           where user_id = $1 and status in ('REQUESTED', 'PROCESSING')"#,
        user_id as _
    )
    .fetch_one(conn)
    .await?)
}

/// The latest payouts of everyone, newest first, each with its user's platform id.
pub async fn recent(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(String, Payout)>, StoreError> {
    let rows = sqlx::query!(
        r#"select u.platform_user_id,
                  p.id as "id: PayoutId", p.user_id as "user_id: UserId", p.amount,
                  p.status as "status: PayoutStatus", p.stripe_account_id, p.transfer_id,
                  p.stripe_payout_id, p.transfer_reversal_id, p.arrival_earliest,
                  p.arrival_latest, p.failure_reason, p.requested_at, p.processing_at,
                  p.finished_at
           from payouts p join users u on u.id = p.user_id
           order by p.requested_at desc, p.id desc
           limit $1"#,
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let payout = Payout::try_from(PayoutRow {
                id: r.id,
                user_id: r.user_id,
                amount: r.amount,
                status: r.status,
                stripe_account_id: r.stripe_account_id,
                transfer_id: r.transfer_id,
                stripe_payout_id: r.stripe_payout_id,
                transfer_reversal_id: r.transfer_reversal_id,
                arrival_earliest: r.arrival_earliest,
                arrival_latest: r.arrival_latest,
                failure_reason: r.failure_reason,
                requested_at: r.requested_at,
                processing_at: r.processing_at,
                finished_at: r.finished_at,
            })?;
            Ok((r.platform_user_id, payout))
        })
        .collect()
}
