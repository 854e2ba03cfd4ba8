/* The bank API's settings, bound to bankapi_config_t, and its start for cv_launcher. */
#include "bankapi_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bankapi_server.h"
#include "cv_assert.h"

#define AT(member, ctype) CV_SETTING_FIELD (bankapi_config_t, member, ctype)

static const cv_setting_field_t s_fields[] = {
    {{"bankapi-address", CV_SETTING_STRING, "127.0.0.1", 0, 0, "IPv4 address the API listens on"},
     AT (http_address, const char *)},
    {{"bankapi-port", CV_SETTING_INT, "8090", 0, 65535, "API port (0 picks one)"}, AT (http_port, int)},
    {{"instance", CV_SETTING_STRING, "bankapi", 0, 0, "this process's id in logs"}, AT (instance, const char *)},
    {{"as-of", CV_SETTING_STRING, "", 0, 0, "the day parcels are tracked as of, YYYY-MM-DD (empty: today, UTC)"},
     AT (as_of, const char *)},
    /* misbehaving, for tests: the fault every request on --fault-route gets */
    {{"fault-route", CV_SETTING_STRING, "all", 0, 0, "the route the flags below apply to: fx, deliveries or all"},
     CV_SETTING_UNBOUND},
    {{"delay-ms", CV_SETTING_INT, "0", 0, 600000, "wait this long before answering"}, AT (delay_ms, int)},
    {{"fail-rate", CV_SETTING_INT, "0", 0, 100, "percent of requests that fail, as --fail-mode says"},
     AT (fail_rate, int)},
    {{"fail-mode", CV_SETTING_STRING, "status", 0, 0,
      "how a request fails: status (answers --status), hang, close (drops the connection), malformed or "
      "oversized (JSON)"},
     CV_SETTING_UNBOUND},
    {{"status", CV_SETTING_INT, "500", 100, 599, "the status a failing request gets (fail-mode status)"},
     AT (status, int)},
    {{"retry-after", CV_SETTING_STRING, "", 0, 0, "the Retry-After header of a failing request's status"},
     AT (retry_after, const char *)},
    {{"seed", CV_SETTING_INT, "1", 0, 2147483647, "which requests --fail-rate fails: the same seed, the same ones"},
     AT (seed, int)},
    {{"test-control", CV_SETTING_BOOL, "false", 0, 0,
      "serve /_test/faults, to set faults while running (answers loopback clients only)"},
     AT (test_control, bool)},
    /* the launcher's: the log's debug events */
    {{"verbose", CV_SETTING_BOOL, "false", 0, 0, "log debug events"}, CV_SETTING_UNBOUND},
};

static int
s_prepare (void *config, const cv_settings_t *settings, cv_error_t *err)
{
    bankapi_config_t *self = config;
    const char *route = cv_settings_string (settings, "fault-route");
    self->fault_route = bankapi_faults_route_parse (route);
    if (self->fault_route < 0)
        return cv_error_set (err, CV_ERR_INVALID, "fault-route",
                             "--fault-route must be fx, deliveries or all, not '%s'", route);
    const char *mode_name = cv_settings_string (settings, "fail-mode");
    int mode = bankapi_faults_mode_parse (mode_name);
    if (mode < 0)
        return cv_error_set (err, CV_ERR_INVALID, "fail-mode",
                             "--fail-mode must be status, hang, close, malformed or oversized, not '%s'", mode_name);
    if (strlen (self->retry_after) >= sizeof self->fault.retry_after || strpbrk (self->retry_after, "\r\n"))
        return cv_error_set (err, CV_ERR_INVALID, "retry-after", "--retry-after must be a short one-line value");
    self->fault = (bankapi_fault_t){.delay_ms = (unsigned) self->delay_ms,
                                    .fail_rate = (unsigned) self->fail_rate,
                                    .mode = (bankapi_fail_mode_t) mode,
                                    .status = (unsigned) self->status};
    snprintf (self->fault.retry_after, sizeof self->fault.retry_after, "%s", self->retry_after);
    return 0;
}

