/* Waiting in a test's own zloop until a condition holds or the time is up. */
#include "loop_wait.h"

#include <assert.h>

void
loop_wait_init (loop_wait_t *self, zloop_t *loop, void *test, int check_ms)
{
    assert (loop && check_ms > 0);
    *self = (loop_wait_t){.loop = loop, .test = test, .check_ms = check_ms};
}

bool
loop_wait_met (const loop_wait_t *self)
{
    return self->condition && self->condition (self->test, self->condition_arg);
}

bool
loop_wait_met_any (void *self)
{
    return loop_wait_met (self);
}

/* The check timer: ends the loop once the condition holds or the time is up. */
static int
s_check (zloop_t *loop, int timer_id, void *arg)
{
    loop_wait_t *self = arg;
    return loop_wait_met (self) || zclock_mono () >= self->until ? -1 : 0;
}

bool
loop_wait_run (loop_wait_t *self, loop_wait_fn *condition, const void *arg, int timeout_ms)
{
    self->condition = condition;
    self->condition_arg = arg;
    self->until = zclock_mono () + timeout_ms;
    if (!loop_wait_met (self)) {
        int timer = zloop_timer (self->loop, (size_t) self->check_ms, 0, s_check, self);
        assert (timer != -1);
        zloop_start (self->loop);
        zloop_timer_end (self->loop, timer);
    }
    bool met = loop_wait_met (self);
    self->condition = NULL;
    return met;
}

typedef struct {
    const size_t *counter;
    size_t target;
} s_count_t;

static bool
s_count_reached (void *test, const void *arg)
{
    const s_count_t *count = arg;
    return *count->counter >= count->target;
}

bool
loop_wait_count (loop_wait_t *self, const size_t *counter, size_t target, int timeout_ms)
{
    s_count_t count = {counter, target};
    return loop_wait_run (self, s_count_reached, &count, timeout_ms);
}
