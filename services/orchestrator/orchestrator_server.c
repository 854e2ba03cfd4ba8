/* The orchestrator actor: wires the HTTP front door, the broker, the store, the requests in flight,
   the probe endpoint and recovery onto one zloop. */
#include "orchestrator_server.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_actor.h"
#include "cv_alloc.h"
#include "cv_probe.h"
#include "orchestrator_broker.h"
#include "orchestrator_flights.h"
#include "orchestrator_otlp.h"
#include "orchestrator_http.h"
#include "orchestrator_routes.h"
#include "orchestrator_store.h"

#define MAX_BODY_BYTES (64 * 1024)

typedef struct _server_t server_t;

/* The one probe the control endpoint can have open: passed to a worker, or the orchestrator's own. */
typedef struct {
    server_t *server;
    char service[CV_NAME_MAX_BYTES + 1];
    cv_envelope_t *asked; /* the caller's Probe, whose ids the answer carries */
    int64_t started_us;   /* the orchestrator's own: when its store was pinged */
} probe_t;

struct _server_t {
    const orchestrator_config_t *config;
    cv_log_t *log;
    zsock_t *pipe;
    zloop_t *loop;
    orchestrator_broker_t *broker;
    orchestrator_store_t *store;
    orchestrator_flights_t *flights;
    orchestrator_toolcheck_t *toolcheck;
    orchestrator_routes_t routes;
    orchestrator_approvals_t *approvals;
    orchestrator_otlp_t *otlp; /* NULL: traces are not exported */
    orchestrator_http_t *http;
    cv_probe_endpoint_t *control;
    probe_t probe;
    bool recovering;       /* a recovery round is under way */
    bool recovery_started; /* the first round has started */
    size_t recovery_loads; /* ...with this many requests still being loaded */
    bool terminated;
};

/*  --------------------------------------------------------------------------
    Probes: the orchestrator's own, or passed through to a worker */

/* Sends the answer; the endpoint takes the next probe. */
static void
s_probe_answer (server_t *self, cv_envelope_t *reply)
{
    cv_probe_endpoint_answer_envelope (self->control, reply);
    cv_envelope_destroy (&self->probe.asked);
}

/* Keeps the open probe until it is answered. */
static void
s_probe_hold (server_t *self, cv_envelope_t **asked_p, const char *service)
{
    snprintf (self->probe.service, sizeof self->probe.service, "%s", service);
    self->probe.asked = *asked_p;
    *asked_p = NULL;
}

/* The orchestrator's own check: its store answered (outcome NULL) or not. */
static void
s_self_probe_answer (server_t *self, const cv_error_t *outcome)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *answer = cv_envelope_reply_new (arena, self->probe.asked);
    cv_probe_result_set (answer, arena, "orchestrator", self->config->instance, !outcome,
                         outcome ? outcome->message : CV_PROBE_PASSED,
                         (uint32_t) (zclock_usecs () - self->probe.started_us));
    s_probe_answer (self, answer);
    cv_arena_destroy (&arena);
}

/* The canned check's answer: the store's look-up of a request that cannot be there (request ids
   begin "r-") says there is none when the store, its statements and the schema they read are
   what this orchestrator expects. */
static void
s_self_looked_up (void *owner, orchestrator_store_answer_t *answer)
{
    bool expected = !answer->err || (answer->err->code == CV_ERR_INVALID && streq (answer->err->field, "id"));
    s_self_probe_answer ((server_t *) owner, expected ? NULL : answer->err);
}

static void
s_worker_probed (void *owner, cv_envelope_t *reply, const uint8_t *packed, size_t size, uint32_t attempts,
                 const cv_error_t *cause)
{
    server_t *self = ((probe_t *) owner)->server;
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *answer = cv_envelope_reply_new (arena, self->probe.asked);
    if (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT) {
        /* the worker's own result, borrowed: reply outlives the packing */
        *cv_envelope_set_probe_result (answer, arena) = *reply->probe_result;
    } else {
        char detail[CV_DETAIL_MAX_BYTES];
        snprintf (detail, sizeof detail, "%s",
                  !reply ? cause->message
                  : reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR
                      ? reply->error->message
                      : "the worker answered something else than a ProbeResult");
        cv_probe_result_set (answer, arena, self->probe.service, NULL, false, detail, 0);
    }
    s_probe_answer (self, answer);
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);
}

