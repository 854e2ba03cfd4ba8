/* The HTTP API's routes: POST /v1/requests, GET /v1/requests/{id}, POST /v1/tools/test (a
   diagnostic: orchestrator_toolcheck.h), GET /v1/approvals and POST /v1/requests/{id}/approve
   and /reject (orchestrator_approvals.h), /healthz and /readyz.

   A new request is refused with 503 and Retry-After, before anything is recorded, when the
   orchestrator holds max_in_flight requests already, when more than max_queued stages wait for an
   intent worker, or when the store is away. Look-ups are answered from the store, without
   blocking the loop: the exchange waits for the answer. */
#ifndef ORCHESTRATOR_ROUTES_H
#define ORCHESTRATOR_ROUTES_H

#include <stddef.h>

#include <jansson.h>

#include "cv_log.h"
#include "orchestrator_approvals.h"
#include "orchestrator_broker.h"
#include "orchestrator_chat.h"
#include "orchestrator_flights.h"
#include "orchestrator_http.h"
#include "orchestrator_store.h"
#include "orchestrator_toolcheck.h"

/* What the routes work with, all borrowed. */
typedef struct {
    orchestrator_flights_t *flights;
    orchestrator_store_t *store;
    orchestrator_broker_t *broker;
    orchestrator_toolcheck_t *toolcheck;
    orchestrator_approvals_t *approvals;
    cv_log_t *log;
    size_t max_in_flight;            /* requests in memory before answering 503 */
    size_t max_queued;               /* stages waiting for an intent worker before answering 503 */
    int request_timeout_ms;          /* a new request's deadline */
    orchestrator_limits_t limits;    /* a new request's, unless it asks for a lower budget */
    orchestrator_chat_config_t chat; /* the OpenAI-compatible routes' */
} orchestrator_routes_t;

/* An orchestrator_http_handler_fn; arg is an orchestrator_routes_t. */
void orchestrator_routes_handle (void *arg, orchestrator_exchange_t *exchange, const char *method, const char *path,
                                 json_t *body);

#endif
