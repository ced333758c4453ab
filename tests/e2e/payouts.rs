//! Stripe Connect and payouts (SPEC: Partner program, Payouts), against the local
//! Stripe stand-in: onboarding, each refusal of a payout request, the payout job's
//! idempotency through a crash, signed webhooks, and the confirmation e-mail over SMTP.

use std::time::Duration;

use chrono::Duration as Days;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{TestApp, WEBHOOK_SECRET, wait_until};
use referral_core::domain::stripe_signature;
use referral_core::{Clock, SystemClock};

impl TestApp {
    /// Ana, a Partner, with `balance` (dollars) in her referral balance: Bo, whom she
    /// referred, buys ten times that, and the 30 days pass.
    pub(crate) async fn partner_with_balance(&self, balance: u32) {
        self.ana_refers_bo().await;
        self.make_partner("ana").await;
        self.buy("pur-1", "bo", &format!("{}.00", balance * 10))
            .await;
        self.advance(Days::days(30)).await;
        assert_eq!(self.referral_balance("ana").await, Decimal::from(balance));
    }

    /// Ana, an onboarded Partner with $30, has requested all of it and the payout job
    /// sent it: her account id, the payout id and Stripe's bank payout id.
    pub(crate) async fn payout_of_30_sent(&self) -> (String, String, String) {
        self.partner_with_balance(30).await;
        let account_id = self.onboarded().await;
        let (_, payout) = self.request_payout("ana", json!({})).await;
        let payout_id = payout["payout_id"].as_str().unwrap().to_owned();
        self.run_due_jobs().await;
        let po = self.stripe_payout_id(&payout_id).await;
        (account_id, payout_id, po)
    }

