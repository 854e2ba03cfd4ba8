/* The actions of one ExecuteRequest, performed in order on the executor's connection pool. */
#include "executor_perform.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_crash.h"
#include "cv_msgpack.h"
#include "executor_outcome.h"

#define MAX_ROWS 2 /* enough to see that a statement returned more than one */

struct _executor_perform_t {
    executor_perform_env_t env;
    cv_worker_call_t *call;
    executor_perform_over_fn *over;
    void *owner;
    const Conveyor__V1__ExecuteRequest *request;
    Conveyor__V1__ActionResults *results; /* the reply's body, in the call's arena */
    int64_t deadline_us;                  /* the request's, on the zclock_usecs clock */
    /* the action being performed */
    size_t next;                   /* its index */
    const executor_action_t *kind; /* how, from the agent file */
    char **texts;                  /* its parameters' texts */
    cv_pgpool_run_t *run;          /* its statement, while it runs */
    int timer;                     /* the wait before its next attempt, or -1 */
    unsigned tries;                /* attempts made, sent or not */
    unsigned attempts;             /* of which sent */
    int64_t limit_ms;              /* the attempt's time: its timeout, or what the deadline left */
    int64_t started_us;
    executor_outcome_t outcome;
};

static void s_perform_next (executor_perform_t *self);

executor_perform_t *
executor_perform_new (const executor_perform_env_t *env, cv_worker_call_t *call, executor_perform_over_fn *over,
                      void *owner)
{
    assert (env && env->loop && env->pool && env->rng && env->actions && env->log && call && over);
    const cv_envelope_t *request = cv_worker_call_request (call);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST);
    executor_perform_t *self = cv_calloc (1, sizeof *self);
    self->env = *env;
    self->call = call;
    self->over = over;
    self->owner = owner;
    self->request = request->execute_request;
    self->timer = -1;
    /* the deadline is ms since the epoch; statements are timed on the monotonic clock, and end
       early enough for the answer to be in time */
    self->deadline_us = zclock_usecs () + ((int64_t) request->deadline_ms - zclock_time ()) * 1000
                        - (int64_t) EXECUTOR_REPLY_MARGIN_MS * 1000;
    cv_arena_t *arena = cv_worker_call_arena (call);
    self->results = cv_envelope_set_action_results (cv_worker_call_reply (call), arena);
    size_t count = self->request->n_actions;
    self->results->results = cv_arena_alloc (arena, (count ? count : 1) * sizeof *self->results->results);
    return self;
}

void
executor_perform_destroy (executor_perform_t **self_p)
{
    assert (self_p);
    executor_perform_t *self = *self_p;
    if (!self)
        return;
    if (self->run)
        cv_pgpool_forget (self->env.pool, self->run);
    if (self->timer != -1)
        zloop_timer_end (self->env.loop, self->timer);
    if (self->kind)
        executor_actions_texts_free (self->texts, self->kind->params.count);
    executor_outcome_reset (&self->outcome);
    free (self);
    *self_p = NULL;
}

/* The action's result goes into the reply, and the next action starts. */
static void
s_record (executor_perform_t *self)
{
    const Conveyor__V1__Action *action = self->request->actions[self->next];
    cv_arena_t *arena = cv_worker_call_arena (self->call);
    Conveyor__V1__ActionResult *result = cv_envelope_action_result_new (arena);
    result->action_id = action->id;
    result->kind = action->kind;
    result->outcome = self->outcome.outcome;
    result->replayed = self->outcome.replayed;
    result->attempts = self->attempts;
    result->elapsed_us = zclock_usecs () - self->started_us;
    result->reason = cv_arena_strdup (arena, self->outcome.reason);
    if (self->outcome.result) {
        cv_error_t err;
        size_t size;
        uint8_t *packed = cv_msgpack_pack (self->outcome.result, &size, &err);
        if (packed) {
            result->result.data = cv_arena_adopt (arena, packed, size);
            result->result.len = size;
        } else /* the bank's answer is known, only not sendable: say so rather than send it empty */
            result->reason = cv_arena_strdup (arena, err.message);
    }
    const cv_envelope_t *request = cv_worker_call_request (self->call);
    cv_log_event (
        self->env.log, result->outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED ? CV_LOG_WARN : CV_LOG_INFO,
        request->request_id, request->trace_id, "action %s (%s) %s%s after %u attempt(s) in %lld us%s%s", action->id,
        action->kind, cv_context_action_outcome_name (result->outcome), result->replayed ? ", replayed" : "",
        result->attempts, (long long) result->elapsed_us, *result->reason ? ": " : "", result->reason);
    self->results->results[self->results->n_results++] = result;
    if (self->kind)
        executor_actions_texts_free (self->texts, self->kind->params.count);
    self->kind = NULL;
    self->texts = NULL;
    executor_outcome_reset (&self->outcome);
    self->next++;
    s_perform_next (self);
}

