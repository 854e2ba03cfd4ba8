/* How the bank API misbehaves when a test asks it to, per route: slow, failing with a status
   (500, 429 with Retry-After...), hanging, closing the connection, or sending malformed or
   oversized JSON.

   Each route ("fx", "deliveries") has a fault: every request on it waits delay_ms first, then
   fail_rate percent of them fail in the fault's mode (the others are answered as usual). Which
   requests fail is drawn from a generator seeded at start, so a run with the same seed and the
   same requests fails the same ones. A fault is set from flags at start (bankapi_faults_set) and
   over HTTP while the service runs, as JSON (bankapi_faults_set_json):
     {"route": "fx|deliveries|all", "delay_ms": N, "fail_rate": 0..100,
      "mode": "status|hang|close|malformed|oversized", "status": N, "retry_after": "TEXT"}
   where keys left out keep their defaults (no delay, fail_rate 100 when a mode is given, status
   500, no Retry-After). Thread-safe: the service's connection threads share one. */
#ifndef BANKAPI_FAULTS_H
#define BANKAPI_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_error.h"

/* The size of an oversized answer: a JSON body over 1 MiB. */
#define BANKAPI_OVERSIZED_BYTES (1024 * 1024 + 1)

typedef enum { BANKAPI_ROUTE_FX, BANKAPI_ROUTE_DELIVERIES, BANKAPI_ROUTE_COUNT } bankapi_route_t;

typedef enum {
    BANKAPI_FAIL_STATUS,    /* answers status (and Retry-After when set), with a JSON error */
    BANKAPI_FAIL_HANG,      /* never answers: until the client goes away or the service stops */
    BANKAPI_FAIL_CLOSE,     /* drops the connection without answering */
    BANKAPI_FAIL_MALFORMED, /* 200 with a body that is not JSON (cut off half-way) */
    BANKAPI_FAIL_OVERSIZED  /* 200 with a valid JSON body of BANKAPI_OVERSIZED_BYTES */
} bankapi_fail_mode_t;

/* A route's fault (plain data). */
typedef struct {
    unsigned delay_ms;
    unsigned fail_rate; /* percent of requests that fail, 0..100 */
    bankapi_fail_mode_t mode;
    unsigned status;      /* BANKAPI_FAIL_STATUS: 100..599 */
    char retry_after[64]; /* BANKAPI_FAIL_STATUS: the Retry-After header, "" for none */
} bankapi_fault_t;

/* What one request does. */
typedef struct {
    unsigned delay_ms;
    bool fail;
    bankapi_fault_t fault; /* when fail */
} bankapi_verdict_t;

typedef struct _bankapi_faults_t bankapi_faults_t;

/* Every route well behaved; seed drives which requests fail. */
bankapi_faults_t *bankapi_faults_new (uint64_t seed);
void bankapi_faults_destroy (bankapi_faults_t **self_p);

/* Sets route's fault (all routes for BANKAPI_ROUTE_COUNT). */
void bankapi_faults_set (bankapi_faults_t *self, bankapi_route_t route, const bankapi_fault_t *fault);
/* Sets a fault from its JSON form; -1 with err (a message for the test) otherwise. */
int bankapi_faults_set_json (bankapi_faults_t *self, const char *text, cv_error_t *err) CV_MUST_CHECK;
/* Every route well behaved again. */
void bankapi_faults_reset (bankapi_faults_t *self);
/* The faults as JSON, {"fx": {...}, "deliveries": {...}} (new reference). */
json_t *bankapi_faults_json (bankapi_faults_t *self);

/* What the next request on route does. */
bankapi_verdict_t bankapi_faults_decide (bankapi_faults_t *self, bankapi_route_t route);

/* "fx" or "deliveries"; the route of that name (BANKAPI_ROUTE_COUNT for "all"), -1 for none. */
const char *bankapi_faults_route_name (bankapi_route_t route);
int bankapi_faults_route_parse (const char *name);
/* "status", "hang", "close", "malformed" or "oversized"; the mode of that name, -1 for none. */
const char *bankapi_faults_mode_name (bankapi_fail_mode_t mode);
int bankapi_faults_mode_parse (const char *name);

void bankapi_faults_test (bool verbose);

#endif
