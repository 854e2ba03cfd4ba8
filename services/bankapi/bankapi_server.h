/* conveyor-bankapi: the demo bank's other systems, as a small HTTP service beside the pipeline,
   for the gatherer's HTTP tools to call and for tests to make misbehave.

   Routes (JSON answers; errors as {"error": {"code", "message"}}):
     GET /healthz                   200 {"ok": true}: the process serves (never faulted)
     GET /v1/fx/{base}/{quote}      200 {"base", "quote", "rate", "as_of", "source"}: units of quote
                                    for one base (bankapi_data.h); 404 for a currency not quoted,
                                    400 for the same one twice
     GET /v1/deliveries/{tracking}  200 {"tracking", "status", "expected_date", "carrier",
                                    "country", "last_event"}; 404 for a number not of the bank's form
     anything else                  404 (405 for another method on a known route)
   Each /v1 route misbehaves as its fault says (bankapi_faults.h): set at start by the flags, and
   while it runs over the test control routes, which exist only with test_control on and answer
   only clients on the loopback interface (403 otherwise), whatever address the service binds:
     GET /_test/faults     the faults, as JSON
     POST /_test/faults    sets one (bankapi_faults.h's JSON form)
     DELETE /_test/faults  every route well behaved again
   and, on the same terms, a /v1 request's query parameter delay_ms=N (0..60000) adds N ms before
   its answer: a benchmark's tools of different speeds on one route.

   One thread per connection (libmicrohttpd's), so that a slow or hanging answer holds up no
   other. Stopping wakes every waiting answer, hanging ones included. */
#ifndef BANKAPI_SERVER_H
#define BANKAPI_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "bankapi_faults.h"
#include "cv_error.h"
#include "cv_log.h"

#define BANKAPI_DEFAULT_PORT 8090

/* The service's configuration (plain data, bound to its settings by bankapi_settings). */
typedef struct {
    const char *http_address; /* IPv4 address to listen on */
    int http_port;            /* 0 picks a free one */
    const char *instance;
    const char *as_of; /* the day deliveries are told as of, "YYYY-MM-DD"; "" for today (UTC) */
    int seed;          /* which requests a fail rate fails */
    bool test_control; /* the /_test/ routes */
    int delay_ms;      /* the flags' fault, as read ... */
    int fail_rate;
    int status;
    const char *retry_after;
    bankapi_fault_t fault; /* ... and as served, on fault_route (BANKAPI_ROUTE_COUNT: all) */
    int fault_route;
    cv_log_t *log; /* borrowed */
} bankapi_config_t;

typedef struct _bankapi_server_t bankapi_server_t;

/* Starts serving per config (borrowed; it outlives the server); NULL with err when it cannot
   listen or config is wrong. */
bankapi_server_t *bankapi_server_new (const bankapi_config_t *config, cv_error_t *err) CV_MUST_CHECK;
/* Stops (promptly, even with answers hanging) and frees. */
void bankapi_server_destroy (bankapi_server_t **self_p);

/* The port it listens on. */
int bankapi_server_port (const bankapi_server_t *self);
/* Its faults, for tests in process (borrowed). */
bankapi_faults_t *bankapi_server_faults (bankapi_server_t *self);
/* Requests answered or refused so far, the /_test/ ones and /healthz included. */
uint64_t bankapi_server_requests (bankapi_server_t *self);

/* The server as an actor, for cv_launcher: serves until $TERM. config outlives it. */
zactor_t *bankapi_server_start (const bankapi_config_t *config, cv_error_t *err);

void bankapi_server_test (bool verbose);

#endif
