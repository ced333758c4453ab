//! The Partner track (SPEC: Partner program): the agreement a user signs to become a
//! Partner, and the conditions for going back to Basic.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::commission::Track;
use crate::money::Money;

/// The current partner agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// Its version.
    pub version: &'static str,
    /// Its text, as signed.
    pub text: &'static str,
    /// SHA-256 of the text, hex: what a signature refers to.
    pub sha256: String,
}

/// The agreement a user signs today.
pub fn current_agreement() -> Agreement {
    let text = include_str!("partner_agreement.txt");
    Agreement {
        version: "2026-11",
        text,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    }
}

/// Why an upgrade to Partner was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRefused {
    /// The user is a Partner already.
    #[error("the user is a Partner already")]
    AlreadyPartner,
    /// The signature names another agreement than the current one.
    #[error(
        "the agreement signed is not the current one (version {current_version}, sha256 {current_sha256})"
    )]
    NotCurrentAgreement {
        /// The current version.
        current_version: &'static str,
        /// The current text's hash.
        current_sha256: String,
    },
}

/// Whether a user on `track` may sign `version`/`sha256` to become a Partner.
pub fn may_upgrade(track: Track, version: &str, sha256: &str) -> Result<(), UpgradeRefused> {
    if track == Track::Partner {
        return Err(UpgradeRefused::AlreadyPartner);
    }
    let agreement = current_agreement();
    if version != agreement.version || !sha256.eq_ignore_ascii_case(&agreement.sha256) {
        return Err(UpgradeRefused::NotCurrentAgreement {
            current_version: agreement.version,
            current_sha256: agreement.sha256,
        });
    }
    Ok(())
}

/// Why going back to Basic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DowngradeRefused {
    /// The user is not a Partner.
    #[error("the user is not a Partner")]
    NotPartner,
    /// The referral balance is not zero.
    #[error(
        "the referral balance is {0}, not zero: withdraw it (or earn back a negative one) first"
    )]
    BalanceNotZero(Money),
    /// Commission is still on its way.
    #[error("{0} commission(s) are still pending or eligible; wait until they are paid")]
    CommissionsOutstanding(i64),
    /// A payout has left the balance but is not paid or failed yet: if it failed, its
    /// money would come back to a referral balance a Basic user cannot withdraw.
    #[error("{0} payout(s) are still on their way; wait until they are paid or failed")]
    PayoutsInFlight(i64),
}

/// Whether a user may go back to Basic (SPEC: only with a zero referral balance and no
/// `PENDING`/`ELIGIBLE` commission). The balance is checked first: it is what the user
/// can act on.
pub fn may_downgrade(
    track: Track,
    referral_balance: Money,
    outstanding_commissions: i64,
    payouts_in_flight: i64,
) -> Result<(), DowngradeRefused> {
    if track != Track::Partner {
        return Err(DowngradeRefused::NotPartner);
    }
    if !referral_balance.is_zero() {
        return Err(DowngradeRefused::BalanceNotZero(referral_balance));
    }
    if outstanding_commissions > 0 {
        return Err(DowngradeRefused::CommissionsOutstanding(
            outstanding_commissions,
        ));
    }
    if payouts_in_flight > 0 {
        return Err(DowngradeRefused::PayoutsInFlight(payouts_in_flight));
    }
    Ok(())
}

/// A stored signature of the partner agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The agreement's version.
    pub agreement_version: String,
    /// SHA-256 of the agreement's text.
    pub agreement_sha256: String,
    /// The typed full name.
    pub full_name: String,
    /// Where it was signed from.
    pub ip: Option<String>,
    /// With what browser.
    pub user_agent: Option<String>,
    /// When.
    pub signed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agreement_is_named_by_its_version_and_hash() {
        let agreement = current_agreement();
        assert_eq!(agreement.sha256.len(), 64);
        assert_eq!(
            may_upgrade(Track::Basic, agreement.version, &agreement.sha256),
            Ok(())
        );
        assert_eq!(
            may_upgrade(Track::Partner, agreement.version, &agreement.sha256),
            Err(UpgradeRefused::AlreadyPartner)
        );
        assert!(matches!(
            may_upgrade(Track::Basic, agreement.version, &"0".repeat(64)),
            Err(UpgradeRefused::NotCurrentAgreement { .. })
        ));
        assert!(may_upgrade(Track::Basic, "2020-01", &agreement.sha256).is_err());
    }

    #[test]
    fn going_back_to_basic_needs_nothing_left() {
        let zero = Money::usd_cents(0);
        assert_eq!(may_downgrade(Track::Partner, zero, 0, 0), Ok(()));
        assert_eq!(
            may_downgrade(Track::Partner, zero, 0, 1),
            Err(DowngradeRefused::PayoutsInFlight(1))
        );
        assert_eq!(
            may_downgrade(Track::Basic, zero, 0, 0),
            Err(DowngradeRefused::NotPartner)
        );
        assert_eq!(
            may_downgrade(Track::Partner, Money::usd_cents(-100), 0, 0),
            Err(DowngradeRefused::BalanceNotZero(Money::usd_cents(-100)))
        );
        assert_eq!(
            may_downgrade(Track::Partner, zero, 2, 0),
            Err(DowngradeRefused::CommissionsOutstanding(2))
        );
    }
}
