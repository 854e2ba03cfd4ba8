/* Isolation test of the orchestrator's dealings with its workers (otest.h): garbage from workers
   (retries, failures, junk off the protocol), probes through the control endpoint, and tool tests
   (POST /v1/tools/test) through the gatherer. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_msgpack.h"
#include "otest.h"

/*  --------------------------------------------------------------------------
    The cases */

/* 4. Garbage from workers. A REPLY that is not an Envelope is dropped and the stage is sent again
   when its attempt times out; an UNAVAILABLE Error is retried at once; an Intent that breaks a
   rule, the wrong body, or an INVALID Error fail their stage: the request still gets its reply,
   stopped because that stage failed, with the reason (recorded as stage_failed); junk off the
   protocol is dropped; a worker that only sends garbage makes the stage give up after its
   attempts, and the reply says so. Through it all the orchestrator keeps serving: the next
   request is fine. */
static void
s_test_worker_garbage (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "garbage");
    test->config.attempt_timeout_ms = 200;
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *intent = otest_fake (test, OTEST_INTENT), *gatherer = otest_fake (test, OTEST_GATHERER);
    otest_fake_t *decision = otest_fake (test, OTEST_DECISION), *responder = otest_fake (test, OTEST_RESPONDER);

    /* malformed, then good: the second attempt succeeds */
    otest_fake_script (intent, 2, ANSWER_MALFORMED, ANSWER_GOOD);
    otest_call_t *call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    const char *id = otest_request_id (call);
    assert (otest_fake_count (intent, id) == 2);
    assert (intent->worker->requests[0]->attempt == 1 && intent->worker->requests[1]->attempt == 2);
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_http_destroy (&call);

    /* junk off the protocol, from a registered worker */
    fake_worker_send_strings (intent->worker, "HELLO", "\x04", NULL);
    fake_worker_send_strings (intent->worker, CV_MDP_PROTOCOL, "\x2a", NULL);
    fake_worker_send_strings (intent->worker, CV_MDP_PROTOCOL, "\x03", "no envelope", "and an extra frame", NULL);

    /* an Intent that breaks a rule */
    otest_fake_script (intent, 1, ANSWER_INVALID);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    id = otest_request_id (call);
    otest_expect_stage_failed (call, OTEST_INTENT, "confidence");
    otest_expect_db_status (test, id, "stage_failed");
    otest_expect_checkpoints_past_failure (test, id, OTEST_INTENT);
    assert (otest_db_count (test, "SELECT count(*) FROM requests WHERE id = $1 AND error LIKE '%confidence%'", id)
            == 1);
    otest_http_destroy (&call);

    /* the wrong body from the gatherer */
    otest_fake_script (gatherer, 1, ANSWER_WRONG_BODY);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    id = otest_request_id (call);
    otest_expect_stage_failed (call, OTEST_GATHERER, "intent");
    otest_expect_db_status (test, id, "stage_failed");
    otest_expect_checkpoints_past_failure (test, id, OTEST_GATHERER);
    otest_http_destroy (&call);

    /* an Error from the decision worker */
    otest_fake_script (decision, 1, ANSWER_ERROR);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    id = otest_request_id (call);
    otest_expect_stage_failed (call, OTEST_DECISION, "decision worker: the fake decision refuses this request");
    otest_expect_db_status (test, id, "stage_failed");
    assert (otest_db_count (test, "SELECT count(*) FROM requests WHERE id = $1 AND error LIKE '%refuses%'", id) == 1);
    otest_expect_checkpoints_past_failure (test, id, OTEST_DECISION);
    assert (otest_fake_count (decision, id) == 1);
    otest_http_destroy (&call);

    /* an Error from the gatherer, then from the responder: nothing can answer, the request fails
       with both causes, and reads back as it answered */
    otest_fake_script (gatherer, 1, ANSWER_ERROR);
    otest_fake_script (responder, 1, ANSWER_ERROR);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 502);
    id = otest_request_id (call);
    otest_expect_streq ("status", otest_text_at (call->document, "status"), "failed");
    otest_expect_contains ("error.message", otest_text_at (call->document, "error.message"),
                           "responder worker: the fake responder refuses this request (after stage gather failed: "
                           "gatherer worker: the fake gatherer refuses this request)");
    assert (!otest_text_at (call->document, "failed_stage") && !otest_text_at (call->document, "stopped"));
    otest_expect_db_status (test, id, "failed");
    char path[96];
    snprintf (path, sizeof path, "/v1/requests/%s", id);
    otest_call_t *read_back = otest_http (test, "GET", path, NULL);
    otest_http_expect (read_back, 200);
    otest_expect_streq ("read back", otest_text_at (read_back->document, "error.message"),
                        otest_text_at (call->document, "error.message"));
    assert (!otest_text_at (read_back->document, "failed_stage"));
    otest_http_destroy (&read_back);
    otest_http_destroy (&call);

    /* the wrong body from the executor: the stage fails, its action is left as recorded and the
       document cannot say whether it was performed */
    otest_fake_t *executor = otest_fake (test, OTEST_EXECUTOR);
    otest_fake_script (executor, 1, ANSWER_WRONG_BODY);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    id = otest_request_id (call);
    otest_expect_stage_failed (call, OTEST_EXECUTOR, "intent");
    otest_expect_streq ("the action's status", otest_text_at (call->document, "decision.actions.0.status"), "unknown");
    otest_expect_db_status (test, id, "stage_failed");
    otest_expect_checkpoints_past_failure (test, id, OTEST_EXECUTOR);
    assert (otest_db_count (test, "SELECT count(*) FROM actions WHERE request_id = $1 AND status = 'recorded'", id)
            == 1);
    otest_http_destroy (&call);

    /* UNAVAILABLE from the executor, then from the responder: retried */
    otest_fake_script (executor, 1, ANSWER_UNAVAILABLE);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    assert (otest_fake_count (executor, otest_request_id (call)) == 2);
    otest_http_destroy (&call);

    /* UNAVAILABLE from the responder: retried */
    otest_fake_script (responder, 1, ANSWER_UNAVAILABLE);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    assert (otest_fake_count (responder, otest_request_id (call)) == 2);
    otest_http_destroy (&call);

    /* nothing but garbage: the stage gives up after its attempts */
    otest_fake_script (intent, 3, ANSWER_MALFORMED, ANSWER_MALFORMED, ANSWER_MALFORMED);
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_stage_failed (call, OTEST_INTENT, "gave up after 3 attempt(s)");
    otest_expect_db_status (test, otest_request_id (call), "stage_failed");
    assert (otest_fake_count (intent, otest_request_id (call)) == 3);
    otest_http_destroy (&call);

    /* and it still serves, with every worker registered */
    call = otest_post (test, "cust-7", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_http_destroy (&call);
    call = otest_http (test, "GET", "/readyz", NULL);
    otest_http_expect (call, 200);
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

/* 7. Probes through the control endpoint. The orchestrator's own ("" or "orchestrator") checks its
   store; a probe for gatherer goes to the fake gatherer and its ProbeResult comes back; an unknown
   service, a service with no worker, and a worker whose check fails answer ok=false with why; a
   frame that is not an Envelope gets an Error, and the endpoint keeps serving. */
static void
s_test_probes (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "probes");
    otest_start (test);
    otest_fake_t *gatherer = otest_fake_new (test, OTEST_GATHERER, ANSWER_GOOD);
    otest_wait_registered (test);

    const Conveyor__V1__ProbeResult *result = otest_probe (test, "");
    assert (result->ok);
    otest_expect_streq ("probe service", result->service, "orchestrator");
    otest_expect_streq ("probe instance", result->instance, test->instance);
    result = otest_probe (test, "orchestrator");
    assert (result->ok);
    /* its canned check is the store's own look-up of a request: a schema it does not expect
       fails it, and saying why */
    cv_error_t err;
    assert (cv_pg_run (test->pg, "ALTER TABLE requests RENAME TO requests_away", 0, NULL, &err) == 0);
    result = otest_probe (test, "orchestrator");
    bool failed = !result->ok && strstr (result->detail, "requests");
    char detail[CV_DETAIL_MAX_BYTES];
    snprintf (detail, sizeof detail, "%s", result->detail);
    assert (cv_pg_run (test->pg, "ALTER TABLE requests_away RENAME TO requests", 0, NULL, &err) == 0);
    cv_assert_that (failed, "the probe with the requests table away: %s", detail);
    result = otest_probe (test, "orchestrator");
    assert (result->ok);

    result = otest_probe (test, "gatherer");
    assert (result->ok && gatherer->probes == 1);
    otest_expect_streq ("probe instance", result->instance, gatherer->worker->instance);
    otest_expect_streq ("probe detail", result->detail, "the fake answers");
    assert (result->latency_us == 7);

    result = otest_probe (test, "nosuch");
    assert (!result->ok);
    otest_expect_contains ("probe detail", result->detail, "no service named nosuch");
    result = otest_probe (test, "decision");
    assert (!result->ok);
    otest_expect_contains ("probe detail", result->detail, "no live decision worker");

    gatherer->probe_answer = PROBE_FAILS;
    result = otest_probe (test, "gatherer");
    assert (!result->ok && gatherer->probes == 2);
    otest_expect_streq ("probe instance", result->instance, gatherer->worker->instance);
    otest_expect_contains ("probe detail", result->detail, "canned check failed");
    gatherer->probe_answer = PROBE_REFUSED;
    result = otest_probe (test, "gatherer");
    assert (!result->ok && gatherer->probes == 3);
    otest_expect_streq ("probe service", result->service, "gatherer");
    otest_expect_contains ("probe detail", result->detail, "the fake takes no probes today");

    static const char garbage[] = "\xff\xff not a probe";
    const cv_envelope_t *reply = otest_control_send (test, garbage, sizeof garbage - 1);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR);
    assert (reply->error->code == CONVEYOR__V1__ERROR__CODE__MALFORMED);
    result = otest_probe (test, "");
    assert (result->ok);
    otest_test_destroy (&test);
}

