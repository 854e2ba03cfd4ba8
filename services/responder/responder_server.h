/* The responder worker's logic as the generic worker actor (cv_worker) runs it: the reply
   templates are read from the agent file once, at start, into the worker's shared part (a
   responder_templates_t, read-only), and every handler thread renders with them. Capacity: one
   handler per CPU by default, as rendering is CPU work.

   A RespondRequest (already unpacked and validated by cv_worker) becomes the request's context
   (cv_context) and then a Reply: the text rendered down the template ladder and the name of the
   template that rendered it (responder_templates). The probe's canned check renders the hand-off
   path from a synthetic context. No I/O here: tests call these functions directly, and the
   isolation test runs them inside a real cv_worker. */
#ifndef RESPONDER_SERVER_H
#define RESPONDER_SERVER_H

#include <stdbool.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_launcher.h"
#include "cv_log.h"
#include "cv_worker.h"

#define RESPONDER_SERVICE "responder"
#define RESPONDER_CONTROL_ENDPOINT "tcp://127.0.0.1:5564"

/* cv_worker_shared_new_fn. shared_args is a cv_launcher_args_t, of which only the agent file is read
   (and not kept); log is borrowed. Returns the templates, or NULL with err when they do not load. */
void *responder_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn. */
void responder_server_shared_destroy (void **shared_p);

/* cv_worker_logic_new_fn: a handler's logic over shared (the templates, borrowed). */
void *responder_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn. */
void responder_server_logic_destroy (void **logic_p);

/* cv_worker_handle_fn: answers a validated RespondRequest with a Reply allocated in arena.
   -1 with err (INVALID) when a msgpack field does not decode, (INTERNAL) when out of memory. */
int responder_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                             cv_error_t *err);

/* cv_worker_check_fn: renders the canned hand-off request; -1 with err when the reply is empty. */
int responder_server_check (void *logic, cv_arena_t *arena, cv_error_t *err);

void responder_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t responder_server_spec;

#endif
