//! Signed, short-lived tokens for the web pages: the embed token a platform hands to one
//! of its users' browsers (it opens that user's dashboard and nothing else), the session
//! of an operator signed in to the ops console, and the CSRF token of each console form.
//!
//! A token is `<purpose>.<subject in hex>.<expiry, unix seconds>.<HMAC-SHA256 in hex>`,
//! the MAC taken over everything before it with the installation's page secret. The
//! purpose is inside the MAC, so a console session can never be replayed as a dashboard
//! token or the other way round; the subject is inside it, so a token for one user can
//! never be turned into a token for another.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// One user's referral dashboard; the subject is the platform user id.
    Dashboard,
    /// An operator's console session; the subject is the admin API key id.
    OpsSession,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Dashboard => "dash",
            Purpose::OpsSession => "ops",
        }
    }
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours, or altered, or made for something else.
    #[error("the token is not valid")]
    Invalid,
    /// A real token whose time is up.
    #[error("the token has expired")]
    Expired,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Whom it is for.
    pub subject: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// A token for `subject`, valid until `expires_at`.
pub fn sign(secret: &[u8], purpose: Purpose, subject: &str, expires_at: DateTime<Utc>) -> String {
    let body = format!(
        "{}.{}.{}",
        purpose.tag(),
        hex::encode(subject),
        expires_at.timestamp()
    );
    let mut mac = mac(secret);
    mac.update(body.as_bytes());
    format!("{body}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// The claims of `token` if it was signed with `secret` for `purpose` and is still valid
/// at `now`. The signature is checked (in constant time) before anything in the token is
/// believed.
pub fn verify(
    secret: &[u8],
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let (body, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let signature = hex::decode(signature).map_err(|_| TokenError::Invalid)?;
    let mut mac = mac(secret);
    mac.update(body.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::Invalid)?;
    let mut parts = body.split('.');
    let (Some(tag), Some(subject), Some(expiry), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    if tag != purpose.tag() {
        return Err(TokenError::Invalid);
    }
    let subject = hex::decode(subject)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(TokenError::Invalid)?;
    let expires_at = expiry
        .parse::<i64>()
        .ok()
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .ok_or(TokenError::Invalid)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        subject,
        expires_at,
    })
}

/// The CSRF token of the forms of one console session: a MAC of the session, so it
/// needs no storage and a form taken from one session is refused in another.
pub fn csrf_token(secret: &[u8], session: &str) -> String {
    let mut mac = mac(secret);
    mac.update(b"csrf.");
    mac.update(session.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `presented` is the CSRF token of `session` (compared in constant time).
pub fn csrf_matches(secret: &[u8], session: &str, presented: &str) -> bool {
    let Ok(presented) = hex::decode(presented) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(b"csrf.");
    mac.update(session.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a page secret of this installation";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }

    #[test]
    fn a_token_opens_what_it_was_signed_for_until_it_expires() {
        let token = sign(SECRET, Purpose::Dashboard, "user.a@x", at(1_000));
        let claims = verify(SECRET, Purpose::Dashboard, &token, at(999));
        assert_eq!(
            claims,
            Ok(Claims {
                subject: "user.a@x".into(),
                expires_at: at(1_000)
            })
        );
        assert_eq!(
            verify(SECRET, Purpose::Dashboard, &token, at(1_000)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_cannot_be_moved_to_another_user_purpose_or_secret() {
        let token = sign(SECRET, Purpose::Dashboard, "user-a", at(1_000));
        let for_b = token.replacen(&hex::encode("user-a"), &hex::encode("user-b"), 1);
        assert_eq!(
            verify(SECRET, Purpose::Dashboard, &for_b, at(0)),
            Err(TokenError::Invalid)
        );
        let later = token.replacen("1000", "9999", 1);
        assert_eq!(
            verify(SECRET, Purpose::Dashboard, &later, at(0)),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(SECRET, Purpose::OpsSession, &token, at(0)),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(b"another installation", Purpose::Dashboard, &token, at(0)),
            Err(TokenError::Invalid)
        );
        for junk in [
            "",
            ".",
            "dash..1.",
            "dash.zz.1.00",
            &token[..token.len() - 1],
        ] {
            assert_eq!(
                verify(SECRET, Purpose::Dashboard, junk, at(0)),
                Err(TokenError::Invalid),
                "{junk}"
            );
        }
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let token = csrf_token(SECRET, "session-1");
        assert!(csrf_matches(SECRET, "session-1", &token));
        assert!(!csrf_matches(SECRET, "session-2", &token));
        assert!(!csrf_matches(SECRET, "session-1", ""));
        assert!(!csrf_matches(SECRET, "session-1", "not hex"));
    }
}
