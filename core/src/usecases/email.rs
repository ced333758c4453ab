//! E-mail outbox: a message is stored and its `SendEmail` job enqueued in the caller's
//! transaction, so a rolled-back change never sends mail and a committed one always does.
//! Delivery is a lock, the SMTP hand-off, then [`mark_sent`], all in one transaction of
//! the `SendEmail` job, so a message is handed to SMTP at most once per commit.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::EmailId;
use crate::jobs::{self, SendEmail};
use crate::store::emails::{self, Email, NewEmail};

/// Stores `email` and schedules its delivery.
pub async fn queue_email(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    email: &NewEmail,
) -> Result<EmailId, StoreError> {
    let email_id = emails::insert(conn, email, now).await?;
    jobs::enqueue_now(conn, &SendEmail { email_id }).await?;
    Ok(email_id)
}

/// What one delivery attempt of a stored e-mail must do.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Hand this message to SMTP, then [`mark_sent`] in the same transaction.
    Send(Email),
    /// An earlier delivery already sent it.
    AlreadySent,
    /// No such message.
    NotFound,
}

/// Starts delivering `email_id`: locks its row for the rest of the caller's transaction,
/// so a second delivery of the same job waits for this one, then sees it sent.
pub async fn begin_delivery(
    conn: &mut PgConnection,
    email_id: EmailId,
) -> Result<Delivery, StoreError> {
    Ok(match emails::lock(conn, email_id).await? {
        None => Delivery::NotFound,
        Some(email) if email.sent_at.is_some() => Delivery::AlreadySent,
        Some(email) => Delivery::Send(email),
    })
}

/// Records that the SMTP server accepted `email_id`, in the transaction that locked it.
pub async fn mark_sent(
    conn: &mut PgConnection,
    email_id: EmailId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    emails::mark_sent(conn, email_id, now).await
}
