/* The orchestrator's ZeroMQ broker: a ROUTER that workers connect to (the protocol in cv_mdp.h),
   a registry of live workers per service, least-recently-used dispatch within each worker's
   capacity, heartbeats both ways, and bounded retries.

   A job is one stage request for one service. It is sent to an idle worker of that service, or
   queued until one is free. When its worker dies (missed heartbeats) or its attempt times out, it
   is sent again, to another worker if there is one, after a backoff, up to max_attempts (the
   configured one, or a job's own lower one); a reply
   to an earlier attempt is dropped. A worker's Error reply of UNAVAILABLE is retried likewise;
   any other Error ends the job. The job's owner hears once, through the job's done callback.

   The broker runs inside its owner's zloop; it owns no thread. */
#ifndef ORCHESTRATOR_BROKER_H
#define ORCHESTRATOR_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_log.h"

typedef struct _orchestrator_broker_t orchestrator_broker_t;

/* Called once per job: reply is the worker's answer (owned by the callee; its body may be an
   Error) and packed/size the bytes it came in (borrowed, for the duration of the call), or reply
   and packed are NULL with err when every attempt failed or the deadline passed. attempts: how
   many times the job was sent. */
typedef void (orchestrator_broker_done_fn) (void *owner, cv_envelope_t *reply, const uint8_t *packed, size_t size,
                                            uint32_t attempts, const cv_error_t *err);

typedef struct {
    const char *endpoint;   /* to bind, e.g. tcp://127.0.0.1:5555 */
    int heartbeat_ms;       /* default 1000 */
    int liveness;           /* missed heartbeats before a worker is dead, default 3 */
    int attempt_timeout_ms; /* one attempt's limit, default 5000 */
    uint32_t max_attempts;  /* default 3 */
    int backoff_ms;         /* first retry's delay, doubled each time, with jitter */
    cv_log_t *log;          /* borrowed */
} orchestrator_broker_config_t;

/* Binds and registers with loop; NULL with err when the endpoint cannot be bound. */
orchestrator_broker_t *orchestrator_broker_new (zloop_t *loop, const orchestrator_broker_config_t *config,
                                                cv_error_t *err);
void orchestrator_broker_destroy (orchestrator_broker_t **self_p);

/* The endpoint as bound (port resolved). */
const char *orchestrator_broker_endpoint (const orchestrator_broker_t *self);

/* Submits a job: envelope (allocated in *arena_p, both taken) goes to service. The broker sets
   message_id ("<job_id>.<attempt>") and attempt before each send. envelope->deadline_ms bounds all
   attempts, and so does max_attempts when it is below the configured one (0: the configured
   one). done is called once when the job ends; owner identifies the job there and in cancel. */
void orchestrator_broker_submit (orchestrator_broker_t *self, const char *service, const char *job_id,
                                 cv_arena_t **arena_p, cv_envelope_t *envelope, uint32_t max_attempts,
                                 orchestrator_broker_done_fn *done, void *owner);

/* Forgets every job of owner without calling done (the owner is going away). */
void orchestrator_broker_cancel (orchestrator_broker_t *self, void *owner);

/* How many live workers of service are connected. */
size_t orchestrator_broker_workers (const orchestrator_broker_t *self, const char *service);
/* How many jobs wait for a worker or are in flight. */
size_t orchestrator_broker_jobs (const orchestrator_broker_t *self);
/* How many jobs of service wait for a free worker. */
size_t orchestrator_broker_queued (const orchestrator_broker_t *self, const char *service);

#endif
