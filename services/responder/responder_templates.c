/* The responder's reply templates and the ladder that picks one: rule, outcome, fallback, or, for a
   decision that acted, the templates for what became of its actions. */
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
#include "responder_steps.h"

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
    if (strncmp (name, RESPONDER_STATIC_PREFIX, strlen (RESPONDER_STATIC_PREFIX)) == 0 && strstr (text, "{{"))
        return cv_config_fail (agent, value, path, err,
                               "must have no placeholders: it is the intent's reply when no template for the "
                               "request renders");
    /* Fixed text the guardrails refuse would make the template useless on every request. */
    char *fixed = s_fixed_text (text);
    char *clean = responder_guard_clean (fixed, strlen (fixed) + 1, NULL, &inner);
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

/* decision.rule, decision.outcome or stopped from the context, or NULL. */
static const char *
s_decision_name (const json_t *context, const char *path)
{
    const char *name = json_string_value (cv_template_lookup (context, path));
    return name && *name ? name : NULL;
}

/* What became of the decision's actions: its actions_status, or NULL when it has none. A
   decision with actions whose results never reached the context is not_performed: nothing is
   known to have happened. */
static const char *
s_actions_status (const json_t *context)
{
    const char *status = s_decision_name (context, "decision.actions_status");
    if (status)
        return strcmp (status, "none") == 0 ? NULL : status;
    return json_array_size (cv_template_lookup (context, "decision.actions")) ? "not_performed" : NULL;
}

/* The longest rung name: a policy or outcome name, a dot and a status. */
#define S_RUNG_MAX (CV_NAME_MAX_BYTES + 32)

