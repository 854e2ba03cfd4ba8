/* Runs the SQL tools of one request's plan in parallel, each on its own pooled connection. */
#include "gatherer_sql.h"

#include <assert.h>
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

struct _gatherer_sql_call_t {
    cv_pgpool_t *pool;
    cv_pgpool_run_t *run;
    const gatherer_tool_t *tool;
    int64_t limit_ms; /* how long it was given */
    bool by_deadline; /* the deadline, not the tool's timeout, limits it */
    gatherer_result_t *result;
    gatherer_sql_done_fn *done;
    void *arg;
};

/* Records a statement's outcome. */
static void
s_record (gatherer_sql_call_t *call, const cv_pgpool_outcome_t *outcome)
{
    gatherer_result_t *result = call->result;
    result->started_us = outcome->started_us;
    result->finished_us = outcome->finished_us;
    const cv_pgconn_t *conn = outcome->conn;
    result->attempts = outcome->waited ? 0 : 1;
    result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    if (outcome->timed_out) {
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
        result->dependency = true;
        result->failure = CV_BACKOFF_TIMEOUT;
        result->cancelled = outcome->cancelled;
        result->by_deadline = call->by_deadline;
        snprintf (result->error, sizeof result->error, "%s after %lld ms%s%s",
                  call->by_deadline ? "the request's deadline came" : "timed out", (long long) call->limit_ms,
                  outcome->connecting ? " while connecting to postgresql"
                  : outcome->waited   ? " waiting for a free postgresql connection"
                                      : "",
                  outcome->cancelled ? " (statement cancelled)" : "");
    } else if (cv_pgconn_succeeded (conn)) {
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
        /* PostgreSQL out of reach is worth another try; a statement error would only come again */
        result->dependency = cv_pgconn_lost (conn);
        result->failure = CV_BACKOFF_CONNECT;
    }
}

static void
s_pool_done (void *arg, const cv_pgpool_outcome_t *outcome)
{
    gatherer_sql_call_t *call = arg;
    s_record (call, outcome);
    gatherer_sql_done_fn *done = call->done;
    void *done_arg = call->arg;
    free (call);
    done (done_arg);
}

/* Reports the outcome of a call that could not start, from the loop as any other. */
static void
s_no_time (void *arg, const cv_pgpool_outcome_t *outcome)
{
    gatherer_sql_call_t *call = arg;
    call->result->started_us = outcome->started_us;
    call->result->finished_us = outcome->finished_us;
    call->result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
    call->result->by_deadline = true;
    call->result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    snprintf (call->result->error, sizeof call->result->error, "the request's deadline left no time to start");
    gatherer_sql_done_fn *done = call->done;
    void *done_arg = call->arg;
    free (call);
    done (done_arg);
}

gatherer_sql_call_t *
gatherer_sql_start (cv_pgpool_t *pool, const gatherer_tool_t *tool, const json_t *context, int64_t deadline_us,
                    gatherer_result_t *result, gatherer_sql_done_fn *done, void *arg)
{
    assert (pool && tool && result && done);
    assert (tool->param_count <= CV_PARAMS_MAX);
    memset (result, 0, sizeof *result);
    gatherer_sql_call_t *call = cv_calloc (1, sizeof *call);
    call->pool = pool;
    call->tool = tool;
    call->result = result;
    call->done = done;
    call->arg = arg;
    int64_t now = zclock_usecs ();
    int64_t until_us = now + (int64_t) tool->timeout_ms * 1000;
    if (deadline_us && deadline_us < until_us) {
        until_us = deadline_us;
        call->by_deadline = true;
    }
    call->limit_ms = (until_us - now) / 1000;
    char *params[CV_PARAMS_MAX];
    for (size_t i = 0; i < tool->param_count; i++)
        params[i] =
            tool->fixed && tool->fixed[i] ? cv_strdup (tool->fixed[i]) : cv_params_text (context, tool->params[i]);
    call->run = cv_pgpool_run (pool, tool->query, tool->param_count, (const char *const *) params,
                               (size_t) tool->max_rows, until_us, until_us <= now ? s_no_time : s_pool_done, call);
    for (size_t i = 0; i < tool->param_count; i++)
        free (params[i]);
    return call;
}

