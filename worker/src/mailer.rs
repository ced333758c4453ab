//! E-mail over real SMTP (lettre).

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends messages (plain text, with an HTML alternative when there is one) through one
/// SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Will never pass as it is (a malformed or refused address, a message the server
    /// rejects for good).
    #[error("permanent mail failure: {0}")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// May pass later (server unreachable, busy, a 4xx answer).
    #[error("transient mail failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl MailError {
    /// Whether sending again cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// Why a mailer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailerSetupError {
    /// `SMTP_URL` was refused by lettre.
    #[error("SMTP_URL is invalid: {0}")]
    Url(#[source] lettre::transport::smtp::Error),
    /// `SMTP_FROM` is not an address.
    #[error("SMTP_FROM is not a mailbox: {0}")]
    From(#[source] lettre::address::AddressError),
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://host:port` plain, `smtps://` TLS).
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailerSetupError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(MailerSetupError::Url)?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = from.parse().map_err(MailerSetupError::From)?;
        Ok(Self { transport, from })
    }

    /// Sends one message. A refused recipient is permanent; anything else may pass later.
    ///
    /// `key` names the stored e-mail and becomes its `Message-ID`, the same on every
    /// attempt: SMTP has no idempotency, so a worker killed between the server's "250 OK"
    /// and our commit sends it again, and the stable id is what lets mail systems (and
    /// our fault suite) recognise the second copy as the same message.
    pub async fn send(
        &self,
        key: &str,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|e| MailError::Permanent(Box::new(e)))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(format!("<{key}@{}>", self.from.email.domain())))
            .subject(subject);
        let message = match html {
            None => builder.body(text.to_owned()),
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            )),
        }
        .map_err(|e| MailError::Permanent(Box::new(e)))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(Box::new(e))),
            Err(e) => Err(MailError::Transient(Box::new(e))),
        }
    }
}
