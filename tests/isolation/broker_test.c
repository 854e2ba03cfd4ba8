/* Isolation test of the orchestrator's broker (orchestrator_broker): the broker runs in the test's
   own zloop, bound on a free loopback port, and fake workers (fake_worker.h: DEALER sockets
   speaking cv_mdp) drive it over real sockets. It covers registration, LRU dispatch within capacity, resends after a
   worker dies, after an attempt times out or after an UNAVAILABLE reply, deadlines, unknown peers,
   malformed traffic, cancel and heartbeats.

   Each wait runs the loop until a condition holds (loop_wait.h), bounded by a timeout so that a broken broker
   fails the test instead of hanging it. Nothing sleeps. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_mdp.h"
#include "fake_worker.h"
#include "loop_wait.h"
#include "orchestrator_broker.h"

#define HEARTBEAT_MS 50
#define LIVENESS 3
#define ATTEMPT_TIMEOUT_MS 300
#define MAX_ATTEMPTS 3
#define BACKOFF_MS 10
#define WAIT_MS 5000 /* for what should happen soon: only a broken broker makes a wait take this long */
#define CHECK_MS 2   /* how often a wait checks broker state, which cannot wake the loop by itself */

#define MAX_FAKES 8
#define MAX_OUTCOMES 16
#define TEXT "where is my card"

typedef struct _test_t test_t;

/* A job's owner, as the broker's caller has one; the done callback finds the test through it. */
typedef struct _owner_t owner_t;
struct _owner_t {
    test_t *test;
    const char *name;
    owner_t *cancels;      /* cancelled from inside done, as an owner going away does; NULL: none */
    uint32_t max_attempts; /* the job's own limit; 0: the broker's */
};

/* One call of the done callback. */
typedef struct {
    owner_t *owner;
    cv_envelope_t *reply; /* owned; NULL when the job failed */
    cv_error_t err;       /* the failure, when it failed */
    uint32_t attempts;    /* how many times the job was sent */
    int64_t at;           /* mono ms of the call */
    int64_t wall;         /* and wall-clock ms, to compare with deadlines */
} outcome_t;

struct _test_t {
    zloop_t *loop;
    cv_log_t *log;
    orchestrator_broker_t *broker;
    fake_worker_t *fakes[MAX_FAKES];
    size_t fake_count;
    outcome_t outcomes[MAX_OUTCOMES];
    size_t done_count;
    loop_wait_t wait; /* what the running loop waits for */
};

/*  --------------------------------------------------------------------------
    Waiting: the loop runs until a condition holds or the wait times out (loop_wait) */

typedef struct {
    const char *service;
    size_t workers;
} workers_t;

static bool
s_workers_reached (void *test_arg, const void *arg)
{
    const test_t *test = test_arg;
    const workers_t *want = arg;
    return orchestrator_broker_workers (test->broker, want->service) == want->workers;
}

/* Waits until the broker counts exactly that many workers of service. */
static bool
s_wait_workers (test_t *test, const char *service, size_t workers, int timeout_ms)
{
    workers_t want = {service, workers};
    return loop_wait_run (&test->wait, s_workers_reached, &want, timeout_ms);
}

/* A barrier on the broker-to-fake pipe, for a registered fake: waits for two more HEARTBEATs.
   ZeroMQ keeps one peer's messages in order, and the broker heartbeats each worker at most once
   per HEARTBEAT_MS, so the second was sent after this call began. Whatever the broker sent this
   fake before then has arrived, and a few broker ticks have run. */
static void
s_flush (test_t *test, fake_worker_t *fake)
{
    bool flushed = loop_wait_count (&test->wait, &fake->heartbeats, fake->heartbeats + 2, WAIT_MS);
    assert (flushed);
}

/*  --------------------------------------------------------------------------
    Fake workers */

/* A peer connected to the broker that has said nothing yet. */
static fake_worker_t *
s_fake_new (test_t *test, const char *instance)
{
    assert (test->fake_count < MAX_FAKES);
    fake_worker_t *fake = fake_worker_new (test->loop, orchestrator_broker_endpoint (test->broker), instance, NULL,
                                           loop_wait_met_any, &test->wait);
    test->fakes[test->fake_count++] = fake;
    return fake;
}

/* A live worker of service, registered by the broker before this returns. */
static fake_worker_t *
s_worker_new (test_t *test, const char *service, const char *instance, uint32_t capacity)
{
    size_t before = orchestrator_broker_workers (test->broker, service);
    fake_worker_t *fake = s_fake_new (test, instance);
    fake_worker_ready (fake, service, capacity);
    bool registered = s_wait_workers (test, service, before + 1, WAIT_MS);
    assert (registered);
    return fake;
}

/* The loop's heartbeat timer: each live fake worker says HEARTBEAT. */
static int
s_beat (zloop_t *loop, int timer_id, void *arg)
{
    test_t *test = arg;
    for (size_t i = 0; i < test->fake_count; i++)
        fake_worker_beat (test->fakes[i]);
    return 0;
}

