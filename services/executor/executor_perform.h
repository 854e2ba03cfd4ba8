/* Performs the actions of one ExecuteRequest on the executor's connection pool (cv_pgpool, on the
   worker's loop), in order, one after another: an action may depend on the one before it (freeze
   a card, then order its replacement). Every action gets an ActionResult, whatever happens:

     DONE / REFUSED  the bank's answer (executor_outcome.h), replayed when its key was applied
                     before;
     FAILED          an unknown kind, an SQL error, an answer not of the bank's form, the
                     request's deadline too near to send it, or PostgreSQL out of reach or
                     too slow on every attempt (the statement may then have been applied: the
                     same key replays it).

   A connection failure or a timeout is retried with the kind's schedule (cv_backoff), within the
   request's deadline less EXECUTOR_REPLY_MARGIN_MS, kept for the answer to reach the orchestrator
   in time (an answer after the deadline is lost, and the orchestrator knows nothing of what was
   done); the idempotency key makes a second attempt a replay, never a second
   change. The request itself never fails for one action: ActionResults finishes the call.

   No self-test: a run needs a worker's call, so tests/isolation/executor_test.c drives runs
   through the worker over sockets, against the fixture's PostgreSQL and one out of reach. */
#ifndef EXECUTOR_PERFORM_H
#define EXECUTOR_PERFORM_H

#include <stdbool.h>

#include <czmq.h>

#include "cv_backoff.h"
#include "cv_log.h"
#include "cv_pgpool.h"
#include "cv_worker.h"
#include "executor_actions.h"

/* The time before the request's deadline kept for the answer: no statement is sent, or waited
   for, past the deadline less this. */
#define EXECUTOR_REPLY_MARGIN_MS 100

/* What every run of an event-loop thread shares (borrowed; all outlive the runs). */
typedef struct {
    zloop_t *loop;
    cv_pgpool_t *pool;
    cv_backoff_rng_t *rng;
    const executor_actions_t *actions;
    cv_log_t *log;
} executor_perform_env_t;

typedef struct _executor_perform_t executor_perform_t;

/* The run has finished its call; it is destroyed once this returns. */
typedef void (executor_perform_over_fn) (void *owner, executor_perform_t *run);

/* A run of call's ExecuteRequest (call must hold one), not started yet: the caller keeps it
   (in a list, say) before executor_perform_begin, which may finish it at once. */
executor_perform_t *executor_perform_new (const executor_perform_env_t *env, cv_worker_call_t *call,
                                          executor_perform_over_fn *over, void *owner);
/* Starts the first action; the last one's end finishes the call and calls over. */
void executor_perform_begin (executor_perform_t *self);
/* Gives up on a run not over yet (the worker is stopping): its statement is forgotten, its call
   left unfinished (the worker's), over never called. */
void executor_perform_destroy (executor_perform_t **self_p);

#endif
