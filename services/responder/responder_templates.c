/* The responder's reply templates and the ladder that picks one: rule, outcome, fallback. */
#include "responder_templates.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_envelope.h"
#include "cv_msgpack.h"
#include "cv_template.h"
#include "cv_utf8.h"
#include "responder_guard.h"

struct _responder_templates_t {
    size_t size;
    char **names; /* owned, in file order */
    char **texts; /* owned, as written */
};

static int
s_find (const responder_templates_t *self, const char *name)
{
    for (size_t i = 0; i < self->size; i++)
        if (strcmp (self->names[i], name) == 0)
            return (int) i;
    return -1;
}

/* The template's fixed text: each (well-formed) placeholder replaced by one letter. */
static char *
s_fixed_text (const char *text)
{
    char *out = cv_malloc (strlen (text) + 1);
    size_t used = 0;
    const char *cursor = text;
    const char *open;
    while ((open = strstr (cursor, "{{"))) {
        const char *close = strstr (open + 2, "}}");
        assert (close); /* cv_template_check passed */
        memcpy (out + used, cursor, (size_t) (open - cursor));
        used += (size_t) (open - cursor);
        out[used++] = 'x';
        cursor = close + 2;
    }
    strcpy (out + used, cursor);
    return out;
}

/* Checks one template; 0 or -1 with err naming file, line and key. */
static int
s_check_template (cv_config_t *agent, cv_node_t *value, const char *name, const char *text, const char *path,
                  cv_error_t *err)
{
    cv_error_t inner;
    if (!cv_name_valid (name))
        return cv_config_fail (agent, value, path, err, "a template name must be 1..%d characters of " CV_NAME_CHARS,
                               CV_NAME_MAX_BYTES);
    if (!text)
        return cv_config_fail (agent, value, path, err, "must be a string: the reply's text");
    if (!*text)
        return cv_config_fail (agent, value, path, err, "must not be empty");
    if (cv_template_check (text, &inner))
        return cv_config_fail (agent, value, path, err, "%s", inner.message);
    bool is_fallback = strcmp (name, RESPONDER_FALLBACK) == 0;
    if (is_fallback && strstr (text, "{{"))
        return cv_config_fail (agent, value, path, err,
                               "must have no placeholders: it is the reply when no other template renders");
    /* Fixed text the guardrails refuse would make the template useless on every request. */
    char *fixed = s_fixed_text (text);
    char *clean = responder_guard_clean (fixed, strlen (fixed) + 1, &inner);
    free (fixed);
    if (!clean)
        return cv_config_fail (agent, value, path, err, "the output guardrails would refuse it: %s", inner.message);
    free (clean);
    return 0;
}

responder_templates_t *
responder_templates_new (cv_config_t *agent, cv_error_t *err)
{
    assert (agent);
    cv_node_t *root = cv_config_root (agent);
    cv_node_t *section = cv_node_get (root, "templates");
    if (!section) {
        cv_config_fail (agent, root, "templates", err, "is required: the responder's replies, name -> text");
        return NULL;
    }
    if (!cv_node_is_map (section)) {
        cv_config_fail (agent, section, "templates", err, "must be a map of template name -> text");
        return NULL;
    }
    size_t count = cv_node_count (section);
    responder_templates_t *self = cv_calloc (1, sizeof *self);
    self->names = cv_calloc (count ? count : 1, sizeof (char *));
    self->texts = cv_calloc (count ? count : 1, sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        const char *name = cv_node_key (section, i);
        cv_node_t *value = cv_node_value (section, i);
        char path[160];
        snprintf (path, sizeof path, "templates.%s", name ? name : "?");
        if (!name) {
            cv_config_fail (agent, value, path, err, "a template name must be a plain string");
            goto failed;
        }
        const char *text = cv_node_text (value);
        if (s_check_template (agent, value, name, text, path, err))
            goto failed;
        /* libfyaml refuses duplicate keys; a second entry here would shadow the first. */
        assert (s_find (self, name) < 0);
        self->names[self->size] = cv_strdup (name);
        self->texts[self->size] = cv_strdup (text);
        self->size++;
    }
    if (s_find (self, RESPONDER_FALLBACK) < 0) {
        cv_config_fail (agent, section, "templates." RESPONDER_FALLBACK, err,
                        "is required: the reply when no other template renders");
        goto failed;
    }
    return self;
failed:
    responder_templates_destroy (&self);
    return NULL;
}

