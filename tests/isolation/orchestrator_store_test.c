/* Isolation test of the orchestrator with its store in trouble and after a stop (otest.h):
   PostgreSQL away at start, gone mid-request and too slow mid-request (a proxy in front of it),
   $TERM with a store operation pending, and $TERM with requests open, then their recovery by a
   new orchestrator. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"
#include "harness.h"
#include "otest.h"

/*  --------------------------------------------------------------------------
    The cases */

/* 6a. PostgreSQL out of reach from the start (a closed port). The actor starts anyway; a POST gets
   503 store_unavailable with Retry-After, so does a GET of a request; /readyz is 503 naming
   postgresql; the orchestrator's own probe says ok=false. It stops cleanly. */
static void
s_test_store_down (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "down");
    char port[16];
    snprintf (port, sizeof port, "%d", harness_closed_port ());
    otest_conninfo (run, port, run->database, test->database_url, sizeof test->database_url);
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);

    otest_call_t *call = otest_post (test, "cust-9", "Where is my card?", NULL);
    otest_http_expect (call, 503);
    otest_expect_error (call, "store_unavailable");
    otest_http_destroy (&call);
    call = otest_http (test, "GET", "/v1/requests/r-0123", NULL);
    otest_http_expect (call, 503);
    otest_expect_error (call, "store_unavailable");
    otest_http_destroy (&call);
    call = otest_http (test, "GET", "/readyz", NULL);
    otest_http_expect (call, 503);
    otest_expect_streq ("readyz status", otest_text_at (call->document, "status"), "not_ready");
    otest_expect_contains ("readyz checks.postgresql", otest_text_at (call->document, "checks.postgresql"),
                           "postgresql");
    otest_http_destroy (&call);

    const Conveyor__V1__ProbeResult *result = otest_probe (test, "");
    assert (!result->ok);
    otest_expect_streq ("probe service", result->service, "orchestrator");
    otest_expect_contains ("probe detail", result->detail, "postgresql");
    result = otest_probe (test, "orchestrator");
    assert (!result->ok);
    otest_test_destroy (&test);
}

/* 6b. PostgreSQL goes away mid-request (a proxy in front of it is cut while the gather stage is at
   its worker). The gatherer's answer cannot be checkpointed: the request is parked and its client
   gets 503 with the request id and Retry-After; a new POST and a GET get 503 too. When the proxy
   is restored the request resumes where it was: the decision worker gets its stage, and a retry
   with the same idempotency key joins it and gets the answer. Its checkpoints are all there. */
static void
s_test_store_cut (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "cut");
    otest_proxy_start (test);
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *gatherer = otest_fake (test, OTEST_GATHERER), *decision = otest_fake (test, OTEST_DECISION);
    gatherer->answer = decision->answer = ANSWER_HOLD;

    otest_call_t *call = otest_post (test, "cust-10", "Where is my card?", "cut-1");
    otest_wait_requests (gatherer, 1);
    char *id = cv_strdup (gatherer->worker->requests[0]->request_id);
    otest_expect_checkpoints (test, id, 1);

    otest_proxy_command_ok (test, "CUT");
    otest_fake_answer (gatherer, 0, ANSWER_GOOD);
    otest_http_expect (call, 503);
    otest_expect_error (call, "store_unavailable");
    otest_expect_streq ("the parked request's id", otest_text_at (call->document, "request_id"), id);
    otest_expect_streq ("the parked request's status", otest_text_at (call->document, "status"), "running");
    otest_http_destroy (&call);
    call = otest_post (test, "cust-11", "Where is my card?", NULL);
    otest_http_expect (call, 503);
    otest_expect_error (call, "store_unavailable");
    otest_http_destroy (&call);
    char path[96];
    snprintf (path, sizeof path, "/v1/requests/%s", id);
    call = otest_http (test, "GET", path, NULL);
    otest_http_expect (call, 503);
    otest_http_destroy (&call);
    assert (decision->worker->request_count == 0);
    otest_expect_checkpoints (test, id, 1);

    otest_proxy_command_ok (test, "RESTORE");
    otest_wait_requests (decision, 1);
    assert (streq (decision->worker->requests[0]->request_id, id));
    otest_expect_checkpoints (test, id, 2);
    call = otest_post (test, "cust-10", "Where is my card?", "cut-1");
    otest_fake_answer (decision, 0, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_streq ("the retry's request_id", otest_request_id (call), id);
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_expect_db_status (test, id, "done");
    otest_http_destroy (&call);
    free (id);
    otest_test_destroy (&test);
}

/* 6c. A store that stops answering (the proxy keeps the connections but forwards nothing). A write
   slower than store_timeout_ms fails as if PostgreSQL were away: the request is parked (503 with its
   id) and resumes once the store answers again. */
