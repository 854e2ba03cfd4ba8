/* A conveyor worker: the generic actor every worker service runs. */
#include "cv_worker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_actor.h"
#include "cv_alloc.h"

/* Where a request came from, so its reply goes back the same way. */
typedef enum { ORIGIN_BROKER = 'B', ORIGIN_CONTROL = 'C' } origin_t;

typedef struct {
    zactor_t *actor;
    bool busy;
} handler_t;

typedef struct {
    const cv_worker_config_t *config;
    const void *shared; /* the worker's, read only */
} handler_args_t;

typedef struct {
    const cv_worker_config_t *config;
    zsock_t *pipe;
    zloop_t *loop;
    zsock_t *broker;              /* DEALER to the orchestrator */
    cv_probe_endpoint_t *control; /* for probes, or NULL */
    void *shared;                 /* what every handler reads: made first, destroyed last */
    handler_t *handlers;
    uint32_t handler_count;
    zframe_t *waiting_probe; /* a control probe that arrived while every handler was busy */
    int liveness;            /* heartbeats left before the broker counts as gone */
    int64_t last_tick;       /* zclock_mono of the last heartbeat tick acted on */
    bool terminated;
} worker_t;

/*  --------------------------------------------------------------------------
    Handler threads: unpack, validate, run the logic, pack the reply. */

static zframe_t *
s_handle_frame (const cv_worker_config_t *config, void *logic, zframe_t *frame)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_error_t err;
    cv_error_clear (&err);
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    uint32_t accepted = CV_BODY (config->request_body) | CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE);
    if (!request || cv_envelope_validate (request, accepted, (uint64_t) zclock_time (), &err)) {
        cv_log_event (config->log, CV_LOG_WARN, request ? request->request_id : NULL,
                      request ? request->trace_id : NULL, "rejected %s message: %s (field %s)",
                      cv_error_code_name (err.code), err.message, *err.field ? err.field : "-");
        cv_envelope_set_error (reply, arena, &err);
    } else if (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE)
        cv_probe_run (config->service, config->instance, config->check, logic, arena, reply);
    else {
        int64_t started = zclock_usecs ();
        if (config->handle (logic, request, arena, reply, &err)) {
            cv_log_event (config->log, CV_LOG_WARN, request->request_id, request->trace_id, "%s failed: %s",
                          cv_envelope_body_name (request->body_case), err.message);
            cv_envelope_set_error (reply, arena, &err);
        } else
            cv_log_event (config->log, CV_LOG_DEBUG, request->request_id, request->trace_id,
                          "%s answered with %s in %lld us (attempt %u)", cv_envelope_body_name (request->body_case),
                          cv_envelope_body_name (reply->body_case), (long long) (zclock_usecs () - started),
                          request->attempt);
    }
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    zframe_t *out = zframe_new (packed, size);
    free (packed);
    cv_envelope_destroy (&request);
    cv_arena_destroy (&arena);
    return out;
}

/* A handler thread: makes its logic over the shared part, then serves one request at a time. */
static void
s_handler_actor (zsock_t *pipe, void *args)
{
    handler_args_t *handler = args;
    const cv_worker_config_t *config = handler->config;
    const void *shared = handler->shared;
    free (handler);
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    void *logic = config->logic_new (shared, config->log, &err);
    if (!logic) {
        cv_actor_failed (pipe, &err);
        cv_actor_wait_term (pipe);
        return;
    }
    cv_actor_ready (pipe);
    while (!zsys_interrupted) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        char *command = zmsg_popstr (msg);
        if (command && streq (command, "$TERM")) {
            zstr_free (&command);
            zmsg_destroy (&msg);
            break;
        }
        /* [origin][envelope] in, [origin][envelope] out */
        zframe_t *frame = zmsg_pop (msg);
        if (frame) {
            zframe_t *reply = s_handle_frame (config, logic, frame);
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, command);
            zmsg_append (out, &reply);
            zmsg_send (&out, pipe);
            zframe_destroy (&frame);
        }
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
    config->logic_destroy (&logic);
}

/*  --------------------------------------------------------------------------
    The I/O actor: broker connection, heartbeats, control endpoint, dispatch. */

static int s_broker_readable (zloop_t *loop, zsock_t *reader, void *arg);