void
responder_templates_destroy (responder_templates_t **self_p)
{
    assert (self_p);
    responder_templates_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++) {
        free (self->names[i]);
        free (self->texts[i]);
    }
    free (self->names);
    free (self->texts);
    free (self);
    *self_p = NULL;
}

size_t
responder_templates_size (const responder_templates_t *self)
{
    assert (self);
    return self->size;
}

const char *
responder_templates_name (const responder_templates_t *self, size_t index)
{
    assert (self);
    return index < self->size ? self->names[index] : NULL;
}

const char *
responder_templates_text (const responder_templates_t *self, const char *name)
{
    assert (self && name);
    int index = s_find (self, name);
    return index < 0 ? NULL : self->texts[index];
}

/* decision.rule or decision.outcome from the context, or NULL. */
static const char *
s_decision_name (const json_t *context, const char *path)
{
    const char *name = json_string_value (cv_template_lookup (context, path));
    return name && *name ? name : NULL;
}

char *
responder_templates_render (const responder_templates_t *self, const json_t *context, const char **used, cv_log_t *log,
                            const char *request_id, const char *trace_id)
{
    assert (self && context && used);
    static const char *const rung_kinds[] = {"rule", "outcome", "fallback"};
    const char *rungs[] = {s_decision_name (context, "decision.rule"), s_decision_name (context, "decision.outcome"),
                           RESPONDER_FALLBACK};
    char skipped[600] = "";
    size_t skipped_size = 0;
    *used = NULL;
    for (size_t rung = 0; rung < 3; rung++) {
        const char *name = rungs[rung];
        if (!name || (rung > 0 && rungs[0] && strcmp (rungs[0], name) == 0)
            || (rung > 1 && rungs[1] && strcmp (rungs[1], name) == 0))
            continue;
        cv_error_t err;
        char *clean = NULL;
        int index = s_find (self, name);
        if (index < 0)
            cv_error_set (&err, CV_ERR_INVALID, NULL, "no such template");
        else {
            char *raw = cv_template_render (self->texts[index], context, &err);
            if (raw) {
                clean = responder_guard_clean (raw, CV_REPLY_MAX_BYTES, &err);
                if (!clean && err.code != CV_ERR_INTERNAL)
                    cv_log_event (log, CV_LOG_WARN, request_id, trace_id,
                                  "template %s: rendered reply refused by the output guardrails: %s", name,
                                  err.message);
                free (raw);
            }
        }
        if (clean) {
            *used = self->names[index];
            if (cv_log_verbose (log))
                cv_log_event (log, CV_LOG_DEBUG, request_id, trace_id, "reply from template %s (the %s rung)%s%s", name,
                              rung_kinds[rung], skipped_size ? "; skipped " : "", skipped);
            return clean;
        }
        if (skipped_size < sizeof skipped)
            skipped_size += (size_t) snprintf (skipped + skipped_size, sizeof skipped - skipped_size, "%s%s %s: %s",
                                               skipped_size ? ", " : "", rung_kinds[rung], name, err.message);
    }
    /* The fallback was checked at load: only a failed allocation gets here. */
    cv_log_event (log, CV_LOG_ERROR, request_id, trace_id, "no template rendered: %s", skipped);
    return NULL;
}

/*  --------------------------------------------------------------------------
    Self-test */

#ifndef CONVEYOR_SOURCE_DIR
#define CONVEYOR_SOURCE_DIR "."
#endif

static responder_templates_t *
s_parse (const char *yaml, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", yaml, err);
    assert (agent);
    responder_templates_t *templates = responder_templates_new (agent, err);
    cv_config_destroy (&agent);
    return templates;
}

static void
s_expect_config_error (const char *yaml, const char *expected)
{
    cv_error_t err;
    responder_templates_t *templates = s_parse (yaml, &err);
    cv_assert_that (!(templates || !strstr (err.message, expected)),
                    "responder_templates: expected a config error with '%s', got %s", expected,
                    templates ? "none" : err.message);
    assert (err.code == CV_ERR_INVALID);
}

