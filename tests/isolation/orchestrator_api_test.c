/* Isolation test of the orchestrator's HTTP API (otest.h): the happy path with the checkpoints as
   the workers' bytes, idempotency keys (and two rows racing for one key), and back-pressure. */
#include <assert.h>
#include <stdio.h>

#include "otest.h"

/*  --------------------------------------------------------------------------
    The cases */

/* 1. The happy path. Each stage goes to its worker in order, carrying the earlier results (the
   fakes check), the answer is 200 with the responder's text, the request row is done, and its four
   checkpoints hold the very bytes each worker sent. The decision's action is recorded. GET gives
   the same document with its checkpoints; /healthz and /readyz say it serves. */
static void
s_test_happy_path (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "happy");
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);

    otest_call_t *call = otest_http (test, "GET", "/healthz", NULL);
    otest_http_expect (call, 200);
    otest_http_destroy (&call);
    call = otest_http (test, "GET", "/readyz", NULL);
    otest_http_expect (call, 200);
    otest_expect_streq ("readyz", otest_text_at (call->document, "checks.postgresql"), "ok");
    for (int stage = 0; stage < OTEST_STAGES; stage++) {
        char path[64];
        snprintf (path, sizeof path, "checks.%s", otest_services[stage]);
        assert (json_integer_value (otest_at (call->document, path)) == 1);
    }
    otest_http_destroy (&call);

    call = otest_post (test, "cust-1", "Where is my new card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    const char *id = otest_request_id (call);
    otest_expect_streq ("intent.name", otest_text_at (call->document, "intent.name"), "card_arrival");
    otest_expect_streq ("decision.outcome", otest_text_at (call->document, "decision.outcome"), "answer");
    assert (json_array_size (otest_at (call->document, "evidence.tools")) == 1);
    size_t last_arrival = 0;
    for (int stage = 0; stage < OTEST_STAGES; stage++) {
        otest_fake_t *fake = otest_fake (test, stage);
        assert (fake->worker->request_count == 1 && streq (fake->worker->requests[0]->request_id, id));
        assert (fake->worker->requests[0]->attempt == 1);
        assert (fake->arrival[0] > last_arrival); /* in stage order */
        last_arrival = fake->arrival[0];
    }
    const Conveyor__V1__IntentRequest *asked = otest_fake (test, OTEST_INTENT)->worker->requests[0]->intent_request;
    otest_expect_streq ("intent_request.user_id", asked->user_id, "cust-1");
    otest_expect_streq ("intent_request.text", asked->text, "Where is my new card?");
    otest_expect_streq ("respond_request.text",
                        otest_fake (test, OTEST_RESPONDER)->worker->requests[0]->respond_request->text,
                        "Where is my new card?");

    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_expect_db_status (test, id, "done");
    assert (otest_db_count (test,
                            "SELECT count(*) FROM requests WHERE id = $1 AND finished_at IS NOT NULL"
                            " AND error IS NULL",
                            id)
            == 1);
    assert (otest_db_count (test,
                            "SELECT count(*) FROM actions WHERE request_id = $1 AND action_id = 'a-1'"
                            " AND kind = 'notify' AND params = jsonb_build_object('request', $1::text)"
                            " AND status = 'done' AND result = jsonb_build_object('request', $1::text)",
                            id)
            == 1);

    char path[96];
    snprintf (path, sizeof path, "/v1/requests/%s", id);
    otest_call_t *get = otest_http (test, "GET", path, NULL);
    otest_http_expect (get, 200);
    otest_expect_done (get);
    /* the action, and what the executor answered for it */
    otest_expect_streq ("the action's kind", otest_text_at (get->document, "decision.actions.0.kind"), "notify");
    otest_expect_streq ("the action's status", otest_text_at (get->document, "decision.actions.0.status"), "done");
    otest_expect_streq ("the action's result", otest_text_at (get->document, "decision.actions.0.result.request"), id);
    json_t *checkpoints = otest_at (get->document, "checkpoints");
    assert (json_array_size (checkpoints) == OTEST_STAGES);
    for (size_t i = 0; i < OTEST_STAGES; i++)
        otest_expect_streq ("checkpoint",
                            json_string_value (json_object_get (json_array_get (checkpoints, i), "stage")),
                            otest_stages[i]);
    otest_http_destroy (&get);
    otest_http_destroy (&call);

    call = otest_http (test, "GET", "/v1/requests/r-nosuch", NULL);
    otest_http_expect (call, 404);
    otest_expect_error (call, "not_found");
    otest_http_destroy (&call);
    call = otest_http (test, "POST", "/v1/requests", "{\"user_id\": \"cust-1\"");
    otest_http_expect (call, 400);
    otest_expect_error (call, "invalid_json");
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

/* 3. Idempotency keys. A second POST with the same user and key while the first runs, and a third
   after it has finished, get the first request's answer: one run, one request id, one row. The
   same key for another user is another request. */
static void
s_test_idempotency (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "idempotency");
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *intent = otest_fake (test, OTEST_INTENT);
    intent->answer = ANSWER_HOLD;

    otest_call_t *first = otest_post (test, "cust-5", "Where is my card?", "idem-1");
    otest_wait_requests (intent, 1);
    /* The second one's row conflicts with the first's, committed before its intent stage left:
       it joins the first (or, if that has finished by then, reads its answer). */
    otest_call_t *second = otest_post (test, "cust-5", "Where is my card?", "idem-1");
    intent->answer = ANSWER_GOOD;
    otest_fake_answer (intent, 0, ANSWER_GOOD);
    otest_http_expect (first, 200);
    otest_http_expect (second, 200);
    otest_expect_done (first);
    otest_expect_done (second);
    const char *id = otest_request_id (first);
    otest_expect_streq ("the second POST's request_id", otest_request_id (second), id);

    otest_call_t *third = otest_post (test, "cust-5", "Where is my card, again?", "idem-1");
    otest_http_expect (third, 200);
    otest_expect_done (third);
    otest_expect_streq ("the third POST's request_id", otest_request_id (third), id);
    assert (intent->worker->request_count == 1);
    for (int stage = 0; stage < OTEST_STAGES; stage++)
        assert (otest_fake_count (otest_fake (test, stage), id) == 1);

    otest_call_t *other = otest_post (test, "cust-6", "Where is my card?", "idem-1");
    otest_http_expect (other, 200);
    otest_expect_done (other);
    assert (!streq (otest_request_id (other), id));
    assert (intent->worker->request_count == 2);
    assert (otest_db_count (test, "SELECT count(*) FROM requests WHERE idempotency_key = $1", "idem-1") == 2);
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_http_destroy (&first);
    otest_http_destroy (&second);
    otest_http_destroy (&third);
    otest_http_destroy (&other);
    otest_test_destroy (&test);
}

