/* One PostgreSQL connection driven without blocking: open, prepare, send, read rows, cancel. */
#include "cv_pgconn.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>
#include <libpq-fe.h>

#include "cv_alloc.h"
#include "cv_pg.h"
#include "cv_pgconn_names.h"

#define ERROR_BYTES 512
/* Callers time statements out themselves (60 s at most); the server's limit is a backstop.
   Notices (a full-text search of a text without a word to look for raises one) would reach
   stderr as raw libpq lines, outside the JSON log: only warnings and errors are sent. */
#define SESSION_OPTIONS(ro)                                                                                            \
    "-c default_transaction_read_only=" ro " -c statement_timeout=65000 -c client_min_messages=warning"

struct _cv_pgconn_t {
    char *url;
    char *application_name;
    PGconn *conn;
    cv_pgconn_state_t state;
    PostgresPollingStatusType connect_wants; /* while CONNECTING: what PQconnectPoll waits for */
    bool reused;                             /* the statement went to a connection opened before it */
    bool retried;                            /* ...and was sent again on a fresh one */
    bool writable;                           /* sessions may write (cv_pgconn_set_writable) */
    cv_pgconn_names_t *names;                /* what this session has prepared */
    /* the statement */
    char preparing[CV_PGCONN_NAME_BYTES]; /* the name it is being prepared under, or "" */
    bool prepared;                        /* sent as a statement the session had prepared */
    bool stale;                           /* ...which the server no longer knows or must re-plan */
    char *sql;
    char **params;
    size_t param_count;
    size_t max_rows;
    /* its outcome */
    json_t *rows;
    size_t dropped;
    bool failed;
    bool lost; /* failed because the connection could not open or broke */
    char error[ERROR_BYTES];
};

cv_pgconn_t *
cv_pgconn_new (const char *url, const char *application_name)
{
    assert (url && application_name);
    cv_pgconn_t *self = cv_calloc (1, sizeof *self);
    self->url = cv_strdup (url);
    self->application_name = cv_strdup (application_name);
    self->rows = json_array ();
    self->names = cv_pgconn_names_new (CV_PGCONN_PREPARED_MAX);
    return self;
}

static void
s_close (cv_pgconn_t *self)
{
    PQfinish (self->conn);
    self->conn = NULL;
    /* the session's prepared statements went with it */
    cv_pgconn_names_clear (self->names);
    self->preparing[0] = '\0';
}

static void
s_forget_statement (cv_pgconn_t *self)
{
    for (size_t i = 0; i < self->param_count; i++)
        free (self->params[i]);
    free (self->params);
    free (self->sql);
    self->params = NULL;
    self->sql = NULL;
    self->param_count = 0;
    self->preparing[0] = '\0';
    self->prepared = self->stale = false;
}

void
cv_pgconn_destroy (cv_pgconn_t **self_p)
{
    assert (self_p);
    cv_pgconn_t *self = *self_p;
    if (!self)
        return;
    s_close (self);
    s_forget_statement (self);
    json_decref (self->rows);
    cv_pgconn_names_destroy (&self->names);
    free (self->url);
    free (self->application_name);
    free (self);
    *self_p = NULL;
}

/* Ends the statement as failed; the first reason wins. Messages become one line. */
static void s_fail (cv_pgconn_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_fail (cv_pgconn_t *self, const char *format, ...)
{
    if (!self->failed) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->error, sizeof self->error, format, args);
        va_end (args);
        /* one line: runs of white space (libpq's "\n\t") become one space, none at the end */
        char *out = self->error;
        for (const char *in = self->error; *in; in++) {
            bool space = *in == ' ' || *in == '\n' || *in == '\r' || *in == '\t';
            if (!space)
                *out++ = *in;
            else if (out > self->error && out[-1] != ' ')
                *out++ = ' ';
        }
        if (out > self->error && out[-1] == ' ')
            out--;
        *out = '\0';
    }
    self->failed = true;
    json_array_clear (self->rows);
    self->state = CV_PGCONN_DONE;
}

static void
s_fail_conn (cv_pgconn_t *self, const char *what)
{
    s_fail (self, "postgresql %s failed: %s", what, self->conn ? PQerrorMessage (self->conn) : "out of memory");
    self->lost = true;
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD)
        s_close (self);
}

