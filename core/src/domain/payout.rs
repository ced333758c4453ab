//! Payouts (SPEC: Payouts): who may withdraw how much, the life of a payout, and when
//! the money is expected to arrive.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};

use crate::domain::commission::Track;
use crate::domain::ledger::{Account, Concerning, EntryKind, Posting};
use crate::ids::{PayoutId, UserId};
use crate::money::Money;

/// Where a payout is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatus {
    /// Taken out of the referral balance; the transfer is not sent yet.
    Requested,
    /// Stripe accepted the transfer; the money is on its way to the bank.
    Processing,
    /// The bank received it.
    Paid,
    /// It did not arrive; the amount is back in the referral balance.
    Failed,
}

impl PayoutStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Requested => "REQUESTED",
            PayoutStatus::Processing => "PROCESSING",
            PayoutStatus::Paid => "PAID",
            PayoutStatus::Failed => "FAILED",
        }
    }
}

/// What Stripe last told us about a user's connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectState {
    /// Stripe may pay this account out to its bank.
    pub payouts_enabled: bool,
    /// What Stripe still needs from the user (currently or past due).
    pub requirements_due: Vec<String>,
}

/// Why a payout request was refused. Each condition of the SPEC has its own variant, in
/// the order a user fixes them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutRefused {
    /// Only Partners withdraw; Basic earnings are platform credit.
    #[error("only Partners can request payouts; this user is on the Basic track")]
    NotPartner,
    /// No connected account yet.
    #[error("no Stripe account is connected: start onboarding first")]
    StripeNotConnected,
    /// Stripe has not enabled payouts on the account yet.
    #[error("Stripe has not enabled payouts on the connected account yet")]
    PayoutsNotEnabled,
    /// Stripe needs more information first.
    #[error("Stripe needs more information before paying out: {}", .0.join(", "))]
    RequirementsDue(Vec<String>),
    /// The amount asked for is under the minimum.
    #[error("amount {requested} is below the minimum payout of {minimum}")]
    BelowMinimum {
        /// What was asked.
        requested: Money,
        /// The smallest payout.
        minimum: Money,
    },
    /// The available balance is short of what was asked (or of the minimum, when nothing
    /// was asked).
    #[error("the available referral balance is {available}, short of {needed}")]
    InsufficientBalance {
        /// What the balance holds.
        available: Money,
        /// What the payout needs.
        needed: Money,
    },
}

/// Decides how much a payout request withdraws: `requested`, or the whole `available`
/// balance when nothing was asked for.
pub fn may_request(
    track: Track,
    account: Option<&ConnectState>,
    available: Money,
    requested: Option<Money>,
    minimum: Money,
) -> Result<Money, PayoutRefused> {
    if track != Track::Partner {
        return Err(PayoutRefused::NotPartner);
    }
    let account = account.ok_or(PayoutRefused::StripeNotConnected)?;
    if !account.payouts_enabled {
        return Err(PayoutRefused::PayoutsNotEnabled);
    }
    if !account.requirements_due.is_empty() {
        return Err(PayoutRefused::RequirementsDue(
            account.requirements_due.clone(),
        ));
    }
    let amount = requested.unwrap_or(available);
    if requested.is_some() && amount.amount() < minimum.amount() {
        return Err(PayoutRefused::BelowMinimum {
            requested: amount,
            minimum,
        });
    }
    let needed = if requested.is_some() { amount } else { minimum };
    if available.amount() < needed.amount() {
        return Err(PayoutRefused::InsufficientBalance { available, needed });
    }
    Ok(amount)
}

/// The business days (Monday to Friday) within which a payout sent on `sent_on` is
/// expected at the bank: 2 to 7 business days later (SPEC). Bank holidays are not known
/// here, so the latest date is an estimate, as Stripe's own is.
pub fn arrival_window(sent_on: NaiveDate) -> (NaiveDate, NaiveDate) {
    (add_business_days(sent_on, 2), add_business_days(sent_on, 7))
}

