/* The gatherer worker's service glue: GatherRequest in, Evidence out, through gatherer_tools and gatherer_run, on
   the worker's event loop. */
#include "gatherer_server.h"

#include "cv_alloc.h"
#include "cv_launcher.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_context.h"
#include "cv_pgpool.h"
#include "gatherer_call.h"
#include "gatherer_run.h"
#include "gatherer_sql.h"
#include "gatherer_tools.h"

const cv_setting_t gatherer_server_settings[] = {
    {"database-url", CV_SETTING_STRING, GATHERER_DEFAULT_DATABASE_URL, 0, 0,
     "PostgreSQL holding the data the tools read (libpq URI or key=value string)"},
    {"database-connections", CV_SETTING_INT, GATHERER_DEFAULT_CONNECTIONS, 1, GATHERER_CONNECTIONS_MAX,
     "PostgreSQL connections of each event-loop thread; the tools of every request in flight share them"},
};
const size_t gatherer_server_settings_count = sizeof gatherer_server_settings / sizeof gatherer_server_settings[0];

/* What every handler thread reads: the tools and plans, and where the database is; and each
   tool's circuit breaker, one per tool per process, which every event-loop thread's calls of
   that tool go through (cv_breaker is thread-safe). */
typedef struct {
    gatherer_tools_t *tools;
    cv_breaker_t **breakers; /* per tool, in gatherer_tools_index order */
    char *url;
    size_t connections;
} gatherer_server_shared_t;

/* One event-loop thread's logic: its connection pool, its results cache and retry randomness
   (the tools' env), and the requests in flight on it. */
typedef struct {
    const gatherer_server_shared_t *shared;
    cv_pgpool_t *pool;
    cv_http_t *http; /* when the agent file has http tools */
    cv_cache_t *cache;
    cv_backoff_rng_t rng;
    gatherer_call_env_t env;
    zlistx_t *runs;            /* gatherer_run_t, in flight */
    gatherer_tool_t check;     /* the probe's canned statement, without a knowledge base */
    const gatherer_tool_t *kb; /* ...or the agent's first kb_search tool, run on check_context */
    json_t *check_context;
    cv_worker_call_t *checking;     /* the probe in flight (one at a time), or NULL */
    gatherer_sql_call_t *check_sql; /* its statement */
    gatherer_result_t check_result;
    cv_log_t *log; /* borrowed */
} gatherer_server_logic_t;

void *
gatherer_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err)
{
    const cv_launcher_args_t *args = shared_args;
    assert (args && args->agent && args->settings && log);
    const char *url = cv_settings_string (args->settings, "database-url");
    gatherer_tools_t *tools = gatherer_tools_new (args->agent, err);
    if (!tools)
        return NULL;
    if (!url || !*url) {
        gatherer_tools_destroy (&tools);
        cv_error_set (err, CV_ERR_INVALID, "database-url", "database-url is empty");
        return NULL;
    }
    gatherer_server_shared_t *self = cv_calloc (1, sizeof *self);
    self->tools = tools;
    size_t count = gatherer_tools_count (tools);
    self->breakers = cv_calloc (count ? count : 1, sizeof *self->breakers);
    for (size_t i = 0; i < count; i++) {
        const gatherer_resilience_t *resilience = &gatherer_tools_tool (tools, i)->resilience;
        self->breakers[i] = cv_breaker_new (resilience->breaker_failures, resilience->breaker_cooldown_ms);
        cv_breaker_set_rate (self->breakers[i], resilience->breaker_min_calls, resilience->breaker_window_ms,
                             resilience->breaker_percent);
    }
    gatherer_call_metrics_start (tools);
    self->url = cv_strdup (url);
    self->connections = (size_t) cv_settings_int (args->settings, "database-connections");
    cv_log_debug (log, "%zu tools, the largest plan runs %zu at once; %zu connections per event loop",
                  gatherer_tools_count (tools), gatherer_tools_max_plan (tools), self->connections);
    return self;
}

void
gatherer_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    gatherer_server_shared_t *self = *shared_p;
    if (!self)
        return;
    for (size_t i = 0; i < gatherer_tools_count (self->tools); i++)
        cv_breaker_destroy (&self->breakers[i]);
    free (self->breakers);
    gatherer_tools_destroy (&self->tools);
    free (self->url);
    free (self);
    *shared_p = NULL;
}