static void
s_connect_broker (worker_t *self)
{
    if (self->broker) {
        zloop_reader_end (self->loop, self->broker);
        zsock_destroy (&self->broker);
    }
    self->broker = zsock_new (ZMQ_DEALER);
    assert (self->broker);
    zsock_set_linger (self->broker, 0);
    if (zsock_connect (self->broker, "%s", self->config->broker_endpoint) != 0)
        cv_log_error (self->config->log, "cannot connect to broker %s", self->config->broker_endpoint);
    zloop_reader (self->loop, self->broker, s_broker_readable, self);
    zmsg_t *ready = cv_mdp_ready (self->config->service, self->config->instance, self->config->capacity);
    zmsg_send (&ready, self->broker);
    self->liveness = self->config->liveness;
}

static handler_t *
s_idle_handler (worker_t *self)
{
    for (uint32_t i = 0; i < self->handler_count; i++)
        if (!self->handlers[i].busy)
            return &self->handlers[i];
    return NULL;
}

static void
s_dispatch (handler_t *handler, origin_t origin, zframe_t **frame_p)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstrf (msg, "%c", (char) origin);
    zmsg_append (msg, frame_p);
    zmsg_send (&msg, zactor_sock (handler->actor));
    handler->busy = true;
}

static int
s_handler_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    worker_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    for (uint32_t i = 0; i < self->handler_count; i++)
        if (zactor_sock (self->handlers[i].actor) == reader)
            self->handlers[i].busy = false;
    char *origin = zmsg_popstr (msg);
    zframe_t *reply = zmsg_pop (msg);
    if (origin && reply && origin[0] == ORIGIN_BROKER) {
        zmsg_t *out = cv_mdp_with_body (CV_MDP_REPLY, zframe_data (reply), zframe_size (reply));
        zmsg_send (&out, self->broker);
    } else if (origin && reply && origin[0] == ORIGIN_CONTROL)
        cv_probe_endpoint_answer (self->control, &reply);
    zframe_destroy (&reply);
    zstr_free (&origin);
    zmsg_destroy (&msg);

    /* A probe that waited for a free handler goes first. */
    if (self->waiting_probe) {
        handler_t *handler = s_idle_handler (self);
        if (handler)
            s_dispatch (handler, ORIGIN_CONTROL, &self->waiting_probe);
    }
    return 0;
}

static void
s_reject_busy (worker_t *self, zframe_t *frame)
{
    /* The broker never sends more than the capacity; a request beyond it is answered, not queued. */
    cv_arena_t *arena = cv_arena_new ();
    cv_error_t err;
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "worker %s is at its capacity of %u", self->config->instance,
                  self->config->capacity);
    cv_envelope_set_error (reply, arena, &err);
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    zmsg_t *out = cv_mdp_with_body (CV_MDP_REPLY, packed, size);
    zmsg_send (&out, self->broker);
    free (packed);
    cv_envelope_destroy (&request);
    cv_arena_destroy (&arena);
    cv_log_warn (self->config->log, "request beyond capacity %u answered UNAVAILABLE", self->config->capacity);
}

static int
s_broker_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    worker_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    self->liveness = self->config->liveness;
    cv_mdp_message_t message;
    cv_error_t err;
    if (cv_mdp_decode (&msg, &message, &err)) {
        cv_log_warn (self->config->log, "dropped a malformed message from the broker: %s", err.message);
        return 0;
    }
    switch (message.command) {
    case CV_MDP_REQUEST: {
        handler_t *handler = s_idle_handler (self);
        if (handler)
            s_dispatch (handler, ORIGIN_BROKER, &message.body);
        else
            s_reject_busy (self, message.body);
        break;
    }
    case CV_MDP_DISCONNECT:
        cv_log_info (self->config->log, "broker asked to reconnect");
        s_connect_broker (self);
        break;
    case CV_MDP_HEARTBEAT:
        break;
    default:
        cv_log_warn (self->config->log, "unexpected %s from the broker", cv_mdp_command_name (message.command));
    }
    cv_mdp_message_reset (&message);
    return 0;
}

/* A control request (the endpoint reads no other until it is answered): to an idle handler,
   or the first to go when one is free. */
static void
s_probe_arrived (void *owner, zframe_t **frame_p)
{
    worker_t *self = owner;
    handler_t *handler = s_idle_handler (self);
    if (handler)
        s_dispatch (handler, ORIGIN_CONTROL, frame_p);
    else {
        self->waiting_probe = *frame_p;
        *frame_p = NULL;
    }
}

static int
s_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    worker_t *self = arg;
    /* After the process was stopped (SIGSTOP, a paused VM), the loop runs every missed tick at
       once: they count as one, or a burst of reconnects would register the worker several times. */
    int64_t now = zclock_mono ();
    if (self->last_tick && now - self->last_tick < self->config->heartbeat_ms / 2)
        return 0;
    self->last_tick = now;
    if (--self->liveness <= 0) {
        cv_log_warn (self->config->log, "broker %s silent for %d heartbeats: reconnecting",
                     self->config->broker_endpoint, self->config->liveness);
        s_connect_broker (self);
        return 0;
    }
    zmsg_t *heartbeat = cv_mdp_command (CV_MDP_HEARTBEAT);
    zmsg_send (&heartbeat, self->broker);
    return 0;
}

