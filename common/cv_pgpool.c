/* A pool of read-only PostgreSQL connections driven by a zloop. */
#include "cv_pgpool.h"

#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_pg.h"

typedef struct _slot_t slot_t;

struct _cv_pgpool_run_t {
    cv_pgpool_t *pool;
    char *sql;
    char **params;
    size_t count;
    size_t max_rows;
    cv_pgpool_done_fn *done;
    void *arg;
    cv_pgpool_outcome_t outcome;
    slot_t *slot;  /* running on, or NULL while queued */
    void *waiting; /* its place in pool->queue while queued */
    int timer;     /* the limit's timer, or the one that delivers an outcome known at once; -1 */
};

/* One connection and what it is doing. */
struct _slot_t {
    cv_pgpool_t *pool;
    cv_pgconn_t *conn;
    cv_pgpool_run_t *run; /* the statement on it, or NULL */
    zmq_pollitem_t item;  /* as registered with the loop; events 0 when not */
    int settle_timer;     /* CANCELLING: asks again, then gives up; or -1 */
    int64_t settle_until_us;
};

struct _cv_pgpool_t {
    zloop_t *loop;
    slot_t *slots;
    size_t size;
    zlistx_t *queue; /* runs waiting for a free connection, oldest first */
};

static void s_start_next (cv_pgpool_t *self);

/*  --------------------------------------------------------------------------
    Watching a connection's socket */

static short
s_zmq_events (short events)
{
    return (short) (((events & POLLIN) ? ZMQ_POLLIN : 0) | ((events & POLLOUT) ? ZMQ_POLLOUT : 0));
}

static int s_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg);

/* Registers the slot's socket for what its connection waits on, once that changed. Called after
   every call into the slot's connection, so a socket it closed is never left registered. */
static void
s_watch (slot_t *slot)
{
    cv_pgconn_state_t state = cv_pgconn_state (slot->conn);
    bool active = state != CV_PGCONN_IDLE && state != CV_PGCONN_DONE;
    int fd = active ? cv_pgconn_fd (slot->conn) : -1;
    short events = fd >= 0 ? s_zmq_events (cv_pgconn_events (slot->conn)) : 0;
    if (events == slot->item.events && (events == 0 || fd == slot->item.fd))
        return;
    if (slot->item.events)
        zloop_poller_end (slot->pool->loop, &slot->item);
    slot->item = (zmq_pollitem_t){.socket = NULL, .fd = fd, .events = events};
    if (events) {
        int rc = zloop_poller (slot->pool->loop, &slot->item, s_readable, slot);
        assert (rc == 0);
        zloop_poller_set_tolerant (slot->pool->loop, &slot->item); /* a broken socket is libpq's to report */
    }
}

/*  --------------------------------------------------------------------------
    Runs */

static void
s_run_destroy (cv_pgpool_run_t **run_p)
{
    cv_pgpool_run_t *run = *run_p;
    for (size_t i = 0; i < run->count; i++)
        free (run->params[i]);
    free (run->params);
    free (run->sql);
    free (run);
    *run_p = NULL;
}

static void
s_end_timer (cv_pgpool_t *self, int *timer)
{
    if (*timer >= 0)
        zloop_timer_end (self->loop, *timer);
    *timer = -1;
}

/* Tells the caller and forgets the run. */
static void
s_deliver (cv_pgpool_run_t *run)
{
    s_end_timer (run->pool, &run->timer);
    run->outcome.finished_us = zclock_usecs ();
    run->done (run->arg, &run->outcome);
    s_run_destroy (&run);
}

static int
s_deliver_later (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    cv_pgpool_run_t *run = arg;
    run->timer = -1; /* a one-off timer ends itself */
    s_deliver (run);
    return 0;
}

/* For an outcome known inside cv_pgpool_run: delivered from the loop, at once. */
static void
s_defer (cv_pgpool_run_t *run)
{
    s_end_timer (run->pool, &run->timer);
    run->timer = zloop_timer (run->pool->loop, 0, 1, s_deliver_later, run);
    assert (run->timer >= 0);
}

/*  --------------------------------------------------------------------------
    Connections */