    pub(crate) async fn referral_balance(&self, user_id: &str) -> Decimal {
        sqlx::query_scalar(
            "select coalesce(sum(amount), 0) from ledger_entries e join users u on u.id = e.user_id
             where u.platform_user_id = $1 and account = 'REFERRAL_BALANCE'",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub(crate) async fn connect_stripe(&self, user_id: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/users/{user_id}/stripe-account"),
            Some(&self.platform_key),
            json!({}),
        )
        .await
    }

    /// Ana connects Stripe and finishes onboarding; returns her account id.
    pub(crate) async fn onboarded(&self) -> String {
        let (status, body) = self.connect_stripe("ana").await;
        assert_eq!(status, 200, "{body}");
        let account_id = body["account_id"].as_str().unwrap().to_owned();
        assert_eq!(
            self.stripe.complete_onboarding(&account_id).await,
            Some(200)
        );
        account_id
    }

    pub(crate) async fn request_payout(&self, user_id: &str, body: Value) -> (u16, Value) {
        self.post(
            &format!("/v1/users/{user_id}/payouts"),
            Some(&self.platform_key),
            body,
        )
        .await
    }

    pub(crate) async fn payouts(&self, user_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/v1/users/{user_id}/payouts"),
                Some(&self.platform_key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub(crate) async fn stripe_payout_id(&self, payout_id: &str) -> String {
        sqlx::query_scalar("select stripe_payout_id from payouts where id = $1::uuid")
            .bind(payout_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Posts `body` to the webhook signed now with the endpoint's secret, as Stripe would.
    pub(crate) async fn signed_webhook(&self, body: &str) -> (u16, Value) {
        let signature = stripe_signature::sign(
            WEBHOOK_SECRET.as_bytes(),
            SystemClock.now().timestamp(),
            body.as_bytes(),
        );
        self.webhook(body, Some(&signature)).await
    }

    /// Posts `body` to the webhook with `signature` as `Stripe-Signature`.
    pub(crate) async fn webhook(&self, body: &str, signature: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/v1/stripe/webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

#[sqlx::test(migrations = false)]
async fn a_partner_connects_stripe_and_is_paid_out_with_a_confirmation_email(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;

    let (status, body) = app.connect_stripe("ana").await;
    assert_eq!(status, 200, "{body}");
    let account_id = body["account_id"].as_str().unwrap().to_owned();
    assert!(account_id.starts_with("acct_"), "{body}");
    assert!(
        body["onboarding_url"]
            .as_str()
            .unwrap()
            .contains(&account_id)
    );
    assert_eq!(body["account"]["ready_for_payouts"], false);
    let created = app.stripe.requests_to("POST", "/v1/accounts");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].field("type"), Some("express"));
    assert_eq!(created[0].field("email"), Some("ana@example.com"));
    assert_eq!(
        created[0].field("capabilities[transfers][requested]"),
        Some("true")
    );
    assert_eq!(
        created[0].field("settings[payouts][schedule][interval]"),
        Some("manual")
    );
    assert!(created[0].idempotency_key.is_some());
    let link = &app.stripe.requests_to("POST", "/v1/account_links")[0];
    assert_eq!(link.field("type"), Some("account_onboarding"));
    assert_eq!(
        link.field("return_url"),
        Some("https://platform.test/partner/stripe/done")
    );

    // Before onboarding is finished Stripe has not enabled payouts.
    let (status, body) = app.request_payout("ana", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("PAYOUTS_NOT_ENABLED")),
        "{body}"
    );
    assert_eq!(app.stripe.complete_onboarding(&account_id).await, Some(200));
    let (_, status_view) = app
        .get("/v1/users/ana/stripe-account", Some(&app.platform_key))
        .await;
    assert_eq!(status_view["ready_for_payouts"], true, "{status_view}");

    // Asking again reuses the account, with a new link.
    let (status, again) = app.connect_stripe("ana").await;
    assert_eq!((status, &again["account_id"]), (200, &json!(account_id)));
    assert_eq!(app.stripe.requests_to("POST", "/v1/accounts").len(), 1);
    assert_eq!(app.stripe.requests_to("POST", "/v1/account_links").len(), 2);

    // The whole balance by default.
    let (status, payout) = app.request_payout("ana", json!({})).await;
    assert_eq!(status, 201, "{payout}");
    assert_eq!(payout["amount"]["amount"], "30.00");
    assert_eq!(payout["status"], "REQUESTED");
    assert_eq!(app.referral_balance("ana").await, Decimal::ZERO);
    let payout_id = payout["payout_id"].as_str().unwrap().to_owned();

    app.run_due_jobs().await;
    let listed = app.payouts("ana").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "PROCESSING", "{listed:?}");
    assert!(
        listed[0]["transfer_id"]
            .as_str()
            .unwrap()
            .starts_with("tr_")
    );
    let from = listed[0]["expected_arrival_from"].as_str().unwrap();
    let by = listed[0]["expected_arrival_by"].as_str().unwrap();
    for day in [from, by] {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        assert!(
            !matches!(
                chrono::Datelike::weekday(&day),
                chrono::Weekday::Sat | chrono::Weekday::Sun
            ),
            "arrival on a weekend: {day}"
        );
    }
    let transfer = &app.stripe.requests_to("POST", "/v1/transfers")[0];
    assert_eq!(transfer.field("amount"), Some("3000"));
    assert_eq!(transfer.field("currency"), Some("usd"));
    assert_eq!(transfer.field("destination"), Some(account_id.as_str()));
    assert_eq!(
        transfer.idempotency_key.as_deref(),
        Some(format!("payout-{payout_id}-transfer").as_str())
    );
    let bank = &app.stripe.requests_to("POST", "/v1/payouts")[0];
    assert_eq!(bank.stripe_account.as_deref(), Some(account_id.as_str()));
    assert_eq!(bank.field("amount"), Some("3000"));

    // A payout on its way keeps Ana a Partner: were it to fail, its money would come back.
    let (status, body) = app.to_basic("ana").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("PAYOUTS_IN_FLIGHT")),
        "{body}"
    );

    // The bank pays: Stripe says so by webhook, and Ana gets her confirmation.
    let po = app.stripe_payout_id(&payout_id).await;
    assert_eq!(app.stripe.pay_out(&po).await, Some(200));
    assert_eq!(app.payouts("ana").await[0]["status"], "PAID");
    assert_eq!(app.to_basic("ana").await.0, 200);
    app.run_due_jobs().await;
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["ana@example.com".to_owned()]);
    let mail = &mails[0].data;
    assert!(
        mail.contains("Subject: Your payout of 30.00 USD is on its way"),
        "{mail}"
    );
    assert!(mail.contains(&payout_id), "{mail}");
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );
    assert_eq!(app.referral_balance("ana").await, Decimal::ZERO);
}