static void s_send (executor_perform_t *self);

static int
s_retry (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    executor_perform_t *self = arg;
    self->timer = -1;
    s_send (self);
    return 0;
}

static void
s_sent (void *arg, const cv_pgpool_outcome_t *outcome)
{
    executor_perform_t *self = arg;
    self->run = NULL;
    bool retryable = false;
    int64_t limit_ms = self->limit_ms;
    if (!outcome->waited && !outcome->connecting)
        self->attempts++; /* sent */
    if (outcome->timed_out && (outcome->waited || outcome->connecting)) {
        executor_outcome_fail (&self->outcome, "not sent within %lld ms: %s", (long long) limit_ms,
                               outcome->waited ? "every connection busy" : "postgresql still connecting");
        retryable = true;
    } else if (outcome->timed_out) {
        executor_outcome_fail (&self->outcome,
                               "no answer within %lld ms (it may have been applied: the same key "
                               "replays it)",
                               (long long) limit_ms);
        retryable = true;
    } else if (!cv_pgconn_succeeded (outcome->conn)) {
        executor_outcome_fail (&self->outcome, "%s", cv_pgconn_error (outcome->conn));
        retryable = cv_pgconn_lost (outcome->conn); /* an SQL error would only come again */
    } else {
        CV_CRASH_POINT ("executor.after_side_effect"); /* the bank committed it; nobody knows yet */
        executor_outcome_read (cv_pgconn_rows (outcome->conn), &self->outcome);
    }
    if (retryable) {
        int64_t remaining_us = self->deadline_us - zclock_usecs ();
        uint64_t delay_ms;
        if (remaining_us > 0
            && cv_backoff_next (&self->kind->retries, self->env.rng, ++self->tries, CV_BACKOFF_NO_RETRY_AFTER,
                                (uint64_t) remaining_us / 1000, &delay_ms)) {
            self->timer = zloop_timer (self->env.loop, delay_ms ? delay_ms : 1, 1, s_retry, self);
            if (self->timer != -1)
                return;
        }
    }
    s_record (self);
}

/* Sends the action's statement, one attempt, within its timeout and the request's deadline. */
static void
s_send (executor_perform_t *self)
{
    CV_CRASH_POINT ("executor.before_side_effect");
    int64_t now_us = zclock_usecs (), until_us = now_us + (int64_t) self->kind->timeout_ms * 1000;
    if (until_us > self->deadline_us)
        until_us = self->deadline_us;
    self->limit_ms = (until_us - now_us) / 1000;
    self->run = cv_pgpool_run (self->env.pool, self->kind->query, self->kind->params.count,
                               (const char *const *) self->texts, MAX_ROWS, until_us, s_sent, self);
}

static void
s_perform_next (executor_perform_t *self)
{
    if (self->next == self->request->n_actions) {
        cv_worker_call_finish (self->call, 0, NULL);
        self->call = NULL;
        self->over (self->owner, self);
        executor_perform_destroy (&self);
        return;
    }
    const Conveyor__V1__Action *action = self->request->actions[self->next];
    self->started_us = zclock_usecs ();
    self->tries = self->attempts = 0;
    self->kind = executor_actions_find (self->env.actions, action->kind);
    if (!self->kind) {
        executor_outcome_fail (&self->outcome, "the agent file says nothing of how to perform a %s", action->kind);
        s_record (self);
        return;
    }
    if (action->requires_approval) {
        executor_outcome_fail (&self->outcome, "it waits for a person's approval: only approved actions are performed");
        s_record (self);
        return;
    }
    if (self->deadline_us <= self->started_us) {
        executor_outcome_fail (&self->outcome,
                               "the request's deadline left no time to perform it and answer (%d ms are kept for "
                               "the answer)",
                               EXECUTOR_REPLY_MARGIN_MS);
        s_record (self);
        return;
    }
    cv_error_t err;
    json_t *params = cv_msgpack_unpack (action->params.data, action->params.len, "params", &err);
    if (!params) { /* never, once validated */
        executor_outcome_fail (&self->outcome, "%s", err.message);
        s_record (self);
        return;
    }
    const cv_envelope_t *request = cv_worker_call_request (self->call);
    json_t *context = executor_actions_context (request->request_id, self->request->user_id, action, params);
    self->texts = executor_actions_texts (self->kind, context);
    json_decref (context);
    json_decref (params);
    s_send (self);
}

void
executor_perform_begin (executor_perform_t *self)
{
    assert (self && self->next == 0 && self->call);
    s_perform_next (self);
}
