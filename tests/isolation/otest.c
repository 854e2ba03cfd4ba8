/* otest: the orchestrator under test, started and stopped per case, the run's database, waits,
   probes and the small checks every case uses. */
#include "otest.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cv_alloc.h"
#include "harness.h"

const char *otest_services[OTEST_STAGES] = {"intent", "gatherer", "decision", "executor", "responder"};
const char *otest_stages[OTEST_STAGES] = {"intent", "gather", "decide", "execute", "respond"};

/*  --------------------------------------------------------------------------
    Waiting: the loop runs until a condition holds or the wait times out (loop_wait.h) */

bool
otest_waited (otest_t *test)
{
    return loop_wait_met (&test->wait);
}

bool
otest_run_until (otest_t *test, loop_wait_fn *condition, const void *arg, int timeout_ms)
{
    return loop_wait_run (&test->wait, condition, arg, timeout_ms);
}

void
otest_wait_count (otest_t *test, const size_t *counter, size_t target, const char *what)
{
    cv_assert_that (loop_wait_count (&test->wait, counter, target, OTEST_WAIT_MS),
                    "timed out waiting for %s to reach %zu (it is %zu)", what, target, *counter);
}

/*  --------------------------------------------------------------------------
    Small helpers */

void
otest_expect_streq (const char *what, const char *got, const char *expected)
{
    cv_assert_that (!(!got || !streq (got, expected)), "%s: expected \"%s\", got \"%s\"", what, expected,
                    got ? got : "(null)");
}

void
otest_expect_contains (const char *what, const char *got, const char *fragment)
{
    cv_assert_that (!(!got || !strstr (got, fragment)), "%s: expected it to contain \"%s\", got \"%s\"", what, fragment,
                    got ? got : "(null)");
}

/* The value at a dotted path ("error.code") in document, or NULL. */
json_t *
otest_at (json_t *document, const char *path)
{
    char copy[128];
    snprintf (copy, sizeof copy, "%s", path);
    json_t *value = document;
    char *save;
    for (char *key = strtok_r (copy, ".", &save); key && value; key = strtok_r (NULL, ".", &save)) {
        char *end;
        unsigned long index = strtoul (key, &end, 10);
        value = json_is_array (value) && *key && !*end ? json_array_get (value, index) : json_object_get (value, key);
    }
    return value;
}

const char *
otest_text_at (json_t *document, const char *path)
{
    return json_string_value (otest_at (document, path));
}

/* A connection string for database on port of the fixture's host, as the fixture's user. */
void
otest_conninfo (const otest_run_t *run, const char *port, const char *database, char *buffer, size_t size)
{
    snprintf (buffer, size, "host=%s port=%s user=%s dbname=%s connect_timeout=5", run->host, port, run->user,
              database);
}

char *
otest_hex (const uint8_t *data, size_t size)
{
    char *hex = cv_malloc (2 * size + 1);
    for (size_t i = 0; i < size; i++)
        snprintf (hex + 2 * i, 3, "%02x", data[i]);
    hex[2 * size] = '\0';
    return hex;
}

/*  --------------------------------------------------------------------------
    Probes over REQ to the control endpoint */

static int
s_prober_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    otest_t *test = arg;
    zframe_t *frame = zframe_recv (reader);
    if (!frame)
        return 0;
    cv_error_t err;
    cv_envelope_destroy (&test->probe_reply);
    test->probe_reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    assert (test->probe_reply);
    zframe_destroy (&frame);
    return otest_waited (test) ? -1 : 0;
}

static bool
s_probe_answered (void *test_arg, const void *arg)
{
    const otest_t *test = test_arg;
    return test->probe_reply != NULL;
}

