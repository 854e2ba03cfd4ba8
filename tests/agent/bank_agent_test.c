/* The demo bank's agent file, deploy/config/bank-agent.yaml, checked for its own content: what its
   policies decide for the demo's evidence, that every intent has a plan, that every action a
   policy asks for is one the executor can perform, and the words its slots section reads. The
   logic is each module's self-test, on small agents of their own; this is what the shipped agent
   does with it, so that a change to the file that changes what the demo does shows here. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_assert.h"
#include "cv_config.h"
#include "decision_policy.h"
#include "gatherer_tools.h"
#include "intent_lexicon.h"
#include "intent_slots.h"

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

#define S_NOW ((time_t) 1772366400) /* 2026-03-01T12:00:00Z: the decisions' now */

/* A decision context from a short form: {"intent": NAME, "guess": true (a low-confidence one),
   TOOL: rows (ok, with those rows) or "failed" / "timed_out", ...}. */
static json_t *
s_context (const char *form)
{
    json_t *given = json_loads (form, 0, NULL);
    cv_assert_that (given, "bank agent: bad context %s", form);
    json_t *context = json_pack ("{s:s, s:s, s:{}, s:{}}", "user_id", "cust-1", "text", "", "evidence", "tools");
    const char *key;
    json_t *value;
    json_object_foreach (given, key, value) {
        if (strcmp (key, "intent") == 0)
            json_object_set_new (context, "intent",
                                 json_pack ("{s:O, s:f, s:s, s:b, s:{}}", "name", value, "confidence", 1.0, "method",
                                            "rule", "low_confidence", json_is_true (json_object_get (given, "guess")),
                                            "slots"));
        else if (strcmp (key, "guess") != 0) {
            const char *status = json_is_string (value) ? json_string_value (value) : "ok";
            json_object_set_new (json_object_get (context, "tools"), key, json_pack ("{s:s}", "status", status));
            if (!json_is_string (value))
                json_object_set (json_object_get (context, "evidence"), key, value);
        }
    }
    json_decref (given);
    return context;
}

/* What the demo's policies decide for each context: the rule, the outcome, the reason when given,
   and the actions, as [{id, kind, params}], with "requires_approval": true for one that waits for
   a person's approval (the approvals section: a refund over 100). */
