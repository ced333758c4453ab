//! Who gets credit for a signup (SPEC: Attribution, rules 2–4).
//!
//! A signup may carry a click (from the cookie) and/or a code. A code counts as a click
//! at signup time. The most recent candidate wins (last click wins); it attributes only
//! if it is at most the attribution window old, and never to the user themself.

use chrono::{DateTime, Duration, Utc};

use crate::ids::{ClickId, UserId};

/// A way the new user may have arrived, resolved against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A recorded click.
    Click {
        /// The click.
        click_id: ClickId,
        /// When it happened.
        clicked_at: DateTime<Utc>,
        /// Its link's owner.
        referrer: Referrer,
    },
    /// A referral code given at signup.
    Code {
        /// The code's owner.
        referrer: Referrer,
    },
    /// A click id that matches no click.
    UnknownClick,
    /// A code that matches no user.
    UnknownCode,
}

/// The owner of a link, as far as attribution cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// Their id.
    pub user_id: UserId,
    /// Their platform user id.
    pub platform_user_id: String,
    /// Their normalized e-mail.
    pub email_normalized: String,
}

/// The user signing up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser<'a> {
    /// Their platform user id.
    pub platform_user_id: &'a str,
    /// Their normalized e-mail.
    pub email_normalized: &'a str,
}

/// A signup credited to a referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// Who referred the user.
    pub referrer_id: UserId,
    /// The referrer's platform user id.
    pub referrer_platform_id: String,
    /// The click that did it (none for a bare code).
    pub click_id: Option<ClickId>,
}

/// Why a signup is not attributed. The user is created all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAttributed {
    /// Neither a click nor a code came with the signup.
    #[error("no click or code came with the signup")]
    NoReferral,
    /// The click is older than the attribution window.
    #[error("the click is older than the attribution window")]
    Expired,
    /// The referrer is the user themself (same account or same normalized e-mail).
    #[error("users cannot refer themselves")]
    SelfReferral,
    /// The code matches no user.
    #[error("the referral code matches no user")]
    UnknownCode,
    /// The click id matches no click.
    #[error("the click id matches no click")]
    UnknownClick,
}

impl NotAttributed {
    /// The stable reason code shown to API clients.
    pub fn code(self) -> &'static str {
        match self {
            NotAttributed::NoReferral => "no_referral",
            NotAttributed::Expired => "expired",
            NotAttributed::SelfReferral => "self_referral",
            NotAttributed::UnknownCode => "unknown_code",
            NotAttributed::UnknownClick => "unknown_click",
        }
    }
}

/// Decides the attribution of a signup at `now`.
pub fn attribute(
    candidates: &[Candidate],
    new_user: &NewUser<'_>,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Attribution, NotAttributed> {
    // The most recent resolvable candidate wins; a code is a click at `now`.
    let winner = candidates
        .iter()
        .filter_map(|c| match c {
            Candidate::Click {
                click_id,
                clicked_at,
                referrer,
            } => Some((*clicked_at, Some(*click_id), referrer)),
            Candidate::Code { referrer } => Some((now, None, referrer)),
            Candidate::UnknownClick | Candidate::UnknownCode => None,
        })
        .max_by_key(|(at, _, _)| *at);

    let Some((at, click_id, referrer)) = winner else {
        return Err(candidates
            .iter()
            .find_map(|c| match c {
                Candidate::UnknownCode => Some(NotAttributed::UnknownCode),
                Candidate::UnknownClick => Some(NotAttributed::UnknownClick),
                _ => None,
            })
            .unwrap_or(NotAttributed::NoReferral));
    };
    if now - at > window {
        return Err(NotAttributed::Expired);
    }
    if referrer.platform_user_id == new_user.platform_user_id
        || referrer.email_normalized == new_user.email_normalized
    {
        return Err(NotAttributed::SelfReferral);
    }
    Ok(Attribution {
        referrer_id: referrer.user_id,
        referrer_platform_id: referrer.platform_user_id.clone(),
        click_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn referrer(n: u128, email: &str) -> Referrer {
        Referrer {
            user_id: UserId(Uuid::from_u128(n)),
            platform_user_id: format!("p{n}"),
            email_normalized: email.into(),
        }
    }

    fn click(n: u128, at: DateTime<Utc>, r: &Referrer) -> Candidate {
        Candidate::Click {
            click_id: ClickId(Uuid::from_u128(100 + n)),
            clicked_at: at,
            referrer: r.clone(),
        }
    }

    const WEEK: Duration = Duration::days(7);

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn new_user() -> NewUser<'static> {
        NewUser {
            platform_user_id: "new",
            email_normalized: "new@example.com",
        }
    }

    #[test]
    fn a_click_attributes_up_to_exactly_seven_days() {
        let ana = referrer(1, "ana@example.com");
        let at_limit = click(1, now() - WEEK, &ana);
        assert_eq!(
            attribute(&[at_limit], &new_user(), now(), WEEK).map(|a| a.referrer_id),
            Ok(ana.user_id)
        );
        let one_second_late = click(1, now() - WEEK - Duration::seconds(1), &ana);
        assert_eq!(
            attribute(&[one_second_late], &new_user(), now(), WEEK),
            Err(NotAttributed::Expired)
        );
    }

    #[test]
    fn last_click_wins_and_a_code_is_a_click_now() {
        let ana = referrer(1, "ana@example.com");
        let bo = referrer(2, "bo@example.com");
        let older = click(1, now() - Duration::days(3), &ana);
        let newer = click(2, now() - Duration::days(1), &bo);
        let won = attribute(&[older.clone(), newer], &new_user(), now(), WEEK).unwrap();
        assert_eq!(won.referrer_id, bo.user_id);
        assert_eq!(won.click_id, Some(ClickId(Uuid::from_u128(102))));

        let code = Candidate::Code {
            referrer: bo.clone(),
        };
        let won = attribute(&[older, code], &new_user(), now(), WEEK).unwrap();
        assert_eq!((won.referrer_id, won.click_id), (bo.user_id, None));
    }

    #[test]
    fn self_referral_is_refused() {
        let me = referrer(1, "new@example.com");
        let code = Candidate::Code { referrer: me };
        assert_eq!(
            attribute(&[code], &new_user(), now(), WEEK),
            Err(NotAttributed::SelfReferral)
        );
        let same_account = Referrer {
            platform_user_id: "new".into(),
            ..referrer(2, "other@example.com")
        };
        assert_eq!(
            attribute(
                &[Candidate::Code {
                    referrer: same_account
                }],
                &new_user(),
                now(),
                WEEK
            ),
            Err(NotAttributed::SelfReferral)
        );
    }

    #[test]
    fn unknown_or_missing_referrals_say_why() {
        assert_eq!(
            attribute(&[], &new_user(), now(), WEEK),
            Err(NotAttributed::NoReferral)
        );
        assert_eq!(
            attribute(&[Candidate::UnknownCode], &new_user(), now(), WEEK),
            Err(NotAttributed::UnknownCode)
        );
        assert_eq!(
            attribute(&[Candidate::UnknownClick], &new_user(), now(), WEEK),
            Err(NotAttributed::UnknownClick)
        );
        // A valid click still attributes next to an unknown code.
        let ana = referrer(1, "ana@example.com");
        let valid = click(1, now() - Duration::days(1), &ana);
        assert!(attribute(&[Candidate::UnknownCode, valid], &new_user(), now(), WEEK).is_ok());
    }
}
