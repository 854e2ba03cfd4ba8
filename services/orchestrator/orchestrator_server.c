/* The orchestrator actor: HTTP front door, broker, checkpoint store, probes and request life cycles. */
#include "orchestrator_server.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_actor.h"
#include "cv_worker.h"
#include "orchestrator_api.h"
#include "orchestrator_broker.h"
#include "orchestrator_http.h"
#include "orchestrator_request.h"
#include "orchestrator_store.h"

#define MAX_BODY_BYTES (64 * 1024)

/* What a broker job belongs to: a request in flight, or a probe passed through to a worker. */
typedef enum { OWNER_FLIGHT, OWNER_PROBE } owner_kind_t;

typedef struct _server_t server_t;

typedef struct {
    owner_kind_t kind;
    server_t *server;
    orchestrator_request_t *request;
    zlistx_t *waiters;            /* orchestrator_exchange_t waiting for the answer */
    int64_t started_us;           /* when the request was accepted, for the total */
    int64_t stage_started_us;
} flight_t;

typedef struct {
    owner_kind_t kind;
    server_t *server;
    char service[CV_NAME_MAX_BYTES + 1];
    cv_envelope_t *asked;         /* the caller's Probe, whose ids the answer carries */
} probe_t;

struct _server_t {
    const orchestrator_config_t *config;
    cv_log_t *log;
    zsock_t *pipe;
    zloop_t *loop;
    orchestrator_broker_t *broker;
    orchestrator_http_t *http;
    orchestrator_store_t *store;
    zsock_t *control;
    char *control_endpoint;
    zhashx_t *flights;            /* request id -> flight_t */
    probe_t probe;                /* the one probe a REP socket can have open */
    bool probe_open;
    bool terminated;
};

static const char *s_services[] = {"intent", "gatherer", "decision", "responder"};

/*  --------------------------------------------------------------------------
    Flights: requests in memory and the HTTP exchanges waiting for them */

static void
s_flight_destroy (flight_t **self_p)
{
    flight_t *self = *self_p;
    if (!self)
        return;
    orchestrator_broker_cancel (self->server->broker, self);
    orchestrator_request_destroy (&self->request);
    zlistx_destroy (&self->waiters);
    free (self);
    *self_p = NULL;
}

static flight_t *
s_flight_new (server_t *self, orchestrator_request_t **request_p)
{
    flight_t *flight = calloc (1, sizeof *flight);
    flight->kind = OWNER_FLIGHT;
    flight->server = self;
    flight->request = *request_p;
    *request_p = NULL;
    flight->waiters = zlistx_new ();
    flight->started_us = zclock_usecs ();
    zhashx_insert (self->flights, orchestrator_request_id (flight->request), flight);
    return flight;
}

static void
s_answer_waiters (flight_t *flight, unsigned status, json_t *document)
{
    for (orchestrator_exchange_t *exchange = zlistx_first (flight->waiters); exchange;
         exchange = zlistx_next (flight->waiters))
        orchestrator_http_answer (exchange, status, json_deep_copy (document));
    zlistx_purge (flight->waiters);
    json_decref (document);
}

/* The request reached DONE or FAILED: answer, record a failure, forget it. */
static void
s_finish (server_t *self, flight_t *flight, const cv_error_t *cause)
{
    orchestrator_request_t *request = flight->request;
    orchestrator_request_set_total_ms (request, (double) (zclock_usecs () - flight->started_us) / 1000.0);
    unsigned status = MHD_HTTP_OK;
    if (orchestrator_request_state (request) == REQUEST_FAILED) {
        cv_error_t err;
        if (orchestrator_store_fail (self->store, request, &err))
            cv_log_event (self->log, CV_LOG_ERROR, orchestrator_request_id (request),
                          orchestrator_request_trace_id (request), "cannot record the failure: %s", err.message);
        status = cause && cause->code == CV_ERR_DEADLINE_EXCEEDED ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
        cv_log_event (self->log, CV_LOG_WARN, orchestrator_request_id (request), orchestrator_request_trace_id (request),
                      "request failed: %s", orchestrator_request_error (request));
    } else
        cv_log_event (self->log, CV_LOG_INFO, orchestrator_request_id (request), orchestrator_request_trace_id (request),
                      "request done in %.1f ms", (double) (zclock_usecs () - flight->started_us) / 1000.0);
    s_answer_waiters (flight, status, orchestrator_request_to_json (request, false));
    zhashx_delete (self->flights, orchestrator_request_id (request));
}

