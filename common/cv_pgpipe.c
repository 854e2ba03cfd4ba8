/* One PostgreSQL connection in pipeline mode, driven from a zloop, with group commit. */
#include "cv_pgpipe.h"

#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_pg.h"
#include "cv_pgrun.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define ERROR_BYTES 400

typedef enum {
    PIPE_DOWN,       /* no connection; the reconnect timer is armed */
    PIPE_CONNECTING, /* PQconnectPoll under way */
    PIPE_PREPARING,  /* the statements' Prepare messages are in flight */
    PIPE_READY,      /* idle, nothing queued */
    PIPE_BUSY        /* one transaction in flight */
} pipe_state_t;

struct _cv_pgpipe_t {
    zloop_t *loop;
    cv_pgpipe_config_t config;
    char *url;
    char *application_name;
    PGconn *conn;
    pipe_state_t state;
    PostgresPollingStatusType connect_wants;
    zmq_pollitem_t item; /* the socket as registered with the loop; fd -1 when none */
    int timer;           /* the deadline of the connection or the transaction, or the backoff */
    int backoff_ms;
    cv_pgrun_list_t queue;  /* waiting to be sent */
    cv_pgrun_list_t flight; /* the transaction in flight, in order */
    cv_pgrun_t *reading;    /* the run of the flight whose result comes next */
    size_t queued;          /* runs queued and in flight */
    bool corked;            /* runs wait in the queue even when the connection is idle */
    uint64_t commits, committed_runs, connections;
    int64_t sent_us; /* when the transaction in flight was sent (zclock_usecs) */
    char last_error[ERROR_BYTES];
};

static void s_connect (cv_pgpipe_t *self);
static int s_socket_ready (zloop_t *loop, zmq_pollitem_t *item, void *arg);

/*  --------------------------------------------------------------------------
    The socket and the timer */

/* Registers the connection's socket with the loop for events (0: none), when it changed. */
static void
s_watch (cv_pgpipe_t *self, short events)
{
    int fd = self->conn && events ? PQsocket (self->conn) : -1;
    if (fd == self->item.fd && events == self->item.events)
        return;
    if (self->item.fd >= 0)
        zloop_poller_end (self->loop, &self->item);
    self->item.fd = fd;
    self->item.events = events;
    if (fd >= 0) {
        zloop_poller (self->loop, &self->item, s_socket_ready, self);
        zloop_set_tolerant (self->loop, &self->item);
    }
}

static void
s_timer_end (cv_pgpipe_t *self)
{
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    self->timer = -1;
}

static int s_deadline_passed (zloop_t *loop, int timer_id, void *arg);

static void
s_timer_arm (cv_pgpipe_t *self, int delay_ms, zloop_timer_fn *handler)
{
    s_timer_end (self);
    self->timer = zloop_timer (self->loop, (size_t) delay_ms, 1, handler, self);
}

/*  --------------------------------------------------------------------------
    Losing and opening the connection */

static int
s_reconnect (zloop_t *loop, int timer_id, void *arg)
{
    cv_pgpipe_t *self = arg;
    self->timer = -1;
    s_connect (self);
    return 0;
}

/* Closes the connection, DOWN, and fails every run queued or in flight with UNAVAILABLE and why. */
static void
s_close_and_fail (cv_pgpipe_t *self, const char *why)
{
    snprintf (self->last_error, sizeof self->last_error, "%s", why);
    s_watch (self, 0);
    PQfinish (self->conn);
    self->conn = NULL;
    self->state = PIPE_DOWN;
    cv_error_t err;
    cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "postgresql unavailable: %s", why);
    cv_pgrun_list_t flight = self->flight, queue = self->queue;
    self->flight = self->queue = (cv_pgrun_list_t){NULL, NULL};
    self->reading = NULL;
    cv_pgrun_list_fail (&flight, &err, &self->queued);
    cv_pgrun_list_fail (&queue, &err, &self->queued);
}

