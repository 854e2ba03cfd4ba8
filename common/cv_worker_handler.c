/* cv_worker's handler threads: blocking, or on an event loop. */
#include "cv_worker_handler.h"

#include <assert.h>
#include <stdlib.h>

#include "cv_actor.h"
#include "cv_metrics.h"
#include "cv_alloc.h"

struct _cv_worker_call_t {
    const cv_worker_config_t *config;
    zsock_t *pipe;  /* where the reply goes */
    char *origin;   /* the first frame, sent back as it came */
    zlistx_t *list; /* the event-loop handler's calls in flight, or NULL */
    void *handle;   /* this call's place in list */
    cv_arena_t *arena;
    cv_envelope_t *request; /* unpacked, validated; NULL when it did not unpack */
    cv_envelope_t *reply;
    bool probe;
    int64_t started_us;
};

const cv_envelope_t *
cv_worker_call_request (const cv_worker_call_t *call)
{
    return call->request;
}

cv_arena_t *
cv_worker_call_arena (cv_worker_call_t *call)
{
    return call->arena;
}

cv_envelope_t *
cv_worker_call_reply (cv_worker_call_t *call)
{
    return call->reply;
}

/* A call for frame; false in *valid when it did not unpack or validate, its Error reply set. */
static cv_worker_call_t *
s_call_new (const cv_worker_config_t *config, zsock_t *pipe, char **origin_p, zframe_t *frame, bool *valid)
{
    cv_worker_call_t *call = cv_calloc (1, sizeof *call);
    call->config = config;
    call->pipe = pipe;
    call->origin = *origin_p;
    *origin_p = NULL;
    call->arena = cv_arena_new ();
    call->started_us = zclock_usecs ();
    cv_error_t err;
    cv_error_clear (&err);
    call->request = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    call->reply = cv_envelope_reply_new (call->arena, call->request);
    uint32_t accepted = CV_BODY (config->request_body) | CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE);
    *valid = call->request && cv_envelope_validate (call->request, accepted, (uint64_t) zclock_time (), &err) == 0;
    if (!*valid) {
        const cv_envelope_t *request = call->request;
        cv_log_event (config->log, CV_LOG_WARN, request ? request->request_id : NULL,
                      request ? request->trace_id : NULL, "rejected %s message: %s (field %s)",
                      cv_error_code_name (err.code), err.message, *err.field ? err.field : "-");
        cv_envelope_set_error (call->reply, call->arena, &err);
        cv_metric_add (
            cv_metric_with (cv_metrics_messages_rejected (cv_metrics_process ()), cv_error_code_name (err.code)), 1);
    } else
        call->probe = call->request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE;
    return call;
}

/* Sets the reply of a handled request from the logic's outcome, and logs it. */
static void
s_call_settle (cv_worker_call_t *call, int rc, const cv_error_t *err)
{
    const cv_worker_config_t *config = call->config;
    const cv_envelope_t *request = call->request;
    if (call->probe) {
        uint32_t latency_us = (uint32_t) (zclock_usecs () - call->started_us);
        cv_probe_result_set (call->reply, call->arena, config->service, config->instance, rc == 0,
                             rc == 0 ? CV_PROBE_PASSED : err->message, latency_us);
    } else if (rc) {
        cv_log_event (config->log, CV_LOG_WARN, request->request_id, request->trace_id, "%s failed: %s",
                      cv_envelope_body_name (request->body_case), err->message);
        cv_envelope_set_error (call->reply, call->arena, err);
    } else
        cv_log_event (config->log, CV_LOG_DEBUG, request->request_id, request->trace_id,
                      "%s answered with %s in %lld us (attempt %u)", cv_envelope_body_name (request->body_case),
                      cv_envelope_body_name (call->reply->body_case), (long long) (zclock_usecs () - call->started_us),
                      request->attempt);
}

/* Sends [origin][reply] on the call's pipe. */
static void
s_call_send (cv_worker_call_t *call)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (call->reply, &size);
    zmsg_t *out = zmsg_new ();
    zmsg_addstr (out, call->origin);
    zmsg_addmem (out, packed, size);
    zmsg_send (&out, call->pipe);
    free (packed);
}

static void
s_call_destroy (cv_worker_call_t **call_p)
{
    cv_worker_call_t *call = *call_p;
    if (!call)
        return;
    cv_envelope_destroy (&call->request);
    cv_arena_destroy (&call->arena);
    zstr_free (&call->origin);
    free (call);
    *call_p = NULL;
}

