//! The append-only ledger (SPEC: Ledger). Balances are sums of entries; a trigger in the
//! schema refuses updates and deletes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::ledger::{Account, Entry, EntryKind, Posting};
use crate::error::StoreError;
use crate::ids::{CreditGrantId, UserId};
use crate::store::credit::usd;

/// Appends every leg of `posting`, one entry each. The only statement that writes the
/// ledger; use cases reach it through `usecases::ledger::post`.
pub async fn insert(conn: &mut PgConnection, posting: &Posting) -> Result<(), StoreError> {
    for leg in &posting.legs {
        sqlx::query!(
            "insert into ledger_entries (user_id, account, kind, amount, currency, credit_grant_id,
                                         credit_spend_id, commission_id, payout_id, occurred_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            posting.user_id as _,
            leg.account as _,
            posting.kind as _,
            leg.amount.amount(),
            leg.amount.currency().code(),
            posting.concerning.credit_grant_id as _,
            posting.concerning.credit_spend_id as _,
            posting.concerning.commission_id as _,
            posting.concerning.payout_id as _,
            posting.occurred_at,
        )
        .execute(&mut *conn)
        .await?;
    }
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
