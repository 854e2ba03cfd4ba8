/* The orchestrator's PostgreSQL store: requests, their stage checkpoints (the stage result as the
   bytes the worker sent), the actions a decision took and what became of them, and the look-ups behind
   GET /v1/requests/{id} and recovery.

   Nothing here blocks the orchestrator's loop: every operation is queued on one of a small pool
   of connections in pipeline mode (cv_pgpipe) and answered later through a callback, once the
   transaction that carried it has committed. Operations that arrive while a transaction is in
   flight share the next one (group commit). The writes of one request always go to the same
   connection, so they commit in the order they were made.

   A checkpoint and its actions' rows (recorded with the decision, updated with the executor's
   answer), or the last checkpoint and the request's row marked done, are one statement: they commit together or not at
   all. The row is written only when the request is recorded and when it ends. Every statement is prepared once per
   connection, with the stage result as a binary parameter.

   While a connection is down every operation for it is refused at once (-1 with UNAVAILABLE), and
   orchestrator_store_available is false, so the caller can answer 503 instead of waiting. */
#ifndef ORCHESTRATOR_STORE_H
#define ORCHESTRATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_error.h"
#include "cv_log.h"
#include "orchestrator_request.h"

typedef struct _orchestrator_store_t orchestrator_store_t;

typedef struct {
    const char *url;              /* a libpq URI or key=value string */
    const char *application_name; /* in pg_stat_activity, with the connection's number */
    size_t connections;           /* default 2 */
    int timeout_ms;               /* a statement or a connection slower than this fails; default 5000 */
    size_t max_queued;            /* operations queued per connection before refusing; default 4096 */
    cv_log_t *log;                /* borrowed */
} orchestrator_store_config_t;

/* What an operation's callback gets. err is NULL when it succeeded. */
typedef struct {
    const cv_error_t *err;
    const char *existing_id;         /* create: the first request's id when the (user, idempotency
                                        key) was used before; NULL when this one was recorded */
    orchestrator_request_t *request; /* load: the request rebuilt from its row and checkpoints;
                                        the callback may take it (and set this to NULL) */
    const char **ids;                /* unfinished, expired: the ids, NULL-terminated, borrowed */
    const char *approval;            /* decide: the follow-up's approval, approved or rejected
                                        (existing_id its id) */
    bool made;                       /* decide: this decision made the follow-up (false: an
                                        earlier one did) */
    json_t *approvals;               /* approvals: [{request_id, action_id, kind, params,
                                        user_id, waiting_since}], borrowed */
    uint64_t pending;                /* pending: requests waiting for a person */
    double oldest_waiting_s;         /* pending: the oldest's wait, 0 when none waits */
} orchestrator_store_answer_t;

/* Called once per operation, from the loop, never from inside the call that queued it. For load,
   err->code is CV_ERR_INVALID (field "id") when there is no such request. */
typedef void (orchestrator_store_fn) (void *owner, orchestrator_store_answer_t *answer);

/* Starts connecting (in the background; it keeps trying while PostgreSQL is away). */
orchestrator_store_t *orchestrator_store_new (zloop_t *loop, const orchestrator_store_config_t *config);
/* Operations still queued are dropped without their callbacks. */
void orchestrator_store_destroy (orchestrator_store_t **self_p);

/* Applies the migrations not yet applied, on a connection of its own. Blocks: call it before the
   store starts and before serving. */
int orchestrator_store_migrate (const char *url, const char *application_name, cv_error_t *err) CV_MUST_CHECK;

/* Fails every operation queued or in flight at once, each callback called with UNAVAILABLE and
   why, and refuses new ones from then on: the first step of an orderly stop. */
void orchestrator_store_abort (orchestrator_store_t *self, const char *why);

/* Each queues one operation, or returns -1 with err when its connection is down or full (then
   fn is never called). */

/* Records a new request as running at its first stage. */
int orchestrator_store_create (orchestrator_store_t *self, const orchestrator_request_t *request,
                               orchestrator_store_fn *fn, void *owner, cv_error_t *err) CV_MUST_CHECK;
