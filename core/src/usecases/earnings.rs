//! A referrer's view of their commissions (SPEC: Ledger, Stats card): the commission
//! ledger a page at a time or as one export, totals over time, and the stats card.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::Stream;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use crate::domain::earnings::Counters;
use crate::domain::paging::Cursor;
use crate::error::StoreError;
use crate::ids::{CommissionId, UserId};
use crate::money::Money;
use crate::store::commissions;

pub use crate::domain::earnings::{EarningsBucket, Interval, LedgerFilter, LedgerLine};
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

/// The most periods one chart returns (three years of days); a longer range is cut
/// there, and the answer says where the rest starts.
pub const MAX_BUCKETS: u32 = 1_100;

/// A chart of commission totals over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earnings {
    /// One bucket per period, oldest first; none when `from` is after `to`.
    pub buckets: Vec<EarningsBucket>,
    /// The last day covered: `to`, or earlier when the range was cut.
    pub to: NaiveDate,
    /// Where the rest of a range longer than [`MAX_BUCKETS`] periods starts.
    pub next_from: Option<NaiveDate>,
}

/// The last day the chart covers: `to`, or the end of the `MAX_BUCKETS`-th period.
fn last_day(interval: Interval, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let periods = MAX_BUCKETS - 1;
    let end_of_last_period = match interval {
        Interval::Day => from.checked_add_days(chrono::Days::new(u64::from(periods))),
        Interval::Week => from
            .checked_add_days(chrono::Days::new(u64::from(periods) * 7))
            .map(|d| d.week(chrono::Weekday::Mon).last_day()),
        Interval::Month => from
            .with_day(1)
            .and_then(|first| first.checked_add_months(chrono::Months::new(periods + 1)))
            .and_then(|next| next.pred_opt()),
    };
    end_of_last_period.map_or(to, |end| end.min(to))
}

/// A referrer's commission totals per period over `from..=to`, empty periods included.
pub async fn over_time(
    conn: &mut PgConnection,
    platform_user_id: &str,
    interval: Interval,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Earnings, UserLookupError> {
    let referrer = referrer_id(conn, platform_user_id).await?;
    if from > to {
        return Ok(Earnings {
            buckets: Vec::new(),
            to,
            next_from: None,
        });
    }
    let last = last_day(interval, from, to);
    let buckets = commissions::earnings(conn, referrer, interval, from, last).await?;
    Ok(Earnings {
        buckets,
        to: last,
        next_from: (last < to).then(|| last.succ_opt()).flatten(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn long_ranges_stop_after_the_last_period_allowed() {
        let from = day(2026, 1, 1);
        assert_eq!(
            last_day(Interval::Day, from, day(2026, 1, 31)),
            day(2026, 1, 31)
        );
        assert_eq!(
            last_day(Interval::Day, from, day(2099, 1, 1)),
            from + chrono::Duration::days(i64::from(MAX_BUCKETS) - 1)
        );
        let month_end = last_day(Interval::Month, day(2026, 1, 15), day(9999, 12, 31));
        assert_eq!(
            month_end.day(),
            month_end
                .with_day(1)
                .unwrap()
                .checked_add_months(chrono::Months::new(1))
                .unwrap()
                .pred_opt()
                .unwrap()
                .day()
        );
        assert_eq!(
            last_day(Interval::Week, from, day(9999, 12, 31)).weekday(),
            chrono::Weekday::Sun
        );
    }
}
