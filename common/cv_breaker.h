/* A circuit breaker: stops calling a dependency that keeps failing, and tries it again, once,
   after a cool-down.

     CLOSED --threshold consecutive failures, or the failure rate over the window--> OPEN
     OPEN --cool-down passed, allow--> HALF_OPEN
     HALF_OPEN --the trial call succeeds--> CLOSED
     HALF_OPEN --the trial call fails--> OPEN (a new cool-down)

   Two rules open a closed breaker, whichever comes first: threshold consecutive failures (always
   on), and, when cv_breaker_set_rate has set it, a failure rate: at least min_calls outcomes
   reported in the last window_ms, of which at least failure_percent % failed. The window is a
   ring of CV_BREAKER_BUCKETS buckets of window_ms / CV_BREAKER_BUCKETS each, kept inside the
   breaker (no allocation per call): it slides a bucket at a time, so an outcome counts for
   between window_ms - one bucket and window_ms after it was reported. Closing the breaker
   empties the window: the failures that opened it do not count against the calls after.

   While HALF_OPEN exactly one trial call is let through; others are refused until its outcome is
   reported. A trial whose outcome is never reported (a caller's bug, or a caller that died) is
   given up after another cool-down, and a new trial is let through.

   The caller passes the time (now_ms, any clock that does not go backwards much) to every
   method, so tests move time by hand instead of sleeping. One breaker may be shared by the
   threads of a process (one per endpoint, say): every method takes the breaker's mutex, so each
   call sees and moves the state as one step. Separate calls are separate steps: read the state and
   counters together through cv_breaker_stats. */
#ifndef CV_BREAKER_H
#define CV_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_assert.h"

/* The rate window's buckets. */
#define CV_BREAKER_BUCKETS 10

typedef enum {
    CV_BREAKER_CLOSED,   /* calls go through; failures are counted */
    CV_BREAKER_OPEN,     /* calls are refused until the cool-down has passed */
    CV_BREAKER_HALF_OPEN /* one trial call is let through; its outcome closes or reopens */
} cv_breaker_state_t;

/* Why the breaker last opened, for logs. */
typedef enum {
    CV_BREAKER_NEVER_OPENED, /* it has not opened yet */
    CV_BREAKER_CONSECUTIVE,  /* threshold consecutive failures */
    CV_BREAKER_RATE,         /* the failure rate over the window */
    CV_BREAKER_TRIAL_FAILED  /* the half-open trial failed */
} cv_breaker_cause_t;

/* What the breaker holds at one moment, read in one step (plain data). */
typedef struct {
    cv_breaker_state_t state;
    cv_breaker_cause_t cause; /* why it last opened */
    unsigned failures;        /* consecutive, since the last success */
    unsigned window_calls;    /* outcomes reported in the window as of now_ms (while CLOSED) */
    unsigned window_failures; /* of which failed */
    uint64_t retry_at;        /* as cv_breaker_retry_at */
    uint64_t opened;          /* times opened, ever */
    uint64_t allowed;         /* calls let through, ever */
    uint64_t refused;         /* calls refused, ever */
} cv_breaker_stats_t;

typedef struct _cv_breaker_t cv_breaker_t;

/* A closed breaker that opens after threshold (>= 1) consecutive failures and stays open for
   cooldown_ms (>= 1). The rate rule is off until cv_breaker_set_rate. */
cv_breaker_t *cv_breaker_new (unsigned threshold, uint64_t cooldown_ms);
void cv_breaker_destroy (cv_breaker_t **self_p);

/* Turns the rate rule on: a closed breaker also opens when the last window_ms (>=
   CV_BREAKER_BUCKETS; rounded down to a multiple of it) hold at least min_calls (>= 1) reported
   outcomes and at least failure_percent (1..100) % of them failed. Empties the window. Set it
   before the breaker is shared, or at any time: it takes the mutex like every method. */
void cv_breaker_set_rate (cv_breaker_t *self, unsigned min_calls, uint64_t window_ms, unsigned failure_percent);

/* Whether a call may go ahead now. Moves OPEN to HALF_OPEN once the cool-down has passed, and
   then lets exactly one trial through. Every allowed call must be followed by cv_breaker_success
   or cv_breaker_failure. */
bool cv_breaker_allow (cv_breaker_t *self, uint64_t now_ms);

/* Reports the outcome of an allowed call. A success closes the breaker and clears the consecutive
   count; a failure counts, opens a closed breaker when either rule says so, and reopens a
   half-open one. While CLOSED both outcomes also go into the window. */
void cv_breaker_success (cv_breaker_t *self, uint64_t now_ms);
void cv_breaker_failure (cv_breaker_t *self, uint64_t now_ms);
/* Reports an outcome as those do (failed or not), and returns the state before it, with the stats
   after it in *after (when not NULL), all in one step: a caller that logs the breaker's moves sees
   its own report's move, whatever other threads report. */
cv_breaker_state_t cv_breaker_report (cv_breaker_t *self, bool failed, uint64_t now_ms, cv_breaker_stats_t *after);

/* The state as last moved (OPEN becomes HALF_OPEN only in cv_breaker_allow). */
cv_breaker_state_t cv_breaker_state (const cv_breaker_t *self);
/* "closed", "open" or "half-open", for logs and metrics. */
const char *cv_breaker_state_name (cv_breaker_state_t state);
/* The state as a breaker gauge shows it: 0 closed, 1 half-open, 2 open. */
double cv_breaker_state_number (cv_breaker_state_t state);
/* "never", "consecutive", "rate" or "trial", for logs. */
const char *cv_breaker_cause_name (cv_breaker_cause_t cause);

/* Consecutive failures counted since the last success. */
unsigned cv_breaker_failures (const cv_breaker_t *self);
/* While OPEN: when the next trial may go (now_ms of the opening + cool-down); else 0. */
uint64_t cv_breaker_retry_at (const cv_breaker_t *self);
/* How many times the breaker has opened, for metrics. */
uint64_t cv_breaker_opened (const cv_breaker_t *self);
/* Fills stats with everything above, and the window as of now_ms, in one step. */
void cv_breaker_stats (const cv_breaker_t *self, uint64_t now_ms, cv_breaker_stats_t *stats);

void cv_breaker_test (bool verbose);

#endif
