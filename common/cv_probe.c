/* The probe: the control endpoint that takes Probes, and the ProbeResult that answers one. */
#include "cv_probe.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

const char *const cv_worker_services[] = {"intent", "gatherer", "decision", "executor", "responder", NULL};

void
cv_probe_result_set (cv_envelope_t *reply, cv_arena_t *arena, const char *service, const char *instance, bool ok,
                     const char *detail, uint32_t latency_us)
{
    assert (reply && arena && service);
    Conveyor__V1__ProbeResult *result = cv_envelope_set_probe_result (reply, arena);
    result->service = cv_arena_strdup (arena, service);
    result->instance = cv_arena_strdup (arena, instance ? instance : "");
    result->version = CONVEYOR_VERSION;
    result->ok = ok;
    result->detail = cv_arena_strdup (arena, detail ? detail : "");
    result->latency_us = latency_us;
}

void
cv_probe_run (const char *service, const char *instance, cv_probe_check_fn *check, void *logic, cv_arena_t *arena,
              cv_envelope_t *reply)
{
    cv_error_t err;
    cv_error_clear (&err);
    int64_t started = zclock_usecs ();
    int rc = check ? check (logic, arena, &err) : 0;
    uint32_t latency_us = (uint32_t) (zclock_usecs () - started);
    cv_probe_result_set (reply, arena, service, instance, rc == 0, rc == 0 ? CV_PROBE_PASSED : err.message, latency_us);
}

/*  --------------------------------------------------------------------------
    The endpoint */

struct _cv_probe_endpoint_t {
    zloop_t *loop; /* borrowed */
    zsock_t *sock; /* REP */
    char *bound;   /* the endpoint as bound */
    cv_probe_arrived_fn *arrived;
    void *owner;
    bool open; /* a frame was handed over and not answered yet: not reading */
};

static int
s_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    cv_probe_endpoint_t *self = arg;
    zframe_t *frame = zframe_recv (reader);
    if (!frame)
        return 0;
    /* REP answers one request at a time: stop reading until this one is answered. */
    zloop_reader_end (loop, self->sock);
    self->open = true;
    self->arrived (self->owner, &frame);
    zframe_destroy (&frame);
    return 0;
}

cv_probe_endpoint_t *
cv_probe_endpoint_new (zloop_t *loop, const char *endpoint, cv_probe_arrived_fn *arrived, void *owner, cv_error_t *err)
{
    assert (loop && endpoint && arrived);
    cv_probe_endpoint_t *self = cv_calloc (1, sizeof *self);
    self->loop = loop;
    self->arrived = arrived;
    self->owner = owner;
    self->sock = zsock_new (ZMQ_REP);
    assert (self->sock);
    zsock_set_linger (self->sock, 0);
    if (zsock_bind (self->sock, "%s", endpoint) < 0) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, "control_endpoint", "cannot bind control endpoint %s: %s", endpoint,
                      zmq_strerror (zmq_errno ()));
        cv_probe_endpoint_destroy (&self);
        return NULL;
    }
    self->bound = zsock_last_endpoint (self->sock);
    zloop_reader (self->loop, self->sock, s_readable, self);
    return self;
}

void
cv_probe_endpoint_destroy (cv_probe_endpoint_t **self_p)
{
    assert (self_p);
    cv_probe_endpoint_t *self = *self_p;
    if (!self)
        return;
    if (self->bound && !self->open)
        zloop_reader_end (self->loop, self->sock);
    zsock_destroy (&self->sock);
    zstr_free (&self->bound);
    free (self);
    *self_p = NULL;
}

const char *
cv_probe_endpoint_bound (const cv_probe_endpoint_t *self)
{
    assert (self);
    return self->bound;
}

void
cv_probe_endpoint_answer (cv_probe_endpoint_t *self, zframe_t **frame_p)
{
    assert (self && frame_p && *frame_p);
    assert (self->open);
    zframe_send (frame_p, self->sock, 0);
    zframe_destroy (frame_p);
    self->open = false;
    zloop_reader (self->loop, self->sock, s_readable, self);
}

void
cv_probe_endpoint_answer_envelope (cv_probe_endpoint_t *self, const cv_envelope_t *reply)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    zframe_t *frame = zframe_new (packed, size);
    free (packed);
    cv_probe_endpoint_answer (self, &frame);
}

/*  --------------------------------------------------------------------------
    Self-test: an endpoint on a loop, answered at once and from a later timer */

typedef struct {
    cv_probe_endpoint_t *endpoint;
    zframe_t *held; /* a frame answered later */
    int arrived;
} s_test_owner_t;

static int
s_test_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    return logic ? cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "%s", (const char *) logic) : 0;
}

