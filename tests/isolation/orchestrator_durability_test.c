/* Isolation test of the orchestrator's durability modes (otest.h): what is committed, seen from
   the test's own connection, while each stage is at its worker, in sync, async and exit. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"
#include "otest.h"

/*  --------------------------------------------------------------------------
    The cases */

/* 2a. Durability sync (the default). Whenever a stage reaches its worker, the checkpoints of all
   the stages before it are committed (the test looks from its own connection while the fake holds
   the stage), and the decision's actions with the decide checkpoint. With an idempotency key the
   row is committed before the first stage leaves. */
static void
s_test_sync (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "sync");
    otest_start (test);
    otest_fakes_start (test, ANSWER_HOLD);

    otest_call_t *call = otest_post (test, "cust-2", "My card has not arrived", NULL);
    otest_wait_requests (otest_fake (test, 0), 1);
    char *id = cv_strdup (otest_fake (test, 0)->worker->requests[0]->request_id);
    for (int stage = 0; stage < 4; stage++) {
        otest_fake_t *fake = otest_fake (test, stage);
        otest_wait_requests (fake, 1);
        assert (streq (fake->worker->requests[0]->request_id, id));
        otest_expect_checkpoints (test, id, (size_t) stage);
        if (stage > 0)
            otest_expect_db_status (test, id, "running");
        if (stage == 3)
            assert (otest_db_count (test, "SELECT count(*) FROM actions WHERE request_id = $1", id) == 1);
        otest_fake_answer (fake, 0, ANSWER_GOOD);
    }
    const cv_envelope_t *gather = otest_fake (test, 1)->worker->requests[0];
    otest_expect_streq ("gather_request.user_id", gather->gather_request->user_id, "cust-2");
    otest_expect_streq ("gather_request.text", gather->gather_request->text, "My card has not arrived");
    otest_http_expect (call, 200);
    otest_expect_done (call);
    assert (streq (otest_request_id (call), id));
    otest_expect_checkpoints (test, id, 4);
    otest_expect_db_status (test, id, "done");
    otest_http_destroy (&call);
    free (id);

    call = otest_post (test, "cust-2", "My card has not arrived", "sync-key");
    otest_wait_requests (otest_fake (test, 0), 2);
    id = cv_strdup (otest_fake (test, 0)->worker->requests[1]->request_id);
    otest_expect_db_status (test, id, "running");
    otest_expect_checkpoints (test, id, 0);
    for (int stage = 0; stage < 4; stage++)
        otest_fake (test, stage)->answer = ANSWER_GOOD;
    otest_fake_answer_held (otest_fake (test, 0), ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_checkpoints (test, id, 4);
    otest_http_destroy (&call);
    free (id);
    otest_test_destroy (&test);
}

/* 2b. Durability async. Checkpoints are written while the next stage runs, but the answer waits for
   them all: right after each 200, the row is done and the four checkpoints are there. With an
   idempotency key the row is committed before the first stage leaves, as in sync. */
static void
s_test_async (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "async");
    test->config.durability = ORCHESTRATOR_DURABILITY_ASYNC;
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);

    otest_call_t *calls[3];
    for (size_t i = 0; i < 3; i++)
        calls[i] = otest_post (test, "cust-3", "Where is my card?", NULL);
    for (size_t i = 0; i < 3; i++) {
        otest_http_expect (calls[i], 200);
        otest_expect_done (calls[i]);
        otest_expect_db_status (test, otest_request_id (calls[i]), "done");
        otest_expect_checkpoints (test, otest_request_id (calls[i]), 4);
        otest_http_destroy (&calls[i]);
    }

    otest_fake_t *intent = otest_fake (test, 0);
    intent->answer = ANSWER_HOLD;
    otest_call_t *call = otest_post (test, "cust-3", "Where is my card?", "async-key");
    otest_wait_requests (intent, 4);
    const char *id = intent->worker->requests[3]->request_id;
    otest_expect_db_status (test, id, "running");
    otest_fake_answer (intent, 3, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_checkpoints (test, id, 4);
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

/* 2c. Durability exit. Nothing is written until the request finishes: while it is at the
   responder, it has no row; after the 200 it has its row, done, and its four checkpoints. With an
   idempotency key the row is committed first, and only the row. */
static void
s_test_exit (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "exit");
    test->config.durability = ORCHESTRATOR_DURABILITY_EXIT;
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *intent = otest_fake (test, 0), *responder = otest_fake (test, 3);
    responder->answer = ANSWER_HOLD;

    otest_call_t *call = otest_post (test, "cust-4", "Where is my card?", NULL);
    otest_wait_requests (responder, 1);
    const char *id = responder->worker->requests[0]->request_id;
    otest_expect_db_status (test, id, "");
    assert (otest_db_checkpoints (test, id) == 0);
    otest_fake_answer (responder, 0, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_db_status (test, id, "done");
    otest_expect_checkpoints (test, id, 4);
    otest_http_destroy (&call);

    intent->answer = ANSWER_HOLD;
    call = otest_post (test, "cust-4", "Where is my card?", "exit-key");
    otest_wait_requests (intent, 2);
    id = intent->worker->requests[1]->request_id;
    otest_expect_db_status (test, id, "running");
    otest_fake_answer (intent, 1, ANSWER_GOOD);
    otest_wait_requests (responder, 2);
    otest_expect_db_status (test, id, "running");
    assert (otest_db_checkpoints (test, id) == 0);
    otest_fake_answer (responder, 1, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_db_status (test, id, "done");
    otest_expect_checkpoints (test, id, 4);
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

static const otest_case_t s_cases[] = {
    {"sync", s_test_sync, false},
    {"async", s_test_async, false},
    {"exit", s_test_exit, false},
};

/* isolation-orchestrator-durability [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    return otest_main (argc, argv, "orchestrator durability isolation", s_cases, sizeof s_cases / sizeof *s_cases);
}
