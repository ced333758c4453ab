//! Creating a user, attributing the signup, and scheduling its credit (SPEC: Attribution,
//! Signup credit). The credit grant and its 30-day expiry are enqueued in the same
//! transaction as the user, so an attributed signup always gets both.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::attribution::{self, Attribution, Candidate, NewUser, NotAttributed, Referrer};
use crate::domain::email::EmailAddress;
use crate::domain::referral_code;
use crate::domain::user::User;
use crate::error::StoreError;
use crate::ids::{ClickId, UserId};
use crate::jobs::{self, ExpireSignupCredit, GrantSignupCredit};
use crate::settings::ProgramSettings;
use crate::store::clicks;
use crate::store::users::{self, InsertUserError, NewUserRow};

/// A signup as the platform reports it.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// The platform's id for the user.
    pub platform_user_id: String,
    /// Their e-mail.
    pub email: EmailAddress,
    /// The click id from the attribution cookie, if any.
    pub click_id: Option<ClickId>,
    /// A referral code entered or carried in the URL, if any.
    pub referral_code: Option<String>,
}

/// The created user and whether the signup was attributed.
#[derive(Debug, Clone)]
pub struct SignUpOutcome {
    /// The new user.
    pub user: User,
    /// Attributed, or why not.
    pub attribution: Result<Attribution, NotAttributed>,
    /// When the signup credit expires (attributed signups).
    pub credit_expires_at: Option<DateTime<Utc>>,
}

/// Why a user was not created.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    /// The platform user id is taken.
    #[error("a user with this platform id already exists")]
    DuplicatePlatformId,
    /// The e-mail is taken.
    #[error("a user with this e-mail already exists")]
    DuplicateEmail,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const CODE_ATTEMPTS: usize = 5;

/// Creates the user, attributes the signup and schedules its credit.
pub async fn sign_up(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    settings: &ProgramSettings,
    signup: &SignUp,
) -> Result<SignUpOutcome, SignUpError> {
    let email_normalized = signup.email.normalized();
    let mut candidates = Vec::new();
    if let Some(click_id) = signup.click_id {
        candidates.push(click_candidate(conn, click_id).await?);
    }
    if let Some(code) = &signup.referral_code {
        candidates.push(code_candidate(conn, code).await?);
    }
    let attribution = attribution::attribute(
        &candidates,
        &NewUser {
            platform_user_id: &signup.platform_user_id,
            email_normalized: &email_normalized,
        },
        now,
        settings.attribution_window,
    );
    let (referred_by, attributed_click_id) = match &attribution {
        Ok(a) => (Some(a.referrer_id), a.click_id),
        Err(_) => (None, None),
    };

    let id = UserId::generate();
    let mut user = None;
    for _ in 0..CODE_ATTEMPTS {
        let code = referral_code::generate(&mut rand::rng());
        let row = NewUserRow {
            id,
            platform_user_id: &signup.platform_user_id,
            email: signup.email.as_str(),
            email_normalized: &email_normalized,
            referral_code: &code,
            referred_by,
            attributed_click_id,
            signed_up_at: now,
        };
        match users::insert(conn, &row).await {
            Ok(Some(created)) => {
                user = Some(created);
                break;
            }
            Ok(None) => continue,
            Err(InsertUserError::DuplicatePlatformId) => {
                return Err(SignUpError::DuplicatePlatformId);
            }
            Err(InsertUserError::DuplicateEmail) => return Err(SignUpError::DuplicateEmail),
            Err(InsertUserError::Store(e)) => return Err(e.into()),
        }
    }
    let user =
        user.ok_or_else(|| StoreError::Corrupt("no free referral code after 5 tries".into()))?;

    let mut credit_expires_at = None;
    if attribution.is_ok() {
        if let Some(click_id) = attributed_click_id {
            clicks::mark_signed_up(conn, click_id, user.id).await?;
        }
        let due_at = now + settings.signup_credit_lifetime;
        jobs::enqueue_now(conn, &GrantSignupCredit { user_id: user.id }).await?;
        jobs::enqueue_at(
            conn,
            &ExpireSignupCredit {
                user_id: user.id,
                due_at,
            },
            due_at,
        )
        .await?;
        credit_expires_at = Some(due_at);
    }
    tracing::info!(user_id = %user.id, attributed = attribution.is_ok(), "user signed up");
    Ok(SignUpOutcome {
        user,
        attribution,
        credit_expires_at,
    })
}

fn referrer(user: User) -> Referrer {
    Referrer {
        user_id: user.id,
        platform_user_id: user.platform_user_id,
        email_normalized: user.email_normalized,
    }
}

async fn click_candidate(
    conn: &mut PgConnection,
    click_id: ClickId,
) -> Result<Candidate, StoreError> {
    let Some(click) = clicks::find(conn, click_id).await? else {
        return Ok(Candidate::UnknownClick);
    };
    let owner = users::find(conn, click.referrer_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("click {click_id} has no referrer")))?;
    Ok(Candidate::Click {
        click_id,
        clicked_at: click.clicked_at,
        referrer: referrer(owner),
    })
}

async fn code_candidate(conn: &mut PgConnection, code: &str) -> Result<Candidate, StoreError> {
    if !referral_code::is_well_formed(code) {
        return Ok(Candidate::UnknownCode);
    }
    Ok(match users::find_by_code(conn, code).await? {
        Some(owner) => Candidate::Code {
            referrer: referrer(owner),
        },
        None => Candidate::UnknownCode,
    })
}