/* A cancelled statement that has not ended yet is asked again to stop, and its connection closed
   once it has had CV_PGPOOL_SETTLE_MS; a connection still opening for nobody is closed once it has
   had CV_PGPOOL_CONNECT_MS. */
static int
s_settle_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    slot_t *slot = arg;
    if (zclock_usecs () < slot->settle_until_us) {
        cv_pgconn_recancel (slot->conn); /* nothing while it is opening */
        return 0;
    }
    s_end_timer (slot->pool, &slot->settle_timer);
    cv_pgconn_abandon (slot->conn); /* cancelling, or opening for nobody: closes it */
    s_watch (slot);
    s_start_next (slot->pool);
    return 0;
}

/* The slot's statement has ended (DONE): its run hears of it, then the connection is free. */
static void
s_finished (slot_t *slot)
{
    cv_pgpool_run_t *run = slot->run;
    slot->run = NULL;
    run->slot = NULL;
    run->outcome.conn = slot->conn;
    s_deliver (run); /* may queue more runs: the slot is not free until reset */
    cv_pgconn_reset (slot->conn);
    s_watch (slot);
}

/* Takes the run off its connection, cancelling its statement; the connection settles. */
static void
s_abandon (slot_t *slot, cv_pgpool_run_t *run)
{
    cv_pgpool_t *self = slot->pool;
    run->outcome.connecting = cv_pgconn_state (slot->conn) == CV_PGCONN_CONNECTING;
    run->outcome.cancelled = cv_pgconn_abandon (slot->conn);
    slot->run = NULL;
    run->slot = NULL;
    s_watch (slot);
    cv_pgconn_state_t state = cv_pgconn_state (slot->conn);
    if (state == CV_PGCONN_CANCELLING || state == CV_PGCONN_CONNECTING) {
        int settle_ms = state == CV_PGCONN_CANCELLING ? CV_PGPOOL_SETTLE_MS : CV_PGPOOL_CONNECT_MS;
        slot->settle_until_us = zclock_usecs () + (int64_t) settle_ms * 1000;
        slot->settle_timer = zloop_timer (self->loop, CV_PGCONN_CANCEL_REPEAT_MS, 0, s_settle_tick, slot);
        assert (slot->settle_timer >= 0);
    }
}

static int
s_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop, (void) item;
    slot_t *slot = arg;
    cv_pgconn_state_t before = cv_pgconn_state (slot->conn);
    if (before == CV_PGCONN_IDLE || before == CV_PGCONN_DONE)
        return 0; /* a stale event for a socket no longer watched */
    cv_pgconn_advance (slot->conn);
    if (cv_pgconn_state (slot->conn) == CV_PGCONN_DONE && slot->run)
        s_finished (slot);
    else if (!slot->run && cv_pgconn_state (slot->conn) == CV_PGCONN_IDLE)
        s_end_timer (slot->pool, &slot->settle_timer); /* settled: cancelled statement over, or opened */
    s_watch (slot);
    s_start_next (slot->pool);
    return 0;
}

static int
s_limit_reached (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    cv_pgpool_run_t *run = arg;
    cv_pgpool_t *self = run->pool;
    run->timer = -1;
    run->outcome.timed_out = true;
    if (run->slot)
        s_abandon (run->slot, run);
    else {
        zlistx_delete (self->queue, run->waiting);
        run->waiting = NULL;
        run->outcome.waited = true;
    }
    s_deliver (run);
    s_start_next (self);
    return 0;
}

/* A run whose statement failed as it started: heard of from the loop, then its connection is free. */
static int
s_deliver_started (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    cv_pgpool_run_t *run = arg;
    run->timer = -1;
    cv_pgpool_t *self = run->pool;
    s_finished (run->slot);
    s_start_next (self);
    return 0;
}

