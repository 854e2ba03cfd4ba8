-- 0014_record: each request's decision record (orchestrator_request_record), written with its
-- last checkpoint or its failure: the intent and how it was found, the tools and their outcomes,
-- the rule that decided and the values it read, the actions and what became of them, the reply's
-- template, and what every stage cost. The customer's text and the tools' rows are not in it (the
-- slots read from the text, the values the decision's checks read and the actions' parameters
-- are). `conveyor decisions` and `conveyor costs` read it; NULL for requests still running, and
-- for those that ended before this migration.

alter table requests add column record jsonb check (record is null or jsonb_typeof(record) = 'object');
