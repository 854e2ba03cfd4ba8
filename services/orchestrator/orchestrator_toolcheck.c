/* POST /v1/tools/test: one intent's plan at a gatherer, through the broker, answered with its rows. */
#include "orchestrator_toolcheck.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_context.h"
#include "cv_msgpack.h"
#include "orchestrator_api.h"

/* The field a gatherer's Error names when the agent file plans no tools for the intent. */
#define NO_PLAN_FIELD "gather_request.intent.name"

struct _orchestrator_toolcheck_t {
    orchestrator_broker_t *broker;
    int timeout_ms;
    cv_log_t *log;
    zlistx_t *runs; /* run_t in flight */
};

/* One test in flight: what its answer names, and whom to answer. */
typedef struct {
    orchestrator_toolcheck_t *owner;
    orchestrator_exchange_t *exchange;
    char *user_id;
    char *intent;
    char id[24];
    int64_t started_us;
} run_t;

static void
s_run_destroy (run_t **run_p)
{
    run_t *run = *run_p;
    if (!run)
        return;
    free (run->user_id);
    free (run->intent);
    free (run);
    *run_p = NULL;
}

orchestrator_toolcheck_t *
orchestrator_toolcheck_new (orchestrator_broker_t *broker, int timeout_ms, cv_log_t *log)
{
    assert (broker && timeout_ms > 0 && log);
    orchestrator_toolcheck_t *self = cv_calloc (1, sizeof *self);
    self->broker = broker;
    self->timeout_ms = timeout_ms;
    self->log = log;
    self->runs = zlistx_new ();
    return self;
}

void
orchestrator_toolcheck_destroy (orchestrator_toolcheck_t **self_p)
{
    assert (self_p);
    orchestrator_toolcheck_t *self = *self_p;
    if (!self)
        return;
    for (run_t *run = zlistx_first (self->runs); run; run = zlistx_next (self->runs)) {
        orchestrator_broker_cancel (self->broker, run);
        s_run_destroy (&run);
    }
    zlistx_destroy (&self->runs);
    free (self);
    *self_p = NULL;
}

json_t *
orchestrator_toolcheck_document (const char *user_id, const char *intent, const Conveyor__V1__Evidence *evidence,
                                 double duration_ms)
{
    json_t *tools = json_array ();
    for (size_t i = 0; i < evidence->n_results; i++) {
        const Conveyor__V1__ToolResult *result = evidence->results[i];
        cv_error_t err;
        json_t *rows = result->data.len ? cv_msgpack_unpack (result->data.data, result->data.len, "data", &err) : NULL;
        json_array_append_new (tools, json_pack ("{s:s, s:s, s:f, s:i, s:b, s:b, s:o, s:o}", "name", result->tool,
                                                 "status", cv_context_tool_status_name (result->status), "duration_ms",
                                                 (double) result->elapsed_us / 1000.0, "attempts",
                                                 (int) result->attempts, "cached", result->cached, "breaker_open",
                                                 result->breaker_open, "rows", rows ? rows : json_array (), "error",
                                                 *result->error ? json_string (result->error) : json_null ()));
    }
    return json_pack ("{s:s, s:s, s:f, s:o}", "user_id", user_id, "intent", intent, "duration_ms", duration_ms, "tools",
                      tools);
}

/* The gatherer's answer, or the broker's failure, to the client. */
static void
s_answer (run_t *run, cv_envelope_t *reply, const cv_error_t *failure)
{
    orchestrator_exchange_t *exchange = run->exchange;
    cv_error_t err;
    if (!reply) {
        bool late = failure->code == CV_ERR_DEADLINE_EXCEEDED;
        orchestrator_http_answer_error (exchange, late ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY,
                                        late ? "deadline" : "gatherer_failed", "%s", failure->message);
    } else if (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR) {
        if ((cv_error_code_t) reply->error->code == CV_ERR_INVALID && streq (reply->error->field, NO_PLAN_FIELD))
            orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "unknown_intent", "unknown intent %s: %s",
                                            run->intent, reply->error->message);
        else
            orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_GATEWAY, "gatherer_error", "gatherer worker: %s",
                                            reply->error->message);
    } else if (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE), 0, &err))
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_GATEWAY, "gatherer_error", "gatherer worker: %s",
                                        err.message);
    else
        orchestrator_http_answer (
            exchange, MHD_HTTP_OK,
            orchestrator_toolcheck_document (run->user_id, run->intent, reply->evidence,
                                             (double) (zclock_usecs () - run->started_us) / 1000.0));
}

static void
s_job_done (void *owner, cv_envelope_t *reply, const uint8_t *packed, size_t size, uint32_t attempts,
            const cv_error_t *err)
{
    (void) packed;
    (void) size;
    run_t *run = owner;
    orchestrator_toolcheck_t *self = run->owner;
    s_answer (run, reply, err);
    cv_envelope_destroy (&reply);
    void *handle = zlistx_find (self->runs, run);
    assert (handle);
    zlistx_delete (self->runs, handle);
    s_run_destroy (&run);
}

