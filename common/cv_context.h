/* The JSON context that rules and templates read: one customer request's text, intent, evidence
   and decision, as the decision and responder workers (and the gatherer's tool parameters) see it.

     { "user_id": "cust-1", "text": "...",
       "intent":   { "name", "confidence", "method", "low_confidence", "slots": {...} },
       "evidence": { TOOL: [row, ...] },                  -- tools that succeeded
       "tools":    { TOOL: { "status": "ok"|"failed"|"timed_out", "error": "..." } },
       "decision": { "outcome", "rule", "reason", "actions": [ { "id", "kind", "params" } ] } }

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
/* The name of a tool status: ok, failed, timed_out. */
const char *cv_context_tool_status_name (Conveyor__V1__ToolResult__Status status);

void cv_context_test (bool verbose);

#endif