/* A control request (the endpoint reads no other until it is answered). */
static void
s_probe_arrived (void *owner, zframe_t **frame_p)
{
    server_t *self = owner;
    cv_error_t err;
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (*frame_p), zframe_size (*frame_p), &err);
    zframe_destroy (frame_p);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    if (!request
        || cv_envelope_validate (request, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE), (uint64_t) zclock_time (),
                                 &err)) {
        cv_envelope_set_error (reply, arena, &err);
        s_probe_answer (self, reply);
    } else if (!*request->probe->service || streq (request->probe->service, "orchestrator")) {
        /* The canned check: a request looked up through the store, as GET /v1/requests/{id}
           and recovery do, answered when it is. */
        s_probe_hold (self, &request, "orchestrator");
        self->probe.started_us = zclock_usecs ();
        if (!orchestrator_store_available (self->store)) {
            cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "postgresql unavailable: %s",
                          orchestrator_store_last_error (self->store));
            s_self_probe_answer (self, &err);
        } else if (orchestrator_store_load (self->store, "probe-no-such-request", s_self_looked_up, self, &err))
            s_self_probe_answer (self, &err);
    } else {
        const char *service = request->probe->service;
        bool known = false;
        for (const char *const *worker = cv_worker_services; *worker; worker++)
            known |= streq (service, *worker);
        char detail[128];
        if (!known || orchestrator_broker_workers (self->broker, service) == 0) {
            snprintf (detail, sizeof detail, known ? "no live %s worker is connected" : "no service named %s", service);
            cv_probe_result_set (reply, arena, service, NULL, false, detail, 0);
            s_probe_answer (self, reply);
        } else {
            /* Pass the probe to a worker; the REP socket waits for its answer. The caller's
               deadline, when it set one, bounds the worker's answer too. */
            uint64_t deadline = request->deadline_ms ? request->deadline_ms : (uint64_t) zclock_time () + 3000;
            cv_arena_t *job_arena = cv_arena_new ();
            cv_envelope_t *probe = cv_envelope_new (job_arena, "", "", deadline, 1);
            cv_envelope_set_probe (probe, job_arena)->service = cv_arena_strdup (job_arena, service);
            char job_id[40];
            cv_envelope_random_hex (job_id, 17);
            s_probe_hold (self, &request, service);
            orchestrator_broker_submit (self->broker, self->probe.service, job_id, &job_arena, probe, 0,
                                        s_worker_probed, &self->probe);
        }
    }
    cv_envelope_destroy (&request);
    cv_arena_destroy (&arena);
}

/*  --------------------------------------------------------------------------
    Recovery: continue requests left running, within the in-flight limit */

static void
s_recovery_loaded (void *owner, orchestrator_store_answer_t *answer)
{
    server_t *self = owner;
    self->recovery_loads--;
    self->recovering = self->recovery_loads > 0;
    if (!answer->request) {
        cv_log_error (self->log, "cannot resume a request: %s", answer->err->message);
        return;
    }
    /* Listed as running, but it ended (and was forgotten) before its load came back: the list
       and the load are two statements. Nothing is left to do; resuming it would write it again.
       (A row still running always lacks a checkpoint or its failure: the last checkpoint and a
       failure mark the row in the same statement.) */
    if (orchestrator_request_finished (answer->request))
        return;
    if (!orchestrator_flights_has (self->flights, orchestrator_request_id (answer->request)))
        orchestrator_flights_resume (self->flights, &answer->request);
}

