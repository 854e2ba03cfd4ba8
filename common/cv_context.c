/* The JSON context that rules and templates read: one request's text, intent, evidence and decision. */
#include "cv_context.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_msgpack.h"
#include "cv_template.h"

const char *
cv_context_method_name (Conveyor__V1__Intent__Method method)
{
    switch (method) {
    case CONVEYOR__V1__INTENT__METHOD__RULE:
        return "rule";
    case CONVEYOR__V1__INTENT__METHOD__MODEL:
        return "model";
    case CONVEYOR__V1__INTENT__METHOD__LLM:
        return "llm";
    case CONVEYOR__V1__INTENT__METHOD__FALLBACK:
        return "fallback";
    default:
        return "unspecified";
    }
}

const char *
cv_context_tool_status_name (Conveyor__V1__ToolResult__Status status)
{
    switch (status) {
    case CONVEYOR__V1__TOOL_RESULT__STATUS__OK:
        return "ok";
    case CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED:
        return "failed";
    case CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT:
        return "timed_out";
    case CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET:
        return "over_budget";
    default:
        return "unspecified";
    }
}

const char *
cv_context_rung_name (Conveyor__V1__ReplyStep__Rung rung)
{
    switch (rung) {
    case CONVEYOR__V1__REPLY_STEP__RUNG__LLM:
        return "llm";
    case CONVEYOR__V1__REPLY_STEP__RUNG__LLM_FALLBACK:
        return "llm_fallback";
    case CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE:
        return "template";
    case CONVEYOR__V1__REPLY_STEP__RUNG__STATIC:
        return "static";
    case CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF:
        return "handoff";
    default:
        return NULL;
    }
}

const char *
cv_context_stop_name (Conveyor__V1__RespondRequest__Stop stopped)
{
    switch (stopped) {
    case CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET:
        return "over_budget";
    case CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS:
        return "out_of_attempts";
    case CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED:
        return "stage_failed";
    default:
        return NULL;
    }
}

const char *
cv_context_action_outcome_name (Conveyor__V1__ActionResult__Outcome outcome)
{
    switch (outcome) {
    case CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE:
        return "done";
    case CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED:
        return "refused";
    case CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED:
        return "failed";
    case CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL:
        return "pending_approval";
    case CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED:
        return "rejected";
    default:
        return "unknown";
    }
}

static json_t *
s_intent (const Conveyor__V1__Intent *intent, cv_error_t *err)
{
    json_t *slots = cv_msgpack_unpack (intent->slots.data, intent->slots.len, "intent.slots", err);
    if (!slots)
        return NULL;
    return json_pack ("{s:s, s:f, s:s, s:b, s:o}", "name", intent->name, "confidence", (double) intent->confidence,
                      "method", cv_context_method_name (intent->method), "low_confidence", intent->low_confidence,
                      "slots", slots);
}

