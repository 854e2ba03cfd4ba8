/* Isolation test of the decision worker: the real policies on the generic worker, started in
   process with the demo agent file and driven by the harness over real sockets — good requests,
   malformed traffic, a probe on the control endpoint, and agent files that cannot start. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_launcher.h"
#include "cv_msgpack.h"
#include "decision_server.h"
#include "harness.h"

static cv_worker_config_t
s_config (cv_log_t *log, cv_launcher_args_t *args)
{
    cv_worker_config_t config = cv_launcher_worker_config (&decision_server_spec, args, log);
    config.capacity = 2;
    return config;
}

/* A request under construction: the intent and up to four tool results, all in arena. */
typedef struct {
    cv_arena_t *arena;
    cv_envelope_t *envelope;
    Conveyor__V1__DecideRequest *body;
} request_t;

static request_t
s_request (const char *intent_name, int64_t deadline_in_ms)
{
    request_t request;
    request.arena = cv_arena_new ();
    request.envelope = harness_envelope (request.arena, deadline_in_ms);
    request.body = cv_envelope_set_decide_request (request.envelope, request.arena);
    request.body->user_id = "cust-1";
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (request.arena);
    intent->name = (char *) intent_name;
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    request.body->intent = intent;
    Conveyor__V1__Evidence *evidence = cv_envelope_evidence_new (request.arena);
    evidence->results = cv_arena_alloc (request.arena, 4 * sizeof *evidence->results);
    request.body->evidence = evidence;
    return request;
}

/* Adds a tool result: status OK with rows (JSON text, packed as msgpack), or another status. */
static Conveyor__V1__ToolResult *
s_tool (request_t *request, const char *tool, Conveyor__V1__ToolResult__Status status, const char *rows)
{
    Conveyor__V1__Evidence *evidence = request->body->evidence;
    assert (evidence->n_results < 4);
    Conveyor__V1__ToolResult *result = cv_envelope_tool_result_new (request->arena);
    result->tool = (char *) tool;
    result->status = status;
    result->elapsed_us = 321;
    if (rows) {
        json_t *value = json_loads (rows, 0, NULL);
        assert (value);
        size_t size = 0;
        cv_error_t err;
        uint8_t *packed = cv_msgpack_pack (value, &size, &err);
        assert (packed);
        result->data.data = cv_arena_adopt (request->arena, packed, size);
        result->data.len = size;
        json_decref (value);
    } else if (status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
        result->error = "statement timeout";
    evidence->results[evidence->n_results++] = result;
    return result;
}

/* Sends request (consumed) and returns the reply, checking it answers the request. */
static cv_envelope_t *
s_send (harness_t *harness, request_t *request)
{
    cv_envelope_t *reply = harness_request (harness, request->envelope, 5000);
    assert (reply);
    assert (streq (reply->message_id, request->envelope->message_id));
    assert (streq (reply->request_id, request->envelope->request_id));
    cv_arena_destroy (&request->arena);
    return reply;
}

/* Sends request and asserts its Decision: rule, outcome, and the number of actions; returns the
   reply for more checks. */
static cv_envelope_t *
s_expect_decision (harness_t *harness, request_t *request, const char *rule, const char *outcome, size_t actions)
{
    cv_envelope_t *reply = s_send (harness, request);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_DECISION, "expected a Decision by %s, got %s: %s",
                    rule, cv_envelope_body_name (reply->body_case),
                    reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR ? reply->error->message : "");
    cv_error_t err;
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_DECISION), 0, &err) == 0);
    const Conveyor__V1__Decision *decision = reply->decision;
    cv_assert_that (
        !(!streq (decision->rule, rule) || !streq (decision->outcome, outcome) || decision->n_actions != actions),
        "expected %s/%s with %zu actions, got %s/%s with %zu", rule, outcome, actions, decision->rule,
        decision->outcome, decision->n_actions);
    return reply;
}

/* Asserts action index of reply has id, kind and params equal to the JSON text params. */
static void
s_expect_action (const cv_envelope_t *reply, size_t index, const char *id, const char *kind, const char *params)
{
    const Conveyor__V1__Action *action = reply->decision->actions[index];
    assert (streq (action->id, id));
    assert (streq (action->kind, kind));
    cv_error_t err;
    json_t *actual = cv_msgpack_unpack (action->params.data, action->params.len, "params", &err);
    json_t *expected = json_loads (params, 0, NULL);
    assert (actual && expected && json_equal (actual, expected));
    json_decref (actual);
    json_decref (expected);
}

/* Whether the demo's refund of a payment of amount (numeric text), made yesterday, waits for a
   person's approval: its one action's requires_approval. */