static void
s_test_policies (cv_config_t *agent, bool verbose)
{
    cv_error_t err;
    decision_policy_t *policy = decision_policy_new (agent, NULL, &err);
    cv_assert_that (policy, "bank agent: the demo's policies do not load: %s", err.message);
    assert (decision_policy_count (policy) == 17);
    assert (strcmp (decision_policy_name (policy, 0), "lost_card_freeze") == 0);
    assert (strcmp (decision_policy_name (policy, 15), "kb_answer") == 0);
    assert (!decision_policy_name (policy, 17));
    assert (strcmp (decision_policy_catch_all (policy), "handoff") == 0);

    static const struct {
        const char *context, *rule, *outcome, *reason, *actions;
    } cases[] = {
        /* a lost card with an active card: frozen, params from the evidence */
        {"{\"intent\": \"lost_or_stolen_card\","
         " \"active_cards\": [{\"id\": \"card-7\", \"last4\": \"4417\", \"status\": \"active\"}]}",
         "lost_card_freeze", "freeze_card", "a card reported lost or stolen is frozen at once",
         "[{\"id\": \"lost_card_freeze.1\", \"kind\": \"freeze_card\","
         " \"params\": {\"card_id\": \"card-7\", \"last4\": \"4417\"}}]"},
        /* ... with no active card, or the lookup timed out: hand off */
        {"{\"intent\": \"lost_or_stolen_card\", \"active_cards\": []}", "handoff", "handoff",
         "nothing more specific applies; a colleague takes over", NULL},
        {"{\"intent\": \"lost_or_stolen_card\", \"active_cards\": \"timed_out\"}", "handoff", "handoff", NULL, NULL},
        /* charged twice: a duplicate found (refunded by the bank's refund_transaction), none found,
           one the refund's params cannot use */
        {"{\"intent\": \"transaction_charged_twice\", \"duplicate_payments\":"
         " [{\"id\": \"tx-2\", \"merchant\": \"Cafe\", \"amount\": \"3.20\", \"currency\": \"EUR\"}]}",
         "charged_twice_refund", "refund_eligible", NULL,
         "[{\"id\": \"charged_twice_refund.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-2\", \"amount\": \"3.20\"}}]"},
        {"{\"intent\": \"transaction_charged_twice\", \"duplicate_payments\": []}", "charged_twice_none_found",
         "answer", NULL, NULL},
        {"{\"intent\": \"transaction_charged_twice\", \"duplicate_payments\": [{\"id\": \"tx-2\"}]}", "handoff",
         "handoff", NULL, NULL},
        /* the other policies, each for a representative context */
        /* a refund: made at once when at most 500 and of the last 30 days, else a colleague's */
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"merchant\": \"Shop\","
         " \"amount\": \"25.00\", \"currency\": \"GBP\", \"day\": \"27 Feb 2026\","
         " \"created_at\": \"2026-02-27T10:15:00Z\"}]}",
         "refund_recent_payment", "refund_eligible", NULL,
         "[{\"id\": \"refund_recent_payment.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-9\", \"amount\": \"25.00\"}}]"},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"amount\": \"500.00\","
         " \"created_at\": \"2026-01-30T12:00:00Z\"}]}",
         "refund_recent_payment", "refund_eligible", NULL,
         "[{\"id\": \"refund_recent_payment.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-9\", \"amount\": \"500.00\"}, \"requires_approval\": true}]"},
        /* ... over 100 it waits for a colleague's approval; at 100, and for the demo customer's
           23.47 at Lidl, it does not */
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"amount\": \"100.01\","
         " \"created_at\": \"2026-02-27T10:15:00Z\"}]}",
         "refund_recent_payment", "refund_eligible", NULL,
         "[{\"id\": \"refund_recent_payment.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-9\", \"amount\": \"100.01\"}, \"requires_approval\": true}]"},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"amount\": \"100.00\","
         " \"created_at\": \"2026-02-27T10:15:00Z\"}]}",
         "refund_recent_payment", "refund_eligible", NULL,
         "[{\"id\": \"refund_recent_payment.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-9\", \"amount\": \"100.00\"}}]"},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-1-1-9\", \"merchant\": \"Lidl\","
         " \"amount\": \"23.47\", \"currency\": \"EUR\", \"created_at\": \"2026-02-14T09:30:00Z\"}]}",
         "refund_recent_payment", "refund_eligible", NULL,
         "[{\"id\": \"refund_recent_payment.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-1-1-9\", \"amount\": \"23.47\"}}]"},
        /* a duplicate over 100 waits too */
        {"{\"intent\": \"transaction_charged_twice\", \"duplicate_payments\":"
         " [{\"id\": \"tx-4\", \"merchant\": \"Hotel\", \"amount\": \"240.00\", \"currency\": \"EUR\"}]}",
         "charged_twice_refund", "refund_eligible", NULL,
         "[{\"id\": \"charged_twice_refund.1\", \"kind\": \"refund_transaction\","
         " \"params\": {\"transaction_id\": \"tx-4\", \"amount\": \"240.00\"}, \"requires_approval\": true}]"},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"amount\": \"500.01\","
         " \"created_at\": \"2026-02-27T10:15:00Z\"}]}",
         "refund_for_review", "handoff",
         "a refund over 500, or of a payment more than 30 days old, is a colleague's to "
         "decide",
         NULL},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": [{\"id\": \"tx-9\", \"amount\": \"25.00\","
         " \"created_at\": \"2026-01-20T08:00:00Z\"}]}",
         "refund_for_review", "handoff", NULL, NULL},
        {"{\"intent\": \"request_refund\", \"refundable_payments\": []}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"card_payment_not_recognised\","
         " \"recent_card_payments\": [{\"id\": \"tx-5\", \"amount\": \"9.99\"}]}",
         "unrecognised_payment_review", "escalate", NULL, NULL},
        /* a card on its way: the tracker's word, or, when it could not be asked, the bank's own */
        {"{\"intent\": \"card_arrival\", \"cards_in_delivery\": [{\"id\": \"card-2\"}],"
         " \"delivery_status\": [{\"carrier\": \"An Post\"}], \"active_cards\": [{\"id\": \"card-1\"}]}",
         "card_tracked_card_in_use", "answer", NULL, NULL},
        {"{\"intent\": \"card_arrival\", \"cards_in_delivery\": [{\"id\": \"card-2\"}],"
         " \"delivery_status\": [{\"carrier\": \"An Post\"}], \"active_cards\": []}",
         "card_tracked", "answer", NULL, NULL},
        {"{\"intent\": \"card_arrival\", \"cards_in_delivery\": [{\"id\": \"card-2\", \"last4\": \"0042\"}],"
         " \"delivery_status\": \"failed\"}",
         "card_on_its_way", "answer", NULL, NULL},
        {"{\"intent\": \"card_arrival\", \"cards_in_delivery\": [{\"id\": \"card-2\"}],"
         " \"active_cards\": [{\"id\": \"card-1\"}]}",
         "card_on_its_way_card_in_use", "answer", NULL, NULL},
        /* a compromised card: the payments on the card found, else (none, or it could not look) hand off */
        {"{\"intent\": \"compromised_card\", \"active_cards\": [{\"id\": \"card-1\"}],"
         " \"card_payments\": [{\"id\": \"tx-3\", \"merchant\": \"Uber\"}]}",
         "compromised_card_payments", "answer", "the latest payments on the card, for the customer to check", NULL},
        {"{\"intent\": \"compromised_card\", \"active_cards\": [], \"card_payments\": \"failed\"}", "handoff",
         "handoff", NULL, NULL},
        {"{\"intent\": \"compromised_card\", \"active_cards\": [{\"id\": \"card-1\"}], \"card_payments\": []}",
         "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"pending_transfer\", \"pending_transfers\": [{\"id\": \"tr-1\"}]}", "transfer_pending",
         "answer", NULL, NULL},
        {"{\"intent\": \"top_up_failed\", \"failed_topups\": [{\"id\": \"tp-1\"}]}", "topup_failed", "answer", NULL,
         NULL},
        /* a rate: the FX service's, or, when it could not be asked, the bank's reference rates */
        {"{\"intent\": \"exchange_rate\", \"fx_rate\": [{\"quote\": \"USD\", \"rate\": \"1.16\"}],"
         " \"exchange_rates\": [{\"base\": \"EUR\", \"quote\": \"USD\", \"rate\": \"1.0841\"}]}",
         "fx_rate", "answer", NULL, NULL},
        {"{\"intent\": \"exchange_rate\", \"fx_rate\": \"failed\","
         " \"exchange_rates\": [{\"base\": \"EUR\", \"quote\": \"USD\", \"rate\": \"1.0841\"}]}",
         "exchange_rates", "answer", NULL, NULL},
        {"{\"intent\": \"exchange_rate\", \"exchange_rates\": []}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"unknown\"}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"card_arrival\", \"active_cards\": [{\"id\": \"card-2\"}]}", "handoff", "handoff", NULL, NULL},
        /* the other intents: the knowledge base's article, or a hand-off when it has none */
        {"{\"intent\": \"card_linking\", \"kb_answers\": [{\"slug\": \"card-linking\", \"title\": \"Linking\","
         " \"snippet\": \"tap Link a card\", \"rank\": \"0.6\"}]}",
         "kb_answer", "answer", "an article of the knowledge base answers the question", NULL},
        {"{\"intent\": \"card_linking\", \"kb_answers\": []}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"age_limit\", \"kb_answers\": \"failed\"}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"age_limit\", \"kb_answers\": \"timed_out\"}", "handoff", "handoff", NULL, NULL},
        /* no intent or evidence at all, and a low-confidence guess of an intent with a policy */
        {"{}", "handoff", "handoff", NULL, NULL},
        {"{\"intent\": \"lost_or_stolen_card\", \"guess\": true,"
         " \"active_cards\": [{\"id\": \"card-1-1\", \"last4\": \"4417\"}]}",
         "handoff", "handoff", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *context = s_context (cases[i].context);
        decision_result_t result;
        assert (decision_policy_decide (policy, context, S_NOW, &result, &err) == 0);
        json_t *actions = json_array ();
        for (size_t a = 0; a < result.action_count; a++) {
            json_t *action = json_pack ("{s:s, s:s, s:O}", "id", result.actions[a].id, "kind", result.actions[a].kind,
                                        "params", result.actions[a].params);
            if (result.actions[a].requires_approval)
                json_object_set_new (action, "requires_approval", json_true ());
            json_array_append_new (actions, action);
        }
        json_t *expected = json_loads (cases[i].actions ? cases[i].actions : "[]", 0, NULL);
        assert (expected);
        char *got = json_dumps (actions, JSON_COMPACT | JSON_SORT_KEYS);
        cv_assert_that (strcmp (result.rule, cases[i].rule) == 0 && strcmp (result.outcome, cases[i].outcome) == 0
                            && (!cases[i].reason || strcmp (result.reason, cases[i].reason) == 0)
                            && json_equal (actions, expected),
                        "bank agent: %s\n  decided %s/%s (%s) with %s\n  expected %s/%s with %s", cases[i].context,
                        result.rule, result.outcome, result.reason, got, cases[i].rule, cases[i].outcome,
                        cases[i].actions ? cases[i].actions : "[]");
        if (verbose)
            printf ("  %-28s -> %s (%s) %s\n", result.rule, result.outcome, result.reason, got);
        free (got);
        json_decref (expected);
        json_decref (actions);
        json_decref (context);
        decision_result_reset (&result);
    }
    decision_policy_destroy (&policy);
}