/* The GatherRequest for test, in arena: the intent as a rule that matched, with the slots given. */
static cv_envelope_t *
s_envelope (const orchestrator_toolcheck_t *self, const run_t *run, const orchestrator_tool_test_t *test,
            cv_arena_t *arena, cv_error_t *err)
{
    json_t *slots = test->slots ? json_incref ((json_t *) test->slots) : json_object ();
    size_t size;
    uint8_t *packed = cv_msgpack_pack (slots, &size, err);
    json_decref (slots);
    if (!packed)
        return NULL;
    char trace_id[33];
    cv_envelope_random_hex (trace_id, sizeof trace_id);
    cv_envelope_t *envelope =
        cv_envelope_new (arena, run->id, trace_id, (uint64_t) zclock_time () + (uint64_t) self->timeout_ms, 1);
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = cv_arena_strdup (arena, test->intent);
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    intent->slots.data = cv_arena_alloc (arena, size ? size : 1);
    memcpy (intent->slots.data, packed, size);
    intent->slots.len = size;
    free (packed);
    Conveyor__V1__GatherRequest *body = cv_envelope_set_gather_request (envelope, arena);
    body->user_id = cv_arena_strdup (arena, test->user_id);
    body->text = cv_arena_strdup (arena, test->text);
    body->intent = intent;
    body->diagnostic = true;
    return envelope;
}

void
orchestrator_toolcheck_start (orchestrator_toolcheck_t *self, orchestrator_exchange_t *exchange, json_t *body)
{
    assert (self && exchange);
    orchestrator_tool_test_t test;
    cv_error_t err;
    if (!body) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_json", "a JSON body is required");
        return;
    }
    if (orchestrator_api_parse_tool_test (body, &test, &err)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_field", "%s", err.message);
        return;
    }
    if (orchestrator_broker_workers (self->broker, "gatherer") == 0) {
        orchestrator_http_answer_unavailable (exchange, "no_gatherer",
                                              "no gatherer worker is connected; retry shortly");
        return;
    }
    run_t *run = cv_calloc (1, sizeof *run);
    run->owner = self;
    run->exchange = exchange;
    run->user_id = cv_strdup (test.user_id);
    run->intent = cv_strdup (test.intent);
    char hex[21];
    cv_envelope_random_hex (hex, sizeof hex);
    snprintf (run->id, sizeof run->id, "t-%s", hex);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = s_envelope (self, run, &test, arena, &err);
    if (!envelope) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_field", "%s", err.message);
        cv_arena_destroy (&arena);
        s_run_destroy (&run);
        return;
    }
    cv_log_event (self->log, CV_LOG_INFO, run->id, envelope->trace_id, "tool test of intent %s for user %s",
                  run->intent, run->user_id);
    run->started_us = zclock_usecs ();
    zlistx_add_end (self->runs, run);
    char job_id[CV_NAME_MAX_BYTES + 1];
    snprintf (job_id, sizeof job_id, "%s.gather", run->id);
    orchestrator_broker_submit (self->broker, "gatherer", job_id, &arena, envelope, 0, s_job_done, run);
}

void
orchestrator_toolcheck_test (bool verbose)
{
    cv_arena_t *arena = cv_arena_new ();
    Conveyor__V1__Evidence *evidence = cv_envelope_evidence_new (arena);
    json_t *rows = json_pack ("[{s:s, s:s}]", "last4", "4417", "status", "active");
    size_t size;
    cv_error_t err;
    uint8_t *packed = cv_msgpack_pack (rows, &size, &err);
    assert (packed);
    Conveyor__V1__ToolResult *results[2];
    results[0] = cv_envelope_tool_result_new (arena);
    results[0]->tool = "active_cards";
    results[0]->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    results[0]->data.data = packed;
    results[0]->data.len = size;
    results[0]->elapsed_us = 1500;
    results[0]->attempts = 2;
    results[0]->cached = true;
    results[1] = cv_envelope_tool_result_new (arena);
    results[1]->tool = "card_payments";
    results[1]->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
    results[1]->attempts = 1;
    results[1]->breaker_open = true;
    results[1]->error = "canceling statement due to statement timeout";
    evidence->results = results;
    evidence->n_results = 2;

    json_t *document = orchestrator_toolcheck_document ("cust-1", "compromised_card", evidence, 3.25);
    assert (streq (json_string_value (json_object_get (document, "intent")), "compromised_card"));
    assert (streq (json_string_value (json_object_get (document, "user_id")), "cust-1"));
    json_t *tools = json_object_get (document, "tools");
    assert (json_array_size (tools) == 2);
    json_t *cards = json_array_get (tools, 0);
    assert (streq (json_string_value (json_object_get (cards, "name")), "active_cards"));
    assert (streq (json_string_value (json_object_get (cards, "status")), "ok"));
    assert (json_real_value (json_object_get (cards, "duration_ms")) == 1.5);
    assert (json_integer_value (json_object_get (cards, "attempts")) == 2);
    assert (json_is_true (json_object_get (cards, "cached"))
            && json_is_false (json_object_get (cards, "breaker_open")));
    cv_assert_that (json_equal (json_object_get (cards, "rows"), rows), "the rows themselves");
    assert (json_is_null (json_object_get (cards, "error")));
    json_t *payments = json_array_get (tools, 1);
    assert (streq (json_string_value (json_object_get (payments, "status")), "timed_out"));
    assert (json_is_true (json_object_get (payments, "breaker_open")));
    assert (json_is_array (json_object_get (payments, "rows"))
            && json_array_size (json_object_get (payments, "rows")) == 0);
    assert (strstr (json_string_value (json_object_get (payments, "error")), "statement timeout"));
    json_decref (document);
    json_decref (rows);
    free (packed);
    cv_arena_destroy (&arena);
    if (verbose)
        printf ("orchestrator_toolcheck: ok\n");
}
