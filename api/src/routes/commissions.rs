//! A referrer's commissions (SPEC: Ledger, Stats card): the ledger a page at a time or
//! as a CSV export, totals over time for a chart, and the stats card.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use referral_core::domain::paging::Cursor;
use referral_core::usecases::earnings::{self, Interval, LedgerFilter, LedgerLine};
use uuid::Uuid;

use crate::AppState;
use crate::auth::PlatformKey;
use crate::error::ApiError;
use crate::fields::{Bounded, Choice, CursorText, Day, PlatformId, Text};
use crate::routes::Tag;
use crate::routes::dto::{MoneyView, example_instant, usd_view};
use crate::routes::purchases::CommissionStatusView;

/// Commission endpoints.
pub struct CommissionsApi;

/// One line of a referrer's commission ledger.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CommissionLineView {
    /// Commission id.
    pub commission_id: Uuid,
    /// When it was earned (the purchase).
    pub date: DateTime<Utc>,
    /// The referred buyer's e-mail.
    pub referred_email: String,
    /// The referred buyer's platform id.
    pub referred_user_id: String,
    /// The purchase that earned it.
    pub purchase_id: String,
    /// What it is worth now (less any refunded part).
    pub amount: MoneyView,
    /// What it earned at purchase time.
    pub original_amount: MoneyView,
    /// Where it stands.
    pub status: CommissionStatusView,
    /// When its 30-day hold ends.
    pub eligible_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<LedgerLine> for CommissionLineView {
    fn from(line: LedgerLine) -> Self {
        Self {
            commission_id: line.id.0,
            date: line.earned_at,
            referred_email: line.referred_email,
            referred_user_id: line.referred_user_id,
            purchase_id: line.purchase_id,
            amount: line.amount.into(),
            original_amount: line.original_amount.into(),
            status: line.status.into(),
            eligible_at: line.eligible_at,
            paid_at: line.paid_at,
        }
    }
}

/// A page of a referrer's commission ledger, newest first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CommissionsPage {
    /// The lines.
    pub items: Vec<CommissionLineView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Example for CommissionsPage {
    fn example() -> Self {
        Self {
            items: vec![CommissionLineView {
                commission_id: Uuid::nil(),
                date: example_instant(3),
                referred_email: "bo@example.com".into(),
                referred_user_id: "user_8412".into(),
                purchase_id: "pur_5001".into(),
                amount: usd_view("2.50"),
                original_amount: usd_view("2.50"),
                status: CommissionStatusView::Pending,
                eligible_at: example_instant(3) + Duration::days(30),
                paid_at: None,
            }],
            next_cursor: None,
        }
    }
}

/// The granularity of an earnings chart.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum IntervalView {
    /// Calendar days (UTC).
    Day,
    /// Weeks starting Monday (UTC).
    Week,
    /// Calendar months (UTC).
    Month,
}

/// Commission totals of one period, by where each commission stands now.
#[derive(Debug, Object)]
pub struct EarningsBucketView {
    /// First day of the period.
    pub start: NaiveDate,
    /// Earned at purchase time (= pending + eligible + paid + refunded).
    pub earned: String,
    /// Still in the 30-day hold.
    pub pending: String,
    /// Past the hold, not yet paid.
    pub eligible: String,
    /// Paid.
    pub paid: String,
    /// Lost to refunds.
    pub refunded: String,
}

/// A referrer's commission totals over time, every period present.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct EarningsView {
    /// The granularity.
    pub interval: IntervalView,
    /// First day of the range.
    pub from: NaiveDate,
    /// Last day covered: the `to` asked for, or earlier when the range was cut (see
    /// `next_from`).
    pub to: NaiveDate,
    /// The currency of every amount.
    pub currency: String,
    /// One bucket per period, oldest first; none when `from` is after `to`.
    pub buckets: Vec<EarningsBucketView>,
    /// When the range held more than 1,100 periods: the first day not covered, to ask
    /// for next.
    pub next_from: Option<NaiveDate>,
}

impl Example for EarningsView {
    fn example() -> Self {
        let day = example_instant(3).date_naive();
        Self {
            interval: IntervalView::Day,
            from: day,
            to: day,
            currency: "USD".into(),
            next_from: None,
            buckets: vec![EarningsBucketView {
                start: day,
                earned: "2.50".into(),
                pending: "2.50".into(),
                eligible: "0.00".into(),
                paid: "0.00".into(),
                refunded: "0.00".into(),
            }],
        }
    }
}