/* The demo's slots section: its currencies, countries and demonyms in their order, the
   currencies without a minor unit and the bank's id formats. */
static void
s_test_lexicon (cv_config_t *agent)
{
    cv_error_t err;
    intent_lexicon_t *lexicon = intent_lexicon_new (agent, &err);
    cv_assert_that (lexicon, "bank agent: the demo's slots section does not load: %s", err.message);
    char *currencies = intent_lexicon_alternation (lexicon, INTENT_LEXICON_CURRENCIES);
    char *signs = intent_lexicon_alternation (lexicon, INTENT_LEXICON_SIGNS);
    assert (strncmp (currencies, "(?:(?:(?:US|U\\.S\\.|American)\\s*dollars?)(*:USD)|", 46) == 0);
    assert (strstr (currencies, "|(?:kroner|krone|pesos?|dinars?)(*:-)|") && !strstr (signs, "kroner"));
    assert (strstr (signs, "|(?:€|EUR)(*:EUR)|"));
    char *countries = intent_lexicon_alternation (lexicon, INTENT_LEXICON_COUNTRIES);
    assert (strstr (countries, "(?:Northern\\s+Ireland|(?:the\\s+)?United\\s+Kingdom|"));
    char *demonyms = intent_lexicon_alternation (lexicon, INTENT_LEXICON_DEMONYMS);
    assert (strstr (demonyms, "|(?:German)(*:DE)|"));
    assert (intent_lexicon_decimals (lexicon, "JPY") == 0 && intent_lexicon_decimals (lexicon, "EUR") == 2);
    assert (strcmp (intent_lexicon_id (lexicon, INTENT_LEXICON_TRANSACTION_ID), "tx(?:-[0-9]{1,9}){3}") == 0);
    assert (strcmp (intent_lexicon_id (lexicon, INTENT_LEXICON_TRANSFER_ID), "tr(?:-[0-9]{1,9}){2}") == 0);
    char *expanded = intent_lexicon_expand (lexicon, "a{1,2}{TRANSFER_ID}|{CUR}{NONE}{");
    assert (strncmp (expanded, "a{1,2}tr(?:-[0-9]{1,9}){2}|(?:(?:(?:US", 36) == 0);
    assert (strcmp (expanded + strlen (expanded) - 17, ")(?!\\p{L}){NONE}{") == 0);
    free (expanded);
    free (currencies);
    free (signs);
    free (countries);
    free (demonyms);
    intent_lexicon_destroy (&lexicon);
}

