/* A conveyor worker: the generic actor every worker service runs. */
#include "cv_worker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_actor.h"
#include "cv_alloc.h"
#include "cv_metrics.h"
#include "cv_worker_handler.h"

/* Where a request came from, so its reply goes back the same way. */
typedef enum { ORIGIN_BROKER = 'B', ORIGIN_CONTROL = 'C' } origin_t;

typedef struct {
    zactor_t *actor;
    uint32_t in_flight; /* requests sent to it and not answered yet */
    uint32_t limit;     /* at most: 1 for a blocking handler, its share of the capacity on a loop */
} handler_t;

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

/* The handler with the most room, or NULL when every one is at its limit. */
static handler_t *
s_idle_handler (worker_t *self)
{
    handler_t *best = NULL;
    for (uint32_t i = 0; i < self->handler_count; i++) {
        handler_t *handler = &self->handlers[i];
        if (handler->in_flight < handler->limit
            && (!best || handler->limit - handler->in_flight > best->limit - best->in_flight))
            best = handler;
    }
    return best;
}

static void
s_dispatch (handler_t *handler, origin_t origin, zframe_t **frame_p)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstrf (msg, "%c", (char) origin);
    zmsg_append (msg, frame_p);
    zmsg_send (&msg, zactor_sock (handler->actor));
    handler->in_flight++;
}

static int
s_handler_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    worker_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    for (uint32_t i = 0; i < self->handler_count; i++)
        if (zactor_sock (self->handlers[i].actor) == reader) {
            assert (self->handlers[i].in_flight > 0);
            self->handlers[i].in_flight--;
        }
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
    /* blocking: a thread a request; on a loop: the capacity shared out among the handlers */
    uint32_t handlers = config->capacity;
    if (config->begin && config->handlers < config->capacity)
        handlers = config->handlers ? config->handlers : 1;
    self->handlers = cv_calloc (handlers, sizeof *self->handlers);
    for (uint32_t i = 0; i < handlers; i++) {
        cv_worker_handler_args_t *args = cv_malloc (sizeof *args);
        args->config = config;
        args->shared = self->shared;
        self->handlers[i].actor = cv_actor_start (cv_worker_handler_actor, args, err);
        if (!self->handlers[i].actor)
            return -1;
        self->handlers[i].limit = config->capacity / handlers + (i < config->capacity % handlers);
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
    assert (config && config->service && config->shared_new && config->shared_destroy && config->logic_destroy);
    bool blocking = config->handle && config->logic_new && !config->check_begin && !config->loop_logic_new;
    bool on_loop = config->begin && config->loop_logic_new && !config->check && !config->logic_new;
    assert (blocking != on_loop && !(config->handle && config->begin));
    assert (config->broker_endpoint && config->instance && config->log);
    assert (config->capacity >= 1 && config->capacity <= CV_MDP_MAX_CAPACITY);
    assert (config->heartbeat_ms > 0 && config->liveness > 0);
    (void) cv_metrics_messages_rejected (cv_metrics_process ()); /* its family shows from the start */
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

static cv_envelope_t *s_test_reply (zsock_t *router, zframe_t **peer);

/* Sends data as a REQUEST to peer and returns the reply's envelope (the caller destroys it). */
static cv_envelope_t *
s_test_request_raw (zsock_t *router, zframe_t **peer, const void *data, size_t size)
{
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, data, size);
    zframe_t *to = zframe_dup (*peer);
    zmsg_prepend (msg, &to);
    zmsg_send (&msg, router);
    return s_test_reply (router, peer);
}

/* Packs an IntentRequest of text (wrong_body: a Reply instead) with request_id; the caller frees. */
static uint8_t *
s_test_pack (const char *request_id, const char *text, bool wrong_body, size_t *size)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request =
        cv_envelope_new (arena, request_id, "0123456789abcdef0123456789abcdef", (uint64_t) zclock_time () + 10000, 1);
    if (wrong_body)
        cv_envelope_set_reply (request, arena)->text = "not a request";
    else {
        Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
        body->user_id = "cust-1";
        body->text = cv_arena_strdup (arena, text);
    }
    uint8_t *packed = cv_envelope_pack (request, size);
    cv_arena_destroy (&arena);
    return packed;
}

/* Sends an IntentRequest of text (wrong_body: any other body instead) and returns the reply. */
static cv_envelope_t *
s_test_request (zsock_t *router, zframe_t **peer, const char *text, bool wrong_body)
{
    size_t size;
    uint8_t *packed = s_test_pack ("req-1", text, wrong_body, &size);
    cv_envelope_t *reply = s_test_request_raw (router, peer, packed, size);
    free (packed);
    return reply;
}

