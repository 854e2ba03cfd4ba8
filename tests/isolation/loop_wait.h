/* Waiting in a test's own zloop: the loop runs until a condition holds or the wait times out, so
   that a broken service fails the test instead of hanging it. Used by the orchestrator's and the
   broker's isolation tests, whose fakes, HTTP answers and probes are all read by that one loop.
   Nothing sleeps: readers end the loop (return -1) when loop_wait_met says so, and a check timer
   catches what no message announces (a database row, the broker's own state). */
#ifndef LOOP_WAIT_H
#define LOOP_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

/* A wait's condition, called with the test and the wait's argument. */
typedef bool (loop_wait_fn) (void *test, const void *arg);

/* Plain data, embedded in the test's fixture and set up by loop_wait_init. */
typedef struct {
    zloop_t *loop;
    void *test;              /* handed to each condition */
    int check_ms;            /* how often the check timer looks */
    loop_wait_fn *condition; /* what the running loop waits for; NULL between waits */
    const void *condition_arg;
    int64_t until; /* mono ms when that wait gives up */
} loop_wait_t;

void loop_wait_init (loop_wait_t *self, zloop_t *loop, void *test, int check_ms);

/* True while a wait runs and its condition holds: a reader then returns -1 to end the loop. */
bool loop_wait_met (const loop_wait_t *self);

/* loop_wait_met for a callback that takes a void * (a fake worker's, fake_worker.h). */
bool loop_wait_met_any (void *self);

/* Runs the loop until condition holds, at most timeout_ms; true when it held. */
bool loop_wait_run (loop_wait_t *self, loop_wait_fn *condition, const void *arg, int timeout_ms);

/* Runs the loop until *counter reaches target, at most timeout_ms; true when it did. */
bool loop_wait_count (loop_wait_t *self, const size_t *counter, size_t target, int timeout_ms);

#endif
