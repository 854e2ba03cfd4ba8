/* The orchestrator's PostgreSQL store: requests, their stage checkpoints (the packed stage result),
   the actions a decision recorded, and the look-ups behind GET /v1/requests/{id} and recovery.

   A checkpoint, the request's new stage and a decision's actions are written by one statement,
   so they commit together or not at all. Statements run synchronously on one connection, which
   is re-opened when lost; every failure comes back as -1 with err (UNAVAILABLE when the server
   cannot be reached). */
#ifndef ORCHESTRATOR_STORE_H
#define ORCHESTRATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "orchestrator_request.h"

typedef struct _orchestrator_store_t orchestrator_store_t;

/* Does not connect yet: the first statement does, so the orchestrator starts without PostgreSQL. */
orchestrator_store_t *orchestrator_store_new (const char *url, const char *application_name);
void orchestrator_store_destroy (orchestrator_store_t **self_p);

/* Applies the migrations not yet applied. */
int orchestrator_store_migrate (orchestrator_store_t *self, cv_error_t *err) CV_MUST_CHECK;

/* Runs SELECT 1. */
int orchestrator_store_ping (orchestrator_store_t *self, cv_error_t *err) CV_MUST_CHECK;

/* Records a new request. Returns 0 when recorded, 1 when its (user, idempotency key) was already
   used (existing_id gets the first request's id), -1 with err on failure. */
int orchestrator_store_create (orchestrator_store_t *self, const orchestrator_request_t *request, char *existing_id,
                               size_t existing_size, cv_error_t *err) CV_MUST_CHECK;

/* Writes the checkpoint of the stage the request just finished (its result, seq = stage + 1),
   its next stage, its status, and for the decide stage its actions. Idempotent. */
int orchestrator_store_checkpoint (orchestrator_store_t *self, const orchestrator_request_t *request, int stage,
                                   cv_error_t *err) CV_MUST_CHECK;

/* Marks the request failed with its error. */
int orchestrator_store_fail (orchestrator_store_t *self, const orchestrator_request_t *request, cv_error_t *err)
    CV_MUST_CHECK;

/* Rebuilds a request from its row and checkpoints (validated), with the checkpoints noted.
   NULL with err; err->code is CV_ERR_INVALID (field "id") when there is no such request. */
orchestrator_request_t *orchestrator_store_load (orchestrator_store_t *self, const char *id, cv_error_t *err)
    CV_MUST_CHECK;

/* The ids of requests still running, oldest first: a NULL-terminated array the caller frees
   (each string and the array). */
char **orchestrator_store_unfinished (orchestrator_store_t *self, cv_error_t *err) CV_MUST_CHECK;

#endif
