/* The decision worker's policies: the first that applies to a request decides its outcome and actions. */
#include "decision_policy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_context.h"
#include "cv_template.h"
#include "decision_rules.h"

struct _decision_policy_t {
    decision_rules_t *rules; /* the agent file's, the catch-all last */
    cv_log_t *log;           /* borrowed, may be NULL */
};

decision_policy_t *
decision_policy_new (cv_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    decision_rules_t *rules = decision_rules_new (config, err);
    if (!rules)
        return NULL;
    decision_policy_t *self = cv_calloc (1, sizeof *self);
    self->rules = rules;
    self->log = log;
    return self;
}

void
decision_policy_destroy (decision_policy_t **self_p)
{
    assert (self_p);
    decision_policy_t *self = *self_p;
    if (!self)
        return;
    decision_rules_destroy (&self->rules);
    free (self);
    *self_p = NULL;
}

size_t
decision_policy_count (const decision_policy_t *self)
{
    assert (self);
    return self->rules->count;
}

const char *
decision_policy_name (const decision_policy_t *self, size_t index)
{
    assert (self);
    return index < self->rules->count ? self->rules->items[index].name : NULL;
}

const char *
decision_policy_catch_all (const decision_policy_t *self)
{
    assert (self && self->rules->count > 0);
    return self->rules->items[self->rules->count - 1].name;
}

/*  --------------------------------------------------------------------------
    Deciding */

static bool
s_intent_matches (const decision_rule_t *policy, const char *intent)
{
    if (policy->intent_count == 0)
        return true;
    for (size_t i = 0; intent && i < policy->intent_count; i++)
        if (strcmp (policy->intents[i], intent) == 0)
            return true;
    return false;
}

static bool
s_condition_holds (const decision_condition_t *condition, const json_t *context)
{
    const json_t *tool = json_object_get (json_object_get (context, "tools"), condition->tool);
    const char *status = json_string_value (json_object_get (tool, "status"));
    if (!status)
        return false; /* the tool did not run for this request */
    bool ok = strcmp (status, "ok") == 0;
    if (condition->kind == DECISION_CONDITION_FAILED)
        return strcmp (status, "failed") == 0 || strcmp (status, "timed_out") == 0;
    if (!ok)
        return false;
    /* Rows are an array; a tool that returns one record returns an object; no data is {}. */
    const json_t *data = json_object_get (json_object_get (context, "evidence"), condition->tool);
    bool has_rows = json_is_array (data)    ? json_array_size (data) > 0
                    : json_is_object (data) ? json_object_size (data) > 0
                                            : data && !json_is_null (data);
    return condition->kind == DECISION_CONDITION_HAS_ROWS ? has_rows : !has_rows;
}

/* A copy of value with every string rendered against context; NULL with err naming the value's
   path (under path) and the placeholder. */
static json_t *
s_render (const json_t *value, const json_t *context, const char *path, cv_error_t *err)
{
    char child[256];
    if (json_is_string (value)) {
        char *text = cv_template_render (json_string_value (value), context, err);
        if (!text) {
            cv_error_prefix (err, "%s", path);
            return NULL;
        }
        json_t *rendered = json_string (text);
        free (text);
        if (!rendered)
            cv_error_set (err, CV_ERR_INVALID, NULL, "%s: rendered value is not valid UTF-8", path);
        return rendered;
    }
    if (json_is_object (value)) {
        json_t *copy = json_object ();
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            snprintf (child, sizeof child, "%s.%s", path, key);
            json_t *rendered = s_render (member, context, child, err);
            if (!rendered) {
                json_decref (copy);
                return NULL;
            }
            json_object_set_new (copy, key, rendered);
        }
        return copy;
    }
    if (json_is_array (value)) {
        json_t *copy = json_array ();
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item) {
            snprintf (child, sizeof child, "%s.%zu", path, index);
            json_t *rendered = s_render (item, context, child, err);
            if (!rendered) {
                json_decref (copy);
                return NULL;
            }
            json_array_append_new (copy, rendered);
        }
        return copy;
    }
    return json_deep_copy (value);
}

