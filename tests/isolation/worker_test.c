/* Isolation test of the generic worker actor (cv_worker): a trivial "echo" service driven by the
   harness over real sockets, good and malformed traffic, probes, and the broker's DISCONNECT;
   a worker of capacity N with N requests inside its handlers at once, all reading the one shared
   part made for the worker; and the default capacity the launcher gives a service. */
#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_launcher.h"
#include "harness.h"

/* What the test hands the echo service (shared_args): how to behave, where its handlers meet,
   and how many shared parts the worker made. */
typedef struct {
    const char *mode; /* NULL, "unhealthy", "refuse", "refuse-logic" */
    const char *gate; /* the test's ROUTER that "hold" requests report to */
    int shared_made;  /* written by shared_new only, before any handler starts */
} echo_args_t;

/* The echo service's shared part: read only once made. */
typedef struct {
    bool healthy;
    bool refuse_logic;
    const char *gate;
} echo_shared_t;

/* One handler's logic. */
typedef struct {
    const echo_shared_t *shared;
} echo_t;

static void *
s_echo_shared_new (void *args, cv_log_t *log, cv_error_t *err)
{
    echo_args_t *echo_args = args;
    const char *mode = echo_args && echo_args->mode ? echo_args->mode : "";
    if (streq (mode, "refuse")) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "echo refuses to start");
        return NULL;
    }
    echo_shared_t *shared = cv_calloc (1, sizeof *shared);
    shared->healthy = !streq (mode, "unhealthy");
    shared->refuse_logic = streq (mode, "refuse-logic");
    shared->gate = echo_args ? echo_args->gate : NULL;
    if (echo_args)
        echo_args->shared_made++;
    return shared;
}

static void
s_echo_shared_destroy (void **shared_p)
{
    free (*shared_p);
    *shared_p = NULL;
}

static void *
s_echo_new (const void *shared, cv_log_t *log, cv_error_t *err)
{
    const echo_shared_t *echo_shared = shared;
    if (echo_shared->refuse_logic) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "an echo handler refuses to start");
        return NULL;
    }
    echo_t *echo = cv_calloc (1, sizeof *echo);
    echo->shared = echo_shared;
    return echo;
}

static void
s_echo_destroy (void **logic_p)
{
    free (*logic_p);
    *logic_p = NULL;
}

/* "hold": tells the gate which shared part, logic and thread it runs with, then waits for the
   gate's word; the test holds every handler inside a request this way at once. */
static int
s_hold (echo_t *echo, cv_arena_t *arena, cv_envelope_t *reply, cv_error_t *err)
{
    zsock_t *gate = zsock_new_req (echo->shared->gate);
    assert (gate);
    zsock_set_rcvtimeo (gate, 10000);
    zstr_sendf (gate, "%p %p %lu", (const void *) echo->shared, (void *) echo, (unsigned long) pthread_self ());
    char *word = zstr_recv (gate);
    zsock_destroy (&gate);
    if (!word)
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "the gate never let this request go");
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    body->text = cv_arena_strdup (arena, word);
    zstr_free (&word);
    return 0;
}

static int
s_echo_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply, cv_error_t *err)
{
    const char *text = request->intent_request->text;
    if (streq (text, "fail"))
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "asked to fail");
    if (streq (text, "hold"))
        return s_hold (logic, arena, reply, err);
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    body->text = cv_arena_strdup (arena, text);
    for (char *c = body->text; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    return 0;
}

static int
s_echo_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    echo_t *echo = logic;
    return echo->shared->healthy ? 0 : cv_error_set (err, CV_ERR_INTERNAL, NULL, "echo is unwell");
}

static cv_worker_config_t
s_config (cv_log_t *log, echo_args_t *args)
{
    cv_worker_config_t config = {
        .service = "echo",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
        .shared_new = s_echo_shared_new,
        .shared_destroy = s_echo_shared_destroy,
        .shared_args = args,
        .logic_new = s_echo_new,
        .logic_destroy = s_echo_destroy,
        .handle = s_echo_handle,
        .check = s_echo_check,
        .log = log,
    };
    return config;
}

/* A request of text, in arena. */
static cv_envelope_t *
s_request (cv_arena_t *arena, const char *text, int64_t deadline_in_ms)
{
    cv_envelope_t *request = harness_envelope (arena, deadline_in_ms);
    Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
    body->user_id = "cust-1";
    body->text = cv_arena_strdup (arena, text);
    return request;
}

static cv_envelope_t *
s_ask (harness_t *harness, const char *text, int64_t deadline_in_ms)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = s_request (arena, text, deadline_in_ms);
    cv_envelope_t *reply = harness_request (harness, request, 5000);
    assert (reply);
    assert (streq (reply->message_id, request->message_id));
    cv_arena_destroy (&arena);
    return reply;
}

static void
s_expect_echo (harness_t *harness, const char *text, const char *expected)
{
    cv_envelope_t *reply = s_ask (harness, text, 5000);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY);
    assert (streq (reply->reply->text, expected));
    cv_envelope_destroy (&reply);
}

