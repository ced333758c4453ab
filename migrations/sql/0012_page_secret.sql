-- The key that signs the web pages' tokens (dashboard embed tokens, console sessions and
-- their CSRF tokens). One per installation, created by the first api process that needs
-- it and shared by every process through this row, so tokens made by one api replica
-- are good on all of them. Production sets PAGE_SECRET instead (the api then never
-- reads this table), so that reading the database is not enough to sign tokens.
-- Rotating a stored secret: delete the row and restart every api process (each keeps
-- the secret it read); every token and console session ends.
create table page_secret (
    singleton boolean primary key default true check (singleton),
    secret bytea not null check (length(secret) >= 32),
    created_at timestamptz not null default now()
);
