-- Stripe Connect and payouts (SPEC: Partner program, Payouts).

-- One Express connected account per user. What Stripe last told us about it, through
-- `account.updated`, decides whether a payout may be requested.
create table stripe_accounts (
    user_id uuid primary key references users (id),
    account_id text not null,
    payouts_enabled boolean not null default false,
    requirements_due text[] not null default '{}',
    -- `created` of the newest event applied, so an older event delivered late never
    -- overwrites a newer state.
    stripe_state_at timestamptz,
    created_at timestamptz not null,
    constraint stripe_accounts_account_id_unique unique (account_id)
);

-- Every Stripe event applied, so a redelivered event changes nothing.
create table stripe_events (
    event_id text primary key,
    event_type text not null,
    received_at timestamptz not null
);

create table payouts (
    id uuid primary key,
    user_id uuid not null references users (id),
    amount numeric(12, 2) not null check (amount > 0),
    currency text not null check (currency = 'USD'),
    status text not null check (status in ('REQUESTED', 'PROCESSING', 'PAID', 'FAILED')),
    stripe_account_id text not null,
    transfer_id text,
    stripe_payout_id text,
    -- When the money reached the connected account but not the bank, it is taken back.
    transfer_reversal_id text,
    arrival_earliest date,
    arrival_latest date,
    failure_reason text,
    requested_at timestamptz not null,
    processing_at timestamptz,
    finished_at timestamptz,
    constraint payouts_transfer_id_unique unique (transfer_id),
    constraint payouts_stripe_payout_id_unique unique (stripe_payout_id),
    -- A payout may fail before it was ever sent (Stripe refused the transfer for good).
    constraint payouts_times_follow_status check (case status
        when 'REQUESTED' then processing_at is null and finished_at is null
        when 'PROCESSING' then processing_at is not null and finished_at is null
        when 'PAID' then processing_at is not null and finished_at is not null
        else finished_at is not null end)
);
create index payouts_by_user on payouts (user_id, requested_at desc, id desc);
create index payouts_in_flight on payouts (status) where status in ('REQUESTED', 'PROCESSING');

-- A payout's money: out of the referral balance into PAYOUT_IN_FLIGHT on request, then out
-- of it when paid, or back to the referral balance when it failed.
alter table ledger_entries add column payout_id uuid references payouts (id);
alter table ledger_entries drop constraint ledger_entries_account_check;
alter table ledger_entries add constraint ledger_entries_account_check
    check (account in ('WALLET', 'REFERRAL_BALANCE', 'COMMISSION_PENDING', 'COMMISSION_ELIGIBLE',
                       'PAYOUT_IN_FLIGHT'));
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check
    check (kind in ('CREDIT_GRANTED', 'CREDIT_SPENT', 'CREDIT_EXPIRED',
                    'COMMISSION_PENDING', 'COMMISSION_ELIGIBLE', 'COMMISSION_PAID',
                    'COMMISSION_CANCELLED', 'COMMISSION_REVERSED',
                    'PAYOUT_REQUESTED', 'PAYOUT_PAID', 'PAYOUT_FAILED'));
create index ledger_entries_by_payout on ledger_entries (payout_id) where payout_id is not null;

-- E-mails carry an HTML alternative beside the plain text.
alter table emails add column html_body text;
