/* The launcher every service's main.c calls: settings, agent file, the actor, signal wait. */
#include "cv_launcher.h"

#include <assert.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_actor.h"
#include "cv_alloc.h"
#include "cv_http.h"
#include "cv_llm_config.h"
#include "cv_metrics.h"
#include "cv_metrics_http.h"
#include "cv_trace.h"

static const cv_setting_t s_standard[] = {
    {"broker-endpoint", CV_SETTING_STRING, "tcp://127.0.0.1:5555", 0, 0, "the orchestrator's broker to connect to"},
    {"control-endpoint", CV_SETTING_STRING, NULL, 0, 0, "where to answer probes (ZeroMQ REP; port * picks one)"},
    {"instance", CV_SETTING_STRING, NULL, 0, 0, "this process's id in logs and probes (default SERVICE-HOST-PID)"},
    {"capacity", CV_SETTING_INT, NULL, 1, CV_LAUNCHER_CAPACITY_MAX, NULL}, /* default and help: the service's */
    {"heartbeat-ms", CV_SETTING_INT, "1000", 10, 60000, "heartbeat interval with the broker"},
    {"liveness", CV_SETTING_INT, "3", 1, 100, "missed heartbeats before reconnecting to the broker"},
    {"agent-file", CV_SETTING_STRING, "deploy/config/bank-agent.yaml", 0, 0, "the agent's YAML file"},
    {"verbose", CV_SETTING_BOOL, "false", 0, 0, "log debug events"},
    {"log-personal-data", CV_SETTING_BOOL, "false", 0, 0,
     "write e-mail addresses, phone numbers, IBANs and card numbers into the log as they are (default: as [email]...)"},
    {"metrics-listen", CV_SETTING_STRING, "", 0, 0,
     "where to serve /metrics, HOST:PORT (e.g. 0.0.0.0:9101; port 0 picks one); empty: not served"},
    {"telemetry", CV_SETTING_BOOL, "true", 0, 0,
     "record metrics and make spans (false: neither, to measure what they cost; /metrics then shows zeros)"},
};
#define STANDARD_COUNT (sizeof s_standard / sizeof s_standard[0])
#define CONTROL_ENDPOINT 1
#define CAPACITY 3

/* The service's log, its personal data redacted unless log-personal-data (when the settings have
   it) says to keep it; a log that cannot redact says so and keeps nothing back. With telemetry
   false (when the settings have it), the process records no metrics and makes no spans. */
static cv_log_t *
s_log_new (const char *service, const char *instance, const cv_settings_t *settings)
{
    cv_log_t *log = cv_log_new (service, instance, cv_settings_bool (settings, "verbose"));
    bool keep = cv_settings_has (settings, "log-personal-data") && cv_settings_bool (settings, "log-personal-data");
    cv_error_t err;
    if (!keep && cv_log_redact (log, &err))
        cv_log_warn (log, "personal data is not redacted from this log: %s", err.message);
    if (cv_settings_has (settings, "telemetry") && !cv_settings_bool (settings, "telemetry")) {
        cv_metrics_set_recording (false);
        cv_trace_set_recording (false);
        cv_log_warn (log, "telemetry off: no metrics are recorded and no spans are made");
    }
    return log;
}

uint32_t
cv_launcher_cpus (void)
{
    cpu_set_t set;
    CPU_ZERO (&set);
    if (sched_getaffinity (0, sizeof set, &set) == 0 && CPU_COUNT (&set) > 0)
        return (uint32_t) CPU_COUNT (&set);
    long online = sysconf (_SC_NPROCESSORS_ONLN);
    return online > 0 ? (uint32_t) online : 1;
}

static uint32_t
s_per_cpu (const cv_launcher_spec_t *spec)
{
    return spec->capacity_per_cpu ? spec->capacity_per_cpu : 1;
}

static uint32_t
s_capacity_max (const cv_launcher_spec_t *spec)
{
    uint32_t limit = spec->begin ? CV_MDP_MAX_CAPACITY : CV_LAUNCHER_CAPACITY_MAX;
    return spec->capacity_max && spec->capacity_max < limit ? spec->capacity_max : limit;
}

uint32_t
cv_launcher_default_capacity (const cv_launcher_spec_t *spec, uint32_t cpus)
{
    assert (spec);
    uint64_t capacity = (uint64_t) s_per_cpu (spec) * (cpus ? cpus : 1);
    return (uint32_t) (capacity > s_capacity_max (spec) ? s_capacity_max (spec) : capacity);
}

