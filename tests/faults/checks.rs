//! The invariants checked after every run of the fault suite, on the run's database, the
//! Stripe stand-in's record and the SMTP sink's.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::Value;
use sqlx::PgPool;

use super::driver::Driver;
use crate::fake_stripe::FakeStripe;
use crate::invariants;
use crate::smtp_capture::SmtpCapture;

#[derive(Debug, Default)]
pub struct Found {
    pub violations: Vec<String>,
    pub duplicate_deliveries: usize,
}

pub async fn check(
    pool: &PgPool,
    driver: &Driver,
    stripe: &FakeStripe,
    smtp: &SmtpCapture,
) -> anyhow::Result<Found> {
    let mut found = Found {
        violations: invariants::broken(pool).await,
        ..Found::default()
    };
    settled_rules(pool, &mut found).await?;
    acknowledged_writes(pool, driver, &mut found).await?;
    stripe_money(pool, stripe, &mut found).await?;
    payout_emails(pool, smtp, &mut found).await?;
    Ok(found)
}

/// What must hold once every job has run (not at every commit, unlike
/// `invariants::broken`): each query answers the rows that break its rule.
const SETTLED_RULES: &[(&str, &str)] = &[
    (
        // The rate applied once to the cash not refunded, rounded half away from zero to
        // the cent: what every refund, whoever applied it, must leave.
        "a commission is worth its rate times its purchase's cash not refunded",
        "select c.id::text from commissions c join purchases p on p.id = c.purchase_id
         where c.amount <> round(c.rate * greatest(c.cash_amount - p.refunded, 0), 2)
            or (c.amount = 0) <> (c.status in ('CANCELLED', 'REVERSED'))",
    ),
    (
        "every stored e-mail was sent",
        "select id::text from emails where sent_at is null",
    ),
];

async fn settled_rules(pool: &PgPool, found: &mut Found) -> anyhow::Result<()> {
    for (rule, query) in SETTLED_RULES {
        // The rules are constants of this file.
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(*query))
            .fetch_all(pool)
            .await
            .with_context(|| format!("check: {rule}"))?;
        if !rows.is_empty() {
            found.violations.push(format!("{rule}: {rows:?}"));
        }
    }
    Ok(())
}

/// Every write the driver saw acknowledged is there.
async fn acknowledged_writes(
    pool: &PgPool,
    driver: &Driver,
    found: &mut Found,
) -> anyhow::Result<()> {
    // Each query answers the ids of the list that are present.
    let present = |kind: &str| -> Option<&'static str> {
        Some(match kind {
            "users" => "select platform_user_id from users where platform_user_id = any($1)",
            "clicks" => "select id::text from clicks where id::text = any($1)",
            "purchases" => {
                "select platform_purchase_id from purchases where platform_purchase_id = any($1)"
            },
            "refunds" => "select platform_refund_id from refunds where platform_refund_id = any($1)",
            "credit spends" => "select reference from credit_spends where reference = any($1)",
            "payouts" => "select id::text from payouts where id::text = any($1)",
            "partner upgrades" => {
                "select u.platform_user_id from users u join partner_signatures s on s.user_id = u.id
                 where u.platform_user_id = any($1)"
            }
            _ => return None,
        })
    };
    for (kind, ids) in &driver.acknowledged {
        let query = present(kind).with_context(|| format!("no presence check for {kind}"))?;
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .bind(ids)
            .fetch_all(pool)
            .await
            .with_context(|| format!("look up acknowledged {kind}"))?;
        let missing: Vec<&String> = ids.iter().filter(|id| !rows.contains(id)).collect();
        if !missing.is_empty() {
            found
                .violations
                .push(format!("acknowledged {kind} missing: {missing:?}"));
        }
    }
    Ok(())
}

/// Stripe moved each payout's money at most once, and as its final state says.
async fn stripe_money(pool: &PgPool, stripe: &FakeStripe, found: &mut Found) -> anyhow::Result<()> {
    let payouts: Vec<(String, String, i64)> =
        sqlx::query_as("select id::text, status, (amount * 100)::bigint from payouts")
            .fetch_all(pool)
            .await
            .context("read payouts")?;
    let payout_of = |object: &Value| object["metadata"]["payout_id"].as_str().map(str::to_owned);
    let mut transfers: HashMap<String, Vec<Value>> = HashMap::new();
    for transfer in stripe.transfers() {
        if let Some(payout) = payout_of(&transfer) {
            transfers.entry(payout).or_default().push(transfer);
        }
    }
    let mut bank_payouts: HashMap<String, Vec<Value>> = HashMap::new();
    for payout in stripe.bank_payouts() {
        if let Some(id) = payout_of(&payout) {
            bank_payouts.entry(id).or_default().push(payout);
        }
    }
    for (id, status, cents) in payouts {
        let sent = transfers.get(&id).map(Vec::as_slice).unwrap_or_default();
        let banked = bank_payouts.get(&id).map(Vec::len).unwrap_or_default();
        if sent.len() > 1 {
            found
                .violations
                .push(format!("payout {id} has {} Stripe transfers", sent.len()));
        }
        if banked > 1 {
            found
                .violations
                .push(format!("payout {id} has {banked} bank payouts"));
        }
        let kept = |t: &Value| {
            t["amount"].as_i64().unwrap_or(0) - t["amount_reversed"].as_i64().unwrap_or(0)
        };
        let kept_total: i64 = sent.iter().map(kept).sum();
        let expected = match status.as_str() {
            "PAID" | "PROCESSING" => cents,
            _ => 0,
        };
        if kept_total != expected {
            found.violations.push(format!(
                "payout {id} is {status} for {cents} cents but Stripe transfers keep {kept_total}"
            ));
        }
    }
    Ok(())
}

/// Each paid or failed payout has its e-mail, stored once and delivered.
async fn payout_emails(pool: &PgPool, smtp: &SmtpCapture, found: &mut Found) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select p.id::text, p.status,
                count(e.id) filter (where e.subject like case when p.status = 'PAID'
                     then '%is on its way' else '%did not go through' end),
                count(e.id) filter (where e.sent_at is null)
         from payouts p left join emails e on e.body like '%Payout id: ' || p.id::text || '%'
         where p.status in ('PAID', 'FAILED') group by 1, 2",
    )
    .fetch_all(pool)
    .await
    .context("read payout e-mails")?;
    for (id, status, stored, unsent) in rows {
        if stored != 1 {
            found.violations.push(format!(
                "payout {id} is {status} with {stored} such e-mails stored"
            ));
        }
        if unsent > 0 {
            found
                .violations
                .push(format!("payout {id}: {unsent} e-mail(s) never sent"));
        }
    }
    let emails: Vec<String> = sqlx::query_scalar("select id::text from emails")
        .fetch_all(pool)
        .await?;
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    for mail in smtp.mails() {
        if let Some(id) = mail.message_id() {
            *deliveries.entry(id.to_owned()).or_default() += 1;
        }
    }
    for email in emails {
        let key = format!("<email-{email}@");
        let delivered: usize = deliveries
            .iter()
            .filter(|(message_id, _)| message_id.starts_with(&key))
            .map(|(_, n)| *n)
            .sum();
        match delivered {
            0 => found
                .violations
                .push(format!("e-mail {email} never reached the SMTP server")),
            1 => {}
            n => found.duplicate_deliveries += n - 1,
        }
    }
    Ok(())
}