/// A referrer's stats card.
#[derive(Debug, Object)]
#[oai(example)]
pub struct StatsCardView {
    /// Attributed signups.
    pub total_referrals: i64,
    /// Referred users with a qualifying purchase.
    pub conversions: i64,
    /// Conversions ÷ referrals (4 decimals, `"0"` when there are no referrals).
    pub conversion_rate: String,
    /// Commission paid, net of reversals.
    pub total_earnings: MoneyView,
    /// Commission earned, not yet paid.
    pub pending_earnings: MoneyView,
    /// Clicks on the referrer's link.
    pub total_clicks: i64,
    /// Signed up, not yet converted.
    pub pending_referrals: i64,
}

impl Example for StatsCardView {
    fn example() -> Self {
        Self {
            total_referrals: 4,
            conversions: 1,
            conversion_rate: "0.25".into(),
            total_earnings: usd_view("2.50"),
            pending_earnings: usd_view("5.00"),
            total_clicks: 31,
            pending_referrals: 3,
        }
    }
}

#[derive(ApiResponse)]
enum CsvResponse {
    /// The ledger as CSV (RFC 4180), streamed: a header line, then one line per
    /// commission, newest first. A cell that a spreadsheet would run as a formula
    /// (starting with `=`, `+`, `-`, `@`) is prefixed with `'`.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        Binary<Body>,
        /// `attachment; filename="commissions-USER.csv"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

type PageLimit = Bounded<1, 100>;

/// The ledger filter of the query; `from` after `to` simply matches nothing.
fn filter(
    status: Option<Choice<CommissionStatusView>>,
    from: Option<Day>,
    to: Option<Day>,
) -> LedgerFilter {
    LedgerFilter::days(
        status.map(|s| s.0.into()),
        from.map(|d| d.0),
        to.map(|d| d.0),
    )
}

/// A referrer's ledger as a streamed CSV file (RFC 4180), and its `Content-Disposition`.
pub(crate) async fn csv_download(
    state: &AppState,
    user_id: &str,
    filter: LedgerFilter,
) -> Result<(Body, String), ApiError> {
    let lines = earnings::export(&state.pool, user_id, filter).await?;
    let header = csv_line(&CSV_HEADER.map(str::to_owned)).map_err(|e| ApiError::internal(&e))?;
    let body = futures::stream::once(async move { Ok(header) }).chain(
        lines
            .map_err(|e| {
                tracing::error!(error = ?e, "commission export failed mid-stream");
                std::io::Error::other("export failed")
            })
            .and_then(|line| async move { csv_line(&csv_record(&line)) }),
    );
    Ok((
        Body::from_bytes_stream(body),
        format!("attachment; filename=\"{}\"", file_name(user_id)),
    ))
}

const CSV_HEADER: [&str; 10] = [
    "date",
    "referred_email",
    "referred_user_id",
    "purchase_id",
    "commission",
    "original_commission",
    "currency",
    "status",
    "eligible_at",
    "paid_at",
];

/// A cell a spreadsheet would evaluate, defused (OWASP: CSV injection).
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn csv_line(fields: &[String]) -> Result<Vec<u8>, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(fields).map_err(std::io::Error::other)?;
    writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn csv_record(line: &LedgerLine) -> Vec<String> {
    vec![
        line.earned_at.to_rfc3339(),
        cell(&line.referred_email),
        cell(&line.referred_user_id),
        cell(&line.purchase_id),
        line.amount.amount().to_string(),
        line.original_amount.amount().to_string(),
        line.amount.currency().code().to_owned(),
        line.status.as_str().to_owned(),
        line.eligible_at.to_rfc3339(),
        line.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
    ]
}

/// A file name made of the characters every browser and shell take as they are.
fn file_name(user_id: &str) -> String {
    let safe: String = user_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("commissions-{safe}.csv")
}

#[OpenApi(prefix_path = "/v1/users", tag = "Tag::Referrals")]
impl CommissionsApi {
    /// A referrer's commission ledger, newest first: date, referred user's e-mail,
    /// commission amount and status (`PENDING`, `ELIGIBLE`, `PAID`, `CANCELLED`,
    /// `REVERSED`). Filter by status and by date range (`from` and `to` are days, UTC,
    /// both included); page with `cursor`.
    #[oai(
        path = "/:user_id/commissions",
        method = "get",
        operation_id = "listCommissions"
    )]
    #[allow(clippy::too_many_arguments)] // one per documented query parameter
    async fn commissions(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<Text<PlatformId>>,
        /// Only commissions with this status.
        status: Query<Option<Choice<CommissionStatusView>>>,
        /// Earned on or after this day (UTC).
        from: Query<Option<Day>>,
        /// Earned on or before this day (UTC).
        to: Query<Option<Day>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Text<CursorText>>>,
        /// Lines per page (1–100, default 20).
        limit: Query<Option<PageLimit>>,
    ) -> Result<Json<CommissionsPage>, ApiError> {
        let filter = filter(status.0, from.0, to.0);
        let after = cursor.0.and_then(|text| Cursor::decode(text.as_str()));
        let limit = limit.0.map_or(20, |l| u16::try_from(l.0).unwrap_or(20));
        let mut conn = state.pool.acquire().await?;
        let page = earnings::ledger(&mut conn, user_id.0.as_str(), filter, after, limit).await?;
        Ok(Json(CommissionsPage {
            items: page
                .lines
                .into_iter()
                .map(CommissionLineView::from)
                .collect(),
            next_cursor: page.next.map(|c| c.encode()),
        }))
    }

    /// The same ledger as a CSV file (RFC 4180), with the same filters, streamed line by
    /// line however long it is.
    #[oai(
        path = "/:user_id/commissions.csv",
        method = "get",
        operation_id = "exportCommissionsCsv"
    )]
    async fn commissions_csv(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<Text<PlatformId>>,
        /// Only commissions with this status.
        status: Query<Option<Choice<CommissionStatusView>>>,
        /// Earned on or after this day (UTC).
        from: Query<Option<Day>>,
        /// Earned on or before this day (UTC).
        to: Query<Option<Day>>,
    ) -> Result<CsvResponse, ApiError> {
        let filter = filter(status.0, from.0, to.0);
        let (body, disposition) = csv_download(&state, user_id.0.as_str(), filter).await?;
        Ok(CsvResponse::Csv(Binary(body), disposition))
    }

    /// A referrer's commission totals per day, week or month over a range of days (UTC,
    /// both included), every period present even when empty, ready for a chart. Each
    /// bucket splits what was earned in it by where those commissions stand now.
    #[oai(
        path = "/:user_id/earnings",
        method = "get",
        operation_id = "getEarnings"
    )]
    async fn earnings(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<Text<PlatformId>>,
        /// Day, week or month.
        interval: Query<Choice<IntervalView>>,
        /// First day (UTC).
        from: Query<Day>,
        /// Last day (UTC). A range of more than 1,100 periods stops there, and
        /// `next_from` says where the rest starts.
        to: Query<Day>,
    ) -> Result<Json<EarningsView>, ApiError> {
        let chosen = interval.0.0;
        let interval = match chosen {
            IntervalView::Day => Interval::Day,
            IntervalView::Week => Interval::Week,
            IntervalView::Month => Interval::Month,
        };
        let mut conn = state.pool.acquire().await?;
        let chart =
            earnings::over_time(&mut conn, user_id.0.as_str(), interval, from.0.0, to.0.0).await?;
        let text = |m: referral_core::Money| m.amount().to_string();
        Ok(Json(EarningsView {
            interval: chosen,
            from: from.0.0,
            to: chart.to,
            currency: "USD".into(),
            next_from: chart.next_from,
            buckets: chart
                .buckets
                .into_iter()
                .map(|b| EarningsBucketView {
                    start: b.start,
                    earned: text(b.earned),
                    pending: text(b.pending),
                    eligible: text(b.eligible),
                    paid: text(b.paid),
                    refunded: text(b.refunded),
                })
                .collect(),
        }))
    }

    /// A referrer's stats card: total referrals, conversions, conversion rate, earnings
    /// paid (net of reversals) and pending, clicks, and pending referrals, from counters
    /// kept with every event (a few reads however large the referrer).
    #[oai(path = "/:user_id/stats", method = "get", operation_id = "getStats")]
    async fn stats(
        &self,
        _key: PlatformKey,
        state: Data<&AppState>,
        /// The referrer's platform id.
        user_id: Path<Text<PlatformId>>,
    ) -> Result<Json<StatsCardView>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let card = earnings::stats(&mut conn, user_id.0.as_str()).await?;
        Ok(Json(StatsCardView {
            total_referrals: card.referrals,
            conversions: card.conversions,
            conversion_rate: card.conversion_rate.normalize().to_string(),
            total_earnings: card.total_earnings.into(),
            pending_earnings: card.pending_earnings.into(),
            total_clicks: card.clicks,
            pending_referrals: card.pending_referrals,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_file_names_are_safe() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("bo@example.com"), "bo@example.com");
        assert_eq!(file_name("a/b\"c"), "commissions-a_b_c.csv");
    }

    #[test]
    fn csv_lines_quote_what_needs_quoting() {
        let line = csv_line(&["a,b".into(), "say \"hi\"".into(), "plain".into()]).unwrap();
        assert_eq!(line, b"\"a,b\",\"say \"\"hi\"\"\",plain\r\n");
    }
}
