//! Stripe Connect onboarding, payout requests, the payout job and Stripe's webhooks
//! (SPEC: Partner program, Payouts).
//!
//! Money leaves the referral balance when a payout is requested, in the transaction that
//! records the payout and enqueues its job, under the user's row lock: two requests at
//! once take turns, and the second sees what the first took. The job then asks Stripe
//! with idempotency keys that belong to the payout for life, so running it again after a
//! crash, at any point, gets Stripe's first answers instead of a second transfer.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::commission::Track;
use crate::domain::paging::Cursor;
use crate::domain::payout::{
    self, PayoutEvent, PayoutMoney, PayoutRefused, PayoutStatus, PayoutStep, StripeCall,
};
use crate::domain::user::User;
use crate::error::StoreError;
use crate::ids::PayoutId;
use crate::jobs::{self, ReversePayoutTransfer, SendPayoutTransfer};
use crate::money::Money;
use crate::mutants::{self, Mutant};
use crate::payments::{EventKind, GatewayError, PaymentProvider, PayoutObject, ProviderEvent};
use crate::settings::ProgramSettings;
use crate::store::users;
use crate::store::{payouts, stripe_keys};
use crate::usecases::email::queue_email;
use crate::usecases::ledger;

pub use crate::domain::payout::{Payout, StripeAccount};

/// Why a payout flow was refused or could not finish; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// No user has this platform id.
    #[error("no user with user_id `{0}`")]
    UserNotFound(String),
    /// Only Partners connect Stripe.
    #[error("only Partners connect a Stripe account; this user is on the Basic track")]
    NotPartner,
    /// The request breaks a payout rule.
    #[error(transparent)]
    Refused(#[from] PayoutRefused),
    /// Stripe refused or could not be reached.
    #[error(transparent)]
    Stripe(#[from] GatewayError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn user(conn: &mut PgConnection, platform_user_id: &str) -> Result<User, PayoutError> {
    users::find_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| PayoutError::UserNotFound(platform_user_id.to_owned()))
}

/// A connected account and a fresh link to Stripe's onboarding for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarding {
    /// The account.
    pub account: StripeAccount,
    /// Where the user completes onboarding.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// Creates the user's Express connected account if they have none, and returns a new
/// onboarding link for it. No transaction is held while Stripe answers: two requests at
/// once send the same idempotency key (derived from the user), so Stripe creates one
/// account and both record it.
pub async fn connect(
    conn: &mut PgConnection,
    stripe: &impl PaymentProvider,
    now: DateTime<Utc>,
    platform_user_id: &str,
) -> Result<Onboarding, PayoutError> {
    let user = user(conn, platform_user_id).await?;
    if users::track(conn, user.id).await? != Track::Partner {
        return Err(PayoutError::NotPartner);
    }
    let account = match payouts::stripe_account(conn, user.id).await? {
        Some(account) => account,
        None => {
            let created = stripe
                .create_express_account(&format!("connect-{}", user.id), &user.email, user.id)
                .await?;
            tracing::info!(user_id = %user.id, account_id = %created.account_id, "stripe account created");
            payouts::save_stripe_account(conn, user.id, &created.account_id, &created.state, now)
                .await?
        }
    };
    let link = stripe.onboarding_link(&account.account_id).await?;
    Ok(Onboarding {
        account,
        url: link.url,
        expires_at: link.expires_at,
    })
}

