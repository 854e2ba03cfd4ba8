-- 0011_escalated: requests handed off to a person.
--
-- The responder's ladder ends in the hand-off (the agent file's `fallback` text): when no LLM,
-- template or static text could answer a request that finished, its reply says a colleague will
-- take it over, and the request ends as 'escalated' for a person to pick up. Its reply's
-- checkpoint records the rungs tried and why each did not answer.

alter table requests drop constraint requests_status_check;
alter table requests add constraint requests_status_check
    check (status in ('running', 'done', 'failed', 'pending_approval', 'over_budget', 'out_of_attempts',
                      'stage_failed', 'escalated'));
