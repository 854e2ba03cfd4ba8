/* The intent worker's service glue: the cv_worker callbacks that turn an IntentRequest into an
   Intent with intent_classifier (rules, the trained model, the LLM). The generic worker
   (common/cv_worker.h) owns the sockets, the threads and the validation of every frame; this
   file only classifies decoded requests.

   One logic instance per handler thread, created from a cv_launcher_args_t: the agent file's
   `intents` and `classifier` sections are loaded at start, and a bad section or model file stops
   the worker with the reason. The worker's own setting --intent-model (CONVEYOR_INTENT_MODEL)
   names the model file instead of the agent file. */
#ifndef INTENT_SERVER_H
#define INTENT_SERVER_H

#include <stdbool.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_launcher.h"
#include "cv_log.h"
#include "cv_settings.h"

#define INTENT_SERVER_SERVICE "intent"
#define INTENT_SERVER_CONTROL_ENDPOINT "tcp://127.0.0.1:5561"
#define INTENT_SERVER_CHECK_TEXT "I lost my card"   /* the probe's canned request */

/* The worker's own settings, for cv_launcher_spec_t.extra_settings. */
extern const cv_setting_t intent_server_settings[];
extern const size_t intent_server_settings_count;

/* cv_worker_logic_new_fn: logic_args is a cv_launcher_args_t (borrowed; only read here). Returns
   a new logic instance, or NULL with err when the intents section is bad. log is borrowed. */
void *intent_server_logic_new (void *logic_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn */
void intent_server_logic_destroy (void **logic_p);

/* cv_worker_handle_fn: classifies request's IntentRequest text into an Intent body in arena:
   name, confidence, method, rule, slots (msgpack map), the candidates, and low_confidence for a
   guess. The request's deadline bounds the LLM step. */
int intent_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                          cv_error_t *err);

/* cv_worker_check_fn: classifies INTENT_SERVER_CHECK_TEXT as handle would and checks the answer
   names a configured intent (or the fallback) and passes the orchestrator's validation. */
int intent_server_check (void *logic, cv_arena_t *arena, cv_error_t *err);

void intent_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t intent_server_spec;

#endif