/// The user's connected account, if any.
pub async fn stripe_status(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<Option<StripeAccount>, PayoutError> {
    let user = user(conn, platform_user_id).await?;
    Ok(payouts::stripe_account(conn, user.id).await?)
}

/// Requests a payout of `requested`, or of the whole available referral balance.
pub async fn request(
    conn: &mut PgConnection,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    platform_user_id: &str,
    requested: Option<Money>,
) -> Result<Payout, PayoutError> {
    let user = if mutants::planted(Mutant::PayoutWithoutLock) {
        users::find_by_platform_id(conn, platform_user_id).await?
    } else {
        users::lock_by_platform_id(conn, platform_user_id).await?
    }
    .ok_or_else(|| PayoutError::UserNotFound(platform_user_id.to_owned()))?;
    let track = users::track(conn, user.id).await?;
    let account = payouts::stripe_account(conn, user.id).await?;
    let available = crate::store::partners::referral_balance(conn, user.id).await?;
    let amount = payout::may_request(
        track,
        account.as_ref().map(|a| &a.state),
        available,
        requested,
        settings.minimum_payout,
    )?;
    let account_id = account.map(|a| a.account_id).unwrap_or_default();
    let payout = payouts::insert_requested(conn, user.id, amount, &account_id, now).await?;
    ledger::post(
        conn,
        &payout::requested_posting(user.id, payout.id, amount, now),
    )
    .await?;
    jobs::enqueue_now(
        conn,
        &SendPayoutTransfer {
            payout_id: payout.id,
        },
    )
    .await?;
    tracing::info!(user_id = %user.id, payout_id = %payout.id, amount = %amount, "payout requested");
    Ok(payout)
}

/// Whether the user could request a payout of their whole balance now, and if not the
/// first condition they must fix: the same decision [`request`] makes, without writing.
pub async fn readiness(
    conn: &mut PgConnection,
    settings: &ProgramSettings,
    platform_user_id: &str,
) -> Result<Result<Money, payout::PayoutRefused>, PayoutError> {
    let user = user(conn, platform_user_id).await?;
    let track = users::track_unlocked(conn, user.id).await?;
    let account = payouts::stripe_account(conn, user.id).await?;
    let available = crate::store::partners::referral_balance(conn, user.id).await?;
    Ok(payout::may_request(
        track,
        account.as_ref().map(|a| &a.state),
        available,
        None,
        settings.minimum_payout,
    ))
}

/// A page of the user's payouts, newest first.
#[derive(Debug, Clone)]
pub struct PayoutPage {
    /// The payouts.
    pub payouts: Vec<Payout>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// The user's payouts, newest first, after `after`.
pub async fn history(
    conn: &mut PgConnection,
    platform_user_id: &str,
    after: Option<Cursor>,
    limit: i64,
) -> Result<PayoutPage, PayoutError> {
    let user = user(conn, platform_user_id).await?;
    let payouts = payouts::page(conn, user.id, after, limit).await?;
    let next = (i64::try_from(payouts.len()).unwrap_or(i64::MAX) == limit)
        .then(|| {
            payouts.last().map(|p| Cursor {
                at: p.requested_at,
                id: p.id.0,
            })
        })
        .flatten();
    Ok(PayoutPage { payouts, next })
}

/// What one run of the payout job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stripe accepted the transfer and the bank payout; the payout is `PROCESSING`.
    Processing(Payout),
    /// Stripe refused for good; the payout is `FAILED` and its amount is back.
    Failed(Payout),
    /// An earlier run did it, or the payout is gone.
    Skipped(Option<PayoutStatus>),
}

/// Sends a requested payout: a transfer to the connected account, then a payout of it to
/// the user's bank, each with the payout's own idempotency key. A Stripe error that will
/// not heal fails the payout (amount returned, user told); any other error is returned
/// for the job to retry, and the retry gets Stripe's first answers.
pub async fn send(
    pool: &PgPool,
    stripe: &impl PaymentProvider,
    now: impl Fn() -> DateTime<Utc>,
    payout_id: PayoutId,
) -> Result<Sent, PayoutError> {
    // A first look outside any transaction: no lock is held while Stripe answers.
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    let Some(payout) = payouts::lock(&mut conn, payout_id).await? else {
        return Ok(Sent::Skipped(None));
    };
    if payout.status != PayoutStatus::Requested {
        return Ok(Sent::Skipped(Some(payout.status)));
    }
    // A transfer recorded by an earlier run is never asked for again: Stripe keeps an
    // idempotency key for a day, and a job retried later (an operator's retry after an
    // outage) must not depend on it.
    let transfer_key = StripeKey::in_force(&mut conn, StripeCall::Transfer, payout.id).await?;
    let bank_key = StripeKey::in_force(&mut conn, StripeCall::BankPayout, payout.id).await?;
    let transfer = match payout.transfer_id.clone() {
        Some(transfer_id) => Ok(transfer_id),
        None => {
            let created = stripe
                .create_transfer(
                    &transfer_key.key(),
                    &payout.stripe_account_id,
                    payout.amount,
                    payout.id,
                )
                .await;
            if let Ok(transfer_id) = &created {
                payouts::record_transfer(&mut conn, payout.id, transfer_id).await?;
            }
            created
        }
    };
    drop(conn);
    let outcome = match transfer {
        Err(error) => Err((None, error)),
        Ok(transfer_id) => match stripe
            .create_bank_payout(
                &bank_key.key(),
                &payout.stripe_account_id,
                payout.amount,
                payout.id,
            )
            .await
        {
            Ok(bank_payout_id) => Ok((transfer_id, bank_payout_id)),
            // The money reached the connected account but cannot go on to the bank.
            Err(error) => Err((Some(transfer_id), error)),
        },
    };
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    // Locked again: a webhook or a second run may have moved it while Stripe answered.
    let Some(payout) = payouts::lock(&mut tx, payout_id).await? else {
        return Ok(Sent::Skipped(None));
    };
    if payout.status != PayoutStatus::Requested {
        return Ok(Sent::Skipped(Some(payout.status)));
    }
    let event = match &outcome {
        Ok(_) => PayoutEvent::Sent,
        Err((_, error)) if error.is_permanent() => PayoutEvent::SendRefused,
        // Stripe may have done the work: the job asks again later with the same keys.
        Err((_, error)) => return Err(error.clone().into()),
    };
    let now = now();
    let sent = match (payout.status.on(event), outcome) {
        (PayoutStep::Unchanged | PayoutStep::Early, _) => {
            return Ok(Sent::Skipped(Some(payout.status)));
        }
        (PayoutStep::Move { to, money }, Ok((transfer_id, bank_payout_id))) => {
            expect_status(&payout, to, PayoutStatus::Processing)?;
            let arrival = payout::arrival_window(now.date_naive());
            payouts::mark_processing(
                &mut tx,
                payout.id,
                &transfer_id,
                &bank_payout_id,
                arrival,
                now,
            )
            .await?;
            post_money(&mut tx, &payout, money, now).await?;
            tracing::info!(payout_id = %payout.id, %transfer_id, %bank_payout_id, "payout sent");
            Sent::Processing(locked(&mut tx, payout_id).await?)
        }
        (PayoutStep::Move { to, money }, Err((transfer_id, error))) => {
            expect_status(&payout, to, PayoutStatus::Failed)?;
            let reason = error.to_string();
            let refused = if transfer_id.is_some() {
                &bank_key
            } else {
                &transfer_key
            };
            refused.refused(&mut tx, &reason, now).await?;
            fail(
                &mut tx,
                &payout,
                transfer_id.as_deref(),
                money,
                &reason,
                now,
            )
            .await?;
            tracing::warn!(payout_id = %payout.id, %reason, "stripe refused the payout for good");
            Sent::Failed(locked(&mut tx, payout_id).await?)
        }
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(sent)
}

/// The state machine chose `to` where this flow writes `expected`: a corrupt pairing.
fn expect_status(
    payout: &Payout,
    to: PayoutStatus,
    expected: PayoutStatus,
) -> Result<(), StoreError> {
    if to == expected {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "payout {} would move from {:?} to {to:?} where {expected:?} is written",
            payout.id, payout.status
        )))
    }
}