/* The connection is gone or useless: close it, fail everything, retry after the backoff. */
static void
s_lose (cv_pgpipe_t *self, const char *why)
{
    cv_log_warn (self->config.log, "postgresql connection %s lost: %s; reconnecting in %d ms", self->application_name,
                 why, self->backoff_ms);
    s_timer_arm (self, self->backoff_ms, s_reconnect);
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
    s_close_and_fail (self, why);
}

/* The connection's error on one line. */
static const char *
s_conn_error (cv_pgpipe_t *self, char *line, size_t size)
{
    cv_error_t err;
    cv_pg_fail (self->conn, NULL, "connection", &err);
    snprintf (line, size, "%s", err.message);
    return line;
}

static int
s_deadline_passed (zloop_t *loop, int timer_id, void *arg)
{
    cv_pgpipe_t *self = arg;
    self->timer = -1;
    char why[128];
    snprintf (why, sizeof why, "no answer within %d ms", self->config.timeout_ms);
    s_lose (self, why);
    return 0;
}

static void s_send_batch (cv_pgpipe_t *self);

/* Sends the Prepare of every statement, as the first transaction of a new connection. */
static void
s_prepare (cv_pgpipe_t *self)
{
    if (PQsetnonblocking (self->conn, 1) != 0 || PQenterPipelineMode (self->conn) != 1) {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
        return;
    }
    for (size_t i = 0; i < self->config.statement_count; i++) {
        const cv_pgpipe_statement_t *statement = &self->config.statements[i];
        cv_pgrun_t *prepare = cv_pgrun_new (i, 0, NULL, NULL, NULL);
        prepare->prepare = true;
        cv_pgrun_list_append (&self->flight, prepare);
        self->queued++;
        if (!PQsendPrepare (self->conn, statement->name, statement->sql, statement->param_count, NULL)) {
            char line[ERROR_BYTES];
            s_lose (self, s_conn_error (self, line, sizeof line));
            return;
        }
    }
    self->state = PIPE_PREPARING;
    self->reading = self->flight.first;
    s_send_batch (self); /* only the Sync and the flush: the flight is already written */
}

static void
s_connect (cv_pgpipe_t *self)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *values[] = {self->url, self->application_name, NULL};
    self->conn = PQconnectStartParams (keys, values, 1);
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD) {
        char line[ERROR_BYTES];
        s_lose (self, self->conn ? s_conn_error (self, line, sizeof line) : "out of memory");
        return;
    }
    self->state = PIPE_CONNECTING;
    self->connect_wants = PGRES_POLLING_WRITING;
    s_watch (self, ZMQ_POLLOUT);
    s_timer_arm (self, self->config.timeout_ms, s_deadline_passed);
}

static void
s_advance_connect (cv_pgpipe_t *self)
{
    self->connect_wants = PQconnectPoll (self->conn);
    switch (self->connect_wants) {
    case PGRES_POLLING_READING:
        s_watch (self, ZMQ_POLLIN);
        break;
    case PGRES_POLLING_WRITING:
        s_watch (self, ZMQ_POLLOUT);
        break;
    case PGRES_POLLING_OK:
        s_prepare (self);
        break;
    default: {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
    }
    }
}

/*  --------------------------------------------------------------------------
    Transactions */

/* Writes out what libpq holds, and watches for what comes next. */
static void
s_flush (cv_pgpipe_t *self)
{
    int pending = PQflush (self->conn);
    if (pending < 0) {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
        return;
    }
    s_watch (self, pending ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN);
}

/* Sends what is queued, up to max_batch runs, as one transaction (the runs, then a Sync). While
   PREPARING the flight is already written and only the Sync goes. */
