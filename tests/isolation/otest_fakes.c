/* otest's fake workers: one per service, each a fake_worker that checks every stage request it
   gets and answers it with the body its stage expects (made from the request id, so that every
   later stage can be checked to carry it), holds it, or answers with garbage. */
#include "otest.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_msgpack.h"

static const cv_body_t s_stage_bodies[OTEST_STAGES] = {
    CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
    CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST,
    CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST};

/* value (taken) as msgpack, in arena. */
static ProtobufCBinaryData
s_msgpack (cv_arena_t *arena, json_t *value)
{
    assert (value);
    cv_error_t err;
    size_t size;
    uint8_t *packed = cv_msgpack_pack (value, &size, &err);
    assert (packed);
    json_decref (value);
    ProtobufCBinaryData data = {.len = size, .data = cv_arena_memdup (arena, packed, size)};
    free (packed);
    return data;
}

/* Asserts data is msgpack of expected (taken). */
static void
s_expect_msgpack (const char *what, ProtobufCBinaryData data, json_t *expected)
{
    cv_error_t err;
    json_t *got = cv_msgpack_unpack (data.data, data.len, what, &err);
    if (!got || !json_equal (got, expected)) {
        char *text = got ? json_dumps (got, JSON_COMPACT) : NULL;
        cv_assert_that (false, "%s: unexpected msgpack %s", what, text ? text : err.message);
    }
    json_decref (got);
    json_decref (expected);
}

/* The free-form values the fakes send: the request id in a map, and tool rows. */
static json_t *
s_request_map (const char *request_id)
{
    return json_pack ("{s:s}", "request", request_id);
}

static json_t *
s_tool_rows (const char *request_id)
{
    return json_pack ("[{s:s, s:s}]", "request", request_id, "last4", "9052");
}

/*  --------------------------------------------------------------------------
    What the fake workers answer: made from the request id, so that every later stage can be
    checked to carry it */

char *
otest_reply_text (const char *request_id)
{
    return zsys_sprintf ("Your card ending 9052 is on its way (%s).", request_id);
}

static void
s_build_intent (cv_arena_t *arena, cv_envelope_t *reply, float confidence)
{
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
    intent->name = "card_arrival";
    intent->confidence = confidence;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    intent->rule = "card_arrival:1";
    intent->slots = s_msgpack (arena, s_request_map (reply->request_id));
}

static void
s_build_evidence (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__ToolResult *result = cv_envelope_tool_result_new (arena);
    result->tool = "cards_in_delivery";
    result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    result->data = s_msgpack (arena, s_tool_rows (reply->request_id));
    result->elapsed_us = 800;
    Conveyor__V1__Evidence *evidence = cv_envelope_set_evidence (reply, arena);
    evidence->n_results = 1;
    evidence->results = cv_arena_alloc (arena, sizeof *evidence->results);
    evidence->results[0] = result;
}

static void
s_build_decision (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__Action *action = cv_envelope_action_new (arena);
    action->id = "a-1";
    action->kind = "notify";
    action->params = s_msgpack (arena, s_request_map (reply->request_id));
    Conveyor__V1__Decision *decision = cv_envelope_set_decision (reply, arena);
    decision->outcome = "answer";
    decision->rule = "card_on_its_way";
    decision->reason = "the card is on its way";
    decision->n_actions = 1;
    decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
    decision->actions[0] = action;
}

/* The executor's answer: each action of the request done, the bank's answer the request id. */
static void
s_build_action_results (cv_arena_t *arena, cv_envelope_t *reply, const Conveyor__V1__ExecuteRequest *request)
{
    Conveyor__V1__ActionResults *performed = cv_envelope_set_action_results (reply, arena);
    performed->n_results = request->n_actions;
    performed->results = cv_arena_alloc (arena, (request->n_actions + 1) * sizeof *performed->results);
    for (size_t i = 0; i < request->n_actions; i++) {
        Conveyor__V1__ActionResult *result = cv_envelope_action_result_new (arena);
        result->action_id = cv_arena_strdup (arena, request->actions[i]->id);
        result->kind = cv_arena_strdup (arena, request->actions[i]->kind);
        result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
        result->result = s_msgpack (arena, s_request_map (reply->request_id));
        result->attempts = 1;
        performed->results[i] = result;
    }
}