/// Posts what a payout's change of status does to its money.
async fn post_money(
    conn: &mut PgConnection,
    payout: &Payout,
    money: PayoutMoney,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match money.posting(payout.user_id, payout.id, payout.amount, now) {
        Some(posting) => ledger::post(conn, &posting).await,
        None => Ok(()),
    }
}

async fn locked(conn: &mut PgConnection, id: PayoutId) -> Result<Payout, StoreError> {
    payouts::lock(conn, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payout {id} not found")))
}

/// Fails a payout: its amount back to the referral balance, the user told, and, when a
/// transfer reached the connected account (`new_transfer_id`, or one recorded before),
/// a job to take that money back from Stripe, so it is never both in the balance and
/// in the user's Stripe account.
async fn fail(
    conn: &mut PgConnection,
    payout: &Payout,
    new_transfer_id: Option<&str>,
    money: PayoutMoney,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    payouts::mark_failed(conn, payout, new_transfer_id, reason, now).await?;
    post_money(conn, payout, money, now).await?;
    if payout.transfer_id.is_some() || new_transfer_id.is_some() {
        jobs::enqueue_now(
            conn,
            &ReversePayoutTransfer {
                payout_id: payout.id,
            },
        )
        .await?;
    }
    let to = users::email_of(conn, payout.user_id).await?;
    queue_email(conn, now, &mail::failed(&to, payout, reason)).await?;
    Ok(())
}

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The event changed our state.
    Applied,
    /// The event was delivered before; nothing changed.
    Duplicate,
    /// Nothing of ours is concerned (an unknown account or payout, or a type we ignore).
    Ignored,
    /// It names a payout whose job has not yet recorded Stripe's answer: the caller rolls
    /// back (the event stays unrecorded) and asks Stripe to deliver it again later.
    Early,
}

