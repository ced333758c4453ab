-- Signatures of the partner agreement (SPEC: Partner program): which agreement (version
-- and SHA-256 of its text), the typed full name, and when, from where and with what
-- browser it was signed. A user may sign again after going back to Basic, so every
-- signature is kept.
create table partner_signatures (
    id uuid primary key,
    user_id uuid not null references users (id),
    agreement_version text not null,
    agreement_sha256 text not null check (agreement_sha256 ~ '^[0-9a-f]{64}$'),
    full_name text not null,
    ip text,
    user_agent text,
    signed_at timestamptz not null
);
create index partner_signatures_by_user on partner_signatures (user_id, signed_at desc);
