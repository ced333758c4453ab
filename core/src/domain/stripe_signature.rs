//! The `Stripe-Signature` scheme of Stripe webhooks: `t=<unix seconds>,v1=<hex>[,v1=…]`,
//! where each `v1` is HMAC-SHA256 over `"{t}.{body}"` keyed with the endpoint's secret.
//! Several `v1` values appear while a secret is being rolled; any one matching is enough.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signature's time may be from ours (Stripe's own libraries use 5 minutes):
/// older is a replay, newer a forged clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook was refused. The message never repeats the signature or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` in the header, or a value that is not what the scheme says.
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    /// The time signed is more than five minutes from ours.
    #[error("the Stripe-Signature timestamp is more than {TOLERANCE_SECONDS} seconds from now")]
    Stale,
    /// No `v1` value matches the body.
    #[error("no signature in the Stripe-Signature header matches the body")]
    Mismatch,
}

/// Checks `header` against `body`, `secret` and `now`.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed("expected key=value pairs"));
        };
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not a number"))?,
                );
            }
            "v1" => candidates
                .push(hex::decode(value).map_err(|_| SignatureError::Malformed("v1 is not hex"))?),
            // v0 (a test scheme) and future schemes are ignored, as Stripe's libraries do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= value"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1= value"));
    }
    let skew = now
        .timestamp()
        .checked_sub(timestamp)
        .map(i64::unsigned_abs);
    if skew.is_none_or(|skew| skew > TOLERANCE_SECONDS.unsigned_abs()) {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    // Every candidate is compared in full, in constant time, so the timing of an answer
    // tells nothing about how close a forged value came.
    let matched = candidates
        .iter()
        .fold(subtle::Choice::from(0), |any, candidate| {
            any | expected.as_slice().ct_eq(candidate)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `body` at `timestamp`: used by the local Stripe
/// stand-in and by tests.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payout.paid"}"#;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_signature_made_with_the_secret_passes() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(verify(&header, BODY, SECRET, at(1_700_000_000)), Ok(()));
        assert_eq!(verify(&header, BODY, SECRET, at(1_700_000_300)), Ok(()));
    }

    #[test]
    fn matches_an_independently_computed_signature() {
        // Computed apart from this code: printf '1.{}' | openssl dgst -sha256 -hmac whsec_x
        let header = "t=1,v1=36ee2f7498f0c1777d1312b2a7361947fe5ad31223be30d0c62421f4ca753401";
        assert_eq!(sign(b"whsec_x", 1, b"{}"), header);
        assert_eq!(verify(header, b"{}", b"whsec_x", at(1)), Ok(()));
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        let good = sign(SECRET, 100, BODY);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=100,v1={},v0=abc,v1={good_v1}", "00".repeat(32));
        assert_eq!(verify(&header, BODY, SECRET, at(100)), Ok(()));
    }

    #[test]
    fn forged_changed_or_stale_is_refused() {
        let header = sign(SECRET, 100, BODY);
        assert_eq!(
            verify(&header, b"{\"id\":\"evt_2\"}", SECRET, at(100)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, b"whsec_other", at(100)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, at(100 + TOLERANCE_SECONDS + 1)),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, at(100 - TOLERANCE_SECONDS - 1)),
            Err(SignatureError::Stale)
        );
        let far_past = format!("t={},v1={}", i64::MIN, "00".repeat(32));
        assert_eq!(
            verify(&far_past, BODY, SECRET, at(100)),
            Err(SignatureError::Stale)
        );
        for malformed in ["", "v1=00", "t=100", "t=x,v1=00", "t=100,v1=zz", "garbage"] {
            assert!(
                matches!(
                    verify(malformed, BODY, SECRET, at(100)),
                    Err(SignatureError::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
    }
}