/* Renders and checks the template used and the text (exact, or contained when partial). */
static void
s_expect_reply (const responder_templates_t *templates, const json_t *context, const char *template_name,
                const char *expected, bool partial)
{
    const char *used;
    char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL);
    assert (reply && used);
    bool text_ok = partial ? strstr (reply, expected) != NULL : strcmp (reply, expected) == 0;
    cv_assert_that (!(strcmp (used, template_name) != 0 || !text_ok),
                    "responder_templates: expected template %s with '%s', got %s: '%s'", template_name, expected, used,
                    reply);
    /* whatever rendered it, the guardrails held */
    assert (strlen (reply) <= CV_REPLY_MAX_BYTES);
    assert (!strstr (reply, "  ") && !strchr (reply, '\n') && !strstr (reply, "{{") && !strstr (reply, " ."));
    free (reply);
}

/* A context as the responder builds it: protobuf Intent, Evidence (one ToolResult per tool in
   rows, msgpack rows as the gatherer sends them; failed lists tools that failed) and Decision,
   through cv_context_new. */
static json_t *
s_context (const char *intent_name, const json_t *rows, const char *failed, const char *rule, const char *outcome)
{
    cv_error_t err;
    cv_arena_t *arena = cv_arena_new ();
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = (char *) intent_name;
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;

    Conveyor__V1__Evidence *evidence = cv_envelope_evidence_new (arena);
    size_t count = json_object_size (rows) + (failed ? 1 : 0);
    evidence->results = cv_arena_alloc (arena, (count ? count : 1) * sizeof *evidence->results);
    const char *tool;
    json_t *value;
    json_object_foreach ((json_t *) rows, tool, value) {
        Conveyor__V1__ToolResult *result = cv_envelope_tool_result_new (arena);
        result->tool = (char *) tool;
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
        uint8_t *packed = cv_msgpack_pack (value, &result->data.len, &err);
        assert (packed);
        result->data.data = cv_arena_adopt (arena, packed, result->data.len);
        result->elapsed_us = 800;
        evidence->results[evidence->n_results++] = result;
    }
    if (failed) {
        Conveyor__V1__ToolResult *result = cv_envelope_tool_result_new (arena);
        result->tool = (char *) failed;
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
        result->error = "canceling statement due to statement timeout";
        evidence->results[evidence->n_results++] = result;
    }

    Conveyor__V1__Decision *decision = cv_envelope_decision_new (arena);
    decision->outcome = (char *) outcome;
    decision->rule = (char *) rule;
    json_t *context = cv_context_new ("cust-1", "the customer's words", intent, evidence, decision, &err);
    assert (context);
    cv_arena_destroy (&arena);
    return context;
}

/* What the demo's SQL tools return for cust-1 (deploy/sql/migrations/0002_demo_bank.sql, as of
   2026-01-15 12:00 UTC), values formatted as the queries in bank-agent.yaml format them: amounts
   as text, to_char dates, 'FMDay DD Month' blank-padding the month. */
