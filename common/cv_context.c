/* The JSON context that rules and templates read: one request's text, intent, evidence and decision. */
#include "cv_context.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_msgpack.h"

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
    default:
        return "unspecified";
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
    return json_pack ("{s:s, s:s, s:s, s:o}", "outcome", decision->outcome, "rule", decision->rule, "reason",
                      decision->reason, "actions", actions);
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