cv_worker_config_t
cv_launcher_worker_config (const cv_launcher_spec_t *spec, cv_launcher_args_t *args, cv_log_t *log)
{
    cv_worker_config_t config = {
        .service = spec->service,
        .request_body = spec->request_body,
        .shared_new = spec->shared_new,
        .shared_destroy = spec->shared_destroy,
        .shared_args = args,
        .logic_destroy = spec->logic_destroy,
        .logic_new = spec->logic_new,
        .handle = spec->handle,
        .check = spec->check,
        .loop_logic_new = spec->loop_logic_new,
        .begin = spec->begin,
        .check_begin = spec->check_begin,
        .handlers = spec->handlers,
        .log = log,
    };
    return config;
}

/* Runs actor until SIGINT or SIGTERM, then destroys it; the exit code of a clean stop. */
static int
s_wait (zactor_t **actor_p, cv_log_t *log)
{
    int signal_number = cv_actor_wait_signal ();
    cv_log_info (log, "stopping on %s", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    zactor_destroy (actor_p);
    cv_log_info (log, "stopped");
    return 0;
}

/* Loads settings, printing an error to stderr; 0 to go on, else the exit code in *rc. */
static int
s_load (cv_settings_t *settings, const char *program, int argc, char **argv, int *rc)
{
    cv_error_t err;
    int loaded = cv_settings_load (settings, argc, argv, &err);
    if (loaded < 0)
        fprintf (stderr, "%s: %s\n", program, err.message);
    *rc = loaded < 0 ? 1 : 0;
    return loaded;
}

int
cv_launcher_run (const cv_launcher_spec_t *spec, int argc, char **argv)
{
    assert (spec && spec->service);
    cv_actor_hold_signals (); /* before any thread exists */
    /* The standard rows, the LLM's (every worker may be given one), then the service's own. */
    size_t llm_count = cv_llm_config_settings_count;
    size_t count = STANDARD_COUNT + llm_count + spec->extra_count;
    cv_setting_t *table = cv_calloc (count, sizeof *table);
    memcpy (table, s_standard, sizeof s_standard);
    memcpy (table + STANDARD_COUNT, cv_llm_config_settings, llm_count * sizeof *table);
    table[CONTROL_ENDPOINT].fallback = spec->default_control_endpoint;
    /* The default capacity is this machine's: --help says how much and why. */
    uint32_t cpus = cv_launcher_cpus ();
    char capacity[16], capacity_help[320];
    snprintf (capacity, sizeof capacity, "%u", cv_launcher_default_capacity (spec, cpus));
    snprintf (capacity_help, sizeof capacity_help,
              "requests handled at once (%s); by default %u per CPU (%u here), at most %u%s%s",
              spec->begin ? "on an event loop" : "handler threads", s_per_cpu (spec), cpus, s_capacity_max (spec),
              spec->capacity_why ? ": " : "", spec->capacity_why ? spec->capacity_why : "");
    table[CAPACITY].fallback = capacity;
    table[CAPACITY].max = s_capacity_max (spec);
    table[CAPACITY].help = capacity_help;
    if (spec->extra_count)
        memcpy (table + STANDARD_COUNT + llm_count, spec->extra_settings, spec->extra_count * sizeof *table);

    char program[64];
    snprintf (program, sizeof program, "conveyor-%s", spec->service);
    cv_settings_t *settings = cv_settings_new (program, spec->summary, table, count);
    cv_error_t err;
    int rc;
    if (s_load (settings, program, argc, argv, &rc)) {
        cv_settings_destroy (&settings);
        free (table);
        return rc;
    }

    char instance[128];
    const char *configured = cv_settings_string (settings, "instance");
    if (configured && *configured)
        snprintf (instance, sizeof instance, "%s", configured);
    else {
        char host[64] = "host";
        gethostname (host, sizeof host);
        host[sizeof host - 1] = '\0';
        snprintf (instance, sizeof instance, "%s-%s-%d", spec->service, host, (int) getpid ());
    }
    cv_log_t *log = s_log_new (spec->service, instance, settings);
    cv_settings_log (settings, log);

    rc = 1;
    cv_config_t *agent = NULL;
    const char *listen = cv_settings_string (settings, "metrics-listen");
    cv_metrics_http_t *metrics = NULL;
    /* on this thread, before the worker's exist (cv_http_global_init says why) */
    if (spec->http_client && cv_http_global_init (&err))
        cv_log_error (log, "%s", err.message);
    else if (!(agent = cv_config_load (cv_settings_string (settings, "agent-file"), &err)))
        cv_log_error (log, "cannot load the agent file: %s", err.message);
    else if (listen && *listen && !(metrics = cv_metrics_http_new (listen, cv_metrics_process (), log, &err)))
        cv_log_error (log, "cannot serve metrics: %s", err.message);
    else {
        cv_launcher_args_t args = {.agent = agent, .settings = settings};
        cv_worker_config_t config = cv_launcher_worker_config (spec, &args, log);
        config.broker_endpoint = cv_settings_string (settings, "broker-endpoint");
        config.control_endpoint = cv_settings_string (settings, "control-endpoint");
        config.instance = instance;
        config.capacity = (uint32_t) cv_settings_int (settings, "capacity");
        config.heartbeat_ms = (int) cv_settings_int (settings, "heartbeat-ms");
        config.liveness = (int) cv_settings_int (settings, "liveness");
        zactor_t *worker = cv_worker_start (&config, &err);
        const char *control = config.control_endpoint;
        if (!worker && control && spec->default_control_endpoint && streq (control, spec->default_control_endpoint)) {
            /* A second copy on the same host, with nothing configured: any free port will do. */
            cv_log_warn (log, "%s; answering probes on a free port instead", err.message);
            config.control_endpoint = "tcp://127.0.0.1:*";
            worker = cv_worker_start (&config, &err);
        }
        if (!worker)
            cv_log_error (log, "cannot start: %s", err.message);
        else {
            /* The service keeps what it needs of the agent file (shared_new copies it), so the
               document goes now, and the memory that loading used back to the system: a worker
               runs for long, and its resident memory is what it serves with. */
            cv_config_destroy (&agent);
            args.agent = NULL;
#ifdef __GLIBC__
            malloc_trim (0);
#endif
            rc = s_wait (&worker, log);
        }
    }
    cv_metrics_http_destroy (&metrics);
    cv_config_destroy (&agent);
    cv_log_destroy (&log);
    cv_settings_destroy (&settings);
    free (table);
    return rc;
}

int
cv_launcher_serve (const cv_launcher_service_t *spec, int argc, char **argv)
{
    assert (spec && spec->service && spec->start && spec->config_size);
    cv_actor_hold_signals (); /* before any thread exists */
    cv_setting_t *table = cv_calloc (spec->field_count ? spec->field_count : 1, sizeof *table);
    for (size_t i = 0; i < spec->field_count; i++)
        table[i] = spec->fields[i].setting;
    char program[64];
    snprintf (program, sizeof program, "conveyor-%s", spec->service);
    cv_settings_t *settings = cv_settings_new (program, spec->summary, table, spec->field_count);
    void *config = cv_calloc (1, spec->config_size);
    cv_error_t err;
    int rc;
    if (s_load (settings, program, argc, argv, &rc) == 0) {
        cv_settings_bind (settings, spec->fields, spec->field_count, config);
        if (spec->prepare && spec->prepare (config, settings, &err)) {
            fprintf (stderr, "%s: %s\n", program, err.message);
            rc = 1;
        } else {
            cv_log_t *log = s_log_new (spec->service, cv_settings_string (settings, "instance"), settings);
            cv_settings_log (settings, log);
            zactor_t *actor = spec->start (config, log, &err);
            if (actor)
                rc = s_wait (&actor, log);
            else {
                cv_log_error (log, "cannot start: %s", err.message);
                rc = 1;
            }
            cv_log_destroy (&log);
        }
    }
    free (config);
    cv_settings_destroy (&settings);
    free (table);
    return rc;
}

/*  --------------------------------------------------------------------------
    Self-test: default capacities, a worker's configuration from a spec, and a service that is not
    a worker run through its settings to a signal. */

typedef struct {
    const char *instance;
    const char *greeting;
    int tries;
    bool verbose;
} s_test_config_t;

static const cv_setting_field_t s_test_fields[] = {
    {{"instance", CV_SETTING_STRING, "launcher-test", 0, 0, "the instance"},
     CV_SETTING_FIELD (s_test_config_t, instance, const char *)},
    {{"greeting", CV_SETTING_STRING, "hello", 0, 0, "what the actor is told"},
     CV_SETTING_FIELD (s_test_config_t, greeting, const char *)},
    {{"tries", CV_SETTING_INT, "3", 1, 9, "a bounded number"}, CV_SETTING_FIELD (s_test_config_t, tries, int)},
    {{"verbose", CV_SETTING_BOOL, "false", 0, 0, "log debug events"},
     CV_SETTING_FIELD (s_test_config_t, verbose, bool)},
};

static int s_test_started; /* actors the service's start made */

static int
s_test_prepare (void *config, const cv_settings_t *settings, cv_error_t *err)
{
    (void) settings;
    const s_test_config_t *test = config;
    if (streq (test->greeting, "refused"))
        return cv_error_set (err, CV_ERR_INVALID, "greeting", "--greeting: refused is refused");
    return 0;
}

static void
s_test_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    cv_actor_ready (pipe);
    cv_actor_wait_term (pipe);
}

