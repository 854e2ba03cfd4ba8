/* A pool of PostgreSQL connections (cv_pgconn; read-only unless made writable) driven by a zloop, so that one thread
   runs the statements of many requests at once without ever blocking on the database.

   Each statement is queued and runs on the first free connection, within its own time limit
   (prepared there the first time that connection runs its text: cv_pgconn.h), and its caller
   hears of it exactly once, through its done callback, from a callback of the loop: never from
   inside cv_pgpool_run, so a caller may start several statements in a row and read their
   outcomes later. A caller that no longer wants an outcome forgets the run: done is
   then never called, and a statement already sent is cancelled on the server.

   A statement that reaches its limit is abandoned (cancelled on the server) and reported as
   timed out. Its connection stays out of use until the cancelled statement has ended, or is
   closed when that takes longer than CV_PGPOOL_SETTLE_MS, so no statement ever waits behind
   one that was given up on. A statement that reaches its limit while its connection is still
   opening leaves the connection to open, for the statements after it (closed if that takes
   longer than CV_PGPOOL_CONNECT_MS): a server slow to accept is not given a new connection for
   every statement. Connections open lazily, re-open when they broke, and keep serving
   while PostgreSQL is down: each statement then fails on its own, at once.

   Not thread-safe: a pool belongs to its loop's thread. */
#ifndef CV_PGPOOL_H
#define CV_PGPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_pgconn.h"

#define CV_PGPOOL_SETTLE_MS 1000
#define CV_PGPOOL_CONNECT_MS 10000

typedef struct _cv_pgpool_t cv_pgpool_t;
typedef struct _cv_pgpool_run_t cv_pgpool_run_t;

/* How a run ended. */
typedef struct {
    bool timed_out;          /* the limit came first: nothing to read */
    bool waited;             /* timed out still queued, with every connection busy */
    bool connecting;         /* timed out while its connection was still opening */
    bool cancelled;          /* timed out once sent, and a cancel request reached the server */
    const cv_pgconn_t *conn; /* when it did not time out: DONE; read succeeded, rows, dropped and error
                                (cv_pgconn.h), valid during the callback only */
    int64_t started_us;      /* when cv_pgpool_run was called, on the zclock_usecs clock ... */
    int64_t finished_us;     /* ... and when its outcome was known */
} cv_pgpool_outcome_t;

/* A run's outcome (borrowed, valid during the call). The run is gone once this returns. */
typedef void (cv_pgpool_done_fn) (void *arg, const cv_pgpool_outcome_t *outcome);

/* size connections (>= 1) to url, each named application_name; opens nothing yet. Registers with
   loop (borrowed; it outlives the pool). Strings are copied. */
cv_pgpool_t *cv_pgpool_new (zloop_t *loop, const char *url, const char *application_name, size_t size);
/* Abandons what runs and drops what waits, without calling any done. */
void cv_pgpool_destroy (cv_pgpool_t **self_p);

/* Queues sql with count text parameters (NULL entries are SQL NULL; all copied), keeping at most
   max_rows rows, to finish by until_us (zclock_usecs; already passed: timed out at once). done
   is called once, later, with arg. The run is valid until then, or until forgotten. */
cv_pgpool_run_t *cv_pgpool_run (cv_pgpool_t *self, const char *sql, size_t count, const char *const *params,
                                size_t max_rows, int64_t until_us, cv_pgpool_done_fn *done, void *arg);

/* The caller no longer wants run's outcome: done is never called, a sent statement is cancelled,
   and run is gone. */
void cv_pgpool_forget (cv_pgpool_t *self, cv_pgpool_run_t *run);

/* Lets the pool's sessions write (cv_pgconn_set_writable), before it runs anything: the executor's
   pool, whose statements are the bank's actions. */
void cv_pgpool_set_writable (cv_pgpool_t *self);

/* The loop the pool runs on (borrowed). */
zloop_t *cv_pgpool_loop (const cv_pgpool_t *self);

/* Connections in all; running a statement (or settling a cancelled one); runs waiting for one. */
size_t cv_pgpool_size (const cv_pgpool_t *self);
size_t cv_pgpool_busy (const cv_pgpool_t *self);
size_t cv_pgpool_waiting (const cv_pgpool_t *self);

void cv_pgpool_test (bool verbose);

#endif