/* Answers request with an Intent named name; the reply echoes the request's message id. */
static void
s_reply_intent (fake_worker_t *fake, const cv_envelope_t *request, const char *name)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
    intent->name = cv_arena_strdup (arena, name);
    intent->confidence = 0.9f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    fake_worker_send_envelope (fake, reply);
    cv_arena_destroy (&arena);
}

/* Answers request with an Error of code. */
static void
s_reply_error (fake_worker_t *fake, const cv_envelope_t *request, cv_error_code_t code, const char *message)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = fake_worker_error_new (arena, request, code, message);
    fake_worker_send_envelope (fake, reply);
    cv_arena_destroy (&arena);
}

/* The index-th REQUEST fake received, which must be attempt attempt of job_id: message id
   "<job_id>.<attempt>", the attempt field set, the caller's IntentRequest unchanged. */
static const cv_envelope_t *
s_expect_request (const fake_worker_t *fake, size_t index, const char *job_id, uint32_t attempt)
{
    assert (index < fake->request_count);
    const cv_envelope_t *request = fake->requests[index];
    char message_id[CV_NAME_MAX_BYTES + 1];
    snprintf (message_id, sizeof message_id, "%s.%u", job_id, attempt);
    cv_assert_that (!(!streq (request->message_id, message_id) || request->attempt != attempt),
                    "%s: expected REQUEST %s (attempt %u), got %s (attempt %u)", fake->instance, message_id, attempt,
                    request->message_id, request->attempt);
    assert (streq (request->request_id, job_id));
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST);
    assert (streq (request->intent_request->text, TEXT));
    return request;
}

/*  --------------------------------------------------------------------------
    The broker's caller: jobs, owners, the done callback */

static owner_t
s_owner (test_t *test, const char *name)
{
    owner_t owner = {test, name, NULL, 0};
    return owner;
}

static void
s_done (void *owner_arg, cv_envelope_t *reply, const uint8_t *packed, size_t size, uint32_t attempts,
        const cv_error_t *err)
{
    owner_t *owner = owner_arg;
    test_t *test = owner->test;
    assert ((reply == NULL) != (err == NULL));
    assert ((reply == NULL) == (packed == NULL));
    if (reply) { /* the bytes are the reply as it came */
        cv_error_t unpack_err;
        cv_envelope_t *again = cv_envelope_unpack (packed, size, &unpack_err);
        assert (again && streq (again->message_id, reply->message_id) && again->body_case == reply->body_case);
        cv_envelope_destroy (&again);
    }
    assert (test->done_count < MAX_OUTCOMES);
    outcome_t *outcome = &test->outcomes[test->done_count++];
    outcome->owner = owner;
    outcome->reply = reply;
    outcome->attempts = attempts;
    if (err)
        outcome->err = *err;
    outcome->at = zclock_mono ();
    outcome->wall = zclock_time ();
    if (owner->cancels)
        orchestrator_broker_cancel (test->broker, owner->cancels);
}

/* Submits an IntentRequest as job job_id of service, due at deadline (wall-clock ms). */
static void
s_submit_at (test_t *test, const char *service, const char *job_id, uint64_t deadline, owner_t *owner)
{
    cv_arena_t *arena = cv_arena_new ();
    char trace_id[33];
    cv_envelope_random_hex (trace_id, sizeof trace_id);
    cv_envelope_t *request = cv_envelope_new (arena, job_id, trace_id, deadline, 1);
    Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
    body->user_id = cv_arena_strdup (arena, "cust-1");
    body->text = cv_arena_strdup (arena, TEXT);
    orchestrator_broker_submit (test->broker, service, job_id, &arena, request, owner->max_attempts, s_done, owner);
    assert (arena == NULL);
}

/* Submits job_id, due deadline_in_ms from now; returns the deadline. */
static uint64_t
s_submit (test_t *test, const char *service, const char *job_id, int64_t deadline_in_ms, owner_t *owner)
{
    uint64_t deadline = (uint64_t) (zclock_time () + deadline_in_ms);
    s_submit_at (test, service, job_id, deadline, owner);
    return deadline;
}

/* The one outcome of owner's job; aborts unless done was called exactly once for it. */
static const outcome_t *
s_outcome_of (const owner_t *owner)
{
    const test_t *test = owner->test;
    const outcome_t *found = NULL;
    for (size_t i = 0; i < test->done_count; i++)
        if (test->outcomes[i].owner == owner) {
            cv_assert_that (!found, "done was called twice for %s", owner->name);
            found = &test->outcomes[i];
        }
    cv_assert_that (found, "done was never called for %s", owner->name);
    return found;
}

