/* Isolation test of the executor worker: the real executor logic in a cv_worker, driven by the
   harness (playing the orchestrator) over real sockets, as the executor's role on a database of
   its own (a copy of the fixture's bank, which it changes): a card frozen, the same request again
   replayed with nothing changed twice, a freeze and a replacement in order, a refusal with the
   bank's reason, an unknown kind, malformed and invalid traffic, a small agent of its own (an SQL
   error, an answer not of the bank's form, a statement too slow on every attempt), and then
   PostgreSQL out of reach. Run from the source folder (ctest does). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_config.h"
#include "cv_launcher.h"
#include "cv_msgpack.h"
#include "cv_pg.h"
#include "executor_perform.h"
#include "executor_server.h"
#include "harness.h"

/* One executor worker and everything its configuration points to, which must outlive it. */
typedef struct {
    cv_log_t *log;
    cv_config_t *agent;
    cv_settings_t *settings;
    cv_launcher_args_t args;
    cv_worker_config_t config;
    harness_t *harness;
    zactor_t *worker;
    char *control;
} etest_t;

/* An executor on url with the agent file text, or the demo bank's when NULL. */
static etest_t *
s_start (const char *url, const char *agent)
{
    etest_t *self = cv_calloc (1, sizeof *self);
    cv_error_t err;
    self->log = cv_log_new (EXECUTOR_SERVICE, "executor-isolation", false);
    self->agent =
        agent ? cv_config_parse ("agent.yaml", agent, &err) : cv_config_load ("deploy/config/bank-agent.yaml", &err);
    cv_assert_that (self->agent, "%s", err.message);
    self->settings = cv_settings_new ("executor", "test", executor_server_settings, executor_server_settings_count);
    char *argv[] = {"executor", "--database-url", (char *) url, NULL};
    assert (cv_settings_load (self->settings, 3, argv, &err) == 0);
    self->args = (cv_launcher_args_t){.agent = self->agent, .settings = self->settings};
    self->config = cv_launcher_worker_config (&executor_server_spec, &self->args, self->log);
    self->config.capacity = 2;
    self->harness = harness_new ();
    self->worker = harness_start_worker (self->harness, &self->config);
    self->control = harness_control_endpoint (self->worker);
    return self;
}

static void
s_stop (etest_t **self_p)
{
    etest_t *self = *self_p;
    zactor_destroy (&self->worker);
    harness_destroy (&self->harness);
    zstr_free (&self->control);
    cv_settings_destroy (&self->settings);
    cv_config_destroy (&self->agent);
    cv_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

/* One action of a request: "ID KIND" and its params (a JSON object, borrowed, or NULL). */
typedef struct {
    const char *id;
    const char *kind;
    json_t *params;
    bool requires_approval;
} s_action_t;

/* An ExecuteRequest of request_id for user with count actions, in arena. */
static cv_envelope_t *
s_request (cv_arena_t *arena, const char *request_id, const char *user, const s_action_t *actions, size_t count)
{
    cv_envelope_t *request = harness_envelope (arena, 10000);
    request->request_id = (char *) request_id;
    Conveyor__V1__ExecuteRequest *body = cv_envelope_set_execute_request (request, arena);
    body->user_id = (char *) user;
    body->actions = cv_arena_alloc (arena, (count ? count : 1) * sizeof *body->actions);
    body->n_actions = count;
    for (size_t i = 0; i < count; i++) {
        Conveyor__V1__Action *action = body->actions[i] = cv_envelope_action_new (arena);
        action->id = (char *) actions[i].id;
        action->kind = (char *) actions[i].kind;
        action->requires_approval = actions[i].requires_approval;
        if (actions[i].params) {
            cv_error_t err;
            size_t size;
            uint8_t *packed = cv_msgpack_pack (actions[i].params, &size, &err);
            assert (packed);
            action->params.data = cv_arena_adopt (arena, packed, size);
            action->params.len = size;
        }
    }
    return request;
}

/* Sends the request and returns its ActionResults, validated as the orchestrator would, with one
   result per action in order. */
static cv_envelope_t *
s_execute (etest_t *self, const char *request_id, const char *user, const s_action_t *actions, size_t count)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = s_request (arena, request_id, user, actions, count);
    cv_envelope_t *reply = harness_request (self->harness, request, 30000);
    assert (reply && streq (reply->message_id, request->message_id) && streq (reply->request_id, request_id));
    cv_arena_destroy (&arena);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS,
                    "expected action_results, got %s: %s", cv_envelope_body_name (reply->body_case),
                    reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR ? reply->error->message : "");
    cv_error_t err;
    cv_assert_that (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS),
                                          (uint64_t) zclock_time (), &err)
                        == 0,
                    "%s", err.message);
    assert (reply->action_results->n_results == count);
    for (size_t i = 0; i < count; i++) {
        assert (streq (reply->action_results->results[i]->action_id, actions[i].id));
        assert (streq (reply->action_results->results[i]->kind, actions[i].kind));
    }
    return reply;
}

