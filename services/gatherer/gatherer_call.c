/* One tool through its cache, its breaker and its retries, for any kind of tool. */
#include "gatherer_call.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_backoff_config.h"
#include "cv_budget.h"
#include "cv_template.h"
#include "cv_context.h"
#include "cv_metrics.h"

/* A cached value: rows and dropped, then the rows' msgpack. */
#define CACHED_HEADER_BYTES (2 * sizeof (uint64_t))

struct _gatherer_call_t {
    const gatherer_call_env_t *env;
    const gatherer_tool_t *tool;
    json_t *context; /* a reference: every attempt reads its parameters */
    int64_t deadline_us;
    cv_budget_t *budget;   /* the request's: every attempt's cost is reserved from it */
    uint64_t charged;      /* its attempts' cost, reserved from budget (an attempt never sent gives it back) */
    cv_breaker_t *breaker; /* the tool's, or NULL */
    uint8_t *key;          /* its cache key when it is cached, else NULL */
    size_t key_size;
    gatherer_sql_call_t *sql;   /* the attempt running, for sql and kb_search ... */
    gatherer_http_call_t *http; /* ... and for http */
    int timer;                  /* a retry's wait, or the delivery of a result known at once; -1 */
    unsigned tries;             /* attempts started */
    unsigned attempts;          /* their attempts, as each kind counts them (sent) */
    int64_t started_us;
    gatherer_result_t last; /* the last attempt's result */
    gatherer_result_t *result;
    gatherer_call_done_fn *done;
    void *arg;
};

bool
gatherer_call_dependency_failed (const gatherer_result_t *attempt)
{
    assert (attempt);
    return attempt->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK && attempt->dependency
           && cv_backoff_retryable (attempt->failure, attempt->http_status);
}