void *
gatherer_server_logic_new (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err)
{
    assert (shared && loop && log);
    gatherer_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->shared = shared;
    const gatherer_tools_t *tools = self->shared->tools;
    for (size_t i = 0; i < gatherer_tools_count (tools) && !self->http; i++)
        if (gatherer_tools_tool (tools, i)->kind == GATHERER_TOOL_HTTP) {
            self->http = cv_http_new (loop, err);
            if (!self->http) {
                free (self);
                return NULL;
            }
        }
    /* The instance id names the sessions in pg_stat_activity. Connections open when first used. */
    self->pool = cv_pgpool_new (loop, self->shared->url, cv_log_instance (log), self->shared->connections);
    self->cache = cv_cache_new (GATHERER_CACHE_ENTRIES, GATHERER_CACHE_BYTES);
    /* differs between the loops of a process, and between processes */
    cv_backoff_seed (&self->rng, (uint64_t) zclock_usecs () ^ ((uint64_t) getpid () << 32) ^ (uintptr_t) self);
    self->env = (gatherer_call_env_t){.loop = loop,
                                      .pool = self->pool,
                                      .http = self->http,
                                      .cache = self->cache,
                                      .rng = &self->rng,
                                      .tools = self->shared->tools,
                                      .breakers = self->shared->breakers,
                                      .log = log};
    self->runs = zlistx_new ();
    self->check = (gatherer_tool_t){.name = "check",
                                    .kind = GATHERER_TOOL_SQL,
                                    .query = "SELECT 1 AS ok",
                                    .timeout_ms = GATHERER_CHECK_TIMEOUT_MS,
                                    .max_rows = 1};
    /* a semantic check where the agent has a knowledge base: its search, through the gatherer's
       own pool and role, for a canned text */
    for (size_t i = 0; i < gatherer_tools_count (self->shared->tools) && !self->kb; i++)
        if (gatherer_tools_tool (self->shared->tools, i)->kind == GATHERER_TOOL_KB_SEARCH)
            self->kb = gatherer_tools_tool (self->shared->tools, i);
    self->check_context = json_pack ("{s:s, s:s, s:{s:s, s:f, s:s}}", "user_id", "probe", "text", GATHERER_CHECK_TEXT,
                                     "intent", "name", "", "confidence", 1.0, "method", "rule");
    self->log = log;
    return self;
}

void
gatherer_server_logic_destroy (void **logic_p)
{
    assert (logic_p);
    gatherer_server_logic_t *self = *logic_p;
    if (!self)
        return;
    /* the worker is stopping: requests in flight are given up (their calls are the worker's) */
    for (gatherer_run_t *run = zlistx_first (self->runs); run; run = zlistx_next (self->runs))
        gatherer_run_destroy (&run);
    zlistx_destroy (&self->runs);
    if (self->check_sql)
        gatherer_sql_forget (self->check_sql);
    gatherer_result_reset (&self->check_result);
    json_decref (self->check_context);
    cv_http_destroy (&self->http);
    cv_pgpool_destroy (&self->pool);
    cv_cache_destroy (&self->cache);
    free (self);
    *logic_p = NULL;
}

static void
s_run_over (void *owner, gatherer_run_t *run)
{
    gatherer_server_logic_t *self = owner;
    void *handle = zlistx_find (self->runs, run);
    assert (handle);
    zlistx_detach (self->runs, handle);
}

void
gatherer_server_begin (void *logic, cv_worker_call_t *call)
{
    gatherer_server_logic_t *self = logic;
    assert (self && call);
    const cv_envelope_t *request = cv_worker_call_request (call);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST);
    const Conveyor__V1__GatherRequest *body = request->gather_request;
    cv_error_t err;
    json_t *context = cv_context_new (body->user_id, body->text, body->intent, NULL, NULL, &err);
    if (!context) {
        cv_worker_call_finish (call, -1, &err);
        return;
    }
    /* An intent that is not acted on (a low-confidence guess) would have its tools read the bank's
       data for nothing. */
    const char *acted = cv_context_acted_intent (context);
    if (body->diagnostic && !gatherer_tools_has_plan (self->shared->tools, body->intent->name)) {
        json_decref (context);
        cv_error_set (&err, CV_ERR_INVALID, "gather_request.intent.name", "the agent file plans no tools for intent %s",
                      body->intent->name);
        cv_worker_call_finish (call, -1, &err);
        return;
    }
    gatherer_plan_t plan = {0};
    if (acted)
        plan = gatherer_tools_plan (self->shared->tools, acted);
    gatherer_run_t *run = gatherer_run_start (&self->env, plan, context, call, self->log, s_run_over, self);
    zlistx_add_end (self->runs, run);
    json_decref (context);
}

static void
s_checked (void *arg)
{
    gatherer_server_logic_t *self = arg;
    gatherer_result_t *result = &self->check_result;
    cv_worker_call_t *call = self->checking;
    self->checking = NULL;
    self->check_sql = NULL;
    cv_error_t err;
    int rc = 0;
    if (self->kb && result->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
        rc = cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "canned %s search %s: %s", self->kb->name,
                           cv_context_tool_status_name (result->status), result->error);
    else if (!self->kb && (result->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK || result->rows != 1))
        rc = cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "postgresql check %s: %s",
                           cv_context_tool_status_name (result->status), result->error);
    gatherer_result_reset (result);
    cv_worker_call_finish (call, rc, &err);
}

