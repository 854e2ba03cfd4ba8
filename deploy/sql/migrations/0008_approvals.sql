-- 0008_approvals: actions that wait for a person's approval.
--
-- A request whose decision has an action that needs approval performs none of its actions: its
-- execute checkpoint holds the orchestrator's own results (pending_approval), its reply says what
-- happens next, and it ends as 'pending_approval'. An operator's approval or rejection (or its
-- expiry) marks those actions approved or rejected, with who and when, the request 'done', and
-- starts a follow-up request: its parent's first three checkpoints and action rows copied, its
-- `approval` saying what was decided. Approved, it performs the actions under its own keys and
-- answers; rejected, it answers that nothing was done. A request has at most one follow-up.

alter table requests drop constraint requests_status_check;
alter table requests add constraint requests_status_check
    check (status in ('running', 'done', 'failed', 'pending_approval'));
alter table requests
    add column parent_id text references requests (id) on delete cascade,
    add column approval  text check (approval in ('approved', 'rejected')),
    add column approver  text,
    add constraint requests_follow_up check ((parent_id is null) = (approval is null));
create unique index requests_one_follow_up on requests (parent_id) where parent_id is not null;

alter table actions add column decided_at timestamptz;  -- when a person (or the expiry) decided

-- The approvals queue, and the expiry's scan, read requests waiting for a person.
create index requests_pending_approval on requests (finished_at) where status = 'pending_approval';
