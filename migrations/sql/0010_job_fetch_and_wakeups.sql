-- Changes to the job queue's table, which apalis-postgres 1.0 owns, for speed (numbers in
-- BENCHMARKS.md); each is pinned by worker/tests/apalis_contract.rs.
--
-- 1. A fetch that reads only what it takes. apalis's fetch (`apalis.get_jobs`) orders a
--    queue's claimable rows by `priority desc, run_at` over an index on
--    (job_type, priority, run_at), so its `run_at < now()` condition cannot end the scan:
--    an idle fetch walked every waiting row of its queue, a million 30-day timers
--    included. We never set a priority (every row has 0), so ordering by `run_at` alone
--    claims in the same order, and over (job_type, run_at) the scan stops at the first
--    row not yet due. The old index then serves no query and only costs writes.
--    The claimed ids go through an array rather than a join: the planner cannot see
--    through the function's LIMIT and, guessing a tenth of the queue, joined the claimed
--    rows to a scan of the whole table.
--    Built inside the migration's transaction: writes to apalis.jobs wait for it (a
--    second or two per million rows), which a deploy can afford.
create index referral_jobs_claimable on apalis.jobs (job_type, run_at)
    where status = 'Pending' or (status = 'Failed' and attempts < max_attempts);

drop index apalis.idx_apalis_jobs_fetch_partial;

create or replace function apalis.get_jobs(
    worker_id text,
    v_job_type text,
    v_job_count integer default 5
)
returns setof apalis.jobs
language sql
volatile
as $$
    -- A claim need not wait for its commit to reach the disk (apalis commits it alone):
    -- the acknowledgement that follows is committed durably, and the log is written in
    -- order, so a durable acknowledgement implies a durable claim. A claim lost in a
    -- crash only makes its job claimable again, as a crash mid-job does (delivery is at
    -- least once).
    select set_config('synchronous_commit', 'off', true);
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
$$;

-- 2. Acknowledgements that read only what they name. `lock_by` names the worker holding a claimed row, and apalis never clears it: its
-- index grew with every job a worker ever finished, and the acknowledgement (which looks
-- rows up by id and `lock_by`) was planned over it or, when statistics said `lock_by` was
-- always null, over a scan of the whole table — reading the queue's history at every
-- acknowledgement. A row that is no longer claimed now lets go of its worker (a job
-- failing with attempts left is claimed afresh, under its new worker's name), so the
-- rows with a `lock_by` are the ones in flight, and a small index over them serves every
-- statement that names a worker.
create function referral_jobs_release_worker() returns trigger
language plpgsql as $$
begin
    new.lock_by := null;
    return new;
end
$$;

create trigger referral_jobs_release_worker
    before update of status on apalis.jobs
    for each row
    when (new.status not in ('Queued', 'Running') and new.lock_by is not null)
    execute function referral_jobs_release_worker();

update apalis.jobs set lock_by = null
where status not in ('Queued', 'Running') and lock_by is not null;

drop index apalis.idx_apalis_jobs_lock_by;
drop index apalis.lidx;
-- A second unique index on `id`, beside the primary key: one more index to write at
-- every claim and acknowledgement, for nothing.
drop index apalis.unique_job_id;

create index referral_jobs_claimed on apalis.jobs (lock_by) where lock_by is not null;

-- 3. Idle workers wait for a notification instead of polling. Channel `referral_jobs`,
--    payload "<queue> <milliseconds until due>" (negative when due already), sent at
--    commit whenever rows become claimable: once per queue per insert statement, and for
--    each row an update makes claimable or moves in time (a retry, a timer re-armed, a
--    job re-queued from a dead worker). A worker wakes at once for a job due now and sets
--    a timer for one due later.
--
--    apalis's own trigger (a notification per inserted row, carrying its id, for a
--    listener we do not use) goes: a batch of 1,000 jobs would queue 1,000 notifications.
drop trigger notify_workers on apalis.jobs;

create function referral_jobs_notify_inserted() returns trigger
language plpgsql as $$
begin
    perform pg_notify('referral_jobs', job_type || ' ' ||
                      round(extract(epoch from min(run_at) - clock_timestamp()) * 1000)::bigint)
    from inserted
    where status = 'Pending'
    group by job_type;
    return null;
end
$$;

create trigger referral_jobs_inserted
    after insert on apalis.jobs
    referencing new table as inserted
    for each statement execute function referral_jobs_notify_inserted();

create function referral_jobs_notify_claimable() returns trigger
language plpgsql as $$
begin
    perform pg_notify('referral_jobs', new.job_type || ' ' ||
                      round(extract(epoch from new.run_at - clock_timestamp()) * 1000)::bigint);
    return null;
end
$$;

create trigger referral_jobs_claimable
    after update of status, run_at on apalis.jobs
    for each row
    when ((new.status = 'Pending' or (new.status = 'Failed' and new.attempts < new.max_attempts))
          and (old.status is distinct from new.status or old.run_at is distinct from new.run_at))
    execute function referral_jobs_notify_claimable();

