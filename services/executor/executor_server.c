/* The executor worker's service glue: ExecuteRequest in, ActionResults out, through
   executor_perform, on the worker's event loop. */
#include "executor_server.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_pgpool.h"
#include "executor_actions.h"
#include "executor_perform.h"

const cv_setting_t executor_server_settings[] = {
    {"database-url", CV_SETTING_STRING, EXECUTOR_DEFAULT_DATABASE_URL, 0, 0,
     "PostgreSQL holding the bank the actions change, as the executor's role (libpq URI or key=value string)"},
    {"database-connections", CV_SETTING_INT, EXECUTOR_DEFAULT_CONNECTIONS, 1, EXECUTOR_CONNECTIONS_MAX,
     "PostgreSQL connections of each event-loop thread; the actions of every request in flight share them"},
};
const size_t executor_server_settings_count = sizeof executor_server_settings / sizeof executor_server_settings[0];

/* What every handler thread reads: how each kind of action is performed, and where the bank is. */
typedef struct {
    executor_actions_t *actions;
    char *url;
    size_t connections;
} executor_server_shared_t;

/* One event-loop thread's logic: its connection pool, its retry randomness, the runs in flight. */
typedef struct {
    const executor_server_shared_t *shared;
    cv_pgpool_t *pool;
    cv_backoff_rng_t rng;
    executor_perform_env_t env;
    zlistx_t *runs;             /* executor_perform_t, in flight */
    cv_worker_call_t *checking; /* the probe in flight (one at a time), or NULL */
    cv_pgpool_run_t *check_run; /* its statement */
    cv_log_t *log;              /* borrowed */
} executor_server_logic_t;

void *
executor_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err)
{
    const cv_launcher_args_t *args = shared_args;
    assert (args && args->agent && args->settings && log);
    const char *url = cv_settings_string (args->settings, "database-url");
    executor_actions_t *actions = executor_actions_new (args->agent, err);
    if (!actions)
        return NULL;
    if (!url || !*url) {
        executor_actions_destroy (&actions);
        cv_error_set (err, CV_ERR_INVALID, "database-url", "database-url is empty");
        return NULL;
    }
    executor_server_shared_t *self = cv_calloc (1, sizeof *self);
    self->actions = actions;
    self->url = cv_strdup (url);
    self->connections = (size_t) cv_settings_int (args->settings, "database-connections");
    if (executor_actions_count (actions) == 0)
        cv_log_warn (log, "the agent file has no actions: every action will fail as unknown");
    cv_log_debug (log, "%zu kinds of action; %zu connections per event loop", executor_actions_count (actions),
                  self->connections);
    return self;
}

void
executor_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    executor_server_shared_t *self = *shared_p;
    if (!self)
        return;
    executor_actions_destroy (&self->actions);
    free (self->url);
    free (self);
    *shared_p = NULL;
}

void *
executor_server_logic_new (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err)
{
    (void) err;
    assert (shared && loop && log);
    executor_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->shared = shared;
    /* The instance id names the sessions in pg_stat_activity. Connections open when first used. */
    self->pool = cv_pgpool_new (loop, self->shared->url, cv_log_instance (log), self->shared->connections);
    cv_pgpool_set_writable (self->pool);
    cv_backoff_seed (&self->rng, (uint64_t) zclock_usecs () ^ ((uint64_t) getpid () << 32) ^ (uintptr_t) self);
    self->env = (executor_perform_env_t){
        .loop = loop, .pool = self->pool, .rng = &self->rng, .actions = self->shared->actions, .log = log};
    self->runs = zlistx_new ();
    self->log = log;
    return self;
}

void
executor_server_logic_destroy (void **logic_p)
{
    assert (logic_p);
    executor_server_logic_t *self = *logic_p;
    if (!self)
        return;
    /* the worker is stopping: requests in flight are given up (their calls are the worker's); the
       orchestrator sends them again, and their keys make that a replay of what was done */
    for (executor_perform_t *run = zlistx_first (self->runs); run; run = zlistx_next (self->runs))
        executor_perform_destroy (&run);
    zlistx_destroy (&self->runs);
    if (self->check_run)
        cv_pgpool_forget (self->pool, self->check_run);
    cv_pgpool_destroy (&self->pool);
    free (self);
    *logic_p = NULL;
}

static void
s_run_over (void *owner, executor_perform_t *run)
{
    executor_server_logic_t *self = owner;
    void *handle = zlistx_find (self->runs, run);
    assert (handle);
    zlistx_detach (self->runs, handle);
}

void
executor_server_begin (void *logic, cv_worker_call_t *call)
{
    executor_server_logic_t *self = logic;
    assert (self && call);
    executor_perform_t *run = executor_perform_new (&self->env, call, s_run_over, self);
    zlistx_add_end (self->runs, run);
    executor_perform_begin (run);
}

