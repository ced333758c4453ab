-- Commission track of each user, fixed onto each commission when it is created.
alter table users add column track text not null default 'BASIC'
    constraint users_track_check check (track in ('BASIC', 'PARTNER'));

-- Purchases the platform reports, idempotent by its own purchase id. `fingerprint` is a
-- hash of the request, so a replay with a different body is told apart from a retry.
create table purchases (
    id uuid primary key,
    platform_purchase_id text not null constraint purchases_platform_id_unique unique,
    user_id uuid not null references users (id),
    amount numeric(12, 2) not null check (amount > 0),
    credit_applied numeric(12, 2) not null check (credit_applied >= 0 and credit_applied <= amount),
    currency text not null check (currency = 'USD'),
    outcome text not null check (outcome in ('SUCCEEDED', 'FAILED')),
    plan text not null,
    purchased_at timestamptz not null,
    fingerprint text not null,
    -- Cash refunded so far; never more than the cash part.
    refunded numeric(12, 2) not null default 0
        check (refunded >= 0 and refunded <= amount - credit_applied),
    created_at timestamptz not null default now()
);
create index purchases_by_user on purchases (user_id, purchased_at desc);

-- A referrer's commission on one qualifying purchase. `amount` is what it is worth now
-- (after partial refunds); `rate`, `track` and `destination` are fixed at creation.
create table commissions (
    id uuid primary key,
    purchase_id uuid not null constraint commissions_one_per_purchase unique references purchases (id),
    referrer_id uuid not null references users (id),
    referred_user_id uuid not null references users (id),
    track text not null check (track in ('BASIC', 'PARTNER')),
    rate numeric(5, 4) not null check (rate > 0 and rate <= 1),
    cash_amount numeric(12, 2) not null check (cash_amount > 0),
    original_amount numeric(12, 2) not null check (original_amount >= 0),
    amount numeric(12, 2) not null check (amount >= 0 and amount <= original_amount),
    currency text not null check (currency = 'USD'),
    destination text not null check (destination in ('WALLET', 'REFERRAL_BALANCE')),
    status text not null check (status in ('PENDING', 'ELIGIBLE', 'PAID', 'CANCELLED', 'REVERSED')),
    earned_at timestamptz not null,
    eligible_at timestamptz not null,
    paid_at timestamptz,
    closed_at timestamptz,
    -- The wallet credit a Basic commission was paid as, so a reversal takes it back there.
    credit_grant_id uuid references credit_grants (id)
);
create index commissions_by_referrer on commissions (referrer_id, earned_at, id);

-- Refunds of purchases, idempotent by the platform's refund id. A refund's effect on the
-- commission is applied once, by a job, and stamped in `applied_at`.
create table refunds (
    id uuid primary key,
    platform_refund_id text not null constraint refunds_platform_id_unique unique,
    purchase_id uuid not null references purchases (id),
    amount numeric(12, 2) not null check (amount > 0),
    currency text not null check (currency = 'USD'),
    refunded_at timestamptz not null,
    fingerprint text not null,
    -- The purchase's refunded total right after this refund: what its answer said.
    refunded_total_after numeric(12, 2) not null,
    applied_at timestamptz
);
create index refunds_by_purchase on refunds (purchase_id);

-- Commission credit never expires: a null expiry.
alter table credit_grants alter column expires_at drop not null;
alter table credit_grants drop constraint credit_grants_reason_check;
alter table credit_grants add constraint credit_grants_reason_check
    check (reason in ('SIGNUP', 'COMMISSION'));
-- A reversed commission takes its credit back even when it was spent: that grant's
-- remaining may go below zero, a debt that nets against the rest of the wallet.
alter table credit_grants drop constraint credit_grants_check;
alter table credit_grants add constraint credit_grants_remaining_check
    check (remaining <= amount and (remaining >= 0 or reason = 'COMMISSION'));

