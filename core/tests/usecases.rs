//! The use cases against a real database (one fresh database per test): the rules that
//! the HTTP tests reach only through the API, checked where they live.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use chrono::{DateTime, Duration, Utc};
use referral_core::domain::api_key::ApiRole;
use referral_core::domain::attribution::NotAttributed;
use referral_core::domain::clicks::{ClickMeta, ClickSource};
use referral_core::domain::credit::SpendRefused;
use referral_core::domain::email::EmailAddress;
use referral_core::domain::referrals::{ReferralStatus, Referred};
use referral_core::jobs::{ExpireSignupCredit, GrantSignupCredit, Job};
use referral_core::store::jobs as queue;
use referral_core::usecases::api_keys::{self, AuthError};
use referral_core::usecases::credit::{self, ExpireOutcome, GrantOutcome};
use referral_core::usecases::signup::{self, SignUp, SignUpError};
use referral_core::usecases::wallet::{self, SpendError};
use referral_core::usecases::{clicks, referrals};
use referral_core::{Clock, Currency, Money, ProgramSettings, SystemClock};
use sqlx::PgPool;

async fn migrated(pool: &PgPool) {
    referral_migrations::run(pool).await.unwrap();
}

fn start() -> DateTime<Utc> {
    SystemClock.now()
}

fn signup(user_id: &str, email: &str, code: Option<&str>) -> SignUp {
    SignUp {
        platform_user_id: user_id.into(),
        email: EmailAddress::parse(email).unwrap(),
        click_id: None,
        referral_code: code.map(str::to_owned),
    }
}

/// Ana signs up, then Bo with Ana's code; Bo's grant has run. Returns Ana's code.
async fn ana_refers_bo(pool: &PgPool, now: DateTime<Utc>) -> String {
    let settings = ProgramSettings::default();
    let mut tx = pool.begin().await.unwrap();
    let ana = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("ana", "ana@example.com", None),
    )
    .await
    .unwrap();
    let code = ana.user.referral_code.clone();
    let bo = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("bo", "bo@example.com", Some(&code)),
    )
    .await
    .unwrap();
    assert!(bo.attribution.is_ok());
    let granted = credit::grant_signup_credit(&mut tx, now, &settings, bo.user.id)
        .await
        .unwrap();
    assert!(matches!(granted, GrantOutcome::Granted(_)));
    tx.commit().await.unwrap();
    code
}

async fn queue_len(pool: &PgPool, queue_name: &str) -> usize {
    queue::list_queue(&mut pool.acquire().await.unwrap(), queue_name)
        .await
        .unwrap()
        .len()
}

#[sqlx::test(migrations = false)]
async fn an_attributed_signup_and_its_two_jobs_commit_or_roll_back_together(pool: PgPool) {
    migrated(&pool).await;
    let settings = ProgramSettings::default();
    let now = start();
    let mut tx = pool.begin().await.unwrap();
    let ana = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("ana", "ana@example.com", None),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    let code = ana.user.referral_code.clone();
    signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("bo", "bo@example.com", Some(&code)),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(queue_len(&pool, GrantSignupCredit::QUEUE).await, 0);
    assert_eq!(queue_len(&pool, ExpireSignupCredit::QUEUE).await, 0);

    let mut tx = pool.begin().await.unwrap();
    let bo = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("bo", "bo@example.com", Some(&code)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(bo.credit_expires_at, Some(now + Duration::days(30)));
    assert_eq!(queue_len(&pool, GrantSignupCredit::QUEUE).await, 1);
    let expiry = queue::list_queue(
        &mut pool.acquire().await.unwrap(),
        ExpireSignupCredit::QUEUE,
    )
    .await
    .unwrap();
    assert_eq!(expiry.len(), 1);
    assert_eq!(
        expiry[0].run_at,
        now + Duration::days(30),
        "the timer is due to the microsecond"
    );
}

#[sqlx::test(migrations = false)]
async fn self_referral_and_duplicates_are_told_apart(pool: PgPool) {
    migrated(&pool).await;
    let settings = ProgramSettings::default();
    let now = start();
    let mut tx = pool.begin().await.unwrap();
    let ana = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("ana", "ana@gmail.com", None),
    )
    .await
    .unwrap();
    let code = ana.user.referral_code.clone();
    let twin = signup::sign_up(
        &mut tx,
        now,
        &settings,
        &signup("ana2", "A.na+x@googlemail.com", Some(&code)),
    )
    .await
    .unwrap();
    assert_eq!(twin.attribution.unwrap_err(), NotAttributed::SelfReferral);
    tx.commit().await.unwrap();

    for (user_id, email, expected) in [
        ("ana", "other@example.com", "platform id"),
        ("cy", "ANA@gmail.com", "e-mail"),
    ] {
        let mut tx = pool.begin().await.unwrap();
        let error = signup::sign_up(&mut tx, now, &settings, &signup(user_id, email, None))
            .await
            .unwrap_err();
        match (error, expected) {
            (SignUpError::DuplicatePlatformId, "platform id")
            | (SignUpError::DuplicateEmail, "e-mail") => {}
            (other, _) => {
                panic!("{user_id}/{email}: expected a duplicate {expected}, got {other:?}")
            }
        }
    }
}

