/* The decision worker's service glue: DecideRequest in, Decision out, through decision_policy. */
#include "decision_server.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_crash.h"
#include "cv_launcher.h"
#include "cv_msgpack.h"
#include "decision_policy.h"

/* One handler thread's logic: the worker's policies (read only) and the probe's intent. */
typedef struct {
    const decision_policy_t *policies;
    cv_log_t *log;            /* borrowed */
    const char *check_intent; /* what the probe decides for */
} decision_server_logic_t;

void *
decision_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err)
{
    cv_launcher_args_t *args = shared_args;
    assert (args && args->agent);
    decision_policy_t *policies = decision_policy_new (args->agent, log, err);
    if (policies && log)
        cv_log_debug (log, "policies loaded from %s: %zu, catch-all %s", cv_config_name (args->agent),
                      decision_policy_count (policies), decision_policy_catch_all (policies));
    return policies;
}

void
decision_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    decision_policy_t *policies = *shared_p;
    decision_policy_destroy (&policies);
    *shared_p = NULL;
}

void *
decision_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err)
{
    assert (shared);
    decision_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->policies = shared;
    self->log = log;
    self->check_intent = DECISION_SERVER_CHECK_INTENT;
    return self;
}

void
decision_server_logic_destroy (void **logic_p)
{
    assert (logic_p);
    decision_server_logic_t *self = *logic_p;
    if (!self)
        return;
    free (self);
    *logic_p = NULL;
}

/* Fills decision from result, in arena; -1 with err when params cannot be packed. */
static int
s_build (const decision_result_t *result, Conveyor__V1__Decision *decision, cv_arena_t *arena, cv_error_t *err)
{
    decision->outcome = cv_arena_strdup (arena, result->outcome);
    decision->rule = cv_arena_strdup (arena, result->rule);
    decision->reason = cv_arena_strdup (arena, result->reason);
    if (result->log) {
        size_t size = 0;
        uint8_t *packed = cv_msgpack_pack (result->log, &size, err);
        if (!packed) {
            cv_error_prefix (err, "decision log");
            return -1;
        }
        decision->log.data = cv_arena_adopt (arena, packed, size);
        decision->log.len = size;
    }
    if (result->action_count == 0)
        return 0;
    decision->actions = cv_arena_alloc (arena, result->action_count * sizeof *decision->actions);
    for (size_t i = 0; i < result->action_count; i++) {
        size_t size = 0;
        uint8_t *packed = cv_msgpack_pack (result->actions[i].params, &size, err);
        if (!packed) {
            cv_error_prefix (err, "action %s params", result->actions[i].id);
            return -1;
        }
        Conveyor__V1__Action *action = cv_envelope_action_new (arena);
        action->id = cv_arena_strdup (arena, result->actions[i].id);
        action->kind = cv_arena_strdup (arena, result->actions[i].kind);
        action->params.data = cv_arena_adopt (arena, packed, size);
        action->params.len = size;
        action->requires_approval = result->actions[i].requires_approval;
        decision->actions[decision->n_actions++] = action;
    }
    return 0;
}

/* Decides for one request into decision (its strings in arena); 0, or -1 with err. */
static int
s_decide (decision_server_logic_t *self, const char *user_id, const Conveyor__V1__Intent *intent,
          const Conveyor__V1__Evidence *evidence, Conveyor__V1__Decision *decision, cv_arena_t *arena, cv_error_t *err)
{
    json_t *context = cv_context_new (user_id, NULL, intent, evidence, NULL, err);
    if (!context)
        return -1;
    decision_result_t result;
    int rc = decision_policy_decide (self->policies, context, time (NULL), &result, err);
    if (rc == 0)
        rc = s_build (&result, decision, arena, err);
    decision_result_reset (&result);
    json_decref (context);
    return rc;
}

int
decision_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                        cv_error_t *err)
{
    decision_server_logic_t *self = logic;
    assert (self && request && arena && reply);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST);
    const Conveyor__V1__DecideRequest *body = request->decide_request;
    Conveyor__V1__Decision *decision = cv_envelope_set_decision (reply, arena);
    int rc = s_decide (self, body->user_id, body->intent, body->evidence, decision, arena, err);
    CV_CRASH_POINT ("decision.before_reply"); /* decided, not yet answered */
    return rc;
}

