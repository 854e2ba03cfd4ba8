/* POST /v1/tools/test: one intent's plan run by a gatherer, for an operator (`conveyor tools
   test`), answered with every tool's result and rows.

   A diagnostic, not a request: nothing is recorded (no request row, no checkpoint), no decision
   or reply follows, and nothing is acted on. One GatherRequest, marked diagnostic, goes through
   the broker to a gatherer as a stage does (attempts, retries, the request timeout as its
   deadline); the gatherer answers it as it would a pipeline request for that intent, with
   confidence 1, the slots given and the text given (the intent's name when none is). It reads
   only what that user's own request for that intent would read, and the API has no operator
   guard yet: deploy the HTTP port where only trusted clients reach it, as for every route.

   Answers:
     200  {"user_id", "intent", "duration_ms" (the gatherer's round trip), "tools": [{"name",
          "status" (ok, failed, timed_out), "duration_ms", "attempts", "cached", "breaker_open",
          "rows" (the tool's rows themselves, as JSON; [] when it has none), "error" (null when
          none)}]}, the tools in the plan's order
     400  a body that breaks orchestrator_api_parse_tool_test's rules (invalid_field), or an
          intent the gatherer's agent file plans no tools for (unknown_intent, naming it)
     503  no gatherer connected (no_gatherer), with Retry-After
     502  the gatherer refused it or answered garbage, or every attempt failed; 504 the deadline
          passed */
#ifndef ORCHESTRATOR_TOOLCHECK_H
#define ORCHESTRATOR_TOOLCHECK_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_envelope.h"
#include "cv_log.h"
#include "orchestrator_broker.h"
#include "orchestrator_http.h"

typedef struct _orchestrator_toolcheck_t orchestrator_toolcheck_t;

/* broker and log are borrowed and must outlive it; timeout_ms bounds each test. */
orchestrator_toolcheck_t *orchestrator_toolcheck_new (orchestrator_broker_t *broker, int timeout_ms, cv_log_t *log);
/* Forgets the tests in flight (their exchanges were answered by the HTTP front door's stop). */
void orchestrator_toolcheck_destroy (orchestrator_toolcheck_t **self_p);

/* Runs the tool test body asks for (body borrowed, may be NULL) and answers exchange when it ends. */
void orchestrator_toolcheck_start (orchestrator_toolcheck_t *self, orchestrator_exchange_t *exchange, json_t *body);

/* The 200 document for evidence (borrowed); a new reference. */
json_t *orchestrator_toolcheck_document (const char *user_id, const char *intent,
                                         const Conveyor__V1__Evidence *evidence, double duration_ms);

void orchestrator_toolcheck_test (bool verbose);

#endif
