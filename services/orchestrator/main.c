/* conveyor-orchestrator: reads its settings and runs the orchestrator actor until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>

#include "cv_actor.h"
#include "cv_settings.h"
#include "orchestrator_server.h"

static const cv_setting_t s_settings[] = {
    {"http-address", CV_SETTING_STRING, "127.0.0.1", 0, 0, "IPv4 address the HTTP API listens on"},
    {"http-port", CV_SETTING_INT, "8080", 0, 65535, "HTTP API port (0 picks one)"},
    {"broker-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5555", 0, 0, "where workers connect (ZeroMQ ROUTER)"},
    {"control-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5556", 0, 0, "where probes are answered (ZeroMQ REP)"},
    {"database-url", CV_SETTING_STRING, "postgresql://conveyor@127.0.0.1:55432/conveyor", 0, 0, "PostgreSQL"},
    {"instance", CV_SETTING_STRING, "orchestrator", 0, 0, "this process's id in logs and probes"},
    {"request-timeout-ms", CV_SETTING_INT, "15000", 100, 3600000, "a request's whole deadline"},
    {"attempt-timeout-ms", CV_SETTING_INT, "5000", 10, 600000, "one stage attempt's limit before a retry"},
    {"max-attempts", CV_SETTING_INT, "3", 1, 20, "attempts per stage"},
    {"heartbeat-ms", CV_SETTING_INT, "1000", 10, 60000, "heartbeat interval with workers"},
    {"liveness", CV_SETTING_INT, "3", 1, 100, "missed heartbeats before a worker counts as dead"},
    {"max-in-flight", CV_SETTING_INT, "1024", 1, 1000000, "requests in flight before answering 503"},
    {"max-queued", CV_SETTING_INT, "512", 1, 1000000, "stages waiting for an intent worker before answering 503"},
    {"durability", CV_SETTING_STRING, "sync", 0, 0,
     "when checkpoints are committed: sync (before the next stage), async (while it runs; the answer "
     "waits), exit (only the finished request)"},
    {"store-connections", CV_SETTING_INT, "2", 1, 64, "PostgreSQL connections of the checkpoint store"},
    {"store-timeout-ms", CV_SETTING_INT, "5000", 100, 600000,
     "a checkpoint store statement or connection slower than this fails"},
    {"recovery-interval-ms", CV_SETTING_INT, "5000", 100, 3600000, "how often to resume requests left running"},
    {"verbose", CV_SETTING_BOOL, "false", 0, 0, "log debug events"},
};

int
main (int argc, char **argv)
{
    cv_actor_hold_signals (); /* before any thread exists */
    cv_settings_t *settings = cv_settings_new ("conveyor-orchestrator", "The conveyor orchestrator: HTTP API, "
                                               "worker broker and checkpoints.", s_settings,
                                               sizeof s_settings / sizeof *s_settings);
    cv_error_t err;
    int loaded = cv_settings_load (settings, argc, argv, &err);
    if (loaded != 0) {
        if (loaded < 0)
            fprintf (stderr, "conveyor-orchestrator: %s\n", err.message);
        cv_settings_destroy (&settings);
        return loaded < 0 ? 1 : 0;
    }
#define S(name) cv_settings_string (settings, name)
#define I(name) (int) cv_settings_int (settings, name)
    int durability = orchestrator_durability_parse (S ("durability"));
    if (durability < 0) {
        fprintf (stderr, "conveyor-orchestrator: --durability must be sync, async or exit, not '%s'\n",
                 S ("durability"));
        cv_settings_destroy (&settings);
        return 1;
    }
    cv_log_t *log = cv_log_new ("orchestrator", S ("instance"), cv_settings_bool (settings, "verbose"));
    cv_settings_log (settings, log);
    orchestrator_config_t config = {
        .http_address = S ("http-address"), .http_port = I ("http-port"), .broker_endpoint = S ("broker-endpoint"),
        .control_endpoint = S ("control-endpoint"), .database_url = S ("database-url"), .instance = S ("instance"),
        .request_timeout_ms = I ("request-timeout-ms"), .attempt_timeout_ms = I ("attempt-timeout-ms"),
        .max_attempts = I ("max-attempts"), .heartbeat_ms = I ("heartbeat-ms"), .liveness = I ("liveness"),
        .max_in_flight = I ("max-in-flight"), .max_queued = I ("max-queued"),
        .durability = (orchestrator_durability_t) durability, .store_connections = I ("store-connections"),
        .store_timeout_ms = I ("store-timeout-ms"), .recovery_interval_ms = I ("recovery-interval-ms"), .log = log,
    };
    zactor_t *server = orchestrator_server_start (&config, &err);
    int rc = 1;
    if (server) {
        int signal_number = cv_actor_wait_signal ();
        cv_log_info (log, "stopping on %s", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
        zactor_destroy (&server);
        cv_log_info (log, "stopped");
        rc = 0;
    } else
        cv_log_error (log, "cannot start: %s", err.message);
    cv_log_destroy (&log);
    cv_settings_destroy (&settings);
    return rc;
}