/* The job ended with the worker's Intent reply to message_id. */
static void
s_expect_intent (const outcome_t *outcome, const char *message_id, const char *name)
{
    const cv_envelope_t *reply = outcome->reply;
    cv_assert_that (reply, "%s: expected a reply, the job failed: %s", outcome->owner->name, outcome->err.message);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT);
    assert (streq (reply->message_id, message_id));
    assert (streq (reply->intent->name, name));
}

/* The job failed with code and a message holding text. */
static void
s_expect_failure (const outcome_t *outcome, cv_error_code_t code, const char *text)
{
    cv_assert_that (!(outcome->reply || outcome->err.code != code || !strstr (outcome->err.message, text)),
                    "%s: expected failure %s '%s', got %s: %s", outcome->owner->name, cv_error_code_name (code), text,
                    outcome->reply ? "a reply" : cv_error_code_name (outcome->err.code), outcome->err.message);
}

/*  --------------------------------------------------------------------------
    The fixture: one loop, one broker, its fakes */

static test_t *
s_test_new (int attempt_timeout_ms, bool verbose)
{
    test_t *test = cv_calloc (1, sizeof *test);
    test->loop = zloop_new ();
    test->log = cv_log_new ("orchestrator", "broker-test", verbose);
    orchestrator_broker_config_t config = {
        .endpoint = "tcp://127.0.0.1:*",
        .heartbeat_ms = HEARTBEAT_MS,
        .liveness = LIVENESS,
        .attempt_timeout_ms = attempt_timeout_ms,
        .max_attempts = MAX_ATTEMPTS,
        .backoff_ms = BACKOFF_MS,
        .log = test->log,
    };
    cv_error_t err;
    test->broker = orchestrator_broker_new (test->loop, &config, &err);
    cv_assert_that (test->broker, "broker did not start: %s", err.message);
    assert (strncmp (orchestrator_broker_endpoint (test->broker), "tcp://127.0.0.1:", 16) == 0);
    assert (!streq (orchestrator_broker_endpoint (test->broker), "tcp://127.0.0.1:*"));
    loop_wait_init (&test->wait, test->loop, test, CHECK_MS);
    int timer = zloop_timer (test->loop, HEARTBEAT_MS, 0, s_beat, test);
    assert (timer != -1);
    return test;
}

static void
s_test_destroy (test_t **test_p)
{
    test_t *test = *test_p;
    orchestrator_broker_destroy (&test->broker);
    assert (test->broker == NULL);
    for (size_t i = 0; i < test->fake_count; i++)
        fake_worker_destroy (&test->fakes[i]);
    for (size_t i = 0; i < test->done_count; i++)
        cv_envelope_destroy (&test->outcomes[i].reply);
    zloop_destroy (&test->loop);
    cv_log_destroy (&test->log);
    free (test);
    *test_p = NULL;
}

/*  --------------------------------------------------------------------------
    The cases */

/* 1. READY registers a worker under its service. A submitted job goes to it as a REQUEST with
   message id "<job_id>.1" and attempt 1, and the caller's envelope otherwise unchanged. The
   worker's REPLY with that message id reaches done exactly once, with the reply itself. */
static void
s_test_ready_and_reply (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    assert (orchestrator_broker_workers (test->broker, "intent") == 0);
    fake_worker_t *worker = s_worker_new (test, "intent", "intent-1", 1);
    assert (orchestrator_broker_workers (test->broker, "intent") == 1);
    assert (orchestrator_broker_workers (test->broker, "gatherer") == 0);

    owner_t owner = s_owner (test, "ready");
    s_submit (test, "intent", "ready-1", 5000, &owner);
    assert (orchestrator_broker_jobs (test->broker) == 1);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    const cv_envelope_t *request = s_expect_request (worker, 0, "ready-1", 1);
    assert (test->done_count == 0);

    s_reply_intent (worker, request, "card_arrival");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_flush (test, worker); /* a second call, from a later tick, would have come by now */
    assert (test->done_count == 1);
    s_expect_intent (s_outcome_of (&owner), "ready-1.1", "card_arrival");
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_test_destroy (&test);
}

/* 2. Capacity and least-recently-used dispatch. Two workers of capacity 1 take two jobs, one each;
   a third waits while both are busy and goes to the first worker that replies. Once both are idle,
   the next job goes to the one used least recently. */
