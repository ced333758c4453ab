//! Becoming a Partner and going back to Basic (SPEC: Partner program).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::commission::Track;
use crate::domain::partner::Signature;
use crate::domain::partner::{self, DowngradeRefused, UpgradeRefused};
use crate::domain::user::User;
use crate::error::StoreError;
use crate::money::Money;
use crate::store::partners;
use crate::store::users;

/// A signature of the partner agreement, as the user gave it.
#[derive(Debug, Clone)]
pub struct SignAgreement {
    /// The version signed.
    pub agreement_version: String,
    /// SHA-256 of the text signed.
    pub agreement_sha256: String,
    /// The typed full name.
    pub full_name: String,
    /// The signer's IP.
    pub ip: Option<String>,
    /// The signer's browser.
    pub user_agent: Option<String>,
}

/// Why a track change was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// No user has this platform id.
    #[error("no user with user_id `{0}`")]
    UserNotFound(String),
    /// The upgrade is not possible.
    #[error(transparent)]
    Upgrade(#[from] UpgradeRefused),
    /// Going back to Basic is not possible yet.
    #[error(transparent)]
    Downgrade(#[from] DowngradeRefused),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a user stands on the Partner track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerStatus {
    /// Their track.
    pub track: Track,
    /// Their latest signature of the agreement.
    pub signature: Option<Signature>,
    /// Their referral balance (Partner earnings not yet withdrawn).
    pub referral_balance: Money,
}

async fn status_of(conn: &mut PgConnection, user: &User) -> Result<PartnerStatus, StoreError> {
    Ok(PartnerStatus {
        track: users::track_unlocked(conn, user.id).await?,
        signature: partners::latest_signature(conn, user.id).await?,
        referral_balance: partners::referral_balance(conn, user.id).await?,
    })
}

/// Where the user with this platform id stands.
pub async fn status(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<PartnerStatus, PartnerError> {
    let user = users::find_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| PartnerError::UserNotFound(platform_user_id.to_owned()))?;
    Ok(status_of(conn, &user).await?)
}

/// Makes the user a Partner on signing the current agreement; from then on their new
/// commissions are Partner commissions.
pub async fn upgrade(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    platform_user_id: &str,
    signed: SignAgreement,
) -> Result<PartnerStatus, PartnerError> {
    // The user's lock makes two upgrades at once take turns: the second sees a Partner.
    let user = users::lock_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| PartnerError::UserNotFound(platform_user_id.to_owned()))?;
    let track = users::track(conn, user.id).await?;
    partner::may_upgrade(track, &signed.agreement_version, &signed.agreement_sha256)?;
    partners::sign(
        conn,
        user.id,
        &Signature {
            agreement_version: signed.agreement_version,
            agreement_sha256: signed.agreement_sha256.to_ascii_lowercase(),
            full_name: signed.full_name,
            ip: signed.ip,
            user_agent: signed.user_agent,
            signed_at: now,
        },
    )
    .await?;
    tracing::info!(user_id = %user.id, "user became a Partner");
    Ok(status_of(conn, &user).await?)
}

/// Takes the user back to Basic, when their referral balance is zero and none of their
/// commissions is still pending or eligible.
pub async fn downgrade(
    conn: &mut PgConnection,
    platform_user_id: &str,
) -> Result<PartnerStatus, PartnerError> {
    let user = users::lock_by_platform_id(conn, platform_user_id)
        .await?
        .ok_or_else(|| PartnerError::UserNotFound(platform_user_id.to_owned()))?;
    let track = users::track(conn, user.id).await?;
    // Commissions and payouts in flight before the balance: a payment moves a commission
    // from `ELIGIBLE` into the balance, and a failed payout moves its amount back into it,
    // each in one transaction, so reading in this order cannot miss one between reads.
    let outstanding = partners::outstanding_commissions(conn, user.id).await?;
    let in_flight = crate::store::payouts::in_flight(conn, user.id).await?;
    let balance = partners::referral_balance(conn, user.id).await?;
    partner::may_downgrade(track, balance, outstanding, in_flight)?;
    partners::set_track(conn, user.id, Track::Basic).await?;
    tracing::info!(user_id = %user.id, "user went back to Basic");
    Ok(status_of(conn, &user).await?)
}
