/* The requests in flight: each request's life cycle in memory, from the moment it is accepted (or
   reloaded by recovery) until it is answered and forgotten. One state machine (a phase per
   request, one function that moves it) drives the stages through the broker and the writes
   through the store, in the order the durability mode asks for.

   A request's writes are numbered: 0 its row, 1..n the checkpoints of its stages in the order
   they ran (four or five: execute only when the decision has actions), and for a failed request
   one more, the failure. They are issued in order and commit in order (the store keeps one
   request on one connection).

   In every mode, the execute stage leaves only once the request's row and every checkpoint
   before it are committed: the decide checkpoint records the decision's actions, and an action
   is recorded before it is performed. A crash then finds the actions and sends them again under
   the same idempotency keys, which the bank applies once.

   Durability modes, and what a crash of the orchestrator can lose (a crash of a worker loses
   nothing in any mode: its stage is sent again):
     sync   (default) each stage's checkpoint is committed before the next stage leaves; the
            row commits with the first checkpoint (before the first stage, when the request has
            an idempotency key). A crash loses at most the stages that were at a worker, which
            recovery sends again, and a request still at its first stage (its client had no
            answer, nor its id); no answered request and no committed checkpoint is lost.
     async  each checkpoint is written while the next stage runs; the answer waits for every
            write to commit, so an answered request is as durable as in sync. A crash also loses
            the checkpoints not yet committed: recovery resumes from the last committed one and
            runs the later stages again. A request that had no row committed is lost whole (its
            client had no answer). With an idempotency key, the row is committed before the first
            stage, as in sync, so the key still holds.
     exit   nothing is written until the request finishes, or reaches its execute stage (see
            above); then its row and its checkpoints together, and the answer waits for them. A crash loses every
   unanswered request (their clients had no answer and may retry); with an idempotency key the row is committed first
   and recovery runs the request again from its start.

   When a write fails because the store is away, the request is PARKED: what it has is kept, no
   stage is sent, and its client is answered 503 with Retry-After and the request id (or, for a
   request that had failed anyway, its own failure). When the store is back, its writes are issued
   again and it resumes with a fresh deadline. A request whose row was never committed is not
   parked: its client is told that nothing was recorded, and it is forgotten. */
#ifndef ORCHESTRATOR_FLIGHTS_H
#define ORCHESTRATOR_FLIGHTS_H

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "cv_log.h"
#include "orchestrator_broker.h"
#include "orchestrator_http.h"
#include "orchestrator_otlp.h"
#include "orchestrator_request.h"
#include "orchestrator_store.h"

typedef enum {
    ORCHESTRATOR_DURABILITY_SYNC,
    ORCHESTRATOR_DURABILITY_ASYNC,
    ORCHESTRATOR_DURABILITY_EXIT
} orchestrator_durability_t;

/* "sync", "async", "exit" to the mode; -1 when the name is none of them. */
int orchestrator_durability_parse (const char *name);
const char *orchestrator_durability_name (orchestrator_durability_t durability);

typedef struct _orchestrator_flights_t orchestrator_flights_t;

typedef struct {
    orchestrator_durability_t durability;
    int request_timeout_ms;        /* a resumed request's fresh deadline */
    int reply_reserve_ms;          /* kept from each request's deadline for its reply, at most half its time */
    int retry_ms;                  /* how often parked requests look for the store; default 250 */
    orchestrator_otlp_t *exporter; /* ended requests' traces go to it; NULL: nowhere (borrowed) */
} orchestrator_flights_config_t;

/* broker, store and log are borrowed and must outlive the flights. */
orchestrator_flights_t *orchestrator_flights_new (zloop_t *loop, const orchestrator_flights_config_t *config,
                                                  orchestrator_broker_t *broker, orchestrator_store_t *store,
                                                  cv_log_t *log);
/* Answers every client still waiting, 503 with Retry-After: with the request id when the request
   was recorded (recovery resumes it after a restart), else saying nothing was recorded. */
void orchestrator_flights_stop (orchestrator_flights_t *self);
/* Forgets every request in memory (their rows say running: recovery resumes them). */
void orchestrator_flights_destroy (orchestrator_flights_t **self_p);

/* Takes a new request and runs it; exchange (may be NULL) is answered when it ends. */
void orchestrator_flights_start (orchestrator_flights_t *self, orchestrator_request_t **request_p,
                                 orchestrator_exchange_t *exchange);
/* Takes a request reloaded from its checkpoints, not finished, and continues it with a fresh
   deadline. */
void orchestrator_flights_resume (orchestrator_flights_t *self, orchestrator_request_t **request_p);
/* Adds exchange to the waiters of request id when it is in memory; false when it is not. */
bool orchestrator_flights_join (orchestrator_flights_t *self, const char *id, orchestrator_exchange_t *exchange);

bool orchestrator_flights_has (const orchestrator_flights_t *self, const char *id);
/* Requests in memory, and how many of them are parked. */
size_t orchestrator_flights_size (const orchestrator_flights_t *self);
size_t orchestrator_flights_parked (const orchestrator_flights_t *self);

#endif
