//! The Partner track: agreement signatures and what going back to Basic depends on.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::domain::commission::Track;
use crate::domain::partner::Signature;
use crate::error::StoreError;
use crate::ids::UserId;
use crate::money::Money;
use crate::store::credit::usd;

/// Records a signature and makes the user a Partner.
pub async fn sign(
    conn: &mut PgConnection,
    user_id: UserId,
    signature: &Signature,
) -> Result<(), StoreError> {
    sqlx::query!(
        "insert into partner_signatures (id, user_id, agreement_version, agreement_sha256,
                                         full_name, ip, user_agent, signed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        uuid::Uuid::now_v7(),
        user_id as _,
        signature.agreement_version,
        signature.agreement_sha256,
        signature.full_name,
        signature.ip,
        signature.user_agent,
        signature.signed_at,
    )
    .execute(&mut *conn)
    .await?;
    set_track(conn, user_id, Track::Partner).await
}

/// Sets a user's track.
pub async fn set_track(
    conn: &mut PgConnection,
    user_id: UserId,
    track: Track,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update users set track = $2 where id = $1",
        user_id as _,
        track as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's latest signature, if any.
pub async fn latest_signature(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Option<Signature>, StoreError> {
    Ok(sqlx::query_as!(
        Signature,
        "select agreement_version, agreement_sha256, full_name, ip, user_agent, signed_at
         from partner_signatures where user_id = $1 order by signed_at desc, id desc limit 1",
        user_id as _
    )
    .fetch_optional(conn)
    .await?)
}

/// The user's referral balance: the sum of its ledger entries.
pub async fn referral_balance(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<Money, StoreError> {
    let sum: Option<Decimal> = sqlx::query_scalar!(
        "select sum(amount) from ledger_entries where user_id = $1 and account = 'REFERRAL_BALANCE'",
        user_id as _
    )
    .fetch_one(conn)
    .await?;
    usd(sum.unwrap_or_default())
}

/// How many of the user's commissions are still `PENDING` or `ELIGIBLE`.
pub async fn outstanding_commissions(
    conn: &mut PgConnection,
    user_id: UserId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from commissions
           where referrer_id = $1 and status in ('PENDING', 'ELIGIBLE')"#,
        user_id as _
    )
    .fetch_one(conn)
    .await?)
}