/* Sends the request's current stage to its service. */
static void
s_send_stage (server_t *self, flight_t *flight)
{
    orchestrator_request_t *request = flight->request;
    orchestrator_state_t state = orchestrator_request_state (request);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = orchestrator_request_stage_envelope (request, arena);
    assert (envelope);
    char job_id[CV_NAME_MAX_BYTES + 1];
    snprintf (job_id, sizeof job_id, "%s.%s", orchestrator_request_id (request), orchestrator_request_stage_name (state));
    flight->stage_started_us = zclock_usecs ();
    /* The envelope borrows earlier results; the broker packs it before they could change. */
    orchestrator_broker_submit (self->broker, orchestrator_request_service (state), job_id, &arena, envelope, flight);
}

static void
s_flight_done (server_t *self, flight_t *flight, cv_envelope_t *reply, const cv_error_t *cause)
{
    orchestrator_request_t *request = flight->request;
    cv_error_t err;
    if (!reply) {
        orchestrator_request_fail (request, cause->message);
        s_finish (self, flight, cause);
        return;
    }
    int stage = (int) orchestrator_request_state (request);
    if (orchestrator_request_accept (request, &reply, zclock_usecs () - flight->stage_started_us, &err)) {
        s_finish (self, flight, &err);
        return;
    }
    /* Write-ahead: the result is durable before the next stage leaves. */
    if (orchestrator_store_checkpoint (self->store, request, stage, &err)) {
        cv_log_event (self->log, CV_LOG_ERROR, orchestrator_request_id (request), orchestrator_request_trace_id (request),
                      "cannot checkpoint %s: %s; the request resumes when PostgreSQL is back",
                      orchestrator_request_stage_name ((orchestrator_state_t) stage), err.message);
        json_t *document = json_pack ("{s:{s:s, s:s}, s:s, s:s}", "error", "code", "store_unavailable", "message",
                                      "the checkpoint store is unavailable; the request will resume", "request_id",
                                      orchestrator_request_id (request), "status", "running");
        s_answer_waiters (flight, MHD_HTTP_SERVICE_UNAVAILABLE, document);
        zhashx_delete (self->flights, orchestrator_request_id (request));
        return;
    }
    if (orchestrator_request_finished (request))
        s_finish (self, flight, NULL);
    else
        s_send_stage (self, flight);
}

/*  --------------------------------------------------------------------------
    Probes through the orchestrator */

static int s_control_readable (zloop_t *loop, zsock_t *reader, void *arg);

static void
s_probe_answer (server_t *self, cv_envelope_t *reply)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    zframe_t *frame = zframe_new (packed, size);
    free (packed);
    zframe_send (&frame, self->control, 0);
    if (self->probe_open) {
        self->probe_open = false;
        zloop_reader (self->loop, self->control, s_control_readable, self);
    }
}

static int
s_self_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    server_t *self = logic;
    if (orchestrator_store_ping (self->store, err))
        return -1;
    return 0;
}

/* A ProbeResult that says the service could not be probed. */
static void
s_probe_failed (server_t *self, cv_envelope_t *reply, cv_arena_t *arena, const char *service, const char *detail)
{
    Conveyor__V1__ProbeResult *result = cv_arena_alloc (arena, sizeof *result);
    conveyor__v1__probe_result__init (result);
    result->service = cv_arena_strdup (arena, service);
    result->instance = "";
    result->version = CONVEYOR_VERSION;
    result->ok = false;
    result->detail = cv_arena_strdup (arena, detail);
    reply->body_case = CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT;
    reply->probe_result = result;
}

static void
s_probe_done (server_t *self, cv_envelope_t *reply, const cv_error_t *cause)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *answer = cv_envelope_reply_new (arena, self->probe.asked);
    if (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT) {
        answer->body_case = reply->body_case;
        answer->probe_result = reply->probe_result;
    } else {
        char detail[CV_DETAIL_MAX_BYTES];
        snprintf (detail, sizeof detail, "%s", !reply ? cause->message
                                               : reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR
                                                   ? reply->error->message
                                                   : "the worker answered something else than a ProbeResult");
        s_probe_failed (self, answer, arena, self->probe.service, detail);
    }
    s_probe_answer (self, answer);
    cv_envelope_destroy (&self->probe.asked);
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);
}

