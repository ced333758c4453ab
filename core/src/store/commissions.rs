//! Commissions: one per qualifying purchase of a referred user, and the referrer's views
//! of them (ledger page, earnings over time, stats card).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::commission::Commission;
use crate::domain::commission::{CommissionStatus, Track};
use crate::domain::earnings::{Counters, EarningsBucket, Interval, LedgerFilter, LedgerLine};
use crate::domain::ledger::Account;
use crate::error::StoreError;
use crate::ids::{CommissionId, CreditGrantId, PurchaseId, UserId};
use crate::money::Rate;
use crate::store::credit::usd;

struct CommissionRow {
    id: CommissionId,
    purchase_id: PurchaseId,
    referrer_id: UserId,
    referred_user_id: UserId,
    track: Track,
    rate: Decimal,
    cash_amount: Decimal,
    original_amount: Decimal,
    amount: Decimal,
    destination: Account,
    status: CommissionStatus,
    earned_at: DateTime<Utc>,
    eligible_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    credit_grant_id: Option<CreditGrantId>,
}

impl TryFrom<CommissionRow> for Commission {
    type Error = StoreError;

    fn try_from(row: CommissionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            purchase_id: row.purchase_id,
            referrer_id: row.referrer_id,
            referred_user_id: row.referred_user_id,
            track: row.track,
            rate: Rate::from_fraction(row.rate).ok_or_else(|| {
                StoreError::Corrupt(format!("commission {} rate {}", row.id, row.rate))
            })?,
            cash: usd(row.cash_amount)?,
            original_amount: usd(row.original_amount)?,
            amount: usd(row.amount)?,
            destination: row.destination,
            status: row.status,
            earned_at: row.earned_at,
            eligible_at: row.eligible_at,
            paid_at: row.paid_at,
            closed_at: row.closed_at,
            credit_grant_id: row.credit_grant_id,
        })
    }
}

