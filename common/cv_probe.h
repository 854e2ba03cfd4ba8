/* The probe: the control endpoint (ZeroMQ REP) that takes Probes, and the ProbeResult that
   answers one, shared by every worker (cv_worker) and the orchestrator.

   The endpoint binds a REP socket on its owner's zloop and hands over each frame that arrives.
   REP answers one request at a time, so the endpoint reads nothing more until the owner answers
   with cv_probe_endpoint_answer (at once or later, from another callback of the same loop). */
#ifndef CV_PROBE_H
#define CV_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"

/* The worker services, in the order a request's stages visit them, NULL-terminated: the names
   workers register under with the orchestrator's broker and answer probes as. */
extern const char *const cv_worker_services[];

/* The detail of a probe whose check passed. */
#define CV_PROBE_PASSED "canned check passed"

/* Runs a canned request through logic: 0 when the service works, else -1 with err. */
typedef int (cv_probe_check_fn) (void *logic, cv_arena_t *arena, cv_error_t *err);

/* Sets reply's body to a ProbeResult in arena: service, instance, this build's version, ok,
   detail and latency_us; the strings are copied. */
void cv_probe_result_set (cv_envelope_t *reply, cv_arena_t *arena, const char *service, const char *instance, bool ok,
                          const char *detail, uint32_t latency_us);

/* Runs check on logic (none passes), timing it, and sets reply's body to its ProbeResult: the
   detail is CV_PROBE_PASSED, or the check's error message. */
void cv_probe_run (const char *service, const char *instance, cv_probe_check_fn *check, void *logic, cv_arena_t *arena,
                   cv_envelope_t *reply);

typedef struct _cv_probe_endpoint_t cv_probe_endpoint_t;

/* A frame arrived at the endpoint: *frame_p is the owner's to take (destroy or keep). */
typedef void (cv_probe_arrived_fn) (void *owner, zframe_t **frame_p);

/* Binds a REP socket on endpoint (e.g. tcp://127.0.0.1:*) and reads it on loop (borrowed; it
   outlives the endpoint), calling arrived with owner for each frame. NULL with err (UNAVAILABLE,
   field control_endpoint) when the address cannot be bound. */
cv_probe_endpoint_t *cv_probe_endpoint_new (zloop_t *loop, const char *endpoint, cv_probe_arrived_fn *arrived,
                                            void *owner, cv_error_t *err);
void cv_probe_endpoint_destroy (cv_probe_endpoint_t **self_p);

/* The endpoint as bound, its port resolved (borrowed). */
const char *cv_probe_endpoint_bound (const cv_probe_endpoint_t *self);

/* Sends *frame_p (taken) as the answer to the frame handed over last, and reads the next one. */
void cv_probe_endpoint_answer (cv_probe_endpoint_t *self, zframe_t **frame_p);
/* The same with reply, packed. */
void cv_probe_endpoint_answer_envelope (cv_probe_endpoint_t *self, const cv_envelope_t *reply);

void cv_probe_test (bool verbose);

#endif
