/* The JSON context that rules and templates read: one customer request's text, intent, evidence
   and decision, as the decision and responder workers (and the gatherer's tool parameters) see it.

     { "user_id": "cust-1", "text": "...",
       "intent":   { "name", "confidence", "method", "low_confidence", "slots": {...} },
       "evidence": { TOOL: [row, ...] },                  -- tools that succeeded
       "tools":    { TOOL: { "status": "ok"|"failed"|"timed_out"|"over_budget", "error": "..." } },
       "decision": { "outcome", "rule", "reason", "actions": [ { "id", "kind", "params", "requires_approval" } ],
                     "log": { "rule", "now", "checked", "values" } },  -- services/decision/decision_policy.h
       "stopped":  "over_budget"|"out_of_attempts" }      -- the responder's, for a request stopped early

   cv_context_add_action_results adds what the executor did to each action and to the decision:
       action:   "status": "done"|"refused"|"failed"|"not_performed", "reason": "...",
                 "replayed": bool, "result": { what the bank returned, {} when nothing }
       decision: "actions_status": the worst of its actions' statuses, in the order failed,
                 not_performed, refused, done; "none" when it has no actions.

   Sections whose message is NULL are left out. */
#ifndef CV_CONTEXT_H
#define CV_CONTEXT_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_envelope.h"

/* A new context; NULL with err when a msgpack field does not decode (validated messages always do). */
json_t *cv_context_new (const char *user_id, const char *text, const Conveyor__V1__Intent *intent,
                        const Conveyor__V1__Evidence *evidence, const Conveyor__V1__Decision *decision,
                        cv_error_t *err) CV_MUST_CHECK;

/* The intent the stages after intent act on: the intent's name, or NULL when the context has
   none or it is a low-confidence guess. A guess is not acted on (the decision worker hands it to
   a person): the gatherer runs no tools for it, and only policies that name no intent take it.
   The name is borrowed from context. */
const char *cv_context_acted_intent (const json_t *context);

/* The name of an intent method as written in contexts and the HTTP API: rule, model, llm, fallback. */
const char *cv_context_method_name (Conveyor__V1__Intent__Method method);
/* The name of a tool status: ok, failed, timed_out, over_budget. */
const char *cv_context_tool_status_name (Conveyor__V1__ToolResult__Status status);
/* Why a request stopped before its later stages: over_budget, out_of_attempts, stage_failed;
   NULL when it did not (STOP_UNSPECIFIED). Its context then holds "stopped": that name (and, for
   stage_failed, "failed_stage": the stage's name). */
const char *cv_context_stop_name (Conveyor__V1__RespondRequest__Stop stopped);
/* The name of a reply's rung (ReplyStep.rung): llm, llm_fallback, template, static, handoff;
   NULL for none. */
const char *cv_context_rung_name (Conveyor__V1__ReplyStep__Rung rung);
/* The name of an action's outcome: done, refused, failed. */
const char *cv_context_action_outcome_name (Conveyor__V1__ActionResult__Outcome outcome);

/* Adds the executor's results to the decision of context (from cv_context_new): each action gets
   the status of the result whose action_id names it, "not_performed" when none does, and the
   decision its actions_status (shape above). A context without a decision is left as it is.
   -1 with err when a result's msgpack does not decode (validated messages always do). */
int cv_context_add_action_results (json_t *context, Conveyor__V1__ActionResult *const *results, size_t count,
                                   cv_error_t *err) CV_MUST_CHECK;

void cv_context_test (bool verbose);

#endif
