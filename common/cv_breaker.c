/* A circuit breaker with the time given by the caller: closed, open, half-open; opened by
   consecutive failures or by a failure rate over a window; shared between threads under a mutex. */
#include "cv_breaker.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

typedef enum {
    EVENT_ASK,     /* a call wants to go */
    EVENT_SUCCESS, /* an allowed call succeeded */
    EVENT_FAILURE  /* an allowed call failed */
} s_event_t;

/* One slice of the rate window: the outcomes reported while now_ms / width was slot. */
typedef struct {
    uint64_t slot;
    unsigned calls;
    unsigned failures;
} s_bucket_t;

struct _cv_breaker_t {
    pthread_mutex_t lock; /* held by every method, around everything below */
    unsigned threshold;
    uint64_t cooldown_ms;
    cv_breaker_state_t state;
    cv_breaker_cause_t cause; /* why it last opened */
    unsigned failures;        /* consecutive, since the last success */
    uint64_t opened_at;       /* OPEN: when it opened */
    bool trial_out;           /* HALF_OPEN: the trial call has been let through */
    uint64_t trial_at;        /* HALF_OPEN: when it was */
    uint64_t opened;          /* times opened, ever */
    uint64_t allowed;         /* calls let through, ever */
    uint64_t refused;         /* calls refused, ever */
    /* the rate rule, off while min_calls is 0 */
    unsigned min_calls;
    unsigned failure_percent;
    uint64_t bucket_ms; /* the width of a bucket */
    s_bucket_t buckets[CV_BREAKER_BUCKETS];
};

cv_breaker_t *
cv_breaker_new (unsigned threshold, uint64_t cooldown_ms)
{
    assert (threshold >= 1);
    assert (cooldown_ms >= 1);
    cv_breaker_t *self = cv_calloc (1, sizeof *self);
    int rc = pthread_mutex_init (&self->lock, NULL);
    assert (rc == 0);
    self->threshold = threshold;
    self->cooldown_ms = cooldown_ms;
    self->state = CV_BREAKER_CLOSED;
    self->cause = CV_BREAKER_NEVER_OPENED;
    return self;
}

void
cv_breaker_destroy (cv_breaker_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        pthread_mutex_destroy (&(*self_p)->lock);
        free (*self_p);
        *self_p = NULL;
    }
}

/* The mutex is not part of the value a const method reads: it may take it. */
static void
s_lock (const cv_breaker_t *self)
{
    int rc = pthread_mutex_lock (&((cv_breaker_t *) self)->lock);
    assert (rc == 0);
}

static void
s_unlock (const cv_breaker_t *self)
{
    int rc = pthread_mutex_unlock (&((cv_breaker_t *) self)->lock);
    assert (rc == 0);
}

/* ---------------------------------------------------------------------------------------------
   The rate window */

static void
s_window_clear (cv_breaker_t *self)
{
    memset (self->buckets, 0, sizeof self->buckets);
}

/* Counts an outcome reported at now_ms. A bucket that holds an older slot is reused; one that
   already holds a newer slot means this outcome is older than the window (a clock that went
   back), and it is dropped. */
static void
s_window_add (cv_breaker_t *self, uint64_t now_ms, bool failed)
{
    if (self->min_calls == 0)
        return;
    uint64_t slot = now_ms / self->bucket_ms;
    s_bucket_t *bucket = &self->buckets[slot % CV_BREAKER_BUCKETS];
    if (bucket->slot != slot) {
        if (bucket->slot > slot && bucket->calls > 0)
            return;
        *bucket = (s_bucket_t){.slot = slot};
    }
    bucket->calls++;
    if (failed)
        bucket->failures++;
}

/* The outcomes in the window as of now_ms: the buckets of its last CV_BREAKER_BUCKETS slots (and
   any a little ahead of it, reported by a thread whose clock read later). */
