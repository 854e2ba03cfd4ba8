-- 0010_stage_failed: requests answered although a stage before the reply failed.
--
-- A stage before the reply that fails for good (no answer before its deadline, its workers gone,
-- an Error or an answer that breaks the schema) no longer fails the request: it stops, and its
-- reply says honestly that the look-up, the decision or the action could not be completed and
-- what happens next. It ends as 'stage_failed', with the stage's error in requests.error; the
-- stage left no checkpoint, so read back, its reply follows the last stage that answered.

alter table requests drop constraint requests_status_check;
alter table requests add constraint requests_status_check
    check (status in ('running', 'done', 'failed', 'pending_approval', 'over_budget', 'out_of_attempts',
                      'stage_failed'));