static void
s_build_reply (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    char *text = otest_reply_text (reply->request_id);
    body->text = cv_arena_strdup (arena, text);
    zstr_free (&text);
    body->template_ = "card_on_its_way";
}

/* The checks of what a later stage carries: what the fakes answer for request_id. */
static void
s_expect_intent (const Conveyor__V1__Intent *intent, const char *request_id)
{
    assert (intent);
    otest_expect_streq ("intent.name", intent->name, "card_arrival");
    otest_expect_streq ("intent.rule", intent->rule, "card_arrival:1");
    assert (intent->confidence == 0.875f && intent->method == CONVEYOR__V1__INTENT__METHOD__RULE);
    s_expect_msgpack ("intent.slots", intent->slots, s_request_map (request_id));
}

static void
s_expect_evidence (const Conveyor__V1__Evidence *evidence, const char *request_id)
{
    assert (evidence && evidence->n_results == 1);
    otest_expect_streq ("evidence tool", evidence->results[0]->tool, "cards_in_delivery");
    assert (evidence->results[0]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    s_expect_msgpack ("evidence data", evidence->results[0]->data, s_tool_rows (request_id));
}

static void
s_expect_actions (Conveyor__V1__Action *const *actions, size_t count, const char *request_id)
{
    assert (count == 1);
    otest_expect_streq ("action id", actions[0]->id, "a-1");
    otest_expect_streq ("action kind", actions[0]->kind, "notify");
    s_expect_msgpack ("action params", actions[0]->params, s_request_map (request_id));
}

static void
s_expect_decision (const Conveyor__V1__Decision *decision, const char *request_id)
{
    assert (decision);
    otest_expect_streq ("decision.outcome", decision->outcome, "answer");
    otest_expect_streq ("decision.rule", decision->rule, "card_on_its_way");
    s_expect_actions (decision->actions, decision->n_actions, request_id);
}

static void
s_expect_action_results (Conveyor__V1__ActionResult *const *results, size_t count, const char *request_id)
{
    assert (count == 1);
    otest_expect_streq ("action result id", results[0]->action_id, "a-1");
    assert (results[0]->outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE);
    s_expect_msgpack ("action result", results[0]->result, s_request_map (request_id));
}

/* A reply's request carries everything before it and what the actions did; when a stage before
   it failed, the results of the stages before that one, and none from it on. */
static void
s_expect_respond_request (const Conveyor__V1__RespondRequest *request, const char *request_id)
{
    int stages = 4; /* intent, gather, decide, execute */
    if (request->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED) {
        const char *names[] = {"intent", "gather", "decide", "execute"};
        for (stages = 0; stages < 4 && !streq (names[stages], request->failed_stage); stages++)
            ;
        assert (stages < 4);
    } else
        otest_expect_streq ("failed_stage", request->failed_stage, "");
    if (stages > 0)
        s_expect_intent (request->intent, request_id);
    else
        assert (!request->intent);
    if (stages > 1)
        s_expect_evidence (request->evidence, request_id);
    else
        assert (!request->evidence);
    if (stages > 2)
        s_expect_decision (request->decision, request_id);
    else
        assert (!request->decision);
    if (stages > 3)
        s_expect_action_results (request->action_results, request->n_action_results, request_id);
    else
        assert (request->n_action_results == 0);
}

/* What a worker sends: the envelope packed, with its schema_version moved after the body. A
   decoder takes fields in any order, but protobuf-c writes them in field order, so bytes that the
   orchestrator re-encoded would differ from these: a checkpoint equal to them holds the worker's
   own bytes. */
static uint8_t *
s_worker_bytes (cv_envelope_t *reply, size_t *size)
{
    assert (reply->schema_version == CV_SCHEMA_VERSION);
    reply->schema_version = 0; /* proto3 leaves a zero out */
    size_t packed_size;
    uint8_t *packed = cv_envelope_pack (reply, &packed_size);
    reply->schema_version = CV_SCHEMA_VERSION;
    uint8_t *bytes = cv_malloc (packed_size + 2);
    memcpy (bytes, packed, packed_size);
    bytes[packed_size] = 7 << 3; /* field 7 (schema_version), varint */
    bytes[packed_size + 1] = CV_SCHEMA_VERSION;
    free (packed);
    *size = packed_size + 2;
    return bytes;
}

/*  --------------------------------------------------------------------------
    Fake workers */

/* Sends reply as a REPLY; its bytes are returned when keep is true (the caller frees them). */
static uint8_t *
s_fake_send_reply (otest_fake_t *fake, cv_envelope_t *reply, bool keep, size_t *size)
{
    uint8_t *bytes = s_worker_bytes (reply, size);
    fake_worker_send_reply (fake->worker, bytes, *size);
    if (!keep)
        free (bytes);
    return keep ? bytes : NULL;
}

static void
s_fake_send_error (otest_fake_t *fake, const cv_envelope_t *request, cv_error_code_t code, const char *message)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = fake_worker_error_new (arena, request, code, message);
    size_t size;
    s_fake_send_reply (fake, reply, false, &size);
    cv_arena_destroy (&arena);
}