#[sqlx::test(migrations = false)]
async fn each_unmet_condition_of_a_payout_has_its_own_answer_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let refused = |status: u16, body: &Value, code: &str| {
        assert_eq!((status, body["code"].as_str()), (409, Some(code)), "{body}");
    };
    let (status, body) = app.request_payout("ana", json!({})).await;
    refused(status, &body, "PARTNER_ONLY");
    let (status, body) = app.connect_stripe("ana").await;
    refused(status, &body, "PARTNER_ONLY");

    app.make_partner("ana").await;
    let (status, body) = app.request_payout("ana", json!({})).await;
    refused(status, &body, "STRIPE_NOT_CONNECTED");

    let (_, connected) = app.connect_stripe("ana").await;
    let account_id = connected["account_id"].as_str().unwrap().to_owned();
    let (status, body) = app.request_payout("ana", json!({})).await;
    refused(status, &body, "PAYOUTS_NOT_ENABLED");

    // Payouts on, but Stripe still wants a date of birth.
    let due = json!({"id": account_id, "object": "account", "payouts_enabled": true,
                     "requirements": {"currently_due": [], "past_due": ["individual.dob.day"]}});
    assert_eq!(
        app.stripe.emit("account.updated", due, None).await,
        Some(200)
    );
    let (status, body) = app.request_payout("ana", json!({})).await;
    refused(status, &body, "STRIPE_REQUIREMENTS_DUE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("individual.dob.day")
    );

    app.stripe.complete_onboarding(&account_id).await;
    // An older account.updated delivered late does not undo the newer one.
    let stale = json!({"id": "evt_old", "object": "event", "type": "account.updated",
                       "created": SystemClock.now().timestamp() - 3600,
                       "data": {"object": {"id": account_id, "object": "account",
                                           "payouts_enabled": false}}})
    .to_string();
    let (status, body) = app.signed_webhook(&stale).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("IGNORED")),
        "{body}"
    );
    let (status, body) = app.request_payout("ana", json!({})).await;
    refused(status, &body, "INSUFFICIENT_REFERRAL_BALANCE");
    let (status, body) = app.request_payout("ana", json!({"amount": "24.99"})).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (422, Some("BELOW_MINIMUM_PAYOUT"), Some("amount")),
        "{body}"
    );
    let (status, body) = app.request_payout("ana", json!({"amount": "25.001"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("amount")),
        "{body}"
    );

    let written: i64 = sqlx::query_scalar("select count(*) from payouts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(written, 0);
    assert!(app.stripe.requests_to("POST", "/v1/transfers").is_empty());
}

#[sqlx::test(migrations = false)]
async fn twenty_requests_at_once_on_thirty_dollars_withdraw_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    app.onboarded().await;

    let answers = futures::future::join_all(
        (0..20).map(|_| app.request_payout("ana", json!({"amount": "25.00"}))),
    )
    .await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (409, Some("INSUFFICIENT_REFERRAL_BALANCE")),
            "{body}"
        );
    }
    assert_eq!(app.referral_balance("ana").await, Decimal::from(5));
    app.run_due_jobs().await;
    assert_eq!(app.stripe.transfers().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_payout_job_that_dies_after_stripe_answered_pays_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    let account_id = app.onboarded().await;
    // The job dies twice, each time right after Stripe answered: once before it could
    // record the transfer, once before it could record the bank payout. Sequences are
    // outside transactions, so each crash happens once.
    sqlx::raw_sql(
        "create sequence crash_at_transfer;
         create sequence crash_at_processing;
         create function crash_after_stripe() returns trigger language plpgsql as $$
         begin
             if old.transfer_id is null and new.transfer_id is not null
                and new.status = 'REQUESTED' and nextval('crash_at_transfer') = 1 then
                 raise exception 'simulated crash after Stripe made the transfer';
             end if;
             if new.status = 'PROCESSING' and nextval('crash_at_processing') = 1 then
                 raise exception 'simulated crash after Stripe made the bank payout';
             end if;
             return new;
         end $$;
         create trigger crash_after_stripe before update on payouts
             for each row execute function crash_after_stripe();",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let (status, payout) = app.request_payout("ana", json!({})).await;
    assert_eq!(status, 201, "{payout}");
    let payout_id = payout["payout_id"].as_str().unwrap().to_owned();
    let processing = wait_until(Duration::from_secs(15), || async {
        app.make_due().await;
        let listed = app.payouts("ana").await;
        (listed[0]["status"] == "PROCESSING").then_some(())
    })
    .await;
    assert!(processing.is_some(), "{:?}", app.payouts("ana").await);

    // Run 1 made the transfer and died; run 2 asked again with the same key and got
    // Stripe's first answer; run 3 found it recorded and did not ask.
    let transfers = app.stripe.requests_to("POST", "/v1/transfers");
    let key = format!("payout-{payout_id}-transfer");
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert!(
        transfers
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some(key.as_str()))
    );
    assert!(!transfers[0].replayed && transfers[1].replayed);
    let bank = app.stripe.requests_to("POST", "/v1/payouts");
    assert_eq!(bank.len(), 2, "{bank:?}");
    assert!(
        bank[1].replayed,
        "the bank payout's retry got Stripe's first answer"
    );
    assert!(
        bank.iter()
            .all(|r| r.stripe_account.as_deref() == Some(account_id.as_str()))
    );
    assert_eq!(app.stripe.transfers().len(), 1, "one transfer at Stripe");
    let recorded: (String, String) =
        sqlx::query_as("select transfer_id, stripe_payout_id from payouts where id = $1::uuid")
            .bind(&payout_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(json!(recorded.0), app.stripe.transfers()[0]["id"]);
    let bank_payouts = app.stripe.bank_payouts();
    assert_eq!(bank_payouts.len(), 1, "one bank payout at Stripe");
    assert_eq!(json!(recorded.1), bank_payouts[0]["id"]);
}

#[sqlx::test(migrations = false)]
async fn a_payout_the_bank_sends_back_after_paying_returns_to_the_balance(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    app.onboarded().await;
    let (_, payout) = app.request_payout("ana", json!({})).await;
    let payout_id = payout["payout_id"].as_str().unwrap().to_owned();
    app.run_due_jobs().await;
    let po = app.stripe_payout_id(&payout_id).await;
    assert_eq!(app.stripe.pay_out(&po).await, Some(200));
    assert_eq!(app.payouts("ana").await[0]["status"], "PAID");
    assert_eq!(app.referral_balance("ana").await, Decimal::ZERO);

    // Days later Stripe reports the same payout failed: the bank returned it.
    assert_eq!(
        app.stripe
            .fail_payout(&po, "The bank returned the funds")
            .await,
        Some(200)
    );
    let listed = app.payouts("ana").await;
    assert_eq!(listed[0]["status"], "FAILED", "{listed:?}");
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    app.run_due_jobs().await;
    let transfer_id = listed[0]["transfer_id"].as_str().unwrap();
    let reversals = app
        .stripe
        .requests_to("POST", &format!("/v1/transfers/{transfer_id}/reversals"));
    assert_eq!((reversals.len(), reversals[0].status), (1, 200));
    let mails = app.smtp.wait_for(2).await;
    assert!(mails.iter().any(|m| m.data.contains("is on its way")));
    assert!(mails.iter().any(|m| m.data.contains("did not go through")));
}

#[sqlx::test(migrations = false)]
async fn a_network_outage_is_retried_and_a_closed_account_fails_the_payout_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(60).await;
    let account_id = app.onboarded().await;

    app.stripe.fail_next("/v1/transfers", 503, 2);
    let (status, _) = app.request_payout("ana", json!({"amount": "30.00"})).await;
    assert_eq!(status, 201);
    let processing = wait_until(Duration::from_secs(15), || async {
        app.make_due().await;
        (app.payouts("ana").await[0]["status"] == "PROCESSING").then_some(())
    })
    .await;
    assert!(processing.is_some(), "{:?}", app.payouts("ana").await);
    let attempts = app.stripe.requests_to("POST", "/v1/transfers");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a.idempotency_key == attempts[0].idempotency_key),
        "automatic retries keep their key: {attempts:?}"
    );
    assert_eq!(app.stripe.transfers().len(), 1);

    app.stripe.close_account(&account_id);
    let (status, second) = app.request_payout("ana", json!({})).await;
    assert_eq!(
        (status, &second["amount"]["amount"]),
        (201, &json!("30.00"))
    );
    app.run_due_jobs().await;
    let latest = &app.payouts("ana").await[0];
    assert_eq!(latest["status"], "FAILED", "{latest}");
    assert!(
        latest["failure_reason"]
            .as_str()
            .unwrap()
            .contains("closed"),
        "{latest}"
    );
    assert_eq!(
        app.stripe.requests_to("POST", "/v1/transfers").len(),
        4,
        "no retry"
    );
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    let mails = app.smtp.wait_for(1).await;
    assert!(
        mails[0].data.contains("did not go through"),
        "{:?}",
        mails[0]
    );
}