/// `date` plus `days` business days; a weekend day counts from the next Monday.
pub fn add_business_days(date: NaiveDate, days: u32) -> NaiveDate {
    let mut day = date;
    let mut left = days;
    while left > 0 {
        day = day.checked_add_days(Days::new(1)).unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

/// What can happen to a payout after it was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutEvent {
    /// Stripe accepted its transfer and its bank payout.
    Sent,
    /// Stripe refused, for good, to send it.
    SendRefused,
    /// The bank paid it (`payout.paid`).
    BankPaid,
    /// The bank refused it, or sent it back after paying (`payout.failed`).
    BankFailed,
    /// Its transfer was reversed in full at Stripe (`transfer.reversed`).
    TransferReversed,
}

/// Where a payout's money goes when it changes status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutMoney {
    /// Nothing moves in the ledger (the money is still on its way).
    Stays,
    /// Out of the in-flight account to the bank: the payout is done.
    PaidOut,
    /// Out of the in-flight account back into the referral balance.
    ReturnedFromInFlight,
    /// Back into the referral balance after it had reached the bank: the bank sent it
    /// back after Stripe reported it paid.
    ReturnedFromBank,
}

/// What an event does to a payout in a given status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutStep {
    /// The payout moves to `to`, and its money as `money` says.
    Move {
        /// The new status.
        to: PayoutStatus,
        /// The ledger's movement.
        money: PayoutMoney,
    },
    /// Nothing changes: the event repeats what is known, or comes after the payout
    /// was settled for good (its money moved once).
    Unchanged,
    /// The event is about a payout whose sending is still being recorded: it is to be
    /// delivered again later.
    Early,
}

impl PayoutStatus {
    /// The payout's state machine: what `event` does in this status. Every pair is
    /// spelled out, so a new status or event cannot be left undecided.
    pub fn on(self, event: PayoutEvent) -> PayoutStep {
        use PayoutEvent as E;
        use PayoutStatus as S;
        let to = |to, money| PayoutStep::Move { to, money };
        match (self, event) {
            (S::Requested, E::Sent) => to(S::Processing, PayoutMoney::Stays),
            (S::Requested, E::SendRefused) => to(S::Failed, PayoutMoney::ReturnedFromInFlight),
            (S::Requested, E::BankPaid | E::BankFailed | E::TransferReversed) => PayoutStep::Early,
            (S::Processing, E::Sent | E::SendRefused) => PayoutStep::Unchanged,
            (S::Processing, E::BankPaid) => to(S::Paid, PayoutMoney::PaidOut),
            (S::Processing, E::BankFailed | E::TransferReversed) => {
                to(S::Failed, PayoutMoney::ReturnedFromInFlight)
            }
            // Stripe may report a payout failed days after it reported it paid.
            (S::Paid, E::BankFailed) => to(S::Failed, PayoutMoney::ReturnedFromBank),
            // A paid payout's transfer reversed at Stripe is left to an operator: the
            // money reached the bank.
            (S::Paid, E::Sent | E::SendRefused | E::BankPaid | E::TransferReversed) => {
                PayoutStep::Unchanged
            }
            (
                S::Failed,
                E::Sent | E::SendRefused | E::BankPaid | E::BankFailed | E::TransferReversed,
            ) => PayoutStep::Unchanged,
        }
    }
}

impl PayoutMoney {
    /// The ledger posting of this movement, if any.
    pub fn posting(
        self,
        user_id: UserId,
        payout_id: PayoutId,
        amount: Money,
        at: DateTime<Utc>,
    ) -> Option<Posting> {
        let concerning = Concerning {
            payout_id: Some(payout_id),
            ..Concerning::default()
        };
        match self {
            PayoutMoney::Stays => None,
            PayoutMoney::PaidOut => Some(Posting::outflow(
                user_id,
                EntryKind::PayoutPaid,
                concerning,
                Account::PayoutInFlight,
                amount,
                at,
            )),
            PayoutMoney::ReturnedFromInFlight => Some(Posting::transfer(
                user_id,
                EntryKind::PayoutFailed,
                concerning,
                Account::PayoutInFlight,
                Account::ReferralBalance,
                amount,
                at,
            )),
            PayoutMoney::ReturnedFromBank => Some(Posting::inflow(
                user_id,
                EntryKind::PayoutFailed,
                concerning,
                Account::ReferralBalance,
                amount,
                at,
            )),
        }
    }
}

/// The posting of a payout request: its amount leaves the referral balance at once.
pub fn requested_posting(
    user_id: UserId,
    payout_id: PayoutId,
    amount: Money,
    at: DateTime<Utc>,
) -> Posting {
    Posting::transfer(
        user_id,
        EntryKind::PayoutRequested,
        Concerning {
            payout_id: Some(payout_id),
            ..Concerning::default()
        },
        Account::ReferralBalance,
        Account::PayoutInFlight,
        amount,
        at,
    )
}

