-- 0013_trace: what a request's trace is made from (common/cv_trace.h).
--
-- A request's own span runs from created_at (now written by the orchestrator, the moment the
-- request arrived) to finished_at; each stage's from its checkpoint's started_at (when the
-- orchestrator first sent it to a worker) for elapsed_us; the workers' spans (tool calls, LLM calls)
-- travel in the checkpoint's body. The span ids are derived from the request's id, so only the
-- span the request arrived under (a W3C traceparent's parent id) is kept: parent_span_id, NULL
-- when it came without one. A follow-up's is its parent request's span. Checkpoints written before
-- this migration, and those a follow-up copies from its parent, have no started_at.

alter table requests add column parent_span_id text
    check (parent_span_id is null or parent_span_id ~ '^[0-9a-f]{16}$');
alter table checkpoints add column started_at timestamptz;
