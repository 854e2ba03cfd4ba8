/* Runs the SQL tools of one request's plan in parallel, each on its own pooled connection. */
#include "gatherer_sql.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_msgpack.h"
#include "cv_template.h"
#include "cv_pg.h"
#include "cv_pgconn.h"

struct _gatherer_sql_t {
    cv_pgconn_t **conns;
    size_t size;
};

gatherer_sql_t *
gatherer_sql_new (const char *url, const char *application_name, size_t size)
{
    assert (url && application_name && size > 0);
    gatherer_sql_t *self = cv_calloc (1, sizeof *self);
    self->conns = cv_calloc (size, sizeof *self->conns);
    for (size_t i = 0; i < size; i++)
        self->conns[i] = cv_pgconn_new (url, application_name);
    self->size = size;
    return self;
}

void
gatherer_sql_destroy (gatherer_sql_t **self_p)
{
    assert (self_p);
    gatherer_sql_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        cv_pgconn_destroy (&self->conns[i]);
    free (self->conns);
    free (self);
    *self_p = NULL;
}

size_t
gatherer_sql_size (const gatherer_sql_t *self)
{
    assert (self);
    return self->size;
}

void
gatherer_sql_result_reset (gatherer_sql_result_t *result)
{
    assert (result);
    free (result->data);
    memset (result, 0, sizeof *result);
}

/* A parameter's text from the context: malloc'd, or NULL for SQL NULL. */
static char *
s_param_text (const json_t *context, const char *path)
{
    json_t *value = context ? cv_template_lookup (context, path) : NULL;
    if (!value || json_is_null (value))
        return NULL;
    if (json_is_object (value) || json_is_array (value))
        return json_dumps (value, JSON_COMPACT | JSON_ENSURE_ASCII);
    return cv_template_scalar_text (value);
}

static void
s_start (cv_pgconn_t *conn, const gatherer_tool_t *tool, const json_t *context)
{
    char *params[GATHERER_MAX_PARAMS];
    assert (tool->param_count <= GATHERER_MAX_PARAMS);
    for (size_t i = 0; i < tool->param_count; i++)
        params[i] = s_param_text (context, tool->params[i]);
    cv_pgconn_start (conn, tool->query, tool->param_count, (const char *const *) params, (size_t) tool->max_rows);
    for (size_t i = 0; i < tool->param_count; i++)
        free (params[i]);
}

/* Records the outcome of a statement that ended, and frees its connection for the next. */
static void
s_finish (cv_pgconn_t *conn, gatherer_sql_result_t *result, int64_t now)
{
    result->finished_us = now;
    if (cv_pgconn_succeeded (conn)) {
        cv_error_t err;
        json_t *rows = cv_pgconn_rows (conn);
        result->data = cv_msgpack_pack (rows, &result->size, &err);
        if (result->data) {
            result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
            result->rows = json_array_size (rows);
            result->dropped = cv_pgconn_dropped (conn);
        } else {
            result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
            snprintf (result->error, sizeof result->error, "rows cannot be sent: %s", err.message);
        }
    } else {
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
        snprintf (result->error, sizeof result->error, "%s", cv_pgconn_error (conn));
    }
    cv_pgconn_reset (conn);
}

static void
s_time_out (cv_pgconn_t *conn, const gatherer_tool_t *tool, gatherer_sql_result_t *result, int64_t until, int64_t now)
{
    result->finished_us = now;
    result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
    bool by_deadline = until < result->started_us + (int64_t) tool->timeout_ms * 1000;
    bool connecting = cv_pgconn_state (conn) == CV_PGCONN_CONNECTING;
    result->cancelled = cv_pgconn_abandon (conn);
    snprintf (result->error, sizeof result->error, "%s after %lld ms%s%s",
              by_deadline ? "the request's deadline came" : "timed out",
              (long long) (until - result->started_us) / 1000, connecting ? " while connecting to postgresql" : "",
              result->cancelled ? " (statement cancelled)" : "");
}