/* Fills result's actions from policy; -1 with err (and result's actions released) when a param
   does not render. */
static int
s_render_actions (const decision_rule_t *policy, const json_t *context, decision_result_t *result, cv_error_t *err)
{
    for (size_t i = 0; i < policy->action_count; i++) {
        decision_action_t *action = &result->actions[i];
        char path[64];
        snprintf (path, sizeof path, "actions.%zu.params", i);
        json_t *params = s_render (policy->actions[i].params, context, path, err);
        if (!params) {
            decision_result_reset (result);
            return -1;
        }
        snprintf (action->id, sizeof action->id, "%s.%zu", policy->name, i + 1);
        action->kind = policy->actions[i].kind;
        action->params = params;
        result->action_count++;
    }
    return 0;
}

int
decision_policy_decide (const decision_policy_t *self, const json_t *context, decision_result_t *result,
                        cv_error_t *err)
{
    assert (self && context && result);
    memset (result, 0, sizeof *result);
    /* No intent, or a low-confidence guess: only the policies for any intent, in the end the
       catch-all, take the request. */
    const char *intent = cv_context_acted_intent (context);
    cv_error_t skipped;
    cv_error_clear (&skipped);
    for (size_t i = 0; i < self->rules->count; i++) {
        const decision_rule_t *policy = &self->rules->items[i];
        if (!s_intent_matches (policy, intent))
            continue;
        bool holds = true;
        for (size_t j = 0; j < policy->condition_count && holds; j++)
            holds = s_condition_holds (&policy->conditions[j], context);
        if (!holds)
            continue;
        if (s_render_actions (policy, context, result, &skipped)) {
            if (self->log)
                cv_log_debug (self->log, "policy %s does not apply: %s", policy->name, skipped.message);
            continue;
        }
        result->outcome = policy->outcome;
        result->rule = policy->name;
        result->reason = policy->reason;
        if (self->log)
            cv_log_debug (self->log, "intent %s: policy %s decides %s with %zu actions", intent ? intent : "(none)",
                          policy->name, policy->outcome, result->action_count);
        return 0;
    }
    return cv_error_set (err, CV_ERR_INTERNAL, NULL, "no policy applies: the catch-all %s does not render: %s",
                         decision_policy_catch_all (self), skipped.message);
}

void
decision_result_reset (decision_result_t *result)
{
    if (!result)
        return;
    for (size_t i = 0; i < result->action_count; i++)
        json_decref (result->actions[i].params);
    memset (result, 0, sizeof *result);
}
/*  --------------------------------------------------------------------------
    Self-test */

static decision_policy_t *
s_parse (const char *text, cv_error_t *err)
{
    cv_config_t *config = cv_config_parse ("test.yaml", text, err);
    assert (config);
    decision_policy_t *policy = decision_policy_new (config, NULL, err);
    cv_config_destroy (&config);
    return policy;
}

/* Expects parsing text to fail with an error containing expected. */
static void
s_expect_load_error (const char *text, const char *expected, bool verbose)
{
    cv_error_t err;
    decision_policy_t *policy = s_parse (text, &err);
    cv_assert_that (!(policy || !strstr (err.message, expected)), "decision_policy: expected load error '%s', got '%s'",
                    expected, policy ? "success" : err.message);
    if (verbose)
        printf ("  %s\n", err.message);
}

/* A context as cv_context builds it: intent name, then per tool "ok" with rows (a JSON text),
   "failed" or "timed_out". */