/// Applies a verified provider event, once per event id, in the caller's transaction.
pub async fn apply_event(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    event: &ProviderEvent,
) -> Result<EventOutcome, StoreError> {
    if !payouts::record_event(conn, &event.id, &event.type_name, now).await? {
        return Ok(EventOutcome::Duplicate);
    }
    let outcome = match &event.kind {
        EventKind::AccountUpdated { account_id, state } => {
            if payouts::update_stripe_account(conn, account_id, state, event.created).await? {
                EventOutcome::Applied
            } else {
                EventOutcome::Ignored
            }
        }
        EventKind::BankPayoutPaid(object) => settle(conn, now, object, None).await?,
        EventKind::BankPayoutFailed { object, reason } => {
            settle(conn, now, object, Some(reason)).await?
        }
        EventKind::TransferReversed {
            object,
            reversed_cents,
        } => settle_reversed(conn, now, object, *reversed_cents).await?,
        EventKind::Other => EventOutcome::Ignored,
    };
    tracing::info!(event_id = %event.id, event_type = %event.type_name, ?outcome, "stripe event");
    Ok(outcome)
}

/// The payout an object of the provider is about, locked: by the id we recorded, or else
/// by the payout id we sent with it (the provider may answer by webhook before the job
/// recorded its answer).
async fn payout_of(
    conn: &mut PgConnection,
    object: &PayoutObject,
) -> Result<Option<Payout>, StoreError> {
    if let Some(payout) = payouts::lock_by_stripe_id(conn, &object.provider_id).await? {
        return Ok(Some(payout));
    }
    match object.payout_id {
        Some(id) => payouts::lock(conn, id).await,
        None => Ok(None),
    }
}

/// Moves the payout Stripe knows by `stripe_id` to `PAID`, or to `FAILED` with `failure`.
/// A payout already final stays as it is: its money moved once.
async fn settle(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    object: &PayoutObject,
    failure: Option<&str>,
) -> Result<EventOutcome, StoreError> {
    let Some(payout) = payout_of(conn, object).await? else {
        return Ok(EventOutcome::Ignored);
    };
    settle_found(conn, now, &payout, failure).await
}

