/* The decision worker's service glue: the cv_worker callbacks that turn a DecideRequest into a
   Decision with decision_policy. The generic worker (common/cv_worker.h) owns the sockets, the
   threads and the validation of every frame; this file only decides for decoded requests.

   The agent file's `policies` section is loaded and validated once, at start, into the worker's
   shared part (a decision_policy_t, read-only), and a bad section stops the worker with the file,
   line and key; every handler thread's logic decides with it. Capacity: one handler per CPU by
   default, as deciding is CPU work. */
#ifndef DECISION_SERVER_H
#define DECISION_SERVER_H

#include <stdbool.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_launcher.h"
#include "cv_log.h"

#define DECISION_SERVER_SERVICE "decision"
#define DECISION_SERVER_CONTROL_ENDPOINT "tcp://127.0.0.1:5563"
/* The probe's canned request: an intent no policy can name (its characters are outside the
   names policies accept) and no evidence, which only the catch-all can decide. */
#define DECISION_SERVER_CHECK_INTENT "(probe)"

/* cv_worker_shared_new_fn: shared_args is a cv_launcher_args_t (borrowed; only read here).
   Returns the worker's decision_policy_t, or NULL with err when the policies section is bad. */
void *decision_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn */
void decision_server_shared_destroy (void **shared_p);

/* cv_worker_logic_new_fn: a handler's logic over shared (the policies, borrowed). log is
   borrowed. */
void *decision_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn */
void decision_server_logic_destroy (void **logic_p);

/* cv_worker_handle_fn: decides for request's DecideRequest (user, intent, evidence) into a
   Decision body in arena: outcome, rule, reason, and actions with stable ids and msgpack params.
   Fails (INTERNAL) only when no policy applies, i.e. the catch-all's params do not render. */
int decision_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                            cv_error_t *err);

/* cv_worker_check_fn: decides for DECISION_SERVER_CHECK_INTENT with empty evidence and checks
   the catch-all decided and the Decision passes the orchestrator's validation. */
int decision_server_check (void *logic, cv_arena_t *arena, cv_error_t *err);

void decision_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t decision_server_spec;

#endif
