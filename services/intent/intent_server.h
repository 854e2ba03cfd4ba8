/* The intent worker's service glue: the cv_worker callbacks that turn an IntentRequest into an
   Intent with intent_classifier (rules, the trained model, the LLM). The generic worker
   (common/cv_worker.h) owns the sockets, the threads and the validation of every frame; this
   file only classifies decoded requests.

   The agent file's `intents`, `classifier` and `llm` sections and the model are loaded once, at
   start, into the worker's shared part (an intent_knowledge_t, read-only), and a bad section or
   model file stops the worker with the reason; each handler thread's logic is a classifier over
   it, with its own match data, buffers and LLM client. The worker's own setting --intent-model
   (CONVEYOR_INTENT_MODEL) names the model file instead of the agent file. Capacity: one handler
   per CPU by default, as classifying is CPU work. */
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
#define INTENT_SERVER_CHECK_TEXT "I lost my card" /* the probe's canned request */

/* The worker's own settings, for cv_launcher_spec_t.extra_settings. */
extern const cv_setting_t intent_server_settings[];
extern const size_t intent_server_settings_count;

/* cv_worker_shared_new_fn: shared_args is a cv_launcher_args_t (borrowed; only read here).
   Returns the worker's intent_knowledge_t, or NULL with err when a section or the model is bad. */
void *intent_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn */
void intent_server_shared_destroy (void **shared_p);

/* cv_worker_logic_new_fn: a handler's classifier over shared (borrowed), or NULL with err when
   its LLM client cannot be made. log is borrowed. */
void *intent_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn */
void intent_server_logic_destroy (void **logic_p);

/* cv_worker_handle_fn: classifies request's IntentRequest text into an Intent body in arena:
   name, confidence, method, rule, slots (msgpack map), the candidates, and low_confidence for a
   guess. The request's deadline bounds the LLM step and its budget (the Envelope's, absent: none)
   pays for it: Intent.spend tells the call's tokens and cost, or over_budget when its worst case
   did not fit and the LLM was not asked; absent when the LLM had no part. */
int intent_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                          cv_error_t *err);

/* cv_worker_check_fn: classifies INTENT_SERVER_CHECK_TEXT as handle would and checks the answer
   names a configured intent (or the fallback) and passes the orchestrator's validation. */
int intent_server_check (void *logic, cv_arena_t *arena, cv_error_t *err);

void intent_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t intent_server_spec;

#endif