/* The cache key of tool over context, and its size. */
static uint8_t *
s_key (const gatherer_tool_t *tool, const json_t *context, size_t *key_size)
{
    assert (tool->param_count <= CV_PARAMS_MAX);
    char *texts[CV_PARAMS_MAX];
    cv_cache_part_t parts[CV_PARAMS_MAX];
    for (size_t i = 0; i < tool->param_count; i++) {
        if (tool->fixed && tool->fixed[i])
            texts[i] = cv_strdup (tool->fixed[i]);
        else {
            json_t *value = context ? cv_template_lookup (context, tool->params[i]) : NULL;
            /* missing and null both go as SQL NULL: one key */
            texts[i] = value ? json_dumps (value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            if (!texts[i])
                texts[i] = cv_strdup ("null");
        }
        parts[i] = (cv_cache_part_t){.bytes = texts[i], .size = strlen (texts[i])};
    }
    const char *user = NULL;
    if (tool->resilience.personal) {
        user = context ? json_string_value (json_object_get (context, "user_id")) : NULL;
        if (!user)
            user = ""; /* still a user's key, never the shared one */
    }
    uint8_t *key = cv_cache_key (tool->name, user, tool->param_count ? parts : NULL, tool->param_count, key_size);
    for (size_t i = 0; i < tool->param_count; i++)
        free (texts[i]);
    return key;
}

/* Fills result from a cached value; false when the value is not one of ours. */
static bool
s_from_cache (const uint8_t *value, size_t size, gatherer_result_t *result)
{
    if (size < CACHED_HEADER_BYTES)
        return false;
    uint64_t rows, dropped;
    memcpy (&rows, value, sizeof rows);
    memcpy (&dropped, value + sizeof rows, sizeof dropped);
    result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    result->size = size - CACHED_HEADER_BYTES;
    result->data = cv_malloc (result->size ? result->size : 1);
    memcpy (result->data, value + CACHED_HEADER_BYTES, result->size);
    result->rows = (size_t) rows;
    result->dropped = (size_t) dropped;
    result->cached = true;
    result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    return true;
}

/* Stores an OK result under the call's key. */
static void
s_to_cache (gatherer_call_t *self, const gatherer_result_t *result, uint64_t now_ms)
{
    size_t size = CACHED_HEADER_BYTES + result->size;
    uint8_t *value = cv_malloc (size);
    uint64_t rows = result->rows, dropped = result->dropped;
    memcpy (value, &rows, sizeof rows);
    memcpy (value + sizeof rows, &dropped, sizeof dropped);
    if (result->size)
        memcpy (value + CACHED_HEADER_BYTES, result->data, result->size);
    /* too big for the cache: the result is still the caller's, only not kept */
    (void) cv_cache_put (self->env->cache, self->key, self->key_size, value, size, self->tool->resilience.cache_ttl_ms,
                         now_ms);
    free (value);
}

/* The process's tool metrics (cv_metrics). */
static struct {
    cv_metric_family_t *calls;    /* conveyor_tool_calls_total{tool, status} */
    cv_metric_family_t *seconds;  /* conveyor_tool_duration_seconds{tool} */
    cv_metric_family_t *breakers; /* conveyor_tool_breaker_state{tool} */
    cv_metric_family_t *cache;    /* conveyor_cache_lookups_total{tier, result} */
} s_metrics;
static pthread_once_t s_metrics_once = PTHREAD_ONCE_INIT;

static void
s_metrics_make (void)
{
    cv_metrics_t *registry = cv_metrics_process ();
    s_metrics.calls = cv_metrics_counter (registry, "conveyor_tool_calls_total",
                                          "Tool calls ended, by tool and status (ok, failed, timed_out, "
                                          "over_budget...), cached ones included.",
                                          "tool,status");
    s_metrics.seconds = cv_metrics_histogram (registry, "conveyor_tool_duration_seconds",
                                              "Tool calls' time, retries included, for those that ran.", "tool",
                                              cv_metrics_latency_buckets, cv_metrics_latency_bucket_count);
    s_metrics.breakers = cv_metrics_gauge (registry, "conveyor_tool_breaker_state",
                                           "A tool's circuit: 0 closed, 1 half-open, 2 open.", "tool");
    s_metrics.cache = cv_metrics_cache_lookups (registry);
}

void
gatherer_call_metrics_start (const gatherer_tools_t *tools)
{
    pthread_once (&s_metrics_once, s_metrics_make);
    for (size_t i = 0; i < gatherer_tools_count (tools); i++)
        cv_metric_set (cv_metric_with (s_metrics.breakers, gatherer_tools_tool (tools, i)->name),
                       cv_breaker_state_number (CV_BREAKER_CLOSED));
}

static void
s_count_call (const gatherer_call_t *self)
{
    pthread_once (&s_metrics_once, s_metrics_make);
    const gatherer_result_t *result = self->result;
    const char *tool = self->tool->name;
    cv_metric_add (cv_metric_with (s_metrics.calls, tool, cv_context_tool_status_name (result->status)), 1);
    if (self->key)
        cv_metric_add (cv_metric_with (s_metrics.cache, "tool", result->cached ? "hit" : "miss"), 1);
    if (result->attempts > 0)
        cv_metric_observe (cv_metric_with (s_metrics.seconds, tool),
                           (double) (result->finished_us - result->started_us) / 1e6);
}

/* The call is over: the caller hears of it, and the call goes. */
static void
s_finish (gatherer_call_t *self)
{
    s_count_call (self);
    gatherer_call_done_fn *done = self->done;
    void *arg = self->arg;
    free (self->key);
    json_decref (self->context);
    gatherer_result_reset (&self->last);
    free (self);
    done (arg);
}

/* The last attempt's result becomes the caller's. */
static void
s_settle (gatherer_call_t *self)
{
    gatherer_result_t *result = self->result;
    *result = self->last;
    memset (&self->last, 0, sizeof self->last);
    result->attempts = self->attempts;
    result->cost_micros = self->charged;
    result->started_us = self->started_us;
    if (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && self->key)
        s_to_cache (self, result, (uint64_t) zclock_mono ());
    s_finish (self);
}

static void s_attempt (gatherer_call_t *self);

/* Reserves an attempt's cost from the request's budget, before the attempt is asked of the
   breaker (an allowed call must be made); false when it does not fit what is left. */
static bool
s_reserve (gatherer_call_t *self)
{
    if (!cv_budget_reserve (self->budget, self->tool->cost_micros))
        return false;
    self->charged += self->tool->cost_micros;
    return true;
}

/* Gives an attempt's cost back: it was never made (refused by the breaker, or never sent). */
static void
s_release (gatherer_call_t *self)
{
    assert (self->charged >= self->tool->cost_micros);
    cv_budget_release (self->budget, self->tool->cost_micros);
    self->charged -= self->tool->cost_micros;
}

/* The next attempt does not fit the budget: it is not started, and the call's result is
   OVER_BUDGET, with the attempts made before it and the last one's failure. */
static void
s_over_budget (gatherer_call_t *self)
{
    char cost[CV_BUDGET_TEXT_BYTES], left[CV_BUDGET_TEXT_BYTES], error[GATHERER_RESULT_ERROR_BYTES];
    cv_budget_format (self->tool->cost_micros, cost);
    cv_budget_format (self->budget->left, left);
    if (self->tries == 0)
        snprintf (error, sizeof error, "not run: costs %s a call, %s left of the request's budget", cost, left);
    else
        snprintf (error, sizeof error,
                  "not retried: costs %s a call, %s left of the request's budget (after %u attempt(s), the last: %.*s)",
                  cost, left, self->attempts, (int) (sizeof error / 2), self->last.error);
    gatherer_result_reset (&self->last);
    self->last.status = CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET;
    self->last.retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    self->last.finished_us = zclock_usecs ();
    memcpy (self->last.error, error, sizeof error);
}

/* A result known before any attempt (over the budget), heard from the loop as any other. */
static int
s_settle_known (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gatherer_call_t *self = arg;
    self->timer = -1;
    s_settle (self);
    return 0;
}

static int
s_deliver (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gatherer_call_t *self = arg;
    self->timer = -1;
    s_finish (self);
    return 0;
}

static int
s_retry (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gatherer_call_t *self = arg;
    self->timer = -1;
    /* a retry is a call too: it costs as the first did */
    if (!s_reserve (self)) {
        s_over_budget (self);
        s_settle (self);
        return 0;
    }
    /* the breaker may have opened while it waited (other requests' failures): the last failure stands */
    if (self->breaker && !cv_breaker_allow (self->breaker, (uint64_t) zclock_mono ())) {
        s_release (self);
        size_t used = strlen (self->last.error);
        snprintf (self->last.error + used, sizeof self->last.error - used, "%s", " (not retried: breaker open)");
        s_settle (self);
        return 0;
    }
    s_attempt (self);
    return 0;
}

/* Tells the tool's breaker how an attempt went, and the log when that moved it: an operator sees
   when a dependency was given up on, and when it came back. */
static void
s_tell_breaker (gatherer_call_t *self, bool failed, uint64_t now_ms)
{
    cv_breaker_stats_t after;
    cv_breaker_state_t before = cv_breaker_report (self->breaker, failed, now_ms, &after);
    pthread_once (&s_metrics_once, s_metrics_make);
    cv_metric_set (cv_metric_with (s_metrics.breakers, self->tool->name), cv_breaker_state_number (after.state));
    if (after.state == before || !self->env->log)
        return;
    if (after.state == CV_BREAKER_OPEN)
        cv_log_warn (self->env->log,
                     "tool %s: circuit breaker %s -> open (on %s failures: %u in a row), calls refused for %llu ms: %s",
                     self->tool->name, cv_breaker_state_name (before), cv_breaker_cause_name (after.cause),
                     after.failures, (unsigned long long) (after.retry_at - now_ms), self->last.error);
    else
        cv_log_info (self->env->log, "tool %s: circuit breaker %s -> %s, the trial call succeeded", self->tool->name,
                     cv_breaker_state_name (before), cv_breaker_state_name (after.state));
}

static void
s_attempt_done (void *arg)
{
    gatherer_call_t *self = arg;
    self->sql = NULL;
    self->http = NULL;
    self->attempts += self->last.attempts;
    if (self->last.attempts == 0)
        s_release (self); /* never sent (no connection came, or it could not start): no call made */
    bool failed = gatherer_call_dependency_failed (&self->last);
    uint64_t now_ms = (uint64_t) zclock_mono ();
    if (self->breaker)
        s_tell_breaker (self, failed, now_ms);
    uint64_t delay_ms = 0;
    if (failed && !self->last.by_deadline) {
        cv_backoff_t schedule = self->tool->resilience.retries;
        if (schedule.max_attempts == 0)
            schedule.max_attempts = 1;
        /* without a deadline, still no wait past the longest a tool's retries may (a Retry-After of
           hours is a service gone for hours) */
        uint64_t remaining_ms = CV_BACKOFF_CONFIG_MS_MAX;
        if (self->deadline_us) {
            int64_t left = (self->deadline_us - zclock_usecs ()) / 1000;
            remaining_ms = left > 0 ? (uint64_t) left : 0;
        }
        if (cv_backoff_next (&schedule, self->env->rng, self->tries, self->last.retry_after_ms, remaining_ms,
                             &delay_ms)) {
            self->timer = zloop_timer (self->env->loop, (size_t) delay_ms, 1, s_retry, self);
            assert (self->timer >= 0);
            return;
        }
    }
    s_settle (self);
}

/* An attempt whose result was known as it started, heard from the loop as any other. */
static int
s_attempt_known (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gatherer_call_t *self = arg;
    self->timer = -1;
    s_attempt_done (self);
    return 0;
}

/* One attempt: the one place that knows the kinds. */
static void
s_attempt (gatherer_call_t *self)
{
    self->tries++;
    gatherer_result_reset (&self->last);
    switch (self->tool->kind) {
    case GATHERER_TOOL_SQL:
    case GATHERER_TOOL_KB_SEARCH:
        self->sql = gatherer_sql_start (self->env->pool, self->tool, self->context, self->deadline_us, &self->last,
                                        s_attempt_done, self);
        break;
    case GATHERER_TOOL_HTTP:
        assert (self->env->http);
        self->http = gatherer_http_start (self->env->http, self->tool, self->context, self->deadline_us, &self->last,
                                          s_attempt_done, self);
        if (!self->http) {
            self->timer = zloop_timer (self->env->loop, 0, 1, s_attempt_known, self);
            assert (self->timer >= 0);
        }
        break;
    }
}

gatherer_call_t *
gatherer_call_start (const gatherer_call_env_t *env, const gatherer_tool_t *tool, json_t *context, int64_t deadline_us,
                     cv_budget_t *budget, gatherer_result_t *result, gatherer_call_done_fn *done, void *arg)
{
    assert (env && env->loop && env->pool && env->rng && tool && budget && result && done);
    memset (result, 0, sizeof *result);
    gatherer_call_t *self = cv_calloc (1, sizeof *self);
    self->env = env;
    self->tool = tool;
    self->context = json_incref (context);
    self->deadline_us = deadline_us;
    self->budget = budget;
    self->timer = -1;
    self->result = result;
    self->done = done;
    self->arg = arg;
    self->started_us = zclock_usecs ();
    uint64_t now_ms = (uint64_t) zclock_mono ();

    if (env->cache && tool->resilience.cache_ttl_ms) {
        self->key = s_key (tool, context, &self->key_size);
        size_t size;
        const void *value = cv_cache_get (env->cache, self->key, self->key_size, now_ms, &size);
        if (value && s_from_cache (value, size, result)) {
            result->started_us = result->finished_us = self->started_us;
            self->timer = zloop_timer (env->loop, 0, 1, s_deliver, self);
            assert (self->timer >= 0);
            return self;
        }
    }
    /* a request that cannot be made is no call: it fails at once, its breaker never asked, so a
       half-open breaker's trial goes to a request that reaches the service */
    if (tool->kind == GATHERER_TOOL_HTTP && !gatherer_http_can_start (tool, context, result)) {
        self->timer = zloop_timer (env->loop, 0, 1, s_deliver, self);
        assert (self->timer >= 0);
        return self;
    }
    if (!s_reserve (self)) {
        s_over_budget (self);
        self->timer = zloop_timer (env->loop, 0, 1, s_settle_known, self);
        assert (self->timer >= 0);
        return self;
    }
    size_t index = env->tools ? gatherer_tools_index (env->tools, tool) : SIZE_MAX;
    self->breaker = index != SIZE_MAX ? env->breakers[index] : NULL;
    if (self->breaker && !cv_breaker_allow (self->breaker, now_ms)) {
        s_release (self);
        cv_breaker_stats_t stats;
        cv_breaker_stats (self->breaker, now_ms, &stats);
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
        result->breaker_open = true;
        result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
        result->started_us = result->finished_us = self->started_us;
        snprintf (result->error, sizeof result->error,
                  "not run: its circuit breaker is %s (opened on %s failures); next trial in %lld ms",
                  cv_breaker_state_name (stats.state), cv_breaker_cause_name (stats.cause),
                  stats.retry_at > now_ms ? (long long) (stats.retry_at - now_ms) : 0LL);
        self->timer = zloop_timer (env->loop, 0, 1, s_deliver, self);
        assert (self->timer >= 0);
        return self;
    }
    s_attempt (self);
    return self;
}

void
gatherer_call_forget (gatherer_call_t *call)
{
    assert (call);
    if (call->sql)
        gatherer_sql_forget (call->sql);
    if (call->http)
        gatherer_http_forget (call->http);
    if (call->timer >= 0)
        zloop_timer_end (call->env->loop, call->timer);
    free (call->key);
    json_decref (call->context);
    gatherer_result_reset (&call->last);
    free (call);
}

/*  --------------------------------------------------------------------------
    Self-test (calls against PostgreSQL run in the gatherer's isolation test) */

static void
s_heard (void *arg)
{
    *(int *) arg += 1;
}

static int
s_until_heard (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return *(int *) arg > 0 ? -1 : 0;
}

static int
s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    return -1;
}

