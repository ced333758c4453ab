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
use crate::domain::payout::{self, ConnectState, PayoutRefused, PayoutStatus};
use crate::error::StoreError;
use crate::ids::PayoutId;
use crate::jobs::{self, ReversePayoutTransfer, SendPayoutTransfer};
use crate::money::Money;
use crate::settings::ProgramSettings;
use crate::store::payouts;
use crate::store::users::{self, User};
use crate::stripe::{GatewayError, StripeGateway};
use crate::usecases::email::queue_email;

pub use crate::store::payouts::{Payout, StripeAccount};

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
    stripe: &StripeGateway,
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
    let user = users::lock_by_platform_id(conn, platform_user_id)
        .await?
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
    let track = users::track(conn, user.id).await?;
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
    stripe: &StripeGateway,
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
    let transfer = match payout.transfer_id.clone() {
        Some(transfer_id) => Ok(transfer_id),
        None => {
            let created = stripe
                .create_transfer(
                    &payout::transfer_idempotency_key(payout.id.0),
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
                &payout::bank_payout_idempotency_key(payout.id.0),
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
    let now = now();
    let sent = match outcome {
        Ok((transfer_id, bank_payout_id)) => {
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
            tracing::info!(payout_id = %payout.id, %transfer_id, %bank_payout_id, "payout sent");
            Sent::Processing(locked(&mut tx, payout_id).await?)
        }
        Err((transfer_id, error)) if error.is_permanent() => {
            let reason = error.to_string();
            fail(&mut tx, &payout, transfer_id.as_deref(), &reason, now).await?;
            tracing::warn!(payout_id = %payout.id, %reason, "stripe refused the payout for good");
            Sent::Failed(locked(&mut tx, payout_id).await?)
        }
        Err((_, error)) => return Err(error.into()),
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(sent)
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
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    payouts::mark_failed(conn, payout, new_transfer_id, reason, now).await?;
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

/// A Stripe event, as much of it as we use.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StripeEvent {
    /// `evt_…`, unique per event.
    pub id: String,
    /// `account.updated`, `payout.paid`, …
    #[serde(rename = "type")]
    pub event_type: String,
    /// When Stripe created it (unix seconds).
    pub created: i64,
    /// The object the event is about.
    pub data: StripeEventData,
}

/// The `data` of a Stripe event.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StripeEventData {
    /// The object as it is after the event.
    pub object: serde_json::Value,
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

/// Applies a verified Stripe event, once per event id, in the caller's transaction.
pub async fn apply_event(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    event: &StripeEvent,
) -> Result<EventOutcome, StoreError> {
    if !payouts::record_event(conn, &event.id, &event.event_type, now).await? {
        return Ok(EventOutcome::Duplicate);
    }
    let object = &event.data.object;
    let object_id = object
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let outcome = match event.event_type.as_str() {
        "account.updated" => {
            let state = ConnectState {
                payouts_enabled: object
                    .get("payouts_enabled")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                requirements_due: requirements_due(object),
            };
            let at = DateTime::from_timestamp(event.created, 0).unwrap_or(now);
            if payouts::update_stripe_account(conn, object_id, &state, at).await? {
                EventOutcome::Applied
            } else {
                EventOutcome::Ignored
            }
        }
        "payout.paid" => settle(conn, now, object, None).await?,
        "payout.failed" => {
            let reason = object
                .get("failure_message")
                .and_then(|v| v.as_str())
                .or_else(|| object.get("failure_code").and_then(|v| v.as_str()))
                .unwrap_or("the bank refused the payout");
            settle(conn, now, object, Some(reason)).await?
        }
        "transfer.reversed" => settle_reversed(conn, now, object).await?,
        _ => EventOutcome::Ignored,
    };
    tracing::info!(event_id = %event.id, event_type = %event.event_type, ?outcome, "stripe event");
    Ok(outcome)
}

/// The payout a Stripe payout or transfer object is about, locked: by the id we
/// recorded, or else by the `payout_id` metadata we sent with it (Stripe may answer by
/// webhook before the job recorded its answer).
async fn payout_of(
    conn: &mut PgConnection,
    object: &serde_json::Value,
) -> Result<Option<Payout>, StoreError> {
    let stripe_id = object
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if let Some(payout) = payouts::lock_by_stripe_id(conn, stripe_id).await? {
        return Ok(Some(payout));
    }
    let ours = object
        .get("metadata")
        .and_then(|m| m.get("payout_id"))
        .and_then(|v| v.as_str())
        .and_then(|id| uuid::Uuid::try_parse(id).ok());
    match ours {
        Some(id) => payouts::lock(conn, PayoutId(id)).await,
        None => Ok(None),
    }
}

/// `currently_due` and `past_due` of an account's requirements, without repeats.
fn requirements_due(account: &serde_json::Value) -> Vec<String> {
    let mut due: Vec<String> = ["currently_due", "past_due"]
        .iter()
        .filter_map(|list| account.get("requirements")?.get(*list)?.as_array())
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect();
    due.sort();
    due.dedup();
    due
}

/// Moves the payout Stripe knows by `stripe_id` to `PAID`, or to `FAILED` with `failure`.
/// A payout already final stays as it is: its money moved once.
async fn settle(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    object: &serde_json::Value,
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
    match (payout.status, failure) {
        (PayoutStatus::Failed, _) | (PayoutStatus::Paid, None) => {
            return Ok(EventOutcome::Ignored);
        }
        (PayoutStatus::Requested, _) => return Ok(EventOutcome::Early),
        // Stripe may report a payout failed days after it reported it paid: the bank sent
        // the money back to the connected account.
        (PayoutStatus::Processing, _) | (PayoutStatus::Paid, Some(_)) => {}
    }
    match failure {
        None => {
            payouts::mark_paid(conn, payout, now).await?;
            let to = users::email_of(conn, payout.user_id).await?;
            queue_email(conn, now, &mail::paid(&to, payout)).await?;
        }
        Some(reason) => fail(conn, payout, None, reason, now).await?,
    }
    Ok(EventOutcome::Applied)
}

/// A transfer reversed in full at Stripe: a payout still on its way has failed (its
/// money is back at the platform, so nothing is left to reverse). A partial reversal is
/// not something this engine does; it is logged for an operator.
async fn settle_reversed(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    transfer: &serde_json::Value,
) -> Result<EventOutcome, StoreError> {
    let Some(payout) = payout_of(conn, transfer).await? else {
        return Ok(EventOutcome::Ignored);
    };
    let reversed = transfer
        .get("amount_reversed")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    if reversed < payout.amount.to_minor_units()? {
        tracing::warn!(payout_id = %payout.id, reversed, "part of a payout's transfer reversed at Stripe; left to an operator");
        return Ok(EventOutcome::Ignored);
    }
    match payout.status {
        PayoutStatus::Requested => Ok(EventOutcome::Early),
        PayoutStatus::Processing => {
            let reason = "the transfer was reversed";
            payouts::mark_failed(conn, &payout, None, reason, now).await?;
            let to = users::email_of(conn, payout.user_id).await?;
            queue_email(conn, now, &mail::failed(&to, &payout, reason)).await?;
            Ok(EventOutcome::Applied)
        }
        PayoutStatus::Failed | PayoutStatus::Paid => Ok(EventOutcome::Ignored),
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
/// own idempotency key; a Stripe error is returned for the job to retry or stop.
pub async fn reverse_transfer(
    pool: &PgPool,
    stripe: &StripeGateway,
    payout_id: PayoutId,
) -> Result<Reversed, PayoutError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    let Some(payout) = payouts::lock(&mut conn, payout_id).await? else {
        return Ok(Reversed::Skipped);
    };
    drop(conn);
    let (PayoutStatus::Failed, Some(transfer_id), None) = (
        payout.status,
        payout.transfer_id.as_deref(),
        payout.transfer_reversal_id.as_deref(),
    ) else {
        return Ok(Reversed::Skipped);
    };
    let reversal_id = stripe
        .reverse_transfer(
            &payout::reversal_idempotency_key(payout.id.0),
            transfer_id,
            payout.amount,
            payout.id,
        )
        .await?;
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    payouts::record_reversal(&mut conn, payout.id, &reversal_id).await?;
    tracing::info!(payout_id = %payout.id, %reversal_id, "failed payout's transfer reversed");
    Ok(Reversed::Done(reversal_id))
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