/* Sends data to the control endpoint and waits for its answer (borrowed until the next probe). */
const cv_envelope_t *
otest_control_send (otest_t *test, const void *data, size_t size)
{
    cv_envelope_destroy (&test->probe_reply);
    zframe_t *frame = zframe_new (data, size);
    int rc = zframe_send (&frame, test->prober, 0);
    assert (rc == 0);
    bool answered = otest_run_until (test, s_probe_answered, NULL, OTEST_WAIT_MS);
    assert (answered);
    return test->probe_reply;
}

/* A Probe for service ("" for the orchestrator itself); its answer must be a ProbeResult. */
const Conveyor__V1__ProbeResult *
otest_probe (otest_t *test, const char *service)
{
    cv_arena_t *arena = cv_arena_new ();
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    cv_envelope_t *probe = cv_envelope_new (arena, "", trace, (uint64_t) zclock_time () + OTEST_WAIT_MS, 1);
    Conveyor__V1__Probe *body = cv_envelope_set_probe (probe, arena);
    body->service = cv_arena_strdup (arena, service);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    const cv_envelope_t *reply = otest_control_send (test, packed, size);
    free (packed);
    cv_error_t err;
    cv_assert_that (!(cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT), 0, &err)),
                    "probe %s: not a valid ProbeResult: %s", service, err.message);
    otest_expect_streq ("probe answer trace_id", reply->trace_id, trace);
    cv_arena_destroy (&arena);
    return reply->probe_result;
}

/*  --------------------------------------------------------------------------
    The orchestrator under test */

otest_t *
otest_test_new (const otest_run_t *run, const char *name)
{
    otest_t *test = cv_calloc (1, sizeof *test);
    test->run = run;
    test->loop = zloop_new ();
    loop_wait_init (&test->wait, test->loop, test, OTEST_CHECK_MS);
    snprintf (test->instance, sizeof test->instance, "orch-%s-%d", name, (int) getpid ());
    test->log = cv_log_new ("orchestrator", test->instance, run->verbose);
    otest_conninfo (run, run->port, run->database, test->database_url, sizeof test->database_url);
    cv_error_t err;
    test->pg = cv_pg_new (test->database_url, "isolation-orchestrator", &err);
    cv_assert_that (test->pg, "%s", err.message);
    test->config = (orchestrator_config_t){
        .http_address = "127.0.0.1",
        .http_port = 0,
        .broker_endpoint = "tcp://127.0.0.1:*",
        .control_endpoint = "tcp://127.0.0.1:*",
        .database_url = test->database_url,
        .instance = test->instance,
        .request_timeout_ms = 10000,
        .attempt_timeout_ms = 3000,
        .max_attempts = 3,
        .heartbeat_ms = OTEST_HEARTBEAT_MS,
        .liveness = OTEST_LIVENESS,
        .max_in_flight = 64,
        .max_queued = 64,
        .durability = ORCHESTRATOR_DURABILITY_SYNC,
        .store_connections = 2,
        .store_timeout_ms = 3000,
        .recovery_interval_ms = 3600000, /* one round at start, none during a case */
        .approval_expiry_s = 86400,
        .log = test->log,
    };
    return test;
}

/* Starts the orchestrator with test->config and asks it for its endpoints. */
void
otest_start (otest_t *test)
{
    cv_error_t err;
    test->server = orchestrator_server_start (&test->config, &err);
    cv_assert_that (test->server, "the orchestrator did not start: %s", err.message);
    zstr_send (test->server, "HTTP");
    char *port = zstr_recv (test->server);
    test->http_port = atoi (port);
    zstr_free (&port);
    assert (test->http_port > 0);
    zstr_send (test->server, "BROKER");
    test->broker = zstr_recv (test->server);
    zstr_send (test->server, "CONTROL");
    test->control = zstr_recv (test->server);
    assert (test->broker && strncmp (test->broker, "tcp://127.0.0.1:", 16) == 0);
    assert (test->control && strncmp (test->control, "tcp://127.0.0.1:", 16) == 0);
    assert (!streq (test->broker, "tcp://127.0.0.1:*"));
    test->prober = zsock_new (ZMQ_REQ);
    zsock_set_linger (test->prober, 0);
    int rc = zsock_connect (test->prober, "%s", test->control);
    assert (rc == 0);
    zloop_reader (test->loop, test->prober, s_prober_readable, test);
}

