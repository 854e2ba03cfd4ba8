/* One tool's outcome, whatever its kind: what gatherer_sql and gatherer_http fill for an attempt,
   and gatherer_call for the whole call (attempts, cache, breaker), in the same fields, so that
   the retry layer, the breaker and the Evidence read every kind alike. */
#ifndef GATHERER_RESULT_H
#define GATHERER_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_backoff.h"
#include "cv_envelope.h"

#define GATHERER_RESULT_ERROR_BYTES 512

/* One tool's outcome. Plain data; gatherer_result_reset frees data. */
typedef struct {
    Conveyor__V1__ToolResult__Status status;
    uint8_t *data; /* when OK: msgpack array of rows, malloc'd; else NULL */
    size_t size;
    size_t rows;                             /* rows in data */
    size_t dropped;                          /* rows past max_rows, not in data */
    bool cancelled;                          /* TIMED_OUT and a cancel request reached the server */
    bool by_deadline;                        /* TIMED_OUT by the request's deadline, not the tool's timeout */
    unsigned attempts;                       /* times it was sent: 0 when it never got a connection */
    bool dependency;                         /* FAILED or TIMED_OUT because of what the tool calls (failure says how),
                                                not because of its own request (an SQL error, an HTTP 4xx) */
    cv_backoff_failure_t failure;            /* when dependency: connection, timeout, or HTTP status */
    int http_status;                         /* when failure is CV_BACKOFF_HTTP */
    int64_t retry_after_ms;                  /* the wait the answer asked for, or CV_BACKOFF_NO_RETRY_AFTER */
    bool cached;                             /* served from the cache (gatherer_call) */
    bool breaker_open;                       /* refused at once by the tool's breaker (gatherer_call) */
    uint64_t cost_micros;                    /* the tool's cost times the attempts sent (gatherer_call) */
    char error[GATHERER_RESULT_ERROR_BYTES]; /* why it failed or timed out, one line; "" when OK */
    int64_t started_us;                      /* monotonic clock (zclock_usecs): when it was started ... */
    int64_t finished_us;                     /* ... and when its outcome was known */
} gatherer_result_t;

/* Frees a result's data and clears it. */
void gatherer_result_reset (gatherer_result_t *result);

void gatherer_result_test (bool verbose);

#endif