static void
s_open (cv_pgconn_t *self)
{
    const char *keys[] = {"dbname", "application_name", "options", "client_encoding", NULL};
    /* After the URL, so these win over it: only a writable connection writes; a statement whose
       cancel went astray (or whose caller died) still ends on the server. */
    const char *options = self->writable ? SESSION_OPTIONS ("off") : SESSION_OPTIONS ("on");
    const char *values[] = {self->url, self->application_name, options, "UTF8", NULL};
    self->conn = PQconnectStartParams (keys, values, 1);
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail_conn (self, "connect");
        return;
    }
    /* As the libpq manual says: behave as if PQconnectPoll had asked for writing. */
    self->connect_wants = PGRES_POLLING_WRITING;
    self->state = CV_PGCONN_CONNECTING;
}

/* A connection left open by an earlier statement may have been closed by the server since (a
   restart, an idle timeout): reading what is pending finds out without sending anything. */
static bool
s_healthy (cv_pgconn_t *self)
{
    return PQstatus (self->conn) == CONNECTION_OK && PQtransactionStatus (self->conn) == PQTRANS_IDLE
           && PQconsumeInput (self->conn) && PQstatus (self->conn) == CONNECTION_OK;
}

static void
s_flush (cv_pgconn_t *self)
{
    int rc = PQflush (self->conn);
    if (rc < 0)
        s_fail_conn (self, "send");
    else
        self->state = rc == 0 ? CV_PGCONN_READING : CV_PGCONN_SENDING;
}

/* Sends the statement: the first run of its text on this session prepares it first (the
   execution follows once the server has taken it: s_collect); later runs execute what is
   prepared; past CV_PGCONN_PREPARED_MAX a new text runs unprepared, parameterised all the same. */
static void
s_send (cv_pgconn_t *self)
{
    if (PQsetnonblocking (self->conn, 1) != 0) {
        s_fail_conn (self, "send");
        return;
    }
    const char *name = cv_pgconn_names_find (self->names, self->sql);
    if (!name && cv_pgconn_names_next (self->names, self->preparing)) {
        /* no parameter types: the server infers them, as it does for an unprepared statement */
        if (!PQsendPrepare (self->conn, self->preparing, self->sql, 0, NULL))
            s_fail_conn (self, "prepare");
        else
            s_flush (self);
        return;
    }
    self->prepared = name != NULL;
    const char *const *params = (const char *const *) self->params;
    int sent = name ? PQsendQueryPrepared (self->conn, name, (int) self->param_count, params, NULL, NULL, 0)
                    : PQsendQueryParams (self->conn, self->sql, (int) self->param_count, NULL, params, NULL, NULL, 0);
    if (!sent) {
        s_fail_conn (self, "send");
        return;
    }
    if (!PQsetSingleRowMode (self->conn)) {
        s_fail_conn (self, "single-row mode");
        return;
    }
    s_flush (self);
}

/* Asks the server to cancel the running statement; true when the request reached it. */
static bool
s_cancel (cv_pgconn_t *self)
{
    PGcancel *cancel = PQgetCancel (self->conn);
    char reason[256];
    bool sent = cancel && PQcancel (cancel, reason, sizeof reason);
    PQfreeCancel (cancel);
    return sent;
}

/* Reads and drops what has arrived of a cancelled statement; true once it has ended (the
   connection then free, or closed when it broke). */
static bool
s_drain (cv_pgconn_t *self)
{
    if (!PQconsumeInput (self->conn)) {
        s_close (self);
        return true;
    }
    bool ended = false;
    while (!ended && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        ended = !result;
        PQclear (result);
    }
    if (ended && PQstatus (self->conn) != CONNECTION_OK)
        s_close (self);
    return ended;
}

/* Reads and drops what is left of a cancelled statement, for up to wait_ms, cancelling again
   every CV_PGCONN_CANCEL_REPEAT_MS; closes the connection when it is not free by then. */
static void
s_settle (cv_pgconn_t *self, int wait_ms)
{
    int64_t until = zclock_mono () + wait_ms;
    int64_t again = zclock_mono () + CV_PGCONN_CANCEL_REPEAT_MS;
    while (self->conn) {
        if (s_drain (self))
            break;
        int64_t now = zclock_mono ();
        if (now >= until) {
            s_close (self);
            break;
        }
        if (now >= again) {
            s_cancel (self);
            again = now + CV_PGCONN_CANCEL_REPEAT_MS;
        }
        int64_t wait = (until < again ? until : again) - now;
        struct pollfd pollfd = {.fd = PQsocket (self->conn), .events = POLLIN};
        if (poll (&pollfd, 1, (int) wait) < 0 && errno != EINTR)
            s_close (self);
    }
    self->state = CV_PGCONN_IDLE;
}

