//! The Partner track (SPEC: Partner program): signing the current agreement, Partner
//! commissions into the referral balance, going back to Basic only with nothing left.

use chrono::Duration as Days;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

impl TestApp {
    async fn agreement(&self) -> Value {
        let (status, body) = self
            .get("/v1/partner-agreement", Some(&self.platform_key))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn sign(&self, user_id: &str, version: &Value, sha256: &Value) -> (u16, Value) {
        self.post(
            &format!("/v1/users/{user_id}/partner"),
            Some(&self.platform_key),
            json!({"agreement_version": version, "agreement_sha256": sha256,
                   "full_name": "Ana Souza", "ip": "198.51.100.4", "user_agent": "Firefox"}),
        )
        .await
    }

    pub(crate) async fn to_basic(&self, user_id: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(self.url(&format!("/v1/users/{user_id}/partner")))
            .bearer_auth(&self.platform_key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

#[sqlx::test(migrations = false)]
async fn signing_the_current_agreement_makes_a_partner_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let agreement = app.agreement().await;
    assert!(agreement["text"].as_str().unwrap().contains("10 %"));
    let text_hash = sha256_hex(agreement["text"].as_str().unwrap());
    assert_eq!(agreement["sha256"], text_hash, "the hash is the text's");

    let (status, body) = app
        .sign("ana", &agreement["version"], &json!("0".repeat(64)))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("AGREEMENT_NOT_CURRENT")),
        "{body}"
    );
    let (status, body) = app
        .sign("ana", &agreement["version"], &agreement["sha256"])
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["track"], "PARTNER");
    assert_eq!(body["signature"]["full_name"], "Ana Souza");
    assert_eq!(body["signature"]["ip"], "198.51.100.4");
    assert_eq!(body["signature"]["user_agent"], "Firefox");
    assert_eq!(
        body["signature"]["signed_at"].as_str().map(str::is_empty),
        Some(false)
    );
    let (status, body) = app
        .sign("ana", &agreement["version"], &agreement["sha256"])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("ALREADY_PARTNER")),
        "{body}"
    );

    // From now on Ana earns 10 % into her referral balance.
    let purchase = app.buy("pur-1", "bo", "50.00").await;
    assert_eq!(purchase["commission"]["amount"]["amount"], "5.00");
    assert_eq!(purchase["commission"]["destination"], "REFERRAL_BALANCE");
}

#[sqlx::test(migrations = false)]
async fn going_back_to_basic_needs_a_zero_balance_and_nothing_outstanding(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.ana_refers_bo().await;
    let (status, body) = app.to_basic("ana").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("NOT_A_PARTNER")),
        "{body}"
    );

    let agreement = app.agreement().await;
    let (status, _) = app
        .sign("ana", &agreement["version"], &agreement["sha256"])
        .await;
    assert_eq!(status, 201);
    app.buy("pur-1", "bo", "50.00").await;
    let (status, body) = app.to_basic("ana").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("COMMISSIONS_OUTSTANDING")),
        "{body}"
    );

    app.advance(Days::days(30)).await;
    let (status, body) = app.to_basic("ana").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("REFERRAL_BALANCE_NOT_ZERO")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("5.00"), "{body}");

    // A full refund takes the $5.00 back: the balance is zero again, and Ana may leave.
    app.refund("pur-1", "re-1", "50.00").await;
    app.run_due_jobs().await;
    let (status, body) = app.to_basic("ana").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["track"], "BASIC");
    let purchase = app.buy("pur-2", "bo", "50.00").await;
    assert_eq!(purchase["commission"]["amount"]["amount"], "2.50");
    assert_eq!(purchase["commission"]["destination"], "WALLET");
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