void
gatherer_sql_run (gatherer_sql_t *self, const gatherer_tool_t *const *tools, size_t count, const json_t *context,
                  int64_t deadline_us, gatherer_sql_result_t *results)
{
    assert (self && results);
    assert (count <= self->size);
    assert (count == 0 || tools);
    int64_t until[CV_MAX_TOOL_RESULTS];
    bool active[CV_MAX_TOOL_RESULTS];
    assert (count <= CV_MAX_TOOL_RESULTS);

    int64_t now;
    for (size_t i = 0; i < count; i++) {
        memset (&results[i], 0, sizeof results[i]);
        results[i].started_us = now = zclock_usecs ();
        until[i] = now + (int64_t) tools[i]->timeout_ms * 1000;
        if (deadline_us && deadline_us < until[i])
            until[i] = deadline_us;
        active[i] = false;
        if (until[i] <= now) {
            results[i].finished_us = now;
            results[i].status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
            snprintf (results[i].error, sizeof results[i].error, "the request's deadline left no time to start");
            continue;
        }
        s_start (self->conns[i], tools[i], context);
        if (cv_pgconn_state (self->conns[i]) == CV_PGCONN_DONE)
            s_finish (self->conns[i], &results[i], zclock_usecs ());
        else
            active[i] = true;
    }

    while (true) {
        struct pollfd fds[CV_MAX_TOOL_RESULTS];
        size_t which[CV_MAX_TOOL_RESULTS];
        nfds_t nfds = 0;
        int64_t first = INT64_MAX;
        for (size_t i = 0; i < count; i++)
            if (active[i]) {
                fds[nfds] =
                    (struct pollfd){.fd = cv_pgconn_fd (self->conns[i]), .events = cv_pgconn_events (self->conns[i])};
                which[nfds++] = i;
                if (until[i] < first)
                    first = until[i];
            }
        if (nfds == 0)
            break;
        now = zclock_usecs ();
        int wait_ms = first <= now ? 0 : (int) ((first - now + 999) / 1000);
        if (poll (fds, nfds, wait_ms) < 0 && errno != EINTR)
            assert (false); /* EFAULT, EINVAL, ENOMEM: a bug or a dying machine */

        for (nfds_t n = 0; n < nfds; n++) {
            size_t i = which[n];
            if (fds[n].revents)
                cv_pgconn_advance (self->conns[i]);
            if (cv_pgconn_state (self->conns[i]) == CV_PGCONN_DONE) {
                s_finish (self->conns[i], &results[i], zclock_usecs ());
                active[i] = false;
            }
        }
        now = zclock_usecs ();
        for (size_t i = 0; i < count; i++)
            if (active[i] && until[i] <= now) {
                s_time_out (self->conns[i], tools[i], &results[i], until[i], now);
                active[i] = false;
            }
    }
}

/*  --------------------------------------------------------------------------
    Self-test, against the PostgreSQL of the test fixture (tests/fixtures/pg_fixture.sh). */

/* The fixture's URL; a test run without the pg fixture is a mistake in its registration. */
static char *
s_test_url (void)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    return url;
}

/* The rows of an OK result, decoded as the decision worker will see them. */
static json_t *
s_test_rows (const gatherer_sql_result_t *result)
{
    cv_assert_that (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "expected OK, got status %d: %s",
                    (int) result->status, result->error);
    cv_error_t err;
    json_t *rows = cv_msgpack_unpack (result->data, result->size, "data", &err);
    assert (rows && json_is_array (rows));
    assert (json_array_size (rows) == result->rows);
    return rows;
}

/* True when some row of rows has every key/value of expected. */
static bool
s_test_has_row (const json_t *rows, const json_t *expected)
{
    size_t index;
    json_t *row;
    json_array_foreach (rows, index, row) {
        const char *key;
        json_t *value;
        bool all = true;
        json_object_foreach ((json_t *) expected, key, value)
            all = all && json_equal (json_object_get (row, key), value);
        if (all)
            return true;
    }
    return false;
}

static gatherer_tool_t
s_test_tool (const char *name, const char *query, int timeout_ms, int max_rows)
{
    gatherer_tool_t tool = {
        .name = name, .kind = GATHERER_TOOL_SQL, .query = query, .timeout_ms = timeout_ms, .max_rows = max_rows};
    return tool;
}