/* Answers the index-th request fake received. */
void
otest_fake_answer (otest_fake_t *fake, size_t index, otest_answer_t answer)
{
    assert (index < fake->worker->request_count && answer != ANSWER_HOLD);
    const cv_envelope_t *request = fake->worker->requests[index];
    char message[128];
    if (answer == ANSWER_MALFORMED) {
        static const char garbage[] = "\xff\xff\xff not an envelope";
        fake_worker_send_reply (fake->worker, garbage, sizeof garbage - 1);
        return;
    }
    if (answer == ANSWER_NO_PLAN) {
        assert (fake->stage == OTEST_GATHERER && request->gather_request->diagnostic);
        cv_arena_t *arena = cv_arena_new ();
        snprintf (message, sizeof message, "the agent file plans no tools for intent %s",
                  request->gather_request->intent->name);
        cv_envelope_t *reply = fake_worker_error_new (arena, request, CV_ERR_INVALID, message);
        reply->error->field = "gather_request.intent.name";
        size_t size;
        s_fake_send_reply (fake, reply, false, &size);
        cv_arena_destroy (&arena);
        return;
    }
    if (answer == ANSWER_ERROR || answer == ANSWER_UNAVAILABLE) {
        snprintf (message, sizeof message, "the fake %s %s", otest_services[fake->stage],
                  answer == ANSWER_ERROR ? "refuses this request" : "is busy");
        s_fake_send_error (fake, request, answer == ANSWER_ERROR ? CV_ERR_INVALID : CV_ERR_UNAVAILABLE, message);
        return;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    if (answer == ANSWER_WRONG_BODY) {
        if (fake->stage == OTEST_INTENT)
            s_build_reply (arena, reply);
        else
            s_build_intent (arena, reply, 0.875f);
    } else if (answer == ANSWER_INVALID) {
        assert (fake->stage == OTEST_INTENT);
        s_build_intent (arena, reply, 2.0f);
    } else {
        switch (fake->stage) {
        case OTEST_INTENT:
            s_build_intent (arena, reply, 0.875f);
            break;
        case OTEST_GATHERER:
            s_build_evidence (arena, reply);
            break;
        case OTEST_DECISION:
            s_build_decision (arena, reply);
            break;
        case OTEST_EXECUTOR:
            s_build_action_results (arena, reply, request->execute_request);
            break;
        default:
            s_build_reply (arena, reply);
            break;
        }
    }
    bool good = answer == ANSWER_GOOD;
    size_t size;
    uint8_t *bytes = s_fake_send_reply (fake, reply, good, &size);
    if (good) {
        free (fake->sent[index]);
        fake->sent[index] = bytes;
        fake->sent_size[index] = size;
    }
    cv_arena_destroy (&arena);
}

/* Answers every request it holds. */
void
otest_fake_answer_held (otest_fake_t *fake, otest_answer_t answer)
{
    for (size_t i = 0; i < fake->worker->request_count; i++)
        if (!fake->sent[i])
            otest_fake_answer (fake, i, answer);
}

/* The last request fake received for request_id, or -1. */
int
otest_fake_find (const otest_fake_t *fake, const char *request_id)
{
    for (size_t i = fake->worker->request_count; i > 0; i--)
        if (streq (fake->worker->requests[i - 1]->request_id, request_id))
            return (int) i - 1;
    return -1;
}

/* How many requests fake received for request_id. */
size_t
otest_fake_count (const otest_fake_t *fake, const char *request_id)
{
    size_t count = 0;
    for (size_t i = 0; i < fake->worker->request_count; i++)
        count += streq (fake->worker->requests[i]->request_id, request_id);
    return count;
}

/* A stage request as the orchestrator must send it: the body this service takes, valid, with the
   message id "<request>.<stage>.<attempt>", carrying the earlier stages' results. */
static void
s_expect_stage (const otest_fake_t *fake, const cv_envelope_t *request)
{
    cv_error_t err;
    cv_assert_that (!(request->body_case != s_stage_bodies[fake->stage]), "%s got a %s body", fake->worker->instance,
                    cv_envelope_body_name (request->body_case));
    cv_assert_that (
        !(cv_envelope_validate (request, CV_BODY (s_stage_bodies[fake->stage]), (uint64_t) zclock_time (), &err)),
        "%s got an invalid request: %s", fake->worker->instance, err.message);
    char message_id[CV_NAME_MAX_BYTES + 1];
    snprintf (message_id, sizeof message_id, "%s.%s.%u", request->request_id, otest_stages[fake->stage],
              request->attempt);
    otest_expect_streq ("message_id", request->message_id, message_id);
    const char *id = request->request_id;
    switch (fake->stage) {
    case OTEST_GATHERER: /* a diagnostic request (POST /v1/tools/test) carries the intent the test asked for */
        if (!request->gather_request->diagnostic)
            s_expect_intent (request->gather_request->intent, id);
        break;
    case OTEST_DECISION:
        s_expect_intent (request->decide_request->intent, id);
        s_expect_evidence (request->decide_request->evidence, id);
        break;
    case OTEST_EXECUTOR: /* the decision's actions, for the request's user */
        assert (*request->execute_request->user_id);
        s_expect_actions (request->execute_request->actions, request->execute_request->n_actions, id);
        break;
    case OTEST_RESPONDER:
        s_expect_respond_request (request->respond_request, id);
        break;
    default:
        break;
    }
}

static void
s_fake_probe (otest_fake_t *fake, const cv_envelope_t *request)
{
    otest_expect_streq ("probe.service", request->probe->service, otest_services[fake->stage]);
    if (fake->probe_answer == PROBE_REFUSED) {
        s_fake_send_error (fake, request, CV_ERR_INVALID, "the fake takes no probes today");
        return;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    Conveyor__V1__ProbeResult *result = cv_envelope_set_probe_result (reply, arena);
    result->service = (char *) otest_services[fake->stage];
    result->instance = fake->worker->instance;
    result->version = "test";
    result->ok = fake->probe_answer == PROBE_PASSES;
    result->latency_us = 7;
    result->detail = result->ok ? "the fake answers" : "the fake's canned check failed";
    size_t size;
    s_fake_send_reply (fake, reply, false, &size);
    cv_arena_destroy (&arena);
}

/* The shared fake's request callback: a Probe is answered as probe_answer says, a stage request
   checked, kept and answered as scripted. */
static void
s_fake_request (fake_worker_t *worker, cv_envelope_t **request_p, void *arg)
{
    otest_fake_t *fake = arg;
    cv_envelope_t *request = *request_p;
    if (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE) {
        fake->probes++;
        s_fake_probe (fake, request);
        return;
    }
    s_expect_stage (fake, request);
    size_t index = fake_worker_keep (worker, request_p);
    fake->arrival[index] = ++fake->test->arrivals;
    otest_answer_t answer = fake->answer;
    if (fake->script_size) {
        answer = fake->script[0];
        memmove (fake->script, fake->script + 1, --fake->script_size * sizeof *fake->script);
    }
    if (answer != ANSWER_HOLD)
        otest_fake_answer (fake, index, answer);
}

otest_fake_t *
otest_fake_new (otest_t *test, int stage, otest_answer_t answer)
{
    assert (test->fake_count < OTEST_MAX_FAKES);
    otest_fake_t *fake = cv_calloc (1, sizeof *fake);
    fake->test = test;
    fake->stage = stage;
    fake->answer = answer;
    char instance[32];
    snprintf (instance, sizeof instance, "fake-%s-%zu", otest_services[stage], test->fake_count + 1);
    fake->worker = fake_worker_new (test->loop, test->broker, instance, s_fake_request, loop_wait_met_any, &test->wait);
    fake->worker->arg = fake;
    fake->worker->answers_heartbeats = true;
    fake->worker->ready_again = true;
    fake_worker_ready (fake->worker, otest_services[stage], OTEST_CAPACITY);
    test->fakes[test->fake_count++] = fake;
    return fake;
}

void
otest_fake_destroy (otest_fake_t **fake_p)
{
    otest_fake_t *fake = *fake_p;
    if (!fake)
        return;
    for (size_t i = 0; i < fake->worker->request_count; i++)
        free (fake->sent[i]);
    fake_worker_destroy (&fake->worker);
    free (fake);
    *fake_p = NULL;
}

void
otest_fake_script (otest_fake_t *fake, size_t count, ...)
{
    va_list args;
    va_start (args, count);
    for (size_t i = 0; i < count; i++) {
        assert (fake->script_size < OTEST_MAX_SCRIPT);
        fake->script[fake->script_size++] = (otest_answer_t) va_arg (args, int);
    }
    va_end (args);
}

/* The test's fake of service stage (the first one when there are several). */
otest_fake_t *
otest_fake (otest_t *test, int stage)
{
    for (size_t i = 0; i < test->fake_count; i++)
        if (test->fakes[i]->stage == stage)
            return test->fakes[i];
    assert (!"a fake worker serves every stage");
}

static bool
s_fakes_registered (void *test_arg, const void *arg)
{
    const otest_t *test = test_arg;
    for (size_t i = 0; i < test->fake_count; i++)
        if (test->fakes[i]->worker->heartbeats == 0)
            return false;
    return true;
}

/* Waits until the broker knows every fake: it heartbeats registered workers only (an unknown
   peer's messages get a DISCONNECT), so a fake's first HEARTBEAT says it is registered. */
void
otest_wait_registered (otest_t *test)
{
    bool registered = otest_run_until (test, s_fakes_registered, NULL, OTEST_WAIT_MS);
    assert (registered);
}

/* One fake per service, all answering as answer, registered when this returns. */
void
otest_fakes_start (otest_t *test, otest_answer_t answer)
{
    for (int stage = 0; stage < OTEST_STAGES; stage++)
        otest_fake_new (test, stage, answer);
    otest_wait_registered (test);
}

void
otest_wait_requests (otest_fake_t *fake, size_t count)
{
    char what[64];
    snprintf (what, sizeof what, "the requests %s received", fake->worker->instance);
    otest_wait_count (fake->test, &fake->worker->request_count, count, what);
}