/* The zlistx destructor of an event-loop handler's calls in flight. */
static void
s_call_drop (void **item)
{
    s_call_destroy ((cv_worker_call_t **) item);
}

void
cv_worker_call_finish (cv_worker_call_t *call, int rc, const cv_error_t *err)
{
    assert (call && call->list);
    assert (rc == 0 || err);
    s_call_settle (call, rc, err);
    s_call_send (call);
    zlistx_delete (call->list, call->handle); /* destroys call */
}

/* Takes one [origin][envelope] message from pipe: its origin and envelope, or false on $TERM. */
static bool
s_receive (zsock_t *pipe, char **origin, zframe_t **frame)
{
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return false;
    *origin = zmsg_popstr (msg);
    *frame = zmsg_pop (msg);
    zmsg_destroy (&msg);
    if (*origin && streq (*origin, "$TERM")) {
        zstr_free (origin);
        zframe_destroy (frame);
        return false;
    }
    return true;
}

/*  --------------------------------------------------------------------------
    Blocking: one request at a time, start to finish. */

static void
s_serve_blocking (const cv_worker_config_t *config, void *logic, zsock_t *pipe)
{
    char *origin;
    zframe_t *frame;
    while (!zsys_interrupted && s_receive (pipe, &origin, &frame)) {
        if (origin && frame) {
            bool valid;
            cv_worker_call_t *call = s_call_new (config, pipe, &origin, frame, &valid);
            if (valid && call->probe)
                cv_probe_run (config->service, config->instance, config->check, logic, call->arena, call->reply);
            else if (valid) {
                cv_error_t err;
                cv_error_clear (&err);
                int rc = config->handle (logic, call->request, call->arena, call->reply, &err);
                s_call_settle (call, rc, &err);
            }
            s_call_send (call);
            s_call_destroy (&call);
        }
        zstr_free (&origin);
        zframe_destroy (&frame);
    }
}

/*  --------------------------------------------------------------------------
    On an event loop: many at once, each answered when its logic finishes it. */

typedef struct {
    const cv_worker_config_t *config;
    void *logic;
    zlistx_t *calls; /* in flight */
} loop_handler_t;

static int
s_pipe_readable (zloop_t *loop, zsock_t *pipe, void *arg)
{
    loop_handler_t *self = arg;
    char *origin;
    zframe_t *frame;
    if (!s_receive (pipe, &origin, &frame))
        return -1;
    if (origin && frame) {
        bool valid;
        cv_worker_call_t *call = s_call_new (self->config, pipe, &origin, frame, &valid);
        if (!valid) {
            s_call_send (call);
            s_call_destroy (&call);
        } else {
            call->list = self->calls;
            call->handle = zlistx_add_end (self->calls, call);
            cv_worker_begin_fn *begin = call->probe ? self->config->check_begin : self->config->begin;
            if (begin)
                begin (self->logic, call);
            else
                cv_worker_call_finish (call, 0, NULL); /* no check: the probe passes */
        }
    }
    zstr_free (&origin);
    zframe_destroy (&frame);
    return 0;
}

/*  --------------------------------------------------------------------------
    The actor */

void
cv_worker_handler_actor (zsock_t *pipe, void *args)
{
    cv_worker_handler_args_t *handler = args;
    const cv_worker_config_t *config = handler->config;
    const void *shared = handler->shared;
    free (handler);
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    zloop_t *loop = config->begin ? zloop_new () : NULL;
    void *logic =
        loop ? config->loop_logic_new (shared, loop, config->log, &err) : config->logic_new (shared, config->log, &err);
    if (!logic) {
        cv_actor_failed (pipe, &err);
        zloop_destroy (&loop);
        cv_actor_wait_term (pipe);
        return;
    }
    cv_actor_ready (pipe);
    if (loop) {
        loop_handler_t self = {.config = config, .logic = logic, .calls = zlistx_new ()};
        zlistx_set_destructor (self.calls, s_call_drop);
        zloop_reader (loop, pipe, s_pipe_readable, &self);
        zloop_start (loop);
        config->logic_destroy (&logic);
        zlistx_destroy (&self.calls); /* what the logic did not finish is dropped */
        zloop_destroy (&loop);
    } else {
        s_serve_blocking (config, logic, pipe);
        config->logic_destroy (&logic);
    }
}
