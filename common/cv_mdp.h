/* The worker protocol between the orchestrator's ROUTER and each worker's DEALER, Majordomo-style.

   Every message starts with the protocol frame "CVW01" and a one-byte command:
     READY      worker -> broker   service, instance, capacity (decimal)
     REQUEST    broker -> worker   one packed Envelope
     REPLY      worker -> broker   one packed Envelope
     HEARTBEAT  both ways          nothing
     DISCONNECT both ways          nothing; the broker sends it to a worker it does not know,
                                   which then says READY again
   On the broker's ROUTER the peer's routing id comes first; callers strip and add it. */
#ifndef CV_MDP_H
#define CV_MDP_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_error.h"

#define CV_MDP_PROTOCOL "CVW01"
#define CV_MDP_MAX_CAPACITY 1024

typedef enum {
    CV_MDP_READY = 1,
    CV_MDP_REQUEST = 2,
    CV_MDP_REPLY = 3,
    CV_MDP_HEARTBEAT = 4,
    CV_MDP_DISCONNECT = 5
} cv_mdp_command_t;

/* A decoded protocol message. body is owned (REQUEST and REPLY only). */
typedef struct {
    cv_mdp_command_t command;
    char service[65];
    char instance[65];
    uint32_t capacity;
    zframe_t *body;
} cv_mdp_message_t;

/* Builds a message; body (REQUEST, REPLY) is copied. */
zmsg_t *cv_mdp_ready (const char *service, const char *instance, uint32_t capacity);
zmsg_t *cv_mdp_command (cv_mdp_command_t command);
zmsg_t *cv_mdp_with_body (cv_mdp_command_t command, const void *body, size_t size);

/* Decodes and destroys *msg_p into message; -1 with err when the frames do not follow the protocol. */
int cv_mdp_decode (zmsg_t **msg_p, cv_mdp_message_t *message, cv_error_t *err) CV_MUST_CHECK;
/* Frees what cv_mdp_decode put in message. */
void cv_mdp_message_reset (cv_mdp_message_t *message);

const char *cv_mdp_command_name (cv_mdp_command_t command);

void cv_mdp_test (bool verbose);

#endif