/* A connection opened before this statement turned out to be dead, or its prepared statements
   stale: once, open a new one and send the statement again (a tool only reads; an action's
   statement carries its idempotency key, so a second run is a replay). */
static bool
s_retry (cv_pgconn_t *self)
{
    if (!self->reused || self->retried || self->conn)
        return false;
    self->retried = true;
    self->reused = false;
    self->prepared = self->stale = false;
    self->failed = false;
    self->lost = false;
    self->error[0] = '\0';
    json_array_clear (self->rows);
    self->dropped = 0;
    s_open (self);
    return true;
}

void
cv_pgconn_start (cv_pgconn_t *self, const char *sql, size_t count, const char *const *params, size_t max_rows)
{
    assert (self && sql);
    if (self->state == CV_PGCONN_CANCELLING)
        s_settle (self, CV_PGCONN_SETTLE_MS);
    assert (self->state == CV_PGCONN_IDLE);
    assert (count == 0 || params);
    self->sql = cv_strdup (sql);
    self->params = cv_calloc (count ? count : 1, sizeof (char *));
    for (size_t i = 0; i < count; i++)
        self->params[i] = params[i] ? cv_strdup (params[i]) : NULL;
    self->param_count = count;
    self->max_rows = max_rows;
    json_array_clear (self->rows);
    self->dropped = 0;
    self->failed = false;
    self->lost = false;
    self->error[0] = '\0';
    self->retried = false;

    if (self->conn && !s_healthy (self))
        s_close (self);
    self->reused = self->conn != NULL;
    if (self->conn)
        s_send (self);
    else
        s_open (self);
    if (self->state == CV_PGCONN_DONE && self->failed && !self->conn)
        s_retry (self);
}

int
cv_pgconn_fd (const cv_pgconn_t *self)
{
    assert (self);
    return self->conn ? PQsocket (self->conn) : -1;
}

short
cv_pgconn_events (const cv_pgconn_t *self)
{
    assert (self);
    switch (self->state) {
    case CV_PGCONN_CONNECTING:
        return self->connect_wants == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    case CV_PGCONN_SENDING:
        return POLLIN | POLLOUT; /* the server may answer before we finish */
    case CV_PGCONN_READING:
    case CV_PGCONN_CANCELLING:
        return POLLIN;
    default:
        return 0;
    }
}

static bool
s_add_row (cv_pgconn_t *self, const PGresult *result)
{
    if (json_array_size (self->rows) >= self->max_rows) {
        self->dropped++;
        return true;
    }
    json_t *row = json_object ();
    int columns = PQnfields (result);
    for (int column = 0; column < columns; column++) {
        json_t *value = PQgetisnull (result, 0, column) ? json_null () : json_string (PQgetvalue (result, 0, column));
        if (!value) {
            json_decref (row);
            s_fail (self, "column %s is not valid UTF-8", PQfname (result, column));
            return false;
        }
        json_object_set_new (row, PQfname (result, column), value);
    }
    json_array_append_new (self->rows, row);
    return true;
}

/* Reads every result that has fully arrived; DONE once libpq says the statement is over. */
static void
s_collect (cv_pgconn_t *self)
{
    while (self->conn && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        if (!result && self->preparing[0] && !self->failed) {
            /* prepared: now run it */
            cv_pgconn_names_add (self->names, self->sql, self->preparing);
            self->preparing[0] = '\0';
            s_send (self);
            return;
        }
        if (!result) {
            self->state = CV_PGCONN_DONE;
            /* A session whose prepared statements went astray (a tool ran DEALLOCATE or DISCARD)
               or no longer fit the tables (their columns changed) is closed: the statement runs
               again on a fresh one (s_retry), which prepares afresh. */
            if (self->stale)
                s_close (self);
            break;
        }
        ExecStatusType status = PQresultStatus (result);
        if (status == PGRES_SINGLE_TUPLE) {
            if (!self->failed)
                s_add_row (self, result);
        } else if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            /* A COPY would keep the connection busy: not a tool's business. */
            s_fail (self, "a tool cannot run COPY");
            PQclear (result);
            s_close (self);
            return;
        } else if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY) {
            /* as cv_pg_fail words it; the primary message only (no LINE/caret lines) */
            const char *state = PQresultErrorField (result, PG_DIAG_SQLSTATE);
            const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
            s_fail (self, "postgresql statement failed (%s): %s", state ? state : "?",
                    primary ? primary : PQresultErrorMessage (result));
            /* class 08 (connection exception) and 57P01..57P03 (the server going away) are about
               the connection, not the statement */
            if (state && (strncmp (state, "08", 2) == 0 || strncmp (state, "57P0", 4) == 0))
                self->lost = true;
            /* 26000: no such prepared statement; 0A000: "cached plan must not change result type" */
            if (state && self->prepared && (streq (state, "26000") || streq (state, "0A000")))
                self->stale = true;
            self->state = CV_PGCONN_READING; /* keep reading to the end of the statement */
        }
        PQclear (result);
    }
    if (self->conn && PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail_conn (self, "statement");
        s_close (self);
    }
}