/* A worker of capacity 4 takes 4 requests at once: all 4 are inside their handlers together (each
   reports to the gate and waits there), on 4 threads with 4 logics, all reading the one shared
   part made for the worker. A fifth request meanwhile is refused for capacity, not queued; a probe
   waits for a free handler. */
static void
s_test_capacity (cv_log_t *log)
{
    enum { CAPACITY = 4 };
    zsock_t *gate = zsock_new (ZMQ_ROUTER);
    assert (gate);
    assert (zsock_bind (gate, "inproc://worker-test-gate") == 0);
    zsock_set_rcvtimeo (gate, 10000);
    echo_args_t args = {.gate = "inproc://worker-test-gate"};
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, &args);
    config.capacity = CAPACITY;
    zactor_t *worker = harness_start_worker (harness, &config);
    assert (harness_capacity (harness) == CAPACITY); /* READY says the capacity it serves */
    assert (args.shared_made == 1);

    cv_arena_t *arena = cv_arena_new ();
    for (int i = 0; i < CAPACITY; i++)
        harness_send (harness, s_request (arena, "hold", 10000));
    zframe_t *held[CAPACITY];
    void *shared[CAPACITY], *logic[CAPACITY];
    unsigned long thread[CAPACITY];
    for (int i = 0; i < CAPACITY; i++) {
        zmsg_t *arrival = zmsg_recv (gate); /* [REQ routing id][empty][report] */
        assert (arrival && zmsg_size (arrival) == 3);
        held[i] = zmsg_pop (arrival);
        zframe_t *empty = zmsg_pop (arrival);
        zframe_destroy (&empty);
        char *report = zmsg_popstr (arrival);
        assert (sscanf (report, "%p %p %lu", &shared[i], &logic[i], &thread[i]) == 3);
        zstr_free (&report);
        zmsg_destroy (&arrival);
    }
    /* all of them in their handlers now, none answered yet */
    for (int i = 0; i < CAPACITY; i++) {
        assert (shared[i] == shared[0]);
        for (int j = 0; j < i; j++)
            assert (logic[i] != logic[j] && thread[i] != thread[j]);
    }

    /* one more while every handler is busy: refused for capacity, at once */
    cv_envelope_t *reply = harness_request (harness, s_request (arena, "one too many", 5000), 5000);
    harness_expect_error (reply, CV_ERR_UNAVAILABLE, NULL, "at its capacity of 4");
    cv_envelope_destroy (&reply);
    /* a probe waits for a handler: it is answered once one is let go */
    zstr_send (worker, "CONTROL");
    char *control = zstr_recv (worker);
    zsock_t *probe = zsock_new_req (control);
    assert (probe);
    zsock_set_rcvtimeo (probe, 10000);
    cv_envelope_t *probe_request = cv_envelope_new (arena, "", "", 0, 1);
    cv_envelope_set_probe (probe_request, arena);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe_request, &size);
    zframe_t *frame = zframe_new (packed, size);
    free (packed);
    zframe_send (&frame, probe, 0);

    /* let them all go: each request gets its own answer */
    for (int i = 0; i < CAPACITY; i++) {
        zmsg_t *word = zmsg_new ();
        zmsg_append (word, &held[i]);
        zmsg_addstr (word, "");
        zmsg_addstrf (word, "let go %d", i);
        zmsg_send (&word, gate);
    }
    bool answered[CAPACITY] = {false};
    for (int i = 0; i < CAPACITY; i++) {
        reply = harness_receive (harness, 10000);
        assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY);
        int which = -1;
        assert (sscanf (reply->reply->text, "let go %d", &which) == 1 && which >= 0 && which < CAPACITY);
        assert (!answered[which]);
        answered[which] = true;
        cv_envelope_destroy (&reply);
    }
    frame = zframe_recv (probe);
    assert (frame);
    cv_error_t err;
    reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT && reply->probe_result->ok);
    cv_envelope_destroy (&reply);
    zframe_destroy (&frame);
    zsock_destroy (&probe);
    zstr_free (&control);

    /* and the handlers serve on, as many at once as before */
    s_expect_echo (harness, "after the rush", "AFTER THE RUSH");
    cv_arena_destroy (&arena);
    zactor_destroy (&worker);
    assert (args.shared_made == 1);
    harness_destroy (&harness);
    zsock_destroy (&gate);
}

/* The launcher's default capacity: a service's share per CPU, within its limit. */
static void
s_test_default_capacity (void)
{
    assert (cv_launcher_cpus () >= 1);
    cv_launcher_spec_t cpu_bound = {.service = "cpu"};
    assert (cv_launcher_default_capacity (&cpu_bound, 1) == 1);
    assert (cv_launcher_default_capacity (&cpu_bound, 2) == 2);
    assert (cv_launcher_default_capacity (&cpu_bound, 500) == CV_LAUNCHER_CAPACITY_MAX);
    cv_launcher_spec_t waits = {.service = "waits", .capacity_per_cpu = 4, .capacity_max = 16};
    assert (cv_launcher_default_capacity (&waits, 1) == 4);
    assert (cv_launcher_default_capacity (&waits, 2) == 8);
    assert (cv_launcher_default_capacity (&waits, 8) == 16);
    cv_launcher_spec_t too_many = {.service = "many", .capacity_per_cpu = 4, .capacity_max = 1000};
    assert (cv_launcher_default_capacity (&too_many, 64) == CV_LAUNCHER_CAPACITY_MAX);
}