/// A request a payout's jobs send to Stripe. Each has an idempotency key of its own
/// per payout, so a job that dies after Stripe answered asks again with the same key
/// and gets Stripe's first answer instead of a second transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeCall {
    /// The transfer from the platform to the connected account. Stripe keeps a key for a
    /// day, so the job also records the transfer as soon as Stripe answers and never
    /// asks again once it is recorded.
    Transfer,
    /// The payout from the connected account's balance to the user's bank.
    BankPayout,
    /// The reversal of a failed payout's transfer.
    Reversal,
}

impl StripeCall {
    /// The key's first generation: the one every automatic retry keeps.
    pub fn base_key(self, payout_id: uuid::Uuid) -> String {
        let call = match self {
            StripeCall::Transfer => "transfer",
            StripeCall::BankPayout => "bank",
            StripeCall::Reversal => "reversal",
        };
        format!("payout-{payout_id}-{call}")
    }

    /// The key of `generation`: the base key at 0, then one new key for each time Stripe
    /// refused the previous one for good (a refused key did nothing, and Stripe would
    /// only replay its refusal).
    pub fn key(self, payout_id: uuid::Uuid, generation: i32) -> String {
        let base = self.base_key(payout_id);
        if generation == 0 {
            base
        } else {
            format!("{base}-g{generation}")
        }
    }
}

/// A user's connected account as we last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeAccount {
    /// Stripe's id (`acct_…`).
    pub account_id: String,
    /// Payouts enabled, requirements due.
    pub state: ConnectState,
}

