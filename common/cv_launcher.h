/* The launcher every service's main.c calls, keeping each to one call. For a worker
   (cv_launcher_run): reads the standard worker settings (plus the service's own), loads the agent
   file, starts the cv_worker actor and runs it until SIGINT or SIGTERM. For a service that is not
   a worker (cv_launcher_serve, the orchestrator): reads its settings, bound to the fields of its
   configuration struct, and runs its actor the same way.

   Standard settings (flag / environment variable / default):
     --broker-endpoint   CONVEYOR_BROKER_ENDPOINT   tcp://127.0.0.1:5555
     --control-endpoint  CONVEYOR_CONTROL_ENDPOINT  the service's default, e.g. tcp://127.0.0.1:5561;
                                                    when that default is taken (a second copy on
                                                    the host), a free port, logged
     --instance          CONVEYOR_INSTANCE          SERVICE-HOSTNAME-PID
     --capacity          CONVEYOR_CAPACITY          the service's capacity_per_cpu times the CPUs this
                                                    process may run on, at most its capacity_max
                                                    (requests served at once: handler threads
                                                    of a blocking service)
     --heartbeat-ms      CONVEYOR_HEARTBEAT_MS      1000
     --liveness          CONVEYOR_LIVENESS          3
     --agent-file        CONVEYOR_AGENT_FILE        deploy/config/bank-agent.yaml
     --verbose           CONVEYOR_VERBOSE           false
     --metrics-listen    CONVEYOR_METRICS_LISTEN    none: where GET /metrics answers (cv_metrics_http),
                                                    HOST:PORT
     --log-personal-data CONVEYOR_LOG_PERSONAL_DATA false: e-mail addresses, phone numbers, IBANs and
                                                    card numbers in log messages are written as
                                                    [email], [phone], [iban], [card] (cv_log_redact);
                                                    the orchestrator has the setting too
     --llm-base-url      CONVEYOR_LLM_BASE_URL      none (the agent file's llm.base_url)
     --llm-model         CONVEYOR_LLM_MODEL         none (the agent file's llm.model)
                                                    (cv_llm_config_settings; a service that uses
                                                    an LLM reads them with
                                                    cv_llm_config_apply_settings) */
#ifndef CV_LAUNCHER_H
#define CV_LAUNCHER_H

#include "cv_config.h"
#include "cv_settings.h"
#include "cv_worker.h"

#define CV_LAUNCHER_CAPACITY_MAX 64 /* the capacity setting's upper limit for a blocking service */

/* What a service's shared_new receives as shared_args. The launcher frees the agent file once
   the worker serves: shared_new copies what it keeps. */
typedef struct {
    cv_config_t *agent;      /* the parsed agent file */
    cv_settings_t *settings; /* standard and extra settings, effective values */
} cv_launcher_args_t;

typedef struct {
    const char *service;
    const char *summary; /* one line for --help */
    cv_body_t request_body;
    cv_worker_shared_new_fn *shared_new;
    cv_worker_shared_destroy_fn *shared_destroy;
    cv_worker_logic_destroy_fn *logic_destroy;
    /* blocking (cv_worker.h): */
    cv_worker_logic_new_fn *logic_new;
    cv_worker_handle_fn *handle;
    cv_worker_check_fn *check;
    /* or on an event loop: */
    cv_worker_loop_logic_new_fn *loop_logic_new;
    cv_worker_begin_fn *begin;
    cv_worker_begin_fn *check_begin;
    uint32_t handlers; /* event-loop threads, 0 for 1 */
    /* The default capacity: capacity_per_cpu requests per CPU, at most capacity_max (0: the
       setting's limit, CV_LAUNCHER_CAPACITY_MAX handler threads for a blocking service,
       CV_MDP_MAX_CAPACITY for one on an event loop), for the reason capacity_why gives in --help
       ("it mostly waits on PostgreSQL"). */
    uint32_t capacity_per_cpu;
    uint32_t capacity_max;
    const char *capacity_why;
    const char *default_control_endpoint;
    const cv_setting_t *extra_settings; /* the service's own, may be NULL */
    size_t extra_count;
    bool http_client; /* makes HTTP calls (cv_http, cv_llm): libcurl is set up on the main thread */
} cv_launcher_spec_t;

/* A worker configuration for spec: its service, body and callbacks, with args and log; the
   endpoints, instance, capacity and timings are left for the caller (tests use the harness's). */
cv_worker_config_t cv_launcher_worker_config (const cv_launcher_spec_t *spec, cv_launcher_args_t *args, cv_log_t *log);

/* The CPUs this process may run on (its affinity mask, as taskset and cpusets set it), else the
   online CPUs; at least 1. */
uint32_t cv_launcher_cpus (void);

/* spec's default capacity on a machine of cpus CPUs: capacity_per_cpu (1 when 0) per CPU, within
   1..capacity_max (CV_LAUNCHER_CAPACITY_MAX when 0). */
uint32_t cv_launcher_default_capacity (const cv_launcher_spec_t *spec, uint32_t cpus);

/* Runs the worker; returns the process exit code (0 after a clean stop, 1 on bad settings or a
   failed start, with the reason logged). */
int cv_launcher_run (const cv_launcher_spec_t *spec, int argc, char **argv);

/* Checks the bound configuration and fills what the table cannot (an enum from its name);
   0, or -1 with err, a message for the command line. */
typedef int (cv_launcher_prepare_fn) (void *config, const cv_settings_t *settings, cv_error_t *err);
/* Starts the service's actor on config (which outlives it) with log (borrowed); NULL with err. */
typedef zactor_t *(cv_launcher_start_fn) (void *config, cv_log_t *log, cv_error_t *err);

typedef struct {
    const char *service; /* the log's service; the program is conveyor-SERVICE */
    const char *summary; /* for --help */
    /* The settings, in --help's order, bound to the fields of a configuration struct of
       config_size bytes. "instance" (the log's instance) and "verbose" must be among them. */
    const cv_setting_field_t *fields;
    size_t field_count;
    size_t config_size;
    cv_launcher_prepare_fn *prepare; /* may be NULL */
    cv_launcher_start_fn *start;
} cv_launcher_service_t;

/* Runs a service that is not a worker: settings (--help, environment, limits) from spec's
   fields, bound into a zeroed configuration struct, prepare, the effective settings logged, the
   actor started and run until SIGINT or SIGTERM. Returns the exit code, as cv_launcher_run. */
int cv_launcher_serve (const cv_launcher_service_t *spec, int argc, char **argv);

void cv_launcher_test (bool verbose);

#endif
