-- API keys: only the SHA-256 of a key is stored.
create table api_keys (
    id uuid primary key,
    name text not null,
    role text not null check (role in ('platform', 'admin')),
    key_hash text not null unique,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

-- Outgoing e-mails, written with the change that causes them and sent by a job.
create table emails (
    id uuid primary key,
    to_address text not null,
    subject text not null,
    body text not null,
    created_at timestamptz not null,
    sent_at timestamptz
);
