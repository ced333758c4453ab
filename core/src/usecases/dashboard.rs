//! A user's referral dashboard as one read model: everything the embedded page shows,
//! read from one snapshot of the database (a repeatable-read, read-only transaction), so
//! the stats card, the ledger, the wallet and the payouts never disagree because a
//! commission was paid between two of their reads.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::domain::earnings::{Interval, LedgerFilter};
use crate::domain::paging::Cursor;
use crate::domain::payout::{PayoutRefused, StripeAccount};
use crate::error::StoreError;
use crate::money::{Currency, Money};
use crate::settings::ProgramSettings;
use crate::usecases::UserLookupError;
use crate::usecases::earnings::{self, Earnings, LedgerPage, StatsCard};
use crate::usecases::partner::{self, PartnerError, PartnerStatus};
use crate::usecases::payouts::{self, PayoutError, PayoutPage};
use crate::usecases::referrals::{self, ReferralPage};
use crate::usecases::users::{self, UserProfile};
use crate::usecases::wallet::{self, Wallet};

/// Which part of each list the page shows.
#[derive(Debug, Clone, Copy)]
pub struct DashboardQuery {
    /// The commission ledger's filters.
    pub ledger: LedgerFilter,
    /// Where the ledger's page starts.
    pub ledger_after: Option<Cursor>,
    /// Where the referred users' page starts.
    pub referrals_after: Option<Cursor>,
    /// Rows per list.
    pub page_size: u16,
    /// The chart's periods.
    pub interval: Interval,
    /// The chart's first and last day.
    pub chart: (NaiveDate, NaiveDate),
    /// Payouts listed.
    pub payouts: i64,
}

/// Everything the dashboard shows, as of one instant.
#[derive(Debug, Clone)]
pub struct DashboardView {
    /// The user and who referred them.
    pub profile: UserProfile,
    /// The stats card.
    pub stats: StatsCard,
    /// A page of the users they referred.
    pub referred: ReferralPage,
    /// A page of their commissions.
    pub ledger: LedgerPage,
    /// Their earnings per period.
    pub chart: Earnings,
    /// Their wallet of platform credit.
    pub wallet: Wallet,
    /// Their track and agreement.
    pub partner: PartnerStatus,
    /// Their connected Stripe account, if any.
    pub stripe: Option<StripeAccount>,
    /// The payout they could request now, or why not.
    pub readiness: Result<Money, PayoutRefused>,
    /// Their latest payouts.
    pub payouts: PayoutPage,
}

/// The dashboard of `platform_user_id` at `now`.
pub async fn view(
    pool: &PgPool,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    platform_user_id: &str,
    query: &DashboardQuery,
) -> Result<DashboardView, UserLookupError> {
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let user = platform_user_id;
    let view = DashboardView {
        profile: users::profile(&mut tx, user).await?,
        stats: earnings::stats(&mut tx, user).await?,
        referred: referrals::page(&mut tx, user, None, query.referrals_after, query.page_size)
            .await?,
        ledger: earnings::ledger(
            &mut tx,
            user,
            query.ledger,
            query.ledger_after,
            query.page_size,
        )
        .await?,
        chart: earnings::over_time(&mut tx, user, query.interval, query.chart.0, query.chart.1)
            .await?,
        wallet: wallet::view(&mut tx, now, Money::zero(Currency::Usd), user).await?,
        partner: partner::status(&mut tx, user).await.map_err(from_partner)?,
        stripe: payouts::stripe_status(&mut tx, user)
            .await
            .map_err(from_payout)?,
        readiness: payouts::readiness(&mut tx, settings, user)
            .await
            .map_err(from_payout)?,
        payouts: payouts::history(&mut tx, user, None, query.payouts)
            .await
            .map_err(from_payout)?,
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(view)
}

/// Reads fail only for an unknown user or the database; any other refusal of these
/// use cases belongs to a write, and would mean the code changed under this read.
fn from_partner(error: PartnerError) -> UserLookupError {
    match error {
        PartnerError::UserNotFound(user) => UserLookupError::NotFound(user),
        PartnerError::Store(error) => UserLookupError::Store(error),
        other @ (PartnerError::Upgrade(_) | PartnerError::Downgrade(_)) => {
            UserLookupError::Store(StoreError::Corrupt(format!("a read refused: {other}")))
        }
    }
}

fn from_payout(error: PayoutError) -> UserLookupError {
    match error {
        PayoutError::UserNotFound(user) => UserLookupError::NotFound(user),
        PayoutError::Store(error) => UserLookupError::Store(error),
        other @ (PayoutError::NotPartner | PayoutError::Refused(_) | PayoutError::Stripe(_)) => {
            UserLookupError::Store(StoreError::Corrupt(format!("a read refused: {other}")))
        }
    }
}