static void
s_window_count (const cv_breaker_t *self, uint64_t now_ms, unsigned *calls, unsigned *failures)
{
    *calls = 0;
    *failures = 0;
    if (self->min_calls == 0)
        return;
    uint64_t slot = now_ms / self->bucket_ms;
    for (size_t i = 0; i < CV_BREAKER_BUCKETS; i++) {
        const s_bucket_t *bucket = &self->buckets[i];
        if (bucket->slot + CV_BREAKER_BUCKETS > slot) {
            *calls += bucket->calls;
            *failures += bucket->failures;
        }
    }
}

static bool
s_rate_exceeded (const cv_breaker_t *self, uint64_t now_ms)
{
    unsigned calls, failures;
    s_window_count (self, now_ms, &calls, &failures);
    return self->min_calls > 0 && calls >= self->min_calls
           && (uint64_t) failures * 100 >= (uint64_t) self->failure_percent * calls;
}

void
cv_breaker_set_rate (cv_breaker_t *self, unsigned min_calls, uint64_t window_ms, unsigned failure_percent)
{
    assert (self);
    assert (min_calls >= 1);
    assert (window_ms >= CV_BREAKER_BUCKETS);
    assert (failure_percent >= 1 && failure_percent <= 100);
    s_lock (self);
    self->min_calls = min_calls;
    self->failure_percent = failure_percent;
    self->bucket_ms = window_ms / CV_BREAKER_BUCKETS;
    s_window_clear (self);
    s_unlock (self);
}

/* ---------------------------------------------------------------------------------------------
   The state machine */

static void
s_open (cv_breaker_t *self, uint64_t now_ms, cv_breaker_cause_t cause)
{
    self->state = CV_BREAKER_OPEN;
    self->cause = cause;
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
    s_window_clear (self);
}

