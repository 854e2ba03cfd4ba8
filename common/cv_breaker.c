/* A circuit breaker with the time given by the caller: closed, open, half-open. */
#include "cv_breaker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

typedef enum {
    EVENT_ASK,     /* a call wants to go */
    EVENT_SUCCESS, /* an allowed call succeeded */
    EVENT_FAILURE  /* an allowed call failed */
} s_event_t;

struct _cv_breaker_t {
    unsigned threshold;
    uint64_t cooldown_ms;
    cv_breaker_state_t state;
    unsigned failures;  /* consecutive, since the last success */
    uint64_t opened_at; /* OPEN: when it opened */
    bool trial_out;     /* HALF_OPEN: the trial call has been let through */
    uint64_t trial_at;  /* HALF_OPEN: when it was */
    uint64_t opened;    /* times opened, ever */
};

cv_breaker_t *
cv_breaker_new (unsigned threshold, uint64_t cooldown_ms)
{
    assert (threshold >= 1);
    assert (cooldown_ms >= 1);
    cv_breaker_t *self = cv_calloc (1, sizeof *self);
    self->threshold = threshold;
    self->cooldown_ms = cooldown_ms;
    self->state = CV_BREAKER_CLOSED;
    return self;
}

void
cv_breaker_destroy (cv_breaker_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static void
s_open (cv_breaker_t *self, uint64_t now_ms)
{
    self->state = CV_BREAKER_OPEN;
    self->opened_at = now_ms;
    self->trial_out = false;
    self->opened++;
}

static void
s_close (cv_breaker_t *self)
{
    self->state = CV_BREAKER_CLOSED;
    self->failures = 0;
    self->trial_out = false;
}

/* The one place the state moves. Returns whether an EVENT_ASK is allowed. */
static bool
s_move (cv_breaker_t *self, s_event_t event, uint64_t now_ms)
{
    switch (self->state) {
    case CV_BREAKER_CLOSED:
        if (event == EVENT_SUCCESS)
            self->failures = 0;
        else if (event == EVENT_FAILURE && ++self->failures >= self->threshold)
            s_open (self, now_ms);
        return event == EVENT_ASK;

    case CV_BREAKER_OPEN:
        if (event == EVENT_ASK) {
            if (now_ms < self->opened_at + self->cooldown_ms)
                return false;
            self->state = CV_BREAKER_HALF_OPEN;
            self->trial_out = true;
            self->trial_at = now_ms;
            return true;
        }
        /* An outcome while open can only be a late one: a success still proves the dependency
           works; a failure adds nothing to what opened the breaker. */
        if (event == EVENT_SUCCESS)
            s_close (self);
        else
            self->failures++;
        return false;

    case CV_BREAKER_HALF_OPEN:
        if (event == EVENT_ASK) {
            /* One trial at a time; a trial never reported is given up after a cool-down. */
            if (self->trial_out && now_ms < self->trial_at + self->cooldown_ms)
                return false;
            self->trial_out = true;
            self->trial_at = now_ms;
            return true;
        }
        if (event == EVENT_SUCCESS)
            s_close (self);
        else {
            self->failures++;
            s_open (self, now_ms);
        }
        return false;
    }
    assert (false);
    return false;
}

bool
cv_breaker_allow (cv_breaker_t *self, uint64_t now_ms)
{
    assert (self);
    return s_move (self, EVENT_ASK, now_ms);
}

void
cv_breaker_success (cv_breaker_t *self, uint64_t now_ms)
{
    assert (self);
    s_move (self, EVENT_SUCCESS, now_ms);
}

void
cv_breaker_failure (cv_breaker_t *self, uint64_t now_ms)
{
    assert (self);
    s_move (self, EVENT_FAILURE, now_ms);
}

cv_breaker_state_t
cv_breaker_state (const cv_breaker_t *self)
{
    assert (self);
    return self->state;
}

const char *
cv_breaker_state_name (cv_breaker_state_t state)
{
    switch (state) {
    case CV_BREAKER_CLOSED:
        return "closed";
    case CV_BREAKER_OPEN:
        return "open";
    case CV_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

unsigned
cv_breaker_failures (const cv_breaker_t *self)
{
    assert (self);
    return self->failures;
}

uint64_t
cv_breaker_retry_at (const cv_breaker_t *self)
{
    assert (self);
    return self->state == CV_BREAKER_OPEN ? self->opened_at + self->cooldown_ms : 0;
}

uint64_t
cv_breaker_opened (const cv_breaker_t *self)
{
    assert (self);
    return self->opened;
}

void
cv_breaker_test (bool verbose)
{
    uint64_t now = 1000000;
    cv_breaker_t *breaker = cv_breaker_new (3, 500);
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);
    assert (cv_breaker_retry_at (breaker) == 0);

    /* CLOSED: failures below the threshold, broken by a success, do not open it. */
    for (int i = 0; i < 2; i++) {
        assert (cv_breaker_allow (breaker, now));
        cv_breaker_failure (breaker, now);
    }
    assert (cv_breaker_failures (breaker) == 2);
    assert (cv_breaker_allow (breaker, now));
    cv_breaker_success (breaker, now);
    assert (cv_breaker_failures (breaker) == 0);
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);

    /* CLOSED -> OPEN at the threshold of consecutive failures. */
    for (int i = 0; i < 3; i++) {
        assert (cv_breaker_allow (breaker, now));
        cv_breaker_failure (breaker, now);
    }
    assert (cv_breaker_state (breaker) == CV_BREAKER_OPEN);
    assert (cv_breaker_opened (breaker) == 1);
    assert (cv_breaker_retry_at (breaker) == now + 500);

    /* OPEN refuses calls until the cool-down has passed. */
    assert (!cv_breaker_allow (breaker, now));
    assert (!cv_breaker_allow (breaker, now + 499));
    assert (cv_breaker_state (breaker) == CV_BREAKER_OPEN);

    /* OPEN -> HALF_OPEN: one trial goes, the next is refused while it is out. */
    assert (cv_breaker_allow (breaker, now + 500));
    assert (cv_breaker_state (breaker) == CV_BREAKER_HALF_OPEN);
    assert (cv_breaker_retry_at (breaker) == 0);
    assert (!cv_breaker_allow (breaker, now + 501));

    /* HALF_OPEN -> OPEN when the trial fails, with a new cool-down from then. */
    now += 600;
    cv_breaker_failure (breaker, now);
    assert (cv_breaker_state (breaker) == CV_BREAKER_OPEN);
    assert (cv_breaker_opened (breaker) == 2);
    assert (cv_breaker_retry_at (breaker) == now + 500);
    assert (!cv_breaker_allow (breaker, now + 499));

    /* HALF_OPEN -> CLOSED when the trial succeeds; calls flow again. */
    assert (cv_breaker_allow (breaker, now + 500));
    assert (cv_breaker_state (breaker) == CV_BREAKER_HALF_OPEN);
    cv_breaker_success (breaker, now + 510);
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);
    assert (cv_breaker_failures (breaker) == 0);
    assert (cv_breaker_allow (breaker, now + 511));
    assert (cv_breaker_allow (breaker, now + 511));
    cv_breaker_success (breaker, now + 512);

    /* A trial whose outcome never comes is given up after a cool-down. */
    now += 10000;
    for (int i = 0; i < 3; i++) {
        assert (cv_breaker_allow (breaker, now));
        cv_breaker_failure (breaker, now);
    }
    assert (cv_breaker_allow (breaker, now + 500));
    assert (!cv_breaker_allow (breaker, now + 999));
    assert (cv_breaker_allow (breaker, now + 1000));
    assert (cv_breaker_state (breaker) == CV_BREAKER_HALF_OPEN);

    /* A late success while open closes it: the dependency answered. */
    cv_breaker_failure (breaker, now + 1001);
    assert (cv_breaker_state (breaker) == CV_BREAKER_OPEN);
    cv_breaker_success (breaker, now + 1002);
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);

    /* A threshold of one opens on the first failure. */
    cv_breaker_t *touchy = cv_breaker_new (1, 1);
    assert (cv_breaker_allow (touchy, 0));
    cv_breaker_failure (touchy, 0);
    assert (cv_breaker_state (touchy) == CV_BREAKER_OPEN);
    assert (!cv_breaker_allow (touchy, 0));
    assert (cv_breaker_allow (touchy, 1));
    cv_breaker_destroy (&touchy);
    assert (!touchy);

    assert (strcmp (cv_breaker_state_name (CV_BREAKER_CLOSED), "closed") == 0);
    assert (strcmp (cv_breaker_state_name (CV_BREAKER_OPEN), "open") == 0);
    assert (strcmp (cv_breaker_state_name (CV_BREAKER_HALF_OPEN), "half-open") == 0);

    cv_breaker_destroy (&breaker);
    cv_breaker_destroy (&breaker);
    assert (!breaker);
    if (verbose)
        printf ("cv_breaker: ok\n");
}
