-- 0009_limits: requests stopped by their cost budget or their stage-attempt limit.
--
-- A request whose stage would have spent more than its budget left (an LLM call, a paid tool
-- call), or that used up its stage attempts, stops before its later stages: its reply says it
-- could not be finished here, and it ends as 'over_budget' or 'out_of_attempts'. Each checkpoint
-- records how many attempts its stage took (0: the orchestrator's own result, which no worker was
-- asked for, or a checkpoint an approval's follow-up copied from its parent), and the request's
-- last write the attempts of the stage that failed for good, which left no checkpoint: read
-- back, a request counts the attempts it used.

alter table requests drop constraint requests_status_check;
alter table requests add constraint requests_status_check
    check (status in ('running', 'done', 'failed', 'pending_approval', 'over_budget', 'out_of_attempts'));
alter table checkpoints add column attempts int not null default 1 check (attempts >= 0);

-- The limits a request was given, kept with it: a request read back (to resume it, or to show it)
-- is replayed under the limits it ran under, whatever the orchestrator is configured with now.
alter table requests
    add column budget_micros bigint check (budget_micros >= 0),       -- null: no cost budget
    add column max_attempts  int not null default 0 check (max_attempts >= 0),  -- 0: no limit
    add column lost_attempts int not null default 0 check (lost_attempts >= 0); -- of a stage that failed for good
