/* The gatherer worker's service glue: GatherRequest in, Evidence out, through gatherer_tools and gatherer_sql. */
#include "gatherer_server.h"

#include "cv_alloc.h"
#include "cv_launcher.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_context.h"
#include "cv_utf8.h"
#include "gatherer_sql.h"
#include "gatherer_tools.h"

/* Time kept back from the request's deadline to pack and send the Evidence. */
#define REPLY_MARGIN_MS 20
/* Room left in an Envelope for everything but the tools' rows. */
#define EVIDENCE_DATA_MAX_BYTES (CV_ENVELOPE_MAX_BYTES - 64 * 1024)

const cv_setting_t gatherer_server_settings[] = {
    {"database-url", CV_SETTING_STRING, GATHERER_DEFAULT_DATABASE_URL, 0, 0,
     "PostgreSQL holding the data the tools read (libpq URI or key=value string)"},
};
const size_t gatherer_server_settings_count = sizeof gatherer_server_settings / sizeof gatherer_server_settings[0];

/* What every handler thread reads: the tools and plans, and where the database is. */
typedef struct {
    gatherer_tools_t *tools;
    char *url;
} gatherer_server_shared_t;

/* One handler thread's logic: its own connection pool over the shared tools. */
typedef struct {
    const gatherer_server_shared_t *shared;
    gatherer_sql_t *sql;
    gatherer_tool_t check; /* the probe's canned statement */
    cv_log_t *log;         /* borrowed */
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
    self->url = cv_strdup (url);
    cv_log_debug (log, "%zu tools, the largest plan runs %zu at once on each handler's connections",
                  gatherer_tools_count (tools), gatherer_tools_max_plan (tools));
    return self;
}

void
gatherer_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    gatherer_server_shared_t *self = *shared_p;
    if (!self)
        return;
    gatherer_tools_destroy (&self->tools);
    free (self->url);
    free (self);
    *shared_p = NULL;
}

void *
gatherer_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err)
{
    assert (shared && log);
    gatherer_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->shared = shared;
    size_t pool = gatherer_tools_max_plan (self->shared->tools);
    /* The instance id names the sessions in pg_stat_activity. Connections open when first used. */
    self->sql = gatherer_sql_new (self->shared->url, cv_log_instance (log), pool ? pool : 1);
    self->check = (gatherer_tool_t){.name = "check",
                                    .kind = GATHERER_TOOL_SQL,
                                    .query = "SELECT 1 AS ok",
                                    .timeout_ms = GATHERER_CHECK_TIMEOUT_MS,
                                    .max_rows = 1};
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
    gatherer_sql_destroy (&self->sql);
    free (self);
    *logic_p = NULL;
}

/* ToolResult.error must be valid UTF-8 within CV_DETAIL_MAX_BYTES: a message cut in the middle
   of a character loses that character; one in another encoding loses its non-ASCII bytes. */
static char *
s_wire_text (cv_arena_t *arena, const char *text)
{
    char *copy = cv_arena_strdup (arena, text);
    size_t size = strlen (copy);
    if (size > CV_DETAIL_MAX_BYTES)
        copy[size = CV_DETAIL_MAX_BYTES] = '\0';
    size_t lead = size;
    while (lead > 0 && size - lead < 4 && ((unsigned char) copy[lead - 1] & 0xc0) == 0x80)
        lead--;
    if (lead > 0 && ((unsigned char) copy[lead - 1] & 0xc0) == 0xc0) {
        unsigned char byte = (unsigned char) copy[lead - 1];
        size_t needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
        if (size - (lead - 1) < needed)
            copy[size = lead - 1] = '\0';
    }
    if (!cv_utf8_valid (copy, size))
        for (char *c = copy; *c; c++)
            if ((unsigned char) *c >= 0x80)
                *c = '?';
    return copy;
}

