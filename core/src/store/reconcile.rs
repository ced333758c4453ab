//! What the reconciliation sweep looks for: business rows whose timer or job is missing
//! or overdue, and finished jobs old enough to delete.
//!
//! A row counts as covered while its queue holds a job for it that is not `Done`: a job
//! still to run, running, or failed for good (an operator's to retry, not the sweep's).
//! Payloads are matched by their JSON id field, so the sweep costs a scan of a queue only
//! for rows that are already overdue, which should be rare.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{CommissionId, PayoutId, UserId};

/// `PENDING` commissions whose hold ended before `overdue_before`, with no live timer.
pub async fn pending_commissions_without_timer(
    conn: &mut PgConnection,
    overdue_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(CommissionId, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query!(
        r#"select c.id as "id: CommissionId", c.eligible_at from commissions c
         where c.status = 'PENDING' and c.eligible_at < $1
           and not exists (select 1 from apalis.jobs j
                           where j.job_type = 'make_commission_eligible' and j.status <> 'Done'
                             and convert_from(j.job, 'UTF8')::jsonb ->> 'commission_id' = c.id::text)
         order by c.eligible_at limit $2"#,
        overdue_before,
        limit
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| (row.id, row.eligible_at))
    .collect())
}

/// `ELIGIBLE` commissions whose hold ended before `overdue_before`, with no live payment.
pub async fn eligible_commissions_without_payment(
    conn: &mut PgConnection,
    overdue_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<CommissionId>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select c.id as "id: CommissionId" from commissions c
         where c.status = 'ELIGIBLE' and c.eligible_at < $1
           and not exists (select 1 from apalis.jobs j
                           where j.job_type = 'pay_commission' and j.status <> 'Done'
                             and convert_from(j.job, 'UTF8')::jsonb ->> 'commission_id' = c.id::text)
         order by c.eligible_at limit $2"#,
        overdue_before,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Users whose signup credit expired before `overdue_before` with some left, and no live
/// expiry timer.
pub async fn grants_past_expiry_without_timer(
    conn: &mut PgConnection,
    overdue_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(UserId, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query!(
        r#"select g.user_id as "user_id: UserId", g.expires_at as "expires_at!" from credit_grants g
         where g.reason = 'SIGNUP' and g.expired_at is null and g.remaining > 0
           and g.expires_at < $1
           and not exists (select 1 from apalis.jobs j
                           where j.job_type = 'expire_signup_credit' and j.status <> 'Done'
                             and convert_from(j.job, 'UTF8')::jsonb ->> 'user_id' = g.user_id::text)
         order by g.expires_at limit $2"#,
        overdue_before,
        limit
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| (row.user_id, row.expires_at))
    .collect())
}

/// Payouts requested before `overdue_before` and still not sent, with no live job.
pub async fn requested_payouts_without_job(
    conn: &mut PgConnection,
    overdue_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PayoutId>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select p.id as "id: PayoutId" from payouts p
         where p.status = 'REQUESTED' and p.requested_at < $1
           and not exists (select 1 from apalis.jobs j
                           where j.job_type = 'send_payout_transfer' and j.status <> 'Done'
                             and convert_from(j.job, 'UTF8')::jsonb ->> 'payout_id' = p.id::text)
         order by p.requested_at limit $2"#,
        overdue_before,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Payouts still `PROCESSING` after their latest expected arrival day, `before`: Stripe's
/// webhook about them never came, or never reached us.
pub async fn payouts_past_arrival(
    conn: &mut PgConnection,
    before: chrono::NaiveDate,
    limit: i64,
) -> Result<Vec<PayoutId>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select id as "id: PayoutId" from payouts
           where status = 'PROCESSING' and arrival_latest < $1
           order by arrival_latest limit $2"#,
        before,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Deletes up to `batch` jobs finished (`Done`) before `before`; returns how many.
pub async fn delete_done_jobs(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "delete from apalis.jobs where id in (
             select id from apalis.jobs where status = 'Done' and done_at < $1 limit $2
             for update skip locked)",
        before,
        batch
    )
    .execute(conn)
    .await?
    .rows_affected())
}
