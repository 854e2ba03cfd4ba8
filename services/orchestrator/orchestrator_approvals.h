/* Human approval of actions: the queue of what waits, a person's decision, and expiry.

   A request whose decision has an action that needs approval (Action.requires_approval) ends
   pending_approval with nothing performed (orchestrator_request.h). Then:
     GET  /v1/approvals                 the actions waiting, oldest first
     POST /v1/requests/{id}/approve     {"approver": "NAME"}: its follow-up request performs them
     POST /v1/requests/{id}/reject      {"approver": "NAME"}: its follow-up says nothing was done
   A decision marks the request's actions approved or rejected, by whom and when, and starts its
   follow-up (orchestrator_store_decide); the answer is the follow-up's document once it is done.
   Deciding again is harmless: the answer is the follow-up the first decision made (409 when the
   second asks the opposite). Requests waiting longer than the expiry are rejected by the
   approver "expired", checked every expiry_check_ms.

   Until API keys exist, these routes need the operator token (Authorization: Bearer TOKEN, from
   CONVEYOR_OPERATOR_TOKEN); without one configured they answer 403. */
#ifndef ORCHESTRATOR_APPROVALS_H
#define ORCHESTRATOR_APPROVALS_H

#include <stdbool.h>

#include <czmq.h>
#include <jansson.h>

#include "cv_log.h"
#include "orchestrator_flights.h"
#include "orchestrator_http.h"
#include "orchestrator_store.h"

typedef struct _orchestrator_approvals_t orchestrator_approvals_t;

typedef struct {
    const char *operator_token; /* NULL: the routes are off */
    int expiry_s;               /* a request waits this long for a person */
    int expiry_check_ms;        /* how often expiry is looked for; default 1000 */
    int request_timeout_ms;     /* a follow-up's deadline */
} orchestrator_approvals_config_t;

/* flights, store and log are borrowed and must outlive it; config is copied (not the token). */
orchestrator_approvals_t *orchestrator_approvals_new (zloop_t *loop, const orchestrator_approvals_config_t *config,
                                                      orchestrator_flights_t *flights, orchestrator_store_t *store,
                                                      cv_log_t *log);
void orchestrator_approvals_destroy (orchestrator_approvals_t **self_p);

/* GET /v1/approvals. */
void orchestrator_approvals_list (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange);
/* POST /v1/requests/{id}/approve (approve true) or /reject, with its body (may be NULL). */
void orchestrator_approvals_decide (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange, const char *id,
                                    bool approve, json_t *body);

#endif
