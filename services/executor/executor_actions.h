/* How each kind of action is performed, read once from the agent file's `actions` section:

       actions:
         freeze_card:
           query: SELECT bank.freeze_card($1, $2, $3) AS outcome
           params: [action.key, user_id, action.params.card_id]
           timeout_ms: 2000                               -- 1..60000 per attempt; default 2000
           retries: {max_attempts: 3, base_ms: 50, cap_ms: 500}
                                                          -- max_attempts 1..10, base_ms 0..60000,
                                                          -- cap_ms base_ms..60000; these are the
                                                          -- defaults when retries is absent

   The query is parameterised only: $1..$N are the params, context paths of the action being
   performed (executor_actions_context): user_id and request_id (the request's), action.id,
   action.kind, action.key (the idempotency key, "<request_id>:<action_id>") and action.params.X
   (the action's msgpack params). A missing value goes as SQL NULL. The statement must return one
   row whose column `outcome` is the bank's jsonb answer (executor_outcome.h).

   Retrying is safe because the key makes a second attempt a replay; only a connection that
   failed or a timeout is retried, never an SQL error. Pure parsing, no I/O. */
#ifndef EXECUTOR_ACTIONS_H
#define EXECUTOR_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_backoff.h"
#include "cv_config.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_params.h"

#define EXECUTOR_TIMEOUT_MS_DEFAULT 2000
#define EXECUTOR_TIMEOUT_MS_MAX 60000
#define EXECUTOR_RETRIES_ATTEMPTS_DEFAULT 3
#define EXECUTOR_RETRIES_BASE_MS_DEFAULT 50
#define EXECUTOR_RETRIES_CAP_MS_DEFAULT 500
#define EXECUTOR_MAX_KINDS 64

/* One kind of action (plain data, owned by its executor_actions_t). */
typedef struct {
    char *kind;
    char *query;
    cv_params_t params; /* context paths for $1..$N */
    unsigned timeout_ms;
    cv_backoff_t retries;
} executor_action_t;

typedef struct _executor_actions_t executor_actions_t;

/* Reads agent's `actions` (none is no kinds: every action then fails as unknown), or NULL with
   err (file:line: key: reason). */
executor_actions_t *executor_actions_new (const cv_config_t *agent, cv_error_t *err) CV_MUST_CHECK;
void executor_actions_destroy (executor_actions_t **self_p);

size_t executor_actions_count (const executor_actions_t *self);
/* The kind named kind (borrowed), or NULL when the agent file does not say how to perform it. */
const executor_action_t *executor_actions_find (const executor_actions_t *self, const char *kind);

/* The context an action's params are read from (new reference): user_id, request_id, and action
   {id, kind, key, params}. params is the action's decoded msgpack map (borrowed), or NULL. */
json_t *executor_actions_context (const char *request_id, const char *user_id, const Conveyor__V1__Action *action,
                                  const json_t *params);

/* The texts of action's params in context: *texts gets count malloc'd entries (NULL for SQL
   NULL), freed with executor_actions_texts_free. */
char **executor_actions_texts (const executor_action_t *action, const json_t *context);
void executor_actions_texts_free (char **texts, size_t count);

void executor_actions_test (bool verbose);

#endif
