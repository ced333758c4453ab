//! Outgoing e-mails: a row per message, written with the business change that causes
//! it, then sent by the `SendEmail` job.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::EmailId;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The same message as HTML, shown by mail programs that can.
    pub html_body: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Email {
    /// Id.
    pub id: EmailId,
    /// Recipient address.
    pub to_address: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML alternative.
    pub html_body: Option<String>,
    /// When it was handed to the SMTP server, if it was.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Stores a message to send.
pub async fn insert(
    conn: &mut PgConnection,
    email: &NewEmail,
    now: DateTime<Utc>,
) -> Result<EmailId, StoreError> {
    let id = EmailId::generate();
    sqlx::query!(
        "insert into emails (id, to_address, subject, body, html_body, created_at)
         values ($1, $2, $3, $4, $5, $6)",
        id.0,
        email.to,
        email.subject,
        email.body,
        email.html_body,
        now
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Loads a message and locks it, so two deliveries of one job cannot both send it.
pub async fn lock(conn: &mut PgConnection, id: EmailId) -> Result<Option<Email>, StoreError> {
    Ok(sqlx::query_as!(
        Email,
        r#"select id as "id: EmailId", to_address, subject, body, html_body, sent_at
           from emails where id = $1 for update"#,
        id.0
    )
    .fetch_optional(conn)
    .await?)
}

/// Records that the SMTP server accepted the message.
pub async fn mark_sent(
    conn: &mut PgConnection,
    id: EmailId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!("update emails set sent_at = $2 where id = $1", id.0, now)
        .execute(conn)
        .await?;
    Ok(())
}
