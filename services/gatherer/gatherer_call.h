/* One tool of a request run through its protections (gatherer_resilience.h), whatever its kind:

     cached OK result for its key?  --yes--> served (cached, 0 attempts, costs nothing)
       | no
     its cost fits the budget?      --no---> OVER_BUDGET at once (not run, 0 attempts)
       | yes: reserved
     breaker allows?                --no---> FAILED at once (breaker_open, 0 attempts; the
       | yes                                 reservation given back)
     attempt: start the tool, hear its result
       | a failure of what it calls (connection, timeout, HTTP 5xx/429), attempts left, and
       | cv_backoff_next's wait leaves time before the deadline: wait on a zloop timer, reserve
       | the cost again (OVER_BUDGET when it does not fit: not retried, the attempts made so far
       | and the last failure in its error), ask the breaker again, attempt again
       v
     the last attempt's result (attempts: every try), cached when OK and the tool is cached

   Cost: every attempt reserves the tool's cost_micros (gatherer_tools.h) from the request's
   budget (cv_budget.h) before it starts, and what does not fit is not started. An attempt never
   sent (no connection came in time) gives its reservation back, so the result's cost_micros is
   the cost times its attempts. The budget is the run's, on the loop's thread: the calls of one
   request reserve from it in the order their attempts start, so of two tools running side by
   side, the one whose attempt starts first gets the last of the budget (gatherer_run.h).

   An attempt is the only place that knows kinds: sql and kb_search go to gatherer_sql; a new
   kind adds its start and forget there and fills the same gatherer_result_t (status,
   dependency, failure, http_status, retry_after_ms). The breaker hears every attempt: a failure
   of what the tool calls counts against it, anything else (an OK, an SQL error: the dependency
   answered) is a success.

   The cache key is the tool's name, its parameters' values (as JSON text, fixed ones as their
   text) and, for a personal tool, the request's user_id: one customer's result is never served
   to another. Results are heard exactly once, from a callback of the loop, never from inside
   gatherer_call_start. */
#ifndef GATHERER_CALL_H
#define GATHERER_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>
#include <jansson.h>

#include "cv_backoff.h"
#include "cv_breaker.h"
#include "cv_budget.h"
#include "cv_cache.h"
#include "cv_log.h"
#include "cv_pgpool.h"
#include "gatherer_http.h"
#include "gatherer_sql.h"
#include "gatherer_tools.h"

/* Where a loop's tools run, and what protects them (plain data, borrowed; outlives the calls). */
typedef struct {
    zloop_t *loop;
    cv_pgpool_t *pool;             /* sql and kb_search tools run here ... */
    cv_http_t *http;               /* ... http ones here (NULL when the agent file has none) */
    cv_cache_t *cache;             /* this loop's results, or NULL: nothing cached */
    cv_backoff_rng_t *rng;         /* this loop's */
    const gatherer_tools_t *tools; /* whose tools the breakers are for; NULL: no breakers */
    cv_breaker_t *const *breakers; /* per tool of tools (gatherer_tools_index); thread-safe, shared */
    cv_log_t *log;                 /* where a breaker opening or closing is told, or NULL */
} gatherer_call_env_t;

typedef struct _gatherer_call_t gatherer_call_t;

/* The tool's result is in (the caller's result, given to gatherer_call_start). The call is gone. */
typedef void (gatherer_call_done_fn) (void *arg);

/* Starts tool over context (a reference is kept for retries: it must not change the values the
   tool's parameters read) and returns; fills *result and calls done with arg once, later, from a
   callback of env's loop. deadline_us: the request's deadline on the zclock_usecs clock, 0 for
   none; no attempt starts after it. budget: the request's (borrowed; outlives the call), from
   which each attempt reserves the tool's cost. */
gatherer_call_t *gatherer_call_start (const gatherer_call_env_t *env, const gatherer_tool_t *tool, json_t *context,
                                      int64_t deadline_us, cv_budget_t *budget, gatherer_result_t *result,
                                      gatherer_call_done_fn *done, void *arg);

/* Gives up on a call not done yet: done is never called, result is left as it is, what runs is
   abandoned, and the call is gone. */
void gatherer_call_forget (gatherer_call_t *call);

/* Whether an attempt's result is a failure of what the tool calls (for the breaker and retries). */
bool gatherer_call_dependency_failed (const gatherer_result_t *attempt);

/* Makes the tool metrics' families and shows each of tools' breakers closed, so that a scrape
   shows them before any call. */
void gatherer_call_metrics_start (const gatherer_tools_t *tools);

void gatherer_call_test (bool verbose);

#endif
