//! A referrer's view of their commissions (SPEC: Ledger, Stats card): the commission
//! ledger a page at a time or as one export, totals over time, and the stats card.

use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use crate::domain::paging::Cursor;
use crate::error::StoreError;
use crate::ids::{CommissionId, UserId};
use crate::money::Money;
use crate::store::commissions::{self, Counters};

pub use crate::store::commissions::{EarningsBucket, Interval, LedgerFilter, LedgerLine};
use crate::store::users;
use crate::usecases::UserLookupError;

async fn referrer_id(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<UserId, UserLookupError> {
    Ok(users::find_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| UserLookupError::NotFound(platform_user_id.to_owned()))?
        .id)
}

/// One page of a referrer's commission ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    /// Lines, newest first.
    pub lines: Vec<LedgerLine>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Up to `limit` ledger lines of the referrer with this platform id.
pub async fn ledger(
    conn: &mut PgConnection,
    platform_user_id: &str,
    filter: LedgerFilter,
    after: Option<Cursor>,
    limit: u16,
) -> Result<LedgerPage, UserLookupError> {
    let referrer = referrer_id(conn, platform_user_id).await?;
    let limit = usize::from(limit.max(1));
    let mut lines = commissions::ledger_page(
        conn,
        referrer,
        filter,
        after.map(|c| (c.at, CommissionId(c.id))),
        i64::try_from(limit + 1).unwrap_or(i64::MAX),
    )
    .await?;
    let next = if lines.len() > limit {
        lines.truncate(limit);
        lines.last().map(|l| Cursor {
            at: l.earned_at,
            id: l.id.0,
        })
    } else {
        None
    };
    Ok(LedgerPage { lines, next })
}

/// Lines the export reads per query: memory stays bounded whatever the ledger's size.
const EXPORT_PAGE: i64 = 1_000;

/// Every ledger line of a referrer (checked to exist first), newest first, read a page
/// at a time as the caller consumes them, without holding a connection in between.
pub async fn export(
    pool: &PgPool,
    platform_user_id: &str,
    filter: LedgerFilter,
) -> Result<impl Stream<Item = Result<LedgerLine, StoreError>> + Send + 'static, UserLookupError> {
    let referrer = referrer_id(
        &mut *pool.acquire().await.map_err(StoreError::from)?,
        platform_user_id,
    )
    .await?;
    let pool = pool.clone();
    // `None` once the last page was read; `Some(None)` before the first.
    type After = Option<(DateTime<Utc>, CommissionId)>;
    let pages = futures::stream::try_unfold(Some(None), move |state: Option<After>| {
        let pool = pool.clone();
        async move {
            let Some(after) = state else {
                return Ok(None);
            };
            let mut conn = pool.acquire().await?;
            let lines =
                commissions::ledger_page(&mut conn, referrer, filter, after, EXPORT_PAGE).await?;
            let next = if i64::try_from(lines.len()).unwrap_or(i64::MAX) < EXPORT_PAGE {
                None
            } else {
                lines.last().map(|l| Some((l.earned_at, l.id)))
            };
            Ok::<_, StoreError>(Some((
                futures::stream::iter(lines.into_iter().map(Ok)),
                next,
            )))
        }
    });
    Ok(futures::TryStreamExt::try_flatten(pages))
}

/// Why an earnings chart was refused.
#[derive(Debug, thiserror::Error)]
pub enum EarningsError {
    /// `from` is after `to`.
    #[error("from must not be after to")]
    Backwards,
    /// Too many periods for one chart.
    #[error("the range holds more than {max} periods; narrow it or use a longer interval")]
    TooManyBuckets {
        /// The most periods one chart returns.
        max: i64,
    },
    /// The referrer is unknown, or the database failed.
    #[error(transparent)]
    Lookup(#[from] UserLookupError),
}

/// The most periods one chart returns (three years of days).
pub const MAX_BUCKETS: i64 = 1_100;

/// A referrer's commission totals per period over `from..=to`, empty periods included.
pub async fn over_time(
    conn: &mut PgConnection,
    platform_user_id: &str,
    interval: Interval,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EarningsBucket>, EarningsError> {
    if from > to {
        return Err(EarningsError::Backwards);
    }
    let days = (to - from).num_days() + 1;
    let periods = match interval {
        Interval::Day => days,
        Interval::Week => days / 7 + 2,
        Interval::Month => days / 28 + 2,
    };
    if periods > MAX_BUCKETS {
        return Err(EarningsError::TooManyBuckets { max: MAX_BUCKETS });
    }
    let referrer = referrer_id(conn, platform_user_id).await?;
    Ok(commissions::earnings(conn, referrer, interval, from, to)
        .await
        .map_err(UserLookupError::from)?)
}

/// A referrer's stats card (SPEC: Stats card).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsCard {
    /// Attributed signups.
    pub referrals: i64,
    /// Referred users with a qualifying purchase.
    pub conversions: i64,
    /// Commission paid, net of reversals.
    pub total_earnings: Money,
    /// Commission earned, not yet paid.
    pub pending_earnings: Money,
    /// Conversions ÷ referrals, 4 decimals, 0 when there are no referrals.
    pub conversion_rate: Decimal,
    /// Clicks on the referrer's link.
    pub clicks: i64,
    /// Signed up, not yet converted.
    pub pending_referrals: i64,
}

impl StatsCard {
    /// The card shown for these counters.
    pub fn from_counters(counters: &Counters) -> Self {
        let conversion_rate = if counters.referrals == 0 {
            Decimal::ZERO
        } else {
            (Decimal::from(counters.conversions) / Decimal::from(counters.referrals)).round_dp(4)
        };
        Self {
            referrals: counters.referrals,
            conversions: counters.conversions,
            total_earnings: counters.paid_earnings,
            pending_earnings: counters.pending_earnings,
            conversion_rate,
            clicks: counters.clicks,
            pending_referrals: counters.referrals - counters.conversions,
        }
    }
}

/// The stats card of the referrer with this platform id: a few primary-key reads of
/// counters the database keeps with every event.
pub async fn stats(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<StatsCard, UserLookupError> {
    let referrer = referrer_id(conn, platform_user_id).await?;
    let counters = commissions::counters(conn, referrer).await?;
    Ok(StatsCard::from_counters(&counters))
}
