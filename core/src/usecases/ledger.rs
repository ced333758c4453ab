//! The one way money moves (SPEC: Ledger): every use case that moves money builds a
//! [`Posting`] with the domain's constructors and posts it here, in its own transaction,
//! beside the rows that say why. Nothing else writes ledger entries, so whatever must
//! accompany every movement (an event for the platform, a check) belongs here.

use sqlx::PgConnection;

use crate::domain::ledger::Posting;
use crate::error::StoreError;
use crate::store;

/// Appends `posting` to the ledger, in the caller's transaction.
pub async fn post(conn: &mut PgConnection, posting: &Posting) -> Result<(), StoreError> {
    store::ledger::insert(conn, posting).await
}
