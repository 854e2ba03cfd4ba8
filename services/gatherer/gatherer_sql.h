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
#include "gatherer_result.h"
#include "gatherer_tools.h"

typedef struct _gatherer_sql_call_t gatherer_sql_call_t;

/* The tool's result is in (the caller's result, given to gatherer_sql_start). The call is gone. */
typedef void (gatherer_sql_done_fn) (void *arg);

/* Starts tool on pool and returns; fills *result and calls done with arg once, later, from a
   callback of the pool's loop. Parameters are context paths (cv_template_lookup): scalars go as
   text, objects and arrays as JSON text, a missing or null value as SQL NULL; a parameter with
   a fixed text goes as that text; context is read now only. deadline_us is the request's deadline on the zclock_usecs
   clock, 0 for none. */
gatherer_sql_call_t *gatherer_sql_start (cv_pgpool_t *pool, const gatherer_tool_t *tool, const json_t *context,
                                         int64_t deadline_us, gatherer_result_t *result, gatherer_sql_done_fn *done,
                                         void *arg);

/* Gives up on a call not done yet: done is never called, result is left as it is, the
   statement is cancelled, and the call is gone. */
void gatherer_sql_forget (gatherer_sql_call_t *call);

void gatherer_sql_test (bool verbose);

#endif
