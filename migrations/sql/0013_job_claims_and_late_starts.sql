-- Cheaper claims (numbers in BENCHMARKS.md, "Job pipeline"), and a race closed.
--
-- 1. apalis-postgres keeps a foreign key from `jobs.lock_by` to `workers.id`. Postgres
--    checks it for every row a claim updates (a lookup of the worker's row, locked
--    `for key share`), which was a third of a 100-row claim's time. Every claim names
--    the worker that makes it, registered by apalis before it fetches, and worker rows
--    are never deleted, so the check can never fail; rows of a vanished worker are found
--    by its silence (`last_seen`), not by this key.
alter table apalis.jobs drop constraint if exists fk_worker_lock_by;

-- 2. The claim as PL/pgSQL: a SQL function's statements are planned again at every
--    call, a PL/pgSQL function's plans are kept for the connection. Same claim as
--    migration 0010's.
create or replace function apalis.get_jobs(
    worker_id text,
    v_job_type text,
    v_job_count integer default 5
)
returns setof apalis.jobs
language plpgsql
volatile
as $$
begin
    -- See migration 0010: a claim need not wait for the disk, its acknowledgement does.
    perform set_config('synchronous_commit', 'off', true);
    return query
    update apalis.jobs
    set status = 'Queued',
        lock_by = worker_id,
        lock_at = now()
    where id = any(array(
        select id
        from apalis.jobs
        where (status = 'Pending' or (status = 'Failed' and attempts < max_attempts))
          and run_at < now()
          and job_type = v_job_type
        order by run_at
        limit v_job_count
        for update skip locked))
    returning *;
end
$$;

-- 3. A late "started" event takes no row. apalis writes an attempt's start (status
--    `Running`, `lock_by` = its worker) lazily, and its statement accepts any row that
--    looks claimable and is due, `Pending` ones included. A timer woken early goes back
--    to `Pending` with no worker; if it was made due again (an operator's "run now",
--    or a start written more than a second late) before that event was written, the
--    event took the row as `Running` for the early attempt's worker, and that
--    attempt's acknowledgement then marked it `Done`: a timer finished without firing.
--    Only a claimed row (`Queued`) starts running.
create function referral_jobs_ignore_late_start() returns trigger
language plpgsql as $$
begin
    return null;
end
$$;

create trigger referral_jobs_ignore_late_start
    before update of status on apalis.jobs
    for each row
    when (new.status = 'Running' and old.status in ('Pending', 'Failed'))
    execute function referral_jobs_ignore_late_start();