/* Writes the checkpoint of a stage the request has finished (its result bytes, seq = stage + 1):
   with the decide stage's the decision's actions, recorded; with the execute stage's what the
   executor answered for each (status, result, reason, replayed, attempts, when); with the last
   stage's the request's row marked done.
   Idempotent: a checkpoint already written is left as it is. */
int orchestrator_store_checkpoint (orchestrator_store_t *self, const orchestrator_request_t *request, int stage,
                                   orchestrator_store_fn *fn, void *owner, cv_error_t *err) CV_MUST_CHECK;
/* Marks the request failed with its error. */
int orchestrator_store_fail (orchestrator_store_t *self, const orchestrator_request_t *request,
                             orchestrator_store_fn *fn, void *owner, cv_error_t *err) CV_MUST_CHECK;
/* Rebuilds a request from its row and checkpoints (validated), with the checkpoints noted. */
int orchestrator_store_load (orchestrator_store_t *self, const char *id, orchestrator_store_fn *fn, void *owner,
                             cv_error_t *err) CV_MUST_CHECK;
/* The ids of at most limit requests still running, oldest first. */
int orchestrator_store_unfinished (orchestrator_store_t *self, size_t limit, orchestrator_store_fn *fn, void *owner,
                                   cv_error_t *err) CV_MUST_CHECK;
/* A person's decision (approval approved or rejected, by approver) on request parent_id, pending
   approval: its actions marked so, it done, and its follow-up follow_up_id recorded (running,
   with deadline_ms) from its first three checkpoints and its actions, for the caller to load
   and resume. Answers existing_id (the follow-up's id: this one, or an earlier decision's, made
   false) and its approval; INVALID on field id when there is no such request, on field status
   when it does not wait for a person. */
int orchestrator_store_decide (orchestrator_store_t *self, const char *parent_id, const char *follow_up_id,
                               orchestrator_approval_t approval, const char *approver, uint64_t deadline_ms,
                               orchestrator_store_fn *fn, void *owner, cv_error_t *err) CV_MUST_CHECK;
/* The actions waiting for a person, at most limit, oldest first. */
int orchestrator_store_approvals (orchestrator_store_t *self, size_t limit, orchestrator_store_fn *fn, void *owner,
                                  cv_error_t *err) CV_MUST_CHECK;
/* The ids of at most limit requests that have waited for a person over older_than_s seconds. */
int orchestrator_store_expired (orchestrator_store_t *self, int older_than_s, size_t limit, orchestrator_store_fn *fn,
                                void *owner, cv_error_t *err) CV_MUST_CHECK;

/* How many requests wait for a person, and how long the oldest has waited. */
int orchestrator_store_pending (orchestrator_store_t *self, orchestrator_store_fn *fn, void *owner,
                                cv_error_t *err) CV_MUST_CHECK;

/* Runs SELECT 1 on the first connection; refused at once when any connection is down. */
int orchestrator_store_ping (orchestrator_store_t *self, orchestrator_store_fn *fn, void *owner,
                             cv_error_t *err) CV_MUST_CHECK;

/* While corked, operations wait even on an idle connection; uncorking sends them together (one
   transaction per connection): for several writes that should commit at once. */
void orchestrator_store_cork (orchestrator_store_t *self, bool corked);

/* True when every connection is up (a request's writes may go to any of them). */
bool orchestrator_store_available (const orchestrator_store_t *self);
/* Why the store is not available, "" when it is. */
const char *orchestrator_store_last_error (const orchestrator_store_t *self);
/* Operations queued or in flight, on all connections. */
size_t orchestrator_store_queued (const orchestrator_store_t *self);
/* Transactions committed and the operations they carried, since the store was made. */
void orchestrator_store_counts (const orchestrator_store_t *self, uint64_t *commits, uint64_t *operations);

void orchestrator_store_test (bool verbose);

#endif
