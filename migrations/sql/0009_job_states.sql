-- apalis's job rows as operators read them, with the one definition of a job's state:
-- `done`; `running` (claimed or running); `failed` once it will not run again by itself
-- (out of attempts, or aborted); otherwise `scheduled` while due later (a retry waiting out
-- its backoff included) or `pending` when due.
create view job_states as
select id,
       job_type as queue,
       status,
       attempts,
       max_attempts,
       run_at,
       case when status = 'Done' then 'done'
            when status in ('Queued', 'Running') then 'running'
            when status = 'Killed' or (status = 'Failed' and attempts >= max_attempts) then 'failed'
            when run_at > now() then 'scheduled'
            else 'pending' end as state,
       last_result::text as last_error,
       convert_from(job, 'UTF8') as payload,
       done_at
from apalis.jobs;