/* Puts the oldest waiting runs on the free connections. */
static void
s_start_next (cv_pgpool_t *self)
{
    for (size_t i = 0; i < self->size && zlistx_size (self->queue); i++) {
        slot_t *slot = &self->slots[i];
        if (slot->run || cv_pgconn_state (slot->conn) != CV_PGCONN_IDLE)
            continue;
        cv_pgpool_run_t *run = zlistx_first (self->queue);
        zlistx_delete (self->queue, run->waiting);
        run->waiting = NULL;
        run->slot = slot;
        slot->run = run;
        cv_pgconn_start (slot->conn, run->sql, run->count, (const char *const *) run->params, run->max_rows);
        s_watch (slot);
        if (cv_pgconn_state (slot->conn) == CV_PGCONN_DONE) {
            /* failed at once (PostgreSQL unreachable): its outcome waits for the loop, its
               connection with it */
            run->outcome.conn = slot->conn;
            s_end_timer (self, &run->timer);
            run->timer = zloop_timer (self->loop, 0, 1, s_deliver_started, run);
        }
    }
}

/*  --------------------------------------------------------------------------
    The pool */

cv_pgpool_t *
cv_pgpool_new (zloop_t *loop, const char *url, const char *application_name, size_t size)
{
    assert (loop && url && application_name && size >= 1);
    cv_pgpool_t *self = cv_calloc (1, sizeof *self);
    self->loop = loop;
    self->size = size;
    self->slots = cv_calloc (size, sizeof *self->slots);
    for (size_t i = 0; i < size; i++) {
        self->slots[i].pool = self;
        self->slots[i].conn = cv_pgconn_new (url, application_name);
        self->slots[i].settle_timer = -1;
    }
    self->queue = zlistx_new ();
    return self;
}

void
cv_pgpool_destroy (cv_pgpool_t **self_p)
{
    assert (self_p);
    cv_pgpool_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++) {
        slot_t *slot = &self->slots[i];
        if (slot->run) {
            cv_pgpool_run_t *run = slot->run;
            s_end_timer (self, &run->timer);
            s_run_destroy (&run);
        }
        s_end_timer (self, &slot->settle_timer);
        if (slot->item.events)
            zloop_poller_end (self->loop, &slot->item);
        cv_pgconn_abandon (slot->conn); /* a running statement is cancelled, not left to run on */
        cv_pgconn_destroy (&slot->conn);
    }
    for (cv_pgpool_run_t *run = zlistx_first (self->queue); run; run = zlistx_next (self->queue)) {
        s_end_timer (self, &run->timer);
        s_run_destroy (&run);
    }
    zlistx_destroy (&self->queue);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

cv_pgpool_run_t *
cv_pgpool_run (cv_pgpool_t *self, const char *sql, size_t count, const char *const *params, size_t max_rows,
               int64_t until_us, cv_pgpool_done_fn *done, void *arg)
{
    assert (self && sql && done);
    assert (count == 0 || params);
    cv_pgpool_run_t *run = cv_calloc (1, sizeof *run);
    run->pool = self;
    run->sql = cv_strdup (sql);
    run->params = cv_calloc (count ? count : 1, sizeof *run->params);
    for (size_t i = 0; i < count; i++)
        run->params[i] = params[i] ? cv_strdup (params[i]) : NULL;
    run->count = count;
    run->max_rows = max_rows;
    run->done = done;
    run->arg = arg;
    run->timer = -1;
    int64_t now = zclock_usecs ();
    run->outcome.started_us = now;
    if (until_us <= now) {
        run->outcome.timed_out = run->outcome.waited = true;
        s_defer (run);
        return run;
    }
    /* zloop's timers count whole milliseconds: round up, so the limit is never early */
    run->timer = zloop_timer (self->loop, (size_t) ((until_us - now + 999) / 1000), 1, s_limit_reached, run);
    assert (run->timer >= 0);
    run->waiting = zlistx_add_end (self->queue, run);
    s_start_next (self);
    return run;
}

void
cv_pgpool_forget (cv_pgpool_t *self, cv_pgpool_run_t *run)
{
    assert (self && run && run->pool == self);
    s_end_timer (self, &run->timer);
    if (run->waiting)
        zlistx_delete (self->queue, run->waiting);
    else if (run->slot && cv_pgconn_state (run->slot->conn) == CV_PGCONN_DONE) {
        slot_t *slot = run->slot; /* failed as it started: the outcome is simply not read */
        slot->run = NULL;
        cv_pgconn_reset (slot->conn);
        s_watch (slot);
    } else if (run->slot)
        s_abandon (run->slot, run);
    s_run_destroy (&run);
    s_start_next (self);
}