void
gatherer_sql_test (bool verbose)
{
    char *url = s_test_url ();
    cv_error_t err;
    cv_config_t *agent = cv_config_load ("deploy/config/bank-agent.yaml", &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    assert (tools);
    /* named for this process, so what other tests run on the fixture's server never counts here */
    char application[64];
    snprintf (application, sizeof application, "gatherer_sql_test_%d", (int) getpid ());
    gatherer_sql_t *sql = gatherer_sql_new (url, application, 4);
    assert (gatherer_sql_size (sql) == 4);
    gatherer_sql_result_t results[4];
    json_t *context =
        json_pack ("{s:s, s:s, s:{s:s, s:{}}}", "user_id", "cust-1", "text", "help", "intent", "name", "x", "slots");

    /* cust-1's guaranteed rows, through the agent file's own tools (see 0002_demo_bank.sql) */
    const char *names[] = {"active_cards", "cards_in_delivery", "duplicate_payments", "pending_transfers"};
    const gatherer_tool_t *bank[4];
    for (size_t i = 0; i < 4; i++)
        assert ((bank[i] = gatherer_tools_find (tools, names[i])));
    gatherer_sql_run (sql, bank, 4, context, 0, results);
    json_t *rows = s_test_rows (&results[0]);
    json_t *want = json_pack ("{s:s, s:s, s:s}", "id", "card-1-1", "last4", "4417", "status", "active");
    assert (s_test_has_row (rows, want));
    assert (json_array_size (rows) == 1); /* 9052 is not active */
    json_decref (want);
    json_decref (rows);
    rows = s_test_rows (&results[1]);
    want = json_pack ("{s:s, s:s, s:s}", "last4", "9052", "status", "shipped", "delivery_tracking", "CP482913374IE");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    rows = s_test_rows (&results[2]);
    want = json_pack ("{s:s, s:s, s:s, s:s}", "id", "tx-1-1-8", "original_id", "tx-1-1-7", "merchant", "Deliveroo",
                      "amount", "18.90");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    rows = s_test_rows (&results[3]);
    want = json_pack ("{s:s, s:s, s:s, s:s}", "id", "tr-1-1", "recipient_name", "Sean Murphy", "amount", "250.00",
                      "currency", "EUR");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    for (size_t i = 0; i < 4; i++) {
        assert (results[i].finished_us >= results[i].started_us);
        assert (!*results[i].error);
        gatherer_sql_result_reset (&results[i]);
    }

    /* the failed top-up and the card slot: a slot narrows, a missing slot is NULL (no filter) */
    const gatherer_tool_t *topups = gatherer_tools_find (tools, "failed_topups");
    gatherer_sql_run (sql, &topups, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s, s:s, s:s, s:s}", "id", "top-1-1", "amount", "200.00", "method", "card", "failure_reason",
                      "Declined by the issuing bank of the top-up card");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_sql_result_reset (&results[0]);

    gatherer_tool_t probe_null =
        s_test_tool ("null_param", "SELECT $1::text IS NULL AS is_null, $2::text AS user", 1000, 5);
    const char *null_params[] = {"intent.slots.card_last4", "user_id"};
    probe_null.params = null_params;
    probe_null.param_count = 2;
    const gatherer_tool_t *one = &probe_null;
    gatherer_sql_run (sql, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s, s:s}", "is_null", "t", "user", "cust-1");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_sql_result_reset (&results[0]);

    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_string ("9052"));
    const gatherer_tool_t *active = gatherer_tools_find (tools, "active_cards");
    gatherer_sql_run (sql, &active, 1, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 0);
    gatherer_sql_result_reset (&results[0]);
    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_integer (4417));
    gatherer_sql_run (sql, &active, 1, context, 0, results); /* a number goes as its text */
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 1);
    gatherer_sql_result_reset (&results[0]);

    /* two slow tools run at once: their time windows overlap */
    gatherer_tool_t slow_a = s_test_tool ("slow_a", "SELECT pg_sleep(0.3)::text AS slept", 5000, 1);
    gatherer_tool_t slow_b = s_test_tool ("slow_b", "SELECT pg_sleep(0.3)::text AS slept", 5000, 1);
    const gatherer_tool_t *both[] = {&slow_a, &slow_b};
    gatherer_sql_run (sql, both, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    assert (results[0].started_us < results[1].finished_us && results[1].started_us < results[0].finished_us);
    /* each slept 0.3 s on the server, so each window is at least that long */
    assert (results[0].finished_us - results[0].started_us >= 300000);
    assert (results[1].finished_us - results[1].started_us >= 300000);
    gatherer_sql_result_reset (&results[0]);
    gatherer_sql_result_reset (&results[1]);

    /* a tool past its timeout is TIMED_OUT and cancelled; the other one is OK */
    gatherer_tool_t sleepy = s_test_tool ("sleepy", "SELECT pg_sleep(30)", 200, 1);
    gatherer_tool_t quick = s_test_tool ("quick", "SELECT 'fine' AS how", 5000, 1);
    const gatherer_tool_t *mixed[] = {&sleepy, &quick};
    gatherer_sql_run (sql, mixed, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (results[0].cancelled);
    assert (strstr (results[0].error, "timed out after 200 ms (statement cancelled)"));
    assert (results[0].finished_us - results[0].started_us >= 200000);
    assert (!results[0].data);
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[1].rows == 1);
    gatherer_sql_result_reset (&results[0]);
    gatherer_sql_result_reset (&results[1]);
    /* cancelled on the server: no statement of ours still sleeping */
    gatherer_tool_t sleepers = s_test_tool ("sleepers",
                                            "SELECT count(*)::text AS n FROM pg_stat_activity"
                                            " WHERE application_name = current_setting ('application_name')"
                                            " AND state = 'active' AND pid <> pg_backend_pid ()",
                                            1000, 1);
    one = &sleepers;
    gatherer_sql_run (sql, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s}", "n", "0");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_sql_result_reset (&results[0]);

    /* the request's deadline cuts a tool's own timeout short */
    gatherer_tool_t patient = s_test_tool ("patient", "SELECT pg_sleep(30)", 60000, 1);
    one = &patient;
    gatherer_sql_run (sql, &one, 1, context, zclock_usecs () + 150000, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (strstr (results[0].error, "the request's deadline came after"));
    gatherer_sql_result_reset (&results[0]);
    gatherer_sql_run (sql, &one, 1, context, zclock_usecs () - 1, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (strstr (results[0].error, "left no time"));
    gatherer_sql_result_reset (&results[0]);

    /* an SQL error is FAILED with the message on one line; a write fails: sessions are read-only */
    gatherer_tool_t broken = s_test_tool ("broken", "SELECT no_such_column FROM bank.customers", 1000, 1);
    gatherer_tool_t writer = s_test_tool ("writer",
                                          "INSERT INTO bank.customers (id, name, email, country)"
                                          " VALUES ('cust-x', 'X', 'x@example.com', 'IE') RETURNING id",
                                          1000, 1);
    const gatherer_tool_t *bad[] = {&broken, &writer};
    gatherer_sql_run (sql, bad, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (strstr (results[0].error, "(42703): column \"no_such_column\" does not exist"));
    assert (!strchr (results[0].error, '\n'));
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (strstr (results[1].error,
                    "postgresql statement failed (25006): cannot execute INSERT in a read-only transaction"));
    gatherer_sql_result_reset (&results[0]);
    gatherer_sql_result_reset (&results[1]);

    /* rows past max_rows are dropped; NULL is nil; JSON values go as JSON text */
    gatherer_tool_t many = s_test_tool ("many",
                                        "SELECT g::text AS n, NULL::text AS none, $1::jsonb ->> 'k' AS k"
                                        " FROM generate_series(1, 100) g",
                                        1000, 7);
    const char *json_params[] = {"intent.slots"};
    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "k", json_string ("v"));
    many.params = json_params;
    many.param_count = 1;
    one = &many;
    gatherer_sql_run (sql, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    assert (results[0].rows == 7 && results[0].dropped == 93);
    want = json_pack ("{s:s, s:n, s:s}", "n", "7", "none", "k", "v");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_sql_result_reset (&results[0]);
    gatherer_sql_run (sql, NULL, 0, context, 0, results); /* an empty plan is fine */
    gatherer_sql_destroy (&sql);

    /* PostgreSQL unreachable: every tool FAILED with the connection error */
    sql = gatherer_sql_new ("postgresql://conveyor@127.0.0.1:1/conveyor", "gatherer_sql_test", 2);
    gatherer_sql_run (sql, mixed, 2, context, 0, results);
    for (size_t i = 0; i < 2; i++) {
        assert (results[i].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
        assert (strstr (results[i].error, "postgresql connect failed"));
        gatherer_sql_result_reset (&results[i]);
    }
    gatherer_sql_destroy (&sql);
    assert (!sql);

    json_decref (context);
    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);
    free (url);
    if (verbose)
        printf ("gatherer_sql: ok\n");
}