static int
s_control_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    server_t *self = arg;
    zframe_t *frame = zframe_recv (reader);
    if (!frame)
        return 0;
    cv_error_t err;
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    zframe_destroy (&frame);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    if (!request || cv_envelope_validate (request, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE), (uint64_t) zclock_time (), &err)) {
        cv_envelope_set_error (reply, arena, &err);
        s_probe_answer (self, reply);
    } else if (!*request->probe->service || streq (request->probe->service, "orchestrator")) {
        cv_worker_probe_reply ("orchestrator", self->config->instance, s_self_check, self, arena, reply);
        s_probe_answer (self, reply);
    } else {
        const char *service = request->probe->service;
        bool known = false;
        for (size_t i = 0; i < sizeof s_services / sizeof *s_services; i++)
            known |= streq (service, s_services[i]);
        char detail[128];
        if (!known || orchestrator_broker_workers (self->broker, service) == 0) {
            snprintf (detail, sizeof detail, known ? "no live %s worker is connected" : "no service named %s",
                      service);
            s_probe_failed (self, reply, arena, service, detail);
            s_probe_answer (self, reply);
        } else {
            /* Pass the probe to a worker; the REP socket waits for its answer. */
            snprintf (self->probe.service, sizeof self->probe.service, "%s", service);
            self->probe_open = true;
            zloop_reader_end (loop, self->control);
            /* The caller's deadline, when it set one, bounds the worker's answer too. */
            uint64_t deadline = request->deadline_ms ? request->deadline_ms : (uint64_t) zclock_time () + 3000;
            cv_arena_t *job_arena = cv_arena_new ();
            cv_envelope_t *probe = cv_envelope_new (job_arena, "", "", deadline, 1);
            Conveyor__V1__Probe *body = cv_arena_alloc (job_arena, sizeof *body);
            conveyor__v1__probe__init (body);
            body->service = cv_arena_strdup (job_arena, service);
            probe->body_case = CONVEYOR__V1__ENVELOPE__BODY_PROBE;
            probe->probe = body;
            char job_id[40];
            cv_envelope_random_hex (job_id, 17);
            orchestrator_broker_submit (self->broker, service, job_id, &job_arena, probe, &self->probe);
            self->probe.asked = request;
            request = NULL;
        }
    }
    cv_envelope_destroy (&request);
    cv_arena_destroy (&arena);
    return 0;
}

static void
s_job_done (void *owner, cv_envelope_t *reply, const cv_error_t *err)
{
    owner_kind_t kind = *(owner_kind_t *) owner;
    if (kind == OWNER_PROBE) {
        probe_t *probe = owner;
        s_probe_done (probe->server, reply, err);
    } else {
        flight_t *flight = owner;
        s_flight_done (flight->server, flight, reply, err);
    }
}

/*  --------------------------------------------------------------------------
    Recovery: continue requests left running */

static void
s_recover (server_t *self)
{
    cv_error_t err;
    char **ids = orchestrator_store_unfinished (self->store, &err);
    if (!ids) {
        cv_log_warn (self->log, "cannot look for unfinished requests: %s", err.message);
        return;
    }
    for (char **id = ids; *id; id++) {
        if (!zhashx_lookup (self->flights, *id)) {
            orchestrator_request_t *request = orchestrator_store_load (self->store, *id, &err);
            if (!request)
                cv_log_event (self->log, CV_LOG_ERROR, *id, NULL, "cannot resume: %s", err.message);
            else if (orchestrator_request_finished (request)) {
                /* Every stage was checkpointed but the status was not updated: finish the record. */
                if (orchestrator_store_checkpoint (self->store, request, REQUEST_RESPOND, &err))
                    cv_log_event (self->log, CV_LOG_ERROR, *id, NULL, "cannot close: %s", err.message);
                orchestrator_request_destroy (&request);
            } else {
                orchestrator_request_set_deadline (request,
                                                   (uint64_t) zclock_time () + (uint64_t) self->config->request_timeout_ms);
                cv_log_event (self->log, CV_LOG_INFO, *id, orchestrator_request_trace_id (request),
                              "resuming at stage %s", orchestrator_request_stage_name (orchestrator_request_state (request)));
                flight_t *flight = s_flight_new (self, &request);
                s_send_stage (self, flight);
            }
        }
        free (*id);
    }
    free (ids);
}