static int
s_pipe_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    worker_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return -1;
    char *command = zmsg_popstr (msg);
    int rc = 0;
    if (command && streq (command, "$TERM"))
        rc = -1;
    else if (command && streq (command, "CONTROL"))
        zstr_send (reader, self->control ? cv_probe_endpoint_bound (self->control) : "");
    else
        cv_log_warn (self->config->log, "unknown pipe command %s", command ? command : "(none)");
    zstr_free (&command);
    zmsg_destroy (&msg);
    if (rc == -1)
        self->terminated = true;
    return rc;
}

static int
s_worker_init (worker_t *self, cv_error_t *err)
{
    const cv_worker_config_t *config = self->config;
    self->loop = zloop_new ();
    if (config->control_endpoint && *config->control_endpoint) {
        self->control = cv_probe_endpoint_new (self->loop, config->control_endpoint, s_probe_arrived, self, err);
        if (!self->control)
            return -1;
    }
    self->shared = config->shared_new (config->shared_args, config->log, err);
    if (!self->shared)
        return -1;
    self->handlers = cv_calloc (config->capacity, sizeof *self->handlers);
    for (uint32_t i = 0; i < config->capacity; i++) {
        handler_args_t *args = cv_malloc (sizeof *args);
        args->config = config;
        args->shared = self->shared;
        self->handlers[i].actor = cv_actor_start (s_handler_actor, args, err);
        if (!self->handlers[i].actor)
            return -1;
        self->handler_count++;
        zloop_reader (self->loop, zactor_sock (self->handlers[i].actor), s_handler_readable, self);
    }
    zloop_reader (self->loop, self->pipe, s_pipe_readable, self);
    zloop_timer (self->loop, (size_t) config->heartbeat_ms, 0, s_heartbeat, self);
    s_connect_broker (self);
    return 0;
}

static void
s_worker_actor (zsock_t *pipe, void *args)
{
    worker_t *self = cv_calloc (1, sizeof *self);
    self->config = args;
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    if (s_worker_init (self, &err) == 0) {
        cv_actor_ready (pipe);
        cv_log_info (self->config->log, "serving as %s (capacity %u), broker %s, control %s", self->config->service,
                     self->config->capacity, self->config->broker_endpoint,
                     self->control ? cv_probe_endpoint_bound (self->control) : "none");
        zloop_start (self->loop);
        if (self->broker && !zsys_interrupted) {
            zmsg_t *bye = cv_mdp_command (CV_MDP_DISCONNECT);
            zmsg_send (&bye, self->broker);
        }
    } else
        cv_actor_failed (pipe, &err);

    for (uint32_t i = 0; i < self->handler_count; i++)
        zactor_destroy (&self->handlers[i].actor);
    free (self->handlers);
    /* every handler has stopped and destroyed its logic: nothing reads the shared part now */
    if (self->shared)
        self->config->shared_destroy (&self->shared);
    zframe_destroy (&self->waiting_probe);
    zsock_destroy (&self->broker);
    cv_probe_endpoint_destroy (&self->control);
    zloop_destroy (&self->loop);
    if (!self->terminated)
        cv_actor_wait_term (pipe);
    free (self);
}

zactor_t *
cv_worker_start (const cv_worker_config_t *config, cv_error_t *err)
{
    assert (config && config->service && config->handle && config->shared_new && config->shared_destroy);
    assert (config->logic_new && config->logic_destroy);
    assert (config->broker_endpoint && config->instance && config->log);
    assert (config->capacity >= 1 && config->capacity <= CV_MDP_MAX_CAPACITY);
    assert (config->heartbeat_ms > 0 && config->liveness > 0);
    return cv_actor_start (s_worker_actor, (void *) config, err);
}

/*  --------------------------------------------------------------------------
    Self-test: an "upper" service served to a ROUTER that plays the broker, with good, failing and
    malformed requests, a probe on the control endpoint, heartbeats and the broker's DISCONNECT. */

static void *
s_test_shared_new (void *args, cv_log_t *log, cv_error_t *err)
{
    (void) log;
    if (args && streq ((const char *) args, "refuse")) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "upper refuses to start");
        return NULL;
    }
    int *shared = cv_malloc (sizeof *shared);
    *shared = 1; /* healthy */
    return shared;
}

