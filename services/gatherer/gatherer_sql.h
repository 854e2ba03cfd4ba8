/* Runs the SQL tools of one request's plan in parallel: each tool on its own connection of a
   small pool (cv_pgconn), its parameters taken from the request's context, all of them under
   one poll() until each has finished or reached its own timeout — the smaller of the tool's
   timeout_ms and the request's deadline — when it is cancelled on the server.

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

#include "cv_envelope.h"
#include "gatherer_tools.h"

#define GATHERER_SQL_ERROR_BYTES 512

/* One tool's outcome. Plain data; gatherer_sql_result_reset frees data. */
typedef struct {
    Conveyor__V1__ToolResult__Status status;
    uint8_t *data; /* when OK: msgpack array of rows, malloc'd; else NULL */
    size_t size;
    size_t rows;                          /* rows in data */
    size_t dropped;                       /* rows past max_rows, not in data */
    bool cancelled;                       /* TIMED_OUT and a cancel request reached the server */
    char error[GATHERER_SQL_ERROR_BYTES]; /* why it failed or timed out, one line; "" when OK */
    int64_t started_us;                   /* monotonic clock (zclock_usecs): when it was started ... */
    int64_t finished_us;                  /* ... and when its outcome was known */
} gatherer_sql_result_t;

typedef struct _gatherer_sql_t gatherer_sql_t;

/* A pool of size connections (one per tool of the largest plan) to url, each named
   application_name (the worker instance). Opens nothing yet. Strings are copied. */
gatherer_sql_t *gatherer_sql_new (const char *url, const char *application_name, size_t size);
void gatherer_sql_destroy (gatherer_sql_t **self_p);

size_t gatherer_sql_size (const gatherer_sql_t *self);

/* Runs count tools (at most the pool's size) at once and fills results[i] for tools[i].
   Parameters are context paths (cv_template_lookup): scalars go as text, objects and arrays as
   JSON text, a missing or null value as SQL NULL. deadline_us is the request's deadline on the
   zclock_usecs clock, 0 for none. Returns when every tool has its result. */
void gatherer_sql_run (gatherer_sql_t *self, const gatherer_tool_t *const *tools, size_t count, const json_t *context,
                       int64_t deadline_us, gatherer_sql_result_t *results);

/* Frees a result's data and clears it. */
void gatherer_sql_result_reset (gatherer_sql_result_t *result);

void gatherer_sql_test (bool verbose);

#endif