void
cv_pgpool_set_writable (cv_pgpool_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->size; i++)
        cv_pgconn_set_writable (self->slots[i].conn);
}

zloop_t *
cv_pgpool_loop (const cv_pgpool_t *self)
{
    assert (self);
    return self->loop;
}

size_t
cv_pgpool_size (const cv_pgpool_t *self)
{
    assert (self);
    return self->size;
}

size_t
cv_pgpool_busy (const cv_pgpool_t *self)
{
    assert (self);
    size_t busy = 0;
    for (size_t i = 0; i < self->size; i++)
        busy += self->slots[i].run || cv_pgconn_state (self->slots[i].conn) != CV_PGCONN_IDLE;
    return busy;
}

size_t
cv_pgpool_waiting (const cv_pgpool_t *self)
{
    assert (self);
    return zlistx_size (self->queue);
}

/*  --------------------------------------------------------------------------
    Self-test, against the PostgreSQL of the test fixture (tests/fixtures/pg_fixture.sh). */

typedef struct {
    int done;          /* outcomes heard */
    bool inside_run;   /* set around cv_pgpool_run: no outcome may come then */
    bool succeeded[8]; /* by the arg's index */
    bool timed_out[8];
    bool waited[8];
    bool cancelled[8];
    char value[8][32];  /* the first row's v */
    size_t prepared[8]; /* statements prepared on its connection, once it ended */
    char error[8][256];
} s_test_t;

typedef struct {
    s_test_t *test;
    int index;
} s_test_arg_t;

static void
s_test_done (void *arg, const cv_pgpool_outcome_t *outcome)
{
    s_test_arg_t *which = arg;
    s_test_t *test = which->test;
    assert (!test->inside_run);
    assert (outcome->finished_us >= outcome->started_us);
    int i = which->index;
    test->done++;
    test->timed_out[i] = outcome->timed_out;
    test->waited[i] = outcome->waited;
    test->cancelled[i] = outcome->cancelled;
    if (!outcome->timed_out) {
        test->succeeded[i] = cv_pgconn_succeeded (outcome->conn);
        snprintf (test->error[i], sizeof test->error[i], "%s", cv_pgconn_error (outcome->conn));
        test->prepared[i] = cv_pgconn_prepared (outcome->conn);
        json_t *row = json_array_get (cv_pgconn_rows (outcome->conn), 0);
        const char *value = json_string_value (json_object_get (row, "v"));
        snprintf (test->value[i], sizeof test->value[i], "%s", value ? value : "");
    }
}

typedef struct {
    s_test_t *test;
    int want;
} s_test_wait_t;

static int
s_test_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_test_wait_t *wait = arg;
    return wait->test->done >= wait->want ? -1 : 0;
}

static int
s_test_too_long (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    cv_assert_that (false, "cv_pgpool: the outcomes did not come within 10 s");
    return -1;
}

/* Runs the loop until test has heard want outcomes in all. */
static void
s_test_wait (zloop_t *loop, s_test_t *test, int want)
{
    s_test_wait_t wait = {test, want};
    int check = zloop_timer (loop, 2, 0, s_test_check, &wait);
    int guard = zloop_timer (loop, 10000, 1, s_test_too_long, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, check);
    zloop_timer_end (loop, guard);
    assert (test->done >= want);
}

static cv_pgpool_run_t *
s_test_run (cv_pgpool_t *pool, s_test_arg_t *arg, const char *sql, const char *param, int64_t limit_ms)
{
    const char *params[] = {param};
    arg->test->inside_run = true;
    cv_pgpool_run_t *run =
        cv_pgpool_run (pool, sql, param ? 1 : 0, params, 5, zclock_usecs () + limit_ms * 1000, s_test_done, arg);
    arg->test->inside_run = false;
    return run;
}

