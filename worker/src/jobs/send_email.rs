//! `SendEmail`: deliver one stored message, once.

use referral_core::jobs::SendEmail;
use referral_core::mutants::{self, Mutant};
use referral_core::usecases::email::{self, Delivery};

use crate::mailer::MailError;
use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for SendEmail {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        let message = match email::begin_delivery(&mut tx, self.email_id).await? {
            Delivery::Send(message) => message,
            Delivery::AlreadySent => return Ok(JobOutcome::Skipped("already sent")),
            Delivery::NotFound => return Ok(JobOutcome::Skipped("e-mail not found")),
        };
        env.mailer
            .send(
                &format!("email-{}", message.id),
                &message.to_address,
                &message.subject,
                &message.body,
                message.html_body.as_deref(),
            )
            .await
            .map_err(|error| match error {
                MailError::Permanent(_) => JobError::permanent(error),
                MailError::Transient(_) => JobError::transient(error),
            })?;
        if !mutants::planted(Mutant::EmailUnrecorded) {
            email::mark_sent(&mut tx, message.id, env.clock.now()).await?;
        }
        tx.commit().await.map_err(JobError::transient)?;
        Ok(JobOutcome::Done)
    }
}