/* Every case of the slot corpus, read with the demo's slots section. */
static void
s_test_slots (cv_config_t *agent, bool verbose)
{
    cv_error_t err;
    intent_slots_t *slots = intent_slots_new (agent, &err);
    cv_assert_that (slots, "bank agent: %s", err.message);
    size_t cases = intent_slots_test_cases (slots, CONVEYOR_SOURCE_DIR "/tests/unit/intent/slots.jsonl", verbose);
    assert (cases > 200);
    intent_slots_destroy (&slots);
}

/* Every one of Banking77's 77 intents (as the pipeline names them: characters outside
   [A-Za-z0-9_.:-] dropped) has a plan: the nine the demo acts on their own tools, every other
   the knowledge base, searched within the intent's articles. */
static void
s_test_plans (cv_config_t *agent)
{
    cv_error_t err;
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "bank agent: the demo's tools do not load: %s", err.message);
    const gatherer_tool_t *kb = gatherer_tools_find (tools, "kb_answers");
    assert (kb && kb->kind == GATHERER_TOOL_KB_SEARCH);
    assert (strcmp (kb->params[0], "text") == 0 && strcmp (kb->params[1], "intent.name") == 0);
    json_t *names = json_load_file (CONVEYOR_SOURCE_DIR "/data/banking77/categories.json", 0, NULL);
    assert (json_is_array (names) && json_array_size (names) == 77);
    size_t index, by_kb = 0;
    json_t *name;
    json_array_foreach (names, index, name) {
        char intent[128];
        size_t size = 0;
        for (const char *c = json_string_value (name); *c && size < sizeof intent - 1; c++)
            if (strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", *c))
                intent[size++] = *c;
        intent[size] = '\0';
        gatherer_plan_t plan = gatherer_tools_plan (tools, intent);
        cv_assert_that (plan.count > 0, "bank agent: intent %s has no plan", intent);
        for (size_t i = 0; i < plan.count; i++)
            by_kb += plan.tools[i] == kb;
    }
    assert (by_kb == 77 - 9);
    json_decref (names);
    gatherer_tools_destroy (&tools);
}