/* Asserts result i of reply: its outcome, replayed, and a reason that holds reason (NULL: none). */
static void
s_expect (const cv_envelope_t *reply, size_t i, Conveyor__V1__ActionResult__Outcome outcome, bool replayed,
          const char *reason)
{
    const Conveyor__V1__ActionResult *result = reply->action_results->results[i];
    cv_assert_that (result->outcome == outcome && result->replayed == replayed, "%s: outcome %d replayed %d: %s",
                    result->action_id, (int) result->outcome, (int) result->replayed, result->reason);
    if (reason)
        cv_assert_that (strstr (result->reason, reason), "%s: expected '%s' in '%s'", result->action_id, reason,
                        result->reason);
    else
        assert (!*result->reason);
}

/* Result i's field of what the bank returned, as text (NULL when absent); new string. */
static char *
s_result_text (const cv_envelope_t *reply, size_t i, const char *field)
{
    const Conveyor__V1__ActionResult *result = reply->action_results->results[i];
    cv_error_t err;
    json_t *value = cv_msgpack_unpack (result->result.data, result->result.len, "result", &err);
    assert (json_is_object (value));
    assert (!json_object_get (value, "outcome") && !json_object_get (value, "replayed"));
    const char *text = json_string_value (json_object_get (value, field));
    char *copy = text ? cv_strdup (text) : NULL;
    json_decref (value);
    return copy;
}

static void
s_expect_result (const cv_envelope_t *reply, size_t i, const char *field, const char *expected)
{
    char *text = s_result_text (reply, i, field);
    cv_assert_that (text && streq (text, expected), "%s: expected '%s', got '%s'", field, expected,
                    text ? text : "(none)");
    free (text);
}

/* One value of sql, as text, read as the bank's owner. */
static char *
s_query (cv_pg_t *pg, const char *sql)
{
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (pg, sql, 0, NULL, &err);
    cv_assert_that (result && cv_pg_result_rows (result) == 1, "%s: %s", sql, result ? "not one row" : err.message);
    char *text = cv_strdup (cv_pg_result_text (result, 0, 0));
    cv_pg_result_destroy (&result);
    return text;
}

static void
s_expect_query (cv_pg_t *pg, const char *sql, const char *expected)
{
    char *text = s_query (pg, sql);
    cv_assert_that (streq (text, expected), "%s: expected '%s', got '%s'", sql, expected, text);
    free (text);
}

static void
s_expect_probe (etest_t *self, bool ok, const char *detail)
{
    cv_envelope_t *reply = harness_probe (self->control, 10000);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    Conveyor__V1__ProbeResult *result = reply->probe_result;
    cv_assert_that (result->ok == ok && strstr (result->detail, detail), "probe: expected ok=%d '%s', got ok=%d '%s'",
                    ok, detail, result->ok, result->detail);
    assert (streq (result->service, EXECUTOR_SERVICE));
    cv_envelope_destroy (&reply);
}