int
gatherer_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                        cv_error_t *err)
{
    gatherer_server_logic_t *self = logic;
    assert (self && request && arena && reply);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST);
    const Conveyor__V1__GatherRequest *body = request->gather_request;
    json_t *context = cv_context_new (body->user_id, body->text, body->intent, NULL, NULL, err);
    if (!context)
        return -1;
    /* An intent that is not acted on (a low-confidence guess) would have its tools read the bank's
       data for nothing. */
    const char *acted = cv_context_acted_intent (context);
    gatherer_plan_t plan = {0};
    if (acted)
        plan = gatherer_tools_plan (self->shared->tools, acted);

    /* The deadline is wall-clock time; tools are timed on the monotonic clock, and stop a little
       before it so that the Evidence still arrives in time (a late reply is dropped). */
    int64_t deadline_us = 0;
    if (request->deadline_ms)
        deadline_us = zclock_usecs () + ((int64_t) request->deadline_ms - zclock_time () - REPLY_MARGIN_MS) * 1000;
    gatherer_sql_result_t results[CV_MAX_TOOL_RESULTS];
    gatherer_sql_run (self->sql, plan.tools, plan.count, context, deadline_us, results);
    json_decref (context);

    Conveyor__V1__Evidence *evidence = cv_envelope_set_evidence (reply, arena);
    evidence->results = cv_arena_alloc (arena, (plan.count ? plan.count : 1) * sizeof *evidence->results);
    evidence->n_results = plan.count;
    size_t data_bytes = 0;
    for (size_t i = 0; i < plan.count; i++) {
        gatherer_sql_result_t *result = &results[i];
        Conveyor__V1__ToolResult *tool = cv_envelope_tool_result_new (arena);
        tool->tool = cv_arena_strdup (arena, plan.tools[i]->name);
        int64_t elapsed = result->finished_us - result->started_us;
        tool->elapsed_us = elapsed < 0 ? 0 : elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t) elapsed;
        tool->status = result->status;
        if (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK) {
            if (data_bytes + result->size > EVIDENCE_DATA_MAX_BYTES) {
                tool->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
                snprintf (result->error, sizeof result->error,
                          "%zu rows (%zu bytes) would take the evidence over %d bytes", result->rows, result->size,
                          EVIDENCE_DATA_MAX_BYTES);
            } else {
                tool->data.data = cv_arena_adopt (arena, result->data, result->size);
                tool->data.len = result->size;
                result->data = NULL;
                data_bytes += result->size;
            }
        }
        if (*result->error)
            tool->error = s_wire_text (arena, result->error);
        if (tool->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
            cv_log_event (self->log, CV_LOG_DEBUG, request->request_id, request->trace_id,
                          "tool %s: %zu rows%s in %u us", tool->tool, result->rows,
                          result->dropped ? " (more dropped)" : "", tool->elapsed_us);
        else
            cv_log_event (self->log, CV_LOG_WARN, request->request_id, request->trace_id, "tool %s %s in %u us: %s",
                          tool->tool, cv_context_tool_status_name (tool->status), tool->elapsed_us, tool->error);
        evidence->results[i] = tool;
        gatherer_sql_result_reset (result);
    }
    return 0;
}

int
gatherer_server_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    gatherer_server_logic_t *self = logic;
    assert (self);
    const gatherer_tool_t *check = &self->check;
    gatherer_sql_result_t result;
    gatherer_sql_run (self->sql, &check, 1, NULL, 0, &result);
    int rc = 0;
    if (result.status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK || result.rows != 1)
        rc = cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "postgresql check %s: %s",
                           cv_context_tool_status_name (result.status), result.error);
    gatherer_sql_result_reset (&result);
    return rc;
}

/* What conveyor-gatherer's main.c runs and its tests start. */
const cv_launcher_spec_t gatherer_server_spec = {
    .service = GATHERER_SERVICE,
    .summary = "conveyor's gatherer: runs the tools of an intent's plan (SQL, in parallel) and answers "
               "with the evidence.",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
    .shared_new = gatherer_server_shared_new,
    .shared_destroy = gatherer_server_shared_destroy,
    .logic_new = gatherer_server_logic_new,
    .logic_destroy = gatherer_server_logic_destroy,
    .handle = gatherer_server_handle,
    .check = gatherer_server_check,
    .capacity_per_cpu = GATHERER_CAPACITY_PER_CPU,
    .capacity_max = GATHERER_CAPACITY_MAX,
    .capacity_why = "a handler mostly waits on PostgreSQL, so more are in flight than there are CPUs; each "
                    "opens up to one connection per tool of the largest plan",
    .default_control_endpoint = GATHERER_DEFAULT_CONTROL_ENDPOINT,
    .extra_settings = gatherer_server_settings,
    .extra_count = sizeof gatherer_server_settings / sizeof gatherer_server_settings[0],
};