static void
s_test_free (void **p)
{
    free (*p);
    *p = NULL;
}

static void *
s_test_logic_new (const void *shared, cv_log_t *log, cv_error_t *err)
{
    (void) log, (void) err;
    const int **logic = cv_malloc (sizeof *logic);
    *logic = shared;
    return logic;
}

static int
s_test_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply, cv_error_t *err)
{
    (void) logic;
    const char *text = request->intent_request->text;
    if (streq (text, "fail"))
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "asked to fail");
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    body->text = cv_arena_strdup (arena, text);
    for (char *c = body->text; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char) (*c - 'a' + 'A');
    return 0;
}

static int
s_test_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    (void) arena;
    const int *const *shared = logic;
    return **shared ? 0 : cv_error_set (err, CV_ERR_INTERNAL, NULL, "upper is unwell");
}

/* The next message from the worker on router, decoded, within timeout_ms; false on timeout.
   Heartbeats are answered and skipped unless want is CV_MDP_HEARTBEAT. *peer gets the routing id. */
static bool
s_test_receive (zsock_t *router, cv_mdp_command_t want, int timeout_ms, zframe_t **peer, cv_mdp_message_t *message)
{
    int64_t until = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (router, NULL);
    while (zclock_mono () < until) {
        if (!zpoller_wait (poller, (int) (until - zclock_mono ())))
            break;
        zmsg_t *msg = zmsg_recv (router);
        assert (msg);
        zframe_destroy (peer);
        *peer = zmsg_pop (msg);
        cv_error_t err;
        cv_assert_that (cv_mdp_decode (&msg, message, &err) == 0, "the worker broke the protocol: %s", err.message);
        if (message->command == want) {
            zpoller_destroy (&poller);
            return true;
        }
        cv_assert_that (message->command == CV_MDP_HEARTBEAT, "expected %s, got %s", cv_mdp_command_name (want),
                        cv_mdp_command_name (message->command));
        zmsg_t *beat = cv_mdp_command (CV_MDP_HEARTBEAT);
        zframe_t *to = zframe_dup (*peer);
        zmsg_prepend (beat, &to);
        zmsg_send (&beat, router);
        cv_mdp_message_reset (message);
    }
    zpoller_destroy (&poller);
    return false;
}

/* Sends data as a REQUEST to peer and returns the reply's envelope (the caller destroys it). */
static cv_envelope_t *
s_test_request_raw (zsock_t *router, zframe_t **peer, const void *data, size_t size)
{
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, data, size);
    zframe_t *to = zframe_dup (*peer);
    zmsg_prepend (msg, &to);
    zmsg_send (&msg, router);
    cv_mdp_message_t message;
    assert (s_test_receive (router, CV_MDP_REPLY, 5000, peer, &message));
    cv_error_t err;
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (message.body), zframe_size (message.body), &err);
    cv_assert_that (reply, "the reply does not unpack: %s", err.message);
    cv_mdp_message_reset (&message);
    return reply;
}

/* Sends an IntentRequest of text (body_case: any other body instead) and returns the reply. */
static cv_envelope_t *
s_test_request (zsock_t *router, zframe_t **peer, const char *text, bool wrong_body)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request =
        cv_envelope_new (arena, "req-1", "0123456789abcdef0123456789abcdef", (uint64_t) zclock_time () + 10000, 1);
    if (wrong_body)
        cv_envelope_set_reply (request, arena)->text = "not a request";
    else {
        Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
        body->user_id = "cust-1";
        body->text = cv_arena_strdup (arena, text);
    }
    size_t size;
    uint8_t *packed = cv_envelope_pack (request, &size);
    cv_envelope_t *reply = s_test_request_raw (router, peer, packed, size);
    free (packed);
    cv_arena_destroy (&arena);
    return reply;
}

static void
s_test_expect_error (cv_envelope_t **reply_p, cv_error_code_t code)
{
    cv_envelope_t *reply = *reply_p;
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR, "expected an Error, got %s",
                    cv_envelope_body_name (reply->body_case));
    cv_assert_that ((int) reply->error->code == (int) code, "expected %s, got %s: %s", cv_error_code_name (code),
                    cv_error_code_name ((cv_error_code_t) reply->error->code), reply->error->message);
    cv_envelope_destroy (reply_p);
}

static const char s_test_malformed[] = "\xff\xff\xff not protobuf";