#[sqlx::test(migrations = false)]
async fn webhooks_need_a_fresh_valid_signature_and_apply_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, payout_id, po) = app.payout_of_30_sent().await;

    // The bank refuses: Stripe returns the money to Ana's Stripe balance and tells us.
    let event = app
        .stripe
        .fail_payout_quietly(&po, "The bank account has been closed")
        .unwrap();
    let event_id = event["id"].as_str().unwrap().to_owned();
    let event = event.to_string();
    let now = SystemClock.now().timestamp();
    let good = stripe_signature::sign(WEBHOOK_SECRET.as_bytes(), now, event.as_bytes());
    let forged = stripe_signature::sign(b"whsec_guess", now, event.as_bytes());
    let stale = stripe_signature::sign(WEBHOOK_SECRET.as_bytes(), now - 301, event.as_bytes());
    let tampered = event.replace("closed", "frozen");
    for (body, signature) in [
        (event.as_str(), None),
        (event.as_str(), Some(forged.as_str())),
        (event.as_str(), Some(stale.as_str())),
        (event.as_str(), Some("t=abc,v1=zz")),
        (tampered.as_str(), Some(good.as_str())),
    ] {
        let (status, body) = app.webhook(body, signature).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("INVALID_SIGNATURE")),
            "{signature:?}: {body}"
        );
    }
    assert_eq!(app.payouts("ana").await[0]["status"], "PROCESSING");
    let seen: i64 = sqlx::query_scalar("select count(*) from stripe_events where event_id = $1")
        .bind(&event_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(seen, 0, "a refused delivery records nothing");

    // The real one fails the payout and returns the money, once however often it comes.
    let (status, body) = app.webhook(&event, Some(&good)).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("APPLIED")),
        "{body}"
    );
    let (status, body) = app.webhook(&event, Some(&good)).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("DUPLICATE")),
        "{body}"
    );
    let listed = app.payouts("ana").await;
    assert_eq!(listed[0]["status"], "FAILED");
    assert_eq!(
        listed[0]["failure_reason"],
        "The bank account has been closed"
    );
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    app.run_due_jobs().await;
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].data.contains(&payout_id));
    assert!(mails[0].data.contains("did not go through"));

    // The money is taken back from Ana's Stripe account, so it is not in two places.
    let transfer_id = listed[0]["transfer_id"].as_str().unwrap();
    let reversals = app
        .stripe
        .requests_to("POST", &format!("/v1/transfers/{transfer_id}/reversals"));
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        reversals[0].idempotency_key.as_deref(),
        Some(format!("payout-{payout_id}-reversal").as_str())
    );
    assert_eq!(reversals[0].status, 200);
    assert_eq!(app.stripe.transfers()[0]["reversed"], true);

    // A paid event after the failure changes nothing: the money moved once.
    let paid = event
        .replace(&event_id, "evt_later")
        .replace("payout.failed", "payout.paid");
    let (status, body) = app.signed_webhook(&paid).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("IGNORED")),
        "{body}"
    );
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
}