#[sqlx::test(migrations = false)]
async fn spends_replay_their_first_answer_and_refuse_a_changed_amount(pool: PgPool) {
    migrated(&pool).await;
    let now = start();
    ana_refers_bo(&pool, now).await;
    let one = Money::usd_cents(100);

    let mut tx = pool.begin().await.unwrap();
    let first = wallet::spend(&mut tx, now, "bo", one, "p-1").await.unwrap();
    tx.commit().await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.available_after, Money::usd_cents(150));

    // Later spends change what is available; a replay still answers the first result.
    let mut tx = pool.begin().await.unwrap();
    wallet::spend(&mut tx, now, "bo", Money::usd_cents(50), "p-2")
        .await
        .unwrap();
    let replay = wallet::spend(&mut tx, now, "bo", one, "p-1").await.unwrap();
    tx.commit().await.unwrap();
    assert!(replay.replayed);
    assert_eq!(
        (replay.spend, replay.available_after),
        (first.spend, first.available_after)
    );

    let mut tx = pool.begin().await.unwrap();
    let error = wallet::spend(&mut tx, now, "bo", Money::usd_cents(200), "p-1")
        .await
        .unwrap_err();
    assert!(matches!(error, SpendError::ReferenceReused { amount, .. } if amount == one));
    let error = wallet::spend(&mut tx, now, "bo", Money::usd_cents(101), "p-3")
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        SpendError::Refused(SpendRefused::Insufficient { available, .. }) if available == Money::usd_cents(100)
    ));
    let error = wallet::spend(&mut tx, now, "nobody", one, "p-4")
        .await
        .unwrap_err();
    assert!(matches!(error, SpendError::UserNotFound(_)));
}

#[sqlx::test(migrations = false)]
async fn expiry_waits_for_its_instant_then_removes_exactly_what_is_left(pool: PgPool) {
    migrated(&pool).await;
    let now = start();
    ana_refers_bo(&pool, now).await;
    let mut tx = pool.begin().await.unwrap();
    wallet::spend(&mut tx, now, "bo", Money::usd_cents(40), "p-1")
        .await
        .unwrap();
    let bo = referral_core::usecases::users::profile(&mut tx, "bo")
        .await
        .unwrap()
        .user;
    let due = now + Duration::days(30);

    let early = credit::expire_signup_credit(&mut tx, due - Duration::microseconds(1), bo.id, due)
        .await
        .unwrap();
    assert_eq!(early, ExpireOutcome::NotYetDue(due));
    let expired = credit::expire_signup_credit(&mut tx, due, bo.id, due)
        .await
        .unwrap();
    assert_eq!(
        expired,
        ExpireOutcome::Expired {
            removed: Money::usd_cents(210)
        }
    );
    let again = credit::expire_signup_credit(&mut tx, due, bo.id, due)
        .await
        .unwrap();
    assert_eq!(again, ExpireOutcome::AlreadyExpired);

    let view = wallet::view(&mut tx, due, Money::zero(Currency::Usd), "bo")
        .await
        .unwrap();
    assert!(view.available.is_zero() && view.balance.is_zero());
    assert_eq!(view.grants[0].remaining, Money::zero(Currency::Usd));
}