void
gatherer_sql_forget (gatherer_sql_call_t *call)
{
    assert (call);
    cv_pgpool_forget (call->pool, call->run);
    free (call);
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
s_test_rows (const gatherer_result_t *result)
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

/* A loop and a pool to run tools on, as the worker has. */
typedef struct {
    zloop_t *loop;
    cv_pgpool_t *pool;
    size_t pending;
} s_test_t;

static void
s_test_done (void *arg)
{
    s_test_t *test = arg;
    assert (test->pending > 0);
    test->pending--;
}

static int
s_test_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_test_t *test = arg;
    return test->pending ? 0 : -1;
}

/* Starts count tools at once and runs the loop until each has its result. */
static void
s_test_run (s_test_t *test, const gatherer_tool_t *const *tools, size_t count, const json_t *context,
            int64_t deadline_us, gatherer_result_t *results)
{
    test->pending = count;
    for (size_t i = 0; i < count; i++)
        gatherer_sql_start (test->pool, tools[i], context, deadline_us, &results[i], s_test_done, test);
    int tick = zloop_timer (test->loop, 1, 0, s_test_tick, test);
    int64_t until = zclock_mono () + 20000;
    while (test->pending) {
        assert (zclock_mono () < until);
        zloop_start (test->loop);
    }
    zloop_timer_end (test->loop, tick);
}

/* The slug of row index of an OK result's rows, or NULL. Borrowed from rows. */
static const char *
s_test_slug (const json_t *rows, size_t index)
{
    return json_string_value (json_object_get (json_array_get (rows, index), "slug"));
}

/* Searches the fixture's knowledge base with tool for text (intent: the context's intent name);
   asserts it is OK and that its first row is expected (NULL: no rows; "*": any or none). */
static void
s_test_search (s_test_t *test, const gatherer_tool_t *tool, const char *text, const char *intent, const char *expected)
{
    json_t *context = json_pack ("{s:s, s:s, s:{s:s?}}", "user_id", "cust-1", "text", text, "intent", "name", intent);
    gatherer_result_t result;
    s_test_run (test, &tool, 1, context, 0, &result);
    cv_assert_that (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "'%s': %s", text, result.error);
    json_t *rows = s_test_rows (&result);
    const char *first = s_test_slug (rows, 0);
    if (!expected || !streq (expected, "*"))
        cv_assert_that (expected ? first && streq (first, expected) : !first, "'%s': expected %s, got %s", text,
                        expected ? expected : "no article", first ? first : "none");
    assert (json_array_size (rows) <= (size_t) tool->max_rows);
    /* every row is an article, with its snippet and its rank as text */
    size_t index;
    json_t *row;
    json_array_foreach (rows, index, row) {
        assert (json_object_size (row) == 4);
        assert (json_is_string (json_object_get (row, "title")));
        assert (strlen (json_string_value (json_object_get (row, "snippet"))) > 0);
        assert (atof (json_string_value (json_object_get (row, "rank"))) > 0);
    }
    json_decref (rows);
    json_decref (context);
    gatherer_result_reset (&result);
}