static json_t *
s_context (const char *intent, const char *tool, const char *status, const char *rows)
{
    json_t *context = json_pack ("{s:s, s:s, s:{s:s, s:f, s:s, s:b, s:{}}, s:{}, s:{}}", "user_id", "cust-1", "text",
                                 "", "intent", "name", intent, "confidence", 1.0, "method", "rule", "low_confidence", 0,
                                 "slots", "evidence", "tools");
    assert (context);
    if (tool) {
        json_object_set_new (json_object_get (context, "tools"), tool,
                             json_pack ("{s:s, s:s, s:i}", "status", status, "error", "", "elapsed_us", 100));
        if (strcmp (status, "ok") == 0) {
            json_t *data = json_loads (rows, 0, NULL);
            assert (data);
            json_object_set_new (json_object_get (context, "evidence"), tool, data);
        }
    }
    return context;
}

/* Decides for context (consumed) and checks rule and outcome; returns the result to inspect. */
static void
s_expect (const decision_policy_t *policy, json_t *context, const char *rule, const char *outcome,
          decision_result_t *result)
{
    cv_error_t err;
    assert (decision_policy_decide (policy, context, result, &err) == 0);
    if (strcmp (result->rule, rule) != 0 || strcmp (result->outcome, outcome) != 0) {
        char *dump = json_dumps (context, JSON_COMPACT);
        cv_assert_that (false, "decision_policy: expected %s/%s, got %s/%s for %s", rule, outcome, result->rule,
                        result->outcome, dump);
    }
    json_decref (context);
}

static const char *
s_param (const decision_result_t *result, size_t action, const char *name)
{
    return json_string_value (json_object_get (result->actions[action].params, name));
}
/* A small agent of the test's own, with the shapes of the demo's policies: a card frozen with
   params from the evidence, a refund or none by whether a duplicate was found, an answer, and the
   catch-all with its reason. */
static const char s_agent[] = "policies:\n"
                              "  - name: lost_card_freeze\n"
                              "    intent: lost_or_stolen_card\n"
                              "    when: { has_rows: active_cards }\n"
                              "    outcome: freeze_card\n"
                              "    reason: a lost card is frozen\n"
                              "    actions:\n"
                              "      - kind: freeze_card\n"
                              "        params: { card_id: '{{evidence.active_cards.0.id}}',\n"
                              "                  last4: '{{evidence.active_cards.0.last4}}' }\n"
                              "  - name: charged_twice_refund\n"
                              "    intent: transaction_charged_twice\n"
                              "    when: { has_rows: duplicate_payments }\n"
                              "    outcome: refund_eligible\n"
                              "    actions:\n"
                              "      - kind: refund_transaction\n"
                              "        params:\n"
                              "          transaction_id: '{{evidence.duplicate_payments.0.id}}'\n"
                              "          amount: '{{evidence.duplicate_payments.0.amount}}'\n"
                              "  - name: charged_twice_none_found\n"
                              "    intent: transaction_charged_twice\n"
                              "    when: { no_rows: duplicate_payments }\n"
                              "    outcome: answer\n"
                              "  - name: card_on_its_way\n"
                              "    intent: card_arrival\n"
                              "    when: { has_rows: cards_in_delivery }\n"
                              "    outcome: answer\n"
                              "  - name: handoff\n"
                              "    outcome: handoff\n"
                              "    reason: a colleague takes over\n";