static void
s_send_batch (cv_pgpipe_t *self)
{
    if (self->state == PIPE_READY) {
        if (!self->queue.first || self->corked)
            return;
        self->flight = cv_pgrun_list_take (&self->queue, self->config.max_batch);
        for (cv_pgrun_t *run = self->flight.first; run; run = run->next) {
            const cv_pgpipe_statement_t *statement = &self->config.statements[run->statement];
            if (!PQsendQueryPrepared (self->conn, statement->name, run->count, (const char *const *) run->values,
                                      run->lengths, run->formats, statement->binary_results ? 1 : 0)) {
                char line[ERROR_BYTES];
                s_lose (self, s_conn_error (self, line, sizeof line));
                return;
            }
        }
        self->reading = self->flight.first;
        self->state = PIPE_BUSY;
        self->sent_us = zclock_usecs ();
    }
    if (!PQpipelineSync (self->conn)) {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
        return;
    }
    s_timer_arm (self, self->config.timeout_ms, s_deadline_passed);
    s_flush (self);
}

/* A committed transaction's runs and time, in the metrics the caller gave. */
static void
s_count_commit (const cv_pgpipe_t *self, const cv_pgrun_t *flight)
{
    size_t runs = 0;
    for (const cv_pgrun_t *run = flight; run; run = run->next)
        runs++;
    if (self->config.transaction_runs)
        cv_metric_observe (self->config.transaction_runs, (double) runs);
    if (self->config.commit_seconds)
        cv_metric_observe (self->config.commit_seconds, (double) (zclock_usecs () - self->sent_us) / 1e6);
}

/* The transaction in flight reached its Sync: committed when no run failed. Hands each run its
   outcome; when one failed, the others were rolled back with it and go again without it. */
static void
s_transaction_ended (cv_pgpipe_t *self)
{
    s_timer_end (self);
    cv_pgrun_t *flight = self->flight.first;
    self->flight = (cv_pgrun_list_t){NULL, NULL};
    self->reading = NULL;
    bool preparing = self->state == PIPE_PREPARING;
    bool failed = false;
    for (cv_pgrun_t *run = flight; run; run = run->next) {
        ExecStatusType status = run->result ? PQresultStatus (run->result) : PGRES_FATAL_ERROR;
        failed |= status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
    }
    if (preparing) {
        while (flight) {
            cv_pgrun_t *next = flight->next;
            if (!flight->result || PQresultStatus (flight->result) != PGRES_COMMAND_OK) {
                cv_error_t err;
                cv_pg_fail (self->conn, flight->result, "prepare", &err);
                cv_log_error (self->config.log, "cannot prepare %s: %s",
                              self->config.statements[flight->statement].name, err.message);
            }
            self->queued--;
            cv_pgrun_destroy (&flight);
            flight = next;
        }
        self->state = PIPE_READY;
        if (failed) {
            s_lose (self, "a statement cannot be prepared");
            return;
        }
        self->connections++;
        self->backoff_ms = BACKOFF_FIRST_MS;
        self->last_error[0] = '\0';
        cv_log_info (self->config.log, "postgresql connection %s ready", self->application_name);
        s_watch (self, ZMQ_POLLIN);
        s_send_batch (self);
        return;
    }
    /* Runs queued by the callbacks wait until all are called, then go together. */
    if (!failed) {
        self->commits++;
        s_count_commit (self, flight);
        while (flight) {
            cv_pgrun_t *next = flight->next;
            self->committed_runs++;
            self->queued--;
            if (flight->done)
                flight->done (flight->arg, flight->result, NULL);
            cv_pgrun_destroy (&flight);
            flight = next;
        }
    } else {
        /* The guilty runs fail; the innocent ones go first in the next transaction. */
        cv_pgrun_list_t again = {NULL, NULL};
        while (flight) {
            cv_pgrun_t *next = flight->next;
            flight->next = NULL;
            ExecStatusType status = flight->result ? PQresultStatus (flight->result) : PGRES_PIPELINE_ABORTED;
            if (status == PGRES_FATAL_ERROR) {
                cv_error_t err;
                cv_pg_fail (self->conn, flight->result, "statement", &err);
                self->queued--;
                if (flight->done)
                    flight->done (flight->arg, NULL, &err);
                cv_pgrun_destroy (&flight);
            } else {
                PQclear (flight->result);
                flight->result = NULL;
                cv_pgrun_list_append (&again, flight);
            }
            flight = next;
        }
        cv_pgrun_list_prepend (&self->queue, &again);
    }
    self->state = PIPE_READY;
    s_send_batch (self);
}

