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
} orchestrator_submission_t;

/* Checks body: an object with user_id and text (required), session_id, idempotency_key and
   budget (optional), nothing else; ids 1..64 of [A-Za-z0-9_.:-]; text 1..CV_TEXT_MAX_BYTES bytes
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