char *
responder_templates_render (const responder_templates_t *self, const json_t *context, const char **used,
                            responder_steps_t *steps, cv_log_t *log, const char *request_id, const char *trace_id)
{
    assert (self && context && used);
    const char *rule = s_decision_name (context, "decision.rule");
    const char *outcome = s_decision_name (context, "decision.outcome");
    const char *status = s_actions_status (context);
    const char *stopped = s_decision_name (context, "stopped");
    const char *failed_stage = s_decision_name (context, "failed_stage");
    const char *intent = s_decision_name (context, "intent.name");
    /* A decision that acted is answered only by templates written for what became of its actions:
       the plain rule and outcome templates could claim a change the bank did not make. */
    char rungs[4][S_RUNG_MAX];
    const char *rung_kinds[4];
    /* the ladder's rung each is, as the reply records it: a template for the request, but for two */
    Conveyor__V1__ReplyStep__Rung rung_steps[4] = {
        CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE, CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE,
        CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE, CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE};
    size_t rung_count = 0;
    if (stopped) {
        /* the request did not finish: no template written for a finished one may answer it; one
           stopped by a failed stage is told first what that stage could not do */
        if (failed_stage) {
            snprintf (rungs[rung_count], S_RUNG_MAX, "stopped.%s.%s", stopped, failed_stage);
            rung_kinds[rung_count++] = "stopped.reason.stage";
        }
        snprintf (rungs[rung_count], S_RUNG_MAX, "stopped.%s", stopped);
        rung_kinds[rung_count++] = "stopped.reason";
    } else if (status) {
        if (rule) {
            snprintf (rungs[rung_count], S_RUNG_MAX, "%s.%s", rule, status);
            rung_kinds[rung_count++] = "rule.status";
        }
        if (outcome) {
            snprintf (rungs[rung_count], S_RUNG_MAX, "%s.%s", outcome, status);
            rung_kinds[rung_count++] = "outcome.status";
        }
        snprintf (rungs[rung_count], S_RUNG_MAX, "actions.%s", status);
        rung_kinds[rung_count++] = "actions.status";
    } else {
        if (rule) {
            snprintf (rungs[rung_count], S_RUNG_MAX, "%s", rule);
            rung_kinds[rung_count++] = "rule";
        }
        if (outcome) {
            snprintf (rungs[rung_count], S_RUNG_MAX, "%s", outcome);
            rung_kinds[rung_count++] = "outcome";
        }
        if (intent) {
            snprintf (rungs[rung_count], S_RUNG_MAX, RESPONDER_STATIC_PREFIX "%s", intent);
            rung_steps[rung_count] = CONVEYOR__V1__REPLY_STEP__RUNG__STATIC;
            rung_kinds[rung_count++] = "static";
        }
    }
    snprintf (rungs[rung_count], S_RUNG_MAX, "%s", RESPONDER_FALLBACK);
    rung_steps[rung_count] = CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF;
    rung_kinds[rung_count++] = "fallback";
    assert (rung_count <= sizeof rungs / sizeof *rungs);

    char skipped[600] = "";
    size_t skipped_size = 0;
    *used = NULL;
    for (size_t rung = 0; rung < rung_count; rung++) {
        const char *name = rungs[rung];
        bool tried = false;
        for (size_t earlier = 0; earlier < rung && !tried; earlier++)
            tried = strcmp (rungs[earlier], name) == 0;
        if (tried)
            continue;
        cv_error_t err;
        char *clean = NULL;
        const char *refused_by = NULL;
        int index = s_find (self, name);
        if (index < 0)
            cv_error_set (&err, CV_ERR_INVALID, NULL, "no such template");
        else {
            char *raw = cv_template_render (self->texts[index], context, &err);
            if (raw) {
                clean = responder_guard_clean (raw, CV_REPLY_MAX_BYTES, &refused_by, &err);
                if (!clean && err.code != CV_ERR_INTERNAL)
                    cv_log_event (log, CV_LOG_WARN, request_id, trace_id,
                                  "template %s: rendered reply refused by the output guardrails: %s", name,
                                  err.message);
                free (raw);
            }
        }
        if (steps && index >= 0) { /* a template that is not there is no rung tried */
            responder_steps_add (steps, rung_steps[rung], name, clean ? NULL : err.message);
            if (refused_by)
                responder_steps_refused_by (steps, refused_by);
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
    char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL, NULL);
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

/* One action of a decision and what became of it: status done, refused or failed (the
   executor's), pending_approval or rejected (the orchestrator's, for an action that waits for a
   person) comes back as an ActionResult with result (a JSON object, the bank's answer; NULL for
   none) and reason; not_performed as no ActionResult at all. */
typedef struct {
    const char *kind;
    const char *status;
    const char *result;
    const char *reason;
} acted_t;

static Conveyor__V1__ActionResult__Outcome
s_outcome_of (const char *status)
{
    if (strcmp (status, "done") == 0)
        return CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
    if (strcmp (status, "refused") == 0)
        return CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED;
    if (strcmp (status, "pending_approval") == 0)
        return CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL;
    if (strcmp (status, "rejected") == 0)
        return CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED;
    assert (strcmp (status, "failed") == 0);
    return CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
}

/* A context as the responder builds it: protobuf Intent, Evidence (one ToolResult per tool in
   rows, msgpack rows as the gatherer sends them; failed lists tools that failed), Decision (with
   the one action acted describes, or none when acted is NULL), through cv_context_new, and the
   executor's results through cv_context_add_action_results. */
static json_t *
s_context (const char *intent_name, const json_t *rows, const char *failed, const char *rule, const char *outcome,
           const acted_t *acted)
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
    Conveyor__V1__ActionResult *action_result = NULL;
    if (acted) {
        Conveyor__V1__Action *action = cv_envelope_action_new (arena);
        char id[S_RUNG_MAX];
        snprintf (id, sizeof id, "%s.1", rule);
        action->id = cv_arena_strdup (arena, id);
        action->kind = (char *) acted->kind;
        json_t *params = json_object ();
        uint8_t *packed = cv_msgpack_pack (params, &action->params.len, &err);
        assert (packed);
        action->params.data = cv_arena_adopt (arena, packed, action->params.len);
        json_decref (params);
        decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
        decision->actions[0] = action;
        decision->n_actions = 1;
        if (strcmp (acted->status, "not_performed") != 0) {
            action_result = cv_envelope_action_result_new (arena);
            action_result->action_id = action->id;
            action_result->kind = action->kind;
            action_result->outcome = s_outcome_of (acted->status);
            action_result->reason = (char *) (acted->reason ? acted->reason : "");
            json_t *result = json_loads (acted->result ? acted->result : "{}", 0, NULL);
            assert (json_is_object (result));
            packed = cv_msgpack_pack (result, &action_result->result.len, &err);
            assert (packed);
            action_result->result.data = cv_arena_adopt (arena, packed, action_result->result.len);
            json_decref (result);
        }
    }
    json_t *context = cv_context_new ("cust-1", "the customer's words", intent, evidence, decision, &err);
    assert (context);
    assert (cv_context_add_action_results (context, &action_result, action_result ? 1 : 0, &err) == 0);
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
    json_t *context = s_context ("lost_or_stolen_card", rows, NULL, "card_frozen", "freeze_card", NULL);
    s_expect_reply (templates, context, "card_frozen", "I've frozen your card ending 4417.", false);
    json_decref (context);
    json_decref (rows);

    /* the gatherer's tool timed out: the policy's template cannot fill in, and there is no
       template named after the outcome, so the fallback answers */
    rows = s_rows_of (all, NULL);
    context = s_context ("lost_or_stolen_card", rows, "active_cards", "card_frozen", "freeze_card", NULL);
    s_expect_reply (templates, context, RESPONDER_FALLBACK, "A colleague will reply.", false);
    json_decref (context);
    json_decref (rows);

    /* a policy without a template of its own answers through the outcome's */
    rows = s_rows_of (all, NULL);
    context = s_context ("unknown", rows, NULL, "some_new_policy", "handoff", NULL);
    s_expect_reply (templates, context, "handoff", "A colleague will take this one.", false);
    json_decref (context);
    json_decref (rows);

    /* a value that would leak a database error out of a template is refused */
    rows = s_rows_of (all, "failed_topups");
    context = s_context ("top_up_failed", rows, NULL, "failed_topup", "answer", NULL);
    s_expect_reply (templates, context, "failed_topup", "did not go through: Declined by the card's bank.", true);
    json_decref (context);
    json_object_set_new (json_array_get (json_object_get (rows, "failed_topups"), 0), "failure_reason",
                         json_string ("ERROR: permission denied for table topups (SQLSTATE 42501)"));
    context = s_context ("top_up_failed", rows, NULL, "failed_topup", "answer", NULL);
    s_expect_reply (templates, context, RESPONDER_FALLBACK, "A colleague will reply.", false);
    json_decref (context);
    json_decref (rows);

    json_decref (all);
    responder_templates_destroy (&templates);
}

/* What the demo bank's write path (deploy/sql/migrations/0006_bank_write_path.sql) answers each
   acting policy of bank-agent.yaml, for the demo's evidence (s_demo_rows): its action's kind, the
   result when done, and the result and reason when refused. */
static const struct {
    const char *rule, *kind, *done, *refused, *refused_reason;
} s_demo_actions[] = {
    {"lost_card_freeze", "freeze_card", "{\"card_id\": \"card-1-1\", \"last4\": \"4417\", \"status\": \"frozen\"}",
     "{\"reason\": \"the card is frozen, not active\", \"card_id\": \"card-1-1\", \"last4\": \"4417\"}",
     "the card is frozen, not active"},
    {"charged_twice_refund", "refund_transaction",
     "{\"refund_id\": \"ref-1-1-8\", \"transaction_id\": \"tx-1-1-8\", \"amount\": \"18.90\", \"currency\": \"EUR\"}",
     "{\"reason\": \"the payment is refunded already\", \"transaction_id\": \"tx-1-1-8\"}",
     "the payment is refunded already"},
    {"refund_recent_payment", "refund_transaction",
     "{\"refund_id\": \"ref-1-1-9\", \"transaction_id\": \"tx-1-1-9\", \"amount\": \"23.47\", \"currency\": \"EUR\"}",
     "{\"reason\": \"the payment is older than 60 days\", \"transaction_id\": \"tx-1-1-9\"}",
     "the payment is older than 60 days"},
};
#define S_DEMO_ACTIONS (sizeof s_demo_actions / sizeof s_demo_actions[0])

/* A failed action's reason: internal, and never to be shown to the customer. */
#define S_FAILED_REASON "could not connect to server: Connection refused"
/* A rejected action's reason: the operator's note, for the bank, never for the customer. */
#define S_REJECTED_REASON "rejected by operator ops-7: customer flagged for review"
/* A waiting action's reason, as the orchestrator writes it. */
#define S_PENDING_REASON "waits for a person's approval"

/* What became of rule's action, as the demo bank answers it (or, waiting for approval or
   rejected, as the orchestrator says), in *acted: done, refused, failed, pending_approval,
   rejected or not_performed. A rule the table does not know gets an action of another kind,
   whose bank answer holds nothing a policy's own template could read. */
static void
s_demo_acted (const char *rule, const char *status, acted_t *acted)
{
    *acted = (acted_t){.kind = "some_kind", .status = status};
    if (strcmp (status, "refused") == 0)
        acted->reason = "the payment is refunded already";
    else if (strcmp (status, "failed") == 0)
        acted->reason = S_FAILED_REASON;
    else if (strcmp (status, "pending_approval") == 0)
        acted->reason = S_PENDING_REASON;
    else if (strcmp (status, "rejected") == 0)
        acted->reason = S_REJECTED_REASON;
    for (size_t i = 0; i < S_DEMO_ACTIONS; i++)
        if (strcmp (s_demo_actions[i].rule, rule) == 0) {
            acted->kind = s_demo_actions[i].kind;
            if (strcmp (status, "done") == 0)
                acted->result = s_demo_actions[i].done;
            else if (strcmp (status, "refused") == 0) {
                acted->result = s_demo_actions[i].refused;
                acted->reason = s_demo_actions[i].refused_reason;
            }
        }
}

/* The kind of the first action of the policy called rule in the agent's policies (as JSON), or
   NULL when it has none (or there is no such policy). */
static const char *
s_policy_action_kind (const json_t *policies, const char *rule)
{
    size_t index;
    json_t *policy;
    json_array_foreach (policies, index, policy) {
        if (strcmp (json_string_value (json_object_get (policy, "name")), rule) == 0)
            return json_string_value (
                json_object_get (json_array_get (json_object_get (policy, "actions"), 0), "kind"));
    }
    return NULL;
}

static const char *const s_statuses[] = {"done", "refused", "failed", "not_performed", "pending_approval", "rejected"};
#define S_STATUSES (sizeof s_statuses / sizeof s_statuses[0])

/* The status a template is named after ("lost_card_freeze.done": done), and the length of the
   name before it; NULL when the name ends in none. */
static const char *
s_status_of (const char *name, size_t *prefix_size)
{
    const char *dot = strrchr (name, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < S_STATUSES; i++)
        if (strcmp (dot + 1, s_statuses[i]) == 0) {
            *prefix_size = (size_t) (dot - name);
            return s_statuses[i];
        }
    return NULL;
}

/* The demo's own check: bank-agent.yaml's templates load, and each renders the demo's evidence as
   the demo's policies decide it and the demo bank answers their actions. */
static void
s_test_demo (bool verbose)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    cv_assert_that (agent, "responder_templates: %s", err.message);
    responder_templates_t *templates = responder_templates_new (agent, &err);
    cv_assert_that (templates, "responder_templates: the demo's templates do not load: %s", err.message);
    json_t *policies = cv_node_to_json (cv_node_get (cv_config_root (agent), "policies"));
    assert (json_is_array (policies));
    cv_config_destroy (&agent);
    assert (responder_templates_text (templates, RESPONDER_FALLBACK));
    json_t *all = s_demo_rows ();

    /* the table of the bank's answers is the agent file's: each acting policy is in it, with its kind */
    size_t index;
    json_t *policy;
    json_array_foreach (policies, index, policy) {
        const char *rule = json_string_value (json_object_get (policy, "name"));
        const char *kind = s_policy_action_kind (policies, rule);
        acted_t acted;
        s_demo_acted (rule, "done", &acted);
        cv_assert_that (!kind || strcmp (acted.kind, kind) == 0,
                        "responder_templates: policy %s acts (%s): s_demo_actions needs the bank's answers to it", rule,
                        kind);
    }

    for (size_t i = 0; i < S_DEMO_ACTIONS; i++) {
        const char *kind = s_policy_action_kind (policies, s_demo_actions[i].rule);
        cv_assert_that (kind && strcmp (kind, s_demo_actions[i].kind) == 0,
                        "responder_templates: s_demo_actions: policy %s does not act with %s in the agent file",
                        s_demo_actions[i].rule, s_demo_actions[i].kind);
    }

    /* each demo policy, with the evidence its intent gathers, as bank-agent.yaml decides it and
       (for one that acts) as the bank answers; a policy's own template for a status it lacks
       gives way to the generic one, and a failed action's reason is never shown */
    static const struct {
        const char *intent, *tool, *rule, *outcome, *status, *template_name, *expected;
        bool partial;
    } cases[] = {
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "done", "lost_card_freeze.done",
         "I'm sorry to hear that, Alex. I've frozen your card ending 4417, so nobody can pay with it. If you find it "
         "again, you can unfreeze it in the app under Cards; if not, you can order a replacement there.",
         false},
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "refused",
         "lost_card_freeze.refused",
         "I'm sorry to hear that, Alex. I couldn't freeze your card ending 4417: the card is frozen, not active. You "
         "can see the card's status, and order a replacement, in the app under Cards.",
         false},
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "failed", "lost_card_freeze.failed",
         "I'm sorry to hear that, Alex. I couldn't freeze your card ending 4417 just now. Please freeze it yourself "
         "at once in the app under Cards, so nobody can pay with it.",
         false},
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "not_performed",
         "actions.not_performed", "I couldn't do that for you just now.", true},
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible", "done",
         "charged_twice_refund.done",
         "You're right: Deliveroo charged you 18.90 EUR twice on 13 Jan 2026. I've refunded the second payment: "
         "18.90 EUR is on its way back to your account (refund reference ref-1-1-8).",
         false},
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible", "refused",
         "charged_twice_refund.refused",
         "Deliveroo charged you 18.90 EUR twice on 13 Jan 2026, but I couldn't refund the second payment: the "
         "payment is refunded already.",
         true},
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible", "failed",
         "charged_twice_refund.failed", "but I couldn't refund the second payment just now.", true},
        /* a refund over the approvals' amount waits for a colleague: not made yet, and the account
           will show the decision; rejected, nothing was refunded, and the reason is never shown */
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible",
         "pending_approval", "charged_twice_refund.pending_approval",
         "Deliveroo charged you 18.90 EUR twice on 13 Jan 2026. A colleague must approve refunding the second "
         "payment first, so it is not refunded yet. Once it is approved, you'll see the refund in the app; if it is "
         "not, nothing changes on your account.",
         false},
        {"transaction_charged_twice", "duplicate_payments", "charged_twice_refund", "refund_eligible", "rejected",
         "charged_twice_refund.rejected",
         "Deliveroo charged you 18.90 EUR twice on 13 Jan 2026, but the refund of the second payment was not "
         "approved (or the approval expired), so nothing was refunded. If it still looks wrong, contact us under "
         "Help in the app.",
         false},
        {"transaction_charged_twice", NULL, "charged_twice_none_found", "answer", NULL, "charged_twice_none_found",
         "I can't see a payment taken twice on your account.", true},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible", "done",
         "refund_recent_payment.done",
         "I've refunded your latest card payment, 23.47 EUR at Lidl on 14 Jan 2026: 23.47 EUR is on its way back to "
         "your account (refund reference ref-1-1-9).",
         false},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible", "refused",
         "refund_recent_payment.refused",
         "Your latest card payment is 23.47 EUR at Lidl on 14 Jan 2026, but I couldn't refund it: the payment is "
         "older than 60 days. You can ask Lidl for a refund to your card.",
         false},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible", "failed",
         "refund_recent_payment.failed", "I couldn't refund it just now;", true},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible", "pending_approval",
         "refund_recent_payment.pending_approval",
         "Your latest card payment is 23.47 EUR at Lidl on 14 Jan 2026. A colleague must approve its refund first, "
         "so it is not refunded yet. Once it is approved, you'll see the refund in the app; if it is not, nothing "
         "changes on your account.",
         false},
        {"request_refund", "refundable_payments", "refund_recent_payment", "refund_eligible", "rejected",
         "refund_recent_payment.rejected",
         "Your latest card payment is 23.47 EUR at Lidl on 14 Jan 2026. Its refund was not approved (or the "
         "approval expired), so nothing was refunded. If you'd like to talk it through, contact us under Help in "
         "the app.",
         false},
        /* a policy without templates of its own for them: the generic ones */
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "pending_approval",
         "actions.pending_approval",
         "A colleague must approve what you asked for first, so it is not done yet. Once it is approved, you'll see "
         "the change in the app; if it is not, nothing changes on your account.",
         false},
        {"lost_or_stolen_card", "active_cards", "lost_card_freeze", "freeze_card", "rejected", "actions.rejected",
         "What you asked for was not approved (or the approval expired), so nothing was changed. If you have "
         "questions, contact us under Help in the app.",
         false},
        {"card_payment_not_recognised", "recent_card_payments", "unrecognised_payment_review", "escalate", NULL,
         "unrecognised_payment_review", "Your most recent card payment is 14.20 EUR to Uber on 15 Jan 2026.", true},
        {"card_arrival", "cards_in_delivery", "card_on_its_way", "answer", NULL, "card_on_its_way",
         "Your new card ending 9052 is on its way and should arrive by Sunday 18 January. Tracking number: "
         "CP482913374IE.",
         false},
        {"pending_transfer", "pending_transfers", "transfer_pending", "answer", NULL, "transfer_pending",
         "Your transfer of 250.00 EUR to Sean Murphy is still being processed and should arrive by Friday 16 "
         "January.",
         false},
        {"top_up_failed", "failed_topups", "topup_failed", "answer", NULL, "topup_failed",
         "Your top-up of 200.00 EUR on 15 Jan 2026 did not go through: Declined by the issuing bank of the top-up "
         "card. No money was taken;",
         true},
        {"exchange_rate", "exchange_rates", "exchange_rates", "answer", NULL, "exchange_rates",
         "Today's rate: 1 EUR = 0.9350 CHF (as of 15 Jan 2026 11:00 UTC).", false},
        {"exchange_rate", "fx_rate", "fx_rate", "answer", NULL, "fx_rate",
         "Today's rate: 1 EUR = 1.16 USD (reference mid rate, 2026-01-15).", false},
        {"card_linking", "kb_answers", "kb_answer", "answer", NULL, "kb_answer",
         "From our help pages, \"Linking a card to your account\" says: \"...open the app, go to Cards, tap Link a "
         "card...\" "
         "If this does not answer your question, a colleague can: contact us under Help in the app.",
         false},
        {"unknown", NULL, "handoff", "handoff", NULL, "handoff",
         "Thanks for your message. I can't answer this one reliably myself; a colleague can: contact us under Help "
         "in the app.",
         false},
    };
    size_t case_count = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < case_count; i++) {
        /* the case's policy acts exactly when the agent file says it does */
        const char *kind = s_policy_action_kind (policies, cases[i].rule);
        cv_assert_that (!kind == !cases[i].status, "responder_templates: demo case %s: the policy %s", cases[i].rule,
                        kind ? "acts" : "does not act");
        acted_t acted;
        if (cases[i].status)
            s_demo_acted (cases[i].rule, cases[i].status, &acted);
        json_t *rows = s_rows_of (all, cases[i].tool);
        json_t *context =
            s_context (cases[i].intent, rows, NULL, cases[i].rule, cases[i].outcome, cases[i].status ? &acted : NULL);
        s_expect_reply (templates, context, cases[i].template_name, cases[i].expected, cases[i].partial);
        json_decref (context);
        json_decref (rows);
        if (verbose)
            printf ("  demo template %s: ok\n", cases[i].template_name);
    }

    /* a policy that reads two tools: the card active_cards found, and card_payments on it */
    json_t *both = s_context ("compromised_card", all, NULL, "compromised_card_payments", "answer", NULL);
    s_expect_reply (templates, both, "compromised_card_payments",
                    "The latest payment on your card ending 4417 is 14.20 EUR at Uber on 15 Jan 2026.", true);
    json_decref (both);
    /* ... and one that reads what the card tracker said about the card the bank's data found */
    json_t *tracked = s_context ("card_arrival", all, NULL, "card_tracked", "answer", NULL);
    s_expect_reply (templates, tracked, "card_tracked",
                    "Your new card ending 9052 is with An Post (\"Arrived at the sorting centre\") and should arrive "
                    "by 2026-01-17. Tracking number: CP482913374IE.",
                    false);
    json_decref (tracked);

    /* every template in the file renders from the demo's evidence (a new one needs evidence here):
       one named after a status, for a decision whose action the bank answered so; a policy's own
       is for a policy that acts (no other decision would use it), and never shows a failed
       action's reason */
    for (size_t i = 0; i < responder_templates_size (templates); i++) {
        const char *name = responder_templates_name (templates, i);
        size_t prefix_size = 0;
        const char *status = s_status_of (name, &prefix_size);
        char rule[S_RUNG_MAX];
        snprintf (rule, sizeof rule, "%.*s", (int) (status ? prefix_size : strlen (name)), name);
        acted_t acted;
        if (status) {
            s_demo_acted (rule, status, &acted);
            cv_assert_that (strcmp (rule, "actions") == 0 || s_policy_action_kind (policies, rule),
                            "responder_templates: template %s is for the actions of %s, which has none", name, rule);
        } else
            cv_assert_that (!s_policy_action_kind (policies, rule),
                            "responder_templates: template %s is never used: policy %s acts, and is answered by "
                            "%s.done, .refused, .failed, .not_performed, .pending_approval or .rejected",
                            name, rule, rule);
        json_t *context = s_context ("unknown", all, NULL, rule, "answer", status ? &acted : NULL);
        const char *used;
        char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL, NULL);
        cv_assert_that (!(!reply || strcmp (used, name) != 0),
                        "responder_templates: demo template %s did not render from the demo evidence (%s)", name,
                        used ? used : "nothing");
        assert (!strstr (reply, S_FAILED_REASON) && !strstr (reply, S_REJECTED_REASON));
        /* waiting or rejected, nothing is done: no reply says a refund is made */
        if (status && (strcmp (status, "pending_approval") == 0 || strcmp (status, "rejected") == 0))
            cv_assert_that (!strstr (reply, "I've refunded") && !strstr (reply, "on its way back"),
                            "responder_templates: %s claims a refund: %s", name, reply);
        free (reply);
        json_decref (context);
    }

    json_decref (policies);
    json_decref (all);
    responder_templates_destroy (&templates);
}