/* The one place the state moves, under the lock. Returns whether an EVENT_ASK is allowed. */
static bool
s_move (cv_breaker_t *self, s_event_t event, uint64_t now_ms)
{
    switch (self->state) {
    case CV_BREAKER_CLOSED:
        if (event == EVENT_ASK)
            return true;
        s_window_add (self, now_ms, event == EVENT_FAILURE);
        if (event == EVENT_SUCCESS)
            self->failures = 0;
        else if (++self->failures >= self->threshold)
            s_open (self, now_ms, CV_BREAKER_CONSECUTIVE);
        else if (s_rate_exceeded (self, now_ms))
            s_open (self, now_ms, CV_BREAKER_RATE);
        return false;

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
            s_open (self, now_ms, CV_BREAKER_TRIAL_FAILED);
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
    s_lock (self);
    bool allowed = s_move (self, EVENT_ASK, now_ms);
    if (allowed)
        self->allowed++;
    else
        self->refused++;
    s_unlock (self);
    return allowed;
}

static void s_stats (const cv_breaker_t *self, uint64_t now_ms, cv_breaker_stats_t *stats);

cv_breaker_state_t
cv_breaker_report (cv_breaker_t *self, bool failed, uint64_t now_ms, cv_breaker_stats_t *after)
{
    assert (self);
    s_lock (self);
    cv_breaker_state_t before = self->state;
    s_move (self, failed ? EVENT_FAILURE : EVENT_SUCCESS, now_ms);
    if (after)
        s_stats (self, now_ms, after);
    s_unlock (self);
    return before;
}

void
cv_breaker_success (cv_breaker_t *self, uint64_t now_ms)
{
    cv_breaker_report (self, false, now_ms, NULL);
}

void
cv_breaker_failure (cv_breaker_t *self, uint64_t now_ms)
{
    cv_breaker_report (self, true, now_ms, NULL);
}

/* ---------------------------------------------------------------------------------------------
   What it holds */

static uint64_t
s_retry_at (const cv_breaker_t *self)
{
    return self->state == CV_BREAKER_OPEN ? self->opened_at + self->cooldown_ms : 0;
}

cv_breaker_state_t
cv_breaker_state (const cv_breaker_t *self)
{
    assert (self);
    s_lock (self);
    cv_breaker_state_t state = self->state;
    s_unlock (self);
    return state;
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

double
cv_breaker_state_number (cv_breaker_state_t state)
{
    return state == CV_BREAKER_OPEN ? 2 : state == CV_BREAKER_HALF_OPEN ? 1 : 0;
}

const char *
cv_breaker_cause_name (cv_breaker_cause_t cause)
{
    switch (cause) {
    case CV_BREAKER_NEVER_OPENED:
        return "never";
    case CV_BREAKER_CONSECUTIVE:
        return "consecutive";
    case CV_BREAKER_RATE:
        return "rate";
    case CV_BREAKER_TRIAL_FAILED:
        return "trial";
    }
    return "unknown";
}

unsigned
cv_breaker_failures (const cv_breaker_t *self)
{
    assert (self);
    s_lock (self);
    unsigned failures = self->failures;
    s_unlock (self);
    return failures;
}

uint64_t
cv_breaker_retry_at (const cv_breaker_t *self)
{
    assert (self);
    s_lock (self);
    uint64_t retry_at = s_retry_at (self);
    s_unlock (self);
    return retry_at;
}

uint64_t
cv_breaker_opened (const cv_breaker_t *self)
{
    assert (self);
    s_lock (self);
    uint64_t opened = self->opened;
    s_unlock (self);
    return opened;
}

/* The stats, the lock held. */
static void
s_stats (const cv_breaker_t *self, uint64_t now_ms, cv_breaker_stats_t *stats)
{
    *stats = (cv_breaker_stats_t){
        .state = self->state,
        .cause = self->cause,
        .failures = self->failures,
        .retry_at = s_retry_at (self),
        .opened = self->opened,
        .allowed = self->allowed,
        .refused = self->refused,
    };
    s_window_count (self, now_ms, &stats->window_calls, &stats->window_failures);
}

void
cv_breaker_stats (const cv_breaker_t *self, uint64_t now_ms, cv_breaker_stats_t *stats)
{
    assert (self && stats);
    s_lock (self);
    s_stats (self, now_ms, stats);
    s_unlock (self);
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

/* Reports outcomes at now_ms as pattern says, 'F' a failure and 'S' a success, each after an
   allow that must pass. */
static void
s_report (cv_breaker_t *breaker, uint64_t now_ms, const char *pattern)
{
    for (const char *outcome = pattern; *outcome; outcome++) {
        cv_assert_that (cv_breaker_allow (breaker, now_ms), "refused at outcome %zu of %s",
                        (size_t) (outcome - pattern), pattern);
        if (*outcome == 'F')
            cv_breaker_failure (breaker, now_ms);
        else
            cv_breaker_success (breaker, now_ms);
    }
}

/* The rate rule: the minimum call count, the failure share, what closing does to the window. */
static void
s_test_rate (void)
{
    uint64_t now = 50000;
    cv_breaker_stats_t stats;
    /* Consecutive failures would need 100: only the rate opens these. */
    cv_breaker_t *breaker = cv_breaker_new (100, 500);
    cv_breaker_set_rate (breaker, 10, 1000, 50);

    /* Nine failures in nine calls: below the minimum call count, still closed. */
    s_report (breaker, now, "FFFFFFFFF");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.cause == CV_BREAKER_NEVER_OPENED);
    assert (stats.window_calls == 9 && stats.window_failures == 9 && stats.failures == 9);
    /* The tenth reaches it. */
    s_report (breaker, now, "F");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_OPEN && stats.cause == CV_BREAKER_RATE && stats.opened == 1);
    assert (stats.retry_at == now + 500);
    assert (strcmp (cv_breaker_cause_name (stats.cause), "rate") == 0);

    /* Closing empties the window: one failure after it opens nothing. */
    now += 500;
    assert (cv_breaker_allow (breaker, now));
    cv_breaker_success (breaker, now);
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.window_calls == 0 && stats.window_failures == 0);
    s_report (breaker, now, "F");
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);

    /* Below the share it stays closed; the failure that brings it to 50 % opens it. Successes
       between the failures keep the consecutive count low: the rate alone decides. */
    now += 5000;
    cv_breaker_set_rate (breaker, 10, 1000, 50);
    s_report (breaker, now, "SSSSSSFSFSF");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.window_calls == 11 && stats.window_failures == 3 && stats.failures == 1);
    s_report (breaker, now, "SF");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.window_calls == 13 && stats.window_failures == 4);
    s_report (breaker, now, "FF");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.window_calls == 15 && stats.window_failures == 6);
    s_report (breaker, now, "FF");
    cv_breaker_stats (breaker, now, &stats);
    cv_assert_that (stats.state == CV_BREAKER_CLOSED && stats.window_failures == 8, "%s at %u of %u",
                    cv_breaker_state_name (stats.state), stats.window_failures, stats.window_calls);
    s_report (breaker, now, "F");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_OPEN && stats.cause == CV_BREAKER_RATE && stats.opened == 2);
    cv_breaker_destroy (&breaker);

    /* 100 % opens only when every call in the window failed; consecutive failures still open
       first when they reach the threshold. */
    breaker = cv_breaker_new (3, 500);
    cv_breaker_set_rate (breaker, 2, 1000, 100);
    s_report (breaker, now, "SF");
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);
    s_report (breaker, now, "F");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.failures == 2);
    s_report (breaker, now, "F");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_OPEN && stats.cause == CV_BREAKER_CONSECUTIVE);
    assert (strcmp (cv_breaker_cause_name (stats.cause), "consecutive") == 0);
    /* A failed trial reopens it, and says so. */
    assert (cv_breaker_allow (breaker, now + 500));
    cv_breaker_failure (breaker, now + 500);
    cv_breaker_stats (breaker, now + 500, &stats);
    assert (stats.state == CV_BREAKER_OPEN && stats.cause == CV_BREAKER_TRIAL_FAILED && stats.opened == 2);
    assert (strcmp (cv_breaker_cause_name (stats.cause), "trial") == 0);
    assert (strcmp (cv_breaker_cause_name (CV_BREAKER_NEVER_OPENED), "never") == 0);
    cv_breaker_destroy (&breaker);
    breaker = cv_breaker_new (100, 500);
    cv_breaker_set_rate (breaker, 2, 1000, 100);
    s_report (breaker, now, "FF");
    cv_breaker_stats (breaker, now, &stats);
    assert (stats.state == CV_BREAKER_OPEN && stats.cause == CV_BREAKER_RATE);
    cv_breaker_destroy (&breaker);
}

