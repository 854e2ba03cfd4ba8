/* The HTTP API's input rules: what a POST /v1/requests or POST /v1/tools/test body must hold,
   checked field by field, so that bad input gets a 4xx naming the field and never reaches a worker. */
#ifndef ORCHESTRATOR_API_H
#define ORCHESTRATOR_API_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_error.h"

/* A checked submission; the strings are borrowed from the JSON body. */
typedef struct {
    const char *user_id;
    const char *text;
    const char *session_id;      /* NULL when absent */
    const char *idempotency_key; /* NULL when absent */
    bool has_budget;             /* a cost budget of its own ... */
    uint64_t budget_micros;      /* ... of this many micros */
    json_t *context;             /* the earlier turns kept (orchestrator_api_context); a new
                                    reference, the caller's to release; NULL when none */
} orchestrator_submission_t;

/* The session's context from the first count entries of messages (an array of chat messages,
   {"role", "content"}, oldest first; borrowed): the user's and the assistant's turns with text, as
   a new array of {"role", "content"} objects, oldest first, or NULL when there is none. Other
   roles (system, developer, tool: the client's instructions are not the agent's) and turns whose
   content is not a string (an assistant's tool calls) are left out; so are the oldest turns beyond
   CV_CONTEXT_TURNS_MAX, a turn over CV_REPLY_MAX_BYTES and all before it, and those that would take
   the whole over CV_CONTEXT_MAX_BYTES: the latest turns are the ones a reply needs. -1 with err,
   its field "<field>[i]" or "<field>[i].content", for an entry that is not an object with a role
   string, or a kept role's content with a NUL. */
int orchestrator_api_context (const json_t *messages, size_t count, const char *field, json_t **context,
                              cv_error_t *err) CV_MUST_CHECK;

/* Checks body: an object with user_id and text (required), session_id, idempotency_key, budget and
   context (optional: an array of chat messages, the conversation before text, as
   orchestrator_api_context reads it), nothing else; ids 1..64 of [A-Za-z0-9_.:-]; text 1..CV_TEXT_MAX_BYTES bytes
   with no NUL (JSON parsing already rejected invalid UTF-8); budget a number of cost units,
   0..CV_BUDGET_MAX_UNITS. -1 with err naming the field otherwise. */
int orchestrator_api_parse_submission (json_t *body, orchestrator_submission_t *submission,
                                       cv_error_t *err) CV_MUST_CHECK;

/* value is a customer's text: a string of 1..CV_TEXT_MAX_BYTES bytes, not only blanks, with no
   NUL; -1 with err naming field otherwise. */
int orchestrator_api_check_text (json_t *value, const char *field, cv_error_t *err) CV_MUST_CHECK;

/* A checked tool test; the strings and slots are borrowed from the JSON body. */
typedef struct {
    const char *user_id;
    const char *intent;
    const char *text;    /* the intent's name when absent */
    const json_t *slots; /* an object of strings, numbers and booleans; NULL when absent */
} orchestrator_tool_test_t;

/* Checks body: an object with user_id and intent (required, names as above), slots (optional, an
   object whose keys are names and whose values are strings, numbers or booleans) and text
   (optional, as a submission's), nothing else. -1 with err naming the field otherwise. */
int orchestrator_api_parse_tool_test (json_t *body, orchestrator_tool_test_t *test, cv_error_t *err) CV_MUST_CHECK;

void orchestrator_api_test (bool verbose);

#endif