/* POST /v1/tools/test for body; its answer must have status. */
static otest_call_t *
s_tool_test (otest_t *test, const char *body, long status)
{
    otest_call_t *call = otest_http (test, "POST", "/v1/tools/test", body);
    otest_http_expect (call, status);
    return call;
}

/* 8. Tool tests. With no gatherer, 503 and Retry-After; a bad body, 400 naming the field. With
   one, a diagnostic GatherRequest carries the user, the intent (as a rule that matched), its
   slots and a text (the intent's name by default), and the Evidence comes back with every tool's
   rows themselves; nothing is recorded. An intent the gatherer has no plan for is 400 naming it,
   any other Error 502; and GET is not allowed. */
static void
s_test_tool_tests (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "tools");
    otest_start (test);
    const char *body = "{\"user_id\": \"cust-1\", \"intent\": \"lost_or_stolen_card\", \"slots\": {\"last4\": "
                       "\"4417\", \"amount\": 20}}";
    otest_call_t *call = s_tool_test (test, body, 503);
    otest_expect_error (call, "no_gatherer");
    otest_http_destroy (&call);

    otest_fake_t *gatherer = otest_fake_new (test, OTEST_GATHERER, ANSWER_HOLD);
    otest_wait_registered (test);
    call = s_tool_test (test, "{\"user_id\": \"cust-1\"}", 400);
    otest_expect_error (call, "invalid_field");
    otest_expect_contains ("error.message", otest_text_at (call->document, "error.message"), "intent is required");
    otest_http_destroy (&call);

    call = otest_http (test, "POST", "/v1/tools/test", body);
    otest_wait_requests (gatherer, 1);
    const cv_envelope_t *request = gatherer->worker->requests[0];
    const Conveyor__V1__GatherRequest *gather = request->gather_request;
    assert (gather->diagnostic);
    otest_expect_streq ("user_id", gather->user_id, "cust-1");
    otest_expect_streq ("text", gather->text, "lost_or_stolen_card");
    otest_expect_streq ("intent", gather->intent->name, "lost_or_stolen_card");
    assert (gather->intent->confidence == 1.0f && gather->intent->method == CONVEYOR__V1__INTENT__METHOD__RULE);
    assert (!gather->intent->low_confidence);
    cv_error_t err;
    json_t *slots = cv_msgpack_unpack (gather->intent->slots.data, gather->intent->slots.len, "slots", &err);
    json_t *expected = json_pack ("{s:s, s:i}", "last4", "4417", "amount", 20);
    cv_assert_that (slots && json_equal (slots, expected), "the slots as given");
    json_decref (slots);
    json_decref (expected);
    char *id = cv_strdup (request->request_id);
    otest_fake_answer (gatherer, 0, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_streq ("intent", otest_text_at (call->document, "intent"), "lost_or_stolen_card");
    otest_expect_streq ("user_id", otest_text_at (call->document, "user_id"), "cust-1");
    json_t *tools = otest_at (call->document, "tools");
    assert (json_array_size (tools) == 1);
    json_t *tool = json_array_get (tools, 0);
    otest_expect_streq ("tool name", json_string_value (json_object_get (tool, "name")), "cards_in_delivery");
    otest_expect_streq ("tool status", json_string_value (json_object_get (tool, "status")), "ok");
    assert (json_real_value (json_object_get (tool, "duration_ms")) == 0.8);
    assert (json_is_integer (json_object_get (tool, "attempts")));
    assert (json_is_false (json_object_get (tool, "cached")) && json_is_false (json_object_get (tool, "breaker_open")));
    assert (json_is_null (json_object_get (tool, "error")));
    expected = json_pack ("[{s:s, s:s}]", "request", id, "last4", "9052");
    cv_assert_that (json_equal (json_object_get (tool, "rows"), expected), "the rows themselves");
    json_decref (expected);
    otest_http_destroy (&call);
    /* a diagnostic: no request row, no checkpoint */
    assert (otest_db_count (test, "SELECT count(*) FROM requests WHERE id = $1", id) == 0);
    assert (otest_db_checkpoints (test, id) == 0);
    free (id);

    /* no plan for the intent: 400 naming it; any other Error: 502 */
    otest_fake_script (gatherer, 2, ANSWER_NO_PLAN, ANSWER_ERROR);
    call = s_tool_test (test, "{\"user_id\": \"cust-1\", \"intent\": \"no_such_intent\"}", 400);
    otest_expect_error (call, "unknown_intent");
    otest_expect_contains ("error.message", otest_text_at (call->document, "error.message"),
                           "unknown intent no_such_intent");
    otest_http_destroy (&call);
    call = s_tool_test (test, "{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"text\": \"where?\"}", 502);
    otest_expect_error (call, "gatherer_error");
    otest_expect_contains ("error.message", otest_text_at (call->document, "error.message"), "refuses this request");
    otest_expect_streq ("text", gatherer->worker->requests[2]->gather_request->text, "where?");
    otest_http_destroy (&call);

    call = otest_http (test, "GET", "/v1/tools/test", NULL);
    otest_http_expect (call, 405);
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

static const otest_case_t s_cases[] = {
    {"worker_garbage", s_test_worker_garbage, false},
    {"probes", s_test_probes, false},
    {"tool_tests", s_test_tool_tests, false},
};

/* isolation-orchestrator-workers [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    return otest_main (argc, argv, "orchestrator workers isolation", s_cases, sizeof s_cases / sizeof *s_cases);
}