/* The window slides a bucket (window / CV_BREAKER_BUCKETS) at a time. */
static void
s_test_window (void)
{
    cv_breaker_stats_t stats;
    uint64_t start = 100000; /* a multiple of the bucket, 100 ms */
    cv_breaker_t *breaker = cv_breaker_new (1000, 500);
    cv_breaker_set_rate (breaker, 10, 1005, 50); /* rounded down to 1000 */

    /* Five failures at the start count until the window has moved past their bucket. */
    s_report (breaker, start, "FFFFF");
    cv_breaker_stats (breaker, start + 999, &stats);
    assert (stats.window_calls == 5 && stats.window_failures == 5);
    cv_breaker_stats (breaker, start + 1000, &stats);
    assert (stats.window_calls == 0 && stats.window_failures == 0);

    /* Five more just before the first leave: ten in the window, it opens. */
    s_report (breaker, start + 950, "FFFF");
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);
    s_report (breaker, start + 950, "F");
    assert (cv_breaker_state (breaker) == CV_BREAKER_OPEN);
    cv_breaker_destroy (&breaker);

    /* The same five more once the first have left: five in the window, it stays closed. The
       bucket they land in is the first's, reused. */
    breaker = cv_breaker_new (1000, 500);
    cv_breaker_set_rate (breaker, 10, 1000, 50);
    s_report (breaker, start, "FFFFF");
    s_report (breaker, start + 1000, "FFFFF");
    cv_breaker_stats (breaker, start + 1000, &stats);
    assert (stats.state == CV_BREAKER_CLOSED && stats.window_calls == 5);
    /* Spread over the window, bucket by bucket: each step drops the oldest one. */
    for (uint64_t step = 1; step < CV_BREAKER_BUCKETS; step++)
        s_report (breaker, start + 1000 + step * 100, "S");
    cv_breaker_stats (breaker, start + 1900, &stats);
    assert (stats.window_calls == 14 && stats.window_failures == 5);
    cv_breaker_stats (breaker, start + 2000, &stats);
    assert (stats.window_calls == 9 && stats.window_failures == 0);
    cv_breaker_stats (breaker, start + 2500, &stats);
    assert (stats.window_calls == 4);
    cv_breaker_stats (breaker, start + 10000, &stats);
    assert (stats.window_calls == 0);

    /* An outcome a little in the past (another thread's earlier clock reading) still counts; one
       older than the window, whose bucket is reused since, is dropped. */
    s_report (breaker, start + 1850, "F");
    cv_breaker_stats (breaker, start + 1900, &stats);
    assert (stats.window_calls == 15 && stats.window_failures == 6);
    s_report (breaker, start + 900, "F");
    cv_breaker_stats (breaker, start + 1900, &stats);
    assert (stats.window_calls == 15 && stats.window_failures == 6);
    cv_breaker_destroy (&breaker);
}

