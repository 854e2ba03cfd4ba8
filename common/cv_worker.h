/* A conveyor worker: the generic actor every worker service runs.

   It connects a DEALER to the orchestrator's broker, says READY with its service name, instance id
   and capacity (the requests it serves at once), exchanges heartbeats, and hands each request to
   a handler thread. It also binds a REP control endpoint that answers a Probe by running the
   service's canned check through a handler.

   A service is served in one of two ways:
   - blocking (handle and check set): `capacity` handler threads, each serving one request at a
     time, start to finish, in handle. For logic that computes (intent, decision, responder).
   - on an event loop (begin and check_begin set): `handlers` threads (default 1), each running a
     zloop that the logic registers its sockets and timers with, and each serving up to
     capacity / handlers requests at once. begin starts a request and returns; the logic later
     calls cv_worker_call_finish from a callback of the same loop. For logic that waits
     (the gatherer, on PostgreSQL and HTTP): hundreds in flight without a thread each.

   A service's logic comes in two parts. What every handler reads and none writes (the agent
   file's compiled rules, a trained model, templates, policies) is made once, by shared_new,
   before any handler starts, and destroyed after the last one stops: it must be truly read-only
   from then on, as all handlers read it at once without locks. What a handler writes (scratch
   buffers, PCRE2 match data, a database connection, an LLM client) is its logic, made by
   logic_new on the handler's own thread over the shared part, and destroyed on that thread.

   Every frame is unpacked and validated (cv_envelope) in the handler thread: a malformed frame, a
   wrong body, an over-long text or a passed deadline gets an Error reply naming the problem, and
   the worker keeps serving.

   Start it with cv_worker_start, which returns once it is serving, or NULL with the reason.
   Pipe commands:
     $TERM              stop
     CONTROL            replies with the control endpoint as bound (port resolved)
*/
#ifndef CV_WORKER_H
#define CV_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_log.h"
#include "cv_mdp.h"
#include "cv_probe.h"

/* One request in flight on an event-loop handler: the validated request, the reply whose body
   the logic fills, and the arena both live in. Owned by the handler until finished. */
typedef struct _cv_worker_call_t cv_worker_call_t;

/* The request (for a probe's check, the Probe), the arena the reply's body goes in, the reply. */
const cv_envelope_t *cv_worker_call_request (const cv_worker_call_t *call);
cv_arena_t *cv_worker_call_arena (cv_worker_call_t *call);
cv_envelope_t *cv_worker_call_reply (cv_worker_call_t *call);

/* Ends call, once, from a callback of the handler's loop: rc 0 sends the reply as the logic filled
   it (for a check, a passed ProbeResult), -1 an Error with err (for a check, a failed ProbeResult
   with err's message). call is gone afterwards. */
void cv_worker_call_finish (cv_worker_call_t *call, int rc, const cv_error_t *err);

/* Handles one validated request: fills reply's body (allocated in arena) and returns 0, or
   returns -1 with err, which the worker sends back as an Error. */
typedef int (cv_worker_handle_fn) (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                                   cv_error_t *err);
/* Runs a canned request through the logic: 0 when the service works, else -1 with err. */
typedef cv_probe_check_fn cv_worker_check_fn;
/* Makes the part of the logic every handler shares, read-only, from shared_args (borrowed), or
   NULL with err, which stops the worker's start. Called once, before any handler starts. */
typedef void *(cv_worker_shared_new_fn) (void *shared_args, cv_log_t *log, cv_error_t *err);
typedef void (cv_worker_shared_destroy_fn) (void **shared_p);
/* Makes one handler's logic over shared (borrowed, read only; it outlives the logic), on that
   handler's thread, or NULL with err, which stops the worker's start. */
typedef void *(cv_worker_logic_new_fn) (const void *shared, cv_log_t *log, cv_error_t *err);
/* The same for an event-loop handler, whose logic registers with loop (borrowed; it outlives the
   logic). */
typedef void *(cv_worker_loop_logic_new_fn) (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err);
/* Destroys a handler's logic on its thread. On an event-loop handler, calls the logic has not
   finished are dropped after it (the logic must not touch them in destroy): a stopping worker
   answers no more, and the orchestrator sends them elsewhere. */
typedef void (cv_worker_logic_destroy_fn) (void **logic_p);
/* Starts call on an event-loop handler and returns; the logic finishes it later (or at once). */
typedef void (cv_worker_begin_fn) (void *logic, cv_worker_call_t *call);

typedef struct {
    const char *service;    /* e.g. "intent" */
    cv_body_t request_body; /* the body this service takes */
    cv_worker_shared_new_fn *shared_new;
    cv_worker_shared_destroy_fn *shared_destroy;
    void *shared_args; /* borrowed; read by shared_new only, in cv_worker_start */
    cv_worker_logic_destroy_fn *logic_destroy;
    /* blocking: */
    cv_worker_logic_new_fn *logic_new;
    cv_worker_handle_fn *handle;
    cv_worker_check_fn *check;
    /* or on an event loop: */
    cv_worker_loop_logic_new_fn *loop_logic_new;
    cv_worker_begin_fn *begin;
    cv_worker_begin_fn *check_begin; /* a call whose request is the Probe; the reply is the worker's */
    uint32_t handlers;               /* event-loop handler threads: 0 for 1, at most capacity; they share it */
    const char *broker_endpoint;     /* e.g. tcp://127.0.0.1:5555 */
    const char *control_endpoint;    /* e.g. tcp://127.0.0.1:*, NULL for none */
    const char *instance;            /* unique per process */
    uint32_t capacity;               /* requests in flight at most */
    int heartbeat_ms;                /* default 1000 */
    int liveness;                    /* missed heartbeats before reconnecting, default 3 */
    cv_log_t *log;                   /* borrowed */
} cv_worker_config_t;

/* Starts the worker actor; config and everything it points to must outlive it. */
zactor_t *cv_worker_start (const cv_worker_config_t *config, cv_error_t *err);

void cv_worker_test (bool verbose);

#endif
