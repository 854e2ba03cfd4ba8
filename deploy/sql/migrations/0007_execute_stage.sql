-- 0007_execute_stage: a request's actions are performed, as a stage of its own.
--
-- Between decide and respond the orchestrator sends the decision's actions to the executor and
-- checkpoints its answer as stage 'execute' (seq 4); respond is seq 5 from now on, also for a
-- request whose decision had no actions (which skips execute). A request checkpointed before
-- has its respond at seq 4: renumbered, so that one still running resumes where it was.
--
-- An action's row is committed, status 'recorded', with the decide checkpoint, before the
-- executor is asked; the execute checkpoint writes what became of it in the same statement:
-- done, refused (the bank's precondition no longer held, see reason) or failed, with the bank's
-- answer, whether it was a replay of an earlier attempt, how many attempts it took, and when.

alter table checkpoints drop constraint checkpoints_stage_check;
alter table checkpoints add constraint checkpoints_stage_check
    check (stage in ('intent', 'gather', 'decide', 'execute', 'respond'));
update checkpoints set seq = 5 where stage = 'respond' and seq = 4;

alter table actions drop constraint actions_status_check;
alter table actions add constraint actions_status_check check (status in (
    'recorded', 'pending_approval', 'approved', 'rejected', 'done', 'refused', 'failed'));
alter table actions
    add column reason       text,            -- refused: the bank's reason; failed: why
    add column replayed     boolean,         -- the bank had applied the action's key before
    add column attempts     int check (attempts >= 0),
    add column performed_at timestamptz;     -- when the executor's answer was checkpointed
