/* cv_worker's handler threads (internal to cv_worker): each takes [origin][envelope] messages on
   its pipe, unpacks and validates the envelope, runs the service's logic on it and sends back
   [origin][reply envelope], exactly one reply for each request it takes, until $TERM.

   A blocking handler (config->handle) serves one request at a time. An event-loop handler
   (config->begin) runs a zloop, takes up to its share of the capacity at once, and answers each
   when the logic finishes it (cv_worker_call_finish), in any order. */
#ifndef CV_WORKER_HANDLER_H
#define CV_WORKER_HANDLER_H

#include <czmq.h>

#include "cv_worker.h"

typedef struct {
    const cv_worker_config_t *config;
    const void *shared; /* the worker's, read only */
} cv_worker_handler_args_t;

/* The handler actor (cv_actor handshake: OK once its logic is made). args is a malloc'd
   cv_worker_handler_args_t, freed by the actor. */
void cv_worker_handler_actor (zsock_t *pipe, void *args);

#endif