-- Commission movements in the ledger. Pending and eligible commission sit in accounts of
-- their own until paid, so every state of a commission is a sum of entries.
alter table ledger_entries add column commission_id uuid references commissions (id);
alter table ledger_entries drop constraint ledger_entries_account_check;
alter table ledger_entries add constraint ledger_entries_account_check
    check (account in ('WALLET', 'REFERRAL_BALANCE', 'COMMISSION_PENDING', 'COMMISSION_ELIGIBLE'));
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
    check (kind in ('CREDIT_GRANTED', 'CREDIT_SPENT', 'CREDIT_EXPIRED',
                    'COMMISSION_PENDING', 'COMMISSION_ELIGIBLE', 'COMMISSION_PAID',
                    'COMMISSION_CANCELLED', 'COMMISSION_REVERSED'));
create index ledger_entries_by_commission on ledger_entries (commission_id) where commission_id is not null;

-- The stats card's counters (SPEC: Stats card), so the card is a few primary-key reads
-- however many referrals and clicks a referrer has. Triggers keep them in the same
-- transaction as the rows they count, whichever code path writes those rows; the tests
-- prove them equal to a recount.
create table referrer_stats (
    referrer_id uuid primary key references users (id),
    referrals bigint not null default 0,
    conversions bigint not null default 0,
    pending_earnings numeric not null default 0,
    paid_earnings numeric not null default 0
);

-- Clicks are the hottest write, often many at once on one popular link: one counter row
-- per referrer would make them queue on its lock, so each click adds to one of 16 rows.
create table click_counts (
    referrer_id uuid not null references users (id),
    shard smallint not null check (shard between 0 and 15),
    clicks bigint not null,
    primary key (referrer_id, shard)
);

create function count_click() returns trigger language plpgsql as $$
begin
    insert into click_counts (referrer_id, shard, clicks)
    values (new.referrer_id, floor(random() * 16)::smallint, 1)
    on conflict (referrer_id, shard) do update set clicks = click_counts.clicks + 1;
    return null;
end
$$;
create trigger clicks_counted after insert on clicks
    for each row execute function count_click();

create function count_referral() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' and new.referred_by is not null then
        insert into referrer_stats (referrer_id, referrals) values (new.referred_by, 1)
        on conflict (referrer_id) do update set referrals = referrer_stats.referrals + 1;
        if new.converted_at is not null then
            update referrer_stats set conversions = conversions + 1
            where referrer_id = new.referred_by;
        end if;
    elsif tg_op = 'UPDATE' and new.referred_by is not null
          and old.converted_at is null and new.converted_at is not null then
        update referrer_stats set conversions = conversions + 1
        where referrer_id = new.referred_by;
    end if;
    return null;
end
$$;
create trigger users_counted after insert or update of converted_at on users
    for each row execute function count_referral();

create function count_earnings() returns trigger language plpgsql as $$
begin
    if new.commission_id is null then
        return null;
    end if;
    if new.account in ('COMMISSION_PENDING', 'COMMISSION_ELIGIBLE') then
        insert into referrer_stats (referrer_id, pending_earnings) values (new.user_id, new.amount)
        on conflict (referrer_id) do update
            set pending_earnings = referrer_stats.pending_earnings + new.amount;
    elsif new.account in ('WALLET', 'REFERRAL_BALANCE') then
        insert into referrer_stats (referrer_id, paid_earnings) values (new.user_id, new.amount)
        on conflict (referrer_id) do update
            set paid_earnings = referrer_stats.paid_earnings + new.amount;
    end if;
    return null;
end
$$;
create trigger ledger_entries_counted after insert on ledger_entries
    for each row execute function count_earnings();

-- Referrals made before the counters existed.
insert into referrer_stats (referrer_id, referrals, conversions)
select referred_by, count(*), count(converted_at) from users
where referred_by is not null group by referred_by;
insert into click_counts (referrer_id, shard, clicks)
select referrer_id, 0, count(*) from clicks group by referrer_id;
