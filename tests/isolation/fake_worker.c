/* A fake worker for the orchestrator's isolation tests, over a real DEALER socket. */
#include "fake_worker.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

static void
s_request (fake_worker_t *self, zframe_t *body)
{
    cv_error_t err;
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (body), zframe_size (body), &err);
    cv_assert_that (request, "%s: the broker sent a REQUEST that is not an Envelope: %s", self->instance, err.message);
    if (self->on_request)
        self->on_request (self, &request, self->arg);
    else
        fake_worker_keep (self, &request);
    cv_envelope_destroy (&request);
}

static int
s_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    fake_worker_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    cv_mdp_message_t message;
    cv_error_t err;
    cv_assert_that (!(cv_mdp_decode (&msg, &message, &err)), "%s: the broker sent a malformed message: %s",
                    self->instance, err.message);
    switch (message.command) {
    case CV_MDP_REQUEST:
        s_request (self, message.body);
        break;
    case CV_MDP_HEARTBEAT:
        self->heartbeats++;
        self->last_heartbeat = zclock_mono ();
        if (self->answers_heartbeats)
            fake_worker_command (self, CV_MDP_HEARTBEAT);
        break;
    case CV_MDP_DISCONNECT:
        self->disconnects++;
        if (self->ready_again)
            fake_worker_ready (self, self->service, self->capacity);
        break;
    default:
        cv_assert_that (false, "%s: the broker sent %s", self->instance, cv_mdp_command_name (message.command));
    }
    cv_mdp_message_reset (&message);
    return self->waited && self->waited (self->waited_arg) ? -1 : 0;
}

fake_worker_t *
fake_worker_new (zloop_t *loop, const char *endpoint, const char *instance, fake_worker_request_fn *on_request,
                 fake_worker_waited_fn *waited, void *waited_arg)
{
    assert (loop && endpoint && instance);
    fake_worker_t *self = cv_calloc (1, sizeof *self);
    snprintf (self->instance, sizeof self->instance, "%s", instance);
    self->loop = loop;
    self->on_request = on_request;
    self->waited = waited;
    self->waited_arg = waited_arg;
    self->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->dealer, 0);
    int rc = zsock_connect (self->dealer, "%s", endpoint);
    assert (rc == 0);
    rc = zloop_reader (loop, self->dealer, s_readable, self);
    assert (rc == 0);
    return self;
}

void
fake_worker_destroy (fake_worker_t **self_p)
{
    fake_worker_t *self = *self_p;
    if (!self)
        return;
    zloop_reader_end (self->loop, self->dealer);
    zsock_destroy (&self->dealer);
    for (size_t i = 0; i < self->request_count; i++)
        cv_envelope_destroy (&self->requests[i]);
    free (self);
    *self_p = NULL;
}

size_t
fake_worker_keep (fake_worker_t *self, cv_envelope_t **request_p)
{
    assert (self->request_count < FAKE_WORKER_MAX_REQUESTS);
    size_t index = self->request_count++;
    self->requests[index] = *request_p;
    self->received_at[index] = zclock_mono ();
    *request_p = NULL;
    return index;
}

void
fake_worker_send (fake_worker_t *self, zmsg_t **msg_p)
{
    int rc = zmsg_send (msg_p, self->dealer);
    assert (rc == 0);
    self->last_sent = zclock_mono ();
}

void
fake_worker_command (fake_worker_t *self, cv_mdp_command_t command)
{
    zmsg_t *msg = cv_mdp_command (command);
    fake_worker_send (self, &msg);
}

void
fake_worker_send_strings (fake_worker_t *self, const char *frame, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, frame);
    for (; frame; frame = va_arg (args, const char *))
        zmsg_addstr (msg, frame);
    va_end (args);
    fake_worker_send (self, &msg);
}

void
fake_worker_ready (fake_worker_t *self, const char *service, uint32_t capacity)
{
    if (service != self->service)
        snprintf (self->service, sizeof self->service, "%s", service);
    self->capacity = capacity;
    zmsg_t *msg = cv_mdp_ready (service, self->instance, capacity);
    fake_worker_send (self, &msg);
    self->beating = true;
}

void
fake_worker_beat (fake_worker_t *self)
{
    if (self->beating)
        fake_worker_command (self, CV_MDP_HEARTBEAT);
}

void
fake_worker_send_reply (fake_worker_t *self, const void *data, size_t size)
{
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REPLY, data, size);
    fake_worker_send (self, &msg);
}

void
fake_worker_send_envelope (fake_worker_t *self, const cv_envelope_t *envelope)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (envelope, &size);
    assert (packed);
    fake_worker_send_reply (self, packed, size);
    free (packed);
}

cv_envelope_t *
fake_worker_error_new (cv_arena_t *arena, const cv_envelope_t *request, cv_error_code_t code, const char *message)
{
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    cv_error_t err;
    cv_error_set (&err, code, NULL, "%s", message);
    cv_envelope_set_error (reply, arena, &err);
    return reply;
}