static void
s_recovery_listed (void *owner, orchestrator_store_answer_t *answer)
{
    server_t *self = owner;
    if (!answer->ids) {
        cv_log_warn (self->log, "cannot look for unfinished requests: %s", answer->err->message);
        self->recovering = false;
        return;
    }
    for (const char **id = answer->ids; *id; id++) {
        cv_error_t err;
        if (orchestrator_flights_has (self->flights, *id))
            continue;
        if (orchestrator_store_load (self->store, *id, s_recovery_loaded, self, &err))
            cv_log_event (self->log, CV_LOG_WARN, *id, NULL, "cannot resume yet: %s", err.message);
        else
            self->recovery_loads++;
    }
    self->recovering = self->recovery_loads > 0;
}

/* One round: the oldest unfinished requests, as many as the in-flight limit leaves room for
   (those in memory count: they are skipped, the rest wait for the next round). */
static void
s_recover (server_t *self)
{
    size_t in_flight = orchestrator_flights_size (self->flights);
    size_t limit = (size_t) self->config->max_in_flight;
    if (self->recovering || in_flight >= limit || !orchestrator_store_available (self->store))
        return;
    cv_error_t err;
    if (orchestrator_store_unfinished (self->store, limit, s_recovery_listed, self, &err) == 0)
        self->recovering = self->recovery_started = true;
}

/* Tries the first round soon after start, until the store takes it. */
static int
s_first_recovery (zloop_t *loop, int timer_id, void *arg)
{
    server_t *self = arg;
    s_recover (self);
    if (self->recovery_started)
        zloop_timer_end (loop, timer_id);
    return 0;
}

static int
s_recovery_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_recover ((server_t *) arg);
    return 0;
}

/*  --------------------------------------------------------------------------
    The actor */

static int
s_pipe_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    server_t *self = arg;
    char *command = zstr_recv (reader);
    if (!command)
        return -1;
    int rc = 0;
    if (streq (command, "$TERM")) {
        self->terminated = true;
        rc = -1;
    } else if (streq (command, "HTTP"))
        zstr_sendf (reader, "%d", orchestrator_http_port (self->http));
    else if (streq (command, "BROKER"))
        zstr_send (reader, orchestrator_broker_endpoint (self->broker));
    else if (streq (command, "CONTROL"))
        zstr_send (reader, cv_probe_endpoint_bound (self->control));
    else
        cv_log_warn (self->log, "unknown pipe command %s", command);
    zstr_free (&command);
    return rc;
}