static bool
s_insert_waits (void *test_arg, const void *arg)
{
    otest_t *test = test_arg;
    return otest_db_count (test,
                           "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1"
                           " AND wait_event_type = 'Lock'",
                           arg)
           > 0;
}

/* 3b. Two requests with the same user and key recorded at the same moment: the one whose row
   loses the race is told to retry (503 with Retry-After, nothing recorded, no stage sent), and its
   retry gets the winner's answer. The race is made certain by a row with the same key that the
   test inserts and keeps uncommitted until the orchestrator's insert waits for it. */
static void
s_test_idempotency_race (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "race");
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    cv_error_t err;
    cv_pg_t *winner = cv_pg_new (test->database_url, "isolation-orchestrator-winner", &err);
    assert (winner);
    assert (cv_pg_run (winner, "BEGIN", 0, NULL, &err) == 0);
    assert (cv_pg_run (winner,
                       "INSERT INTO requests (id, user_id, text, status, idempotency_key, deadline_ms,"
                       " trace_id) VALUES ('r-race-winner', 'cust-15', 'Where is my card?', 'running',"
                       " 'race-1', 0, '0123456789abcdef0123456789abcdef')",
                       0, NULL, &err)
            == 0);

    otest_call_t *loser = otest_post (test, "cust-15", "Where is my card?", "race-1");
    char backends[80];
    snprintf (backends, sizeof backends, "%s-%%", test->instance);
    bool waiting = otest_run_until (test, s_insert_waits, backends, OTEST_WAIT_MS);
    assert (waiting);
    assert (cv_pg_run (winner, "COMMIT", 0, NULL, &err) == 0);
    cv_pg_destroy (&winner);
    otest_http_expect (loser, 503);
    assert (!otest_at (loser->document, "request_id"));
    assert (otest_db_count (test, "SELECT count(*) FROM requests WHERE user_id = $1", "cust-15") == 1);
    otest_http_destroy (&loser);

    otest_call_t *retry = otest_post (test, "cust-15", "Where is my card?", "race-1");
    otest_http_expect (retry, 202);
    otest_expect_streq ("the retry's request_id", otest_request_id (retry), "r-race-winner");
    otest_expect_streq ("the retry's status", otest_text_at (retry->document, "status"), "running");
    otest_http_destroy (&retry);
    assert (otest_fake (test, OTEST_INTENT)->worker->request_count == 0);
    otest_test_destroy (&test);
}

/* 5. Back-pressure. With max_in_flight 2 and the intent worker holding both requests, a third POST
   gets 503 overloaded with Retry-After, before anything is recorded; once the two finish, a new
   POST is served. */
static void
s_test_back_pressure (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "pressure");
    test->config.max_in_flight = 2;
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *intent = otest_fake (test, OTEST_INTENT);
    intent->answer = ANSWER_HOLD;

    otest_call_t *held[2];
    for (size_t i = 0; i < 2; i++)
        held[i] = otest_post (test, "cust-8", "Where is my card?", NULL);
    otest_wait_requests (intent, 2);
    otest_call_t *refused = otest_post (test, "cust-8", "Where is my card?", NULL);
    otest_http_expect (refused, 503);
    otest_expect_error (refused, "overloaded");
    otest_expect_streq ("Retry-After", refused->retry_after, "1");
    assert (!otest_at (refused->document, "request_id"));
    otest_http_destroy (&refused);

    intent->answer = ANSWER_GOOD;
    otest_fake_answer_held (intent, ANSWER_GOOD);
    for (size_t i = 0; i < 2; i++) {
        otest_http_expect (held[i], 200);
        otest_expect_done (held[i]);
        otest_http_destroy (&held[i]);
    }
    otest_call_t *call = otest_post (test, "cust-8", "Where is my card?", NULL);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_http_destroy (&call);
    assert (intent->worker->request_count == 3);
    otest_test_destroy (&test);
}

static const otest_case_t s_cases[] = {
    {"happy_path", s_test_happy_path, false},
    {"idempotency", s_test_idempotency, false},
    {"idempotency_race", s_test_idempotency_race, false},
    {"back_pressure", s_test_back_pressure, false},
};

/* isolation-orchestrator-api [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    return otest_main (argc, argv, "orchestrator api isolation", s_cases, sizeof s_cases / sizeof *s_cases);
}