/// A payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// Id.
    pub id: PayoutId,
    /// Whose.
    pub user_id: UserId,
    /// How much.
    pub amount: Money,
    /// Where it is.
    pub status: PayoutStatus,
    /// The connected account it goes to.
    pub stripe_account_id: String,
    /// Stripe's transfer (`tr_…`), once sent.
    pub transfer_id: Option<String>,
    /// Stripe's payout to the bank (`po_…`), once sent.
    pub stripe_payout_id: Option<String>,
    /// Stripe's reversal of the transfer (`trr_…`), when a failed payout's money was
    /// taken back from the connected account.
    pub transfer_reversal_id: Option<String>,
    /// Earliest expected arrival at the bank.
    pub arrival_earliest: Option<NaiveDate>,
    /// Latest expected arrival at the bank.
    pub arrival_latest: Option<NaiveDate>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When Stripe accepted it.
    pub processing_at: Option<DateTime<Utc>>,
    /// When it was paid or failed.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [PayoutEvent; 5] = [
        PayoutEvent::Sent,
        PayoutEvent::SendRefused,
        PayoutEvent::BankPaid,
        PayoutEvent::BankFailed,
        PayoutEvent::TransferReversed,
    ];

    /// Every sequence of up to five events after a request, through the state machine and
    /// into the ledger: whatever order Stripe's answers and webhooks come in, the money
    /// ends where the final status says, once.
    #[test]
    fn any_order_of_events_leaves_the_money_where_the_final_status_says() {
        let user = UserId(uuid::Uuid::nil());
        let id = PayoutId(uuid::Uuid::nil());
        let amount = Money::usd_cents(3000);
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut sequences: Vec<Vec<PayoutEvent>> = vec![vec![]];
        for _ in 0..5 {
            let longer: Vec<Vec<PayoutEvent>> = sequences
                .iter()
                .filter(|s| s.len() == sequences.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    EVENTS.iter().map(move |e| {
                        let mut next = s.clone();
                        next.push(*e);
                        next
                    })
                })
                .collect();
            sequences.extend(longer);
        }
        for events in sequences {
            let mut status = PayoutStatus::Requested;
            let mut postings = vec![requested_posting(user, id, amount, at)];
            for event in &events {
                if let PayoutStep::Move { to, money } = status.on(*event) {
                    postings.extend(money.posting(user, id, amount, at));
                    status = to;
                }
            }
            let sum = |account: Account| -> i64 {
                postings
                    .iter()
                    .flat_map(|p| &p.legs)
                    .filter(|leg| leg.account == account)
                    .map(|leg| leg.amount.to_minor_units().unwrap_or(i64::MAX))
                    .sum()
            };
            let (balance, in_flight) = match status {
                PayoutStatus::Requested | PayoutStatus::Processing => (-3000, 3000),
                PayoutStatus::Paid => (-3000, 0),
                PayoutStatus::Failed => (0, 0),
            };
            assert_eq!(
                (sum(Account::ReferralBalance), sum(Account::PayoutInFlight)),
                (balance, in_flight),
                "{events:?} ended {status:?}"
            );
        }
    }

    #[test]
    fn a_settled_payout_changes_no_more_and_webhooks_before_the_send_wait() {
        for event in EVENTS {
            assert_eq!(PayoutStatus::Failed.on(event), PayoutStep::Unchanged);
        }
        for event in [
            PayoutEvent::BankPaid,
            PayoutEvent::BankFailed,
            PayoutEvent::TransferReversed,
        ] {
            assert_eq!(PayoutStatus::Requested.on(event), PayoutStep::Early);
        }
        assert_eq!(
            PayoutStatus::Paid.on(PayoutEvent::BankFailed),
            PayoutStep::Move {
                to: PayoutStatus::Failed,
                money: PayoutMoney::ReturnedFromBank
            }
        );
    }

    #[test]
    fn a_refused_key_is_followed_by_a_new_one_and_the_first_is_the_base() {
        let id = uuid::Uuid::nil();
        let keys: Vec<String> = [
            StripeCall::Transfer,
            StripeCall::BankPayout,
            StripeCall::Reversal,
        ]
        .iter()
        .flat_map(|call| (0..3).map(move |g| call.key(id, g)))
        .collect();
        assert_eq!(keys[0], format!("payout-{id}-transfer"));
        assert_eq!(keys[4], format!("payout-{id}-bank-g1"));
        assert_eq!(keys[8], format!("payout-{id}-reversal-g2"));
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            keys.len(),
            "every call and generation has its own key"
        );
    }

    fn ready() -> ConnectState {
        ConnectState {
            payouts_enabled: true,
            requirements_due: vec![],
        }
    }

    fn usd(cents: i64) -> Money {
        Money::usd_cents(cents)
    }

    #[test]
    fn each_condition_is_refused_on_its_own() {
        let min = usd(2500);
        let ready = ready();
        assert_eq!(
            may_request(Track::Basic, Some(&ready), usd(5000), None, min),
            Err(PayoutRefused::NotPartner)
        );
        assert_eq!(
            may_request(Track::Partner, None, usd(5000), None, min),
            Err(PayoutRefused::StripeNotConnected)
        );
        let disabled = ConnectState {
            payouts_enabled: false,
            requirements_due: vec![],
        };
        assert_eq!(
            may_request(Track::Partner, Some(&disabled), usd(5000), None, min),
            Err(PayoutRefused::PayoutsNotEnabled)
        );
        let due = ConnectState {
            payouts_enabled: true,
            requirements_due: vec!["external_account".into()],
        };
        assert_eq!(
            may_request(Track::Partner, Some(&due), usd(5000), None, min),
            Err(PayoutRefused::RequirementsDue(vec![
                "external_account".into()
            ]))
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready),
                usd(5000),
                Some(usd(2499)),
                min
            ),
            Err(PayoutRefused::BelowMinimum {
                requested: usd(2499),
                minimum: min
            })
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready), usd(2499), None, min),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(2499),
                needed: min
            })
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready),
                usd(3000),
                Some(usd(3001)),
                min
            ),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(3000),
                needed: usd(3001)
            })
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready), usd(-500), None, min),
            Err(PayoutRefused::InsufficientBalance {
                available: usd(-500),
                needed: min
            })
        );
    }

    #[test]
    fn the_amount_defaults_to_the_whole_balance() {
        let min = usd(2500);
        assert_eq!(
            may_request(Track::Partner, Some(&ready()), usd(3000), None, min),
            Ok(usd(3000))
        );
        assert_eq!(
            may_request(Track::Partner, Some(&ready()), usd(2500), None, min),
            Ok(usd(2500))
        );
        assert_eq!(
            may_request(
                Track::Partner,
                Some(&ready()),
                usd(9000),
                Some(usd(2500)),
                min
            ),
            Ok(usd(2500))
        );
    }

    #[test]
    fn arrival_skips_weekends() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        // Thursday: +2 business days is Monday, +7 the Monday after.
        assert_eq!(
            arrival_window(day("2026-11-26")),
            (day("2026-11-30"), day("2026-12-07"))
        );
        // Saturday counts from Monday.
        assert_eq!(
            arrival_window(day("2026-11-28")),
            (day("2026-12-01"), day("2026-12-08"))
        );
        // Monday.
        assert_eq!(
            arrival_window(day("2026-11-30")),
            (day("2026-12-02"), day("2026-12-09"))
        );
    }
}