static int
s_evidence (json_t *context, const Conveyor__V1__Evidence *evidence, cv_error_t *err)
{
    json_t *data = json_object (), *tools = json_object ();
    json_object_set_new (context, "evidence", data);
    json_object_set_new (context, "tools", tools);
    for (size_t i = 0; i < evidence->n_results; i++) {
        const Conveyor__V1__ToolResult *result = evidence->results[i];
        json_object_set_new (tools, result->tool,
                             json_pack ("{s:s, s:s, s:i}", "status", cv_context_tool_status_name (result->status),
                                        "error", result->error, "elapsed_us", (json_int_t) result->elapsed_us));
        if (result->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
            continue;
        json_t *value = cv_msgpack_unpack (result->data.data, result->data.len, result->tool, err);
        if (!value)
            return -1;
        json_object_set_new (data, result->tool, value);
    }
    return 0;
}

static json_t *
s_decision (const Conveyor__V1__Decision *decision, cv_error_t *err)
{
    json_t *actions = json_array ();
    for (size_t i = 0; i < decision->n_actions; i++) {
        const Conveyor__V1__Action *action = decision->actions[i];
        json_t *params = cv_msgpack_unpack (action->params.data, action->params.len, "decision.actions.params", err);
        if (!params) {
            json_decref (actions);
            return NULL;
        }
        json_array_append_new (actions, json_pack ("{s:s, s:s, s:o, s:b}", "id", action->id, "kind", action->kind,
                                                   "params", params, "requires_approval", action->requires_approval));
    }
    /* An unset log (a decision from before logs) decodes to {}. */
    json_t *log = cv_msgpack_unpack (decision->log.data, decision->log.len, "decision.log", err);
    if (!log) {
        json_decref (actions);
        return NULL;
    }
    return json_pack ("{s:s, s:s, s:s, s:o, s:o}", "outcome", decision->outcome, "rule", decision->rule, "reason",
                      decision->reason, "actions", actions, "log", log);
}

json_t *
cv_context_new (const char *user_id, const char *text, const Conveyor__V1__Intent *intent,
                const Conveyor__V1__Evidence *evidence, const Conveyor__V1__Decision *decision, cv_error_t *err)
{
    json_t *context = json_pack ("{s:s, s:s}", "user_id", user_id ? user_id : "", "text", text ? text : "");
    if (intent) {
        json_t *section = s_intent (intent, err);
        if (!section)
            goto failed;
        json_object_set_new (context, "intent", section);
    }
    if (evidence && s_evidence (context, evidence, err))
        goto failed;
    if (decision) {
        json_t *section = s_decision (decision, err);
        if (!section)
            goto failed;
        json_object_set_new (context, "decision", section);
    }
    return context;
failed:
    json_decref (context);
    return NULL;
}

/* Statuses from worst to best: a decision's actions_status is the first any of its actions has.
   Not performed is worse than refused: a refusal is the bank's final word, a customer can be
   told it; nothing is known of an action not performed. */
static const char *const s_action_statuses[] = {"failed",   "not_performed", "pending_approval",
                                                "rejected", "refused",       "done"};

static size_t
s_action_status_rank (const char *status)
{
    for (size_t i = 0; i < sizeof s_action_statuses / sizeof s_action_statuses[0]; i++)
        if (strcmp (s_action_statuses[i], status) == 0)
            return i;
    return 0; /* an outcome with no name counts as failed */
}

int
cv_context_add_action_results (json_t *context, Conveyor__V1__ActionResult *const *results, size_t count,
                               cv_error_t *err)
{
    assert (context && (results || count == 0));
    json_t *decision = json_object_get (context, "decision");
    if (!decision)
        return 0;
    json_t *actions = json_object_get (decision, "actions");
    size_t worst = sizeof s_action_statuses / sizeof s_action_statuses[0] - 1;
    size_t index;
    json_t *action;
    json_array_foreach (actions, index, action) {
        const char *id = json_string_value (json_object_get (action, "id"));
        const Conveyor__V1__ActionResult *found = NULL;
        for (size_t i = 0; i < count && !found; i++)
            if (id && strcmp (results[i]->action_id, id) == 0)
                found = results[i];
        json_t *result = found && found->result.len
                             ? cv_msgpack_unpack (found->result.data, found->result.len, "action_results.result", err)
                             : json_object ();
        if (!result)
            return -1;
        const char *status = found ? cv_context_action_outcome_name (found->outcome) : "not_performed";
        json_object_set_new (action, "status", json_string (status));
        json_object_set_new (action, "reason", json_string (found ? found->reason : ""));
        json_object_set_new (action, "replayed", json_boolean (found && found->replayed));
        json_object_set_new (action, "result", result);
        size_t rank = s_action_status_rank (status);
        if (rank < worst)
            worst = rank;
    }
    json_object_set_new (decision, "actions_status",
                         json_string (json_array_size (actions) ? s_action_statuses[worst] : "none"));
    return 0;
}

const char *
cv_context_acted_intent (const json_t *context)
{
    assert (context);
    const json_t *intent = json_object_get (context, "intent");
    if (json_is_true (json_object_get (intent, "low_confidence")))
        return NULL;
    return json_string_value (json_object_get (intent, "name"));
}

void
cv_context_test (bool verbose)
{
    /* the names of enums as documents show them; none for a value out of range */
    assert (strcmp (cv_context_stop_name (CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED), "stage_failed") == 0);
    assert (!cv_context_stop_name (CONVEYOR__V1__RESPOND_REQUEST__STOP__STOP_UNSPECIFIED));
    assert (strcmp (cv_context_rung_name (CONVEYOR__V1__REPLY_STEP__RUNG__LLM_FALLBACK), "llm_fallback") == 0);
    assert (strcmp (cv_context_rung_name (CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF), "handoff") == 0);
    assert (!cv_context_rung_name (CONVEYOR__V1__REPLY_STEP__RUNG__RUNG_UNSPECIFIED)
            && !cv_context_rung_name ((Conveyor__V1__ReplyStep__Rung) 6));
    cv_error_t err;
    json_t *slots = json_pack ("{s:s}", "last4", "4417");
    size_t slots_size;
    uint8_t *packed_slots = cv_msgpack_pack (slots, &slots_size, &err);
    cv_arena_t *arena = cv_arena_new ();
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = "lost_or_stolen_card";
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    intent->slots.data = packed_slots;
    intent->slots.len = slots_size;

    json_t *rows = json_pack ("[{s:s, s:s}]", "id", "card-1", "status", "active");
    size_t rows_size;
    uint8_t *packed_rows = cv_msgpack_pack (rows, &rows_size, &err);
    Conveyor__V1__ToolResult *ok = cv_envelope_tool_result_new (arena), *failed = cv_envelope_tool_result_new (arena);
    ok->tool = "customer_cards";
    ok->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    ok->data.data = packed_rows;
    ok->data.len = rows_size;
    failed->tool = "transfers";
    failed->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
    failed->error = "statement timeout";
    Conveyor__V1__ToolResult *results[] = {ok, failed};
    Conveyor__V1__Evidence *evidence = cv_envelope_evidence_new (arena);
    evidence->results = results;
    evidence->n_results = 2;

    json_t *context = cv_context_new ("cust-1", "I lost my card", intent, evidence, NULL, &err);
    assert (context);
    assert (strcmp (json_string_value (
                        json_object_get (json_object_get (json_object_get (context, "intent"), "slots"), "last4")),
                    "4417")
            == 0);
    assert (strcmp (json_string_value (json_object_get (json_object_get (context, "intent"), "method")), "rule") == 0);
    json_t *evidence_json = json_object_get (context, "evidence");
    assert (json_equal (json_object_get (evidence_json, "customer_cards"), rows));
    assert (!json_object_get (evidence_json, "transfers"));
    json_t *status = json_object_get (json_object_get (json_object_get (context, "tools"), "transfers"), "status");
    assert (strcmp (json_string_value (status), "timed_out") == 0);
    assert (!json_object_get (context, "decision"));
    assert (strcmp (cv_context_acted_intent (context), "lost_or_stolen_card") == 0);
    json_decref (context);

    /* a low-confidence guess, or no intent, is not acted on */
    intent->low_confidence = true;
    context = cv_context_new ("cust-1", "I lost my card", intent, NULL, NULL, &err);
    assert (context && !cv_context_acted_intent (context));
    json_decref (context);
    intent->low_confidence = false;
    context = cv_context_new ("cust-1", "I lost my card", NULL, NULL, NULL, &err);
    assert (context && !cv_context_acted_intent (context));
    json_decref (context);

    /* the executor's results, by action id: the worst status sums the decision up */
    Conveyor__V1__Action *actions[] = {cv_envelope_action_new (arena), cv_envelope_action_new (arena)};
    actions[0]->id = "lost.1";
    actions[0]->kind = "freeze_card";
    actions[1]->id = "lost.2";
    actions[1]->kind = "order_replacement_card";
    Conveyor__V1__Decision *decision = cv_envelope_decision_new (arena);
    decision->outcome = "freeze_card";
    decision->rule = "lost";
    decision->actions = actions;
    decision->n_actions = 2;
    /* the decision log decodes into the decision's section; unset, it is {} */
    json_t *log = json_pack ("{s:s, s:[{s:s, s:b}], s:{s:s}}", "rule", "lost", "checked", "policy", "lost", "matched",
                             1, "values", "evidence.customer_cards.0.status", "active");
    size_t log_size;
    uint8_t *packed_log = cv_msgpack_pack (log, &log_size, &err);
    decision->log.data = packed_log;
    decision->log.len = log_size;
    context = cv_context_new ("cust-1", "I lost my card", NULL, NULL, decision, &err);
    assert (context && json_equal (cv_template_lookup (context, "decision.log"), log));
    assert (strcmp (json_string_value (cv_template_lookup (context, "decision.log.checked.0.policy")), "lost") == 0);
    json_decref (context);
    decision->log.len = 1; /* cut short: does not decode */
    assert (!cv_context_new ("cust-1", "I lost my card", NULL, NULL, decision, &err));
    decision->log.len = 0;
    context = cv_context_new ("cust-1", "I lost my card", NULL, NULL, decision, &err);
    assert (context && json_is_object (cv_template_lookup (context, "decision.log"))
            && json_object_size (cv_template_lookup (context, "decision.log")) == 0);
    json_decref (context);
    decision->log.data = NULL;
    free (packed_log);
    json_decref (log);
    json_t *frozen = json_pack ("{s:s, s:s}", "card_id", "card-1", "last4", "4417");
    size_t frozen_size;
    uint8_t *packed_frozen = cv_msgpack_pack (frozen, &frozen_size, &err);
    Conveyor__V1__ActionResult *done = cv_envelope_action_result_new (arena),
                               *refused = cv_envelope_action_result_new (arena);
    done->action_id = "lost.1";
    done->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
    done->replayed = true;
    done->result.data = packed_frozen;
    done->result.len = frozen_size;
    refused->action_id = "lost.2";
    refused->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED;
    refused->reason = "a new card for this account is on its way already";
    Conveyor__V1__ActionResult *action_results[] = {refused, done};
    static const struct {
        size_t count;
        const char *first, *second, *summary;
    } sums[] = {{2, "done", "refused", "refused"},
                {1, "not_performed", "refused", "not_performed"},
                {0, "not_performed", "not_performed", "not_performed"}};
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++) {
        context = cv_context_new ("cust-1", "I lost my card", NULL, NULL, decision, &err);
        assert (context);
        assert (cv_context_add_action_results (context, action_results, sums[i].count, &err) == 0);
        json_t *section = json_object_get (context, "decision"), *list = json_object_get (section, "actions");
        assert (strcmp (json_string_value (json_object_get (section, "actions_status")), sums[i].summary) == 0);
        assert (strcmp (json_string_value (json_object_get (json_array_get (list, 0), "status")), sums[i].first) == 0);
        assert (strcmp (json_string_value (json_object_get (json_array_get (list, 1), "status")), sums[i].second) == 0);
        if (i == 0) {
            assert (json_equal (json_object_get (json_array_get (list, 0), "result"), frozen));
            assert (json_is_true (json_object_get (json_array_get (list, 0), "replayed")));
            assert (strcmp (json_string_value (json_object_get (json_array_get (list, 1), "reason")), refused->reason)
                    == 0);
            assert (json_object_size (json_object_get (json_array_get (list, 1), "result")) == 0);
        }
        json_decref (context);
    }
    /* failed is the worst; every action done is done; no actions is none */
    refused->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
    context = cv_context_new ("cust-1", "x", NULL, NULL, decision, &err);
    assert (cv_context_add_action_results (context, action_results, 2, &err) == 0);
    assert (strcmp (json_string_value (cv_template_lookup (context, "decision.actions_status")), "failed") == 0);
    json_decref (context);
    refused->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
    context = cv_context_new ("cust-1", "x", NULL, NULL, decision, &err);
    assert (cv_context_add_action_results (context, action_results, 2, &err) == 0);
    assert (strcmp (json_string_value (cv_template_lookup (context, "decision.actions_status")), "done") == 0);
    json_decref (context);
    decision->n_actions = 0;
    context = cv_context_new ("cust-1", "x", NULL, NULL, decision, &err);
    assert (cv_context_add_action_results (context, NULL, 0, &err) == 0);
    assert (strcmp (json_string_value (cv_template_lookup (context, "decision.actions_status")), "none") == 0);
    json_decref (context);
    /* a result that does not decode fails cleanly; a context without a decision is left alone */
    decision->n_actions = 2;
    done->result.len = 1;
    context = cv_context_new ("cust-1", "x", NULL, NULL, decision, &err);
    assert (cv_context_add_action_results (context, action_results, 2, &err) == -1);
    json_decref (context);
    context = cv_context_new ("cust-1", "x", NULL, NULL, NULL, &err);
    assert (cv_context_add_action_results (context, action_results, 2, &err) == 0
            && !json_object_get (context, "decision"));
    json_decref (context);
    assert (strcmp (cv_context_action_outcome_name (CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED), "refused") == 0);
    free (packed_frozen);
    json_decref (frozen);

    /* a corrupt msgpack field fails cleanly */
    intent->slots.len = 1;
    assert (!cv_context_new ("cust-1", "x", intent, NULL, NULL, &err));
    cv_arena_destroy (&arena);

    free (packed_slots);
    free (packed_rows);
    json_decref (slots);
    json_decref (rows);
    if (verbose)
        printf ("cv_context: ok\n");
}