static bool
s_action_waits (harness_t *harness, const char *amount)
{
    char rows[256], created_at[32];
    time_t yesterday = time (NULL) - 86400;
    struct tm tm;
    strftime (created_at, sizeof created_at, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&yesterday, &tm));
    snprintf (rows, sizeof rows,
              "[{\"id\": \"tx-9\", \"merchant\": \"Shop\", \"amount\": \"%s\", \"currency\": \"EUR\","
              " \"created_at\": \"%s\"}]",
              amount, created_at);
    request_t request = s_request ("request_refund", 5000);
    s_tool (&request, "refundable_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, rows);
    cv_envelope_t *reply = s_expect_decision (harness, &request, "refund_recent_payment", "refund_eligible", 1);
    char params[128];
    snprintf (params, sizeof params, "{\"transaction_id\": \"tx-9\", \"amount\": \"%s\"}", amount);
    s_expect_action (reply, 0, "refund_recent_payment.1", "refund_transaction", params);
    bool waits = reply->decision->actions[0]->requires_approval;
    cv_envelope_destroy (&reply);
    return waits;
}

int
main (void)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new (DECISION_SERVER_SERVICE, "test-1", false);
    cv_settings_t *settings = cv_settings_new ("conveyor-decision", "isolation test", NULL, 0);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    harness_t *harness = harness_new ();
    cv_worker_config_t config = s_config (log, &args);
    zactor_t *worker = harness_start_worker (harness, &config);

    /* a lost card with an active card on record: freeze it */
    request_t request = s_request ("lost_or_stolen_card", 5000);
    s_tool (&request, "customer_profile", CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
            "[{\"name\": \"Ann Lee\", \"first_name\": \"Ann\", \"country\": \"IE\"}]");
    s_tool (&request, "active_cards", CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
            "[{\"id\": \"card-7\", \"last4\": \"4417\", \"status\": \"active\"}]");
    cv_envelope_t *reply = s_expect_decision (harness, &request, "lost_card_freeze", "freeze_card", 1);
    assert (streq (reply->decision->reason, "a card reported lost or stolen is frozen at once"));
    s_expect_action (reply, 0, "lost_card_freeze.1", "freeze_card", "{\"card_id\": \"card-7\", \"last4\": \"4417\"}");
    cv_envelope_destroy (&reply);

    /* charged twice: a duplicate found, none found, or a duplicate the template cannot use */
    request = s_request ("transaction_charged_twice", 5000);
    s_tool (&request, "duplicate_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
            "[{\"id\": \"tx-2\", \"merchant\": \"Cafe\", \"amount\": \"3.20\", \"currency\": \"EUR\", "
            "\"day\": \"02 Mar 2025\", \"original_id\": \"tx-1\"}]");
    reply = s_expect_decision (harness, &request, "charged_twice_refund", "refund_eligible", 1);
    s_expect_action (reply, 0, "charged_twice_refund.1", "refund_transaction",
                     "{\"transaction_id\": \"tx-2\", \"amount\": \"3.20\"}");
    cv_envelope_destroy (&reply);
    request = s_request ("transaction_charged_twice", 5000);
    s_tool (&request, "duplicate_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "[]");
    reply = s_expect_decision (harness, &request, "charged_twice_none_found", "answer", 0);
    cv_envelope_destroy (&reply);
    request = s_request ("transaction_charged_twice", 5000);
    s_tool (&request, "duplicate_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "[{\"id\": \"tx-2\"}]");
    reply = s_expect_decision (harness, &request, "handoff", "handoff", 0);
    cv_envelope_destroy (&reply);

    /* a failed lookup, an intent no policy names, an exchange rate found */
    request = s_request ("card_payment_not_recognised", 5000);
    s_tool (&request, "recent_card_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT, NULL);
    reply = s_expect_decision (harness, &request, "handoff", "handoff", 0);
    assert (streq (reply->decision->reason, "nothing more specific applies; a colleague takes over"));
    cv_envelope_destroy (&reply);
    request = s_request ("unknown", 5000);
    request.body->intent->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
    request.body->intent->confidence = 0.0f;
    reply = s_expect_decision (harness, &request, "handoff", "handoff", 0);
    cv_envelope_destroy (&reply);
    request = s_request ("exchange_rate", 5000);
    s_tool (&request, "exchange_rates", CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
            "[{\"base\": \"EUR\", \"quote\": \"USD\", \"rate\": \"1.0841\", \"as_of\": \"01 Mar 2025 09:00\"}]");
    reply = s_expect_decision (harness, &request, "exchange_rates", "answer", 0);
    cv_envelope_destroy (&reply);

    /* a frame that is not an Envelope */
    reply = harness_request_raw (harness, "\x0a\xff\xff\xff garbage", 12, 5000);
    harness_expect_error (reply, CV_ERR_MALFORMED, NULL, "not a conveyor.v1.Envelope");
    cv_envelope_destroy (&reply);

    /* a body the decision worker does not take: an IntentRequest */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *wrong = harness_envelope (arena, 5000);
    Conveyor__V1__IntentRequest *wrong_body = cv_envelope_set_intent_request (wrong, arena);
    wrong_body->user_id = "cust-1";
    wrong_body->text = "I lost my card";
    reply = harness_request (harness, wrong, 5000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "intent_request");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);

    /* over-long texts: a tool's error message, a user id */
    char *long_text = cv_malloc (CV_DETAIL_MAX_BYTES + 2);
    memset (long_text, 'e', CV_DETAIL_MAX_BYTES + 1);
    long_text[CV_DETAIL_MAX_BYTES + 1] = '\0';
    request = s_request ("lost_or_stolen_card", 5000);
    s_tool (&request, "active_cards", CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED, NULL)->error = long_text;
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_INVALID, "decide_request.evidence.results[0].error", "over the limit");
    cv_envelope_destroy (&reply);
    long_text[CV_NAME_MAX_BYTES + 1] = '\0';
    request = s_request ("lost_or_stolen_card", 5000);
    request.body->user_id = long_text;
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_INVALID, "decide_request.user_id", "over the limit");
    cv_envelope_destroy (&reply);
    free (long_text);

    /* evidence that is not msgpack, an intent missing, a passed deadline */
    request = s_request ("lost_or_stolen_card", 5000);
    Conveyor__V1__ToolResult *broken = s_tool (&request, "active_cards", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, NULL);
    broken->data.data = (uint8_t *) "\x91\xc1";
    broken->data.len = 2;
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_INVALID, "decide_request.evidence.results[0].data", NULL);
    cv_envelope_destroy (&reply);
    request = s_request ("lost_or_stolen_card", 5000);
    request.body->intent = NULL;
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_INVALID, "decide_request.intent", "required");
    cv_envelope_destroy (&reply);
    request = s_request ("lost_or_stolen_card", -10);
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed");
    cv_envelope_destroy (&reply);

    /* and the worker keeps serving: a retry of the same request gets the same action id. The
       payment is a day old by the worker's clock, so within the policy's 30 days. */
    char rows[256], created_at[32];
    time_t yesterday = time (NULL) - 86400;
    struct tm tm;
    strftime (created_at, sizeof created_at, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&yesterday, &tm));
    snprintf (rows, sizeof rows,
              "[{\"id\": \"tx-9\", \"merchant\": \"Shop\", \"amount\": \"25.00\", \"currency\": \"GBP\","
              " \"created_at\": \"%s\"}]",
              created_at);
    for (int attempt = 0; attempt < 2; attempt++) {
        request = s_request ("request_refund", 5000);
        s_tool (&request, "refundable_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, rows);
        reply = s_expect_decision (harness, &request, "refund_recent_payment", "refund_eligible", 1);
        s_expect_action (reply, 0, "refund_recent_payment.1", "refund_transaction",
                         "{\"transaction_id\": \"tx-9\", \"amount\": \"25.00\"}");
        /* its log: the policies tried before it and why they did not apply, and the values read */
        json_t *decision_log = cv_msgpack_unpack (reply->decision->log.data, reply->decision->log.len, "log", &err);
        assert (decision_log);
        json_object_del (decision_log, "now"); /* the worker's clock */
        json_t *expected =
            json_pack ("{s:s, s:[{s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b}],"
                       " s:{s:s, s:s}}",
                       "rule", "refund_recent_payment", "checked", "policy", "lost_card_freeze", "matched", 0, "failed",
                       "intent lost_or_stolen_card: the request's is request_refund", "policy", "charged_twice_refund",
                       "matched", 0, "failed", "intent transaction_charged_twice: the request's is request_refund",
                       "policy", "charged_twice_none_found", "matched", 0, "failed",
                       "intent transaction_charged_twice: the request's is request_refund", "policy",
                       "refund_recent_payment", "matched", 1, "values", "evidence.refundable_payments.0.amount",
                       "25.00", "evidence.refundable_payments.0.created_at", created_at);
        char *got = json_dumps (decision_log, JSON_COMPACT | JSON_SORT_KEYS);
        cv_assert_that (json_equal (decision_log, expected), "decision log %s", got);
        free (got);
        json_decref (expected);
        json_decref (decision_log);
        cv_envelope_destroy (&reply);
    }
    /* the agent file's approvals: a refund over 100 waits for a person, one of 100 or less does not */
    assert (!s_action_waits (harness, "100.00"));
    assert (!s_action_waits (harness, "23.47"));
    assert (s_action_waits (harness, "100.01"));
    assert (s_action_waits (harness, "480.00"));

    /* a payment of 45 days ago is not refunded at once: a colleague decides, and the log says why */
    time_t weeks_ago = time (NULL) - 45 * 86400;
    strftime (created_at, sizeof created_at, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&weeks_ago, &tm));
    snprintf (rows, sizeof rows, "[{\"id\": \"tx-9\", \"amount\": \"25.00\", \"created_at\": \"%s\"}]", created_at);
    request = s_request ("request_refund", 5000);
    s_tool (&request, "refundable_payments", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, rows);
    reply = s_expect_decision (harness, &request, "refund_for_review", "handoff", 0);
    json_t *decision_log = cv_msgpack_unpack (reply->decision->log.data, reply->decision->log.len, "log", &err);
    assert (decision_log);
    json_t *refund = json_array_get (json_object_get (decision_log, "checked"), 3);
    char failed[160];
    snprintf (failed, sizeof failed, "checks[1]: evidence.refundable_payments.0.created_at %s within_days 30",
              created_at);
    assert (streq (json_string_value (json_object_get (refund, "policy")), "refund_recent_payment"));
    cv_assert_that (streq (json_string_value (json_object_get (refund, "failed")), failed), "failed: %s",
                    json_string_value (json_object_get (refund, "failed")));
    assert (streq (json_string_value (json_object_get (decision_log, "rule")), "refund_for_review"));
    json_decref (decision_log);
    cv_envelope_destroy (&reply);

    /* a probe on the control endpoint runs the canned check */
    char *control = harness_control_endpoint (worker);
    reply = harness_probe (control, 5000);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    cv_assert_that (reply->probe_result->ok, "probe failed: %s", reply->probe_result->detail);
    assert (streq (reply->probe_result->service, DECISION_SERVER_SERVICE));
    cv_envelope_destroy (&reply);
    zstr_free (&control);
    request = s_request ("card_arrival", 5000);
    s_tool (&request, "cards_in_delivery", CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "[{\"id\": \"card-2\"}]");
    reply = s_expect_decision (harness, &request, "card_on_its_way", "answer", 0);
    cv_envelope_destroy (&reply);

    zactor_destroy (&worker);
    harness_destroy (&harness);
    cv_config_destroy (&agent);

    /* a worker whose catch-all cannot decide starts, but its probe says why it is unwell */
    agent = cv_config_parse ("odd.yaml",
                             "policies:\n"
                             "  - name: rest\n"
                             "    outcome: handoff\n"
                             "    actions: [{kind: ticket, params: {card: '{{evidence.cards.0.id}}'}}]\n",
                             &err);
    assert (agent);
    args.agent = agent;
    harness = harness_new ();
    config = s_config (log, &args);
    worker = harness_start_worker (harness, &config);
    zstr_send (worker, "CONTROL");
    control = zstr_recv (worker);
    reply = harness_probe (control, 5000);
    assert (reply && !reply->probe_result->ok);
    assert (strstr (reply->probe_result->detail, "catch-all rest"));
    cv_envelope_destroy (&reply);
    zstr_free (&control);
    /* and a request it cannot decide is answered with an Error, not dropped */
    request = s_request ("lost_or_stolen_card", 5000);
    reply = s_send (harness, &request);
    harness_expect_error (reply, CV_ERR_INTERNAL, NULL, "no policy applies");
    cv_envelope_destroy (&reply);
    zactor_destroy (&worker);
    harness_destroy (&harness);
    cv_config_destroy (&agent);

    /* an agent file without a catch-all: the worker does not start, and says where */
    agent = cv_config_parse ("broken.yaml",
                             "policies:\n"
                             "  - name: freeze\n"
                             "    intent: lost_or_stolen_card\n"
                             "    outcome: freeze_card\n",
                             &err);
    assert (agent);
    args.agent = agent;
    config = s_config (log, &args);
    harness_expect_no_start (&config, "broken.yaml:2: policies: no catch-all");
    cv_config_destroy (&agent);
    /* ... nor one whose approvals section is wrong */
    agent = cv_config_parse ("broken.yaml",
                             "approvals:\n"
                             "  amount_above: none\n"
                             "policies:\n"
                             "  - name: rest\n"
                             "    outcome: handoff\n",
                             &err);
    assert (agent);
    args.agent = agent;
    config = s_config (log, &args);
    harness_expect_no_start (&config, "broken.yaml:2: approvals.amount_above: must be a positive number");
    cv_config_destroy (&agent);

    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    printf ("decision isolation: ok\n");
    return 0;
}