void
cv_pgconn_advance (cv_pgconn_t *self)
{
    assert (self);
    switch (self->state) {
    case CV_PGCONN_CONNECTING:
        self->connect_wants = PQconnectPoll (self->conn);
        if (self->connect_wants == PGRES_POLLING_FAILED)
            s_fail_conn (self, "connect");
        else if (self->connect_wants == PGRES_POLLING_OK && self->sql)
            s_send (self);
        else if (self->connect_wants == PGRES_POLLING_OK)
            self->state = CV_PGCONN_IDLE; /* opened for the next statement (see abandon) */
        break;
    case CV_PGCONN_SENDING:
        if (!PQconsumeInput (self->conn))
            s_fail_conn (self, "statement");
        else
            s_flush (self);
        if (self->state == CV_PGCONN_READING)
            s_collect (self);
        break;
    case CV_PGCONN_READING:
        if (!PQconsumeInput (self->conn))
            s_fail_conn (self, "statement");
        else
            s_collect (self);
        break;
    case CV_PGCONN_CANCELLING:
        if (!self->conn || s_drain (self))
            self->state = CV_PGCONN_IDLE;
        break;
    default:
        break;
    }
    if (self->state == CV_PGCONN_DONE && !self->sql) {
        /* a connection opened for no statement failed: nobody waits for the outcome */
        self->failed = false;
        self->error[0] = '\0';
        self->state = CV_PGCONN_IDLE;
    }
    if (self->state == CV_PGCONN_DONE && self->failed && !self->conn)
        s_retry (self);
}

cv_pgconn_state_t
cv_pgconn_state (const cv_pgconn_t *self)
{
    assert (self);
    return self->state;
}

bool
cv_pgconn_succeeded (const cv_pgconn_t *self)
{
    assert (self && self->state == CV_PGCONN_DONE);
    return !self->failed;
}

json_t *
cv_pgconn_rows (const cv_pgconn_t *self)
{
    assert (self && self->state == CV_PGCONN_DONE);
    return self->rows;
}

size_t
cv_pgconn_dropped (const cv_pgconn_t *self)
{
    assert (self);
    return self->dropped;
}

bool
cv_pgconn_lost (const cv_pgconn_t *self)
{
    assert (self && self->state == CV_PGCONN_DONE);
    return self->failed && self->lost;
}

const char *
cv_pgconn_error (const cv_pgconn_t *self)
{
    assert (self);
    return self->error;
}

void
cv_pgconn_reset (cv_pgconn_t *self)
{
    assert (self && self->state == CV_PGCONN_DONE);
    s_forget_statement (self);
    json_array_clear (self->rows);
    self->state = CV_PGCONN_IDLE;
}

bool
cv_pgconn_abandon (cv_pgconn_t *self)
{
    assert (self);
    if (self->state == CV_PGCONN_CONNECTING && self->sql) {
        /* A server slow to accept is not helped by a new connection for every statement: this
           one goes on opening, for the next. */
        s_forget_statement (self);
        json_array_clear (self->rows);
        return false;
    }
    bool cancelled = false;
    if (self->state == CV_PGCONN_SENDING || self->state == CV_PGCONN_READING)
        cancelled = s_cancel (self);
    s_forget_statement (self);
    json_array_clear (self->rows);
    if (cancelled)
        self->state = CV_PGCONN_CANCELLING;
    else {
        s_close (self);
        self->state = CV_PGCONN_IDLE;
    }
    return cancelled;
}