#[sqlx::test(migrations = false)]
async fn a_transfer_reversed_at_stripe_fails_the_payout_on_its_way(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    app.onboarded().await;
    let (_, payout) = app.request_payout("ana", json!({})).await;
    app.run_due_jobs().await;
    let listed = app.payouts("ana").await;
    assert_eq!(listed[0]["status"], "PROCESSING");
    // A partial reversal is not ours to settle: the payout stays as it is.
    let mut transfer = app.stripe.transfers()[0].clone();
    transfer["amount_reversed"] = json!(1000);
    assert_eq!(
        app.stripe
            .emit("transfer.reversed", transfer.clone(), None)
            .await,
        Some(200)
    );
    assert_eq!(app.payouts("ana").await[0]["status"], "PROCESSING");
    transfer["amount_reversed"] = json!(3000);
    transfer["reversed"] = json!(true);
    assert_eq!(
        app.stripe.emit("transfer.reversed", transfer, None).await,
        Some(200)
    );
    let listed = app.payouts("ana").await;
    assert_eq!(listed[0]["status"], "FAILED", "{listed:?}");
    assert_eq!(listed[0]["payout_id"], payout["payout_id"]);
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    app.run_due_jobs().await;
    // Stripe already has the money back: nothing more is reversed.
    let reversals = app
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/reversals"))
        .count();
    assert_eq!(reversals, 0);
    assert!(
        app.smtp.wait_for(1).await[0]
            .data
            .contains("did not go through")
    );
}

