//! Signup credit: grant, expire, spend (SPEC: Signup credit). Each is idempotent and
//! runs inside the caller's transaction; grants are locked so a spend and an expiry of
//! the same grant serialize, and expiry removes exactly what is left.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::credit::{self, SpendRefused};
use crate::error::StoreError;
use crate::ids::UserId;
use crate::money::Money;
use crate::settings::ProgramSettings;
use crate::store::credit::{self as store, CreditGrant, CreditSpend};
use crate::store::users;

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
    let Some(grant) =
        store::insert_signup_grant(conn, user_id, settings.signup_credit, now, expires_at).await?
    else {
        return Ok(GrantOutcome::AlreadyGranted);
    };
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
    if now < grant.expires_at {
        return Ok(ExpireOutcome::NotYetDue(grant.expires_at));
    }
    let removed = store::expire(conn, &grant, now).await?;
    Ok(ExpireOutcome::Expired { removed })
}

/// Why a spend was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// Not enough unexpired credit, or an unusable amount.
    #[error(transparent)]
    Refused(#[from] SpendRefused),
    /// The reference was used before for a different amount.
    #[error("reference `{reference}` was already used for a spend of {amount}")]
    ReferenceReused {
        /// The reference.
        reference: String,
        /// The earlier spend's amount.
        amount: Money,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A spend, new or replayed.
#[derive(Debug, Clone)]
pub struct SpendOutcome {
    /// The spend.
    pub spend: CreditSpend,
    /// True when the reference had been spent before (nothing new written).
    pub replayed: bool,
}

/// Spends `amount` of wallet credit, soonest-expiring first. Idempotent by `reference`.
pub async fn spend_credit(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    user_id: UserId,
    amount: Money,
    reference: &str,
) -> Result<SpendOutcome, SpendError> {
    if let Some(spend) = store::find_spend(conn, user_id, reference).await? {
        let earlier = store::usd(spend.amount)?;
        if earlier != amount {
            return Err(SpendError::ReferenceReused {
                reference: reference.to_owned(),
                amount: earlier,
            });
        }
        return Ok(SpendOutcome {
            spend,
            replayed: true,
        });
    }
    let grants = store::lock_spendable(conn, user_id).await?;
    let parts = credit::allocate_spend(&grants, amount, now)?;
    let spend = store::insert_spend(conn, user_id, reference, amount, &parts, now).await?;
    Ok(SpendOutcome {
        spend,
        replayed: false,
    })
}