/* Runs tool over context with budget in env until its result is heard, into *result; asserts it
   is heard from the loop, never from inside gatherer_call_start. */
static void
s_run_call (const gatherer_call_env_t *env, const gatherer_tool_t *tool, json_t *context, cv_budget_t *budget,
            gatherer_result_t *result)
{
    int heard = 0;
    gatherer_call_t *call = gatherer_call_start (env, tool, context, 0, budget, result, s_heard, &heard);
    assert (call && heard == 0);
    int stop = zloop_timer (env->loop, 5000, 1, s_stop_loop, NULL);
    int poll = zloop_timer (env->loop, 1, 0, s_until_heard, &heard);
    zloop_start (env->loop);
    zloop_timer_end (env->loop, stop);
    zloop_timer_end (env->loop, poll);
    assert (heard == 1);
}

void
gatherer_call_test (bool verbose)
{
    /* what counts as a failure of the dependency */
    gatherer_result_t attempt = {.status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK};
    assert (!gatherer_call_dependency_failed (&attempt));
    attempt = (gatherer_result_t){
        .status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED, .dependency = true, .failure = CV_BACKOFF_CONNECT};
    assert (gatherer_call_dependency_failed (&attempt));
    attempt.dependency = false; /* an SQL error */
    assert (!gatherer_call_dependency_failed (&attempt));
    attempt = (gatherer_result_t){
        .status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT, .dependency = true, .failure = CV_BACKOFF_TIMEOUT};
    assert (gatherer_call_dependency_failed (&attempt));
    attempt = (gatherer_result_t){.status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED,
                                  .dependency = true,
                                  .failure = CV_BACKOFF_HTTP,
                                  .http_status = 503};
    assert (gatherer_call_dependency_failed (&attempt));
    attempt.http_status = 429;
    assert (gatherer_call_dependency_failed (&attempt));
    attempt.http_status = 404;
    assert (!gatherer_call_dependency_failed (&attempt));

    /* keys: the parameters' values and, for a personal tool, the user */
    const char *params[] = {"user_id", "intent.slots.last4"};
    gatherer_tool_t tool = {.name = "cards", .params = params, .param_count = 2};
    tool.resilience.personal = true;
    json_t *one = json_pack ("{s:s, s:{s:{s:s}}}", "user_id", "cust-1", "intent", "slots", "last4", "4417");
    json_t *other = json_pack ("{s:s, s:{s:{s:s}}}", "user_id", "cust-2", "intent", "slots", "last4", "4417");
    json_t *missing = json_pack ("{s:s}", "user_id", "cust-1");
    json_t *null = json_pack ("{s:s, s:{s:{s:n}}}", "user_id", "cust-1", "intent", "slots", "last4");
    size_t size_one, size_other, size_missing, size_null;
    uint8_t *key_one = s_key (&tool, one, &size_one);
    uint8_t *key_again = s_key (&tool, one, &size_other);
    assert (size_one == size_other && memcmp (key_one, key_again, size_one) == 0);
    free (key_again);
    uint8_t *key_other = s_key (&tool, other, &size_other);
    assert (size_one != size_other || memcmp (key_one, key_other, size_one) != 0);
    uint8_t *key_missing = s_key (&tool, missing, &size_missing);
    uint8_t *key_null = s_key (&tool, null, &size_null);
    assert (size_missing == size_null && memcmp (key_missing, key_null, size_null) == 0);
    assert (size_one != size_null || memcmp (key_one, key_null, size_one) != 0);
    free (key_other);
    free (key_missing);
    free (key_null);
    /* a shared tool: the same key whoever asks, never a personal one */
    const char *no_user[] = {"intent.slots.last4"};
    tool.params = no_user;
    tool.param_count = 1;
    tool.resilience.personal = false;
    uint8_t *shared_one = s_key (&tool, one, &size_one);
    uint8_t *shared_other = s_key (&tool, other, &size_other);
    assert (size_one == size_other && memcmp (shared_one, shared_other, size_one) == 0);
    tool.resilience.personal = true;
    uint8_t *personal = s_key (&tool, one, &size_other);
    assert (size_one != size_other || memcmp (shared_one, personal, size_one) != 0);
    free (shared_one);
    free (shared_other);
    free (personal);
    free (key_one);

    /* a cached value comes back as it went */
    cv_cache_t *cache = cv_cache_new (4, 4096);
    gatherer_call_env_t env = {.cache = cache};
    gatherer_call_t call = {.env = &env, .tool = &tool, .key = (uint8_t *) "k", .key_size = 1};
    tool.resilience.cache_ttl_ms = 1000;
    uint8_t rows[] = {0x91, 0x80}; /* [{}] */
    gatherer_result_t ok = {
        .status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK, .data = rows, .size = sizeof rows, .rows = 1, .dropped = 2};
    s_to_cache (&call, &ok, 10);
    size_t size;
    const void *value = cv_cache_get (cache, "k", 1, 20, &size);
    gatherer_result_t back = {0};
    assert (value && s_from_cache (value, size, &back));
    assert (back.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && back.cached && back.attempts == 0);
    assert (back.rows == 1 && back.dropped == 2 && back.size == sizeof rows && memcmp (back.data, rows, 2) == 0);
    gatherer_result_reset (&back);
    assert (!cv_cache_get (cache, "k", 1, 1010, &size)); /* its time passed */
    assert (!s_from_cache ((const uint8_t *) "x", 1, &back));
    cv_cache_destroy (&cache);

    /* cost: reserved per attempt from the request's budget; what does not fit is not started. The
       tool calls a port where nothing listens: every attempt is sent, and fails on the connection. */
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml",
                                          "tools:\n"
                                          "  parcel:\n"
                                          "    kind: http\n"
                                          "    url: 'http://127.0.0.1:1/v1/parcels/{id}'\n"
                                          "    params: {id: user_id}\n"
                                          "    keep: {status: status}\n"
                                          "    cost: 0.002\n"
                                          "    retries: {max_attempts: 3, base_ms: 1, cap_ms: 2}\n"
                                          "    breaker: {failures: 1000}\n"
                                          "    cache: {ttl_ms: 60000}\n",
                                          &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    cv_config_destroy (&agent);
    const gatherer_tool_t *parcel = gatherer_tools_find (tools, "parcel");
    assert (parcel->cost_micros == 2000);
    zloop_t *loop = zloop_new ();
    cv_http_t *http = cv_http_new (loop, &err);
    assert (http);
    cv_pgpool_t *pool = cv_pgpool_new (loop, "postgresql://127.0.0.1:1/none", "gatherer_call_test", 1);
    cv_backoff_rng_t rng;
    cv_backoff_seed (&rng, 7);
    cv_breaker_t *breaker = cv_breaker_new (1000, 60000);
    cv_breaker_t *const breakers[] = {breaker};
    cache = cv_cache_new (4, 4096);
    env = (gatherer_call_env_t){
        .loop = loop, .pool = pool, .http = http, .cache = cache, .rng = &rng, .tools = tools, .breakers = breakers};
    json_t *context = json_pack ("{s:s}", "user_id", "cust-1");
    gatherer_result_t result;
    cv_budget_t budget;

    /* no budget: every attempt runs and is paid for */
    cv_budget_from_wire (&budget, NULL);
    s_run_call (&env, parcel, context, &budget, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result.attempts == 3);
    assert (result.cost_micros == 6000 && budget.spent == 6000);
    gatherer_result_reset (&result);

    /* room for two attempts: the third is not started, and the result says what came before */
    cv_budget_limit (&budget, 5000);
    s_run_call (&env, parcel, context, &budget, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET && result.attempts == 2);
    assert (result.cost_micros == 4000 && budget.spent == 4000 && budget.left == 1000);
    const char *not_retried = "not retried: costs 0.002000 a call, 0.001000 left of the request's budget "
                              "(after 2 attempt(s), the last: ";
    cv_assert_that (strncmp (result.error, not_retried, strlen (not_retried)) == 0, "%s", result.error);
    assert (!result.data && !result.cached && !result.breaker_open);
    gatherer_result_reset (&result);

    /* no room for one: not run at all, and nothing spent */
    s_run_call (&env, parcel, context, &budget, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET && result.attempts == 0);
    assert (result.cost_micros == 0 && budget.spent == 4000 && budget.left == 1000);
    assert (streq (result.error, "not run: costs 0.002000 a call, 0.001000 left of the request's budget"));
    gatherer_result_reset (&result);

    /* a cached result makes no call: served with nothing left */
    gatherer_call_t keyed = {.env = &env, .tool = parcel};
    keyed.key = s_key (parcel, context, &keyed.key_size);
    s_to_cache (&keyed, &ok, (uint64_t) zclock_mono ());
    free (keyed.key);
    cv_budget_limit (&budget, 0);
    s_run_call (&env, parcel, context, &budget, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result.cached && result.attempts == 0);
    assert (result.cost_micros == 0 && budget.spent == 0);
    gatherer_result_reset (&result);

    /* a breaker that refuses makes no call: its reservation is given back */
    json_t *other_user = json_pack ("{s:s}", "user_id", "cust-2"); /* not cached */
    uint64_t now_ms = (uint64_t) zclock_mono ();
    while (cv_breaker_state (breaker) != CV_BREAKER_OPEN) {
        assert (cv_breaker_allow (breaker, now_ms));
        cv_breaker_failure (breaker, now_ms);
    }
    cv_budget_limit (&budget, 2000);
    s_run_call (&env, parcel, other_user, &budget, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result.breaker_open);
    assert (result.attempts == 0 && result.cost_micros == 0 && budget.spent == 0 && budget.left == 2000);
    gatherer_result_reset (&result);

    json_decref (other_user);
    json_decref (context);
    cv_cache_destroy (&cache);
    cv_breaker_destroy (&breaker);
    cv_pgpool_destroy (&pool);
    cv_http_destroy (&http);
    zloop_destroy (&loop);
    gatherer_tools_destroy (&tools);
    json_decref (one);
    json_decref (other);
    json_decref (missing);
    json_decref (null);
    if (verbose)
        printf ("gatherer_call: ok\n");
}
