//! A referrer's view of their commissions: the ledger's lines, the filters on them, the
//! earnings chart's periods and the stats card's counters.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::commission::CommissionStatus;
use crate::ids::CommissionId;
use crate::money::Money;

/// One line of a referrer's commission ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    /// The commission.
    pub id: CommissionId,
    /// When it was earned.
    pub earned_at: DateTime<Utc>,
    /// The referred buyer's e-mail.
    pub referred_email: String,
    /// The referred buyer's platform id.
    pub referred_user_id: String,
    /// The platform's id for the purchase.
    pub purchase_id: String,
    /// What it earned at purchase time.
    pub original_amount: Money,
    /// What it is worth now.
    pub amount: Money,
    /// Where it stands.
    pub status: CommissionStatus,
    /// When its hold ends.
    pub eligible_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
}

/// Which lines of a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only this status.
    pub status: Option<CommissionStatus>,
    /// Earned at or after.
    pub from: Option<DateTime<Utc>>,
    /// Earned before.
    pub until: Option<DateTime<Utc>>,
}

impl LedgerFilter {
    /// Lines earned from day `from` through day `to` (UTC, both included) with `status`;
    /// `from` after `to` simply matches nothing.
    pub fn days(
        status: Option<CommissionStatus>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Self {
        let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        Self {
            status,
            from: from.and_then(midnight),
            until: to.and_then(|d| d.succ_opt()).and_then(midnight),
        }
    }
}

/// The granularity of an earnings chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Calendar days (UTC).
    Day,
    /// ISO weeks, starting Monday (UTC).
    Week,
    /// Calendar months (UTC).
    Month,
}

/// Commission totals of one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarningsBucket {
    /// First day of the period.
    pub start: NaiveDate,
    /// Earned at purchase time.
    pub earned: Money,
    /// Still in the hold.
    pub pending: Money,
    /// Past the hold, not yet paid.
    pub eligible: Money,
    /// Paid (net of partial refunds).
    pub paid: Money,
    /// Lost to refunds (cancelled, reversed, or the refunded part).
    pub refunded: Money,
}

/// A referrer's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Attributed signups.
    pub referrals: i64,
    /// Referred users with a qualifying purchase.
    pub conversions: i64,
    /// Commission in the hold or eligible.
    pub pending_earnings: Money,
    /// Commission paid, net of reversals.
    pub paid_earnings: Money,
    /// Clicks on their link.
    pub clicks: i64,
}