void
cv_worker_test (bool verbose)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    cv_log_t *log = cv_log_new ("upper", "upper-1", verbose);
    cv_worker_config_t config = {
        .service = "upper",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
        .shared_new = s_test_shared_new,
        .shared_destroy = s_test_free,
        .logic_new = s_test_logic_new,
        .logic_destroy = s_test_free,
        .handle = s_test_handle,
        .check = s_test_check,
        .broker_endpoint = endpoint,
        .control_endpoint = "tcp://127.0.0.1:*",
        .instance = "upper-1",
        .capacity = 2,
        .heartbeat_ms = 200,
        .liveness = 25, /* the test answers beats only while it waits for the worker */
        .log = log,
    };

    /* a service whose shared part cannot be made does not start */
    config.shared_args = "refuse";
    cv_error_t err;
    zactor_t *worker = cv_worker_start (&config, &err);
    assert (!worker);
    cv_assert_that (strstr (err.message, "upper refuses to start"), "the start failed with: %s", err.message);

    /* a worker says READY with its service, instance and capacity */
    config.shared_args = NULL;
    worker = cv_worker_start (&config, &err);
    cv_assert_that (worker, "the worker did not start: %s", err.message);
    zframe_t *peer = NULL;
    cv_mdp_message_t message;
    assert (s_test_receive (router, CV_MDP_READY, 5000, &peer, &message));
    assert (streq (message.service, "upper") && streq (message.instance, "upper-1") && message.capacity == 2);
    cv_mdp_message_reset (&message);

    /* it beats while idle */
    assert (s_test_receive (router, CV_MDP_HEARTBEAT, 5000, &peer, &message));
    cv_mdp_message_reset (&message);

    /* a request is handled; a failure, a wrong body and a malformed frame come back as Errors,
       and the worker goes on serving */
    cv_envelope_t *reply = s_test_request (router, &peer, "where is my card?", false);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY, "got %s",
                    cv_envelope_body_name (reply->body_case));
    assert (streq (reply->reply->text, "WHERE IS MY CARD?"));
    assert (streq (reply->request_id, "req-1"));
    cv_envelope_destroy (&reply);
    reply = s_test_request (router, &peer, "fail", false);
    s_test_expect_error (&reply, CV_ERR_UNAVAILABLE);
    reply = s_test_request (router, &peer, NULL, true);
    s_test_expect_error (&reply, CV_ERR_WRONG_BODY);
    reply = s_test_request_raw (router, &peer, s_test_malformed, sizeof s_test_malformed - 1);
    s_test_expect_error (&reply, CV_ERR_MALFORMED);
    reply = s_test_request (router, &peer, "still here", false);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY && streq (reply->reply->text, "STILL HERE"));
    cv_envelope_destroy (&reply);

    /* the control endpoint, as bound, answers a probe through the service's check */
    zstr_send (worker, "CONTROL");
    char *control = zstr_recv (worker);
    assert (control && strncmp (control, "tcp://127.0.0.1:", 16) == 0 && !strchr (control, '*'));
    zsock_t *req = zsock_new_req (control);
    assert (req);
    zsock_set_rcvtimeo (req, 5000);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *probe = cv_envelope_new (arena, "", "", 0, 1);
    cv_envelope_set_probe (probe, arena);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    zframe_t *frame = zframe_new (packed, size);
    free (packed);
    zframe_send (&frame, req, 0);
    frame = zframe_recv (req);
    assert (frame);
    reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    zframe_destroy (&frame);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    cv_assert_that (reply->probe_result->ok, "the probe failed: %s", reply->probe_result->detail);
    assert (streq (reply->probe_result->service, "upper") && streq (reply->probe_result->instance, "upper-1"));
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);
    zsock_destroy (&req);
    zstr_free (&control);

    /* a broker that does not know the worker says DISCONNECT: the worker says READY again */
    zmsg_t *bye = cv_mdp_command (CV_MDP_DISCONNECT);
    zframe_t *to = zframe_dup (peer);
    zmsg_prepend (bye, &to);
    zmsg_send (&bye, router);
    assert (s_test_receive (router, CV_MDP_READY, 5000, &peer, &message));
    assert (streq (message.service, "upper"));
    cv_mdp_message_reset (&message);
    reply = s_test_request (router, &peer, "again", false);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY && streq (reply->reply->text, "AGAIN"));
    cv_envelope_destroy (&reply);

    /* stopping says DISCONNECT to the broker */
    zactor_destroy (&worker);
    assert (s_test_receive (router, CV_MDP_DISCONNECT, 5000, &peer, &message));
    cv_mdp_message_reset (&message);

    zframe_destroy (&peer);
    zsock_destroy (&router);
    cv_log_destroy (&log);
    if (verbose)
        printf ("cv_worker: ok\n");
}