void
gatherer_server_check_begin (void *logic, cv_worker_call_t *call)
{
    gatherer_server_logic_t *self = logic;
    assert (self && call);
    assert (!self->checking); /* the control endpoint takes one probe at a time */
    self->checking = call;
    int64_t until = zclock_usecs () + (int64_t) GATHERER_CHECK_TIMEOUT_MS * 1000;
    self->check_sql =
        self->kb ? gatherer_sql_start (self->pool, self->kb, self->check_context, until, &self->check_result, s_checked,
                                       self)
                 : gatherer_sql_start (self->pool, &self->check, NULL, 0, &self->check_result, s_checked, self);
}

/* What conveyor-gatherer's main.c runs and its tests start. */
const cv_launcher_spec_t gatherer_server_spec = {
    .service = GATHERER_SERVICE,
    .summary = "conveyor's gatherer: runs the tools of an intent's plan (SQL, knowledge-base search and HTTP, "
               "in parallel where they do not depend on one another) and answers with the evidence.",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
    .shared_new = gatherer_server_shared_new,
    .shared_destroy = gatherer_server_shared_destroy,
    .logic_destroy = gatherer_server_logic_destroy,
    .loop_logic_new = gatherer_server_logic_new,
    .begin = gatherer_server_begin,
    .check_begin = gatherer_server_check_begin,
    .capacity_per_cpu = GATHERER_CAPACITY_PER_CPU,
    .handlers = GATHERER_HANDLERS,
    .capacity_max = GATHERER_CAPACITY_MAX,
    .capacity_why = "requests mostly wait on PostgreSQL and HTTP services, on one event loop that runs the "
                    "tools of all of them",
    .default_control_endpoint = GATHERER_DEFAULT_CONTROL_ENDPOINT,
    .extra_settings = gatherer_server_settings,
    .extra_count = sizeof gatherer_server_settings / sizeof gatherer_server_settings[0],
    .http_client = true,
};

/*  --------------------------------------------------------------------------
    Self-test: the glue's start and stop (tests/isolation/gatherer_test.c drives requests through
    it over sockets, against the fixture's PostgreSQL and one out of reach). */

static const char *s_test_agent = "intents:\n"
                                  "  lost_or_stolen_card: {tools: [customer_profile, active_cards]}\n"
                                  "tools:\n"
                                  "  customer_profile: {kind: sql, query: 'SELECT 1', params: [user_id]}\n"
                                  "  active_cards: {kind: sql, query: 'SELECT 2', params: [intent.slots.last4]}\n";

static cv_settings_t *
s_test_settings (const char *url)
{
    cv_settings_t *settings =
        cv_settings_new ("gatherer-test", "test", gatherer_server_settings, gatherer_server_settings_count);
    char *argv[] = {"gatherer-test", "--database-url", (char *) url, NULL};
    cv_error_t err;
    int rc = cv_settings_load (settings, 3, argv, &err);
    assert (rc == 0);
    return settings;
}

void
gatherer_server_test (bool verbose)
{
    cv_log_t *log = cv_log_new (GATHERER_SERVICE, "gatherer-server-test", verbose);
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", s_test_agent, &err);
    assert (agent);
    cv_settings_t *settings = s_test_settings ("postgresql://conveyor@127.0.0.1:1/conveyor");
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    void *shared = gatherer_server_shared_new (&args, log, &err);
    assert (shared);
    assert (((gatherer_server_shared_t *) shared)->connections == (size_t) atoi (GATHERER_DEFAULT_CONNECTIONS));

    /* a logic on a loop opens nothing until a tool runs, and goes cleanly */
    zloop_t *loop = zloop_new ();
    void *logic = gatherer_server_logic_new (shared, loop, log, &err);
    assert (logic && ((gatherer_server_logic_t *) logic)->shared == shared);
    assert (cv_pgpool_busy (((gatherer_server_logic_t *) logic)->pool) == 0);
    gatherer_server_logic_destroy (&logic);
    assert (!logic);
    gatherer_server_logic_destroy (&logic);
    zloop_destroy (&loop);
    gatherer_server_shared_destroy (&shared);
    assert (!shared);
    gatherer_server_shared_destroy (&shared);
    cv_config_destroy (&agent);

    /* a wrong agent file stops the start, naming file and line */
    agent = cv_config_parse ("agent.yaml", "tools:\n  cards: {kind: ftp, query: x}\n", &err);
    args.agent = agent;
    assert (!gatherer_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "agent.yaml:2: tools.cards.kind"));
    cv_config_destroy (&agent);
    cv_settings_destroy (&settings);

    /* so does an empty database URL */
    agent = cv_config_parse ("agent.yaml", s_test_agent, &err);
    settings = s_test_settings ("");
    args = (cv_launcher_args_t){.agent = agent, .settings = settings};
    assert (!gatherer_server_shared_new (&args, log, &err));
    assert (streq (err.field, "database-url"));
    cv_config_destroy (&agent);
    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    if (verbose)
        printf ("gatherer_server: ok\n");
}
