-- What operators did to jobs (retry, discard): who, when, why, and the job as it was,
-- so a discarded job's payload and last error outlive its row.
create table job_actions (
    id uuid primary key,
    job_id text not null,
    queue text not null,
    action text not null check (action in ('RETRY', 'DISCARD')),
    actor text not null,
    reason text,
    payload text not null,
    last_error text,
    at timestamptz not null
);
create index job_actions_by_job on job_actions (job_id, at desc);