/* Sends an IntentRequest of text with request_id, without waiting for its reply. */
static void
s_test_send (zsock_t *router, zframe_t *peer, const char *request_id, const char *text)
{
    size_t size;
    uint8_t *packed = s_test_pack (request_id, text, false, &size);
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, packed, size);
    free (packed);
    zframe_t *to = zframe_dup (peer);
    zmsg_prepend (msg, &to);
    zmsg_send (&msg, router);
}

/* The next reply on router, unpacked (the caller destroys it). */
static cv_envelope_t *
s_test_reply (zsock_t *router, zframe_t **peer)
{
    cv_mdp_message_t message;
    assert (s_test_receive (router, CV_MDP_REPLY, 5000, peer, &message));
    cv_error_t err;
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (message.body), zframe_size (message.body), &err);
    cv_assert_that (reply, "the reply does not unpack: %s", err.message);
    cv_mdp_message_reset (&message);
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

/* Asks worker for its control endpoint (it must be bound, its port resolved) and returns the
   ProbeResult that a Probe sent there gets (the caller destroys it). */
static cv_envelope_t *
s_test_probe (zactor_t *worker)
{
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
    cv_error_t err;
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    zframe_destroy (&frame);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    cv_arena_destroy (&arena);
    zsock_destroy (&req);
    zstr_free (&control);
    return reply;
}

static const char s_test_malformed[] = "\xff\xff\xff not protobuf";

/* The same service on an event loop: "hold" waits until a "release" finishes every held call,
   the last held first; any other text is answered from a timer, never inside begin. */
#define S_TEST_HELD_MAX 8

typedef struct {
    zloop_t *loop;
    const int *shared;
    cv_worker_call_t *held[S_TEST_HELD_MAX];
    size_t held_count;
} s_test_loop_logic_t;

static void *
s_test_loop_logic_new (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err)
{
    (void) log, (void) err;
    s_test_loop_logic_t *logic = cv_calloc (1, sizeof *logic);
    logic->loop = loop;
    logic->shared = shared;
    return logic;
}

static void
s_test_answer (void *logic, cv_worker_call_t *call)
{
    cv_error_t err;
    cv_error_clear (&err);
    int rc = s_test_handle (logic, cv_worker_call_request (call), cv_worker_call_arena (call),
                            cv_worker_call_reply (call), &err);
    cv_worker_call_finish (call, rc, &err);
}

static int
s_test_timer (zloop_t *loop, int timer_id, void *call)
{
    (void) loop, (void) timer_id;
    s_test_answer (NULL, call);
    return 0;
}

static void
s_test_begin (void *logic_, cv_worker_call_t *call)
{
    s_test_loop_logic_t *logic = logic_;
    const char *text = cv_worker_call_request (call)->intent_request->text;
    if (streq (text, "hold")) {
        assert (logic->held_count < S_TEST_HELD_MAX);
        logic->held[logic->held_count++] = call;
    } else if (streq (text, "release")) {
        while (logic->held_count)
            s_test_answer (logic, logic->held[--logic->held_count]);
        s_test_answer (logic, call);
    } else
        zloop_timer (logic->loop, 1, 1, s_test_timer, call);
}

static int
s_test_check_timer (zloop_t *loop, int timer_id, void *call)
{
    (void) loop, (void) timer_id;
    cv_worker_call_finish (call, 0, NULL);
    return 0;
}

static void
s_test_check_begin (void *logic_, cv_worker_call_t *call)
{
    s_test_loop_logic_t *logic = logic_;
    assert (cv_worker_call_request (call)->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE);
    if (*logic->shared)
        zloop_timer (logic->loop, 1, 1, s_test_check_timer, call);
    else {
        cv_error_t err;
        cv_error_set (&err, CV_ERR_INTERNAL, NULL, "upper is unwell");
        cv_worker_call_finish (call, -1, &err);
    }
}

/* A ROUTER bound on a free loopback port, its endpoint in endpoint. */
static zsock_t *
s_test_router (char *endpoint, size_t size)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", port);
    return router;
}

/* The "upper" service's configuration without its way of serving (blocking or on a loop). */
static cv_worker_config_t
s_test_config (const char *endpoint, cv_log_t *log)
{
    cv_worker_config_t config = {
        .service = "upper",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
        .shared_new = s_test_shared_new,
        .shared_destroy = s_test_free,
        .logic_destroy = s_test_free,
        .broker_endpoint = endpoint,
        .control_endpoint = "tcp://127.0.0.1:*",
        .instance = "upper-1",
        .heartbeat_ms = 200,
        .liveness = 25, /* the test answers beats only while it waits for the worker */
        .log = log,
    };
    return config;
}

/* The event-loop service: requests in flight at once and answered out of order, the capacity
   shared by two handlers, a check finished from a timer, and calls held at stop dropped. */