static void
s_checked (void *arg, const cv_pgpool_outcome_t *outcome)
{
    executor_server_logic_t *self = arg;
    cv_worker_call_t *call = self->checking;
    self->checking = NULL;
    self->check_run = NULL;
    cv_error_t err;
    int rc = 0;
    if (outcome->timed_out)
        rc = cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "postgresql check failed: no answer within %d ms",
                           EXECUTOR_CHECK_TIMEOUT_MS);
    else if (!cv_pgconn_succeeded (outcome->conn) || json_array_size (cv_pgconn_rows (outcome->conn)) != 1)
        rc = cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "postgresql check failed: %s",
                           cv_pgconn_error (outcome->conn));
    cv_worker_call_finish (call, rc, &err);
}

void
executor_server_check_begin (void *logic, cv_worker_call_t *call)
{
    executor_server_logic_t *self = logic;
    assert (self && call);
    assert (!self->checking); /* the control endpoint takes one probe at a time */
    self->checking = call;
    self->check_run = cv_pgpool_run (self->pool, "SELECT 1 AS ok", 0, NULL, 1,
                                     zclock_usecs () + EXECUTOR_CHECK_TIMEOUT_MS * 1000, s_checked, self);
}

/* What conveyor-executor's main.c runs and its tests start. */
const cv_launcher_spec_t executor_server_spec = {
    .service = EXECUTOR_SERVICE,
    .summary = "conveyor's executor: performs the actions a decision chose (freeze a card, refund a payment...) "
               "through the bank's write path, in order, each exactly once under its idempotency key.",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST,
    .shared_new = executor_server_shared_new,
    .shared_destroy = executor_server_shared_destroy,
    .logic_destroy = executor_server_logic_destroy,
    .loop_logic_new = executor_server_logic_new,
    .begin = executor_server_begin,
    .check_begin = executor_server_check_begin,
    .capacity_per_cpu = EXECUTOR_CAPACITY_PER_CPU,
    .handlers = EXECUTOR_HANDLERS,
    .capacity_max = EXECUTOR_CAPACITY_MAX,
    .capacity_why = "requests mostly wait on PostgreSQL, on one event loop that performs the actions of all of them",
    .default_control_endpoint = EXECUTOR_DEFAULT_CONTROL_ENDPOINT,
    .extra_settings = executor_server_settings,
    .extra_count = sizeof executor_server_settings / sizeof executor_server_settings[0],
};

/*  --------------------------------------------------------------------------
    Self-test: the glue's start and stop (tests/isolation/executor_test.c drives requests through
    it over sockets, against the fixture's PostgreSQL and one out of reach). */

static const char *s_test_agent = "actions:\n"
                                  "  freeze_card:\n"
                                  "    query: SELECT bank.freeze_card($1, $2, $3) AS outcome\n"
                                  "    params: [action.key, user_id, action.params.card_id]\n";

static cv_settings_t *
s_test_settings (const char *url)
{
    cv_settings_t *settings =
        cv_settings_new ("executor-test", "test", executor_server_settings, executor_server_settings_count);
    char *argv[] = {"executor-test", "--database-url", (char *) url, NULL};
    cv_error_t err;
    int rc = cv_settings_load (settings, 3, argv, &err);
    assert (rc == 0);
    return settings;
}

void
executor_server_test (bool verbose)
{
    cv_log_t *log = cv_log_new (EXECUTOR_SERVICE, "executor-server-test", verbose);
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", s_test_agent, &err);
    assert (agent);
    cv_settings_t *settings = s_test_settings ("postgresql://conveyor_executor@127.0.0.1:1/conveyor");
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    void *shared = executor_server_shared_new (&args, log, &err);
    assert (shared);
    assert (((executor_server_shared_t *) shared)->connections == (size_t) atoi (EXECUTOR_DEFAULT_CONNECTIONS));
    assert (executor_actions_find (((executor_server_shared_t *) shared)->actions, "freeze_card"));

    /* a logic on a loop opens nothing until an action runs, and goes cleanly */
    zloop_t *loop = zloop_new ();
    void *logic = executor_server_logic_new (shared, loop, log, &err);
    assert (logic && ((executor_server_logic_t *) logic)->shared == shared);
    assert (cv_pgpool_busy (((executor_server_logic_t *) logic)->pool) == 0);
    executor_server_logic_destroy (&logic);
    assert (!logic);
    executor_server_logic_destroy (&logic);
    zloop_destroy (&loop);
    executor_server_shared_destroy (&shared);
    assert (!shared);
    executor_server_shared_destroy (&shared);
    cv_config_destroy (&agent);

    /* a wrong agent file stops the start, naming file and line */
    agent = cv_config_parse ("agent.yaml", "actions:\n  freeze_card: {query: x, retry: 3}\n", &err);
    args.agent = agent;
    assert (!executor_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "agent.yaml:2: actions.freeze_card"));
    cv_config_destroy (&agent);
    cv_settings_destroy (&settings);

    /* so does an empty database URL */
    agent = cv_config_parse ("agent.yaml", s_test_agent, &err);
    settings = s_test_settings ("");
    args = (cv_launcher_args_t){.agent = agent, .settings = settings};
    assert (!executor_server_shared_new (&args, log, &err));
    assert (streq (err.field, "database-url"));
    cv_config_destroy (&agent);
    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    if (verbose)
        printf ("executor_server: ok\n");
}