static int
s_recovery_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_recover ((server_t *) arg);
    return 0;
}

/*  --------------------------------------------------------------------------
    HTTP routes */

static void
s_post_request (server_t *self, orchestrator_exchange_t *exchange, json_t *body)
{
    orchestrator_submission_t submission;
    cv_error_t err;
    if (!body) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_json", "a JSON body is required");
        return;
    }
    if (orchestrator_api_parse_submission (body, &submission, &err)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_field", "%s", err.message);
        return;
    }
    if (zhashx_size (self->flights) >= (size_t) self->config->max_in_flight) {
        orchestrator_http_add_header (exchange, "Retry-After", "1");
        orchestrator_http_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                        "%zu requests in flight; retry shortly", zhashx_size (self->flights));
        return;
    }
    orchestrator_request_t *request = orchestrator_request_new (
        NULL, NULL, submission.user_id, submission.session_id, submission.text, submission.idempotency_key,
        (uint64_t) zclock_time () + (uint64_t) self->config->request_timeout_ms);
    char existing[CV_NAME_MAX_BYTES + 1] = "";
    int created = orchestrator_store_create (self->store, request, existing, sizeof existing, &err);
    if (created < 0) {
        orchestrator_request_destroy (&request);
        cv_log_error (self->log, "cannot record a request: %s", err.message);
        orchestrator_http_add_header (exchange, "Retry-After", "1");
        orchestrator_http_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                                        "the request store is unavailable; nothing was recorded, retry");
        return;
    }
    if (created == 1) {
        /* The same idempotency key again: the first request's answer, not a second run. */
        orchestrator_request_destroy (&request);
        flight_t *running = zhashx_lookup (self->flights, existing);
        if (running) {
            zlistx_add_end (running->waiters, exchange);
            return;
        }
        orchestrator_request_t *first = orchestrator_store_load (self->store, existing, &err);
        if (!first) {
            orchestrator_http_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", "%s",
                                            err.message);
            return;
        }
        unsigned status = orchestrator_request_state (first) == REQUEST_FAILED ? MHD_HTTP_BAD_GATEWAY
                          : orchestrator_request_finished (first)            ? MHD_HTTP_OK
                                                                             : MHD_HTTP_ACCEPTED;
        orchestrator_http_answer (exchange, status, orchestrator_request_to_json (first, false));
        orchestrator_request_destroy (&first);
        return;
    }
    cv_log_event (self->log, CV_LOG_DEBUG, orchestrator_request_id (request), orchestrator_request_trace_id (request),
                  "accepted a request from %s", submission.user_id);
    flight_t *flight = s_flight_new (self, &request);
    zlistx_add_end (flight->waiters, exchange);
    s_send_stage (self, flight);
}

static void
s_get_request (server_t *self, orchestrator_exchange_t *exchange, const char *id)
{
    if (!orchestrator_api_valid_id (id)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no request %s", id);
        return;
    }
    cv_error_t err;
    orchestrator_request_t *request = orchestrator_store_load (self->store, id, &err);
    if (!request) {
        if (err.code == CV_ERR_INVALID)
            orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no request %s", id);
        else
            orchestrator_http_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", "%s",
                                            err.message);
        return;
    }
    orchestrator_http_answer (exchange, MHD_HTTP_OK, orchestrator_request_to_json (request, true));
    orchestrator_request_destroy (&request);
}

static void
s_readyz (server_t *self, orchestrator_exchange_t *exchange)
{
    cv_error_t err;
    bool ready = true;
    json_t *checks = json_object ();
    if (orchestrator_store_ping (self->store, &err)) {
        ready = false;
        json_object_set_new (checks, "postgresql", json_string (err.message));
    } else
        json_object_set_new (checks, "postgresql", json_string ("ok"));
    for (size_t i = 0; i < sizeof s_services / sizeof *s_services; i++) {
        size_t workers = orchestrator_broker_workers (self->broker, s_services[i]);
        ready &= workers > 0;
        json_object_set_new (checks, s_services[i], json_integer ((json_int_t) workers));
    }
    orchestrator_http_answer (exchange, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                              json_pack ("{s:s, s:o}", "status", ready ? "ready" : "not_ready", "checks", checks));
}

