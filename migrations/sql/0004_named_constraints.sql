-- Unique rules get names of our own, so code that maps a violation to a client error
-- never depends on the names Postgres generates.
alter table users rename constraint users_platform_user_id_key to users_platform_user_id_unique;
alter table credit_spends rename constraint credit_spends_user_id_reference_key to credit_spends_reference_unique;

-- A spend's first answer is repeated to every replay of its reference, so what was
-- available right after it is kept (unknown for spends recorded before this column).
alter table credit_spends add column available_after numeric(12, 2)
    check (available_after is null or available_after >= 0);
