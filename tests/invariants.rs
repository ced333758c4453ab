//! What must hold in the database at every commit: every cached balance equals the
//! ledger entries it summarises, no money moved twice, no timer fired early. Checked after
//! every end-to-end test and after every run of the fault suite.

use sqlx::PgPool;

/// Each query returns the rows that break one rule; all must return none.
const RULES: &[(&str, &str)] = &[
    (
        "a credit grant's remaining equals the sum of its ledger entries",
        "select g.id::text from credit_grants g
         left join ledger_entries e on e.credit_grant_id = g.id
         group by g.id having g.remaining <> coalesce(sum(e.amount), 0)",
    ),
    (
        "a wallet's ledger balance equals what is left of its grants",
        "select u.id::text from users u
         where (select coalesce(sum(amount), 0) from ledger_entries
                where user_id = u.id and account = 'WALLET')
            <> (select coalesce(sum(remaining), 0) from credit_grants where user_id = u.id)",
    ),
    (
        "a commission is worth the sum of its ledger entries",
        "select c.id::text from commissions c
         left join ledger_entries e on e.commission_id = c.id
         group by c.id having c.amount <> coalesce(sum(e.amount), 0)",
    ),
    (
        "a commission's money sits in the account its status says",
        "select c.id::text from commissions c
         where (select coalesce(sum(amount), 0) from ledger_entries e
                where e.commission_id = c.id and e.account = 'COMMISSION_PENDING')
               <> case when c.status = 'PENDING' then c.amount else 0 end
            or (select coalesce(sum(amount), 0) from ledger_entries e
                where e.commission_id = c.id and e.account = 'COMMISSION_ELIGIBLE')
               <> case when c.status = 'ELIGIBLE' then c.amount else 0 end",
    ),
    (
        "a payout's money sits where its status says",
        "select p.id::text from payouts p
         where (select coalesce(sum(amount), 0) from ledger_entries e
                where e.payout_id = p.id and e.account = 'PAYOUT_IN_FLIGHT')
               <> case when p.status in ('REQUESTED', 'PROCESSING') then p.amount else 0 end
            or (select coalesce(sum(amount), 0) from ledger_entries e
                where e.payout_id = p.id and e.account = 'REFERRAL_BALANCE')
               <> case when p.status = 'FAILED' then 0 else -p.amount end",
    ),
    (
        "a purchase's refunded total is the sum of its refunds",
        "select p.id::text from purchases p left join refunds r on r.purchase_id = p.id
         group by p.id having p.refunded <> coalesce(sum(r.amount), 0)",
    ),
    (
        "the stats counters equal a recount",
        "select u.id::text from users u left join referrer_stats s on s.referrer_id = u.id
         where coalesce(s.referrals, 0) <> (select count(*) from users r where r.referred_by = u.id)
            or coalesce(s.conversions, 0) <> (select count(*) from users r
                                              where r.referred_by = u.id and r.converted_at is not null)
            or coalesce(s.pending_earnings, 0) <> (select coalesce(sum(amount), 0) from ledger_entries
                where user_id = u.id and commission_id is not null
                  and account in ('COMMISSION_PENDING', 'COMMISSION_ELIGIBLE'))
            or coalesce(s.paid_earnings, 0) <> (select coalesce(sum(amount), 0) from ledger_entries
                where user_id = u.id and commission_id is not null
                  and account in ('WALLET', 'REFERRAL_BALANCE'))
            or (select coalesce(sum(clicks), 0) from click_counts where referrer_id = u.id)
               <> (select count(*) from clicks where referrer_id = u.id)",
    ),
    (
        "a commission is paid at most once",
        "select commission_id::text from ledger_entries
         where kind = 'COMMISSION_PAID' and account in ('WALLET', 'REFERRAL_BALANCE')
         group by commission_id having count(*) > 1",
    ),
    (
        "a commission is paid no earlier than the end of its hold",
        "select id::text from commissions where paid_at < eligible_at",
    ),
    (
        "a commission becomes eligible no earlier than the end of its hold",
        "select distinct c.id::text from commissions c
         join ledger_entries e on e.commission_id = c.id
         where e.kind = 'COMMISSION_ELIGIBLE' and e.occurred_at < c.eligible_at",
    ),
    (
        // Every payout was at most what the referral balance held when it was requested.
        // Clawbacks are left out of the running sum: they may take a balance below zero
        // on their own, and leaving them out only raises it. Entry ids follow the order
        // the rows were written, so a payout's entry comes after every entry its request
        // could read.
        "a payout takes no more than the referral balance held",
        "select e.payout_id::text from (
             select payout_id, kind,
                    sum(amount) over (partition by user_id order by id) as balance_after
             from ledger_entries
             where account = 'REFERRAL_BALANCE' and (amount > 0 or payout_id is not null)
         ) e
         where e.kind = 'PAYOUT_REQUESTED' and e.balance_after < 0",
    ),
    (
        "signup credit expires no earlier than its expiry",
        "select id::text from credit_grants where expired_at < expires_at",
    ),
];

/// The rules broken in the database, with the rows that break them.
pub async fn broken(pool: &PgPool) -> Vec<String> {
    let mut broken = Vec::new();
    for (rule, query) in RULES {
        // The rules are constants of this file.
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(*query))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| vec![format!("query failed: {e}")]);
        if !rows.is_empty() {
            broken.push(format!("{rule}: {rows:?}"));
        }
    }
    broken
}