static void
s_test_kb (s_test_t *test)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml",
                                          "tools:\n"
                                          "  kb: {kind: kb_search}\n"
                                          "  kb_intent: {kind: kb_search, intent: intent.name, max_rows: 1}\n"
                                          "  kb_pin: {kind: kb_search, intent: pin_blocked}\n",
                                          &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    const gatherer_tool_t *kb = gatherer_tools_find (tools, "kb");
    const gatherer_tool_t *by_intent = gatherer_tools_find (tools, "kb_intent");
    const gatherer_tool_t *pin = gatherer_tools_find (tools, "kb_pin");

    s_test_search (test, kb, "When will my card arrive?", NULL, "card-arrival");
    s_test_search (test, kb, "How do I link my card?", NULL, "card-linking");
    s_test_search (test, kb, "the ATM kept my card", NULL, "card-swallowed");
    s_test_search (test, kb, "can I cancel a transfer I made", NULL, "cancel-transfer");
    s_test_search (test, kb, "I forgot my passcode", NULL, "passcode-forgotten");
    s_test_search (test, kb, "what age do you need to be to open an account", NULL, "age-limit");
    s_test_search (test, kb, "I'd like to close my account", NULL, "terminate-account");
    /* the intent keeps its own articles only; a missing intent keeps all */
    s_test_search (test, by_intent, "my card", "card_about_to_expire", "card-about-to-expire");
    s_test_search (test, by_intent, "How do I link my card?", "age_limit", NULL);
    s_test_search (test, by_intent, "How do I link my card?", NULL, "card-linking");
    s_test_search (test, pin, "I typed the wrong PIN three times", NULL, "pin-blocked");
    s_test_search (test, pin, "How long does delivery take?", NULL, NULL);
    /* SQL in the text is words to search for: no error, only articles (of the intent, when
       filtered), nothing changed; quotes and minus signs are not search syntax */
    s_test_search (test, kb, "' OR 1=1 --", NULL, "*");
    s_test_search (test, pin, "' OR 1=1 --", NULL, NULL);
    s_test_search (test, kb, "'; DROP TABLE bank.kb_articles; --", NULL, "*");
    s_test_search (test, pin, "\"pin\" OR 'x'='x'; --", "card_arrival", "pin-blocked");
    s_test_search (test, by_intent, "card", "' OR intent <> '", NULL);
    s_test_search (test, kb, "-link -\"card\" \\ $1 %", NULL, "card-linking");
    /* and every one of the 77 intents still has its articles (0004_kb_all_intents.sql) */
    gatherer_tool_t count =
        s_test_tool ("count", "SELECT count(DISTINCT intent)::text AS n FROM bank.kb_articles", 1000, 1);
    const gatherer_tool_t *one = &count;
    gatherer_result_t result;
    json_t *context = json_object ();
    s_test_run (test, &one, 1, context, 0, &result);
    json_t *rows = s_test_rows (&result);
    assert (streq (json_string_value (json_object_get (json_array_get (rows, 0), "n")), "77"));
    json_decref (rows);
    json_decref (context);
    gatherer_result_reset (&result);
    /* nothing to look for: no rows, not a failure */
    s_test_search (test, kb, "", NULL, NULL);
    s_test_search (test, kb, "?!... ;;", NULL, NULL);
    s_test_search (test, kb, "how do I", NULL, NULL);
    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);
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
    s_test_t test = {.loop = zloop_new ()};
    test.pool = cv_pgpool_new (test.loop, url, application, 4);
    gatherer_result_t results[4];
    json_t *context =
        json_pack ("{s:s, s:s, s:{s:s, s:{}}}", "user_id", "cust-1", "text", "help", "intent", "name", "x", "slots");

    /* The pool's four connections open first, with time to spare: under valgrind on a busy
       machine, opening one can take longer than the agent's tools are given. */
    gatherer_tool_t warm = s_test_tool ("warm", "SELECT 1 AS one", 20000, 1);
    const gatherer_tool_t *warm_up[] = {&warm, &warm, &warm, &warm};
    s_test_run (&test, warm_up, 4, context, 0, results);
    for (size_t i = 0; i < 4; i++) {
        assert (results[i].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
        gatherer_result_reset (&results[i]);
    }

    /* cust-1's guaranteed rows, through the agent file's own tools (see 0002_demo_bank.sql) */
    const char *names[] = {"active_cards", "cards_in_delivery", "duplicate_payments", "pending_transfers"};
    const gatherer_tool_t *bank[4];
    for (size_t i = 0; i < 4; i++)
        assert ((bank[i] = gatherer_tools_find (tools, names[i])));
    s_test_run (&test, bank, 4, context, 0, results);
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
        assert (results[i].attempts == 1);
        gatherer_result_reset (&results[i]);
    }

    /* the failed top-up and the card slot: a slot narrows, a missing slot is NULL (no filter) */
    const gatherer_tool_t *topups = gatherer_tools_find (tools, "failed_topups");
    s_test_run (&test, &topups, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s, s:s, s:s, s:s}", "id", "top-1-1", "amount", "200.00", "method", "card", "failure_reason",
                      "Declined by the issuing bank of the top-up card");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_result_reset (&results[0]);

    gatherer_tool_t probe_null =
        s_test_tool ("null_param", "SELECT $1::text IS NULL AS is_null, $2::text AS user", 1000, 5);
    const char *null_params[] = {"intent.slots.card_last4", "user_id"};
    probe_null.params = null_params;
    probe_null.param_count = 2;
    const gatherer_tool_t *one = &probe_null;
    s_test_run (&test, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s, s:s}", "is_null", "t", "user", "cust-1");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_result_reset (&results[0]);

    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_string ("9052"));
    const gatherer_tool_t *active = gatherer_tools_find (tools, "active_cards");
    s_test_run (&test, &active, 1, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 0);
    gatherer_result_reset (&results[0]);
    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_integer (4417));
    s_test_run (&test, &active, 1, context, 0, results); /* a number goes as its text */
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 1);
    gatherer_result_reset (&results[0]);

    /* a parameter is a value, never SQL: quotes, a `;` and an OR 1=1 find nothing and break
       nothing, in the slot and in the user id */
    const char *hostile[] = {"4417' OR 1=1 --", "'; DELETE FROM bank.cards; --", "4417\"", "' OR ''='"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                             json_string (hostile[i]));
        s_test_run (&test, &active, 1, context, 0, results);
        cv_assert_that (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 0,
                        "the slot %s: status %d, %zu rows: %s", hostile[i], (int) results[0].status, results[0].rows,
                        results[0].error);
        gatherer_result_reset (&results[0]);
    }
    json_t *intruder = json_deep_copy (context);
    json_object_set_new (intruder, "user_id", json_string ("cust-1' OR 1=1 --"));
    json_object_del (json_object_get (json_object_get (intruder, "intent"), "slots"), "card_last4");
    s_test_run (&test, &active, 1, intruder, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[0].rows == 0);
    gatherer_result_reset (&results[0]);
    json_decref (intruder);
    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_integer (4417));

    /* kb_search tools: the right article for a few phrasings; the intent filter; a hostile text
       finds nothing it should not and does not fail; a text without words finds nothing */
    s_test_kb (&test);

    /* two slow tools run at once: their time windows overlap */
    gatherer_tool_t slow_a = s_test_tool ("slow_a", "SELECT pg_sleep(0.3)::text AS slept", 5000, 1);
    gatherer_tool_t slow_b = s_test_tool ("slow_b", "SELECT pg_sleep(0.3)::text AS slept", 5000, 1);
    const gatherer_tool_t *both[] = {&slow_a, &slow_b};
    s_test_run (&test, both, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    assert (results[0].started_us < results[1].finished_us && results[1].started_us < results[0].finished_us);
    /* each slept 0.3 s on the server, so each window is at least that long */
    assert (results[0].finished_us - results[0].started_us >= 300000);
    assert (results[1].finished_us - results[1].started_us >= 300000);
    gatherer_result_reset (&results[0]);
    gatherer_result_reset (&results[1]);

    /* a tool past its timeout is TIMED_OUT and cancelled; the other one is OK */
    gatherer_tool_t sleepy = s_test_tool ("sleepy", "SELECT pg_sleep(30)", 200, 1);
    gatherer_tool_t quick = s_test_tool ("quick", "SELECT 'fine' AS how", 5000, 1);
    const gatherer_tool_t *mixed[] = {&sleepy, &quick};
    s_test_run (&test, mixed, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (results[0].cancelled);
    assert (strstr (results[0].error, "timed out after 200 ms (statement cancelled)"));
    assert (!results[0].by_deadline);
    assert (results[0].finished_us - results[0].started_us >= 200000);
    assert (!results[0].data);
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && results[1].rows == 1);
    gatherer_result_reset (&results[0]);
    gatherer_result_reset (&results[1]);
    /* cancelled on the server: no statement of ours still sleeping */
    gatherer_tool_t sleepers = s_test_tool ("sleepers",
                                            "SELECT count(*)::text AS n FROM pg_stat_activity"
                                            " WHERE application_name = current_setting ('application_name')"
                                            " AND state = 'active' AND pid <> pg_backend_pid ()",
                                            1000, 1);
    one = &sleepers;
    s_test_run (&test, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    want = json_pack ("{s:s}", "n", "0");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_result_reset (&results[0]);

    /* the request's deadline cuts a tool's own timeout short */
    gatherer_tool_t patient = s_test_tool ("patient", "SELECT pg_sleep(30)", 60000, 1);
    one = &patient;
    s_test_run (&test, &one, 1, context, zclock_usecs () + 150000, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (strstr (results[0].error, "the request's deadline came after"));
    assert (results[0].by_deadline);
    gatherer_result_reset (&results[0]);
    s_test_run (&test, &one, 1, context, zclock_usecs () - 1, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (strstr (results[0].error, "left no time"));
    assert (results[0].by_deadline);
    assert (results[0].attempts == 0);
    gatherer_result_reset (&results[0]);

    /* an SQL error is FAILED with the message on one line; a write fails: sessions are read-only */
    gatherer_tool_t broken = s_test_tool ("broken", "SELECT no_such_column FROM bank.customers", 1000, 1);
    gatherer_tool_t writer = s_test_tool ("writer",
                                          "INSERT INTO bank.customers (id, name, email, country)"
                                          " VALUES ('cust-x', 'X', 'x@example.com', 'IE') RETURNING id",
                                          1000, 1);
    const gatherer_tool_t *bad[] = {&broken, &writer};
    s_test_run (&test, bad, 2, context, 0, results);
    assert (results[0].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (strstr (results[0].error, "(42703): column \"no_such_column\" does not exist"));
    assert (!strchr (results[0].error, '\n'));
    assert (results[1].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (strstr (results[1].error,
                    "postgresql statement failed (25006): cannot execute INSERT in a read-only transaction"));
    gatherer_result_reset (&results[0]);
    gatherer_result_reset (&results[1]);

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
    s_test_run (&test, &one, 1, context, 0, results);
    rows = s_test_rows (&results[0]);
    assert (results[0].rows == 7 && results[0].dropped == 93);
    want = json_pack ("{s:s, s:n, s:s}", "n", "7", "none", "k", "v");
    assert (s_test_has_row (rows, want));
    json_decref (want);
    json_decref (rows);
    gatherer_result_reset (&results[0]);
    cv_pgpool_destroy (&test.pool);

    /* PostgreSQL unreachable: every tool FAILED with the connection error */
    test.pool = cv_pgpool_new (test.loop, "postgresql://conveyor@127.0.0.1:1/conveyor", "gatherer_sql_test", 2);
    s_test_run (&test, mixed, 2, context, 0, results);
    for (size_t i = 0; i < 2; i++) {
        assert (results[i].status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
        assert (strstr (results[i].error, "postgresql connect failed"));
        gatherer_result_reset (&results[i]);
    }

    /* a call given up on is never heard of; the pool serves on */
    test.pending = 0;
    gatherer_sql_forget (gatherer_sql_start (test.pool, &sleepy, context, 0, &results[0], s_test_done, &test));
    cv_pgpool_destroy (&test.pool);
    zloop_destroy (&test.loop);

    json_decref (context);
    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);
    free (url);
    if (verbose)
        printf ("gatherer_sql: ok\n");
}
