/* One PostgreSQL connection driven without blocking, so a caller can run several at once under
   one poll(): open it (lazily, again when it broke), send one parameterised statement, read its
   rows, cancel it on the server when it runs too long.

   Statements are prepared: the first run of a text on a session prepares it (one round trip
   more, on first use only), later runs execute the prepared statement. A session prepares at
   most CV_PGCONN_PREPARED_MAX texts (a tool set is small); past that, new texts run unprepared,
   still parameterised, until the connection is opened again, which forgets them all
   (cv_pgconn_names). A statement the server says it does not know, or whose plan no longer
   fits its tables, closes the session and runs once more on a fresh one.

   Sessions are read-only (default_transaction_read_only=on) unless made writable, in UTF-8, and named after the
   caller (application_name) in pg_stat_activity. Rows come in single-row mode, so a statement
   that returns more than max_rows costs time (bounded by the caller's timeout), not memory.

   Life of a statement:
     IDLE --start--> CONNECTING --> SENDING --> READING --> DONE --reset--> IDLE
   start goes straight to SENDING when an open connection is healthy, and to DONE when it fails at
   once. abandon lets a connection still opening go on opening for the next statement or, once
   the statement has been sent, takes it to CANCELLING: the server is asked to cancel it and the
   connection finishes the statement in the background. A caller on an event loop polls it and
   advances it like a running statement until it is IDLE again (abandon once more closes it);
   otherwise the next start waits briefly for that, or closes the connection. So giving up on a
   statement costs its caller no waiting.

   libpq 15 has no non-blocking cancel: PQcancel connects to the server and waits for it to take
   the request, which is quick while the server is up. libpq 17's PQcancelStart would remove that
   wait. */
#ifndef CV_PGCONN_H
#define CV_PGCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef enum {
    CV_PGCONN_IDLE,       /* no statement; a connection may be open, or not */
    CV_PGCONN_CONNECTING, /* opening the connection; the statement waits for it */
    CV_PGCONN_SENDING,    /* statement handed to libpq, which is still writing it */
    CV_PGCONN_READING,    /* waiting for rows and the end of the statement */
    CV_PGCONN_DONE,       /* finished, succeeded or not: read the outcome, then reset */
    CV_PGCONN_CANCELLING  /* abandoned after it was sent: a cancel request is on its way */
} cv_pgconn_state_t;

typedef struct _cv_pgconn_t cv_pgconn_t;

/* A connection to url (a libpq URI or key=value string) named application_name; opens nothing
   yet. Both strings are copied. */
cv_pgconn_t *cv_pgconn_new (const char *url, const char *application_name);
void cv_pgconn_destroy (cv_pgconn_t **self_p);

/* Starts sql with count text parameters (NULL entries are SQL NULL; all copied), keeping at most
   max_rows rows. Must be IDLE or CANCELLING; from CANCELLING it first waits up to
   CV_PGCONN_SETTLE_MS for the cancelled statement to end (asking again: the server ignores a
   cancel that arrives before the statement starts), else closes the connection. Opens the
   connection when none is open or the open one is broken. Otherwise never blocks. */
#define CV_PGCONN_SETTLE_MS 100
void cv_pgconn_start (cv_pgconn_t *self, const char *sql, size_t count, const char *const *params, size_t max_rows);

/* What to poll while CONNECTING, SENDING, READING or CANCELLING: the socket and POLLIN/POLLOUT. */
int cv_pgconn_fd (const cv_pgconn_t *self);
short cv_pgconn_events (const cv_pgconn_t *self);

/* Makes what progress the socket allows; call when poll() reports it. May move to DONE, or from
   CANCELLING to IDLE once the cancelled statement has ended. */
void cv_pgconn_advance (cv_pgconn_t *self);

cv_pgconn_state_t cv_pgconn_state (const cv_pgconn_t *self);

/* Once DONE: whether the statement succeeded; its rows (a JSON array of objects, column name to
   text or null; borrowed, valid until reset), how many rows past max_rows were dropped, and why
   it failed (one line, "" when it did not). */
bool cv_pgconn_succeeded (const cv_pgconn_t *self);
json_t *cv_pgconn_rows (const cv_pgconn_t *self);
size_t cv_pgconn_dropped (const cv_pgconn_t *self);
const char *cv_pgconn_error (const cv_pgconn_t *self);
/* Once DONE: whether it failed on the connection (it could not open, broke, or the server ended
   the session) rather than on the statement itself: worth another try, where a statement error
   would only come again. */
bool cv_pgconn_lost (const cv_pgconn_t *self);

/* From DONE back to IDLE, keeping a healthy connection for the next statement. */
void cv_pgconn_reset (cv_pgconn_t *self);

/* Gives up on the running statement without waiting. A connection still opening goes on
   opening, for the next statement, without running this one (it stays CONNECTING and becomes IDLE
   once open, or once it failed): a server slow to accept is not given a new connection for every
   statement. A sent statement is cancelled on the server (to CANCELLING; to IDLE with the
   connection closed when the request cannot be sent). Returns true when a cancel request reached
   the server. From CANCELLING, or CONNECTING for no statement, closes the connection (to IDLE). */
bool cv_pgconn_abandon (cv_pgconn_t *self);

/* While CANCELLING: asks the server again to cancel the statement, as it ignores a request that
   arrives before the statement has started; true when the request reached it. A caller on an
   event loop repeats it every CV_PGCONN_CANCEL_REPEAT_MS until the statement has ended. */
#define CV_PGCONN_CANCEL_REPEAT_MS 25
bool cv_pgconn_recancel (cv_pgconn_t *self);

/* True while a connection is open (for tests and probes). */
bool cv_pgconn_open (const cv_pgconn_t *self);

/* Statements the open session has prepared (0 with none open), for tests and probes. */
#define CV_PGCONN_PREPARED_MAX 64
size_t cv_pgconn_prepared (const cv_pgconn_t *self);
/* Prepares at most max texts per session instead (for tests); only while no connection is open. */
void cv_pgconn_set_prepared_max (cv_pgconn_t *self, size_t max);

/* Lets this connection's sessions write (default_transaction_read_only=off): for a caller whose
   statements change data, such as the executor's actions, under a role granted only that. Only
   while no connection is open. */
void cv_pgconn_set_writable (cv_pgconn_t *self);

void cv_pgconn_test (bool verbose);

#endif