void
cv_pgpool_test (bool verbose)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    /* named for this process, so what other tests run on the fixture's server never counts here */
    char application[64];
    snprintf (application, sizeof application, "cv_pgpool_test_%d", (int) getpid ());
    zloop_t *loop = zloop_new ();
    cv_pgpool_t *pool = cv_pgpool_new (loop, url, application, 2);
    assert (cv_pgpool_size (pool) == 2 && cv_pgpool_busy (pool) == 0);
    s_test_t test = {0};
    s_test_arg_t args[8];
    for (int i = 0; i < 8; i++)
        args[i] = (s_test_arg_t){&test, i};

    /* three statements on two connections: the third waits for one, each answers with its own
       parameter, and no outcome comes from inside cv_pgpool_run */
    s_test_run (pool, &args[0], "SELECT $1::text AS v, pg_sleep(0.05)", "one", 5000);
    s_test_run (pool, &args[1], "SELECT $1::text AS v, pg_sleep(0.05)", "two", 5000);
    s_test_run (pool, &args[2], "SELECT $1::text AS v", "three", 5000);
    assert (cv_pgpool_busy (pool) == 2 && cv_pgpool_waiting (pool) == 1);
    s_test_wait (loop, &test, 3);
    for (int i = 0; i < 3; i++)
        cv_assert_that (test.succeeded[i], "statement %d failed: %s", i, test.error[i]);
    assert (streq (test.value[0], "one") && streq (test.value[1], "two") && streq (test.value[2], "three"));
    assert (cv_pgpool_busy (pool) == 0 && cv_pgpool_waiting (pool) == 0);

    /* sessions are read-only, unless the pool was made writable before it opened any */
    memset (&test, 0, sizeof test);
    s_test_run (pool, &args[0], "SELECT current_setting ('default_transaction_read_only') AS v", NULL, 5000);
    cv_pgpool_t *writable = cv_pgpool_new (loop, url, application, 1);
    cv_pgpool_set_writable (writable);
    s_test_run (writable, &args[1], "SELECT current_setting ('default_transaction_read_only') AS v", NULL, 5000);
    s_test_wait (loop, &test, 2);
    assert (streq (test.value[0], "on") && streq (test.value[1], "off"));
    cv_pgpool_destroy (&writable);

    /* an SQL error is that statement's alone */
    memset (&test, 0, sizeof test);
    s_test_run (pool, &args[0], "SELECT * FROM no_such_table", NULL, 5000);
    s_test_run (pool, &args[1], "SELECT 'fine'::text AS v", NULL, 5000);
    s_test_wait (loop, &test, 2);
    assert (!test.succeeded[0] && strstr (test.error[0], "(42P01)"));
    assert (test.succeeded[1] && streq (test.value[1], "fine"));

    /* a statement past its limit is cancelled on the server; one still waiting for a connection
       times out as waiting; the connections settle and serve again */
    memset (&test, 0, sizeof test);
    s_test_run (pool, &args[0], "SELECT pg_sleep(30)", NULL, 50);
    s_test_run (pool, &args[1], "SELECT pg_sleep(30)", NULL, 50);
    s_test_run (pool, &args[2], "SELECT 'late'::text AS v", NULL, 20);
    s_test_wait (loop, &test, 3);
    assert (test.timed_out[0] && test.cancelled[0] && !test.waited[0]);
    assert (test.timed_out[1] && test.cancelled[1]);
    assert (test.timed_out[2] && test.waited[2] && !test.cancelled[2]);
    s_test_run (pool, &args[3], "SELECT 'again'::text AS v", NULL, 5000);
    const char *params[] = {application};
    test.inside_run = true;
    cv_pgpool_run (pool,
                   "SELECT count(*)::text AS v FROM pg_stat_activity WHERE state = 'active'"
                   " AND application_name = $1 AND pid <> pg_backend_pid ()",
                   1, params, 1, zclock_usecs () + 5000000, s_test_done, &args[4]);
    test.inside_run = false;
    s_test_wait (loop, &test, 5);
    assert (test.succeeded[3] && streq (test.value[3], "again"));
    cv_assert_that (test.succeeded[4] && streq (test.value[4], "0"), "sessions still busy: %s %s", test.value[4],
                    test.error[4]);

    /* a limit already passed: timed out, from the loop */
    memset (&test, 0, sizeof test);
    s_test_run (pool, &args[0], "SELECT 1", NULL, -1);
    assert (test.done == 0);
    s_test_wait (loop, &test, 1);
    assert (test.timed_out[0] && test.waited[0]);

    /* a forgotten run is never heard of, whether waiting or sent; the pool serves on */
    memset (&test, 0, sizeof test);
    cv_pgpool_run_t *sent = s_test_run (pool, &args[0], "SELECT pg_sleep(30)", NULL, 5000);
    s_test_run (pool, &args[1], "SELECT pg_sleep(0.05)", NULL, 5000);
    cv_pgpool_run_t *queued = s_test_run (pool, &args[2], "SELECT 1", NULL, 5000);
    cv_pgpool_forget (pool, queued);
    cv_pgpool_forget (pool, sent);
    s_test_run (pool, &args[3], "SELECT 'after'::text AS v", NULL, 5000);
    s_test_wait (loop, &test, 2);
    assert (test.done == 2 && test.succeeded[1] && test.succeeded[3] && streq (test.value[3], "after"));

    /* destroyed with statements running and waiting: nothing is heard, nothing leaks */
    memset (&test, 0, sizeof test);
    s_test_run (pool, &args[0], "SELECT pg_sleep(30)", NULL, 5000);
    s_test_run (pool, &args[1], "SELECT pg_sleep(30)", NULL, 5000);
    s_test_run (pool, &args[2], "SELECT 1", NULL, 5000);
    cv_pgpool_destroy (&pool);
    assert (!pool && test.done == 0);

    /* prepared statements: a connection prepares a text the first time it runs it, and only then
       (pg_prepared_statements holds it once); a statement the server refuses fails on its own and
       the connection serves on; one whose prepared statements went astray runs on a fresh one */
    pool = cv_pgpool_new (loop, url, application, 1);
    const char *text = "SELECT $1::text AS v";
    const char *runs[][2] = {{text, "a"},
                             {text, "b"},
                             {"SELECT count(*)::text AS v FROM pg_prepared_statements WHERE statement = $1", text},
                             {"SELEC $1", "syntax"},
                             {text, "c"},
                             {"DEALLOCATE ALL", NULL},
                             {text, "d"}};
    memset (&test, 0, sizeof test);
    for (int i = 0; i < 7; i++)
        s_test_run (pool, &args[i], runs[i][0], runs[i][1], 5000);
    s_test_wait (loop, &test, 7);
    assert (test.succeeded[0] && streq (test.value[0], "a") && test.prepared[0] == 1);
    assert (test.succeeded[1] && streq (test.value[1], "b") && test.prepared[1] == 1);
    cv_assert_that (test.succeeded[2] && streq (test.value[2], "1"), "%s %s", test.value[2], test.error[2]);
    assert (test.prepared[2] == 2);
    assert (!test.succeeded[3] && strstr (test.error[3], "postgresql statement failed (42601): syntax error"));
    assert (test.prepared[3] == 2);
    assert (test.succeeded[4] && streq (test.value[4], "c") && test.prepared[4] == 2);
    assert (test.succeeded[5]);
    cv_assert_that (test.succeeded[6] && streq (test.value[6], "d"), "%s", test.error[6]);
    assert (test.prepared[6] == 1); /* a new session, which prepared the text again */
    cv_pgpool_destroy (&pool);

    /* PostgreSQL out of reach: each statement fails on its own, heard of from the loop */
    memset (&test, 0, sizeof test);
    pool = cv_pgpool_new (loop, "postgresql://conveyor@127.0.0.1:1/conveyor?connect_timeout=2", application, 1);
    s_test_run (pool, &args[0], "SELECT 1", NULL, 5000);
    s_test_run (pool, &args[1], "SELECT 1", NULL, 5000);
    assert (test.done == 0);
    s_test_wait (loop, &test, 2);
    assert (!test.succeeded[0] && strstr (test.error[0], "postgresql connect failed"));
    assert (!test.succeeded[1] && strstr (test.error[1], "postgresql connect failed"));
    cv_pgpool_destroy (&pool);

    zloop_destroy (&loop);
    free (url);
    if (verbose)
        printf ("cv_pgpool: ok\n");
}