#[sqlx::test(migrations = false)]
async fn credit_past_its_instant_is_not_available_before_the_job_runs(pool: PgPool) {
    migrated(&pool).await;
    let now = start();
    ana_refers_bo(&pool, now).await;
    let mut conn = pool.acquire().await.unwrap();
    let zero = Money::zero(Currency::Usd);
    let at_expiry = now + Duration::days(30);
    let before = wallet::view(&mut conn, at_expiry - Duration::seconds(1), zero, "bo")
        .await
        .unwrap();
    assert_eq!(before.available, Money::usd_cents(250));
    let after = wallet::view(&mut conn, at_expiry, zero, "bo")
        .await
        .unwrap();
    assert_eq!(
        after.available, zero,
        "nothing is spendable from the expiry instant on"
    );
    assert_eq!(
        after.balance,
        Money::usd_cents(250),
        "the ledger keeps it until the job writes it off"
    );
}

#[sqlx::test(migrations = false)]
async fn referred_users_page_through_signups_and_clicks_newest_first(pool: PgPool) {
    migrated(&pool).await;
    let settings = ProgramSettings::default();
    let now = start();
    let code = ana_refers_bo(&pool, now).await;
    let recorder = clicks::ClickRecorder::start(&pool, clicks::ClickBatching::default());
    for minute in 1..=3 {
        recorder
            .record(
                now + Duration::minutes(minute),
                &code,
                ClickSource::Api,
                ClickMeta::default(),
            )
            .await
            .unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    signup::sign_up(
        &mut tx,
        now + Duration::minutes(5),
        &settings,
        &signup("cy", "cy@example.com", Some(&code)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = referrals::page(&mut conn, "ana", None, after, 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| (r.status, r.at)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "cy, three clicks, bo: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1), "newest first");
    assert_eq!(seen[0].0, ReferralStatus::SignedUp);

    let clicks_only = referrals::page(
        &mut conn,
        "ana",
        Some(ReferralStatus::NotSignedUp),
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(clicks_only.items.len(), 3);
    assert!(
        clicks_only
            .items
            .iter()
            .all(|r| matches!(r.who, Referred::Click(_)))
    );
}

#[sqlx::test(migrations = false)]
async fn api_keys_are_found_by_hash_and_checked_for_their_role(pool: PgPool) {
    migrated(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let created = api_keys::create(&mut conn, "backend", ApiRole::Platform)
        .await
        .unwrap();
    let key = api_keys::authenticate(&mut conn, &created.plaintext, ApiRole::Platform)
        .await
        .unwrap();
    assert_eq!(key, created.key);
    assert!(matches!(
        api_keys::authenticate(&mut conn, &created.plaintext, ApiRole::Admin).await,
        Err(AuthError::WrongRole {
            required: ApiRole::Admin,
            presented: ApiRole::Platform
        })
    ));
    assert!(matches!(
        api_keys::authenticate(&mut conn, "rk_platform_guess", ApiRole::Platform).await,
        Err(AuthError::UnknownKey)
    ));
}

/// A process started after the local clock moved (a restarted api or worker) is on the
/// moved clock from its first instant, not the wall clock for a refresh period: found
/// while building the fault suite, which restarts processes after clock moves.
#[sqlx::test(migrations = false)]
async fn a_process_follows_the_moved_dev_clock_from_its_start(pool: PgPool) {
    migrated(&pool).await;
    sqlx::query("update dev_clock set offset_ms = $1")
        .bind(Duration::days(30).num_milliseconds())
        .execute(&pool)
        .await
        .unwrap();
    let clock = referral_core::dev_time::follow(pool.clone()).await.unwrap();
    assert!(clock.now() - SystemClock.now() > Duration::days(30) - Duration::minutes(1));
}