/* Every action a policy asks for is of a kind the `actions` section says how to perform: one it
   does not would always fail, and the customer would only ever hear that it could not be done. */
static void
s_test_action_kinds (cv_config_t *agent)
{
    cv_node_t *root = cv_config_root (agent);
    cv_node_t *policies = cv_node_get (root, "policies");
    cv_node_t *performed = cv_node_get (root, "actions");
    assert (cv_node_is_list (policies) && cv_node_is_map (performed));
    size_t acting = 0;
    for (size_t i = 0; i < cv_node_count (policies); i++) {
        cv_node_t *policy = cv_node_item (policies, i);
        cv_node_t *actions = cv_node_get (policy, "actions");
        for (size_t a = 0; actions && a < cv_node_count (actions); a++) {
            const char *kind = cv_node_text (cv_node_get (cv_node_item (actions, a), "kind"));
            cv_assert_that (kind && cv_node_get (performed, kind),
                            "bank agent: policy %s asks for an action of kind %s, which the actions section does "
                            "not perform",
                            cv_node_text (cv_node_get (policy, "name")), kind ? kind : "(none)");
            acting++;
        }
    }
    /* the lost card's freeze and the two refunds */
    assert (acting == 3);
}

int
main (int argc, char *argv[])
{
    bool verbose = argc > 1 && strcmp (argv[1], "-v") == 0;
    cv_error_t err;
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    cv_assert_that (agent, "bank agent: %s", err.message);
    s_test_policies (agent, verbose);
    s_test_plans (agent);
    s_test_action_kinds (agent);
    s_test_lexicon (agent);
    s_test_slots (agent, verbose);
    cv_config_destroy (&agent);
    printf ("bank agent: ok\n");
    return 0;
}
