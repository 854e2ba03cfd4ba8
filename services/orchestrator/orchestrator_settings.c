/* The orchestrator's settings, bound to orchestrator_config_t, and its start for cv_launcher. */
#include "orchestrator_settings.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_budget.h"
#include "orchestrator_chat.h"
#include "orchestrator_server.h"

#define AT(member, ctype) CV_SETTING_FIELD (orchestrator_config_t, member, ctype)

static const cv_setting_field_t s_fields[] = {
    {{"http-address", CV_SETTING_STRING, "127.0.0.1", 0, 0, "IPv4 address the HTTP API listens on"},
     AT (http_address, const char *)},
    {{"http-port", CV_SETTING_INT, "8080", 0, 65535, "HTTP API port (0 picks one)"}, AT (http_port, int)},
    {{"broker-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5555", 0, 0, "where workers connect (ZeroMQ ROUTER)"},
     AT (broker_endpoint, const char *)},
    {{"control-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5556", 0, 0, "where probes are answered (ZeroMQ REP)"},
     AT (control_endpoint, const char *)},
    {{"database-url", CV_SETTING_STRING, "postgresql://conveyor@127.0.0.1:55432/conveyor", 0, 0, "PostgreSQL"},
     AT (database_url, const char *)},
    {{"instance", CV_SETTING_STRING, "orchestrator", 0, 0, "this process's id in logs and probes"},
     AT (instance, const char *)},
    {{"request-timeout-ms", CV_SETTING_INT, "15000", 100, 3600000, "a request's whole deadline"},
     AT (request_timeout_ms, int)},
    {{"attempt-timeout-ms", CV_SETTING_INT, "5000", 10, 600000, "one stage attempt's limit before a retry"},
     AT (attempt_timeout_ms, int)},
    {{"reply-reserve-ms", CV_SETTING_INT, "1000", 0, 600000,
      "kept from a request's deadline for its reply, so that a stage failing at its deadline is still answered "
      "(at most half the request's time)"},
     AT (reply_reserve_ms, int)},
    {{"max-attempts", CV_SETTING_INT, "3", 1, 20, "attempts per stage"}, AT (max_attempts, int)},
    {{"heartbeat-ms", CV_SETTING_INT, "1000", 10, 60000, "heartbeat interval with workers"}, AT (heartbeat_ms, int)},
    {{"liveness", CV_SETTING_INT, "3", 1, 100, "missed heartbeats before a worker counts as dead"}, AT (liveness, int)},
    {{"max-in-flight", CV_SETTING_INT, "1024", 1, 1000000, "requests in flight before answering 503"},
     AT (max_in_flight, int)},
    {{"max-queued", CV_SETTING_INT, "512", 1, 1000000, "stages waiting for an intent worker before answering 503"},
     AT (max_queued, int)},
    /* an enum: s_prepare parses it */
    {{"durability", CV_SETTING_STRING, "sync", 0, 0,
      "when checkpoints are committed: sync (before the next stage), async (while it runs; the answer "
      "waits), exit (only the finished request)"},
     CV_SETTING_UNBOUND},
    {{"store-connections", CV_SETTING_INT, "2", 1, 64, "PostgreSQL connections of the checkpoint store"},
     AT (store_connections, int)},
    {{"store-timeout-ms", CV_SETTING_INT, "5000", 100, 600000,
      "a checkpoint store statement or connection slower than this fails"},
     AT (store_timeout_ms, int)},
    {{"recovery-interval-ms", CV_SETTING_INT, "5000", 100, 3600000, "how often to resume requests left running"},
     AT (recovery_interval_ms, int)},
    {{"approval-expiry-s", CV_SETTING_INT, "86400", 1, 31536000,
      "how long actions wait for a person's approval before they are rejected"},
     AT (approval_expiry_s, int)},
    /* a real number or none: s_prepare parses it */
    {{"budget", CV_SETTING_STRING, "none", 0, 0,
      "a request's cost budget in the agent's cost units (LLM tokens at its prices, tool calls at their "
      "costs), or none; a request may ask for a lower one"},
     CV_SETTING_UNBOUND},
    {{"request-attempts", CV_SETTING_INT, "10", 0, 1000,
      "stage attempts a request may use in all, retries included (0: no limit; else at least 5)"},
     CV_SETTING_UNBOUND},
    {{"chat-model", CV_SETTING_STRING, ORCHESTRATOR_CHAT_MODEL, 0, 0,
      "the model name the agent answers to on POST /v1/chat/completions and GET /v1/models"},
     AT (chat_model, const char *)},
    {{"chat-user-header", CV_SETTING_STRING, "X-User-Id", 0, 0,
      "the header with the customer's id for a chat completion without `user` (empty: none)"},
     AT (chat_user_header, const char *)},
    {{"otlp-url", CV_SETTING_STRING, "", 0, 0,
      "an OpenTelemetry collector's OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces): each ended "
      "request's trace is exported to it as JSON (empty: none)"},
     AT (otlp_url, const char *)},
    /* the launcher's: the log's debug events */
    {{"verbose", CV_SETTING_BOOL, "false", 0, 0, "log debug events"}, CV_SETTING_UNBOUND},
    {{"telemetry", CV_SETTING_BOOL, "true", 0, 0,
      "record metrics and make spans, export traces (false: none of them, to measure what they cost; a request's "
      "stages are still timed in the store)"},
     CV_SETTING_UNBOUND},
    {{"log-personal-data", CV_SETTING_BOOL, "false", 0, 0,
      "write e-mail addresses, phone numbers, IBANs and card numbers into the log as they are (default: as "
      "[email]...)"},
     CV_SETTING_UNBOUND},
};