/* Four threads on one breaker. */
#define S_THREADS 4
#define S_ROUNDS 200
#define S_CALLS 5000

typedef struct {
    cv_breaker_t *breaker;
    _Atomic uint64_t clock;      /* the hammer's shared clock, ms */
    pthread_barrier_t start;     /* the trial rounds: all go at once */
    pthread_barrier_t done;      /* and are counted once all have asked */
    uint64_t round_now;          /* the trial round's time, set before start */
    _Atomic unsigned trials;     /* the round's calls let through */
    uint64_t allowed[S_THREADS]; /* the hammer's calls let through, per thread */
    uint64_t refused[S_THREADS];
} s_shared_t;

typedef struct {
    s_shared_t *shared;
    unsigned index;
} s_thread_arg_t;

/* Calls, outcomes and stats from every thread at once, on a clock that moves under them. */
static void *
s_hammer (void *args)
{
    s_thread_arg_t *arg = args;
    s_shared_t *shared = arg->shared;
    cv_breaker_stats_t stats;
    for (unsigned call = 0; call < S_CALLS; call++) {
        uint64_t now = atomic_fetch_add (&shared->clock, 1);
        if (cv_breaker_allow (shared->breaker, now)) {
            shared->allowed[arg->index]++;
            if ((call + arg->index) % 3 == 0)
                cv_breaker_failure (shared->breaker, now);
            else
                cv_breaker_success (shared->breaker, now);
        } else
            shared->refused[arg->index]++;
        if (call % 64 == 0) {
            cv_breaker_stats (shared->breaker, now, &stats);
            assert (stats.state <= CV_BREAKER_HALF_OPEN);
            assert (stats.window_failures <= stats.window_calls);
        }
    }
    return NULL;
}

/* Every round, all threads ask a breaker whose cool-down has just passed: one trial only. */
static void *
s_ask (void *args)
{
    s_shared_t *shared = ((s_thread_arg_t *) args)->shared;
    for (unsigned round = 0; round < S_ROUNDS; round++) {
        pthread_barrier_wait (&shared->start);
        if (cv_breaker_allow (shared->breaker, shared->round_now))
            atomic_fetch_add (&shared->trials, 1);
        pthread_barrier_wait (&shared->done);
    }
    return NULL;
}

/* Starts S_THREADS threads running body on shared. */
static void
s_start (s_shared_t *shared, pthread_t *threads, s_thread_arg_t *args, void *(*body) (void *) )
{
    for (unsigned i = 0; i < S_THREADS; i++) {
        args[i] = (s_thread_arg_t){shared, i};
        int rc = pthread_create (&threads[i], NULL, body, &args[i]);
        assert (rc == 0);
    }
}

static void
s_join (pthread_t *threads)
{
    for (unsigned i = 0; i < S_THREADS; i++)
        pthread_join (threads[i], NULL);
}

