//! The reconciliation sweep: timers and jobs that went missing are scheduled again,
//! payouts whose webhook never came are settled from Stripe's answer, and finished jobs
//! past their retention are deleted while failed ones stay for operators.

use chrono::Duration as Days;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;

use crate::harness::TestApp;
use referral_core::usecases::reconcile::{self, SweepReport, SweepSettings};

impl TestApp {
    async fn sweep(&self) -> SweepReport {
        let env = self.job_env();
        reconcile::sweep(
            &self.pool,
            &env.stripe,
            self.clock_now(),
            &SweepSettings::default(),
        )
        .await
        .unwrap()
    }

    async fn lose_jobs(&self, queue: &str) -> u64 {
        sqlx::query("delete from apalis.jobs where job_type = $1 and status <> 'Done'")
            .bind(queue)
            .execute(&self.pool)
            .await
            .unwrap()
            .rows_affected()
    }

    async fn commission_status(&self) -> String {
        sqlx::query_scalar("select status from commissions")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

#[sqlx::test(migrations = false)]
async fn lost_timers_are_scheduled_again_and_fire_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.buy("pur-1", "bo", "50.00").await;
    assert_eq!(app.lose_jobs("make_commission_eligible").await, 1);
    assert_eq!(app.lose_jobs("expire_signup_credit").await, 1);

    // Nothing is due early: a sweep before the hold ends finds nothing missing.
    assert_eq!(app.sweep().await, SweepReport::default());
    app.advance(Days::days(31)).await;
    assert_eq!(
        app.commission_status().await,
        "PENDING",
        "the timer was lost"
    );

    let report = app.sweep().await;
    assert_eq!(
        (report.commission_timers, report.expiry_timers),
        (1, 1),
        "{report:?}"
    );
    app.run_due_jobs().await;
    assert_eq!(app.commission_status().await, "PAID");
    assert_eq!(app.wallet("ana").await["available"]["amount"], "2.50");
    assert_eq!(app.wallet("bo").await["available"]["amount"], "0.00");
    // All is covered now: the next sweep fixes nothing.
    assert!(!app.sweep().await.fixed_anything());
}

#[sqlx::test(migrations = false)]
async fn a_payout_whose_job_or_webhook_was_lost_is_finished_by_the_sweep(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    app.partner_with_balance(60).await;
    app.onboarded().await;

    // A payout whose job was lost before it ran is sent by the sweep.
    app.stop_worker().await;
    let (status, _) = app.request_payout("ana", json!({"amount": "30.00"})).await;
    assert_eq!(status, 201);
    assert_eq!(app.lose_jobs("send_payout_transfer").await, 1);
    app.start_worker();
    app.clock.advance(Days::minutes(11));
    assert_eq!(app.sweep().await.payout_jobs, 1);
    app.run_due_jobs().await;
    let listed = app.payouts("ana").await;
    assert_eq!(listed[0]["status"], "PROCESSING");
    let first = listed[0]["payout_id"].as_str().unwrap().to_owned();

    // A second one whose bank payout fails, and the first paid, neither webhook arriving.
    let (_, second) = app.request_payout("ana", json!({})).await;
    let second = second["payout_id"].as_str().unwrap().to_owned();
    app.run_due_jobs().await;
    let po_first = app.stripe_payout_id(&first).await;
    let po_second = app.stripe_payout_id(&second).await;
    assert!(app.stripe.pay_out_quietly(&po_first).is_some());

    // Within the arrival window the sweep does not ask.
    let report = app.sweep().await;
    assert_eq!((report.payouts_settled, report.payouts_still_open), (0, 0));

    app.advance(Days::days(15)).await;
    let report = app.sweep().await;
    assert_eq!(
        (report.payouts_settled, report.payouts_still_open),
        (1, 1),
        "the second is still on its way at Stripe: {report:?}"
    );
    assert!(
        app.stripe
            .fail_payout_quietly(&po_second, "The bank account has been closed")
            .is_some()
    );
    let report = app.sweep().await;
    assert_eq!(report.payouts_settled, 1, "{report:?}");
    app.run_due_jobs().await;

    let listed = app.payouts("ana").await;
    let status_of = |id: &str| {
        listed
            .iter()
            .find(|p| p["payout_id"] == json!(id))
            .map(|p| p["status"].clone())
    };
    assert_eq!(status_of(&first), Some(json!("PAID")));
    assert_eq!(status_of(&second), Some(json!("FAILED")));
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    let gets = app
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/payouts/"))
        .count();
    assert_eq!(gets, 3, "Stripe asked only about overdue payouts");
    let mails = app.smtp.wait_for(2).await;
    assert!(mails.iter().any(|m| m.data.contains("is on its way")));
    assert!(mails.iter().any(|m| m.data.contains("did not go through")));
}

#[sqlx::test(migrations = false)]
async fn finished_jobs_are_deleted_after_the_retention_and_failed_ones_kept(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.run_due_jobs().await;
    let done: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where status = 'Done'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(done >= 1);
    assert_eq!(app.sweep().await.done_jobs_deleted, 0, "too recent");

    sqlx::query(
        "update apalis.jobs set done_at = now() - interval '8 days' where status = 'Done';
         ",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "update apalis.jobs set status = 'Failed', attempts = max_attempts,
                done_at = now() - interval '30 days'
         where job_type = 'expire_signup_credit'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let report = app.sweep().await;
    assert_eq!(report.done_jobs_deleted, u64::try_from(done).unwrap());
    let left: Vec<String> = sqlx::query_scalar("select status from apalis.jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, vec!["Failed".to_owned()]);
}

#[sqlx::test(migrations = false)]
async fn every_worker_schedules_the_same_next_sweep_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let env = app.job_env();
    let scheduled = futures::future::join_all(
        (0..5).map(|_| referral_worker::jobs::reconcile::schedule_next(&env)),
    )
    .await;
    let created = scheduled
        .iter()
        .filter(|result| matches!(result, Ok(true)))
        .count();
    assert_eq!(created, 1, "{scheduled:?}");
    assert!(scheduled.iter().all(Result::is_ok), "{scheduled:?}");
    let sweeps: i64 =
        sqlx::query_scalar("select count(*) from apalis.jobs where job_type = 'reconcile'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sweeps, 1);
}
