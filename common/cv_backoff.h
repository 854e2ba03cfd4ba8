/* The retry schedule: how long to wait before the next attempt at a call that failed, whether to
   try again at all, and which failures are worth another attempt.

   Waits are exponential with full jitter: before retry n (n = 0 after the first attempt failed)
   the wait is drawn uniformly from [0, min (cap_ms, base_ms * 2^n)], so that callers that failed
   together do not come back together. A Retry-After the server sent replaces the draw. Either
   way the wait must leave time for the attempt: cv_backoff_next says "no more attempts" when the
   attempts are used up or when the wait would reach the caller's deadline.

   The random source is a small generator (splitmix64) whose whole state the caller holds, so a
   test seeds it and gets the same waits every run; nothing here reads a clock or global state.
   A cv_backoff_t is plain data, read only, and may be shared; a cv_backoff_rng_t belongs to one
   thread (or one event loop): seed each with something that differs between them (the clock, the
   process id, the state's address). */
#ifndef CV_BACKOFF_H
#define CV_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_error.h"

/* A Retry-After in seconds larger than this reads as this (RFC 9111's rule for delta-seconds
   that overflow: 2^31 s, some 68 years; the deadline cuts it short anyway). */
#define CV_BACKOFF_RETRY_AFTER_MAX_S 2147483648ULL

/* cv_backoff_next's retry_after_ms when the server asked for no particular wait. */
#define CV_BACKOFF_NO_RETRY_AFTER (-1)

/* A schedule (plain data). */
typedef struct {
    uint64_t base_ms;      /* the first retry's ceiling; 0 retries at once */
    uint64_t cap_ms;       /* no ceiling above this; >= base_ms */
    unsigned max_attempts; /* attempts in all, the first one included; >= 1 (1: never retry) */
} cv_backoff_t;

/* The random source's state (plain data): seed it with cv_backoff_seed. */
typedef struct {
    uint64_t state;
} cv_backoff_rng_t;

/* What went wrong with an attempt, as far as retrying cares. */
typedef enum {
    CV_BACKOFF_CONNECT, /* no connection, or it broke before an answer came */
    CV_BACKOFF_TIMEOUT, /* no answer in the attempt's time */
    CV_BACKOFF_HTTP     /* an answer with an HTTP status that is not a success */
} cv_backoff_failure_t;

/* Seeds rng: the same seed gives the same waits. */
void cv_backoff_seed (cv_backoff_rng_t *rng, uint64_t seed);
/* The next 64 random bits from rng. */
uint64_t cv_backoff_random (cv_backoff_rng_t *rng);

/* The ceiling of retry n's wait: min (cap_ms, base_ms * 2^retry), without overflow for any n. */
uint64_t cv_backoff_ceiling (const cv_backoff_t *schedule, unsigned retry);

/* Whether to try again after attempts (>= 1) attempts have failed, with remaining_ms left before
   the caller's deadline. retry_after_ms is the wait the server asked for (>= 0), or
   CV_BACKOFF_NO_RETRY_AFTER to draw one from the schedule. Returns true and sets *delay_ms to the
   wait before the next attempt; false (and *delay_ms 0) when the attempts are used up or the wait
   is not below remaining_ms. Only rng moves. */
bool cv_backoff_next (const cv_backoff_t *schedule, cv_backoff_rng_t *rng, unsigned attempts, int64_t retry_after_ms,
                      uint64_t remaining_ms, uint64_t *delay_ms) CV_MUST_CHECK;

/* Whether a failure is worth another attempt: connection errors, timeouts, HTTP 429 and 5xx are;
   any other status (every other 4xx above all: the same request gets the same refusal) never is.
   http_status is read for CV_BACKOFF_HTTP only. */
bool cv_backoff_retryable (cv_backoff_failure_t failure, int http_status);
/* "connect", "timeout" or "http", for logs. */
const char *cv_backoff_failure_name (cv_backoff_failure_t failure);

/* Reads a Retry-After header's value (without the name): delta-seconds ("120") or an HTTP-date
   ("Wed, 21 Oct 2015 07:28:00 GMT", and the obsolete RFC 850 and asctime forms, as libcurl's
   curl_getdate reads them), with spaces around allowed. Sets *delay_ms to the wait it asks for
   from now_ms (ms since the epoch): a date already past is 0. Returns 0, or -1 when value is
   neither form (and leaves *delay_ms alone). */
int cv_backoff_retry_after (const char *value, uint64_t now_ms, uint64_t *delay_ms) CV_MUST_CHECK;

void cv_backoff_test (bool verbose);

#endif