static void
s_test_store_stall (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "stall");
    test->config.store_timeout_ms = 300;
    otest_proxy_start (test);
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    /* The store's connections may have timed out while the actor migrated at start (the migration
       blocks its loop, and 300 ms is short): wait until they are up again. */
    otest_wait_ready (test);
    otest_fake_t *gatherer = otest_fake (test, OTEST_GATHERER), *decision = otest_fake (test, OTEST_DECISION);
    gatherer->answer = decision->answer = ANSWER_HOLD;

    otest_call_t *call = otest_post (test, "cust-16", "Where is my card?", "stall-1");
    otest_wait_requests (gatherer, 1);
    char *id = cv_strdup (gatherer->worker->requests[0]->request_id);
    otest_proxy_command_ok (test, "STALL");
    int64_t answered_at = zclock_mono ();
    otest_fake_answer (gatherer, 0, ANSWER_GOOD);
    otest_http_expect (call, 503);
    assert (zclock_mono () - answered_at >= test->config.store_timeout_ms - 50);
    otest_expect_error (call, "store_unavailable");
    otest_expect_streq ("the parked request's id", otest_text_at (call->document, "request_id"), id);
    otest_http_destroy (&call);

    otest_proxy_command_ok (test, "RESTORE");
    otest_wait_requests (decision, 1);
    assert (streq (decision->worker->requests[0]->request_id, id));
    otest_fake_answer (decision, 0, ANSWER_GOOD);
    otest_wait_db_status (test, id, "done");
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    free (id);
    otest_test_destroy (&test);
}

/* 6d. $TERM while a store operation is still unanswered (a readiness check, seen leaving by the
   stalled proxy): its exchange gets 503 and the actor stops. The store fails what it holds at the
   stop, so each owner hears and frees its state (AddressSanitizer reports a leak otherwise). */
static void
s_test_stop_with_store_pending (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "pending");
    otest_proxy_start (test);
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_wait_ready (test);
    otest_proxy_command_ok (test, "STALL");
    size_t held = otest_proxy_held (test);
    otest_call_t *ready = otest_http (test, "GET", "/readyz", NULL);
    otest_wait_held (test, held);
    otest_stop (test);
    otest_http_expect (ready, 503);
    otest_http_destroy (&ready);
    otest_proxy_command_ok (test, "RESTORE");
    otest_test_destroy (&test);
}

/* 8. $TERM with requests open. The open HTTP exchanges (requests at the intent worker, with and
   without an idempotency key, and one at the gatherer) get 503 and the actor stops. A new
   orchestrator on the same database resumes the recorded requests from their checkpoints and
   finishes them. */
static void
s_test_terminate (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "term");
    otest_start (test);
    otest_fakes_start (test, ANSWER_HOLD);
    otest_fake_t *intent = otest_fake (test, OTEST_INTENT);

    otest_call_t *keyed = otest_post (test, "cust-12", "Where is my card?", "term-1");
    otest_wait_requests (intent, 1);
    char *keyed_id = cv_strdup (intent->worker->requests[0]->request_id);
    otest_call_t *gathering = otest_post (test, "cust-13", "Where is my card?", NULL);
    otest_wait_requests (intent, 2);
    char *gathering_id = cv_strdup (intent->worker->requests[1]->request_id);
    otest_fake_answer (intent, 1, ANSWER_GOOD);
    otest_wait_requests (otest_fake (test, OTEST_GATHERER), 1);
    otest_expect_checkpoints (test, gathering_id, 1);

    otest_stop (test);
    otest_http_expect (keyed, 503);
    otest_expect_error (keyed, "shutting_down");
    otest_http_expect (gathering, 503);
    otest_expect_error (gathering, "shutting_down");
    otest_http_destroy (&keyed);
    otest_http_destroy (&gathering);
    otest_expect_db_status (test, keyed_id, "running");
    otest_expect_db_status (test, gathering_id, "running");

    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_wait_db_status (test, keyed_id, "done");
    otest_wait_db_status (test, gathering_id, "done");
    assert (otest_fake_count (otest_fake (test, OTEST_INTENT), gathering_id) == 0); /* resumed at its gather stage */
    assert (otest_fake_count (otest_fake (test, OTEST_GATHERER), gathering_id) == 1);
    assert (otest_fake_count (otest_fake (test, OTEST_INTENT), keyed_id) == 1);
    free (keyed_id);
    free (gathering_id);
    otest_test_destroy (&test);
}

static const otest_case_t s_cases[] = {
    {"store_down", s_test_store_down, false},   {"store_cut", s_test_store_cut, false},
    {"store_stall", s_test_store_stall, false}, {"stop_with_store_pending", s_test_stop_with_store_pending, false},
    {"terminate", s_test_terminate, false},
};

/* isolation-orchestrator-store [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    return otest_main (argc, argv, "orchestrator store isolation", s_cases, sizeof s_cases / sizeof *s_cases);
}