static int
s_prepare (void *config, const cv_settings_t *settings, cv_error_t *err)
{
    orchestrator_config_t *self = config;
    const char *name = cv_settings_string (settings, "durability");
    int durability = orchestrator_durability_parse (name);
    if (durability < 0)
        return cv_error_set (err, CV_ERR_INVALID, "durability", "--durability must be sync, async or exit, not '%s'",
                             name);
    self->durability = (orchestrator_durability_t) durability;
    if (!cv_name_valid (cv_settings_string (settings, "chat-model")))
        return cv_error_set (err, CV_ERR_INVALID, "chat-model",
                             "--chat-model must be 1..%d characters of " CV_NAME_CHARS, CV_NAME_MAX_BYTES);
    const char *budget = cv_settings_string (settings, "budget");
    long attempts = cv_settings_int (settings, "request-attempts");
    if (attempts > 0 && attempts < REQUEST_STAGES)
        return cv_error_set (err, CV_ERR_INVALID, "request-attempts",
                             "--request-attempts must be 0 (no limit) or at least %d, one for each stage, not %ld",
                             REQUEST_STAGES, attempts);
    self->limits = (orchestrator_limits_t){.max_attempts = (uint32_t) attempts};
    if (strcmp (budget, "none") != 0) {
        char *end = NULL;
        double units = strtod (budget, &end);
        if (end == budget || *end || !(units >= 0 && units <= CV_BUDGET_MAX_UNITS))
            return cv_error_set (err, CV_ERR_INVALID, "budget",
                                 "--budget must be none or a number of cost units, 0..%g, not '%s'",
                                 CV_BUDGET_MAX_UNITS, budget);
        self->limits.budgeted = true;
        self->limits.budget_micros = cv_budget_micros (units);
    }
    /* a secret: from the environment only, never logged */
    self->operator_token = cv_settings_secret ("CONVEYOR_OPERATOR_TOKEN");
    return 0;
}

static zactor_t *
s_start (void *config, cv_log_t *log, cv_error_t *err)
{
    orchestrator_config_t *self = config;
    self->log = log;
    return orchestrator_server_start (self, err);
}

const cv_launcher_service_t orchestrator_settings_service = {
    .service = "orchestrator",
    .summary = "The conveyor orchestrator: HTTP API, worker broker and checkpoints.",
    .fields = s_fields,
    .field_count = sizeof s_fields / sizeof s_fields[0],
    .config_size = sizeof (orchestrator_config_t),
    .prepare = s_prepare,
    .start = s_start,
};

