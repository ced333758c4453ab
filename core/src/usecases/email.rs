//! E-mail outbox: a message is stored and its `SendEmail` job enqueued in the caller's
//! transaction, so a rolled-back change never sends mail and a committed one always does.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::EmailId;
use crate::jobs::{self, SendEmail};
use crate::store::emails::{self, NewEmail};

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
