/* Isolation test of the generic worker actor (cv_worker): a trivial "echo" service driven by the
   harness over real sockets, good and malformed traffic, probes, and the broker's DISCONNECT. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct {
    bool healthy;
} echo_t;

static void *
s_echo_new (void *args, cv_log_t *log, cv_error_t *err)
{
    if (args && streq ((const char *) args, "refuse")) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "echo refuses to start");
        return NULL;
    }
    echo_t *echo = calloc (1, sizeof *echo);
    echo->healthy = !(args && streq ((const char *) args, "unhealthy"));
    return echo;
}

static void
s_echo_destroy (void **logic_p)
{
    free (*logic_p);
    *logic_p = NULL;
}

static int
s_echo_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply, cv_error_t *err)
{
    const char *text = request->intent_request->text;
    if (streq (text, "fail"))
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "asked to fail");
    Conveyor__V1__Reply *body = cv_arena_alloc (arena, sizeof *body);
    conveyor__v1__reply__init (body);
    body->text = cv_arena_strdup (arena, text);
    for (char *c = body->text; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    reply->body_case = CONVEYOR__V1__ENVELOPE__BODY_REPLY;
    reply->reply = body;
    return 0;
}

static int
s_echo_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    echo_t *echo = logic;
    return echo->healthy ? 0 : cv_error_set (err, CV_ERR_INTERNAL, NULL, "echo is unwell");
}

static cv_worker_config_t
s_config (cv_log_t *log, void *args)
{
    cv_worker_config_t config = {
        .service = "echo",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
        .logic_new = s_echo_new,
        .logic_destroy = s_echo_destroy,
        .logic_args = args,
        .handle = s_echo_handle,
        .check = s_echo_check,
        .log = log,
    };
    return config;
}

static cv_envelope_t *
s_ask (harness_t *harness, const char *text, int64_t deadline_in_ms)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = harness_envelope (arena, deadline_in_ms);
    Conveyor__V1__IntentRequest *body = cv_arena_alloc (arena, sizeof *body);
    conveyor__v1__intent_request__init (body);
    body->user_id = "cust-1";
    body->text = (char *) text;
    request->body_case = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST;
    request->intent_request = body;
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
    Conveyor__V1__Reply wrong_body = CONVEYOR__V1__REPLY__INIT;
    wrong_body.text = "not a request";
    wrong->body_case = CONVEYOR__V1__ENVELOPE__BODY_REPLY;
    wrong->reply = &wrong_body;
    reply = harness_request (harness, wrong, 5000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "reply");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);

    /* an over-long text, invalid UTF-8, a passed deadline */
    char *long_text = malloc (CV_TEXT_MAX_BYTES + 2);
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
    zstr_send (worker, "CONTROL");
    char *control = zstr_recv (worker);
    assert (control && strncmp (control, "tcp://127.0.0.1:", 16) == 0);
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
    worker = harness_start_worker (harness, &config);
    assert (harness_wait_ready (harness, "echo", 5000)); /* liveness, 3 x 100 ms, ran out */
    s_expect_echo (harness, "reconnected", "RECONNECTED");
    zactor_destroy (&worker);
    harness_destroy (&harness);

    /* an unhealthy service fails its probe with the reason */
    harness = harness_new ();
    config = s_config (log, "unhealthy");
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

    /* logic that cannot start: cv_worker_start says why */
    config = s_config (log, "refuse");
    config.broker_endpoint = "tcp://127.0.0.1:1";
    config.instance = "test-2";
    config.capacity = 1;
    config.heartbeat_ms = 100;
    config.liveness = 3;
    cv_error_t err;
    assert (!cv_worker_start (&config, &err));
    assert (strstr (err.message, "echo refuses to start"));

    cv_log_destroy (&log);
    printf ("worker isolation: ok\n");
    return 0;
}
