/* The orchestrator: an actor that runs the HTTP front door, the ZeroMQ broker, the checkpoint
   store, the probe endpoint and every request's state machine, on one zloop.

   A request is recorded, then each stage is sent to a worker; each stage result is checkpointed in
   PostgreSQL, before the next stage is sent or while it runs, as the durability mode says (see
   orchestrator_flights.h). At start, and every recovery interval, requests left running (after a
   crash) are loaded from their last checkpoint and continued with a fresh deadline, as many as
   the in-flight limit leaves room for. Nothing waits for PostgreSQL on the loop: the store answers
   through callbacks.

   Pipe commands:
     $TERM       stop (open HTTP exchanges get 503; their requests resume after a restart)
     HTTP        replies with the HTTP port as bound
     BROKER      replies with the broker endpoint as bound
     CONTROL     replies with the control endpoint as bound
   Start it with orchestrator_server_start, which returns once it serves, or NULL with the reason. */
#ifndef ORCHESTRATOR_SERVER_H
#define ORCHESTRATOR_SERVER_H

#include <czmq.h>

#include "cv_error.h"
#include "cv_log.h"
#include "orchestrator_flights.h"

typedef struct {
    const char *http_address;     /* 127.0.0.1 */
    int http_port;                /* 8080; 0 picks one */
    const char *broker_endpoint;  /* tcp://127.0.0.1:5555 */
    const char *control_endpoint; /* tcp://127.0.0.1:5556 */
    const char *database_url;
    const char *instance;
    int request_timeout_ms; /* a request's whole deadline */
    int attempt_timeout_ms; /* one stage attempt */
    int reply_reserve_ms;   /* kept from a request's deadline for its reply */
    int max_attempts;
    int heartbeat_ms;
    int liveness;
    int max_in_flight; /* requests in memory; beyond it, 503 with Retry-After */
    int max_queued;    /* stages waiting for an intent worker; beyond it, 503 */
    orchestrator_durability_t durability;
    int store_connections;        /* PostgreSQL connections of the checkpoint store */
    int store_timeout_ms;         /* a store statement or connection slower than this fails */
    int recovery_interval_ms;     /* how often to look for requests left running */
    int approval_expiry_s;        /* a request waits this long for a person before it is rejected */
    const char *operator_token;   /* CONVEYOR_OPERATOR_TOKEN: guards the approval routes; NULL: off */
    orchestrator_limits_t limits; /* every new request's: --budget, --request-attempts */
    const char *chat_model;       /* the agent's name on the OpenAI-compatible routes; NULL: the default */
    const char *chat_user_header; /* where their user id is when the body has none; NULL or "": nowhere */
    const char *otlp_url;         /* where ended requests' traces are exported (orchestrator_otlp.h); NULL or "": not */
    cv_log_t *log;                /* borrowed */
} orchestrator_config_t;

/* config and what it points to must outlive the actor. */
zactor_t *orchestrator_server_start (const orchestrator_config_t *config, cv_error_t *err);

#endif