/* Answers a Probe at once with the canned check; anything else is held and answered by the timer. */
static void
s_test_arrived (void *owner, zframe_t **frame_p)
{
    s_test_owner_t *test = owner;
    test->arrived++;
    cv_error_t err;
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (*frame_p), zframe_size (*frame_p), &err);
    if (request && request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE) {
        cv_arena_t *arena = cv_arena_new ();
        cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
        cv_probe_run ("test", "test-1", s_test_check, NULL, arena, reply);
        cv_probe_endpoint_answer_envelope (test->endpoint, reply);
        cv_arena_destroy (&arena);
    } else {
        test->held = *frame_p;
        *frame_p = NULL;
    }
    cv_envelope_destroy (&request);
}

static int
s_test_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_test_owner_t *test = arg;
    if (test->held)
        cv_probe_endpoint_answer (test->endpoint, &test->held);
    return 0;
}

static int
s_test_client (zloop_t *loop, zsock_t *reader, void *arg)
{
    return -1; /* the client's turn: leave the loop */
}

static cv_envelope_t *
s_test_ask (zloop_t *loop, zsock_t *client, const uint8_t *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    zframe_send (&frame, client, 0);
    zloop_reader (loop, client, s_test_client, NULL);
    zloop_start (loop);
    zloop_reader_end (loop, client);
    frame = zframe_recv (client);
    assert (frame);
    cv_error_t err;
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    zframe_destroy (&frame);
    return reply;
}

void
cv_probe_test (bool verbose)
{
    /* the result: passed, failed with the check's reason, or built directly */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_new (arena, "", "", 0, 1);
    cv_probe_run ("intent", "intent-1", s_test_check, NULL, arena, reply);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    const Conveyor__V1__ProbeResult *result = reply->probe_result;
    assert (result->ok && streq (result->detail, CV_PROBE_PASSED) && streq (result->service, "intent"));
    assert (streq (result->instance, "intent-1") && streq (result->version, CONVEYOR_VERSION));
    cv_probe_run ("intent", "intent-1", s_test_check, "the model did not load", arena, reply);
    assert (!reply->probe_result->ok && streq (reply->probe_result->detail, "the model did not load"));
    cv_probe_run ("intent", "intent-1", NULL, NULL, arena, reply);
    assert (reply->probe_result->ok);
    cv_probe_result_set (reply, arena, "gatherer", NULL, false, "no live gatherer worker is connected", 7);
    result = reply->probe_result;
    assert (!result->ok && streq (result->instance, "") && result->latency_us == 7);
    cv_error_t err;
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT), 0, &err) == 0);

    /* the endpoint: a Probe answered at once, then a frame answered later, one at a time */
    zloop_t *loop = zloop_new ();
    s_test_owner_t test = {0};
    test.endpoint = cv_probe_endpoint_new (loop, "inproc://cv-probe-test", s_test_arrived, &test, &err);
    assert (test.endpoint && streq (cv_probe_endpoint_bound (test.endpoint), "inproc://cv-probe-test"));
    assert (!cv_probe_endpoint_new (loop, "inproc://cv-probe-test", s_test_arrived, &test, &err));
    assert (err.code == CV_ERR_UNAVAILABLE && streq (err.field, "control_endpoint"));
    zsock_t *client = zsock_new_req ("inproc://cv-probe-test");
    assert (client);

    cv_envelope_t *probe = cv_envelope_new (arena, "", "", 0, 1);
    cv_envelope_set_probe (probe, arena);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    cv_envelope_t *answer = s_test_ask (loop, client, packed, size);
    free (packed);
    assert (answer && answer->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT && answer->probe_result->ok);
    assert (streq (answer->message_id, probe->message_id));
    cv_envelope_destroy (&answer);

    int timer = zloop_timer (loop, 10, 0, s_test_timer, &test);
    cv_envelope_t *other = cv_envelope_new (arena, "", "", 0, 1);
    cv_probe_result_set (other, arena, "echo", "echo-1", true, "sent back", 0);
    packed = cv_envelope_pack (other, &size);
    answer = s_test_ask (loop, client, packed, size);
    free (packed);
    assert (answer && streq (answer->probe_result->detail, "sent back") && test.arrived == 2 && !test.held);
    cv_envelope_destroy (&answer);
    zloop_timer_end (loop, timer);

    zsock_destroy (&client);
    cv_probe_endpoint_destroy (&test.endpoint);
    assert (!test.endpoint);
    cv_probe_endpoint_destroy (&test.endpoint);
    zloop_destroy (&loop);
    cv_arena_destroy (&arena);
    if (verbose)
        printf ("cv_probe: ok\n");
}