/* The demo's actions on the bank: done, replayed, in order, refused, unknown. */
static void
s_bank_traffic (etest_t *executor, cv_pg_t *pg)
{
    const Conveyor__V1__ActionResult__Outcome done = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE,
                                              refused = CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED,
                                              failed = CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
    s_expect_query (pg, "SELECT status FROM bank.cards WHERE id = 'card-1-1'", "active");
    json_t *card = json_pack ("{s:s, s:s}", "card_id", "card-1-1", "last4", "4417");
    s_action_t freeze[] = {{"a1", "freeze_card", card, false}};

    /* cust-1 lost card-1-1: frozen, once */
    cv_envelope_t *reply = s_execute (executor, "req-freeze", "cust-1", freeze, 1);
    s_expect (reply, 0, done, false, NULL);
    assert (reply->action_results->results[0]->attempts == 1 && reply->action_results->results[0]->elapsed_us > 0);
    s_expect_result (reply, 0, "card_id", "card-1-1");
    s_expect_result (reply, 0, "last4", "4417");
    s_expect_result (reply, 0, "status", "frozen");
    cv_envelope_destroy (&reply);
    s_expect_query (pg, "SELECT status FROM bank.cards WHERE id = 'card-1-1'", "frozen");

    /* the same request again (a retry, a duplicate, a restart): replayed, nothing changes twice */
    char *applied_before = s_query (pg, "SELECT max(applied_at)::text FROM bank.applied_actions");
    reply = s_execute (executor, "req-freeze", "cust-1", freeze, 1);
    s_expect (reply, 0, done, true, NULL);
    s_expect_result (reply, 0, "status", "frozen");
    cv_envelope_destroy (&reply);
    s_expect_query (pg, "SELECT count(*) FROM bank.applied_actions WHERE idempotency_key = 'req-freeze:a1'", "1");
    char *applied_after = s_query (pg, "SELECT max(applied_at)::text FROM bank.applied_actions");
    assert (streq (applied_before, applied_after));
    free (applied_before);
    free (applied_after);

    /* another request's freeze of the frozen card is refused with the bank's reason */
    s_action_t refreeze[] = {{"a9", "freeze_card", card, false}};
    reply = s_execute (executor, "req-refreeze", "cust-1", refreeze, 1);
    s_expect (reply, 0, refused, false, "the card is frozen, not active");
    s_expect_result (reply, 0, "reason", "the card is frozen, not active");
    s_expect_result (reply, 0, "last4", "4417");
    cv_envelope_destroy (&reply);

    /* a freeze and the replacement that needs the card frozen, in one request, in order: an
       active card whose account has no card on its way (as tests/sql/bank_actions_test.sh finds) */
    char *lost = s_query (pg, "SELECT c.id FROM bank.cards c WHERE c.status = 'active' AND NOT EXISTS ("
                              " SELECT FROM bank.cards o WHERE o.account_id = c.account_id"
                              " AND o.status IN ('ordered', 'shipped')) ORDER BY c.id LIMIT 1");
    char *sql = cv_asprintf ("SELECT customer_id FROM bank.cards WHERE id = '%s'", lost);
    char *owner = s_query (pg, sql);
    free (sql);
    sql = cv_asprintf ("SELECT count(*) FROM bank.cards WHERE customer_id = '%s'", owner);
    char *cards_before = s_query (pg, sql);
    json_t *lost_card = json_pack ("{s:s}", "card_id", lost);
    s_action_t replace[] = {{"a1", "freeze_card", lost_card, false},
                            {"a2", "order_replacement_card", lost_card, false}};
    reply = s_execute (executor, "req-replace", owner, replace, 2);
    s_expect (reply, 0, done, false, NULL);
    s_expect (reply, 1, done, false, NULL);
    s_expect_result (reply, 1, "replaces", lost);
    char *new_card = s_result_text (reply, 1, "card_id");
    cv_envelope_destroy (&reply);
    reply = s_execute (executor, "req-replace", owner, replace, 2);
    s_expect (reply, 0, done, true, NULL);
    s_expect (reply, 1, done, true, NULL);
    s_expect_result (reply, 1, "card_id", new_card);
    cv_envelope_destroy (&reply);
    char *cards_after = s_query (pg, sql);
    assert (atoi (cards_after) == atoi (cards_before) + 1); /* one replacement, for two requests */
    free (sql);
    sql = cv_asprintf ("SELECT status FROM bank.cards WHERE id = '%s'", new_card);
    s_expect_query (pg, sql, "ordered");
    free (sql);
    sql = cv_asprintf ("SELECT status FROM bank.cards WHERE id = '%s'", lost);
    s_expect_query (pg, sql, "frozen");
    free (sql);
    json_decref (lost_card);
    free (new_card);
    free (cards_before);
    free (cards_after);
    free (owner);
    free (lost);

    /* another customer's card: refused, and the card is not theirs to touch */
    reply = s_execute (executor, "req-theirs", "cust-2", freeze, 1);
    s_expect (reply, 0, refused, false, "the customer has no such card");
    cv_envelope_destroy (&reply);

    /* a kind the agent file does not say how to perform fails alone: the request is answered,
       and the action after it is performed */
    json_t *transfer = json_pack ("{s:s}", "transfer_id", "tr-none");
    s_action_t unknown[] = {{"a1", "launch_rocket", NULL, false}, {"a2", "cancel_transfer", transfer, false}};
    reply = s_execute (executor, "req-unknown", "cust-1", unknown, 2);
    s_expect (reply, 0, failed, false, "says nothing of how to perform a launch_rocket");
    assert (reply->action_results->results[0]->attempts == 0 && reply->action_results->results[0]->result.len == 0);
    s_expect (reply, 1, refused, false, "the customer has no such transfer");
    cv_envelope_destroy (&reply);

    /* a deadline too near to perform the action and answer in time: not sent */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *hasty = s_request (arena, "req-hasty", "cust-1", freeze, 1);
    hasty->deadline_ms = (uint64_t) zclock_time () + EXECUTOR_REPLY_MARGIN_MS / 2;
    reply = harness_request (executor->harness, hasty, 10000);
    cv_assert_that (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS, "a hasty request: %s",
                    reply ? cv_envelope_body_name (reply->body_case) : "no answer");
    s_expect (reply, 0, failed, false, "left no time to perform it");
    assert (reply->action_results->results[0]->attempts == 0);
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);
    s_expect_query (pg, "SELECT count(*) FROM bank.applied_actions WHERE idempotency_key LIKE 'req-hasty:%'", "0");

    /* an action still waiting for a person's approval is never performed */
    s_action_t unapproved[] = {{"a1", "cancel_transfer", transfer, true}};
    reply = s_execute (executor, "req-unapproved", "cust-1", unapproved, 1);
    s_expect (reply, 0, failed, false, "waits for a person's approval");
    assert (reply->action_results->results[0]->attempts == 0);
    cv_envelope_destroy (&reply);
    s_expect_query (pg, "SELECT count(*) FROM bank.applied_actions WHERE idempotency_key LIKE 'req-unapproved:%'", "0");
    json_decref (transfer);
    json_decref (card);
}