/*  --------------------------------------------------------------------------
    Self-test: the glue, with PostgreSQL out of reach (tests/isolation/gatherer_test.c drives
    the same code over sockets against the fixture's PostgreSQL). */

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
    void *logic = gatherer_server_logic_new (shared, log, &err);
    assert (logic && ((gatherer_server_logic_t *) logic)->shared == shared);

    /* PostgreSQL unreachable: the plan's tools each FAILED, the request still answered */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = cv_envelope_new (arena, "req-1", "", (uint64_t) zclock_time () + 5000, 1);
    Conveyor__V1__GatherRequest *body = cv_envelope_set_gather_request (request, arena);
    body->user_id = "cust-1";
    body->text = "I lost my card";
    body->intent = cv_envelope_intent_new (arena);
    body->intent->name = "lost_or_stolen_card";
    body->intent->confidence = 1.0f;
    body->intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    assert (gatherer_server_handle (logic, request, arena, reply, &err) == 0);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE);
    assert (reply->evidence->n_results == 2);
    for (size_t i = 0; i < 2; i++) {
        Conveyor__V1__ToolResult *tool = reply->evidence->results[i];
        assert (streq (tool->tool, i == 0 ? "customer_profile" : "active_cards"));
        assert (tool->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
        assert (strstr (tool->error, "postgresql connect failed"));
        assert (tool->data.len == 0);
    }
    /* what it sends passes the receiving edge's validation */
    assert (
        cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE), (uint64_t) zclock_time (), &err)
        == 0);

    /* an intent without a plan gets empty evidence */
    body->intent->name = "unknown";
    reply = cv_envelope_reply_new (arena, request);
    assert (gatherer_server_handle (logic, request, arena, reply, &err) == 0);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE && reply->evidence->n_results == 0);

    /* the probe tells the truth */
    assert (gatherer_server_check (logic, arena, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE);
    assert (strstr (err.message, "postgresql check failed: postgresql connect failed"));
    gatherer_server_logic_destroy (&logic);
    assert (!logic);
    gatherer_server_logic_destroy (&logic);
    gatherer_server_shared_destroy (&shared);
    assert (!shared);
    gatherer_server_shared_destroy (&shared);
    cv_arena_destroy (&arena);
    cv_config_destroy (&agent);

    /* a wrong agent file stops the start, naming file and line */
    agent = cv_config_parse ("agent.yaml", "tools:\n  cards: {kind: http, query: x}\n", &err);
    args.agent = agent;
    assert (!gatherer_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "agent.yaml:2: tools.cards.kind"));
    cv_config_destroy (&agent);
    cv_settings_destroy (&settings);

    /* text for the wire: cut at a character boundary, within the limit, UTF-8 */
    arena = cv_arena_new ();
    char long_text[CV_DETAIL_MAX_BYTES + 8];
    memset (long_text, 'x', sizeof long_text);
    memcpy (long_text + CV_DETAIL_MAX_BYTES - 1, "\xc3\xa9", 2); /* é across the limit */
    long_text[sizeof long_text - 1] = '\0';
    char *wire = s_wire_text (arena, long_text);
    assert (strlen (wire) == CV_DETAIL_MAX_BYTES - 1 && cv_utf8_valid (wire, strlen (wire)));
    assert (streq (s_wire_text (arena, "caf\xc3\xa9"), "caf\xc3\xa9"));
    assert (streq (s_wire_text (arena, "caf\xe9 au lait"), "caf? au lait"));
    cv_arena_destroy (&arena);
    cv_log_destroy (&log);
    if (verbose)
        printf ("gatherer_server: ok\n");
}