/* The ladder of a decision with actions: `<rule>.<status>`, `<outcome>.<status>`,
   `actions.<status>`, then fallback; the plain rule and outcome templates are never used. */
static void
s_test_action_rungs (void)
{
    cv_error_t err;
    responder_templates_t *templates =
        s_parse ("templates:\n"
                 "  card_rule: Card rule, before acting.\n"
                 "  card_rule.done: 'Rule done: card {{decision.actions.0.result.last4}} frozen.'\n"
                 "  card_rule.refused: 'Rule refused: {{decision.actions.0.reason}}.'\n"
                 "  card_rule.failed: 'Rule failed for card {{evidence.active_cards.0.last4}}.'\n"
                 "  card_rule.not_performed: Rule not performed.\n"
                 "  freeze_card: Outcome, before acting.\n"
                 "  freeze_card.done: Outcome done.\n"
                 "  freeze_card.refused: 'Outcome refused: {{decision.actions.0.reason}}.'\n"
                 "  actions.done: Actions done.\n"
                 "  actions.refused: 'Actions refused: {{decision.actions.0.reason}}.'\n"
                 "  actions.failed: Actions failed.\n"
                 "  actions.not_performed: Actions not performed.\n"
                 "  fallback: Fallback.\n",
                 &err);
    cv_assert_that (templates, "responder_templates: %s", err.message);
    json_t *rows = json_loads ("{\"active_cards\": [{\"id\": \"card-7\", \"last4\": \"4417\"}]}", 0, NULL);
    json_t *no_rows = json_object ();
    static const acted_t done = {"freeze_card", "done", "{\"card_id\": \"card-7\", \"last4\": \"4417\"}", NULL};
    static const acted_t done_bare = {"freeze_card", "done", NULL, NULL};
    static const acted_t refused = {"freeze_card", "refused", "{\"reason\": \"the card is frozen, not active\"}",
                                    "the card is frozen, not active"};
    static const acted_t failed = {"freeze_card", "failed", NULL, "canceling statement due to statement timeout"};
    static const acted_t not_performed = {"freeze_card", "not_performed", NULL, NULL};
    static const struct {
        const char *rule, *outcome;
        bool with_rows;
        const acted_t *acted;
        const char *template_name, *expected;
    } cases[] = {
        /* each status reaches the rule's template for it, which reads the bank's answer */
        {"card_rule", "freeze_card", true, &done, "card_rule.done", "Rule done: card 4417 frozen."},
        {"card_rule", "freeze_card", true, &refused, "card_rule.refused",
         "Rule refused: the card is frozen, not active."},
        {"card_rule", "freeze_card", true, &failed, "card_rule.failed", "Rule failed for card 4417."},
        {"card_rule", "freeze_card", true, &not_performed, "card_rule.not_performed", "Rule not performed."},
        /* no rule template for the status, or one that cannot fill in: the outcome's for it */
        {"other_rule", "freeze_card", true, &done, "freeze_card.done", "Outcome done."},
        {"card_rule", "freeze_card", true, &done_bare, "freeze_card.done", "Outcome done."},
        {"", "freeze_card", true, &refused, "freeze_card.refused", "Outcome refused: the card is frozen, not active."},
        /* ... nor an outcome template for it: the generic one */
        {"card_rule", "freeze_card", false, &failed, "actions.failed", "Actions failed."},
        {"other_rule", "freeze_card", true, &not_performed, "actions.not_performed", "Actions not performed."},
        {"other_rule", "escalate", true, &done, "actions.done", "Actions done."},
        {"other_rule", "escalate", true, &refused, "actions.refused",
         "Actions refused: the card is frozen, not active."},
        /* a rule named like the generic templates: each name is tried once */
        {"actions", "actions", true, &done, "actions.done", "Actions done."},
        /* without actions, the ladder of old: the rule's template, then the outcome's */
        {"card_rule", "freeze_card", true, NULL, "card_rule", "Card rule, before acting."},
        {"other_rule", "freeze_card", true, NULL, "freeze_card", "Outcome, before acting."},
        {"other_rule", "answer", true, NULL, RESPONDER_FALLBACK, "Fallback."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *context = s_context ("lost_or_stolen_card", cases[i].with_rows ? rows : no_rows, NULL, cases[i].rule,
                                     cases[i].outcome, cases[i].acted);
        s_expect_reply (templates, context, cases[i].template_name, cases[i].expected, false);
        json_decref (context);
    }
    responder_templates_destroy (&templates);

    /* with no template for what became of the actions, the fallback answers: never the plain
       rule or outcome template, which was written as though the action had happened */
    templates = s_parse ("templates:\n"
                         "  card_rule: Card rule, before acting.\n"
                         "  card_rule.done: 'Rule done: card {{decision.actions.0.result.last4}} frozen.'\n"
                         "  freeze_card: Outcome, before acting.\n"
                         "  fallback: Fallback.\n",
                         &err);
    assert (templates);
    static const acted_t *const fall[] = {&done_bare, &refused, &failed, &not_performed};
    for (size_t i = 0; i < sizeof fall / sizeof fall[0]; i++) {
        json_t *context = s_context ("lost_or_stolen_card", rows, NULL, "card_rule", "freeze_card", fall[i]);
        s_expect_reply (templates, context, RESPONDER_FALLBACK, "Fallback.", false);
        json_decref (context);
    }
    /* a decision with actions whose results never reached the context: not performed, not the
       plain rule template */
    json_t *context = json_pack ("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "decision", "rule", "card_rule", "outcome",
                                 "freeze_card", "actions", "id", "card_rule.1", "kind", "freeze_card");
    s_expect_reply (templates, context, RESPONDER_FALLBACK, "Fallback.", false);
    /* ... and the same decision when the results say it has no actions */
    json_object_set_new (json_object_get (context, "decision"), "actions", json_array ());
    json_object_set_new (json_object_get (context, "decision"), "actions_status", json_string ("none"));
    s_expect_reply (templates, context, "card_rule", "Card rule, before acting.", false);
    /* the rung that answered is logged; logging does not change the answer */
    cv_log_t *log = cv_log_new ("responder", "selftest", false);
    json_object_set_new (json_object_get (context, "decision"), "actions_status", json_string ("done"));
    const char *used;
    char *reply = responder_templates_render (templates, context, &used, NULL, log, "req-1", NULL);
    assert (reply && strcmp (used, RESPONDER_FALLBACK) == 0);
    free (reply);
    cv_log_destroy (&log);
    json_decref (context);
    responder_templates_destroy (&templates);
    json_decref (no_rows);
    json_decref (rows);
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
    char *reply = responder_templates_render (templates, context, &used, NULL, NULL, NULL, NULL);
    assert (reply && strcmp (used, "escalate") == 0);
    assert (strlen (reply) <= CV_REPLY_MAX_BYTES && strlen (reply) > CV_REPLY_MAX_BYTES - 3);
    assert (cv_utf8_valid (reply, strlen (reply)));
    free (reply);

    /* logging which rung answered does not change the answer */
    cv_log_t *log = cv_log_new ("responder", "selftest", false);
    json_object_set_new (json_object_get (context, "decision"), "reason", json_string ("lost"));
    reply = responder_templates_render (templates, context, &used, NULL, log, "req-1", NULL);
    assert (reply && strcmp (reply, "Passed on: lost") == 0);
    free (reply);
    cv_log_destroy (&log);
    json_decref (context);
    responder_templates_destroy (&templates);
    responder_templates_destroy (&templates);
}

/* The rungs tried are recorded: each template there was, with why it did not render, down to the
   one that did; the intent's static text before the hand-off, for a request that did not act. */
static void
s_test_steps (void)
{
    cv_error_t err;
    responder_templates_t *templates = s_parse ("templates:\n"
                                                "  card_rule: 'Card ending {{evidence.cards.0.last4}}.'\n"
                                                "  freeze_card: 'Frozen: {{decision.reason}}'\n"
                                                "  static.card_arrival: New cards arrive within five working days.\n"
                                                "  actions.done: Done.\n"
                                                "  fallback: A colleague will reply.\n",
                                                &err);
    assert (templates);
    json_t *context = json_pack ("{s:{s:s}, s:{s:s, s:s}}", "intent", "name", "card_arrival", "decision", "rule",
                                 "card_rule", "outcome", "freeze_card");
    responder_steps_t steps = {0};
    const char *used;
    char *reply = responder_templates_render (templates, context, &used, &steps, NULL, NULL, NULL);
    assert (reply && strcmp (used, "static.card_arrival") == 0);
    assert (steps.count == 3);
    assert (steps.steps[0].rung == CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE
            && strcmp (steps.steps[0].name, "card_rule") == 0 && strstr (steps.steps[0].skipped, "last4"));
    assert (strcmp (steps.steps[1].name, "freeze_card") == 0 && strstr (steps.steps[1].skipped, "reason"));
    assert (steps.steps[2].rung == CONVEYOR__V1__REPLY_STEP__RUNG__STATIC && !*steps.steps[2].skipped);
    free (reply);

    /* another intent has no static text: the hand-off */
    json_object_set_new (json_object_get (context, "intent"), "name", json_string ("card_linking"));
    steps = (responder_steps_t){0};
    reply = responder_templates_render (templates, context, &used, &steps, NULL, NULL, NULL);
    assert (reply && strcmp (used, RESPONDER_FALLBACK) == 0 && steps.count == 3);
    assert (steps.steps[2].rung == CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF && !*steps.steps[2].skipped);
    free (reply);

    /* a decision that acted never gets the static text: it cannot tell what the actions did */
    json_object_set_new (json_object_get (context, "intent"), "name", json_string ("card_arrival"));
    json_object_set_new (json_object_get (context, "decision"), "actions",
                         json_pack ("[{s:s, s:s}]", "kind", "freeze_card", "status", "failed"));
    json_object_set_new (json_object_get (context, "decision"), "actions_status", json_string ("failed"));
    steps = (responder_steps_t){0};
    reply = responder_templates_render (templates, context, &used, &steps, NULL, NULL, NULL);
    assert (reply && strcmp (used, RESPONDER_FALLBACK) == 0);
    assert (steps.count == 1 && steps.steps[0].rung == CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF);
    free (reply);

    /* the first rung that renders is the only step */
    json_object_set_new (json_object_get (context, "decision"), "actions_status", json_string ("done"));
    steps = (responder_steps_t){0};
    reply = responder_templates_render (templates, context, &used, &steps, NULL, NULL, NULL);
    assert (reply && strcmp (used, "actions.done") == 0 && steps.count == 1);
    assert (steps.steps[0].rung == CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE);
    free (reply);
    json_decref (context);
    responder_templates_destroy (&templates);

    /* a static text may hold no placeholder: it must answer every request of its intent */
    s_expect_config_error ("templates:\n"
                           "  static.card_arrival: 'Card {{evidence.cards.0.last4}}'\n"
                           "  fallback: A colleague will reply.\n",
                           "templates.static.card_arrival: must have no placeholders");
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

/* A request stopped early is answered by `stopped.<reason>` (first `stopped.<reason>.<stage>`
   when a stage failed), else the fallback, whatever its decision and actions would have chosen. */
static void
s_test_stopped (void)
{
    cv_error_t err;
    responder_templates_t *templates = s_parse ("templates:\n"
                                                "  card_rule: Card rule.\n"
                                                "  actions.done: Actions done.\n"
                                                "  stopped.over_budget: Over budget.\n"
                                                "  stopped.stage_failed.gather: No look-up.\n"
                                                "  stopped.stage_failed: A stage failed.\n"
                                                "  fallback: Fallback.\n",
                                                &err);
    cv_assert_that (templates, "responder_templates: %s", err.message);
    static const struct {
        const char *context, *template_name;
    } cases[] = {
        {"{\"stopped\": \"over_budget\", \"intent\": {\"name\": \"card_arrival\"}}", "stopped.over_budget"},
        {"{\"stopped\": \"over_budget\", \"decision\": {\"rule\": \"card_rule\", \"actions_status\": \"done\"}}",
         "stopped.over_budget"},
        {"{\"stopped\": \"out_of_attempts\", \"decision\": {\"rule\": \"card_rule\"}}", "fallback"},
        {"{\"stopped\": \"out_of_attempts\"}", "fallback"},
        {"{\"decision\": {\"rule\": \"card_rule\"}}", "card_rule"}, /* not stopped: as ever */
        {"{\"stopped\": \"stage_failed\", \"failed_stage\": \"gather\", \"intent\": {\"name\": \"card_arrival\"}}",
         "stopped.stage_failed.gather"},
        {"{\"stopped\": \"stage_failed\", \"failed_stage\": \"execute\", \"decision\": {\"rule\": \"card_rule\", "
         "\"actions\": [{\"kind\": \"freeze_card\"}]}}",
         "stopped.stage_failed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *context = json_loads (cases[i].context, 0, NULL);
        assert (context);
        const char *used = NULL;
        char *text = responder_templates_render (templates, context, &used, NULL, NULL, NULL, NULL);
        cv_assert_that (text && used && strcmp (used, cases[i].template_name) == 0, "case %zu: %s, not %s", i,
                        used ? used : "(none)", cases[i].template_name);
        free (text);
        json_decref (context);
    }
    responder_templates_destroy (&templates);
}

void
responder_templates_test (bool verbose)
{
    s_test_ladder ();
    s_test_steps ();
    s_test_stopped ();
    s_test_config_errors ();
    s_test_evidence ();
    s_test_action_rungs ();
    s_test_demo (verbose);
    if (verbose)
        printf ("responder_templates: ok\n");
}