static void
s_test_lru_and_capacity (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *one = s_worker_new (test, "gatherer", "gatherer-1", 1);
    fake_worker_t *two = s_worker_new (test, "gatherer", "gatherer-2", 1);
    owner_t first = s_owner (test, "first"), second = s_owner (test, "second");
    owner_t third = s_owner (test, "third"), fourth = s_owner (test, "fourth");

    s_submit (test, "gatherer", "lru-1", 5000, &first);
    s_submit (test, "gatherer", "lru-2", 5000, &second);
    assert (loop_wait_count (&test->wait, &one->request_count, 1, WAIT_MS));
    assert (loop_wait_count (&test->wait, &two->request_count, 1, WAIT_MS));
    /* Both were idle since they registered, so which takes which job is not defined. */
    fake_worker_t *worker_1 = streq (one->requests[0]->message_id, "lru-1.1") ? one : two;
    fake_worker_t *worker_2 = worker_1 == one ? two : one;
    s_expect_request (worker_1, 0, "lru-1", 1);
    s_expect_request (worker_2, 0, "lru-2", 1);

    /* Both at capacity: the third job is queued, not sent. */
    s_submit (test, "gatherer", "lru-3", 5000, &third);
    s_flush (test, one);
    s_flush (test, two);
    assert (one->request_count == 1 && two->request_count == 1);
    assert (orchestrator_broker_jobs (test->broker) == 3);

    /* The worker of the second job (the more recently used) replies, so only its freed slot can
       explain where the third job goes. */
    s_reply_intent (worker_2, worker_2->requests[0], "second");
    assert (loop_wait_count (&test->wait, &worker_2->request_count, 2, WAIT_MS));
    s_expect_request (worker_2, 1, "lru-3", 1);
    assert (worker_1->request_count == 1);
    s_expect_intent (s_outcome_of (&second), "lru-2.1", "second");

    /* Both idle again: worker_1 was last used for job 1, worker_2 for job 3 (after the flushes,
       so at a later millisecond), and job 4 goes to worker_1. */
    s_reply_intent (worker_1, worker_1->requests[0], "first");
    s_reply_intent (worker_2, worker_2->requests[1], "third");
    assert (loop_wait_count (&test->wait, &test->done_count, 3, WAIT_MS));
    s_submit (test, "gatherer", "lru-4", 5000, &fourth);
    assert (loop_wait_count (&test->wait, &worker_1->request_count, 2, WAIT_MS));
    s_expect_request (worker_1, 1, "lru-4", 1);
    assert (worker_2->request_count == 2);
    s_reply_intent (worker_1, worker_1->requests[1], "fourth");
    assert (loop_wait_count (&test->wait, &test->done_count, 4, WAIT_MS));

    s_expect_intent (s_outcome_of (&first), "lru-1.1", "first");
    s_expect_intent (s_outcome_of (&third), "lru-3.1", "third");
    s_expect_intent (s_outcome_of (&fourth), "lru-4.1", "fourth");
    assert (test->done_count == 4);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_test_destroy (&test);
}

/* 3. A job for a service with no worker waits. Waiting is not an attempt, so nothing fails it
   while its deadline is ahead. When a worker says READY it gets the job, as attempt 1. */
static void
s_test_waits_for_worker (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    owner_t owner = s_owner (test, "patient");
    s_submit (test, "decision", "wait-1", 5000, &owner);
    /* Two attempt timeouts and many broker ticks go by, and the job must outlast them. */
    assert (!loop_wait_count (&test->wait, &test->done_count, 1, 2 * ATTEMPT_TIMEOUT_MS));
    assert (orchestrator_broker_jobs (test->broker) == 1);

    fake_worker_t *worker = s_worker_new (test, "decision", "decision-1", 1);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    s_reply_intent (worker, s_expect_request (worker, 0, "wait-1", 1), "worth the wait");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_expect_intent (s_outcome_of (&owner), "wait-1.1", "worth the wait");
    s_test_destroy (&test);
}

/* 4. Worker death. A worker takes a job and goes silent: no heartbeat, no reply. After liveness x
   heartbeat the broker removes it and sends the job to a second worker, as attempt 2 with message
   id "<job_id>.2". The attempt timeout here is long, so only the death can explain the resend. A
   late REPLY from the dead worker, with the old message id, is dropped: the broker no longer knows
   that peer and tells it to reconnect. The second worker's reply completes the job, once. */
