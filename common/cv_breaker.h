/* A circuit breaker: stops calling a dependency that keeps failing, and tries it again, once,
   after a cool-down.

     CLOSED --threshold consecutive failures--> OPEN --cool-down passed, allow--> HALF_OPEN
     HALF_OPEN --the trial call succeeds--> CLOSED
     HALF_OPEN --the trial call fails--> OPEN (a new cool-down)

   While HALF_OPEN exactly one trial call is let through; others are refused until its outcome is
   reported. A trial whose outcome is never reported (a caller's bug, or a caller that died) is
   given up after another cool-down, and a new trial is let through.

   The caller passes the time (now_ms, any clock that does not go backwards much) to every
   method, so tests move time by hand instead of sleeping. Not thread-safe: one breaker belongs to
   one thread. */
#ifndef CV_BREAKER_H
#define CV_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_assert.h"

typedef enum {
    CV_BREAKER_CLOSED,   /* calls go through; consecutive failures are counted */
    CV_BREAKER_OPEN,     /* calls are refused until the cool-down has passed */
    CV_BREAKER_HALF_OPEN /* one trial call is let through; its outcome closes or reopens */
} cv_breaker_state_t;

typedef struct _cv_breaker_t cv_breaker_t;

/* A closed breaker that opens after threshold (>= 1) consecutive failures and stays open for
   cooldown_ms (>= 1). */
cv_breaker_t *cv_breaker_new (unsigned threshold, uint64_t cooldown_ms);
void cv_breaker_destroy (cv_breaker_t **self_p);

/* Whether a call may go ahead now. Moves OPEN to HALF_OPEN once the cool-down has passed, and
   then lets exactly one trial through. Every allowed call must be followed by cv_breaker_success
   or cv_breaker_failure. */
bool cv_breaker_allow (cv_breaker_t *self, uint64_t now_ms);

/* Reports the outcome of an allowed call. A success closes the breaker and clears the count; a
   failure counts, opens a closed breaker at the threshold and reopens a half-open one. */
void cv_breaker_success (cv_breaker_t *self, uint64_t now_ms);
void cv_breaker_failure (cv_breaker_t *self, uint64_t now_ms);

/* The state as last moved (OPEN becomes HALF_OPEN only in cv_breaker_allow). */
cv_breaker_state_t cv_breaker_state (const cv_breaker_t *self);
/* "closed", "open" or "half-open", for logs and metrics. */
const char *cv_breaker_state_name (cv_breaker_state_t state);

/* Consecutive failures counted since the last success. */
unsigned cv_breaker_failures (const cv_breaker_t *self);
/* While OPEN: when the next trial may go (now_ms of the opening + cool-down); else 0. */
uint64_t cv_breaker_retry_at (const cv_breaker_t *self);
/* How many times the breaker has opened, for metrics. */
uint64_t cv_breaker_opened (const cv_breaker_t *self);

void cv_breaker_test (bool verbose);

#endif
