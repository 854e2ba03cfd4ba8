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
   the stage), and the decision's actions with the decide checkpoint: recorded before the executor
   has them, done (with the bank's answer) before the responder has the results. With an
   idempotency key the row is committed before the first stage leaves. */
static void
s_test_sync (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "sync");
    otest_start (test);
    otest_fakes_start (test, ANSWER_HOLD);

    otest_call_t *call = otest_post (test, "cust-2", "My card has not arrived", NULL);
    otest_wait_requests (otest_fake (test, OTEST_INTENT), 1);
    char *id = cv_strdup (otest_fake (test, OTEST_INTENT)->worker->requests[0]->request_id);
    for (int stage = 0; stage < OTEST_STAGES; stage++) {
        otest_fake_t *fake = otest_fake (test, stage);
        otest_wait_requests (fake, 1);
        assert (streq (fake->worker->requests[0]->request_id, id));
        otest_expect_checkpoints (test, id, (size_t) stage);
        if (stage > 0)
            otest_expect_db_status (test, id, "running");
        if (stage == OTEST_EXECUTOR)
            assert (
                otest_db_count (test, "SELECT count(*) FROM actions WHERE request_id = $1 AND status = 'recorded'", id)
                == 1);
        if (stage == OTEST_RESPONDER)
            assert (otest_db_count (test,
                                    "SELECT count(*) FROM actions WHERE request_id = $1 AND status = 'done'"
                                    " AND result = jsonb_build_object('request', $1::text) AND attempts = 1"
                                    " AND NOT replayed AND performed_at IS NOT NULL",
                                    id)
                    == 1);
        otest_fake_answer (fake, 0, ANSWER_GOOD);
    }
    const cv_envelope_t *gather = otest_fake (test, OTEST_GATHERER)->worker->requests[0];
    otest_expect_streq ("gather_request.user_id", gather->gather_request->user_id, "cust-2");
    otest_expect_streq ("gather_request.text", gather->gather_request->text, "My card has not arrived");
    otest_http_expect (call, 200);
    otest_expect_done (call);
    assert (streq (otest_request_id (call), id));
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_expect_db_status (test, id, "done");
    otest_http_destroy (&call);
    free (id);

    call = otest_post (test, "cust-2", "My card has not arrived", "sync-key");
    otest_wait_requests (otest_fake (test, OTEST_INTENT), 2);
    id = cv_strdup (otest_fake (test, OTEST_INTENT)->worker->requests[1]->request_id);
    otest_expect_db_status (test, id, "running");
    otest_expect_checkpoints (test, id, 0);
    for (int stage = 0; stage < OTEST_STAGES; stage++)
        otest_fake (test, stage)->answer = ANSWER_GOOD;
    otest_fake_answer_held (otest_fake (test, OTEST_INTENT), ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_http_destroy (&call);
    free (id);
    otest_test_destroy (&test);
}

/* 2b. Durability async. Checkpoints are written while the next stage runs, but the answer waits for
   them all: right after each 200, the row is done and every checkpoint is there. The actions are
   the exception: the row and every checkpoint before the execute stage are committed before it
   leaves, as in sync. With an idempotency key the row is committed before the first stage
   leaves, as in sync. */
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
        otest_expect_checkpoints (test, otest_request_id (calls[i]), OTEST_STAGES);
        otest_http_destroy (&calls[i]);
    }

    otest_fake_t *intent = otest_fake (test, OTEST_INTENT);
    intent->answer = ANSWER_HOLD;
    otest_call_t *call = otest_post (test, "cust-3", "Where is my card?", "async-key");
    otest_wait_requests (intent, 4);
    const char *id = intent->worker->requests[3]->request_id;
    otest_expect_db_status (test, id, "running");
    otest_fake_answer (intent, 3, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_http_destroy (&call);
    otest_test_destroy (&test);
}

/* 2c. Durability exit. Nothing is written until the request finishes, but for its actions: before
   the execute stage leaves, the row and the checkpoints before it (the decide one records the
   actions) are committed. While it is at the executor it has its row, running, three checkpoints
   and its action recorded; at the responder still that (the execute checkpoint waits for the
   end); after the 200 its row is done with every checkpoint. With an idempotency key the row is
   committed before the first stage leaves. */
static void
s_test_exit (const otest_run_t *run)
{
    otest_t *test = otest_test_new (run, "exit");
    test->config.durability = ORCHESTRATOR_DURABILITY_EXIT;
    otest_start (test);
    otest_fakes_start (test, ANSWER_GOOD);
    otest_fake_t *intent = otest_fake (test, OTEST_INTENT), *responder = otest_fake (test, OTEST_RESPONDER);
    otest_fake_t *executor = otest_fake (test, OTEST_EXECUTOR);
    executor->answer = ANSWER_HOLD;
    responder->answer = ANSWER_HOLD;

    otest_call_t *call = otest_post (test, "cust-4", "Where is my card?", NULL);
    otest_wait_requests (executor, 1);
    const char *id = executor->worker->requests[0]->request_id;
    otest_expect_db_status (test, id, "running");
    otest_expect_checkpoints (test, id, 3);
    assert (otest_db_count (test, "SELECT count(*) FROM actions WHERE request_id = $1 AND status = 'recorded'", id)
            == 1);
    otest_fake_answer (executor, 0, ANSWER_GOOD);
    otest_wait_requests (responder, 1);
    otest_expect_checkpoints (test, id, 3);
    otest_fake_answer (responder, 0, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_db_status (test, id, "done");
    otest_expect_checkpoints (test, id, OTEST_STAGES);
    otest_http_destroy (&call);

    intent->answer = ANSWER_HOLD;
    call = otest_post (test, "cust-4", "Where is my card?", "exit-key");
    otest_wait_requests (intent, 2);
    id = intent->worker->requests[1]->request_id;
    otest_expect_db_status (test, id, "running");
    otest_fake_answer (intent, 1, ANSWER_GOOD);
    otest_wait_requests (executor, 2);
    otest_expect_checkpoints (test, id, 3);
    otest_fake_answer (executor, 1, ANSWER_GOOD);
    otest_wait_requests (responder, 2);
    otest_expect_db_status (test, id, "running");
    otest_expect_checkpoints (test, id, 3);
    otest_fake_answer (responder, 1, ANSWER_GOOD);
    otest_http_expect (call, 200);
    otest_expect_done (call);
    otest_expect_db_status (test, id, "done");
    otest_expect_checkpoints (test, id, OTEST_STAGES);
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
