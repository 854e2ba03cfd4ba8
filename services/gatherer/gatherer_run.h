/* One request's plan in flight on the gatherer's loop: every tool whose inputs are ready started
   at once through its cache, breaker and retries (gatherer_call), each result recorded as it comes, and, when the last
   has come, the Evidence built in the worker call's reply and the call finished.

   The plan is a DAG (gatherer_tools.h): the tools that read no other start at once; when a tool
   another reads is done, its rows join the run's copy of the context as evidence.TOOL, and the
   tools whose inputs are now all done start. A tool whose input failed, timed out or is not
   there (a required path that finds nothing) does not run: it is FAILED, with an error naming
   the input and why ("input evidence.active_cards.0.id: active_cards returned no rows"). One
   still waiting when the request's deadline comes is TIMED_OUT ("the request's deadline came
   while it waited for active_cards ...").

   The run holds the request's cost budget (the GatherRequest Envelope's budget; none when it has
   none), and every call of the run reserves each attempt's cost from it (gatherer_call.h): one
   budget on the loop's thread, taken in the order attempts start. Of two tools that run side by
   side, the one started first (the earlier in the plan, when both start at once) gets the last
   of the budget; the other is OVER_BUDGET and never runs its query. A tool that reads an
   OVER_BUDGET tool does not run either: it is FAILED, naming its input ("input
   evidence.active_cards.0.id: active_cards was left undone: its call did not fit the request's
   budget"). Each ToolResult's cost_micros is what its calls cost.

   The Evidence has one ToolResult per tool, in the plan's order. Rows that would take it near
   CV_ENVELOPE_MAX_BYTES turn their tool FAILED; error texts are cut to CV_DETAIL_MAX_BYTES and made
   valid UTF-8 for the wire. Tools stop GATHERER_RUN_REPLY_MARGIN_MS before the request's deadline,
   so that the Evidence still arrives in time. */
#ifndef GATHERER_RUN_H
#define GATHERER_RUN_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_log.h"
#include "cv_worker.h"
#include "gatherer_call.h"
#include "gatherer_tools.h"

#define GATHERER_RUN_REPLY_MARGIN_MS 20

typedef struct _gatherer_run_t gatherer_run_t;

/* The run has finished its call and is about to be destroyed: the owner forgets it. */
typedef void (gatherer_run_over_fn) (void *owner, gatherer_run_t *run);

/* Starts plan's tools for call (a GatherRequest) over context (a reference is kept while a tool
   may retry; the caller must not change it) through env (borrowed; outlives the run), and
   returns; finishes call later, from the loop, then calls over with owner and destroys itself.
   An empty plan finishes from the loop too. The ToolResults' attempts, cached and breaker_open
   say what gatherer_call did. */
gatherer_run_t *gatherer_run_start (const gatherer_call_env_t *env, gatherer_plan_t plan, json_t *context,
                                    cv_worker_call_t *call, cv_log_t *log, gatherer_run_over_fn *over, void *owner);

/* Gives up on a run not over yet (the worker is stopping): its tools are forgotten, its call is
   not finished, over is not called. */
void gatherer_run_destroy (gatherer_run_t **self_p);

/* The wire text of errors (the run itself is driven by the gatherer's isolation test). */
void gatherer_run_test (bool verbose);

#endif
