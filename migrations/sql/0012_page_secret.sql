-- The key that signs the web pages' tokens (dashboard embed tokens, console sessions and
-- their CSRF tokens). One per installation, created by the first api process that needs
-- it and shared by every process through this row, so tokens made by one api replica
-- are good on all of them. Rotating it (deleting the row) signs everyone out.
create table page_secret (
    singleton boolean primary key default true check (singleton),
    secret bytea not null check (length(secret) >= 32),
    created_at timestamptz not null default now()
);