static json_t *
s_demo_rows (void)
{
    json_t *rows = json_loads (
        "{"
        " \"customer_profile\": [{\"name\": \"Alex Morgan\", \"first_name\": \"Alex\", \"country\": \"IE\"}],"
        " \"active_cards\": [{\"id\": \"card-1-1\", \"last4\": \"4417\", \"status\": \"active\"}],"
        " \"cards_in_delivery\": [{\"id\": \"card-1-2\", \"last4\": \"9052\", \"status\": \"shipped\","
        "   \"expected_arrival\": \"Sunday 18 January  \", \"delivery_tracking\": \"CP482913374IE\"}],"
        " \"recent_card_payments\": ["
        "   {\"id\": \"tx-1-1-12\", \"merchant\": \"Uber\", \"amount\": \"14.20\", \"currency\": \"EUR\","
        "    \"status\": \"pending\", \"day\": \"15 Jan 2026\"},"
        "   {\"id\": \"tx-1-1-9\", \"merchant\": \"Lidl\", \"amount\": \"23.47\", \"currency\": \"EUR\","
        "    \"status\": \"completed\", \"day\": \"14 Jan 2026\"}],"
        " \"card_payments\": ["
        "   {\"id\": \"tx-1-1-12\", \"merchant\": \"Uber\", \"amount\": \"14.20\", \"currency\": \"EUR\","
        "    \"status\": \"pending\", \"day\": \"15 Jan 2026\"}],"
        " \"duplicate_payments\": [{\"id\": \"tx-1-1-8\", \"merchant\": \"Deliveroo\", \"amount\": \"18.90\","
        "   \"currency\": \"EUR\", \"day\": \"13 Jan 2026\", \"original_id\": \"tx-1-1-7\"}],"
        " \"refundable_payments\": [{\"id\": \"tx-1-1-9\", \"merchant\": \"Lidl\", \"amount\": \"23.47\","
        "   \"currency\": \"EUR\", \"day\": \"14 Jan 2026\"}],"
        " \"pending_transfers\": [{\"id\": \"tr-1-1\", \"recipient_name\": \"Sean Murphy\", \"amount\": \"250.00\","
        "   \"currency\": \"EUR\", \"expected\": \"Friday 16 January  \"}],"
        " \"failed_topups\": [{\"id\": \"top-1-1\", \"amount\": \"200.00\", \"currency\": \"EUR\", \"method\": "
        "\"card\","
        "   \"failure_reason\": \"Declined by the issuing bank of the top-up card\", \"day\": \"15 Jan 2026\"}],"
        " \"delivery_status\": [{\"status\": \"in_transit\", \"expected_date\": \"2026-01-17\","
        "   \"carrier\": \"An Post\", \"last_event\": \"Arrived at the sorting centre\"}],"
        " \"exchange_rates\": [{\"base\": \"EUR\", \"quote\": \"CHF\", \"rate\": \"0.9350\","
        "   \"as_of\": \"15 Jan 2026 11:00\"}],"
        " \"fx_rate\": [{\"base\": \"EUR\", \"quote\": \"USD\", \"rate\": \"1.16\", \"as_of\": \"2026-01-15\","
        "   \"source\": \"reference mid rate\"}],"
        " \"kb_answers\": [{\"slug\": \"card-linking\", \"title\": \"Linking a card to your account\","
        "   \"snippet\": \"open the app, go to Cards, tap Link a card\", \"rank\": \"0.6363602\"}]"
        "}",
        0, NULL);
    assert (rows);
    return rows;
}

/* The evidence a policy's intent gathers: customer_profile and the policy's own tool. */
static json_t *
s_rows_of (const json_t *all, const char *tool)
{
    json_t *rows = json_object ();
    json_object_set (rows, "customer_profile", json_object_get (all, "customer_profile"));
    if (tool)
        json_object_set (rows, tool, json_object_get (all, tool));
    return rows;
}

/* The ladder over evidence as the gatherer sends it, on a small agent of the test's own: a
   timed-out tool, a policy without a template, and a value the guardrails refuse. */
static void
s_test_evidence (void)
{
    cv_error_t err;
    responder_templates_t *templates =
        s_parse ("templates:\n"
                 "  card_frozen: I've frozen your card ending {{evidence.active_cards.0.last4}}.\n"
                 "  failed_topup: 'Your top-up did not go through: {{evidence.failed_topups.0.failure_reason}}.'\n"
                 "  handoff: A colleague will take this one.\n"
                 "  fallback: A colleague will reply.\n",
                 &err);
    cv_assert_that (templates, "responder_templates: %s", err.message);
    json_t *all = json_loads ("{\"customer_profile\": [{\"first_name\": \"Alex\"}],"
                              " \"active_cards\": [{\"last4\": \"4417\"}],"
                              " \"failed_topups\": [{\"failure_reason\": \"Declined by the card's bank\"}]}",
                              0, NULL);
    assert (all);

    /* the tool answered: the policy's template fills in */
    json_t *rows = s_rows_of (all, "active_cards");
    json_t *context = s_context ("lost_or_stolen_card", rows, NULL, "card_frozen", "freeze_card");
    s_expect_reply (templates, context, "card_frozen", "I've frozen your card ending 4417.", false);
    json_decref (context);
    json_decref (rows);

    /* the gatherer's tool timed out: the policy's template cannot fill in, and there is no
       template named after the outcome, so the fallback answers */
    rows = s_rows_of (all, NULL);
    context = s_context ("lost_or_stolen_card", rows, "active_cards", "card_frozen", "freeze_card");
    s_expect_reply (templates, context, RESPONDER_FALLBACK, "A colleague will reply.", false);
    json_decref (context);
    json_decref (rows);

    /* a policy without a template of its own answers through the outcome's */
    rows = s_rows_of (all, NULL);
    context = s_context ("unknown", rows, NULL, "some_new_policy", "handoff");
    s_expect_reply (templates, context, "handoff", "A colleague will take this one.", false);
    json_decref (context);
    json_decref (rows);

    /* a value that would leak a database error out of a template is refused */
    rows = s_rows_of (all, "failed_topups");
    context = s_context ("top_up_failed", rows, NULL, "failed_topup", "answer");
    s_expect_reply (templates, context, "failed_topup", "did not go through: Declined by the card's bank.", true);
    json_decref (context);
    json_object_set_new (json_array_get (json_object_get (rows, "failed_topups"), 0), "failure_reason",
                         json_string ("ERROR: permission denied for table topups (SQLSTATE 42501)"));
    context = s_context ("top_up_failed", rows, NULL, "failed_topup", "answer");
    s_expect_reply (templates, context, RESPONDER_FALLBACK, "A colleague will reply.", false);
    json_decref (context);
    json_decref (rows);

    json_decref (all);
    responder_templates_destroy (&templates);
}