/* Reads what the server sent: results of the flight's runs, in order, then its Sync. */
static void
s_read (cv_pgpipe_t *self)
{
    if (!PQconsumeInput (self->conn)) {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
        return;
    }
    while (self->conn && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        if (!result) {
            /* the end of one run's results; nothing more when no run is waiting for one */
            if (self->reading && self->reading->result) {
                self->reading = self->reading->next;
                continue;
            }
            break;
        }
        if (PQresultStatus (result) == PGRES_PIPELINE_SYNC) {
            PQclear (result);
            s_transaction_ended (self);
            if (self->state != PIPE_BUSY)
                break;
            continue;
        }
        if (!self->reading) { /* a notice of the server's, e.g. an admin shutdown between transactions */
            PQclear (result);
            continue;
        }
        PQclear (self->reading->result);
        self->reading->result = result;
    }
    if (self->conn && PQstatus (self->conn) == CONNECTION_BAD) {
        char line[ERROR_BYTES];
        s_lose (self, s_conn_error (self, line, sizeof line));
    }
}

static int
s_socket_ready (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    cv_pgpipe_t *self = arg;
    switch (self->state) {
    case PIPE_CONNECTING:
        s_advance_connect (self);
        break;
    case PIPE_PREPARING:
    case PIPE_BUSY:
        if (item->revents & ZMQ_POLLOUT) {
            s_flush (self);
            if (self->state == PIPE_DOWN)
                break;
        }
        if (item->revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            s_read (self);
        break;
    case PIPE_READY:
        s_read (self); /* nothing is expected: a notice, or the server closing the connection */
        break;
    case PIPE_DOWN:
        break;
    }
    return 0;
}

/*  --------------------------------------------------------------------------
    The class */

cv_pgpipe_t *
cv_pgpipe_new (zloop_t *loop, const cv_pgpipe_config_t *config)
{
    assert (loop && config && config->url && config->application_name && config->log);
    assert (config->statements && config->statement_count > 0);
    cv_pgpipe_t *self = cv_calloc (1, sizeof *self);
    self->loop = loop;
    self->config = *config;
    if (self->config.timeout_ms <= 0)
        self->config.timeout_ms = 5000;
    if (!self->config.max_batch)
        self->config.max_batch = 256;
    if (!self->config.max_queued)
        self->config.max_queued = 65536;
    self->url = cv_strdup (config->url);
    self->application_name = cv_strdup (config->application_name);
    self->config.url = self->url;
    self->config.application_name = self->application_name;
    self->item.fd = -1;
    self->timer = -1;
    self->backoff_ms = BACKOFF_FIRST_MS;
    s_connect (self);
    return self;
}

void
cv_pgpipe_destroy (cv_pgpipe_t **self_p)
{
    assert (self_p);
    cv_pgpipe_t *self = *self_p;
    if (!self)
        return;
    s_watch (self, 0);
    s_timer_end (self);
    PQfinish (self->conn);
    cv_pgrun_list_destroy (&self->flight);
    cv_pgrun_list_destroy (&self->queue);
    free (self->url);
    free (self->application_name);
    free (self);
    *self_p = NULL;
}

int
cv_pgpipe_run (cv_pgpipe_t *self, size_t statement, const char *const *values, const int *lengths, const int *formats,
               cv_pgpipe_done_fn *done, void *arg, cv_error_t *err)
{
    assert (self && done);
    assert (statement < self->config.statement_count);
    if (self->state == PIPE_DOWN)
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "postgresql unavailable: %s", self->last_error);
    if (self->queued >= self->config.max_queued)
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "postgresql busy: %zu statements queued", self->queued);
    cv_pgrun_t *run =
        cv_pgrun_new (statement, self->config.statements[statement].param_count, values, lengths, formats);
    run->done = done;
    run->arg = arg;
    cv_pgrun_list_append (&self->queue, run);
    self->queued++;
    /* Idle: it goes at once, alone. Busy: it waits for the flight to end, with the others. */
    if (self->state == PIPE_READY)
        s_send_batch (self);
    return 0;
}