static void
s_route (void *arg, orchestrator_exchange_t *exchange, const char *method, const char *path, json_t *body)
{
    server_t *self = arg;
    bool get = streq (method, "GET"), post = streq (method, "POST");
    const char *prefix = "/v1/requests/";
    if (streq (path, "/healthz") && get)
        orchestrator_http_answer (exchange, MHD_HTTP_OK, json_pack ("{s:s}", "status", "ok"));
    else if (streq (path, "/readyz") && get)
        s_readyz (self, exchange);
    else if (streq (path, "/v1/requests") && post)
        s_post_request (self, exchange, body);
    else if (strncmp (path, prefix, strlen (prefix)) == 0 && get)
        s_get_request (self, exchange, path + strlen (prefix));
    else if (streq (path, "/healthz") || streq (path, "/readyz") || streq (path, "/v1/requests")
             || strncmp (path, prefix, strlen (prefix)) == 0)
        orchestrator_http_answer_error (exchange, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                        "%s is not allowed on %s", method, path);
    else
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no route %s", path);
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
        zstr_send (reader, self->control_endpoint);
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
    self->flights = zhashx_new ();
    zhashx_set_destructor (self->flights, (zhashx_destructor_fn *) s_flight_destroy);
    self->probe.kind = OWNER_PROBE;
    self->probe.server = self;
    self->store = orchestrator_store_new (config->database_url, config->instance);

    orchestrator_broker_config_t broker = {
        .endpoint = config->broker_endpoint,
        .heartbeat_ms = config->heartbeat_ms,
        .liveness = config->liveness,
        .attempt_timeout_ms = config->attempt_timeout_ms,
        .max_attempts = (uint32_t) config->max_attempts,
        .backoff_ms = 50,
        .log = self->log,
    };
    self->broker = orchestrator_broker_new (self->loop, &broker, s_job_done, err);
    if (!self->broker)
        return -1;
    self->control = zsock_new (ZMQ_REP);
    zsock_set_linger (self->control, 0);
    if (zsock_bind (self->control, "%s", config->control_endpoint) < 0)
        return cv_error_set (err, CV_ERR_UNAVAILABLE, "control_endpoint", "cannot bind control endpoint %s: %s",
                             config->control_endpoint, zmq_strerror (zmq_errno ()));
    self->control_endpoint = zsock_last_endpoint (self->control);
    zloop_reader (self->loop, self->control, s_control_readable, self);
    self->http = orchestrator_http_new (self->loop, config->http_address, config->http_port, MAX_BODY_BYTES, s_route,
                                        self, self->log, err);
    if (!self->http)
        return -1;
    zloop_reader (self->loop, self->pipe, s_pipe_readable, self);
    zloop_timer (self->loop, (size_t) config->recovery_interval_ms, 0, s_recovery_timer, self);

    cv_error_t migrate_err;
    if (orchestrator_store_migrate (self->store, &migrate_err))
        cv_log_warn (self->log, "cannot migrate the database yet: %s", migrate_err.message);
    s_recover (self);
    return 0;
}

static void
s_server_actor (zsock_t *pipe, void *args)
{
    server_t *self = calloc (1, sizeof *self);
    self->config = args;
    self->log = self->config->log;
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    if (s_server_init (self, &err) == 0) {
        cv_actor_ready (pipe);
        cv_log_info (self->log, "serving HTTP on %s:%d, broker %s, control %s", self->config->http_address,
                     orchestrator_http_port (self->http), orchestrator_broker_endpoint (self->broker),
                     self->control_endpoint);
        zloop_start (self->loop);
    } else
        cv_actor_failed (pipe, &err);

    orchestrator_http_destroy (&self->http);
    zhashx_destroy (&self->flights);
    cv_envelope_destroy (&self->probe.asked);
    orchestrator_broker_destroy (&self->broker);
    orchestrator_store_destroy (&self->store);
    zsock_destroy (&self->control);
    zstr_free (&self->control_endpoint);
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
