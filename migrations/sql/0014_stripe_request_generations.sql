-- The generation of each idempotency key a job sends to Stripe. Stripe stores the first
-- answer of a key, a definitive refusal included, and replays it for a day: a request
-- refused for good (say the connected account could not cover a reversal) and asked
-- again with the same key is refused again without Stripe looking. Once Stripe has
-- refused a key for good it did nothing under it, so the next request for the same work
-- may go out under a new key. A row exists only for a key that was refused; without one
-- the call's first key is in force. Automatic retries of failures that may have done the
-- work (time-outs, 5xx) never advance it.
create table stripe_request_generations (
    base_key text primary key,
    generation integer not null check (generation >= 1),
    refused_at timestamptz not null,
    last_refusal text not null
);