void
cv_pgpipe_abort (cv_pgpipe_t *self, const char *why)
{
    assert (self && why);
    s_timer_end (self);
    s_close_and_fail (self, why);
}

void
cv_pgpipe_cork (cv_pgpipe_t *self, bool corked)
{
    assert (self);
    self->corked = corked;
    if (!corked && self->state == PIPE_READY)
        s_send_batch (self);
}

void
cv_pgpipe_cancel (cv_pgpipe_t *self, void *arg)
{
    assert (self);
    cv_pgrun_list_forget (&self->flight, arg);
    self->queued -= cv_pgrun_list_drop (&self->queue, arg);
}

bool
cv_pgpipe_up (const cv_pgpipe_t *self)
{
    return self->state != PIPE_DOWN;
}

size_t
cv_pgpipe_queued (const cv_pgpipe_t *self)
{
    return self->queued;
}

void
cv_pgpipe_counts (const cv_pgpipe_t *self, uint64_t *commits, uint64_t *runs)
{
    *commits = self->commits;
    *runs = self->committed_runs;
}

uint64_t
cv_pgpipe_connections (const cv_pgpipe_t *self)
{
    return self->connections;
}

const char *
cv_pgpipe_last_error (const cv_pgpipe_t *self)
{
    return self->last_error;
}

/*  --------------------------------------------------------------------------
    Self-test, against the PostgreSQL of the test fixture (tests/fixtures/pg_fixture.sh). */

typedef struct {
    int calls;
    bool failed;
    cv_error_code_t code;
    char value[64];
} test_outcome_t;

static void
s_test_done (void *arg, const PGresult *result, const cv_error_t *err)
{
    test_outcome_t *outcome = arg;
    outcome->calls++;
    outcome->failed = err != NULL;
    outcome->code = err ? err->code : CV_OK;
    outcome->value[0] = '\0';
    if (result && PQntuples (result) > 0)
        snprintf (outcome->value, sizeof outcome->value, "%s", PQgetvalue (result, 0, 0));
}

/* Runs the loop until every outcome has been called, or fails the test after 10 s. */
static int
s_test_check (zloop_t *loop, int timer_id, void *arg)
{
    test_outcome_t **outcomes = arg;
    for (test_outcome_t **outcome = outcomes; *outcome; outcome++)
        if ((*outcome)->calls == 0)
            return 0;
    return -1;
}

static void
s_test_wait (zloop_t *loop, test_outcome_t **outcomes)
{
    int check = zloop_timer (loop, 1, 0, s_test_check, outcomes);
    int64_t started = zclock_mono ();
    zloop_start (loop);
    zloop_timer_end (loop, check);
    assert (zclock_mono () - started < 10000);
    for (test_outcome_t **outcome = outcomes; *outcome; outcome++)
        assert ((*outcome)->calls == 1);
}

typedef struct {
    cv_pgpipe_t *pipe;
    uint64_t connections; /* wait until more connections than this were made */
} test_reconnect_t;

static int
s_test_reconnected (zloop_t *loop, int timer_id, void *arg)
{
    test_reconnect_t *wait = arg;
    return cv_pgpipe_connections (wait->pipe) > wait->connections && wait->pipe->state == PIPE_READY ? -1 : 0;
}

/* Runs the loop until pipe has made a new connection since `connections`. */
static void
s_test_wait_reconnect (zloop_t *loop, cv_pgpipe_t *pipe, uint64_t connections)
{
    test_reconnect_t wait = {pipe, connections};
    int timer = zloop_timer (loop, 10, 0, s_test_reconnected, &wait);
    int64_t started = zclock_mono ();
    zloop_start (loop);
    zloop_timer_end (loop, timer);
    assert (zclock_mono () - started < 10000);
}