static zactor_t *
s_start (void *config, cv_log_t *log, cv_error_t *err)
{
    bankapi_config_t *self = config;
    self->log = log;
    return bankapi_server_start (self, err);
}

const cv_launcher_service_t bankapi_settings_service = {
    .service = "bankapi",
    .summary = "The demo bank's other systems over HTTP: FX rates and card deliveries (and faults for tests).",
    .fields = s_fields,
    .field_count = sizeof s_fields / sizeof s_fields[0],
    .config_size = sizeof (bankapi_config_t),
    .prepare = s_prepare,
    .start = s_start,
};

/* Loads argv (argc entries) into config through table (filled here; it outlives *settings) and
   prepare; prepare's result. */
static int
s_load (int argc, char **argv, cv_setting_t *table, bankapi_config_t *config, cv_settings_t **settings, cv_error_t *err)
{
    const cv_launcher_service_t *spec = &bankapi_settings_service;
    for (size_t i = 0; i < spec->field_count; i++)
        table[i] = spec->fields[i].setting;
    *settings = cv_settings_new ("conveyor-bankapi", spec->summary, table, spec->field_count);
    assert (cv_settings_load (*settings, argc, argv, err) == 0);
    memset (config, 0, sizeof *config);
    cv_settings_bind (*settings, spec->fields, spec->field_count, config);
    return spec->prepare (config, *settings, err);
}

void
bankapi_settings_test (bool verbose)
{
    cv_error_t err;
    bankapi_config_t config;
    cv_settings_t *settings = NULL;
    cv_setting_t table[sizeof s_fields / sizeof s_fields[0]];
    char *plain[] = {"conveyor-bankapi", NULL};
    assert (s_load (1, plain, table, &config, &settings, &err) == 0);
    assert (config.http_port == BANKAPI_DEFAULT_PORT && strcmp (config.http_address, "127.0.0.1") == 0);
    assert (strcmp (config.instance, "bankapi") == 0 && strcmp (config.as_of, "") == 0 && !config.test_control);
    assert (config.fault.fail_rate == 0 && config.fault.delay_ms == 0 && config.fault_route == BANKAPI_ROUTE_COUNT);
    cv_settings_destroy (&settings);

    char *faulty[] = {"conveyor-bankapi",
                      "--fault-route",
                      "fx",
                      "--fail-rate",
                      "25",
                      "--status",
                      "429",
                      "--retry-after",
                      "3",
                      "--delay-ms",
                      "40",
                      "--test-control",
                      "--as-of",
                      "2026-11-21",
                      "--bankapi-port",
                      "0",
                      NULL};
    assert (s_load (16, faulty, table, &config, &settings, &err) == 0);
    assert (config.fault_route == BANKAPI_ROUTE_FX && config.fault.fail_rate == 25 && config.fault.status == 429);
    assert (strcmp (config.fault.retry_after, "3") == 0 && config.fault.delay_ms == 40);
    assert (config.fault.mode == BANKAPI_FAIL_STATUS && config.test_control && config.http_port == 0);
    cv_settings_destroy (&settings);

    char *bad_route[] = {"conveyor-bankapi", "--fault-route", "cards", NULL};
    assert (s_load (3, bad_route, table, &config, &settings, &err) == -1
            && strstr (err.message, "--fault-route must be"));
    cv_settings_destroy (&settings);
    char *bad_mode[] = {"conveyor-bankapi", "--fail-mode", "explode", NULL};
    assert (s_load (3, bad_mode, table, &config, &settings, &err) == -1 && strstr (err.message, "--fail-mode must be"));
    cv_settings_destroy (&settings);
    char *hang[] = {"conveyor-bankapi", "--fail-mode", "hang", "--fail-rate", "100", NULL};
    assert (s_load (5, hang, table, &config, &settings, &err) == 0 && config.fault.mode == BANKAPI_FAIL_HANG);
    cv_settings_destroy (&settings);
    if (verbose)
        printf ("bankapi_settings: ok\n");
}