static void
s_test_on_loop (cv_log_t *log)
{
    char endpoint[64];
    zsock_t *router = s_test_router (endpoint, sizeof endpoint);
    cv_worker_config_t config = s_test_config (endpoint, log);
    config.loop_logic_new = s_test_loop_logic_new;
    config.begin = s_test_begin;
    config.check_begin = s_test_check_begin;
    config.capacity = 4;
    config.handlers = 2;
    cv_error_t err;
    zactor_t *worker = cv_worker_start (&config, &err);
    cv_assert_that (worker, "the worker on a loop did not start: %s", err.message);
    zframe_t *peer = NULL;
    cv_mdp_message_t message;
    assert (s_test_receive (router, CV_MDP_READY, 5000, &peer, &message));
    assert (message.capacity == 4);
    cv_mdp_message_reset (&message);

    /* four at once over two handlers, each answered from its loop; a failure, a malformed frame */
    const char *ids[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        s_test_send (router, peer, ids[i], ids[i]);
    bool answered[4] = {false};
    for (size_t i = 0; i < 4; i++) {
        cv_envelope_t *reply = s_test_reply (router, &peer);
        assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY);
        size_t which = (size_t) (reply->request_id[0] - 'a');
        assert (which < 4 && !answered[which] && reply->reply->text[0] == "ABCD"[which]);
        answered[which] = true;
        cv_envelope_destroy (&reply);
    }
    cv_envelope_t *reply = s_test_request (router, &peer, "fail", false);
    s_test_expect_error (&reply, CV_ERR_UNAVAILABLE);
    cv_metric_t *malformed = cv_metric_with (cv_metrics_messages_rejected (cv_metrics_process ()), "MALFORMED");
    double malformed_before = cv_metric_value (malformed);
    reply = s_test_request_raw (router, &peer, s_test_malformed, sizeof s_test_malformed - 1);
    s_test_expect_error (&reply, CV_ERR_MALFORMED);
    assert (cv_metric_value (malformed) == malformed_before + 1); /* counted by its code */
    reply = s_test_probe (worker);
    cv_assert_that (reply->probe_result->ok, "the probe failed: %s", reply->probe_result->detail);
    cv_envelope_destroy (&reply);
    zactor_destroy (&worker);
    assert (s_test_receive (router, CV_MDP_DISCONNECT, 5000, &peer, &message));
    cv_mdp_message_reset (&message);

    /* one handler: three held calls are answered when a fourth releases them, the last held first,
       which a handler serving one call at a time could never do */
    config.handlers = 1;
    worker = cv_worker_start (&config, &err);
    cv_assert_that (worker, "the worker on a loop did not start: %s", err.message);
    assert (s_test_receive (router, CV_MDP_READY, 5000, &peer, &message));
    cv_mdp_message_reset (&message);
    s_test_send (router, peer, "held-1", "hold");
    s_test_send (router, peer, "held-2", "hold");
    s_test_send (router, peer, "held-3", "hold");
    s_test_send (router, peer, "release", "release");
    const char *order[] = {"held-3", "held-2", "held-1", "release"};
    for (size_t i = 0; i < 4; i++) {
        reply = s_test_reply (router, &peer);
        cv_assert_that (streq (reply->request_id, order[i]), "reply %zu is %s, expected %s", i, reply->request_id,
                        order[i]);
        assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY
                && streq (reply->reply->text, "HOLD") == (i < 3));
        cv_envelope_destroy (&reply);
    }

    /* at its capacity, a fifth request is answered UNAVAILABLE at once; stopping with four calls
       held drops them (memcheck sees them freed) and says DISCONNECT */
    for (size_t i = 0; i < 4; i++)
        s_test_send (router, peer, ids[i], "hold");
    reply = s_test_request (router, &peer, "one more", false);
    s_test_expect_error (&reply, CV_ERR_UNAVAILABLE);
    zactor_destroy (&worker);
    assert (s_test_receive (router, CV_MDP_DISCONNECT, 5000, &peer, &message));
    cv_mdp_message_reset (&message);
    zframe_destroy (&peer);
    zsock_destroy (&router);
}

void
cv_worker_test (bool verbose)
{
    char endpoint[64];
    zsock_t *router = s_test_router (endpoint, sizeof endpoint);
    cv_log_t *log = cv_log_new ("upper", "upper-1", verbose);
    cv_worker_config_t config = s_test_config (endpoint, log);
    config.logic_new = s_test_logic_new;
    config.handle = s_test_handle;
    config.check = s_test_check;
    config.capacity = 2;

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
    reply = s_test_probe (worker);
    cv_assert_that (reply->probe_result->ok, "the probe failed: %s", reply->probe_result->detail);
    assert (streq (reply->probe_result->service, "upper") && streq (reply->probe_result->instance, "upper-1"));
    cv_envelope_destroy (&reply);

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

    s_test_on_loop (log);
    cv_log_destroy (&log);
    if (verbose)
        printf ("cv_worker: ok\n");
}
