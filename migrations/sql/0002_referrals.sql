-- Users of the platform: referrers and referred users alike.
create table users (
    id uuid primary key,
    platform_user_id text not null unique,
    email text not null,
    email_normalized text not null,
    referral_code text not null unique,
    referred_by uuid references users (id),
    attributed_click_id uuid,
    signed_up_at timestamptz not null,
    converted_at timestamptz,
    created_at timestamptz not null default now()
);
create unique index users_email_unique on users (lower(email));
create index users_email_normalized on users (email_normalized);
create index users_referred_by on users (referred_by, signed_up_at desc, id)
    where referred_by is not null;

-- Clicks on referral links: the highest-volume write, one insert each.
create table clicks (
    id uuid primary key,
    referrer_id uuid not null references users (id),
    clicked_at timestamptz not null,
    source text not null check (source in ('redirect', 'api')),
    ip text,
    user_agent text,
    referer text,
    landing_page text,
    signed_up_user_id uuid references users (id)
);
create index clicks_by_referrer on clicks (referrer_id, clicked_at desc, id);

alter table users add constraint users_attributed_click_fk
    foreign key (attributed_click_id) references clicks (id);

-- Wallet credit grants; `remaining` is kept equal to the sum of the grant's ledger entries.
create table credit_grants (
    id uuid primary key,
    user_id uuid not null references users (id),
    reason text not null check (reason in ('SIGNUP')),
    amount numeric(12, 2) not null check (amount > 0),
    remaining numeric(12, 2) not null check (remaining >= 0 and remaining <= amount),
    currency text not null check (currency = 'USD'),
    granted_at timestamptz not null,
    expires_at timestamptz not null,
    expired_at timestamptz
);
create unique index credit_grants_one_signup_grant on credit_grants (user_id) where reason = 'SIGNUP';
create index credit_grants_spendable on credit_grants (user_id, expires_at) where expired_at is null;

-- A spend of wallet credit, idempotent by (user, reference).
create table credit_spends (
    id uuid primary key,
    user_id uuid not null references users (id),
    reference text not null,
    amount numeric(12, 2) not null check (amount > 0),
    currency text not null check (currency = 'USD'),
    spent_at timestamptz not null,
    unique (user_id, reference)
);

-- Every movement of money. Append-only: amounts are signed, + into the account.
create table ledger_entries (
    id bigint generated always as identity primary key,
    user_id uuid not null references users (id),
    account text not null check (account in ('WALLET', 'REFERRAL_BALANCE')),
    kind text not null check (kind in ('CREDIT_GRANTED', 'CREDIT_SPENT', 'CREDIT_EXPIRED')),
    amount numeric(12, 2) not null check (amount <> 0),
    currency text not null check (currency = 'USD'),
    credit_grant_id uuid references credit_grants (id),
    credit_spend_id uuid references credit_spends (id),
    occurred_at timestamptz not null,
    created_at timestamptz not null default now()
);
create index ledger_entries_by_account on ledger_entries (user_id, account, occurred_at, id);
create index ledger_entries_by_grant on ledger_entries (credit_grant_id) where credit_grant_id is not null;

create function ledger_entries_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'ledger_entries is append-only';
end
$$;
create trigger ledger_entries_append_only before update or delete on ledger_entries
    for each row execute function ledger_entries_append_only();