void
cv_pgpipe_test (bool verbose)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    char application[64];
    snprintf (application, sizeof application, "cv_pgpipe_test_%d", (int) getpid ());
    cv_log_t *log = cv_log_new ("test", "cv_pgpipe", verbose);
    zloop_t *loop = zloop_new ();
    static const cv_pgpipe_statement_t statements[] = {
        {"echo", "SELECT $1::text", 1, false},
        {"insert", "INSERT INTO cv_pgpipe_test (id) VALUES ($1::int) RETURNING id::text", 1, false},
        {"bytes", "SELECT $1::bytea", 1, true},
        {"sleep", "SELECT pg_sleep($1::float8)::text", 1, false},
        {"kill", "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE application_name = $1", 1, false},
    };
    /* a table of the test's own, in a schema nobody else uses */
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "cv_pgpipe_test_setup", &err);
    assert (pg);
    assert (cv_pg_run (pg, "DROP TABLE IF EXISTS cv_pgpipe_test", 0, NULL, &err) == 0);
    assert (cv_pg_run (pg, "CREATE TABLE cv_pgpipe_test (id int PRIMARY KEY)", 0, NULL, &err) == 0);

    cv_metrics_t *metrics = cv_metrics_new ();
    static const double batch_bounds[] = {1, 8, 64};
    cv_metric_t *transaction_runs =
        cv_metric_with (cv_metrics_histogram (metrics, "test_transaction_runs", "Runs.", NULL, batch_bounds, 3));
    cv_metric_t *commit_seconds = cv_metric_with (cv_metrics_histogram (
        metrics, "test_commit_seconds", "Commits.", NULL, cv_metrics_latency_buckets, cv_metrics_latency_bucket_count));
    cv_pgpipe_config_t config = {.url = url,
                                 .application_name = application,
                                 .statements = statements,
                                 .statement_count = 5,
                                 .timeout_ms = 2000,
                                 .max_batch = 64,
                                 .max_queued = 100,
                                 .log = log,
                                 .transaction_runs = transaction_runs,
                                 .commit_seconds = commit_seconds};
    cv_pgpipe_t *pipe = cv_pgpipe_new (loop, &config);
    assert (cv_pgpipe_up (pipe));

    /* queued while connecting; each run gets its own result */
    test_outcome_t a = {0}, b = {0};
    const char *hello[] = {"hello"}, *world[] = {"world"};
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &a, &err) == 0);
    assert (cv_pgpipe_run (pipe, 0, world, NULL, NULL, s_test_done, &b, &err) == 0);
    assert (a.calls == 0); /* never from inside run */
    s_test_wait (loop, (test_outcome_t *[]){&a, &b, NULL});
    assert (!a.failed && streq (a.value, "hello") && streq (b.value, "world"));

    /* many runs while one transaction is in flight commit together */
    uint64_t commits_before, runs_before, commits, runs;
    cv_pgpipe_counts (pipe, &commits_before, &runs_before);
    test_outcome_t inserts[20] = {{0}};
    test_outcome_t *waiting[21] = {NULL};
    for (int i = 0; i < 20; i++) {
        char id[8];
        snprintf (id, sizeof id, "%d", i);
        const char *values[] = {id};
        assert (cv_pgpipe_run (pipe, 1, values, NULL, NULL, s_test_done, &inserts[i], &err) == 0);
        waiting[i] = &inserts[i];
    }
    s_test_wait (loop, waiting);
    cv_pgpipe_counts (pipe, &commits, &runs);
    assert (runs - runs_before == 20);
    assert (commits - commits_before == 2); /* the first alone, the other 19 in one transaction */
    /* every committed transaction is counted in both histograms */
    assert (cv_metric_value (transaction_runs) == (double) commits);
    assert (cv_metric_value (commit_seconds) == (double) commits);
    for (int i = 0; i < 20; i++)
        assert (!inserts[i].failed && atoi (inserts[i].value) == i);

    /* corked, runs wait even on an idle connection, then go in one transaction */
    cv_pgpipe_counts (pipe, &commits_before, &runs_before);
    test_outcome_t corked[3] = {{0}};
    cv_pgpipe_cork (pipe, true);
    for (int i = 0; i < 3; i++)
        assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &corked[i], &err) == 0);
    cv_pgpipe_cork (pipe, false);
    s_test_wait (loop, (test_outcome_t *[]){&corked[0], &corked[1], &corked[2], NULL});
    cv_pgpipe_counts (pipe, &commits, &runs);
    assert (commits - commits_before == 1 && runs - runs_before == 3);

    /* one run that fails (a duplicate key) fails alone; the others of its transaction commit */
    test_outcome_t first = {0}, duplicate = {0}, after = {0};
    const char *v100[] = {"100"}, *v5[] = {"5"}, *v101[] = {"101"};
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &a, &err) == 0); /* keeps it busy */
    a.calls = 0;
    assert (cv_pgpipe_run (pipe, 1, v100, NULL, NULL, s_test_done, &first, &err) == 0);
    assert (cv_pgpipe_run (pipe, 1, v5, NULL, NULL, s_test_done, &duplicate, &err) == 0);
    assert (cv_pgpipe_run (pipe, 1, v101, NULL, NULL, s_test_done, &after, &err) == 0);
    s_test_wait (loop, (test_outcome_t *[]){&a, &first, &duplicate, &after, NULL});
    assert (!first.failed && streq (first.value, "100") && !after.failed && streq (after.value, "101"));
    assert (duplicate.failed && duplicate.code == CV_ERR_INTERNAL);
    PGresult *count = cv_pg_exec (pg, "SELECT count(*) FROM cv_pgpipe_test", 0, NULL, &err);
    assert (count && atoi (PQgetvalue (count, 0, 0)) == 22);
    PQclear (count);

    /* binary parameters and results: bytes with a NUL in them, both ways */
    const char raw[] = {'a', 0, 'b', (char) 0xff};
    const char *bytes[] = {raw};
    int lengths[] = {4}, formats[] = {1};
    test_outcome_t echoed = {0};
    assert (cv_pgpipe_run (pipe, 2, bytes, lengths, formats, s_test_done, &echoed, &err) == 0);
    s_test_wait (loop, (test_outcome_t *[]){&echoed, NULL});
    assert (!echoed.failed && memcmp (echoed.value, "a", 2) == 0);

    /* a cancelled run gets no callback */
    test_outcome_t cancelled = {0}, kept = {0};
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &cancelled, &err) == 0);
    assert (cv_pgpipe_run (pipe, 0, world, NULL, NULL, s_test_done, &kept, &err) == 0);
    cv_pgpipe_cancel (pipe, &cancelled);
    cv_pgpipe_cancel (pipe, &kept + 1); /* nothing of that arg: no change */
    s_test_wait (loop, (test_outcome_t *[]){&kept, NULL});
    assert (cancelled.calls == 0);

    /* the full queue refuses at once */
    test_outcome_t many[100] = {{0}};
    int accepted = 0;
    for (int i = 0; i < 100; i++)
        if (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &many[i], &err) == 0)
            accepted++;
    assert (accepted == 100);
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &a, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE && strstr (err.message, "busy"));
    test_outcome_t *all[101] = {NULL};
    for (int i = 0; i < 100; i++)
        all[i] = &many[i];
    s_test_wait (loop, all);

    /* a transaction slower than the timeout loses the connection: its runs fail UNAVAILABLE,
       then the pipe reconnects by itself */
    test_outcome_t slow = {0};
    const char *three[] = {"3"};
    assert (cv_pgpipe_run (pipe, 3, three, NULL, NULL, s_test_done, &slow, &err) == 0);
    s_test_wait (loop, (test_outcome_t *[]){&slow, NULL});
    assert (slow.failed && slow.code == CV_ERR_UNAVAILABLE);
    assert (!cv_pgpipe_up (pipe) && strstr (cv_pgpipe_last_error (pipe), "no answer within 2000 ms"));
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &a, &err) == -1);
    s_test_wait_reconnect (loop, pipe, 1);
    assert (cv_pgpipe_up (pipe) && cv_pgpipe_connections (pipe) == 2);

    /* the server ends the session while idle: noticed without a run, then reconnected */
    cv_pgpipe_t *killer_pipe = cv_pgpipe_new (loop, &(cv_pgpipe_config_t){.url = url,
                                                                          .application_name = "cv_pgpipe_killer",
                                                                          .statements = statements,
                                                                          .statement_count = 5,
                                                                          .timeout_ms = 2000,
                                                                          .log = log});
    test_outcome_t killed = {0};
    const char *victim[] = {application};
    assert (cv_pgpipe_run (killer_pipe, 4, victim, NULL, NULL, s_test_done, &killed, &err) == 0);
    s_test_wait (loop, (test_outcome_t *[]){&killed, NULL});
    assert (!killed.failed && streq (killed.value, "true"));
    cv_pgpipe_destroy (&killer_pipe);
    s_test_wait_reconnect (loop, pipe, 2);
    test_outcome_t again = {0};
    assert (cv_pgpipe_run (pipe, 0, world, NULL, NULL, s_test_done, &again, &err) == 0);
    s_test_wait (loop, (test_outcome_t *[]){&again, NULL});
    assert (!again.failed && streq (again.value, "world"));

    /* a server that is not there: DOWN, and runs refused with the reason */
    cv_pgpipe_t *nowhere = cv_pgpipe_new (loop, &(cv_pgpipe_config_t){.url = "postgresql://nobody@127.0.0.1:1/none",
                                                                      .application_name = "cv_pgpipe_nowhere",
                                                                      .statements = statements,
                                                                      .statement_count = 5,
                                                                      .timeout_ms = 2000,
                                                                      .log = log});
    test_outcome_t lost = {0};
    if (cv_pgpipe_up (nowhere)) {
        assert (cv_pgpipe_run (nowhere, 0, hello, NULL, NULL, s_test_done, &lost, &err) == 0);
        s_test_wait (loop, (test_outcome_t *[]){&lost, NULL});
        assert (lost.failed && lost.code == CV_ERR_UNAVAILABLE);
    }
    assert (!cv_pgpipe_up (nowhere));
    assert (cv_pgpipe_run (nowhere, 0, hello, NULL, NULL, s_test_done, &lost, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE && strstr (err.message, "postgresql unavailable"));
    cv_pgpipe_destroy (&nowhere);

    /* abort: what is queued fails at once, callbacks called; the pipe stays down */
    test_outcome_t aborted[2] = {{0}};
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &aborted[0], &err) == 0);
    assert (cv_pgpipe_run (pipe, 0, world, NULL, NULL, s_test_done, &aborted[1], &err) == 0);
    cv_pgpipe_abort (pipe, "stopping");
    assert (aborted[0].calls == 1 && aborted[0].failed && aborted[0].code == CV_ERR_UNAVAILABLE);
    assert (aborted[1].calls == 1 && aborted[1].failed);
    assert (!cv_pgpipe_up (pipe) && cv_pgpipe_queued (pipe) == 0);
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &a, &err) == -1);
    assert (strstr (err.message, "stopping"));
    cv_pgpipe_destroy (&pipe);
    pipe = cv_pgpipe_new (loop, &config);

    /* destroy with runs queued: no callbacks */
    test_outcome_t dropped = {0};
    assert (cv_pgpipe_run (pipe, 0, hello, NULL, NULL, s_test_done, &dropped, &err) == 0);
    cv_pgpipe_destroy (&pipe);
    assert (dropped.calls == 0);
    cv_pgpipe_destroy (&pipe);

    assert (cv_pg_run (pg, "DROP TABLE cv_pgpipe_test", 0, NULL, &err) == 0);
    cv_pg_destroy (&pg);
    zloop_destroy (&loop);
    cv_metrics_destroy (&metrics);
    cv_log_destroy (&log);
    free (url);
}
