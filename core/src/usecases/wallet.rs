//! A user's wallet of platform credit (SPEC: Signup credit): what they can spend now, and
//! spending it, soonest-expiring first, idempotently by the caller's reference.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::credit::{self, SpendRefused};
use crate::domain::credit::{CreditGrant, CreditSpend};
use crate::domain::ledger::{self, Account, Concerning, Entry, EntryKind, Posting};
use crate::domain::user::User;
use crate::error::StoreError;
use crate::money::Money;
use crate::store::credit::{self as store, NewSpend};
use crate::store::ledger as ledger_store;
use crate::store::users;
use crate::usecases::UserLookupError;

/// A wallet as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    /// Whose.
    pub user: User,
    /// Spendable now.
    pub available: Money,
    /// The sum of the wallet's ledger entries: includes credit past its expiry instant
    /// until the expiry job has written it off.
    pub balance: Money,
    /// Grants, soonest-expiring first.
    pub grants: Vec<CreditGrant>,
    /// Ledger entries, oldest first.
    pub entries: Vec<Entry>,
}

fn available_of(
    grants: &[CreditGrant],
    now: DateTime<Utc>,
    zero: Money,
) -> Result<Money, StoreError> {
    let balances: Vec<_> = grants.iter().map(CreditGrant::balance).collect();
    Ok(credit::available(&balances, now, zero)?)
}

/// The wallet of the user with this platform id, at `now`.
pub async fn view(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    zero: Money,
    platform_user_id: &str,
) -> Result<Wallet, UserLookupError> {
    let user = users::find_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| UserLookupError::NotFound(platform_user_id.to_owned()))?;
    let grants = store::grants_of(conn, user.id).await?;
    let entries = ledger_store::entries(conn, user.id, Account::Wallet).await?;
    Ok(Wallet {
        available: available_of(&grants, now, zero)?,
        balance: ledger::balance(&entries, zero).map_err(StoreError::from)?,
        user,
        grants,
        entries,
    })
}

/// Why a spend was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// No user has this platform id.
    #[error("no user with user_id `{0}`")]
    UserNotFound(String),
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

/// A spend, new or replayed; a replay carries the first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendOutcome {
    /// The spend as first recorded.
    pub spend: CreditSpend,
    /// Credit available right after the spend.
    pub available_after: Money,
    /// True when the reference had been spent before (nothing new written).
    pub replayed: bool,
}

/// Spends `amount` of the wallet credit of the user with this platform id, soonest-
/// expiring first. Idempotent by `reference`: the same reference and amount again
/// returns the first spend and writes nothing.
pub async fn spend(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    platform_user_id: &str,
    amount: Money,
    reference: &str,
) -> Result<SpendOutcome, SpendError> {
    // The user's row lock makes concurrent spends of one user take turns, so a second
    // request with the same reference waits and then finds the first one's spend, instead
    // of both passing the replay check and one hitting the unique rule.
    let user = users::lock_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| SpendError::UserNotFound(platform_user_id.to_owned()))?;
    let zero = Money::zero(amount.currency());
    if let Some(spend) = store::find_spend(conn, user.id, reference).await? {
        if spend.amount != amount {
            return Err(SpendError::ReferenceReused {
                reference: reference.to_owned(),
                amount: spend.amount,
            });
        }
        let available_after = match spend.available_after {
            Some(available) => available,
            None => available_of(&store::grants_of(conn, user.id).await?, now, zero)?,
        };
        return Ok(SpendOutcome {
            spend,
            available_after,
            replayed: true,
        });
    }
    let grants = store::lock_spendable(conn, user.id).await?;
    let parts = credit::allocate_spend(&grants, amount, now)?;
    let available_after = credit::available(&grants, now, zero)
        .and_then(|available| available.checked_sub(amount))
        .map_err(SpendRefused::Amount)?;
    let spend = store::insert_spend(
        conn,
        &NewSpend {
            user_id: user.id,
            reference,
            amount,
            parts: &parts,
            available_after,
            now,
        },
    )
    .await?;
    for (grant_id, taken) in &parts {
        crate::usecases::ledger::post(
            conn,
            &Posting::outflow(
                user.id,
                EntryKind::CreditSpent,
                Concerning {
                    credit_grant_id: Some(*grant_id),
                    credit_spend_id: Some(spend.id),
                    ..Concerning::default()
                },
                Account::Wallet,
                *taken,
                now,
            ),
        )
        .await?;
    }
    Ok(SpendOutcome {
        spend,
        available_after,
        replayed: false,
    })
}