bool
cv_pgconn_recancel (cv_pgconn_t *self)
{
    assert (self);
    return self->state == CV_PGCONN_CANCELLING && self->conn && s_cancel (self);
}

bool
cv_pgconn_open (const cv_pgconn_t *self)
{
    assert (self);
    return self->conn != NULL;
}

size_t
cv_pgconn_prepared (const cv_pgconn_t *self)
{
    assert (self);
    return cv_pgconn_names_count (self->names);
}

void
cv_pgconn_set_prepared_max (cv_pgconn_t *self, size_t max)
{
    assert (self && !self->conn && self->state == CV_PGCONN_IDLE);
    cv_pgconn_names_destroy (&self->names);
    self->names = cv_pgconn_names_new (max);
}

void
cv_pgconn_set_writable (cv_pgconn_t *self)
{
    assert (self && !self->conn && self->state == CV_PGCONN_IDLE);
    self->writable = true;
}

/*  --------------------------------------------------------------------------
    Self-test, against the PostgreSQL of the test fixture (tests/fixtures/pg_fixture.sh). */

/* Polls the statement until it is in state (or DONE). */
static void
s_test_wait_state (cv_pgconn_t *conn, cv_pgconn_state_t state)
{
    int64_t until = zclock_mono () + 10000;
    while (cv_pgconn_state (conn) != state && cv_pgconn_state (conn) != CV_PGCONN_DONE) {
        assert (zclock_mono () < until);
        struct pollfd pollfd = {.fd = cv_pgconn_fd (conn), .events = cv_pgconn_events (conn)};
        if (poll (&pollfd, 1, 1000) > 0)
            cv_pgconn_advance (conn);
    }
    assert (cv_pgconn_state (conn) == state);
}

/* Runs the statement to its end, polling as a caller would. */
static void
s_test_wait (cv_pgconn_t *conn)
{
    s_test_wait_state (conn, CV_PGCONN_DONE);
}