static void
s_test_threads (void)
{
    s_shared_t *shared = cv_calloc (1, sizeof *shared);
    shared->breaker = cv_breaker_new (3, 7);
    cv_breaker_set_rate (shared->breaker, 20, 200, 30);
    atomic_store (&shared->clock, 1000);

    /* No call is lost or counted twice: every allow went one way or the other. */
    pthread_t threads[S_THREADS];
    s_thread_arg_t args[S_THREADS];
    s_start (shared, threads, args, s_hammer);
    s_join (threads);
    uint64_t allowed = 0, refused = 0;
    for (unsigned i = 0; i < S_THREADS; i++) {
        allowed += shared->allowed[i];
        refused += shared->refused[i];
    }
    cv_breaker_stats_t stats;
    cv_breaker_stats (shared->breaker, atomic_load (&shared->clock), &stats);
    assert (allowed + refused == (uint64_t) S_THREADS * S_CALLS);
    cv_assert_that (stats.allowed == allowed && stats.refused == refused,
                    "the breaker counted %llu allowed, %llu refused; the threads %llu, %llu",
                    (unsigned long long) stats.allowed, (unsigned long long) stats.refused,
                    (unsigned long long) allowed, (unsigned long long) refused);
    assert (stats.opened >= 1);
    cv_breaker_destroy (&shared->breaker);

    /* Exactly one trial per cool-down, however many threads ask at the same moment. */
    shared->breaker = cv_breaker_new (1, 50);
    assert (cv_breaker_allow (shared->breaker, 0));
    cv_breaker_failure (shared->breaker, 0);
    pthread_barrier_init (&shared->start, NULL, S_THREADS + 1);
    pthread_barrier_init (&shared->done, NULL, S_THREADS + 1);
    s_start (shared, threads, args, s_ask);
    for (unsigned round = 0; round < S_ROUNDS; round++) {
        /* The breaker is open; this round's time is when its cool-down ends. */
        shared->round_now = cv_breaker_retry_at (shared->breaker);
        atomic_store (&shared->trials, 0);
        pthread_barrier_wait (&shared->start);
        pthread_barrier_wait (&shared->done);
        unsigned trials = atomic_load (&shared->trials);
        cv_assert_that (trials == 1, "round %u: %u trials let through", round, trials);
        assert (cv_breaker_state (shared->breaker) == CV_BREAKER_HALF_OPEN);
        cv_breaker_failure (shared->breaker, shared->round_now);
    }
    s_join (threads);
    pthread_barrier_destroy (&shared->start);
    pthread_barrier_destroy (&shared->done);
    assert (cv_breaker_opened (shared->breaker) == 1 + S_ROUNDS);
    cv_breaker_destroy (&shared->breaker);
    free (shared);
}

void
cv_breaker_test (bool verbose)
{
    uint64_t now = 1000000;
    cv_breaker_t *breaker = cv_breaker_new (3, 500);
    assert (cv_breaker_state (breaker) == CV_BREAKER_CLOSED);
    assert (cv_breaker_retry_at (breaker) == 0);

    /* a report tells its own move: the state before, the stats after */
    {
        cv_breaker_t *moved = cv_breaker_new (1, 500);
        cv_breaker_stats_t after;
        assert (cv_breaker_allow (moved, now));
        assert (cv_breaker_report (moved, true, now, &after) == CV_BREAKER_CLOSED);
        assert (after.state == CV_BREAKER_OPEN && after.cause == CV_BREAKER_CONSECUTIVE);
        assert (after.failures == 1 && after.retry_at == now + 500);
        assert (cv_breaker_allow (moved, now + 500)); /* the trial */
        assert (cv_breaker_report (moved, false, now + 500, &after) == CV_BREAKER_HALF_OPEN);
        assert (after.state == CV_BREAKER_CLOSED && after.failures == 0);
        assert (cv_breaker_report (moved, false, now + 501, NULL) == CV_BREAKER_CLOSED);
        cv_breaker_destroy (&moved);
    }

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

    s_test_rate ();
    s_test_window ();
    s_test_threads ();

    cv_breaker_destroy (&breaker);
    cv_breaker_destroy (&breaker);
    assert (!breaker);
    if (verbose)
        printf ("cv_breaker: ok\n");
}