/* The demo's own check: bank-agent.yaml's templates load, and each renders the demo's evidence as
   the demo's policies decide it. */
static void
s_test_demo (bool verbose)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    cv_assert_that (agent, "responder_templates: %s", err.message);
    responder_templates_t *templates = responder_templates_new (agent, &err);
    cv_assert_that (templates, "responder_templates: the demo's templates do not load: %s", err.message);
    cv_config_destroy (&agent);
    assert (responder_templates_text (templates, RESPONDER_FALLBACK));
    json_t *all = s_demo_rows ();

    /* each demo policy, with the evidence its intent gathers, as bank-agent.yaml decides it */
    static const struct {
        const char *intent, *tool, *rule, *outcome, *expected;
        bool partial;
    } cases[] = {
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card",
         "I'm sorry to hear that, Alex. I've recorded that your card ending 4417 is to be frozen. To stop it at "
         "once, freeze it yourself in the app under Cards.",
         false},
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible",
         "You're right: Deliveroo charged you 18.90 EUR twice on 13 Jan 2026. I've asked for the second payment "
         "to be refunded;",
         true},
        {"transaction_charged_twice", NULL, "charged_twice_none_found", "answer",
         "I can't see a payment taken twice on your account.", true},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible",
         "Your latest card payment is 23.47 EUR at Lidl on 14 Jan 2026. I've asked for a refund of it;", true},
        {"card_payment_not_recognised", "recent_card_payments", "unrecognised_payment_review", "escalate",
         "Your most recent card payment is 14.20 EUR to Uber on 15 Jan 2026.", true},
        {"card_arrival", "cards_in_delivery", "card_on_its_way", "answer",
         "Your new card ending 9052 is on its way and should arrive by Sunday 18 January. Tracking number: "
         "CP482913374IE.",
         false},
        {"pending_transfer", "pending_transfers", "transfer_pending", "answer",
         "Your transfer of 250.00 EUR to Sean Murphy is still being processed and should arrive by Friday 16 "
         "January.",
         false},
        {"top_up_failed", "failed_topups", "topup_failed", "answer",
         "Your top-up of 200.00 EUR on 15 Jan 2026 did not go through: Declined by the issuing bank of the top-up "
         "card. No money was taken;",
         true},
        {"exchange_rate", "exchange_rates", "exchange_rates", "answer",
         "Today's rate: 1 EUR = 0.9350 CHF (as of 15 Jan 2026 11:00 UTC).", false},
        {"exchange_rate", "fx_rate", "fx_rate", "answer",
         "Today's rate: 1 EUR = 1.16 USD (reference mid rate, 2026-01-15).", false},
        {"card_linking", "kb_answers", "kb_answer", "answer",
         "From our help pages, \"Linking a card to your account\" says: \"...open the app, go to Cards, tap Link a "
         "card...\" "
         "If this does not answer your question, reply here and a colleague will help.",
         false},
        {"unknown", NULL, "handoff", "handoff",
         "Thanks for your message. I can't answer this one reliably myself, so I'm passing it to a colleague who "
         "will reply here shortly.",
         false},
    };
    size_t case_count = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < case_count; i++) {
        json_t *rows = s_rows_of (all, cases[i].tool);
        json_t *context = s_context (cases[i].intent, rows, NULL, cases[i].rule, cases[i].outcome);
        s_expect_reply (templates, context, cases[i].rule, cases[i].expected, cases[i].partial);
        json_decref (context);
        json_decref (rows);
        if (verbose)
            printf ("  demo template %s: ok\n", cases[i].rule);
    }

    /* a policy that reads two tools: the card active_cards found, and card_payments on it */
    json_t *both = s_context ("compromised_card", all, NULL, "compromised_card_payments", "answer");
    s_expect_reply (templates, both, "compromised_card_payments",
                    "The latest payment on your card ending 4417 is 14.20 EUR at Uber on 15 Jan 2026.", true);
    json_decref (both);
    /* ... and one that reads what the card tracker said about the card the bank's data found */
    json_t *tracked = s_context ("card_arrival", all, NULL, "card_tracked", "answer");
    s_expect_reply (templates, tracked, "card_tracked",
                    "Your new card ending 9052 is with An Post (\"Arrived at the sorting centre\") and should arrive "
                    "by 2026-01-17. Tracking number: CP482913374IE.",
                    false);
    json_decref (tracked);

    /* every template in the file renders from the demo's evidence (a new one needs evidence here) */
    for (size_t i = 0; i < responder_templates_size (templates); i++) {
        const char *name = responder_templates_name (templates, i);
        json_t *context = s_context ("unknown", all, NULL, name, "answer");
        const char *used;
        char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL);
        cv_assert_that (!(!reply || strcmp (used, name) != 0),
                        "responder_templates: demo template %s did not render from the demo evidence (%s)", name,
                        used ? used : "nothing");
        free (reply);
        json_decref (context);
    }

    json_decref (all);
    responder_templates_destroy (&templates);
}