static int
s_server_init (server_t *self, cv_error_t *err)
{
    const orchestrator_config_t *config = self->config;
    self->loop = zloop_new ();
    self->probe.server = self;

    orchestrator_broker_config_t broker = {
        .endpoint = config->broker_endpoint,
        .heartbeat_ms = config->heartbeat_ms,
        .liveness = config->liveness,
        .attempt_timeout_ms = config->attempt_timeout_ms,
        .max_attempts = (uint32_t) config->max_attempts,
        .backoff_ms = 50,
        .log = self->log,
    };
    self->broker = orchestrator_broker_new (self->loop, &broker, err);
    if (!self->broker)
        return -1;
    self->control = cv_probe_endpoint_new (self->loop, config->control_endpoint, s_probe_arrived, self, err);
    if (!self->control)
        return -1;

    /* The schema first, while nothing is served and before the store's connections start their
       clocks: the one blocking statement. */
    cv_error_t migrate_err;
    if (orchestrator_store_migrate (config->database_url, config->instance, &migrate_err))
        cv_log_warn (self->log, "cannot migrate the database yet: %s", migrate_err.message);
    orchestrator_store_config_t store = {.url = config->database_url,
                                         .application_name = config->instance,
                                         .connections = (size_t) config->store_connections,
                                         .timeout_ms = config->store_timeout_ms,
                                         .log = self->log};
    self->store = orchestrator_store_new (self->loop, &store);

    if (config->otlp_url && *config->otlp_url && !cv_trace_recording ())
        cv_log_warn (self->log, "telemetry off: traces are not exported to %s", config->otlp_url);
    else if (config->otlp_url && *config->otlp_url) {
        orchestrator_otlp_config_t otlp = {.url = config->otlp_url, .instance = config->instance};
        self->otlp = orchestrator_otlp_new (self->loop, &otlp, self->log, err);
        if (!self->otlp)
            return -1;
        cv_log_info (self->log, "exporting traces to %s", config->otlp_url);
    }
    orchestrator_flights_config_t flights = {.durability = config->durability,
                                             .request_timeout_ms = config->request_timeout_ms,
                                             .reply_reserve_ms = config->reply_reserve_ms,
                                             .exporter = self->otlp};
    self->flights = orchestrator_flights_new (self->loop, &flights, self->broker, self->store, self->log);
    self->toolcheck = orchestrator_toolcheck_new (self->broker, config->request_timeout_ms, self->log);
    orchestrator_approvals_config_t approvals = {.operator_token = config->operator_token,
                                                 .expiry_s = config->approval_expiry_s,
                                                 .request_timeout_ms = config->request_timeout_ms};
    self->approvals = orchestrator_approvals_new (self->loop, &approvals, self->flights, self->store, self->log);
    self->routes = (orchestrator_routes_t){
        .flights = self->flights,
        .store = self->store,
        .broker = self->broker,
        .toolcheck = self->toolcheck,
        .approvals = self->approvals,
        .log = self->log,
        .max_in_flight = (size_t) config->max_in_flight,
        .max_queued = (size_t) config->max_queued,
        .request_timeout_ms = config->request_timeout_ms,
        .limits = config->limits,
        .chat = {.model = config->chat_model ? config->chat_model : ORCHESTRATOR_CHAT_MODEL,
                 .user_header =
                     config->chat_user_header && *config->chat_user_header ? config->chat_user_header : NULL}};
    self->http = orchestrator_http_new (self->loop, config->http_address, config->http_port, MAX_BODY_BYTES,
                                        orchestrator_routes_handle, &self->routes, self->log, err);
    if (!self->http)
        return -1;
    zloop_reader (self->loop, self->pipe, s_pipe_readable, self);
    zloop_timer (self->loop, (size_t) config->recovery_interval_ms, 0, s_recovery_timer, self);
    /* The first round as soon as the store is up, then every recovery interval. */
    zloop_timer (self->loop, 50, 0, s_first_recovery, self);
    return 0;
}

static void
s_server_actor (zsock_t *pipe, void *args)
{
    server_t *self = cv_calloc (1, sizeof *self);
    self->config = args;
    self->log = self->config->log;
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    if (s_server_init (self, &err) == 0) {
        cv_actor_ready (pipe);
        cv_log_info (self->log, "serving HTTP on %s:%d, broker %s, control %s, durability %s",
                     self->config->http_address, orchestrator_http_port (self->http),
                     orchestrator_broker_endpoint (self->broker), cv_probe_endpoint_bound (self->control),
                     orchestrator_durability_name (self->config->durability));
        zloop_start (self->loop);
    } else
        cv_actor_failed (pipe, &err);

    /* An orderly stop: what waits on the store hears it will not be answered, then every request
       in flight tells its clients what becomes of it, then what is left open gets 503; only then
       do the flights, the store and the broker go. */
    if (self->store)
        orchestrator_store_abort (self->store, "the orchestrator is stopping");
    if (self->flights)
        orchestrator_flights_stop (self->flights);
    orchestrator_http_destroy (&self->http);
    orchestrator_flights_destroy (&self->flights);
    orchestrator_otlp_destroy (&self->otlp);
    orchestrator_toolcheck_destroy (&self->toolcheck);
    orchestrator_approvals_destroy (&self->approvals);
    cv_envelope_destroy (&self->probe.asked);
    orchestrator_store_destroy (&self->store);
    orchestrator_broker_destroy (&self->broker);
    cv_probe_endpoint_destroy (&self->control);
    zloop_destroy (&self->loop);
    if (!self->terminated)
        cv_actor_wait_term (pipe);
    free (self);
}

zactor_t *
orchestrator_server_start (const orchestrator_config_t *config, cv_error_t *err)
{
    assert (config && config->log && config->database_url);
    return cv_actor_start (s_server_actor, (void *) config, err);
}
