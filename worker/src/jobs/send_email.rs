//! `SendEmail`: deliver one stored message, once.

use referral_core::jobs::SendEmail;
use referral_core::store::emails;

use crate::runtime::{JobEnv, JobError, JobHandler, JobOutcome};

impl JobHandler for SendEmail {
    async fn handle(self, env: &JobEnv) -> Result<JobOutcome, JobError> {
        let mut tx = env.pool.begin().await.map_err(JobError::transient)?;
        // The row lock makes a second delivery of this job wait, then see `sent_at`.
        let Some(email) = emails::lock(&mut tx, self.email_id).await? else {
            return Ok(JobOutcome::Skipped("e-mail not found"));
        };
        if email.sent_at.is_some() {
            return Ok(JobOutcome::Skipped("already sent"));
        }
        env.mailer
            .send(&email.to_address, &email.subject, &email.body)
            .await?;
        emails::mark_sent(&mut tx, email.id, env.clock.now()).await?;
        tx.commit().await.map_err(JobError::transient)?;
        Ok(JobOutcome::Done)
    }
}