/// Moves a locked `payout` to `PAID`, or to `FAILED` with `failure`, when its status
/// allows it.
pub(crate) async fn settle_found(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    payout: &Payout,
    failure: Option<&str>,
) -> Result<EventOutcome, StoreError> {
    let event = match failure {
        None => PayoutEvent::BankPaid,
        Some(_) => PayoutEvent::BankFailed,
    };
    match (payout.status.on(event), failure) {
        (PayoutStep::Unchanged, _) => Ok(EventOutcome::Ignored),
        (PayoutStep::Early, _) => Ok(EventOutcome::Early),
        (PayoutStep::Move { to, money }, None) => {
            expect_status(payout, to, PayoutStatus::Paid)?;
            payouts::mark_paid(conn, payout, now).await?;
            post_money(conn, payout, money, now).await?;
            let to = users::email_of(conn, payout.user_id).await?;
            queue_email(conn, now, &mail::paid(&to, payout)).await?;
            Ok(EventOutcome::Applied)
        }
        (PayoutStep::Move { to, money }, Some(reason)) => {
            expect_status(payout, to, PayoutStatus::Failed)?;
            fail(conn, payout, None, money, reason, now).await?;
            Ok(EventOutcome::Applied)
        }
    }
}

/// A transfer reversed in full at Stripe: a payout still on its way has failed (its
/// money is back at the platform, so nothing is left to reverse). A partial reversal is
/// not something this engine does; it is logged for an operator.
async fn settle_reversed(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    transfer: &PayoutObject,
    reversed: i64,
) -> Result<EventOutcome, StoreError> {
    let Some(payout) = payout_of(conn, transfer).await? else {
        return Ok(EventOutcome::Ignored);
    };
    if reversed < payout.amount.to_minor_units()? {
        tracing::warn!(payout_id = %payout.id, reversed, "part of a payout's transfer reversed at Stripe; left to an operator");
        return Ok(EventOutcome::Ignored);
    }
    match payout.status.on(PayoutEvent::TransferReversed) {
        PayoutStep::Early => Ok(EventOutcome::Early),
        PayoutStep::Unchanged => Ok(EventOutcome::Ignored),
        PayoutStep::Move { to, money } => {
            expect_status(&payout, to, PayoutStatus::Failed)?;
            // The money is back at the platform already: nothing to reverse.
            let reason = "the transfer was reversed";
            payouts::mark_failed(conn, &payout, None, reason, now).await?;
            post_money(conn, &payout, money, now).await?;
            let to = users::email_of(conn, payout.user_id).await?;
            queue_email(conn, now, &mail::failed(&to, &payout, reason)).await?;
            Ok(EventOutcome::Applied)
        }
    }
}

/// What one run of the reversal job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversed {
    /// Stripe took the money back (the reversal id).
    Done(String),
    /// Nothing to take back: not failed, no transfer, or reversed before.
    Skipped,
}

/// Takes a failed payout's transfer back from the connected account, with the payout's
/// own idempotency key; a Stripe error is returned for the job to retry or stop. A
/// refusal for good also moves the key to its next generation, so an operator's retry
/// (once the account can cover it) is a new request, not a replay of the refusal.
pub async fn reverse_transfer(
    pool: &PgPool,
    stripe: &impl PaymentProvider,
    now: impl Fn() -> DateTime<Utc>,
    payout_id: PayoutId,
) -> Result<Reversed, PayoutError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    let Some(payout) = payouts::lock(&mut conn, payout_id).await? else {
        return Ok(Reversed::Skipped);
    };
    let (PayoutStatus::Failed, Some(transfer_id), None) = (
        payout.status,
        payout.transfer_id.as_deref(),
        payout.transfer_reversal_id.as_deref(),
    ) else {
        return Ok(Reversed::Skipped);
    };
    let key = StripeKey::in_force(&mut conn, StripeCall::Reversal, payout.id).await?;
    drop(conn);
    let reversed = stripe
        .reverse_transfer(&key.key(), transfer_id, payout.amount, payout.id)
        .await;
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    let reversal_id = match reversed {
        Ok(reversal_id) => reversal_id,
        Err(error) => {
            if error.is_permanent() {
                key.refused(&mut conn, &error.to_string(), now()).await?;
            }
            return Err(error.into());
        }
    };
    payouts::record_reversal(&mut conn, payout.id, &reversal_id).await?;
    tracing::info!(payout_id = %payout.id, %reversal_id, "failed payout's transfer reversed");
    Ok(Reversed::Done(reversal_id))
}

