/* A fake worker for the orchestrator's isolation tests: a DEALER connected to a broker, read by the
   test's own zloop, that speaks cv_mdp (READY, HEARTBEAT, REPLY, traffic off the protocol) and
   records what the broker sends it. Used by the broker's test, which plays every move itself, and
   by the orchestrator's, whose fakes answer through a request callback.

   The struct is a plain record: the tests read its fields (requests, counts, times) and set the
   behaviour flags; only fake_worker.c writes the record. Nothing sleeps: a test waits by running
   its loop, and the fake's reader ends the loop when the test's wait condition holds. */
#ifndef FAKE_WORKER_H
#define FAKE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_mdp.h"

#define FAKE_WORKER_MAX_REQUESTS 32

typedef struct _fake_worker_t fake_worker_t;

/* Called with each REQUEST the broker sends, unpacked; the callback owns *request_p and may hand
   it to fake_worker_keep. Without a callback every request is kept. */
typedef void (fake_worker_request_fn) (fake_worker_t *fake, cv_envelope_t **request_p, void *arg);

/* The test's wait condition: true ends the loop after the message that made it hold. */
typedef bool (fake_worker_waited_fn) (void *arg);

struct _fake_worker_t {
    char instance[32];
    /* Behaviour, set by the test */
    bool beating;            /* fake_worker_beat sends a HEARTBEAT (set by fake_worker_ready) */
    bool answers_heartbeats; /* answers each HEARTBEAT with one, as cv_worker does */
    bool ready_again;        /* says READY again after a DISCONNECT, as cv_worker reconnects */
    void *arg;               /* the test's, handed to on_request */
    /* What the broker sent, oldest first */
    cv_envelope_t *requests[FAKE_WORKER_MAX_REQUESTS]; /* each REQUEST kept */
    int64_t received_at[FAKE_WORKER_MAX_REQUESTS];     /* mono ms when each arrived */
    size_t request_count;
    size_t heartbeats;      /* HEARTBEATs received: the first says the broker registered it */
    int64_t last_heartbeat; /* mono ms when the last one arrived */
    size_t disconnects;     /* DISCONNECTs received */
    int64_t last_sent;      /* mono ms of the last message the fake sent */
    /* Internal */
    zloop_t *loop;
    zsock_t *dealer;
    char service[32]; /* what it said READY as, to say it again */
    uint32_t capacity;
    fake_worker_request_fn *on_request;
    fake_worker_waited_fn *waited;
    void *waited_arg;
};

/* A peer connected to endpoint and read by loop, that has said nothing yet. on_request may be
   NULL (keep every request) and is called with the fake's arg; waited is the test's wait
   condition, called with waited_arg. */
fake_worker_t *fake_worker_new (zloop_t *loop, const char *endpoint, const char *instance,
                                fake_worker_request_fn *on_request, fake_worker_waited_fn *waited, void *waited_arg);

/* Ends its reader, closes its socket and frees the requests it kept; NULL-safe. */
void fake_worker_destroy (fake_worker_t **self_p);

/* Records request (taken) as the next one received; returns its index. */
size_t fake_worker_keep (fake_worker_t *self, cv_envelope_t **request_p);

/* Sends msg (taken) to the broker. */
void fake_worker_send (fake_worker_t *self, zmsg_t **msg_p);

/* Sends a command with no body (HEARTBEAT, DISCONNECT...). */
void fake_worker_command (fake_worker_t *self, cv_mdp_command_t command);

/* Sends the given string frames, NULL-terminated, as one message: for traffic off the protocol. */
void fake_worker_send_strings (fake_worker_t *self, const char *frame, ...);

/* Says READY as service with capacity and, from then on, beats (see fake_worker_beat). */
void fake_worker_ready (fake_worker_t *self, const char *service, uint32_t capacity);

/* Sends a HEARTBEAT when the fake is beating: the test's heartbeat timer calls it. */
void fake_worker_beat (fake_worker_t *self);

/* Sends bytes as the body of a REPLY. */
void fake_worker_send_reply (fake_worker_t *self, const void *data, size_t size);

/* Sends envelope, packed, as a REPLY. */
void fake_worker_send_envelope (fake_worker_t *self, const cv_envelope_t *envelope);

/* A reply to request, in arena, holding an Error of code with message. */
cv_envelope_t *fake_worker_error_new (cv_arena_t *arena, const cv_envelope_t *request, cv_error_code_t code,
                                      const char *message);

#endif