#[sqlx::test(migrations = false)]
async fn an_event_ahead_of_the_payout_job_is_refused_until_the_job_recorded_its_answer(
    pool: PgPool,
) {
    let mut app = TestApp::spawn(pool).await;
    app.partner_with_balance(30).await;
    app.onboarded().await;
    app.stop_worker().await;
    let (_, payout) = app.request_payout("ana", json!({})).await;
    let payout_id = payout["payout_id"].as_str().unwrap().to_owned();

    // Stripe names the payout by the metadata we send with it.
    let event = json!({"id": "evt_early", "object": "event", "type": "payout.paid",
                       "created": SystemClock.now().timestamp(),
                       "data": {"object": {"id": "po_not_recorded_yet", "object": "payout",
                                           "metadata": {"payout_id": payout_id}}}})
    .to_string();
    let (status, body) = app.signed_webhook(&event).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("EVENT_ARRIVED_EARLY")),
        "{body}"
    );
    assert_eq!(app.payouts("ana").await[0]["status"], "REQUESTED");

    app.start_worker();
    app.run_due_jobs().await;
    assert_eq!(app.payouts("ana").await[0]["status"], "PROCESSING");
    let (status, body) = app.signed_webhook(&event).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("APPLIED")),
        "{body}"
    );
    assert_eq!(app.payouts("ana").await[0]["status"], "PAID");
}