/// The idempotency key a Stripe call of a payout goes out under now.
struct StripeKey {
    call: StripeCall,
    payout_id: PayoutId,
    generation: i32,
}

impl StripeKey {
    async fn in_force(
        conn: &mut PgConnection,
        call: StripeCall,
        payout_id: PayoutId,
    ) -> Result<Self, StoreError> {
        let generation = stripe_keys::generation(conn, &call.base_key(payout_id.0)).await?;
        Ok(Self {
            call,
            payout_id,
            generation,
        })
    }

    fn key(&self) -> String {
        self.call.key(self.payout_id.0, self.generation)
    }

    /// Stripe refused this key for good: the next request for the work gets a new one.
    async fn refused(
        &self,
        conn: &mut PgConnection,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tracing::info!(payout_id = %self.payout_id, call = ?self.call, generation = self.generation, "stripe refused the key for good; the next request gets a new one");
        stripe_keys::advance_after_refusal(
            conn,
            &self.call.base_key(self.payout_id.0),
            self.generation,
            reason,
            now,
        )
        .await
    }
}

/// The e-mails of a payout's outcome: plain text with an HTML alternative.
mod mail {
    use super::Payout;
    use crate::store::emails::NewEmail;

    fn arrival(payout: &Payout) -> String {
        match (payout.arrival_earliest, payout.arrival_latest) {
            (Some(earliest), Some(latest)) => format!(
                "between {} and {}",
                earliest.format("%a %-d %b %Y"),
                latest.format("%a %-d %b %Y")
            ),
            _ => "within 2 to 7 business days".to_owned(),
        }
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    pub(super) fn paid(to: &str, payout: &Payout) -> NewEmail {
        let arrival = arrival(payout);
        NewEmail {
            to: to.to_owned(),
            subject: format!("Your payout of {} is on its way", payout.amount),
            body: format!(
                "Your payout of {amount} has been sent to your bank account.\n\n\
                 Payout id: {id}\nExpected arrival: {arrival}\n",
                amount = payout.amount,
                id = payout.id
            ),
            html_body: Some(format!(
                "<p>Your payout of <strong>{amount}</strong> has been sent to your bank account.</p>\
                 <table><tr><th align=\"left\">Payout id</th><td>{id}</td></tr>\
                 <tr><th align=\"left\">Expected arrival</th><td>{arrival}</td></tr></table>",
                amount = escape(&payout.amount.to_string()),
                id = payout.id,
                arrival = escape(&arrival)
            )),
        }
    }

    pub(super) fn failed(to: &str, payout: &Payout, reason: &str) -> NewEmail {
        NewEmail {
            to: to.to_owned(),
            subject: format!("Your payout of {} did not go through", payout.amount),
            body: format!(
                "Your payout of {amount} could not be completed: {reason}.\n\n\
                 Payout id: {id}\nThe amount is back in your referral balance; check your \
                 Stripe account details and request it again.\n",
                amount = payout.amount,
                id = payout.id
            ),
            html_body: Some(format!(
                "<p>Your payout of <strong>{amount}</strong> could not be completed: {reason}.</p>\
                 <p>Payout id: {id}</p><p>The amount is back in your referral balance; check your \
                 Stripe account details and request it again.</p>",
                amount = escape(&payout.amount.to_string()),
                reason = escape(reason),
                id = payout.id
            )),
        }
    }
}
