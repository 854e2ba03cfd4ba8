/* Runs one SQL tool through the gatherer's connection pool (cv_pgpool, on the worker's loop):
   its parameters taken from the request's context, within the smaller of the tool's timeout_ms
   and the request's deadline, when it is cancelled on the server.

   Every tool gets a result, whatever happens: OK with its rows (a msgpack array of row objects,
   column name to text, NULL as nil; rows past max_rows dropped), FAILED with the reason on one
   line (an SQL error, PostgreSQL unreachable), or TIMED_OUT. A failed tool never fails the
   request. The pool opens connections lazily and re-opens broken ones, so a worker keeps
   serving while PostgreSQL is down and recovers by itself when it is back. */
#ifndef GATHERER_SQL_H
#define GATHERER_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_backoff.h"
#include "cv_envelope.h"
#include "cv_pgpool.h"
#include "gatherer_tools.h"

#define GATHERER_SQL_ERROR_BYTES 512

/* One tool's outcome, whatever its kind (gatherer_call fills it for every kind through the same
   fields). Plain data; gatherer_sql_result_reset frees data. */
typedef struct {
    Conveyor__V1__ToolResult__Status status;
    uint8_t *data; /* when OK: msgpack array of rows, malloc'd; else NULL */
    size_t size;
    size_t rows;                          /* rows in data */
    size_t dropped;                       /* rows past max_rows, not in data */
    bool cancelled;                       /* TIMED_OUT and a cancel request reached the server */
    bool by_deadline;                     /* TIMED_OUT by the request's deadline, not the tool's timeout */
    unsigned attempts;                    /* times it was sent: 0 when it never got a connection */
    bool dependency;                      /* FAILED or TIMED_OUT because of what the tool calls (failure says how),
                                             not because of its own request (an SQL error, an HTTP 4xx) */
    cv_backoff_failure_t failure;         /* when dependency: connection, timeout, or HTTP status */
    int http_status;                      /* when failure is CV_BACKOFF_HTTP */
    int64_t retry_after_ms;               /* the wait the answer asked for, or CV_BACKOFF_NO_RETRY_AFTER */
    bool cached;                          /* served from the cache (gatherer_call) */
    bool breaker_open;                    /* refused at once by the tool's breaker (gatherer_call) */
    char error[GATHERER_SQL_ERROR_BYTES]; /* why it failed or timed out, one line; "" when OK */
    int64_t started_us;                   /* monotonic clock (zclock_usecs): when it was started ... */
    int64_t finished_us;                  /* ... and when its outcome was known */
} gatherer_sql_result_t;

typedef struct _gatherer_sql_call_t gatherer_sql_call_t;

/* The tool's result is in (the caller's result, given to gatherer_sql_start). The call is gone. */
typedef void (gatherer_sql_done_fn) (void *arg);

/* Starts tool on pool and returns; fills *result and calls done with arg once, later, from a
   callback of the pool's loop. Parameters are context paths (cv_template_lookup): scalars go as
   text, objects and arrays as JSON text, a missing or null value as SQL NULL; a parameter with
   a fixed text goes as that text; context is read now only. deadline_us is the request's deadline on the zclock_usecs
   clock, 0 for none. */
gatherer_sql_call_t *gatherer_sql_start (cv_pgpool_t *pool, const gatherer_tool_t *tool, const json_t *context,
                                         int64_t deadline_us, gatherer_sql_result_t *result, gatherer_sql_done_fn *done,
                                         void *arg);

/* Gives up on a call not done yet: done is never called, result is left as it is, the
   statement is cancelled, and the call is gone. */
void gatherer_sql_forget (gatherer_sql_call_t *call);

/* Frees a result's data and clears it. */
void gatherer_sql_result_reset (gatherer_sql_result_t *result);

void gatherer_sql_test (bool verbose);

#endif