/* Malformed and invalid traffic gets an Error naming the problem; the worker keeps serving. */
static void
s_bad_traffic (etest_t *executor)
{
    cv_envelope_t *reply = harness_request_raw (executor->harness, "\x0a\xff\xff garbage", 12, 10000);
    harness_expect_error (reply, CV_ERR_MALFORMED, NULL, "not a conveyor.v1.Envelope");
    cv_envelope_destroy (&reply);

    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *wrong = harness_envelope (arena, 10000);
    Conveyor__V1__IntentRequest *intent_request = cv_envelope_set_intent_request (wrong, arena);
    intent_request->user_id = "cust-1";
    intent_request->text = "I lost my card";
    reply = harness_request (executor->harness, wrong, 10000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "intent_request");
    cv_envelope_destroy (&reply);

    /* two actions under one key */
    s_action_t twice[] = {{"a1", "freeze_card", NULL, false}, {"a1", "freeze_card", NULL, false}};
    reply = harness_request (executor->harness, s_request (arena, "req-bad", "cust-1", twice, 2), 10000);
    harness_expect_error (reply, CV_ERR_INVALID, "execute_request.actions[1].id", "repeats");
    cv_envelope_destroy (&reply);
    /* nothing to do, a bad user id, a passed deadline */
    reply = harness_request (executor->harness, s_request (arena, "req-bad", "cust-1", twice, 0), 10000);
    harness_expect_error (reply, CV_ERR_INVALID, "execute_request.actions", "required");
    cv_envelope_destroy (&reply);
    reply = harness_request (executor->harness, s_request (arena, "req-bad", "cust-1'; --", twice, 1), 10000);
    harness_expect_error (reply, CV_ERR_INVALID, "execute_request.user_id", "character outside");
    cv_envelope_destroy (&reply);
    cv_envelope_t *late = s_request (arena, "req-bad", "cust-1", twice, 1);
    late->deadline_ms = (uint64_t) zclock_time () - 10;
    reply = harness_request (executor->harness, late, 10000);
    harness_expect_error (reply, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);
}

