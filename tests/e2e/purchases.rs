//! Purchases, commissions with their 30-day hold, payment, refunds, the referrer's
//! ledger and CSV, earnings over time and the stats card (SPEC: Purchases and
//! commission, Ledger, Stats card).

use chrono::Duration as Days;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use referral_core::ids::CommissionId;
use referral_core::jobs::{self, MakeCommissionEligible, PayCommission, ReverseCommission};
use referral_core::store::jobs as jobs_store;
use referral_core::usecases::commissions::{self, Step};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

impl TestApp {
    pub(crate) async fn purchase(&self, body: Value) -> (u16, Value) {
        self.post("/v1/purchases", Some(&self.platform_key), body)
            .await
    }

    /// A successful purchase of `amount` by `user_id`; asserts it was recorded.
    pub(crate) async fn buy(&self, purchase_id: &str, user_id: &str, amount: &str) -> Value {
        let (status, body) = self
            .purchase(json!({
                "purchase_id": purchase_id, "user_id": user_id, "amount": amount,
                "currency": "USD", "outcome": "succeeded", "plan": "pro-monthly"
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub(crate) async fn refund(
        &self,
        purchase_id: &str,
        refund_id: &str,
        amount: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/v1/purchases/{purchase_id}/refunds"),
            Some(&self.platform_key),
            json!({"refund_id": refund_id, "amount": amount, "currency": "USD"}),
        )
        .await
    }

    async fn purchase_view(&self, purchase_id: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/v1/purchases/{purchase_id}"),
                Some(&self.platform_key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn commissions(&self, user_id: &str, query: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/v1/users/{user_id}/commissions{query}"),
                Some(&self.platform_key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn stats(&self, user_id: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/v1/users/{user_id}/stats"),
                Some(&self.platform_key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn referral_status(&self, referrer: &str, user_id: &str) -> String {
        let (_, page) = self
            .get(
                &format!("/v1/users/{referrer}/referrals"),
                Some(&self.platform_key),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["user_id"] == user_id)
            .map(|row| row["status"].as_str().unwrap().to_owned())
            .unwrap()
    }

    /// Gives `user_id` wallet credit that never expires, as a paid commission would
    /// (grant and ledger entry together, so the ledger stays whole).
    async fn give_credit(&self, user_id: &str, amount: &str) {
        sqlx::query(
            "with g as (
                 insert into credit_grants (id, user_id, reason, amount, remaining, currency, granted_at)
                 select gen_random_uuid(), id, 'COMMISSION', $2::numeric, $2::numeric, 'USD', now()
                 from users where platform_user_id = $1 returning id, user_id)
             insert into ledger_entries (user_id, account, kind, amount, currency, credit_grant_id, occurred_at)
             select user_id, 'WALLET', 'CREDIT_GRANTED', $2::numeric, 'USD', id, now() from g",
        )
        .bind(user_id)
        .bind(amount)
        .execute(&self.pool)
        .await
        .unwrap();
    }

    pub(crate) async fn make_partner(&self, user_id: &str) {
        sqlx::query("update users set track = 'PARTNER' where platform_user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrations = false)]
async fn fifty_dollars_earns_a_basic_referrer_two_fifty_paid_as_credit_thirty_days_later(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    assert_eq!(app.referral_status("ana", "bo").await, "SIGNED_UP");

    let body = app.buy("pur-1", "bo", "50.00").await;
    let commission = &body["commission"];
    assert_eq!(commission["status"], "PENDING");
    assert_eq!(
        commission["amount"],
        json!({"amount": "2.50", "currency": "USD"})
    );
    assert_eq!(commission["rate"], "0.05");
    assert_eq!(commission["destination"], "WALLET");
    assert_eq!(app.referral_status("ana", "bo").await, "CONVERTED");
    let stats = app.stats("ana").await;
    assert_eq!(stats["pending_earnings"]["amount"], "2.50");
    assert_eq!(stats["conversions"], 1);

    // One second before the hold ends: still pending.
    app.advance(Days::days(30) - Days::seconds(1)).await;
    assert_eq!(
        app.purchase_view("pur-1").await["commission"]["status"],
        "PENDING"
    );
    // At 30 days: eligible, then paid into Ana's wallet as credit that never expires.
    app.advance(Days::seconds(1)).await;
    let paid = app.purchase_view("pur-1").await;
    assert_eq!(paid["commission"]["status"], "PAID", "{paid}");
    let wallet = app.wallet("ana").await;
    assert_eq!(wallet["available"]["amount"], "2.50");
    assert_eq!(wallet["grants"][0]["reason"], "COMMISSION");
    assert!(wallet["grants"][0]["expires_at"].is_null());
    let stats = app.stats("ana").await;
    assert_eq!(stats["total_earnings"]["amount"], "2.50");
    assert_eq!(stats["pending_earnings"]["amount"], "0.00");

    // It stays spendable long after: it never expires.
    app.advance(Days::days(400)).await;
    let (status, body) = app.spend("ana", "2.50", "plan-upgrade").await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrations = false)]
async fn a_partner_earns_ten_percent_into_the_referral_balance(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.make_partner("ana").await;

    let body = app.buy("pur-1", "bo", "50.00").await;
    assert_eq!(body["commission"]["amount"]["amount"], "5.00");
    assert_eq!(body["commission"]["destination"], "REFERRAL_BALANCE");
    assert_eq!(body["commission"]["track"], "PARTNER");

    // The track at purchase time decides, even if it changes before payment.
    sqlx::query("update users set track = 'BASIC' where platform_user_id = 'ana'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.advance(Days::days(30)).await;
    let balance: rust_decimal::Decimal = sqlx::query_scalar(
        "select coalesce(sum(amount), 0) from ledger_entries e join users u on u.id = e.user_id
         where u.platform_user_id = 'ana' and account = 'REFERRAL_BALANCE'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(balance.to_string(), "5.00");
    assert_eq!(app.wallet("ana").await["available"]["amount"], "0.00");
}

#[sqlx::test(migrations = false)]
async fn small_cash_and_failed_payments_earn_nothing_and_do_not_convert(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.give_credit("bo", "10.00").await;

    // $10.99 with $10.00 of credit applied: $0.99 of cash does not qualify.
    let (status, body) = app
        .purchase(json!({
            "purchase_id": "pur-small", "user_id": "bo", "amount": "10.99", "currency": "USD",
            "outcome": "succeeded", "plan": "starter", "credit_applied": "10.00"
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["no_commission_reason"], "below_minimum");
    assert_eq!(body["cash"]["amount"], "0.99");
    assert!(body["commission"].is_null());
    // The credit was spent, soonest-expiring first: the signup $2.50 went first.
    assert_eq!(app.wallet("bo").await["available"]["amount"], "2.50");

    let (status, body) = app
        .purchase(json!({
            "purchase_id": "pur-failed", "user_id": "bo", "amount": "50.00", "currency": "USD",
            "outcome": "failed", "plan": "pro", "credit_applied": "1.00"
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["no_commission_reason"], "payment_failed");
    assert_eq!(
        app.wallet("bo").await["available"]["amount"],
        "2.50",
        "a failed payment spends no credit"
    );
    assert_eq!(app.referral_status("ana", "bo").await, "SIGNED_UP");
    assert_eq!(app.commissions("ana", "").await["items"], json!([]));

    // Applying more credit than the wallet holds writes nothing.
    let (status, body) = app
        .purchase(json!({
            "purchase_id": "pur-short", "user_id": "bo", "amount": "50.00", "currency": "USD",
            "outcome": "succeeded", "plan": "pro", "credit_applied": "2.51"
        }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("INSUFFICIENT_CREDIT")),
        "{body}"
    );
    assert_eq!(body["field"], "credit_applied");
    let (status, _) = app
        .get("/v1/purchases/pur-short", Some(&app.platform_key))
        .await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = false)]
async fn the_same_purchase_twice_earns_once_and_answers_alike(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let request = json!({
        "purchase_id": "pur-1", "user_id": "bo", "amount": "50.00", "currency": "USD",
        "outcome": "succeeded", "plan": "pro", "credit_applied": "1.00"
    });
    let answers = futures::future::join_all((0..10).map(|_| app.purchase(request.clone()))).await;
    assert_eq!(answers[0].0, 201, "{}", answers[0].1);
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:#?}");
    assert_eq!(answers[0].1["commission"]["amount"]["amount"], "2.45");
    assert_eq!(
        app.commissions("ana", "").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.wallet("bo").await["available"]["amount"],
        "1.50",
        "credit spent once"
    );

    let mut other = request.clone();
    other["amount"] = json!("60.00");
    let (status, body) = app.purchase(other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("PURCHASE_ID_REUSED")),
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_refund_before_payment_cancels_and_after_payment_reverses_even_below_zero(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.buy("pur-early", "bo", "50.00").await;
    app.buy("pur-late", "bo", "50.00").await;

    let (status, body) = app.refund("pur-early", "re-1", "50.00").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["refundable"]["amount"], "0.00");
    app.run_due_jobs().await;
    let early = app.purchase_view("pur-early").await;
    assert_eq!(early["commission"]["status"], "CANCELLED", "{early}");
    assert_eq!(early["commission"]["amount"]["amount"], "0.00");

    app.advance(Days::days(30)).await;
    assert_eq!(
        app.purchase_view("pur-early").await["commission"]["status"],
        "CANCELLED"
    );
    assert_eq!(
        app.purchase_view("pur-late").await["commission"]["status"],
        "PAID"
    );
    // Ana spends her $2.50 of commission credit, then the purchase is refunded.
    let (status, body) = app.spend("ana", "2.50", "treat").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.refund("pur-late", "re-2", "50.00").await;
    assert_eq!(status, 201, "{body}");
    app.run_due_jobs().await;
    assert_eq!(
        app.purchase_view("pur-late").await["commission"]["status"],
        "REVERSED"
    );
    let wallet = app.wallet("ana").await;
    assert_eq!(wallet["balance"]["amount"], "-2.50", "{wallet}");
    assert_eq!(wallet["available"]["amount"], "0.00");
    let stats = app.stats("ana").await;
    assert_eq!(stats["total_earnings"]["amount"], "0.00");

    // The debt nets against later earnings: the next $2.50 commission pays it off.
    app.buy("pur-3", "bo", "50.00").await;
    app.advance(Days::days(30)).await;
    assert_eq!(app.wallet("ana").await["available"]["amount"], "0.00");
    assert_eq!(app.wallet("ana").await["balance"]["amount"], "0.00");

    // Never more than the cash paid; the same refund id replays; another body is 409.
    let (status, body) = app.refund("pur-late", "re-3", "0.01").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("REFUND_EXCEEDS_PAYMENT")),
        "{body}"
    );
    let (status, replay) = app.refund("pur-late", "re-2", "50.00").await;
    assert_eq!(
        (status, replay["refunded_total"]["amount"].as_str()),
        (201, Some("50.00"))
    );
    let (status, body) = app.refund("pur-late", "re-2", "10.00").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("REFUND_ID_REUSED")),
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_refund_whose_job_is_late_still_stops_the_payment(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.buy("pur-1", "bo", "50.00").await;
    app.run_due_jobs().await;
    // The refund's own job is held back (a backlog, a queue down) past the hold: the
    // worker is stopped while it is put off, or it would run at once.
    app.stop_worker().await;
    let (status, body) = app.refund("pur-1", "re-1", "50.00").await;
    assert_eq!(status, 201, "{body}");
    let late = app.jobs::<ReverseCommission>().await.remove(0).id;
    let mut conn = app.pool.acquire().await.unwrap();
    jobs_store::postpone(
        &mut conn,
        &late,
        std::time::Duration::from_secs(3600 * 24 * 365),
    )
    .await
    .unwrap();
    drop(conn);
    app.start_worker();

    app.advance(Days::days(30)).await;
    let view = app.purchase_view("pur-1").await;
    assert_eq!(view["commission"]["status"], "CANCELLED", "{view}");
    assert_eq!(
        app.wallet("ana").await["balance"]["amount"],
        "0.00",
        "never paid"
    );
    assert_eq!(app.stats("ana").await["total_earnings"]["amount"], "0.00");

    // When the refund's job finally runs, there is nothing left for it to do.
    app.run_job_now(&late).await;
    app.run_due_jobs().await;
    assert_eq!(
        app.purchase_view("pur-1").await["commission"]["status"],
        "CANCELLED"
    );
    assert_eq!(app.wallet("ana").await["balance"]["amount"], "0.00");
}

#[sqlx::test(migrations = false)]
async fn a_half_refund_halves_the_commission(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.buy("pur-1", "bo", "50.00").await;
    app.buy("pur-2", "bo", "50.00").await;

    // Before payment: 5 % of the $25 left is $1.25.
    app.refund("pur-1", "re-1", "25.00").await;
    app.run_due_jobs().await;
    let view = app.purchase_view("pur-1").await;
    assert_eq!(view["commission"]["status"], "PENDING");
    assert_eq!(view["commission"]["amount"]["amount"], "1.25");
    assert_eq!(view["refunds"][0]["amount"]["amount"], "25.00");

    // After payment: $1.25 comes back out of the wallet; the rest stays paid.
    app.advance(Days::days(30)).await;
    app.refund("pur-2", "re-2", "25.00").await;
    app.run_due_jobs().await;
    let view = app.purchase_view("pur-2").await;
    assert_eq!(view["commission"]["status"], "PAID");
    assert_eq!(view["commission"]["amount"]["amount"], "1.25");
    assert_eq!(app.wallet("ana").await["available"]["amount"], "2.50");

    // An odd cent: $0.01 of $50 refunded leaves 5 % of $49.99 = $2.4995 → $2.50 (half
    // away from zero): the commission does not move until a whole cent is lost.
    app.buy("pur-3", "bo", "50.00").await;
    app.refund("pur-3", "re-3", "0.01").await;
    app.run_due_jobs().await;
    assert_eq!(
        app.purchase_view("pur-3").await["commission"]["amount"]["amount"],
        "2.50"
    );
}

#[sqlx::test(migrations = false)]
async fn a_timer_or_payment_delivered_twice_pays_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let body = app.buy("pur-1", "bo", "50.00").await;
    let commission_id = CommissionId(
        body["commission"]["commission_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let due_at = app.clock_now() + Days::days(30);

    // Extra deliveries of the timer and of the payment, as a crash or a retry would make.
    let mut tx = app.pool.begin().await.unwrap();
    for _ in 0..3 {
        jobs::enqueue_at(
            &mut tx,
            &MakeCommissionEligible {
                commission_id,
                due_at,
            },
            due_at,
        )
        .await
        .unwrap();
        jobs::enqueue_at(&mut tx, &PayCommission { commission_id }, due_at)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    app.advance(Days::days(30)).await;

    assert_eq!(
        app.purchase_view("pur-1").await["commission"]["status"],
        "PAID"
    );
    let wallet = app.wallet("ana").await;
    assert_eq!(wallet["available"]["amount"], "2.50", "{wallet}");
    assert_eq!(wallet["grants"].as_array().unwrap().len(), 1);
}

/// Found by the fault suite (seed 48 of the long run): a payment run by a process whose
/// clock is behind the one that ended the hold (clock skew; locally, a worker yet to see
/// the clock move) paid, stamping `paid_at` before `eligible_at`. It now waits until the
/// hold is over by its own clock too.
#[sqlx::test(migrations = false)]
async fn a_payment_on_a_clock_behind_the_hold_waits_for_its_end(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    app.buy("pur-1", "bo", "50.00").await;
    app.stop_worker().await;
    let (id, eligible_at): (uuid::Uuid, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select id, eligible_at from commissions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let id = CommissionId(id);
    let mut conn = app.pool.acquire().await.unwrap();
    // The process running the timer sees the hold end ...
    let step = commissions::make_eligible(&mut conn, eligible_at, id)
        .await
        .unwrap();
    assert!(matches!(step, Step::Done(_)), "{step:?}");
    // ... the one running the payment is a second behind: it waits.
    let behind = eligible_at - Days::seconds(1);
    let step = commissions::pay(&mut conn, behind, id).await.unwrap();
    assert_eq!(step, Step::NotYetDue(eligible_at));
    let status: String = sqlx::query_scalar("select status from commissions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "ELIGIBLE");
    // Once its clock reaches the end of the hold, it pays.
    let Step::Done(paid) = commissions::pay(&mut conn, eligible_at, id).await.unwrap() else {
        panic!("not paid at the end of the hold");
    };
    assert_eq!(paid.paid_at, Some(eligible_at));
}

#[sqlx::test(migrations = false)]
async fn the_ledger_filters_pages_and_exports_as_csv_that_matches_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    // Cy's platform id needs quoting in CSV.
    let ana = app.get("/v1/users/ana", Some(&app.platform_key)).await.1;
    let (status, body) = app
        .create_user(
            json!({"user_id": "cy,\"quoted\"", "email": "cy+x@example.com",
                            "referral_code": ana["referral_code"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (i, (buyer, amount)) in [("bo", "50.00"), ("cy,\"quoted\"", "20.00"), ("bo", "10.00")]
        .iter()
        .enumerate()
    {
        app.buy(&format!("pur-{i}"), buyer, amount).await;
        app.clock.advance(Days::days(1));
    }
    app.refund("pur-2", "re-1", "10.00").await;
    app.run_due_jobs().await;

    let all = app.commissions("ana", "?limit=2").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let cursor = all["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .commissions("ana", &format!("?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let mut json_lines: Vec<Value> = all["items"].as_array().unwrap().clone();
    json_lines.extend(rest["items"].as_array().unwrap().iter().cloned());
    assert_eq!(json_lines[0]["status"], "CANCELLED", "newest first");
    let pending = app.commissions("ana", "?status=PENDING").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    let today = app.clock_now().date_naive();
    let first_day = app
        .commissions("ana", &format!("?to={}", today - Days::days(3)))
        .await;
    assert_eq!(first_day["items"].as_array().unwrap().len(), 1);

    let response = app
        .http
        .get(app.url("/v1/users/ana/commissions.csv"))
        .bearer_auth(&app.platform_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"commissions-ana.csv\""
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[..4],
        ["date", "referred_email", "referred_user_id", "purchase_id"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), json_lines.len());
    for (row, line) in rows.iter().zip(&json_lines) {
        let parsed_date = chrono::DateTime::parse_from_rfc3339(&row[0]).unwrap();
        let json_date =
            chrono::DateTime::parse_from_rfc3339(line["date"].as_str().unwrap()).unwrap();
        assert_eq!(parsed_date, json_date);
        assert_eq!(&row[1], line["referred_email"].as_str().unwrap());
        assert_eq!(&row[2], line["referred_user_id"].as_str().unwrap());
        assert_eq!(&row[3], line["purchase_id"].as_str().unwrap());
        assert_eq!(&row[4], line["amount"]["amount"].as_str().unwrap());
        assert_eq!(&row[7], line["status"].as_str().unwrap());
    }
}

#[sqlx::test(migrations = false)]
async fn earnings_over_time_have_every_bucket(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let day0 = app.clock_now().date_naive();
    app.buy("pur-1", "bo", "50.00").await;
    app.clock.advance(Days::days(2));
    app.buy("pur-2", "bo", "20.00").await;
    app.refund("pur-2", "re-1", "20.00").await;
    app.run_due_jobs().await;

    let (status, body) = app
        .get(
            &format!(
                "/v1/users/ana/earnings?interval=day&from={day0}&to={}",
                day0 + Days::days(3)
            ),
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 4, "empty days are present: {body}");
    assert_eq!(buckets[0]["earned"], "2.50");
    assert_eq!(buckets[0]["pending"], "2.50");
    assert_eq!(buckets[1]["earned"], "0.00");
    assert_eq!(buckets[2]["earned"], "1.00");
    assert_eq!(buckets[2]["refunded"], "1.00");
    let (status, body) = app
        .get(
            &format!(
                "/v1/users/ana/earnings?interval=month&from={day0}&to={}",
                day0 + Days::days(3)
            ),
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let earned: rust_decimal::Decimal = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["earned"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(earned.to_string(), "3.50");

    let (status, body) = app
        .get(
            &format!(
                "/v1/users/ana/earnings?interval=day&from={day0}&to={}",
                day0 - Days::days(1)
            ),
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(
        (status, body["buckets"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );

    // A range longer than 1,100 periods stops there and says where the rest starts.
    let (status, body) = app
        .get(
            &format!(
                "/v1/users/ana/earnings?interval=day&from={day0}&to={}",
                day0 + Days::days(5000)
            ),
            Some(&app.platform_key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["buckets"].as_array().unwrap().len(), 1100);
    assert_eq!(body["next_from"], (day0 + Days::days(1100)).to_string());
    for bad in ["2026-02-30", "", "26-11-2026"] {
        let (status, body) = app
            .get(
                &format!("/v1/users/ana/earnings?interval=day&from={bad}&to={day0}"),
                Some(&app.platform_key),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("from")),
            "{bad}: {body}"
        );
    }
}

/// A random mix of clicks, signups, purchases, refunds and the passing of time: after
/// every step the stats card equals a recount from the rows themselves.
#[sqlx::test(migrations = false)]
async fn the_stats_card_matches_a_recount_after_random_events(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ana = app.referrer("ana", "ana@example.com").await;
    let code = ana["referral_code"].as_str().unwrap().to_owned();
    let mut rng = StdRng::seed_from_u64(20_261_126);
    let mut buyers: Vec<String> = Vec::new();
    let mut purchases: Vec<(String, u32)> = Vec::new();
    for step in 0..60 {
        match rng.random_range(0..6) {
            0 => {
                app.api_click(&code).await;
            }
            1 => {
                let user = format!("u{step}");
                let (status, body) = app
                    .create_user(
                        json!({"user_id": user, "email": format!("{user}@example.com"),
                                        "referral_code": code}),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
                buyers.push(user);
            }
            2 | 3 if !buyers.is_empty() => {
                let buyer = &buyers[rng.random_range(0..buyers.len())];
                let dollars = rng.random_range(0..120u32);
                let id = format!("p{step}");
                app.buy(
                    &id,
                    buyer,
                    &format!("{dollars}.{:02}", rng.random_range(1..100u32)),
                )
                .await;
                purchases.push((id, dollars));
            }
            4 if !purchases.is_empty() => {
                let (id, dollars) = purchases[rng.random_range(0..purchases.len())].clone();
                let cut = rng.random_range(1..=dollars.max(1));
                let (status, body) = app
                    .refund(&id, &format!("r{step}"), &format!("{cut}.00"))
                    .await;
                assert!(status == 201 || status == 409, "{body}");
            }
            _ => app.advance(Days::days(rng.random_range(1..20))).await,
        }
        app.run_due_jobs().await;
        let card = app.stats("ana").await;
        let recount = app.recount("ana").await;
        assert_eq!(card, recount, "after step {step}");
    }
}

impl TestApp {
    /// The stats card recounted from the rows themselves, in the card's shape.
    async fn recount(&self, user_id: &str) -> Value {
        let row: (i64, i64, rust_decimal::Decimal, rust_decimal::Decimal, i64) = sqlx::query_as(
            "select (select count(*) from users r where r.referred_by = u.id),
                    (select count(*) from users r where r.referred_by = u.id and r.converted_at is not null),
                    (select coalesce(sum(amount), 0) from ledger_entries where user_id = u.id
                       and commission_id is not null and account in ('WALLET', 'REFERRAL_BALANCE')),
                    (select coalesce(sum(amount), 0) from ledger_entries where user_id = u.id
                       and commission_id is not null
                       and account in ('COMMISSION_PENDING', 'COMMISSION_ELIGIBLE')),
                    (select count(*) from clicks where referrer_id = u.id)
             from users u where platform_user_id = $1",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let (referrals, conversions, paid, pending, clicks) = row;
        let rate = if referrals == 0 {
            rust_decimal::Decimal::ZERO
        } else {
            (rust_decimal::Decimal::from(conversions) / rust_decimal::Decimal::from(referrals))
                .round_dp(4)
        };
        json!({
            "total_referrals": referrals,
            "conversions": conversions,
            "conversion_rate": rate.normalize().to_string(),
            "total_earnings": {"amount": format!("{paid:.2}"), "currency": "USD"},
            "pending_earnings": {"amount": format!("{pending:.2}"), "currency": "USD"},
            "total_clicks": clicks,
            "pending_referrals": referrals - conversions,
        })
    }
}