/* Stops the fakes and the orchestrator ($TERM: it answers open exchanges and returns). */
void
otest_stop (otest_t *test)
{
    for (size_t i = 0; i < test->fake_count; i++)
        otest_fake_destroy (&test->fakes[i]);
    test->fake_count = 0;
    if (test->prober) {
        zloop_reader_end (test->loop, test->prober);
        zsock_destroy (&test->prober);
    }
    cv_envelope_destroy (&test->probe_reply);
    zactor_destroy (&test->server);
    zstr_free (&test->broker);
    zstr_free (&test->control);
}

void
otest_test_destroy (otest_t **test_p)
{
    otest_t *test = *test_p;
    otest_stop (test);
    zactor_destroy (&test->proxy);
    /* Whatever a case left running must not be resumed by the next case's orchestrator. */
    PGresult *result = otest_query (test,
                                    "DO $$ BEGIN IF to_regclass ('requests') IS NOT NULL THEN"
                                    " UPDATE requests SET status = 'failed', error = 'left by its test case'"
                                    " WHERE status = 'running'; END IF; END $$",
                                    NULL);
    PQclear (result);
    cv_pg_destroy (&test->pg);
    zloop_destroy (&test->loop);
    cv_log_destroy (&test->log);
    free (test);
    *test_p = NULL;
}

/*  --------------------------------------------------------------------------
    The run's database: created empty in the fixture's cluster, migrated by the orchestrator */

static void
s_run_sql (const char *url, const char *sql)
{
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "isolation-orchestrator", &err);
    cv_assert_that (!(!pg || cv_pg_run (pg, "SET client_min_messages = warning", 0, NULL, &err)
                      || cv_pg_run (pg, sql, 0, NULL, &err)),
                    "%s: %s", sql, err.message);
    cv_pg_destroy (&pg);
}

static void
s_run_init (otest_run_t *run)
{
    run->fixture_url = harness_pg_fixture_url ();
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse (run->fixture_url, &error);
    assert (options);
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (!option->val)
            continue;
        if (streq (option->keyword, "host"))
            snprintf (run->host, sizeof run->host, "%s", option->val);
        else if (streq (option->keyword, "port"))
            snprintf (run->port, sizeof run->port, "%s", option->val);
        else if (streq (option->keyword, "user"))
            snprintf (run->user, sizeof run->user, "%s", option->val);
    }
    PQconninfoFree (options);
    assert (*run->host && *run->port && *run->user);
    snprintf (run->database, sizeof run->database, "orchestrator_test_%d", (int) getpid ());
    char sql[128];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", run->database);
    s_run_sql (run->fixture_url, sql);
    snprintf (sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", run->database);
    s_run_sql (run->fixture_url, sql);
}

static void
s_run_end (otest_run_t *run)
{
    char sql[128];
    snprintf (sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", run->database);
    s_run_sql (run->fixture_url, sql);
    free (run->fixture_url);
}

int
otest_main (int argc, char *argv[], const char *name, const otest_case_t *cases, size_t count)
{
    otest_run_t run = {.verbose = false};
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (streq (argv[i], "-v"))
            run.verbose = true;
        else
            only = argv[i];
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_run_init (&run);
    size_t ran = 0;
    for (size_t i = 0; i < count; i++)
        if (only ? streq (only, cases[i].name) : !cases[i].by_name) {
            printf (" * %s\n", cases[i].name);
            fflush (stdout);
            cases[i].run (&run);
            ran++;
        }
    s_run_end (&run);
    curl_global_cleanup ();
    if (ran == 0) {
        fprintf (stderr, "no case named %s\n", only);
        return 1;
    }
    printf ("%s: ok\n", name);
    return 0;
}
