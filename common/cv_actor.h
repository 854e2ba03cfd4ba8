/* The start handshake of conveyor's actors, so a caller learns whether an actor serves or why not.

   An actor following it signals its pipe at once (as zactor_new requires), sets itself up, then
   sends "OK" when it serves, or "ERROR <reason>" and waits for $TERM (cv_actor_wait_term). */
#ifndef CV_ACTOR_H
#define CV_ACTOR_H

#include <stdbool.h>

#include <czmq.h>

#include "cv_error.h"

/* Starts task with args; returns the actor once it serves, or NULL with err and the actor gone. */
zactor_t *cv_actor_start (zactor_fn *task, void *args, cv_error_t *err) CV_MUST_CHECK;

/* Tells the caller the actor serves ("OK"), or why it cannot (message, with err's text). */
void cv_actor_ready (zsock_t *pipe);
void cv_actor_failed (zsock_t *pipe, const cv_error_t *err);

/* Blocks until $TERM (or the pipe closes): what an actor that failed to start does last. */
void cv_actor_wait_term (zsock_t *pipe);

/* For a daemon's main, before it starts any thread: holds SIGINT and SIGTERM back in every
   thread from then on (threads inherit the mask) and keeps czmq from installing its own handler,
   so the only place these signals are taken is cv_actor_wait_signal. Without this a signal lands
   on whichever thread the kernel picks, before or after czmq's handler is in place. Both signals
   stop a daemon even when it was started with SIGINT ignored (a shell's background job). */
void cv_actor_hold_signals (void);

/* Waits until SIGINT or SIGTERM arrives; returns which. Needs cv_actor_hold_signals first. */
int cv_actor_wait_signal (void);

void cv_actor_test (bool verbose);

#endif