int
main (void)
{
    cv_log_t *log = cv_log_new ("echo", "test-1", false);
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, NULL);
    zactor_t *worker = harness_start_worker (harness, &config);

    /* good traffic */
    s_expect_echo (harness, "hello", "HELLO");

    /* a frame that is not an Envelope */
    cv_envelope_t *reply = harness_request_raw (harness, "\xff\xff\xff garbage", 12, 5000);
    harness_expect_error (reply, CV_ERR_MALFORMED, NULL, "not a conveyor.v1.Envelope");
    cv_envelope_destroy (&reply);
    s_expect_echo (harness, "still here", "STILL HERE");

    /* a body this service does not take */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *wrong = harness_envelope (arena, 5000);
    cv_envelope_set_reply (wrong, arena)->text = "not a request";
    reply = harness_request (harness, wrong, 5000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "reply");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);

    /* an over-long text, invalid UTF-8, a passed deadline */
    char *long_text = cv_malloc (CV_TEXT_MAX_BYTES + 2);
    memset (long_text, 'x', CV_TEXT_MAX_BYTES + 1);
    long_text[CV_TEXT_MAX_BYTES + 1] = '\0';
    reply = s_ask (harness, long_text, 5000);
    harness_expect_error (reply, CV_ERR_INVALID, "intent_request.text", "over the limit");
    cv_envelope_destroy (&reply);
    free (long_text);
    reply = s_ask (harness, "caf\xc3", 5000);
    harness_expect_error (reply, CV_ERR_INVALID, "intent_request.text", "UTF-8");
    cv_envelope_destroy (&reply);
    reply = s_ask (harness, "too late", -10);
    harness_expect_error (reply, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed");
    cv_envelope_destroy (&reply);

    /* the logic's own failure comes back as an Error with its code */
    reply = s_ask (harness, "fail", 5000);
    harness_expect_error (reply, CV_ERR_UNAVAILABLE, NULL, "asked to fail");
    cv_envelope_destroy (&reply);
    s_expect_echo (harness, "after all that", "AFTER ALL THAT");

    /* a probe on the control endpoint */
    char *control = harness_control_endpoint (worker);
    reply = harness_probe (control, 5000);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    assert (reply->probe_result->ok);
    assert (streq (reply->probe_result->service, "echo"));
    assert (streq (reply->probe_result->instance, "test-1"));
    cv_envelope_destroy (&reply);
    zstr_free (&control);

    /* the broker forgets the worker: DISCONNECT makes it say READY again */
    harness_send_command (harness, CV_MDP_DISCONNECT);
    assert (harness_wait_ready (harness, "echo", 5000));
    s_expect_echo (harness, "again", "AGAIN");
    zactor_destroy (&worker);
    harness_destroy (&harness);

    /* a worker whose broker goes silent reconnects and says READY again */
    harness = harness_new ();
    config = s_config (log, NULL);
    config.liveness = 3;
    worker = harness_start_worker (harness, &config);
    assert (harness_wait_ready (harness, "echo", 5000)); /* liveness, 3 x 100 ms, ran out */
    s_expect_echo (harness, "reconnected", "RECONNECTED");
    zactor_destroy (&worker);
    harness_destroy (&harness);

    /* an unhealthy service fails its probe with the reason */
    harness = harness_new ();
    echo_args_t unhealthy = {.mode = "unhealthy"};
    config = s_config (log, &unhealthy);
    worker = harness_start_worker (harness, &config);
    zstr_send (worker, "CONTROL");
    control = zstr_recv (worker);
    reply = harness_probe (control, 5000);
    assert (reply && !reply->probe_result->ok);
    assert (streq (reply->probe_result->detail, "echo is unwell"));
    cv_envelope_destroy (&reply);
    zstr_free (&control);
    zactor_destroy (&worker);
    harness_destroy (&harness);

    /* logic that cannot start, shared or a handler's: cv_worker_start says why */
    echo_args_t refuse = {.mode = "refuse"};
    config = s_config (log, &refuse);
    config.capacity = 1;
    harness_expect_no_start (&config, "echo refuses to start");
    cv_error_t err;
    echo_args_t refuse_logic = {.mode = "refuse-logic"};
    config.shared_args = &refuse_logic;
    config.capacity = 3;
    assert (!cv_worker_start (&config, &err));
    assert (strstr (err.message, "an echo handler refuses to start"));
    assert (refuse_logic.shared_made == 1);

    s_test_capacity (log);
    s_test_default_capacity ();

    cv_log_destroy (&log);
    printf ("worker isolation: ok\n");
    return 0;
}