void
orchestrator_settings_test (bool verbose)
{
    const cv_launcher_service_t *spec = &orchestrator_settings_service;
    cv_setting_t table[sizeof s_fields / sizeof s_fields[0]];
    for (size_t i = 0; i < spec->field_count; i++)
        table[i] = spec->fields[i].setting;
    cv_error_t err;
    char *argv[] = {"conveyor-orchestrator",
                    "--http-port",
                    "0",
                    "--durability=async",
                    "--store-connections",
                    "4",
                    "--instance",
                    "orch-2",
                    NULL};
    cv_settings_t *settings = cv_settings_new ("conveyor-orchestrator", spec->summary, table, spec->field_count);
    assert (cv_settings_load (settings, 8, argv, &err) == 0);
    orchestrator_config_t config = {0};
    cv_settings_bind (settings, spec->fields, spec->field_count, &config);
    assert (spec->prepare (&config, settings, &err) == 0);
    assert (config.http_port == 0 && strcmp (config.http_address, "127.0.0.1") == 0);
    assert (strcmp (config.broker_endpoint, "tcp://127.0.0.1:5555") == 0);
    assert (strcmp (config.control_endpoint, "tcp://127.0.0.1:5556") == 0);
    assert (strcmp (config.database_url, "postgresql://conveyor@127.0.0.1:55432/conveyor") == 0);
    assert (strcmp (config.instance, "orch-2") == 0);
    assert (config.request_timeout_ms == 15000 && config.attempt_timeout_ms == 5000 && config.max_attempts == 3);
    assert (config.heartbeat_ms == 1000 && config.liveness == 3);
    assert (config.max_in_flight == 1024 && config.max_queued == 512);
    assert (config.durability == ORCHESTRATOR_DURABILITY_ASYNC && config.store_connections == 4);
    assert (config.store_timeout_ms == 5000 && config.recovery_interval_ms == 5000);
    assert (config.log == NULL);
    assert (!config.limits.budgeted && config.limits.max_attempts == 10);
    cv_settings_destroy (&settings);

    char *limited[] = {"conveyor-orchestrator", "--budget", "0.05", "--request-attempts=6", NULL};
    settings = cv_settings_new ("conveyor-orchestrator", spec->summary, table, spec->field_count);
    assert (cv_settings_load (settings, 4, limited, &err) == 0);
    cv_settings_bind (settings, spec->fields, spec->field_count, &config);
    assert (spec->prepare (&config, settings, &err) == 0);
    assert (config.limits.budgeted && config.limits.budget_micros == 50000 && config.limits.max_attempts == 6);
    cv_settings_destroy (&settings);

    char *stingy[] = {"conveyor-orchestrator", "--request-attempts", "4", NULL};
    settings = cv_settings_new ("conveyor-orchestrator", spec->summary, table, spec->field_count);
    assert (cv_settings_load (settings, 3, stingy, &err) == 0);
    cv_settings_bind (settings, spec->fields, spec->field_count, &config);
    assert (spec->prepare (&config, settings, &err) == -1);
    assert (strcmp (err.message, "--request-attempts must be 0 (no limit) or at least 5, one for each stage, not 4")
            == 0);
    cv_settings_destroy (&settings);

    char *priceless[] = {"conveyor-orchestrator", "--budget", "cheap", NULL};
    settings = cv_settings_new ("conveyor-orchestrator", spec->summary, table, spec->field_count);
    assert (cv_settings_load (settings, 3, priceless, &err) == 0);
    cv_settings_bind (settings, spec->fields, spec->field_count, &config);
    assert (spec->prepare (&config, settings, &err) == -1);
    assert (strcmp (err.message, "--budget must be none or a number of cost units, 0..1e+06, not 'cheap'") == 0);
    cv_settings_destroy (&settings);

    char *bad[] = {"conveyor-orchestrator", "--durability", "later", NULL};
    settings = cv_settings_new ("conveyor-orchestrator", spec->summary, table, spec->field_count);
    assert (cv_settings_load (settings, 3, bad, &err) == 0);
    cv_settings_bind (settings, spec->fields, spec->field_count, &config);
    assert (spec->prepare (&config, settings, &err) == -1);
    assert (strcmp (err.message, "--durability must be sync, async or exit, not 'later'") == 0);
    cv_settings_destroy (&settings);
    if (verbose)
        printf ("orchestrator_settings: ok\n");
}
