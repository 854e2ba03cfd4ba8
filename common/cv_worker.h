/* A conveyor worker: the generic actor every worker service runs.

   It connects a DEALER to the orchestrator's broker, says READY with its service name, instance id
   and capacity, exchanges heartbeats, and hands each request to one of `capacity` handler threads,
   so that many requests are served at once. It also binds a REP control endpoint that answers a
   Probe by running the service's canned check through a handler.

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
typedef void (cv_worker_logic_destroy_fn) (void **logic_p);

typedef struct {
    const char *service;    /* e.g. "intent" */
    cv_body_t request_body; /* the body this service takes */
    cv_worker_shared_new_fn *shared_new;
    cv_worker_shared_destroy_fn *shared_destroy;
    void *shared_args; /* borrowed; read by shared_new only, in cv_worker_start */
    cv_worker_logic_new_fn *logic_new;
    cv_worker_logic_destroy_fn *logic_destroy;
    cv_worker_handle_fn *handle;
    cv_worker_check_fn *check;
    const char *broker_endpoint;  /* e.g. tcp://127.0.0.1:5555 */
    const char *control_endpoint; /* e.g. tcp://127.0.0.1:*, NULL for none */
    const char *instance;         /* unique per process */
    uint32_t capacity;            /* handler threads, requests in flight */
    int heartbeat_ms;             /* default 1000 */
    int liveness;                 /* missed heartbeats before reconnecting, default 3 */
    cv_log_t *log;                /* borrowed */
} cv_worker_config_t;

/* Starts the worker actor; config and everything it points to must outlive it. */
zactor_t *cv_worker_start (const cv_worker_config_t *config, cv_error_t *err);

void cv_worker_test (bool verbose);

#endif