void
cv_pgconn_test (bool verbose)
{
    char *url = cv_pg_fixture_url (); /* without it, the test's registration is wrong */
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    /* named for this process, so what other tests run on the fixture's server never counts here */
    char application[64];
    snprintf (application, sizeof application, "cv_pgconn_test_%d", (int) getpid ());
    cv_pgconn_t *conn = cv_pgconn_new (url, application);
    assert (!cv_pgconn_open (conn));

    /* rows as text, NULL as null, parameters as text and NULL */
    const char *params[] = {"cust-1", NULL};
    cv_pgconn_start (conn, "SELECT id, name, $2::text AS nothing FROM bank.customers WHERE id = $1", 2, params, 10);
    assert (cv_pgconn_state (conn) == CV_PGCONN_CONNECTING);
    s_test_wait (conn);
    assert (cv_pgconn_succeeded (conn));
    json_t *expected = json_pack ("[{s:s, s:s, s:n}]", "id", "cust-1", "name", "Alex Morgan", "nothing");
    assert (json_equal (cv_pgconn_rows (conn), expected));
    json_decref (expected);
    assert (cv_pgconn_dropped (conn) == 0);
    assert (streq (cv_pgconn_error (conn), ""));
    cv_pgconn_reset (conn);
    assert (cv_pgconn_open (conn) && cv_pgconn_prepared (conn) == 1);

    /* the open connection is used again; rows past max_rows are dropped */
    cv_pgconn_start (conn, "SELECT g::text AS n FROM generate_series(1, 10) g", 0, NULL, 3);
    assert (cv_pgconn_state (conn) != CV_PGCONN_CONNECTING);
    s_test_wait (conn);
    assert (cv_pgconn_succeeded (conn));
    assert (json_array_size (cv_pgconn_rows (conn)) == 3);
    assert (cv_pgconn_dropped (conn) == 7 && cv_pgconn_prepared (conn) == 2);
    cv_pgconn_reset (conn);

    /* an SQL error: one line with its SQLSTATE; the connection stays usable */
    cv_pgconn_start (conn, "SELECT * FROM no_such_table", 0, NULL, 3);
    s_test_wait (conn);
    assert (!cv_pgconn_succeeded (conn));
    assert (strstr (cv_pgconn_error (conn),
                    "postgresql statement failed (42P01): relation \"no_such_table\" does not exist"));
    assert (!strchr (cv_pgconn_error (conn), '\n'));
    assert (!cv_pgconn_lost (conn) && cv_pgconn_prepared (conn) == 2); /* the statement's fault */
    assert (json_array_size (cv_pgconn_rows (conn)) == 0);
    cv_pgconn_reset (conn);

    /* the session's settings */
    cv_pgconn_start (conn,
                     "SELECT current_setting ('default_transaction_read_only') AS ro,"
                     " current_setting ('statement_timeout') AS timeout,"
                     " current_setting ('client_encoding') AS encoding",
                     0, NULL, 1);
    s_test_wait (conn);
    expected = json_pack ("[{s:s, s:s, s:s}]", "ro", "on", "timeout", "65s", "encoding", "UTF8");
    assert (json_equal (cv_pgconn_rows (conn), expected));
    json_decref (expected);
    cv_pgconn_reset (conn);

    /* read-only: a write fails */
    cv_pgconn_start (conn, "CREATE TABLE cv_pgconn_test (id int)", 0, NULL, 3);
    s_test_wait (conn);
    assert (!cv_pgconn_succeeded (conn));
    assert (strstr (cv_pgconn_error (conn), "(25006): cannot execute CREATE TABLE in a read-only transaction"));
    cv_pgconn_reset (conn);

    /* abandon cancels on the server and keeps the connection */
    cv_pgconn_start (conn, "SELECT pg_sleep(30)", 0, NULL, 1);
    assert (cv_pgconn_state (conn) == CV_PGCONN_READING);
    assert (cv_pgconn_abandon (conn));
    assert (cv_pgconn_state (conn) == CV_PGCONN_CANCELLING);
    assert (cv_pgconn_open (conn));
    /* the next statement waits for the cancelled one to end, on the same connection: no other
       session of ours is still busy */
    cv_pgconn_start (conn,
                     "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active'"
                     " AND application_name = current_setting ('application_name')"
                     " AND pid <> pg_backend_pid ()",
                     0, NULL, 1);
    s_test_wait (conn);
    assert (cv_pgconn_succeeded (conn));
    assert (streq (json_string_value (json_object_get (json_array_get (cv_pgconn_rows (conn), 0), "n")), "0"));
    cv_pgconn_reset (conn);

    /* an event loop's caller polls the cancelled statement to its end instead of waiting in start,
       asking again while it runs on (a cancel that reached the server before the statement had
       started is ignored: on a busy machine, often) */
    cv_pgconn_start (conn, "SELECT pg_sleep(30)", 0, NULL, 1);
    assert (cv_pgconn_abandon (conn));
    int64_t until = zclock_mono () + 10000;
    while (cv_pgconn_state (conn) == CV_PGCONN_CANCELLING) {
        assert (zclock_mono () < until);
        struct pollfd pollfd = {.fd = cv_pgconn_fd (conn), .events = cv_pgconn_events (conn)};
        assert (pollfd.fd >= 0 && pollfd.events == POLLIN);
        if (poll (&pollfd, 1, CV_PGCONN_CANCEL_REPEAT_MS) > 0)
            cv_pgconn_advance (conn);
        else
            cv_pgconn_recancel (conn);
    }
    assert (cv_pgconn_state (conn) == CV_PGCONN_IDLE && cv_pgconn_open (conn));
    /* the server ends the session: the next statement opens a new connection, unseen */
    cv_pgconn_t *killer = cv_pgconn_new (url, "cv_pgconn_test_killer");
    const char *victim[] = {application};
    cv_pgconn_start (killer,
                     "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity"
                     " WHERE application_name = $1",
                     1, victim, 5);
    s_test_wait (killer);
    assert (cv_pgconn_succeeded (killer));
    assert (json_array_size (cv_pgconn_rows (killer)) == 1);
    cv_pgconn_reset (killer);
    cv_pgconn_destroy (&killer);
    cv_pgconn_start (conn, "SELECT 1 AS one", 0, NULL, 1);
    s_test_wait (conn);
    cv_assert_that (cv_pgconn_succeeded (conn), "%s", cv_pgconn_error (conn));
    assert (cv_pgconn_prepared (conn) == 1); /* a new session prepares again */
    cv_pgconn_reset (conn);
    cv_pgconn_destroy (&conn);

    /* past its bound, a session runs new texts unprepared, parameterised all the same */
    conn = cv_pgconn_new (url, application);
    cv_pgconn_set_prepared_max (conn, 1);
    const char *texts[] = {"SELECT $1::text AS v", "SELECT $1::text || '!' AS v", "SELECT $1::text AS v"};
    for (size_t i = 0; i < 3; i++) {
        cv_pgconn_start (conn, texts[i], 1, params, 1);
        s_test_wait (conn);
        assert (cv_pgconn_succeeded (conn) && cv_pgconn_prepared (conn) == 1);
        cv_pgconn_reset (conn);
    }
    cv_pgconn_destroy (&conn);

    /* abandoning a cancelling statement closes its connection (on a session of its own: the
       server goes on with the statement until it notices) */
    conn = cv_pgconn_new (url, "cv_pgconn_test_closed");
    cv_pgconn_start (conn, "SELECT pg_sleep(2)", 0, NULL, 1);
    s_test_wait_state (conn, CV_PGCONN_READING);
    assert (cv_pgconn_abandon (conn));
    assert (cv_pgconn_recancel (conn));
    assert (!cv_pgconn_abandon (conn));
    assert (cv_pgconn_state (conn) == CV_PGCONN_IDLE && !cv_pgconn_open (conn));
    assert (!cv_pgconn_recancel (conn));
    cv_pgconn_destroy (&conn);

    /* abandoning a statement whose connection is still opening lets the connection open, for
       the next statement, without running it; abandoning it again closes it */
    conn = cv_pgconn_new (url, application);
    cv_pgconn_start (conn, "SELECT 1", 0, NULL, 1);
    assert (cv_pgconn_state (conn) == CV_PGCONN_CONNECTING);
    assert (!cv_pgconn_abandon (conn));
    assert (cv_pgconn_state (conn) == CV_PGCONN_CONNECTING);
    s_test_wait_state (conn, CV_PGCONN_IDLE);
    assert (cv_pgconn_open (conn));
    cv_pgconn_start (conn, "SELECT 'next' AS v", 0, NULL, 1);
    assert (cv_pgconn_state (conn) != CV_PGCONN_CONNECTING);
    s_test_wait (conn);
    assert (cv_pgconn_succeeded (conn));
    cv_pgconn_reset (conn);
    cv_pgconn_destroy (&conn);
    conn = cv_pgconn_new (url, application);
    cv_pgconn_start (conn, "SELECT 1", 0, NULL, 1);
    assert (!cv_pgconn_abandon (conn) && cv_pgconn_state (conn) == CV_PGCONN_CONNECTING);
    assert (!cv_pgconn_abandon (conn));
    assert (cv_pgconn_state (conn) == CV_PGCONN_IDLE && !cv_pgconn_open (conn));
    cv_pgconn_destroy (&conn);
    /* one opening for nobody that fails is simply IDLE again, with no error to read */
    conn = cv_pgconn_new ("postgresql://conveyor@127.0.0.1:1/conveyor", application);
    cv_pgconn_start (conn, "SELECT 1", 0, NULL, 1);
    if (cv_pgconn_state (conn) == CV_PGCONN_CONNECTING) {
        assert (!cv_pgconn_abandon (conn));
        s_test_wait_state (conn, CV_PGCONN_IDLE);
        assert (!cv_pgconn_open (conn));
    }
    cv_pgconn_destroy (&conn);

    /* nobody listening: a connection error, one line */
    conn = cv_pgconn_new ("postgresql://conveyor@127.0.0.1:1/conveyor", application);
    cv_pgconn_start (conn, "SELECT 1", 0, NULL, 1);
    if (cv_pgconn_state (conn) != CV_PGCONN_DONE)
        s_test_wait (conn);
    assert (!cv_pgconn_succeeded (conn));
    assert (strstr (cv_pgconn_error (conn), "postgresql connect failed"));
    assert (!strchr (cv_pgconn_error (conn), '\n'));
    assert (cv_pgconn_lost (conn));
    assert (!cv_pgconn_open (conn));
    cv_pgconn_reset (conn);
    /* a malformed URL fails at once */
    cv_pgconn_destroy (&conn);
    conn = cv_pgconn_new ("postgresql://[oops", application);
    cv_pgconn_start (conn, "SELECT 1", 0, NULL, 1);
    assert (cv_pgconn_state (conn) == CV_PGCONN_DONE && !cv_pgconn_succeeded (conn));
    cv_pgconn_reset (conn);
    cv_pgconn_destroy (&conn);
    assert (!conn);
    free (url);
    if (verbose)
        printf ("cv_pgconn: ok\n");
}