static void
s_test_ladder (void)
{
    cv_error_t err;
    responder_templates_t *templates = s_parse ("templates:\n"
                                                "  card_rule: >-\n"
                                                "    Card ending {{evidence.cards.0.last4}}\n"
                                                "    is frozen.\n"
                                                "  freeze_card: Your card is frozen.\n"
                                                "  escalate: 'Passed on: {{decision.reason}}'\n"
                                                "  fallback: A colleague will reply.\n",
                                                &err);
    assert (templates);
    assert (responder_templates_size (templates) == 4);
    assert (strcmp (responder_templates_name (templates, 0), "card_rule") == 0);
    assert (strcmp (responder_templates_name (templates, 3), "fallback") == 0);
    assert (!responder_templates_name (templates, 4));
    assert (strcmp (responder_templates_text (templates, "freeze_card"), "Your card is frozen.") == 0);
    assert (!responder_templates_text (templates, "nope"));

    /* rule: the deciding policy's own template */
    json_t *context =
        json_pack ("{s:s, s:{s:[{s:s}]}, s:{s:s, s:s, s:s}}", "user_id", "cust-1", "evidence", "cards", "last4", "4417",
                   "decision", "rule", "card_rule", "outcome", "freeze_card", "reason", "");
    s_expect_reply (templates, context, "card_rule", "Card ending 4417 is frozen.", false);

    /* outcome: the rule's template has a placeholder without a value */
    json_object_set_new (context, "evidence", json_object ());
    s_expect_reply (templates, context, "freeze_card", "Your card is frozen.", false);

    /* outcome: no template for the rule, or no rule at all */
    json_object_set_new (json_object_get (context, "decision"), "rule", json_string ("other_rule"));
    s_expect_reply (templates, context, "freeze_card", "Your card is frozen.", false);
    json_object_set_new (json_object_get (context, "decision"), "rule", json_string (""));
    s_expect_reply (templates, context, "freeze_card", "Your card is frozen.", false);

    /* fallback: neither rule nor outcome has a template */
    json_object_set_new (json_object_get (context, "decision"), "outcome", json_string ("answer"));
    s_expect_reply (templates, context, "fallback", "A colleague will reply.", false);

    /* fallback: the outcome's template cannot fill in (empty reason is a value; a missing one is not) */
    json_object_set_new (json_object_get (context, "decision"), "outcome", json_string ("escalate"));
    s_expect_reply (templates, context, "escalate", "Passed on:", false);
    json_object_del (json_object_get (context, "decision"), "reason");
    s_expect_reply (templates, context, "fallback", "A colleague will reply.", false);

    /* fallback: no decision in the context */
    json_object_del (context, "decision");
    s_expect_reply (templates, context, "fallback", "A colleague will reply.", false);

    /* a rung whose reply the guardrails refuse passes to the next */
    json_object_set_new (context, "decision",
                         json_pack ("{s:s, s:s, s:s}", "rule", "card_rule", "outcome", "escalate", "reason",
                                    "Traceback (most recent call last)"));
    json_object_set_new (context, "evidence", json_pack ("{s:[{s:s}]}", "cards", "last4", "{{user_id}}"));
    s_expect_reply (templates, context, "fallback", "A colleague will reply.", false);

    /* newlines and runs of space from values collapse; an over-long reply is cut to the limit */
    json_object_set_new (json_object_get (context, "decision"), "reason", json_string ("the card\nwas\t\tlost "));
    s_expect_reply (templates, context, "escalate", "Passed on: the card was lost", false);
    char *long_reason = cv_malloc (3 * CV_REPLY_MAX_BYTES + 1);
    for (size_t i = 0; i < CV_REPLY_MAX_BYTES; i++)
        memcpy (long_reason + 3 * i, "\xe2\x82\xac", 3); /* € */
    long_reason[3 * CV_REPLY_MAX_BYTES] = '\0';
    json_object_set_new (json_object_get (context, "decision"), "reason", json_string (long_reason));
    free (long_reason);
    const char *used;
    char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL);
    assert (reply && strcmp (used, "escalate") == 0);
    assert (strlen (reply) <= CV_REPLY_MAX_BYTES && strlen (reply) > CV_REPLY_MAX_BYTES - 3);
    assert (cv_utf8_valid (reply, strlen (reply)));
    free (reply);

    /* logging which rung answered does not change the answer */
    cv_log_t *log = cv_log_new ("responder", "selftest", false);
    json_object_set_new (json_object_get (context, "decision"), "reason", json_string ("lost"));
    reply = responder_templates_render (templates, context, &used, log, "req-1", NULL);
    assert (reply && strcmp (reply, "Passed on: lost") == 0);
    free (reply);
    cv_log_destroy (&log);
    json_decref (context);
    responder_templates_destroy (&templates);
    responder_templates_destroy (&templates);
}

