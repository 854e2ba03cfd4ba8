/* One PostgreSQL connection in pipeline mode, driven from a zloop without ever blocking it, with
   group commit.

   The statements a caller will run are prepared once on each connection. Each run is queued and
   its caller hears of it once, through its done callback, when the transaction that ran it has
   committed (or failed). While one transaction is in flight, the runs queued meanwhile wait, and
   all of them go together as the next one: many callers, one commit. A run that fails on its own
   (a constraint, bad data) fails alone: the others of its transaction are sent again without it.

   Life of the connection:
     CONNECTING --> PREPARING --> READY <--> BUSY
         ^                          |         |
         +------ DOWN <-------------+---------+   (connection lost, or no answer in timeout_ms)
   DOWN fails every queued run with UNAVAILABLE and refuses new ones until a new connection
   (tried after a backoff: 0.1 s, doubling to 2 s) is up again, so callers learn at once that the
   database is away rather than waiting on it. The socket is watched while READY too, so a server
   that goes away between transactions is noticed before the next run.

   Host names are resolved by libpq when a connection starts, which blocks: give an IP address (as
   every conveyor default does) where that matters. */
#ifndef CV_PGPIPE_H
#define CV_PGPIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>
#include <libpq-fe.h>

#include "cv_error.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_pg.h"

typedef struct _cv_pgpipe_t cv_pgpipe_t;

typedef struct {
    const char *name; /* the prepared statement's name */
    const char *sql;  /* one statement, parameters $1..$n */
    int param_count;
    bool binary_results; /* results in binary format (bytea as raw bytes; cast the rest to text) */
} cv_pgpipe_statement_t;

typedef struct {
    const char *url; /* a libpq URI or key=value string */
    const char *application_name;
    const cv_pgpipe_statement_t *statements; /* borrowed; must outlive the pipe */
    size_t statement_count;
    int timeout_ms;    /* a connection or a transaction slower than this is lost */
    size_t max_batch;  /* runs per transaction */
    size_t max_queued; /* runs waiting or in flight; beyond, run refuses */
    cv_log_t *log;     /* borrowed */
    /* Optional histogram series (borrowed): each committed transaction's runs, and its time from
       being sent to its commit, in seconds. */
    cv_metric_t *transaction_runs;
    cv_metric_t *commit_seconds;
} cv_pgpipe_config_t;

/* result is the run's result (borrowed, valid during the call; read it with cv_pg_result_*) and err NULL, or result
   NULL and err set: UNAVAILABLE when the connection failed, INTERNAL when the statement failed. */
typedef void (cv_pgpipe_done_fn) (void *arg, const cv_pg_result_t *result, const cv_error_t *err);

/* Starts connecting at once; registers with loop. config is copied (not what it points to). */
cv_pgpipe_t *cv_pgpipe_new (zloop_t *loop, const cv_pgpipe_config_t *config);
/* Closes the connection; queued runs are dropped without their callbacks. */
void cv_pgpipe_destroy (cv_pgpipe_t **self_p);

/* Queues one run of statement `statement` (an index into config.statements) with its parameters:
   values[i] (NULL is SQL NULL) of lengths[i] bytes in formats[i] (0 text, 1 binary; lengths and
   formats may be NULL for all text). Everything is copied. done is called exactly once, later,
   never from inside this call. Returns -1 with err (UNAVAILABLE) and forgets the run when the
   connection is DOWN or the queue is full. */
int cv_pgpipe_run (cv_pgpipe_t *self, size_t statement, const char *const *values, const int *lengths,
                   const int *formats, cv_pgpipe_done_fn *done, void *arg, cv_error_t *err) CV_MUST_CHECK;

/* While corked, runs are queued even when the connection is idle; uncorking sends them, as one
   transaction. For a caller that queues several runs which should commit together. */
void cv_pgpipe_cork (cv_pgpipe_t *self, bool corked);

/* Closes the connection for good: every run queued or in flight fails at once (its done called
   with UNAVAILABLE and why), and new runs are refused. For an orderly stop, where each caller
   still hears of its runs. */
void cv_pgpipe_abort (cv_pgpipe_t *self, const char *why);

/* Forgets every run whose arg is arg: queued ones are dropped, one in flight still runs, and no
   callback comes for any of them. */
void cv_pgpipe_cancel (cv_pgpipe_t *self, void *arg);

/* False while DOWN. */
bool cv_pgpipe_up (const cv_pgpipe_t *self);
/* Runs queued or in flight. */
size_t cv_pgpipe_queued (const cv_pgpipe_t *self);
/* Committed transactions and the runs they carried, since the pipe was made. */
void cv_pgpipe_counts (const cv_pgpipe_t *self, uint64_t *commits, uint64_t *runs);
/* Connections made ready (connected, statements prepared) since the pipe was made. */
uint64_t cv_pgpipe_connections (const cv_pgpipe_t *self);
/* Why the connection last failed, "" when it has not. */
const char *cv_pgpipe_last_error (const cv_pgpipe_t *self);

void cv_pgpipe_test (bool verbose);

#endif