int
decision_server_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    decision_server_logic_t *self = logic;
    assert (self && arena);
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = (char *) self->check_intent;
    intent->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
    intent->low_confidence = true;
    /* What the orchestrator will check when it receives a Decision. */
    cv_envelope_t *envelope = cv_envelope_new (arena, "", "", 0, 1);
    Conveyor__V1__Decision *decision = cv_envelope_set_decision (envelope, arena);
    if (s_decide (self, "probe", intent, cv_envelope_evidence_new (arena), decision, arena, err)) {
        cv_error_prefix (err, "canned decision for intent %s", self->check_intent);
        return -1;
    }
    const char *catch_all = decision_policy_catch_all (self->policies);
    if (strcmp (decision->rule, catch_all) != 0)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL,
                             "canned decision for intent %s reached %s, not the catch-all %s", self->check_intent,
                             decision->rule, catch_all);
    if (cv_envelope_validate (envelope, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_DECISION), (uint64_t) zclock_time (),
                              err)) {
        cv_error_prefix (err, "canned decision gives a Decision the orchestrator refuses");
        return -1;
    }
    return 0;
}

/* What conveyor-decision's main.c runs and its tests start. */
const cv_launcher_spec_t decision_server_spec = {
    .service = DECISION_SERVER_SERVICE,
    .summary = "conveyor's decision worker: chooses an outcome and actions from the intent and evidence",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST,
    .shared_new = decision_server_shared_new,
    .shared_destroy = decision_server_shared_destroy,
    .logic_new = decision_server_logic_new,
    .logic_destroy = decision_server_logic_destroy,
    .handle = decision_server_handle,
    .check = decision_server_check,
    .capacity_per_cpu = 1,
    .capacity_why = "deciding is CPU work, with no I/O",
    .default_control_endpoint = DECISION_SERVER_CONTROL_ENDPOINT,
};

/*  --------------------------------------------------------------------------
    Self-test */

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