static void
s_test_config_errors (void)
{
    s_expect_config_error ("agent: x\n", "agent.yaml:1: templates: is required");
    s_expect_config_error ("templates: [a, b]\n", "agent.yaml:1: templates: must be a map");
    s_expect_config_error ("templates:\n  fine: Hello.\n", "agent.yaml:2: templates.fallback: is required");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  'bad name': Hello.\n",
                           "agent.yaml:3: templates.bad name: a template name must be");
    s_expect_config_error (
        "templates:\n  fallback: Hi.\n  a_name_that_is_far_too_long_to_travel_as_reply_template_on_the_wire: x\n",
        "a template name must be 1..64");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  listy: [a, b]\n",
                           "agent.yaml:3: templates.listy: must be a string");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  empty: ''\n",
                           "agent.yaml:3: templates.empty: must not be empty");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  open: >-\n    Hello\n    {{user_id\n",
                           "agent.yaml:4: templates.open: placeholder at offset 6 is not closed");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  odd: 'Hello {{user-id}}'\n",
                           "agent.yaml:3: templates.odd: placeholder {{user-id}} has a character outside");
    s_expect_config_error ("templates:\n  fallback: 'Hi {{user_id}}'\n",
                           "agent.yaml:2: templates.fallback: must have no placeholders");
    s_expect_config_error ("templates:\n  fallback: '   '\n",
                           "templates.fallback: the output guardrails would refuse it: reply is empty");
    s_expect_config_error ("templates:\n  fallback: 'ERROR: try later'\n",
                           "templates.fallback: the output guardrails would refuse it: reply contains \"ERROR:\"");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  leaky: 'Failed: {{x}} (SQLSTATE)'\n",
                           "agent.yaml:3: templates.leaky: the output guardrails would refuse it");
    s_expect_config_error ("templates:\n  fallback: Hi.\n  braces: 'Hello }} {{x}}'\n",
                           "templates.braces: the output guardrails");
}

void
responder_templates_test (bool verbose)
{
    s_test_ladder ();
    s_test_config_errors ();
    s_test_evidence ();
    s_test_demo (verbose);
    if (verbose)
        printf ("responder_templates: ok\n");
}