/// Inserts a `PENDING` commission.
pub async fn insert(conn: &mut PgConnection, commission: &Commission) -> Result<(), StoreError> {
    sqlx::query!(
        "insert into commissions (id, purchase_id, referrer_id, referred_user_id, track, rate,
                                  cash_amount, original_amount, amount, currency, destination,
                                  status, earned_at, eligible_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13)",
        commission.id as _,
        commission.purchase_id as _,
        commission.referrer_id as _,
        commission.referred_user_id as _,
        commission.track as _,
        commission.rate.as_fraction(),
        commission.cash.amount(),
        commission.original_amount.amount(),
        commission.amount.currency().code(),
        commission.destination as _,
        commission.status as _,
        commission.earned_at,
        commission.eligible_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A commission by id, locked: its timer, its payment and its refunds take turns.
pub async fn lock(
    conn: &mut PgConnection,
    id: CommissionId,
) -> Result<Option<Commission>, StoreError> {
    sqlx::query_as!(
        CommissionRow,
        r#"select id as "id: CommissionId", purchase_id as "purchase_id: PurchaseId",
                  referrer_id as "referrer_id: UserId", referred_user_id as "referred_user_id: UserId",
                  track as "track: Track", rate, cash_amount, original_amount, amount,
                  destination as "destination: Account", status as "status: CommissionStatus",
                  earned_at, eligible_at, paid_at, closed_at,
                  credit_grant_id as "credit_grant_id: CreditGrantId"
           from commissions where id = $1 for update"#,
        id as _
    )
    .fetch_optional(conn)
    .await?
    .map(Commission::try_from)
    .transpose()
}

/// The commission of a purchase (not locked: lock it by id).
pub async fn of_purchase(
    conn: &mut PgConnection,
    purchase: PurchaseId,
) -> Result<Option<Commission>, StoreError> {
    sqlx::query_as!(
        CommissionRow,
        r#"select id as "id: CommissionId", purchase_id as "purchase_id: PurchaseId",
                  referrer_id as "referrer_id: UserId", referred_user_id as "referred_user_id: UserId",
                  track as "track: Track", rate, cash_amount, original_amount, amount,
                  destination as "destination: Account", status as "status: CommissionStatus",
                  earned_at, eligible_at, paid_at, closed_at,
                  credit_grant_id as "credit_grant_id: CreditGrantId"
           from commissions where purchase_id = $1"#,
        purchase as _
    )
    .fetch_optional(conn)
    .await?
    .map(Commission::try_from)
    .transpose()
}

/// Writes a commission's new state (after a transition or a refund).
pub async fn update_state(
    conn: &mut PgConnection,
    commission: &Commission,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update commissions set status = $2, amount = $3, paid_at = $4, closed_at = $5,
                                credit_grant_id = $6
         where id = $1",
        commission.id as _,
        commission.status as _,
        commission.amount.amount(),
        commission.paid_at,
        commission.closed_at,
        commission.credit_grant_id as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct LedgerRow {
    id: CommissionId,
    earned_at: DateTime<Utc>,
    referred_email: String,
    referred_user_id: String,
    purchase_id: String,
    original_amount: Decimal,
    amount: Decimal,
    status: CommissionStatus,
    eligible_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
}

/// Up to `limit` lines of a referrer's ledger, newest first, after `(earned_at, id)`.
pub async fn ledger_page(
    conn: &mut PgConnection,
    referrer: UserId,
    filter: LedgerFilter,
    after: Option<(DateTime<Utc>, CommissionId)>,
    limit: i64,
) -> Result<Vec<LedgerLine>, StoreError> {
    sqlx::query_as!(
        LedgerRow,
        r#"select c.id as "id: CommissionId", c.earned_at, u.email as referred_email,
                  u.platform_user_id as referred_user_id, p.platform_purchase_id as purchase_id,
                  c.original_amount, c.amount, c.status as "status: CommissionStatus",
                  c.eligible_at, c.paid_at
           from commissions c
           join users u on u.id = c.referred_user_id
           join purchases p on p.id = c.purchase_id
           where c.referrer_id = $1
             and ($2::text is null or c.status = $2)
             and ($3::timestamptz is null or c.earned_at >= $3)
             and ($4::timestamptz is null or c.earned_at < $4)
             and ($5::timestamptz is null or (c.earned_at, c.id) < ($5, $6::uuid))
           order by c.earned_at desc, c.id desc
           limit $7"#,
        referrer as _,
        filter.status as _,
        filter.from,
        filter.until,
        after.map(|(at, _)| at),
        after.map(|(_, id)| id.0),
        limit,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| {
        Ok(LedgerLine {
            id: row.id,
            earned_at: row.earned_at,
            referred_email: row.referred_email,
            referred_user_id: row.referred_user_id,
            purchase_id: row.purchase_id,
            original_amount: usd(row.original_amount)?,
            amount: usd(row.amount)?,
            status: row.status,
            eligible_at: row.eligible_at,
            paid_at: row.paid_at,
        })
    })
    .collect()
}

fn interval_sql(interval: Interval) -> &'static str {
    match interval {
        Interval::Day => "day",
        Interval::Week => "week",
        Interval::Month => "month",
    }
}

struct BucketRow {
    start: Option<NaiveDate>,
    earned: Option<Decimal>,
    pending: Option<Decimal>,
    eligible: Option<Decimal>,
    paid: Option<Decimal>,
    refunded: Option<Decimal>,
}

/// A referrer's commission totals per period from `from` to `to` (both days included,
/// UTC), every period present even when empty.
pub async fn earnings(
    conn: &mut PgConnection,
    referrer: UserId,
    interval: Interval,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EarningsBucket>, StoreError> {
    let rows = sqlx::query_as!(
        BucketRow,
        r#"with buckets as (
               select generate_series(date_trunc($2, $3::date::timestamp),
                                      date_trunc($2, $4::date::timestamp),
                                      ('1 ' || $2)::interval)::date as start
           ),
           totals as (
               select date_trunc($2, c.earned_at at time zone 'UTC')::date as start,
                      sum(c.original_amount) as earned,
                      sum(c.amount) filter (where c.status = 'PENDING') as pending,
                      sum(c.amount) filter (where c.status = 'ELIGIBLE') as eligible,
                      sum(c.amount) filter (where c.status = 'PAID') as paid,
                      sum(c.original_amount - c.amount) as refunded
               from commissions c
               where c.referrer_id = $1
                 and c.earned_at >= ($3::date::timestamp at time zone 'UTC')
                 and c.earned_at < (($4::date + 1)::timestamp at time zone 'UTC')
               group by 1
           )
           select b.start, t.earned, t.pending, t.eligible, t.paid, t.refunded
           from buckets b left join totals t on t.start = b.start
           order by b.start"#,
        referrer as _,
        interval_sql(interval),
        from,
        to,
    )
    .fetch_all(conn)
    .await?;
    let money = |d: Option<Decimal>| usd(d.unwrap_or_default());
    rows.into_iter()
        .map(|row| {
            Ok(EarningsBucket {
                start: row
                    .start
                    .ok_or_else(|| StoreError::Corrupt("earnings bucket without a start".into()))?,
                earned: money(row.earned)?,
                pending: money(row.pending)?,
                eligible: money(row.eligible)?,
                paid: money(row.paid)?,
                refunded: money(row.refunded)?,
            })
        })
        .collect()
}

struct CountersRow {
    referrals: Option<i64>,
    conversions: Option<i64>,
    pending_earnings: Option<Decimal>,
    paid_earnings: Option<Decimal>,
    clicks: Option<Decimal>,
}

/// A referrer's counters, kept by the database in the same transactions as the events.
pub async fn counters(conn: &mut PgConnection, referrer: UserId) -> Result<Counters, StoreError> {
    let row = sqlx::query_as!(
        CountersRow,
        r#"select s.referrals, s.conversions, s.pending_earnings, s.paid_earnings,
                  (select sum(clicks) from click_counts where referrer_id = $1) as clicks
           from (select $1::uuid as id) me
           left join referrer_stats s on s.referrer_id = me.id"#,
        referrer as _
    )
    .fetch_one(conn)
    .await?;
    Ok(Counters {
        referrals: row.referrals.unwrap_or(0),
        conversions: row.conversions.unwrap_or(0),
        pending_earnings: usd(row.pending_earnings.unwrap_or_default())?,
        paid_earnings: usd(row.paid_earnings.unwrap_or_default())?,
        clicks: row.clicks.and_then(|c| i64::try_from(c).ok()).unwrap_or(0),
    })
}
