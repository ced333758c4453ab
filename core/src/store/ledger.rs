//! The append-only ledger (SPEC: Ledger). Balances are sums of entries; a trigger in the
//! schema refuses updates and deletes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::ledger::{Account, Entry, EntryKind};
use crate::error::StoreError;
use crate::ids::{CommissionId, CreditGrantId, CreditSpendId, UserId};
use crate::money::Money;
use crate::store::credit::usd;

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Whose account.
    pub user_id: UserId,
    /// Which account.
    pub account: Account,
    /// What happened.
    pub kind: EntryKind,
    /// Signed: positive into the account, negative out of it.
    pub amount: Money,
    /// The credit grant concerned.
    pub credit_grant_id: Option<CreditGrantId>,
    /// The spend concerned.
    pub credit_spend_id: Option<CreditSpendId>,
    /// The commission concerned.
    pub commission_id: Option<CommissionId>,
    /// Business time of the movement.
    pub occurred_at: DateTime<Utc>,
}

/// Appends one entry.
pub async fn append(conn: &mut PgConnection, entry: &NewEntry) -> Result<(), StoreError> {
    sqlx::query!(
        "insert into ledger_entries (user_id, account, kind, amount, currency, credit_grant_id,
                                     credit_spend_id, commission_id, occurred_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        entry.user_id as _,
        entry.account as _,
        entry.kind as _,
        entry.amount.amount(),
        entry.amount.currency().code(),
        entry.credit_grant_id as _,
        entry.credit_spend_id as _,
        entry.commission_id as _,
        entry.occurred_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct EntryRow {
    id: i64,
    account: Account,
    kind: EntryKind,
    amount: Decimal,
    credit_grant_id: Option<CreditGrantId>,
    occurred_at: DateTime<Utc>,
}

/// The entries of one account, oldest first.
pub async fn entries(
    conn: &mut PgConnection,
    user_id: UserId,
    account: Account,
) -> Result<Vec<Entry>, StoreError> {
    sqlx::query_as!(
        EntryRow,
        r#"select id, account as "account: Account", kind as "kind: EntryKind", amount,
                  credit_grant_id as "credit_grant_id: CreditGrantId", occurred_at
           from ledger_entries where user_id = $1 and account = $2 order by occurred_at, id"#,
        user_id as _,
        account as _,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row| {
        Ok(Entry {
            id: row.id,
            account: row.account,
            kind: row.kind,
            amount: usd(row.amount)?,
            credit_grant_id: row.credit_grant_id,
            occurred_at: row.occurred_at,
        })
    })
    .collect()
}
