//! Signup credit, the two job halves (SPEC: Signup credit): grant and expire. Each is
//! idempotent and runs inside the caller's transaction; the grant is locked so a spend
//! and an expiry of it serialize, and expiry removes exactly what is left.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::credit::CreditGrant;
use crate::domain::ledger::{Account, Concerning, EntryKind, Posting};
use crate::error::StoreError;
use crate::ids::UserId;
use crate::money::Money;
use crate::mutants::{self, Mutant};
use crate::settings::ProgramSettings;
use crate::store::credit as store;
use crate::store::users;
use crate::usecases::ledger;

/// What granting did.
#[derive(Debug, Clone)]
pub enum GrantOutcome {
    /// Credit granted now.
    Granted(CreditGrant),
    /// The user already had their signup credit.
    AlreadyGranted,
    /// The signup was not attributed: no credit is due.
    NotAttributed,
}

/// Grants the signup credit of an attributed user, once. Its expiry instant is fixed by
/// the signup, so a late grant expires on time all the same.
pub async fn grant_signup_credit(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    settings: &ProgramSettings,
    user_id: UserId,
) -> Result<GrantOutcome, StoreError> {
    let user = users::find(conn, user_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("user {user_id} not found")))?;
    if user.referred_by.is_none() {
        return Ok(GrantOutcome::NotAttributed);
    }
    let expires_at = user.signed_up_at + settings.signup_credit_lifetime;
    let grant =
        match store::insert_signup_grant(conn, user_id, settings.signup_credit, now, expires_at)
            .await?
        {
            Some(grant) => grant,
            None if mutants::planted(Mutant::SignupCreditTwice) => {
                match store::lock_signup_grant(conn, user_id).await? {
                    Some(grant) => grant,
                    None => return Ok(GrantOutcome::AlreadyGranted),
                }
            }
            None => return Ok(GrantOutcome::AlreadyGranted),
        };
    ledger::post(
        conn,
        &Posting::inflow(
            user_id,
            EntryKind::CreditGranted,
            Concerning {
                credit_grant_id: Some(grant.id),
                ..Concerning::default()
            },
            Account::Wallet,
            grant.amount,
            now,
        ),
    )
    .await?;
    Ok(GrantOutcome::Granted(grant))
}

/// What expiring did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// What was left is gone.
    Expired {
        /// The amount removed (zero if all was spent).
        removed: Money,
    },
    /// It had already expired.
    AlreadyExpired,
    /// Too early: the grant expires at this instant.
    NotYetDue(DateTime<Utc>),
    /// The grant job has not run yet; try again later.
    NoGrantYet,
}

/// Removes what is left of the user's signup credit once it is due.
pub async fn expire_signup_credit(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    user_id: UserId,
    due_at: DateTime<Utc>,
) -> Result<ExpireOutcome, StoreError> {
    if now < due_at {
        return Ok(ExpireOutcome::NotYetDue(due_at));
    }
    let Some(grant) = store::lock_signup_grant(conn, user_id).await? else {
        return Ok(ExpireOutcome::NoGrantYet);
    };
    if grant.expired_at.is_some() {
        return Ok(ExpireOutcome::AlreadyExpired);
    }
    let Some(expires_at) = grant.expires_at else {
        return Err(StoreError::Corrupt(format!(
            "signup grant {} never expires",
            grant.id
        )));
    };
    if now < expires_at {
        return Ok(ExpireOutcome::NotYetDue(expires_at));
    }
    let removed = store::expire(conn, &grant, now).await?;
    if removed.is_positive() {
        ledger::post(
            conn,
            &Posting::outflow(
                grant.user_id,
                EntryKind::CreditExpired,
                Concerning {
                    credit_grant_id: Some(grant.id),
                    ..Concerning::default()
                },
                Account::Wallet,
                removed,
                now,
            ),
        )
        .await?;
    }
    Ok(ExpireOutcome::Expired { removed })
}