/* A small agent of its own: what the executor makes of statements that go wrong. */
static const char *s_wrong_agent =
    "actions:\n"
    "  broken: {query: 'SELECT no_such_function($1) AS outcome', params: [action.key]}\n"
    "  not_bank:\n"
    "    query: \"SELECT jsonb_build_object ('ok', 1, 'key', $1::text) AS outcome\"\n"
    "    params: [action.key]\n"
    "  no_row: {query: 'SELECT 1 AS outcome WHERE $1::text IS NULL', params: [action.key]}\n"
    "  slow:\n"
    "    query: SELECT pg_sleep(5)::text || $1 AS outcome\n"
    "    params: [action.key]\n"
    "    timeout_ms: 200\n"
    "    retries: {max_attempts: 2, base_ms: 0}\n";

static void
s_wrong_traffic (const char *url)
{
    const Conveyor__V1__ActionResult__Outcome failed = CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
    etest_t *executor = s_start (url, s_wrong_agent);
    s_action_t wrong[] = {{"a1", "broken", NULL, false},
                          {"a2", "not_bank", NULL, false},
                          {"a3", "no_row", NULL, false},
                          {"a4", "slow", NULL, false}};
    cv_envelope_t *reply = s_execute (executor, "req-wrong", "cust-1", wrong, 4);
    /* an SQL error is not retried: the same statement would fail again */
    s_expect (reply, 0, failed, false, "(42883)");
    assert (reply->action_results->results[0]->attempts == 1);
    s_expect (reply, 1, failed, false, "the action's outcome is not");
    s_expect (reply, 2, failed, false, "returned 0 rows, not one");
    /* too slow is retried, and may have been applied */
    s_expect (reply, 3, failed, false, "no answer within 200 ms");
    s_expect (reply, 3, failed, false, "the same key replays it");
    assert (reply->action_results->results[3]->attempts == 2);
    cv_envelope_destroy (&reply);
    s_stop (&executor);
}

int
main (void)
{
    char name[64];
    snprintf (name, sizeof name, "executor_test_%d", (int) getpid ()); /* its memcheck copy may run at once */
    char *owner = harness_pg_database_new (name);
    char *url = harness_pg_fixture_executor_url (owner);
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (owner, "executor-test", &err);
    cv_assert_that (pg, "%s", err.message);

    etest_t *executor = s_start (url, NULL);
    s_expect_probe (executor, true, "canned check passed");
    s_bank_traffic (executor, pg);
    s_bad_traffic (executor);
    s_expect_probe (executor, true, "canned check passed");
    s_stop (&executor);
    s_wrong_traffic (url);

    /* PostgreSQL out of reach: every action FAILED with the reason, after its retries; the
       request is still answered, and the probe says not ok */
    char *closed = zsys_sprintf ("postgresql://conveyor_executor@127.0.0.1:%d/conveyor", harness_closed_port ());
    executor = s_start (closed, NULL);
    json_t *card = json_pack ("{s:s}", "card_id", "card-1-1");
    s_action_t freeze[] = {{"a1", "freeze_card", card, false}};
    cv_envelope_t *reply = s_execute (executor, "req-nowhere", "cust-1", freeze, 1);
    s_expect (reply, 0, CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED, false, "postgresql connect failed");
    assert (reply->action_results->results[0]->attempts == 3); /* the demo's retries */
    cv_envelope_destroy (&reply);
    s_expect_probe (executor, false, "postgresql check failed");
    s_stop (&executor);
    json_decref (card);
    /* and nothing was applied under that key */
    s_expect_query (pg, "SELECT count(*) FROM bank.applied_actions WHERE idempotency_key = 'req-nowhere:a1'", "0");

    cv_pg_destroy (&pg);
    harness_pg_database_drop (name);
    zstr_free (&closed);
    free (url);
    free (owner);
    printf ("executor isolation: ok\n");
    return 0;
}