/* Starts an actor that serves, with SIGTERM already pending, so that the launcher's wait ends at
   once; or fails when the greeting says so. */
static zactor_t *
s_test_start (void *config, cv_log_t *log, cv_error_t *err)
{
    (void) log;
    const s_test_config_t *test = config;
    assert (test->tries >= 1 && test->tries <= 9);
    if (streq (test->greeting, "fail")) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "cannot start: told to fail");
        return NULL;
    }
    zactor_t *actor = cv_actor_start (s_test_actor, NULL, err);
    assert (actor);
    s_test_started++;
    pthread_kill (pthread_self (), SIGTERM);
    return actor;
}

static int
s_test_serve (const char *first, const char *second)
{
    static const cv_launcher_service_t spec = {
        .service = "launcher-test",
        .summary = "the launcher's self-test service",
        .fields = s_test_fields,
        .field_count = sizeof s_test_fields / sizeof s_test_fields[0],
        .config_size = sizeof (s_test_config_t),
        .prepare = s_test_prepare,
        .start = s_test_start,
    };
    char *argv[] = {"conveyor-launcher-test", (char *) first, (char *) second, NULL};
    int argc = second ? 3 : first ? 2 : 1;
    return cv_launcher_serve (&spec, argc, argv);
}

static int
s_test_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply, cv_error_t *err)
{
    (void) logic, (void) request, (void) arena, (void) reply, (void) err;
    return 0;
}