#[sqlx::test(migrations = false)]
async fn an_operators_retry_after_a_refused_reversal_is_a_new_request_and_takes_the_money_back(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let (account_id, payout_id, po) = app.payout_of_30_sent().await;

    // The bank refuses; the money is back in Ana's Stripe balance, and she spends it
    // before we take it back: Stripe refuses the reversal for good.
    let event = app
        .stripe
        .fail_payout_quietly(&po, "account closed")
        .unwrap();
    app.stripe.set_balance(&account_id, 0);
    let (status, body) = app.signed_webhook(&event.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));
    app.run_due_jobs().await;
    let transfer_id = app.payouts("ana").await[0]["transfer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reversals_path = format!("/v1/transfers/{transfer_id}/reversals");
    let refused = app.stripe.requests_to("POST", &reversals_path);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, 400);
    let first_key = format!("payout-{payout_id}-reversal");
    assert_eq!(
        refused[0].idempotency_key.as_deref(),
        Some(first_key.as_str())
    );
    let (_, failed) = app
        .get(
            "/v1/admin/jobs?queue=reverse_payout_transfer&state=failed",
            Some(&app.admin_key),
        )
        .await;
    let job_id = failed[0]["id"].as_str().unwrap().to_owned();
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("balance_insufficient"),
        "{failed}"
    );

    // Later the account can cover it, and the operator retries: a new key, so Stripe
    // runs it instead of replaying the refusal; the money is in one place again.
    app.stripe.set_balance(&account_id, 3000);
    let (status, body) = app
        .post(
            &format!("/v1/admin/jobs/{job_id}/retry"),
            Some(&app.admin_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.run_due_jobs().await;
    let reversals = app.stripe.requests_to("POST", &reversals_path);
    assert_eq!(reversals.len(), 2, "{reversals:?}");
    assert_eq!(
        (reversals[1].status, reversals[1].replayed),
        (200, false),
        "{reversals:?}"
    );
    assert_eq!(
        reversals[1].idempotency_key.as_deref(),
        Some(format!("{first_key}-g1").as_str())
    );
    assert_eq!(app.stripe.transfers()[0]["reversed"], true);
    let (_, done) = app
        .get(
            "/v1/admin/jobs?queue=reverse_payout_transfer&state=done",
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(done[0]["id"], json!(job_id), "{done}");
    assert_eq!(app.referral_balance("ana").await, Decimal::from(30));

    // Another retry finds the reversal recorded and asks Stripe nothing.
    app.run_due_jobs().await;
    assert_eq!(app.stripe.requests_to("POST", &reversals_path).len(), 2);
}

#[sqlx::test(migrations = false)]
async fn a_signed_event_holding_nul_is_refused_with_a_clear_400_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for body in [
        r#"{"id":"evt_\u0000x","type":"payout.paid","created":1700000000,"data":{"object":{"id":"po_1"}}}"#,
        r#"{"id":"evt_nul_account","type":"account.updated","created":1700000000,
            "data":{"object":{"id":"acct_\u0000","payouts_enabled":true}}}"#,
        r#"{"id":"evt_nul_reason","type":"payout.failed","created":1700000000,
            "data":{"object":{"id":"po_1","failure_message":"closed\u0000"}}}"#,
    ] {
        let (status, answer) = app.signed_webhook(body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("MALFORMED_EVENT")),
            "{body}: {answer}"
        );
        assert!(
            answer["message"].as_str().unwrap().contains("NUL"),
            "{answer}"
        );
    }
    let events: i64 = sqlx::query_scalar("select count(*) from stripe_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 0, "nothing recorded");
}