static void
s_test_worker_death (bool verbose)
{
    test_t *test = s_test_new (10 * ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *dying = s_worker_new (test, "responder", "responder-dying", 1);
    owner_t owner = s_owner (test, "survivor");
    s_submit (test, "responder", "death-1", 10000, &owner);
    assert (loop_wait_count (&test->wait, &dying->request_count, 1, WAIT_MS));
    const cv_envelope_t *first = s_expect_request (dying, 0, "death-1", 1);
    dying->beating = false;
    int64_t silent_since = dying->last_sent;

    fake_worker_t *healthy = s_worker_new (test, "responder", "responder-healthy", 1);
    assert (orchestrator_broker_workers (test->broker, "responder") == 2);
    assert (loop_wait_count (&test->wait, &healthy->request_count, 1, WAIT_MS));
    const cv_envelope_t *second = s_expect_request (healthy, 0, "death-1", 2);
    int64_t resent_at = healthy->received_at[0];
    assert (resent_at - silent_since >= HEARTBEAT_MS * LIVENESS);
    assert (resent_at - dying->received_at[0] < 10 * ATTEMPT_TIMEOUT_MS);
    assert (orchestrator_broker_workers (test->broker, "responder") == 1);

    s_reply_intent (dying, first, "from the dead");
    assert (loop_wait_count (&test->wait, &dying->disconnects, 1, WAIT_MS));
    assert (test->done_count == 0);
    assert (orchestrator_broker_jobs (test->broker) == 1);

    s_reply_intent (healthy, second, "from the living");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_flush (test, healthy);
    assert (test->done_count == 1);
    s_expect_intent (s_outcome_of (&owner), "death-1.2", "from the living");
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_test_destroy (&test);
}

/* 5. Attempt timeout. A worker that keeps heartbeating but never replies stays registered; each
   attempt ends after attempt_timeout and is resent, and a late reply to an earlier attempt is
   dropped. After max_attempts the job fails with UNAVAILABLE, saying the broker gave up. */
static void
s_test_attempt_timeout (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *mute = s_worker_new (test, "intent", "intent-mute", 1);
    owner_t owner = s_owner (test, "impatient");
    s_submit (test, "intent", "slow-1", 10000, &owner);
    assert (loop_wait_count (&test->wait, &mute->request_count, 1, WAIT_MS));
    s_expect_request (mute, 0, "slow-1", 1);

    assert (loop_wait_count (&test->wait, &mute->request_count, 2, WAIT_MS));
    s_expect_request (mute, 1, "slow-1", 2);
    /* Resent on the attempt timeout. The worker's liveness (150 ms) is not what ran out: it is
       still registered. The tolerance covers delivery delays, not the timeout. */
    assert (mute->received_at[1] - mute->received_at[0] >= ATTEMPT_TIMEOUT_MS - HEARTBEAT_MS);
    assert (orchestrator_broker_workers (test->broker, "intent") == 1);

    /* Same worker, old message id: the broker must not take it for attempt 2's answer. */
    s_reply_intent (mute, mute->requests[0], "too late");
    assert (loop_wait_count (&test->wait, &mute->request_count, 3, WAIT_MS));
    s_expect_request (mute, 2, "slow-1", 3);
    assert (test->done_count == 0);

    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    const outcome_t *outcome = s_outcome_of (&owner);
    s_expect_failure (outcome, CV_ERR_UNAVAILABLE, "gave up after 3 attempt(s)");
    assert (outcome->at - mute->received_at[2] >= ATTEMPT_TIMEOUT_MS - HEARTBEAT_MS);
    s_flush (test, mute);
    assert (mute->request_count == MAX_ATTEMPTS);
    assert (test->done_count == 1);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    assert (orchestrator_broker_workers (test->broker, "intent") == 1);
    s_test_destroy (&test);
}

/* 6. Error replies. UNAVAILABLE means a retry may help: the job is resent as the next attempt at
   once, without waiting for the attempt timeout, and fails after max_attempts of them. Any other
   code, such as INVALID, ends the job at once: done gets that Error reply and nothing is resent. */
static void
s_test_error_replies (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *worker = s_worker_new (test, "gatherer", "gatherer-1", 1);
    owner_t retried = s_owner (test, "retried"), rejected = s_owner (test, "rejected");
    owner_t exhausted = s_owner (test, "exhausted");

    s_submit (test, "gatherer", "flaky-1", 10000, &retried);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    s_reply_error (worker, s_expect_request (worker, 0, "flaky-1", 1), CV_ERR_UNAVAILABLE, "bank API down");
    assert (loop_wait_count (&test->wait, &worker->request_count, 2, WAIT_MS));
    s_expect_request (worker, 1, "flaky-1", 2);
    assert (worker->received_at[1] - worker->received_at[0] < ATTEMPT_TIMEOUT_MS);
    assert (test->done_count == 0);
    s_reply_intent (worker, worker->requests[1], "recovered");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_expect_intent (s_outcome_of (&retried), "flaky-1.2", "recovered");
    assert (s_outcome_of (&retried)->attempts == 2);

    s_submit (test, "gatherer", "bad-1", 10000, &rejected);
    assert (loop_wait_count (&test->wait, &worker->request_count, 3, WAIT_MS));
    s_reply_error (worker, s_expect_request (worker, 2, "bad-1", 1), CV_ERR_INVALID, "user_id is not known");
    assert (loop_wait_count (&test->wait, &test->done_count, 2, WAIT_MS));
    const outcome_t *outcome = s_outcome_of (&rejected);
    assert (outcome->reply && outcome->reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR);
    assert (outcome->reply->error->code == CONVEYOR__V1__ERROR__CODE__INVALID);
    assert (streq (outcome->reply->error->message, "user_id is not known"));
    assert (streq (outcome->reply->message_id, "bad-1.1"));
    assert (outcome->at - worker->received_at[2] < ATTEMPT_TIMEOUT_MS);
    s_flush (test, worker);
    assert (worker->request_count == 3);

    s_submit (test, "gatherer", "down-1", 10000, &exhausted);
    for (uint32_t attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        assert (loop_wait_count (&test->wait, &worker->request_count, 3 + attempt, WAIT_MS));
        s_reply_error (worker, s_expect_request (worker, 2 + attempt, "down-1", attempt), CV_ERR_UNAVAILABLE,
                       "still down");
    }
    assert (loop_wait_count (&test->wait, &test->done_count, 3, WAIT_MS));
    s_expect_failure (s_outcome_of (&exhausted), CV_ERR_UNAVAILABLE, "gave up after 3 attempt(s)");
    assert (s_outcome_of (&exhausted)->attempts == MAX_ATTEMPTS);
    s_flush (test, worker);
    assert (worker->request_count == 3 + MAX_ATTEMPTS);
    assert (test->done_count == 3);
    assert (orchestrator_broker_jobs (test->broker) == 0);

    /* A job's own lower limit (its request's attempts left) ends it sooner; a higher one does not
       raise the broker's. */
    owner_t capped = s_owner (test, "capped");
    capped.max_attempts = 2;
    s_submit (test, "gatherer", "capped-1", 10000, &capped);
    for (uint32_t attempt = 1; attempt <= 2; attempt++) {
        assert (loop_wait_count (&test->wait, &worker->request_count, 3 + MAX_ATTEMPTS + attempt, WAIT_MS));
        s_reply_error (worker, s_expect_request (worker, 2 + MAX_ATTEMPTS + attempt, "capped-1", attempt),
                       CV_ERR_UNAVAILABLE, "still down");
    }
    assert (loop_wait_count (&test->wait, &test->done_count, 4, WAIT_MS));
    s_expect_failure (s_outcome_of (&capped), CV_ERR_UNAVAILABLE, "gave up after 2 attempt(s)");
    assert (s_outcome_of (&capped)->attempts == 2);
    owner_t generous = s_owner (test, "generous");
    generous.max_attempts = MAX_ATTEMPTS + 5;
    s_submit (test, "gatherer", "generous-1", 10000, &generous);
    for (uint32_t attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        assert (loop_wait_count (&test->wait, &worker->request_count, 5 + MAX_ATTEMPTS + attempt, WAIT_MS));
        s_reply_error (worker, s_expect_request (worker, 4 + MAX_ATTEMPTS + attempt, "generous-1", attempt),
                       CV_ERR_UNAVAILABLE, "still down");
    }
    assert (loop_wait_count (&test->wait, &test->done_count, 5, WAIT_MS));
    s_expect_failure (s_outcome_of (&generous), CV_ERR_UNAVAILABLE, "gave up after 3 attempt(s)");
    s_flush (test, worker);
    assert (worker->request_count == 5 + 2 * MAX_ATTEMPTS);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_test_destroy (&test);
}

/* 7. Deadline. A job whose envelope deadline passes while it waits for a worker fails with
   DEADLINE_EXCEEDED, no sooner than the deadline, and a worker that comes later gets nothing. */
static void
s_test_deadline (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    owner_t owner = s_owner (test, "hurried");
    uint64_t deadline = s_submit (test, "responder", "hurry-1", 200, &owner);
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    const outcome_t *outcome = s_outcome_of (&owner);
    s_expect_failure (outcome, CV_ERR_DEADLINE_EXCEEDED, "deadline passed");
    assert ((uint64_t) outcome->wall >= deadline);
    assert (orchestrator_broker_jobs (test->broker) == 0);

    fake_worker_t *worker = s_worker_new (test, "responder", "responder-1", 1);
    s_flush (test, worker);
    assert (worker->request_count == 0);
    assert (test->done_count == 1);
    s_test_destroy (&test);
}

/* 8. A peer that never said READY gets a DISCONNECT for a HEARTBEAT and for a REPLY. Its REPLY is
   not taken, even one that carries the message id of a job in flight. After the DISCONNECT it may
   say READY and become a worker. */
static void
s_test_unknown_peer (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *worker = s_worker_new (test, "intent", "intent-1", 1);
    owner_t owner = s_owner (test, "targeted");
    s_submit (test, "intent", "ghost-1", 5000, &owner);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    const cv_envelope_t *request = s_expect_request (worker, 0, "ghost-1", 1);

    fake_worker_t *stranger = s_fake_new (test, "stranger");
    fake_worker_command (stranger, CV_MDP_HEARTBEAT);
    assert (loop_wait_count (&test->wait, &stranger->disconnects, 1, WAIT_MS));
    s_reply_intent (stranger, request, "impostor");
    assert (loop_wait_count (&test->wait, &stranger->disconnects, 2, WAIT_MS));
    assert (test->done_count == 0);
    assert (orchestrator_broker_jobs (test->broker) == 1);
    assert (orchestrator_broker_workers (test->broker, "intent") == 1);

    s_reply_intent (worker, request, "genuine");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_expect_intent (s_outcome_of (&owner), "ghost-1.1", "genuine");

    fake_worker_ready (stranger, "intent", 1);
    assert (s_wait_workers (test, "intent", 2, WAIT_MS));
    s_test_destroy (&test);
}

/* 9. Malformed traffic is dropped and changes nothing. The cases: a first frame that is not the
   protocol, an unknown or malformed command frame, READY with capacity 0, out of range or not a
   number, READY with frames missing, a REQUEST sent to the broker, and REPLYs whose body is not an
   Envelope, has an extra frame or answers no job. The broker keeps working: the job in flight
   completes with the real reply, and a normal job afterwards succeeds. */
static void
s_test_malformed (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *worker = s_worker_new (test, "decision", "decision-1", 1);

    /* From a registered worker, before any job. */
    fake_worker_send_strings (worker, "HELLO", "\x04", NULL);
    fake_worker_send_strings (worker, CV_MDP_PROTOCOL, "\x2a", NULL);
    fake_worker_send_strings (worker, CV_MDP_PROTOCOL, "\x04\x04", NULL);
    fake_worker_send_strings (worker, CV_MDP_PROTOCOL, NULL);
    zmsg_t *msg = cv_mdp_ready ("decision", "decision-1", 0);
    fake_worker_send (worker, &msg);

    /* From a new peer: READYs that must not register it. A HEARTBEAT after them still gets a
       DISCONNECT, and the peer's messages arrive in order, so the broker dropped them all. */
    fake_worker_t *peer = s_fake_new (test, "decision-bad");
    msg = cv_mdp_ready ("decision", "decision-bad", 0);
    fake_worker_send (peer, &msg);
    msg = cv_mdp_ready ("decision", "decision-bad", CV_MDP_MAX_CAPACITY + 1);
    fake_worker_send (peer, &msg);
    fake_worker_send_strings (peer, CV_MDP_PROTOCOL, "\x01", "decision", "decision-bad", "lots", NULL);
    fake_worker_send_strings (peer, CV_MDP_PROTOCOL, "\x01", "decision", "decision-bad", "4x", NULL);
    fake_worker_send_strings (peer, CV_MDP_PROTOCOL, "\x01", "decision", "4", NULL);
    fake_worker_send_strings (peer, CV_MDP_PROTOCOL, "\x01", "", "decision-bad", "4", NULL);
    fake_worker_command (peer, CV_MDP_HEARTBEAT);
    assert (loop_wait_count (&test->wait, &peer->disconnects, 1, WAIT_MS));
    assert (orchestrator_broker_workers (test->broker, "decision") == 1);

    /* A job in flight, and junk from its worker before the real reply. */
    owner_t owner = s_owner (test, "unshaken");
    s_submit (test, "decision", "junk-1", 5000, &owner);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    const cv_envelope_t *request = s_expect_request (worker, 0, "junk-1", 1);
    static const char garbage[] = "\xff\xff\xff not an envelope";
    msg = cv_mdp_with_body (CV_MDP_REPLY, garbage, sizeof garbage - 1);
    fake_worker_send (worker, &msg);
    size_t size;
    uint8_t *packed = cv_envelope_pack (request, &size);
    msg = cv_mdp_with_body (CV_MDP_REPLY, packed, size);
    zmsg_addstr (msg, "an extra frame");
    fake_worker_send (worker, &msg);
    msg = cv_mdp_with_body (CV_MDP_REQUEST, packed, size);
    fake_worker_send (worker, &msg);
    free (packed);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *stray = cv_envelope_reply_new (arena, request);
    stray->message_id = "junk-0.1";
    cv_error_t err;
    cv_error_set (&err, CV_ERR_INVALID, NULL, "answers no job");
    cv_envelope_set_error (stray, arena, &err);
    fake_worker_send_envelope (worker, stray);
    cv_arena_destroy (&arena);
    s_reply_intent (worker, request, "real");

    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_expect_intent (s_outcome_of (&owner), "junk-1.1", "real");

    owner_t after = s_owner (test, "after");
    s_submit (test, "decision", "junk-2", 5000, &after);
    assert (loop_wait_count (&test->wait, &worker->request_count, 2, WAIT_MS));
    s_reply_intent (worker, s_expect_request (worker, 1, "junk-2", 1), "still fine");
    assert (loop_wait_count (&test->wait, &test->done_count, 2, WAIT_MS));
    s_expect_intent (s_outcome_of (&after), "junk-2.1", "still fine");
    assert (orchestrator_broker_workers (test->broker, "decision") == 1);
    assert (worker->disconnects == 0);
    s_test_destroy (&test);
}

/* 10. orchestrator_broker_cancel forgets every job of an owner, in flight or queued, and done is
   never called for them: not when the worker replies later, not when a deadline passes. A job in
   flight frees its worker's slot at once. An owner may cancel from inside its done callback, as
   the orchestrator's requests do when they finish. Its other jobs are then forgotten too, even
   those that expired at the same moment as the one being reported. */
static void
s_test_cancel (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *worker = s_worker_new (test, "intent", "intent-1", 1);
    owner_t leaving = s_owner (test, "leaving"), staying = s_owner (test, "staying");
    owner_t queued = s_owner (test, "queued"), other = s_owner (test, "other");

    s_submit (test, "intent", "gone-1", 5000, &leaving);
    assert (loop_wait_count (&test->wait, &worker->request_count, 1, WAIT_MS));
    s_expect_request (worker, 0, "gone-1", 1);
    orchestrator_broker_cancel (test->broker, &leaving);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_reply_intent (worker, worker->requests[0], "nobody listens");
    /* The freed slot takes the next job. Its reply follows the cancelled job's on the same pipe,
       so once done is called for it, the broker has handled both. */
    s_submit (test, "intent", "kept-1", 5000, &staying);
    assert (loop_wait_count (&test->wait, &worker->request_count, 2, WAIT_MS));
    s_reply_intent (worker, s_expect_request (worker, 1, "kept-1", 1), "heard");
    assert (loop_wait_count (&test->wait, &test->done_count, 1, WAIT_MS));
    s_flush (test, worker);
    assert (test->done_count == 1);
    s_expect_intent (s_outcome_of (&staying), "kept-1.1", "heard");

    s_submit (test, "nobody", "gone-2", 100, &queued);
    s_submit (test, "nobody", "other-1", 5000, &other);
    s_submit (test, "nobody", "gone-3", 100, &queued);
    orchestrator_broker_cancel (test->broker, &queued);
    assert (orchestrator_broker_jobs (test->broker) == 1);
    /* Both cancelled jobs' deadlines pass during this wait. */
    assert (!loop_wait_count (&test->wait, &test->done_count, 2, 3 * 100));
    orchestrator_broker_cancel (test->broker, &other);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    assert (test->done_count == 1);

    /* One deadline for two jobs, so they expire in the same broker pass; the first done cancels
       the owner, and the second must not be reported. */
    owner_t going = s_owner (test, "going");
    going.cancels = &going;
    uint64_t deadline = (uint64_t) zclock_time () + 100;
    s_submit_at (test, "nobody", "going-1", deadline, &going);
    s_submit_at (test, "nobody", "going-2", deadline, &going);
    assert (loop_wait_count (&test->wait, &test->done_count, 2, WAIT_MS));
    s_flush (test, worker);
    s_expect_failure (s_outcome_of (&going), CV_ERR_DEADLINE_EXCEEDED, "deadline passed");
    assert (test->done_count == 2);
    assert (orchestrator_broker_jobs (test->broker) == 0);
    s_test_destroy (&test);
}

/* 11. The broker heartbeats a registered worker, once every heartbeat_ms or so. The worker's own
   heartbeats keep it registered for much longer than liveness x heartbeat. */
static void
s_test_heartbeats (bool verbose)
{
    test_t *test = s_test_new (ATTEMPT_TIMEOUT_MS, verbose);
    fake_worker_t *worker = s_worker_new (test, "decision", "decision-1", 1);
    assert (loop_wait_count (&test->wait, &worker->heartbeats, 1, WAIT_MS));
    int64_t first = worker->last_heartbeat;
    assert (loop_wait_count (&test->wait, &worker->heartbeats, 6, WAIT_MS));
    int64_t sixth = worker->last_heartbeat;
    assert (sixth - first >= 5 * HEARTBEAT_MS - HEARTBEAT_MS / 2);
    assert (sixth - first <= 5 * 2 * HEARTBEAT_MS);
    assert (sixth - first > HEARTBEAT_MS * LIVENESS);
    assert (orchestrator_broker_workers (test->broker, "decision") == 1);
    assert (worker->disconnects == 0);
    s_test_destroy (&test);
}

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} broker_case_t;

static const broker_case_t s_cases[] = {
    {"ready_and_reply", s_test_ready_and_reply},
    {"lru_and_capacity", s_test_lru_and_capacity},
    {"waits_for_worker", s_test_waits_for_worker},
    {"worker_death", s_test_worker_death},
    {"attempt_timeout", s_test_attempt_timeout},
    {"error_replies", s_test_error_replies},
    {"deadline", s_test_deadline},
    {"unknown_peer", s_test_unknown_peer},
    {"malformed", s_test_malformed},
    {"cancel", s_test_cancel},
    {"heartbeats", s_test_heartbeats},
};

/* isolation-broker [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (streq (argv[i], "-v"))
            verbose = true;
        else
            only = argv[i];
    size_t ran = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof *s_cases; i++)
        if (!only || streq (only, s_cases[i].name)) {
            printf (" * %s\n", s_cases[i].name);
            fflush (stdout);
            s_cases[i].run (verbose);
            ran++;
        }
    if (ran == 0) {
        fprintf (stderr, "no case named %s\n", only);
        return 1;
    }
    printf ("broker isolation: ok\n");
    return 0;
}