void
decision_policy_test (bool verbose)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new ("decision", "selftest", verbose);
    cv_config_t *config = cv_config_parse ("test.yaml", s_agent, &err);
    assert (config);
    decision_policy_t *policy = decision_policy_new (config, log, &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    cv_config_destroy (&config);
    assert (decision_policy_count (policy) == 5);
    assert (strcmp (decision_policy_name (policy, 0), "lost_card_freeze") == 0);
    assert (strcmp (decision_policy_name (policy, 4), "handoff") == 0);
    assert (!decision_policy_name (policy, 5));
    assert (strcmp (decision_policy_catch_all (policy), "handoff") == 0);

    decision_result_t result;
    /* lost card with an active card: freeze it, params rendered from the evidence */
    s_expect (policy,
              s_context ("lost_or_stolen_card", "active_cards", "ok",
                         "[{\"id\": \"card-7\", \"last4\": \"4417\", \"status\": \"active\"}]"),
              "lost_card_freeze", "freeze_card", &result);
    assert (strcmp (result.reason, "a lost card is frozen") == 0);
    assert (result.action_count == 1);
    assert (strcmp (result.actions[0].id, "lost_card_freeze.1") == 0);
    assert (strcmp (result.actions[0].kind, "freeze_card") == 0);
    assert (strcmp (s_param (&result, 0, "card_id"), "card-7") == 0);
    assert (strcmp (s_param (&result, 0, "last4"), "4417") == 0);
    assert (json_object_size (result.actions[0].params) == 2);
    decision_result_reset (&result);
    /* ... with no active card (no_rows), or the lookup failed: nothing specific, hand off */
    s_expect (policy, s_context ("lost_or_stolen_card", "active_cards", "ok", "[]"), "handoff", "handoff", &result);
    assert (result.action_count == 0);
    assert (strcmp (result.reason, "a colleague takes over") == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("lost_or_stolen_card", "active_cards", "timed_out", NULL), "handoff", "handoff",
              &result);
    decision_result_reset (&result);

    /* charged twice: a duplicate found (has_rows) or not (no_rows) */
    s_expect (policy,
              s_context ("transaction_charged_twice", "duplicate_payments", "ok",
                         "[{\"id\": \"tx-2\", \"merchant\": \"Cafe\", \"amount\": \"3.20\", \"currency\": \"EUR\"}]"),
              "charged_twice_refund", "refund_eligible", &result);
    assert (result.action_count == 1 && strcmp (result.actions[0].kind, "refund_transaction") == 0);
    assert (strcmp (result.actions[0].id, "charged_twice_refund.1") == 0);
    assert (strcmp (s_param (&result, 0, "transaction_id"), "tx-2") == 0);
    assert (strcmp (s_param (&result, 0, "amount"), "3.20") == 0);
    assert (json_object_size (result.actions[0].params) == 2);
    assert (strcmp (result.reason, "") == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("transaction_charged_twice", "duplicate_payments", "ok", "[]"),
              "charged_twice_none_found", "answer", &result);
    assert (result.action_count == 0);
    decision_result_reset (&result);
    /* an action whose template lacks data (no amount): that policy does not apply, the next is tried */
    s_expect (policy, s_context ("transaction_charged_twice", "duplicate_payments", "ok", "[{\"id\": \"tx-2\"}]"),
              "handoff", "handoff", &result);
    decision_result_reset (&result);

    /* an answer without actions; the right intent without its tool, and an intent no policy names,
       go to the catch-all */
    s_expect (policy, s_context ("card_arrival", "cards_in_delivery", "ok", "[{\"id\": \"card-2\"}]"),
              "card_on_its_way", "answer", &result);
    assert (result.action_count == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("card_arrival", "active_cards", "ok", "[{\"id\": \"card-2\"}]"), "handoff", "handoff",
              &result);
    decision_result_reset (&result);
    s_expect (policy, s_context ("unknown", NULL, NULL, NULL), "handoff", "handoff", &result);
    decision_result_reset (&result);
    /* a context without intent or evidence still gets the catch-all */
    json_t *bare = json_pack ("{s:s}", "user_id", "cust-1");
    s_expect (policy, bare, "handoff", "handoff", &result);
    decision_result_reset (&result);

    /* a low-confidence guess of an intent with a policy is not acted on: the catch-all takes it */
    json_t *guess =
        s_context ("lost_or_stolen_card", "active_cards", "ok", "[{\"id\": \"card-1-1\", \"last4\": \"4417\"}]");
    json_object_set_new (json_object_get (guess, "intent"), "low_confidence", json_true ());
    s_expect (policy, guess, "handoff", "handoff", &result);
    decision_result_reset (&result);
    decision_result_reset (&result); /* idempotent */
    decision_result_reset (NULL);
    decision_policy_destroy (&policy);
    assert (!policy);
    decision_policy_destroy (&policy);

    /* conditions one by one, intent lists, lists of tools, non-string params kept, nested templates */
    policy = s_parse ("policies:\n"
                      "  - name: cards_down\n"
                      "    intent: [lost_or_stolen_card, card_arrival]\n"
                      "    when: { failed: cards }\n"
                      "    outcome: retry_later\n"
                      "  - name: both_known\n"
                      "    when: { has_rows: [cards, profile] }\n"
                      "    outcome: answer\n"
                      "    actions:\n"
                      "      - kind: note\n"
                      "        params: { limit: 500, urgent: true, ratio: 0.5, quoted: '7',\n"
                      "                  who: { id: '{{user_id}}', cards: ['{{evidence.cards.0.id}}', 3] } }\n"
                      "      - kind: notify\n"
                      "  - name: no_cards\n"
                      "    when: { no_rows: cards }\n"
                      "    outcome: answer\n"
                      "  - name: rest\n"
                      "    outcome: handoff\n",
                      &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    s_expect (policy, s_context ("card_arrival", "cards", "failed", NULL), "cards_down", "retry_later", &result);
    assert (strcmp (result.reason, "") == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("lost_or_stolen_card", "cards", "timed_out", NULL), "cards_down", "retry_later",
              &result);
    decision_result_reset (&result);
    s_expect (policy, s_context ("top_up_failed", "cards", "failed", NULL), "rest", "handoff", &result);
    decision_result_reset (&result);
    json_t *context = s_context ("any", "cards", "ok", "[{\"id\": \"c1\"}]");
    s_expect (policy, json_incref (context), "rest", "handoff", &result); /* profile did not run */
    decision_result_reset (&result);
    json_object_set_new (json_object_get (context, "tools"), "profile", json_pack ("{s:s}", "status", "ok"));
    json_object_set_new (json_object_get (context, "evidence"), "profile", json_pack ("{s:s}", "name", "Ann"));
    s_expect (policy, context, "both_known", "answer", &result);
    assert (result.action_count == 2);
    assert (strcmp (result.actions[1].id, "both_known.2") == 0);
    assert (json_object_size (result.actions[1].params) == 0);
    json_t *expected = json_pack ("{s:i, s:b, s:f, s:s, s:{s:s, s:[s, i]}}", "limit", 500, "urgent", 1, "ratio", 0.5,
                                  "quoted", "7", "who", "id", "cust-1", "cards", "c1", 3);
    if (!json_equal (result.actions[0].params, expected)) {
        char *dump = json_dumps (result.actions[0].params, JSON_COMPACT | JSON_SORT_KEYS);
        cv_assert_that (false, "decision_policy: params rendered as %s", dump);
    }
    json_decref (expected);
    decision_result_reset (&result);
    s_expect (policy, s_context ("any", "cards", "ok", "[]"), "no_cards", "answer", &result);
    decision_result_reset (&result);
    s_expect (policy, s_context ("any", "cards", "ok", "{}"), "no_cards", "answer", &result); /* unset data */
    decision_result_reset (&result);
    decision_policy_destroy (&policy);

    /* a policy whose template lacks data gives way to the next that applies */
    policy = s_parse ("policies:\n"
                      "  - name: with_card\n"
                      "    intent: lost_or_stolen_card\n"
                      "    when: { has_rows: cards }\n"
                      "    outcome: freeze_card\n"
                      "    actions: [{ kind: freeze_card, params: { card_id: '{{evidence.cards.0.id}}' } }]\n"
                      "  - name: without_id\n"
                      "    intent: lost_or_stolen_card\n"
                      "    when: { has_rows: cards }\n"
                      "    outcome: escalate\n"
                      "  - name: rest\n"
                      "    outcome: handoff\n"
                      "    actions: [{ kind: ticket, params: { about: '{{evidence.cards.0.id}}' } }]\n",
                      &err);
    assert (policy);
    s_expect (policy, s_context ("lost_or_stolen_card", "cards", "ok", "[{\"last4\": \"1\"}]"), "without_id",
              "escalate", &result);
    decision_result_reset (&result);
    /* and when even the catch-all cannot render, there is no decision: an error, not a guess */
    context = s_context ("other", NULL, NULL, NULL);
    assert (decision_policy_decide (policy, context, &result, &err) == -1);
    assert (err.code == CV_ERR_INTERNAL && strstr (err.message, "catch-all rest"));
    assert (strstr (err.message, "actions.0.params.about: placeholder {{evidence.cards.0.id}} has no value"));
    assert (result.action_count == 0 && !result.rule);
    json_decref (context);
    decision_policy_destroy (&policy);

    /* config errors name the file, the line and the key */
    s_expect_load_error ("policies:\n  - name: a\n    intent: x\n    outcome: answer\n",
                         "test.yaml:2: policies: no catch-all: the last policy (a)", verbose);
    s_expect_load_error ("policies:\n  - name: all\n    outcome: handoff\n"
                         "  - name: b\n    intent: x\n    outcome: answer\n",
                         "test.yaml:2: policies.all: has no intent and no when", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    intent: x\n    outcome: answer\n"
                         "  - name: a\n    outcome: handoff\n",
                         "test.yaml:5: policies.1: name 'a' is already used by policy 0", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    intent: x\n    outcome: answer\n"
                         "    actions:\n      - kind: refund\n        params:\n"
                         "          amount: '{{evidence.x.0.amount'\n"
                         "  - name: b\n    outcome: handoff\n",
                         "test.yaml:8: policies.a.actions.0.params.amount: placeholder at offset 0 is not closed",
                         verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: handoff\n    actions:\n      - kind: refund\n"
                         "        params: { nested: [ok, '{{bad path}}'] }\n",
                         "test.yaml:6: policies.a.actions.0.params.nested.1:", verbose);
    s_expect_load_error ("policies:\n  - name: a b\n    outcome: handoff\n",
                         "test.yaml:2: policies.0.name: 'a b' is not", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: hand off\n",
                         "test.yaml:3: policies.a.outcome:", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: handoff\n    actions: [{kind: 'x/y'}]\n",
                         "policies.a.actions.0.kind: 'x/y' is not", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: handoff\n    action: []\n",
                         "test.yaml:4: policies.0.action: unknown key", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: handoff\n    actions: [{kind: x, param: {}}]\n",
                         "policies.a.actions.0.param: unknown key", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    when: { has_row: t }\n    outcome: x\n"
                         "  - name: b\n    outcome: y\n",
                         "test.yaml:3: policies.a.when.has_row: unknown key", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    when: {}\n    outcome: x\n  - name: b\n    outcome: y\n",
                         "test.yaml:2: policies.a.when: must name at least one condition", verbose);
    s_expect_load_error ("tools:\n  cards: {kind: sql}\n"
                         "policies:\n  - name: a\n    when: { has_rows: card }\n    outcome: x\n"
                         "  - name: b\n    outcome: y\n",
                         "test.yaml:5: policies.a.when.has_rows: 'card' is not one of the agent's tools", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    intent: []\n    outcome: x\n  - name: b\n    outcome: y\n",
                         "test.yaml:2: policies.a.intent: must name at least one intent", verbose);
    s_expect_load_error ("policies:\n  - name: a\n", "policies.a.outcome: is required", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    outcome: x\n    actions: [{kind: k, params: [1]}]\n",
                         "policies.a.actions.0.params: must be a map", verbose);
    s_expect_load_error ("policies: {name: a}\n", "test.yaml:1: policies: must be a list", verbose);
    s_expect_load_error ("policies: []\n", "test.yaml:1: policies: must be a list", verbose);
    s_expect_load_error ("agent: x\n", "policies: is required", verbose);
    /* action ids must fit a wire name */
    s_expect_load_error ("policies:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                         "    outcome: x\n    actions: [{kind: k}]\n",
                         "too long for its action ids", verbose);

    cv_log_destroy (&log);
    if (verbose)
        printf ("decision_policy: ok\n");
}