void
decision_server_test (bool verbose)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new (DECISION_SERVER_SERVICE, "selftest", verbose);
    cv_settings_t *settings = cv_settings_new ("conveyor-decision", "selftest", NULL, 0);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    void *shared = decision_server_shared_new (&args, log, &err);
    assert (shared);
    cv_config_destroy (&agent); /* the policies keep nothing of the agent file */
    void *logic = decision_server_logic_new (shared, log, &err);
    assert (logic && ((decision_server_logic_t *) logic)->policies == shared);

    /* a lost card with an active card on record: freeze it */
    json_t *rows = json_pack ("[{s:s, s:s, s:s}]", "id", "card-7", "last4", "4417", "status", "active");
    size_t rows_size;
    uint8_t *packed_rows = cv_msgpack_pack (rows, &rows_size, &err);
    assert (packed_rows);
    /* the request's parts live to the end; each envelope lives in arena */
    cv_arena_t *parts = cv_arena_new ();
    Conveyor__V1__ToolResult *cards = cv_envelope_tool_result_new (parts);
    cards->tool = "active_cards";
    cards->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    cards->data.data = packed_rows;
    cards->data.len = rows_size;
    Conveyor__V1__ToolResult *profile = cv_envelope_tool_result_new (parts);
    profile->tool = "customer_profile";
    profile->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
    profile->error = "connection refused";
    Conveyor__V1__ToolResult *results[] = {profile, cards};
    Conveyor__V1__Evidence *evidence = cv_envelope_evidence_new (parts);
    evidence->results = results;
    evidence->n_results = 2;
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (parts);
    intent->name = "lost_or_stolen_card";
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = cv_envelope_new (arena, "req-1", "", (uint64_t) zclock_time () + 5000, 1);
    Conveyor__V1__DecideRequest *body = cv_envelope_set_decide_request (request, arena);
    body->user_id = "cust-1";
    body->intent = intent;
    body->evidence = evidence;
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    assert (decision_server_handle (logic, request, arena, reply, &err) == 0);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_DECISION);
    const Conveyor__V1__Decision *decision = reply->decision;
    assert (streq (decision->outcome, "freeze_card") && streq (decision->rule, "lost_card_freeze"));
    assert (decision->n_actions == 1);
    assert (streq (decision->actions[0]->id, "lost_card_freeze.1"));
    assert (streq (decision->actions[0]->kind, "freeze_card"));
    assert (!decision->actions[0]->requires_approval);
    json_t *params =
        cv_msgpack_unpack (decision->actions[0]->params.data, decision->actions[0]->params.len, "params", &err);
    json_t *expected = json_pack ("{s:s, s:s}", "card_id", "card-7", "last4", "4417");
    assert (json_equal (params, expected));
    json_decref (params);
    json_decref (expected);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_DECISION), 0, &err) == 0);
    /* the decision log travels with it, as msgpack */
    json_t *decision_log = cv_msgpack_unpack (decision->log.data, decision->log.len, "log", &err);
    assert (decision_log && streq (json_string_value (json_object_get (decision_log, "rule")), "lost_card_freeze"));
    expected = json_pack ("[{s:s, s:b}]", "policy", "lost_card_freeze", "matched", 1);
    assert (json_equal (json_object_get (decision_log, "checked"), expected));
    json_decref (expected);
    json_decref (decision_log);

    /* the same request again (a retry) gets the same action id */
    reply = cv_envelope_reply_new (arena, request);
    assert (decision_server_handle (logic, request, arena, reply, &err) == 0);
    assert (streq (reply->decision->actions[0]->id, "lost_card_freeze.1"));

    /* no evidence at all: the catch-all */
    evidence->n_results = 0;
    reply = cv_envelope_reply_new (arena, request);
    assert (decision_server_handle (logic, request, arena, reply, &err) == 0);
    assert (streq (reply->decision->rule, "handoff") && reply->decision->n_actions == 0);

    /* the probe's check passes, and fails with the reason when the check cannot reach the catch-all */
    assert (decision_server_check (logic, arena, &err) == 0);
    cv_arena_destroy (&arena);
    decision_server_logic_destroy (&logic);
    assert (!logic);
    decision_server_logic_destroy (&logic);
    decision_server_shared_destroy (&shared);
    assert (!shared);
    decision_server_shared_destroy (&shared);

    agent = cv_config_parse ("odd.yaml",
                             "policies:\n"
                             "  - name: unknown_answered\n"
                             "    intent: unknown\n"
                             "    outcome: answer\n"
                             "  - name: rest\n"
                             "    outcome: handoff\n"
                             "    actions: [{kind: ticket, params: {card: '{{evidence.cards.0.id}}'}}]\n",
                             &err);
    assert (agent);
    args.agent = agent;
    shared = decision_server_shared_new (&args, log, &err);
    assert (shared);
    logic = decision_server_logic_new (shared, log, &err);
    assert (logic);
    arena = cv_arena_new ();
    assert (decision_server_check (logic, arena, &err) == -1);
    assert (strstr (err.message, "canned decision") && strstr (err.message, "catch-all rest"));
    /* and a request no policy can decide is an INTERNAL error, not a crash */
    request = cv_envelope_new (arena, "req-2", "", (uint64_t) zclock_time () + 5000, 1);
    intent->name = "card_arrival";
    body = cv_envelope_set_decide_request (request, arena);
    body->user_id = "cust-1";
    body->intent = intent;
    body->evidence = evidence;
    reply = cv_envelope_reply_new (arena, request);
    assert (decision_server_handle (logic, request, arena, reply, &err) == -1);
    assert (err.code == CV_ERR_INTERNAL);
    /* the canned request is a low-confidence guess: a policy for its intent does not take it */
    ((decision_server_logic_t *) logic)->check_intent = "unknown";
    assert (decision_server_check (logic, arena, &err) == -1);
    assert (strstr (err.message, "canned decision") && strstr (err.message, "catch-all rest"));
    cv_arena_destroy (&arena);
    decision_server_logic_destroy (&logic);
    decision_server_shared_destroy (&shared);
    cv_config_destroy (&agent);

    /* a bad policies section stops the worker from starting, naming the line */
    agent = cv_config_parse ("bad.yaml", "policies:\n  - name: a\n    intent: x\n    outcome: answer\n", &err);
    assert (agent);
    args.agent = agent;
    assert (!decision_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "bad.yaml:2: policies: no catch-all"));
    cv_config_destroy (&agent);

    cv_arena_destroy (&parts);
    free (packed_rows);
    json_decref (rows);
    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    if (verbose)
        printf ("decision_server: ok\n");
}