void
cv_launcher_test (bool verbose)
{
    /* the CPUs: at least one, at most what the machine has online */
    uint32_t cpus = cv_launcher_cpus ();
    long online = sysconf (_SC_NPROCESSORS_ONLN);
    cv_assert_that (cpus >= 1 && (online <= 0 || cpus <= (uint32_t) online), "%u CPUs of %ld online", cpus, online);

    /* the default capacity: per CPU (1 when unset), within 1..capacity_max (the setting's limit
       when unset or above it) */
    cv_launcher_spec_t spec = {.service = "launcher-test", .summary = "the launcher's self-test worker"};
    assert (cv_launcher_default_capacity (&spec, 4) == 4);
    assert (cv_launcher_default_capacity (&spec, 0) == 1);
    spec.capacity_per_cpu = 8;
    assert (cv_launcher_default_capacity (&spec, 2) == 16);
    assert (cv_launcher_default_capacity (&spec, 100) == CV_LAUNCHER_CAPACITY_MAX);
    spec.capacity_max = 10;
    assert (cv_launcher_default_capacity (&spec, 2) == 10);
    assert (cv_launcher_default_capacity (&spec, 1) == 8);
    spec.capacity_max = CV_LAUNCHER_CAPACITY_MAX * 2;
    assert (cv_launcher_default_capacity (&spec, 1000) == CV_LAUNCHER_CAPACITY_MAX);

    /* a worker's configuration: the spec's service, body and callbacks, with the args and log */
    spec.request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST;
    spec.handle = s_test_handle;
    cv_launcher_args_t args = {0};
    cv_log_t *log = cv_log_new ("launcher-test", "launcher-test-1", false);
    cv_worker_config_t config = cv_launcher_worker_config (&spec, &args, log);
    assert (streq (config.service, "launcher-test"));
    assert (config.request_body == CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST);
    assert (config.handle == s_test_handle && !config.check && !config.shared_new && !config.logic_new);
    assert (config.shared_args == &args && config.log == log);
    assert (!config.broker_endpoint && !config.control_endpoint && config.capacity == 0);
    cv_log_destroy (&log);

    /* a worker whose settings are refused, or whose agent file is missing, exits with 1 */
    sigset_t before;
    pthread_sigmask (SIG_SETMASK, NULL, &before);
    char *bad_capacity[] = {"conveyor-launcher-test", "--capacity", "0", NULL};
    assert (cv_launcher_run (&spec, 3, bad_capacity) == 1);
    char *no_agent[] = {"conveyor-launcher-test", "--agent-file", "/nonexistent/agent.yaml", NULL};
    assert (cv_launcher_run (&spec, 3, no_agent) == 1);

    /* a service: --help exits with 0 without starting, a refused setting or a failed prepare or
       start with 1, and a started service stops on SIGTERM with 0 */
    assert (s_test_serve ("--help", NULL) == 0);
    assert (s_test_started == 0);
    assert (s_test_serve ("--tries", "10") == 1);
    assert (s_test_serve ("--unknown", "x") == 1);
    assert (s_test_serve ("--greeting", "refused") == 1);
    assert (s_test_serve ("--greeting", "fail") == 1);
    assert (s_test_started == 0);
    assert (s_test_serve (NULL, NULL) == 0);
    assert (s_test_started == 1);
    assert (s_test_serve ("--tries", "9") == 0);
    assert (s_test_started == 2);

    pthread_sigmask (SIG_SETMASK, &before, NULL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    if (verbose)
        printf ("cv_launcher: ok\n");
}
