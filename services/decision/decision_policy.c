/* The decision worker's policies: loaded and validated from the agent file, first that applies decides. */
#include "decision_policy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_msgpack.h"
#include "cv_template.h"

typedef enum {
    CONDITION_HAS_ROWS, /* the tool succeeded with at least one row */
    CONDITION_NO_ROWS,  /* the tool succeeded with none */
    CONDITION_FAILED    /* the tool failed or timed out */
} condition_kind_t;

typedef struct {
    condition_kind_t kind;
    char *tool;
} condition_t;

typedef struct {
    char *kind;
    json_t *params; /* an object; string values anywhere in it are templates */
} action_t;

typedef struct {
    char *name;
    char **intents; /* empty: any intent */
    size_t intent_count;
    condition_t *conditions;
    size_t condition_count;
    char *outcome;
    char *reason; /* "" when none */
    action_t *actions;
    size_t action_count;
} policy_t;

struct _decision_policy_t {
    policy_t *policies;
    size_t count;
    cv_log_t *log; /* borrowed, may be NULL */
};

static const char *const s_policy_keys[] = {"name", "intent", "when", "outcome", "reason", "actions", NULL};
static const char *const s_when_keys[] = {"has_rows", "no_rows", "failed", NULL};
static const char *const s_action_keys[] = {"kind", "params", NULL};

/*  --------------------------------------------------------------------------
    Loading and validation */

static size_t
s_digits (size_t number)
{
    size_t digits = 1;
    while (number >= 10) {
        number /= 10;
        digits++;
    }
    return digits;
}

static char *
s_strdup (const char *text)
{
    char *copy = cv_strdup (text ? text : "");
    return copy;
}

/* node, or fallback when node has no line of its own (cv_node_line gives none for an empty map
   or list), so that every error names a line. */
static cv_node_t *
s_at (cv_node_t *node, cv_node_t *fallback)
{
    return cv_node_line (node) ? node : fallback;
}

/* A required or optional wire name at map[key]; *out is borrowed from the document. */
static int
s_name (const cv_config_t *config, cv_node_t *map, const char *key, const char *path, bool required, const char **out,
        cv_error_t *err)
{
    if (cv_config_string (config, map, key, path, required, out, err))
        return -1;
    if (*out && !cv_name_valid (*out)) {
        char full[256];
        snprintf (full, sizeof full, "%s.%s", path, key);
        return cv_config_fail (config, cv_node_get (map, key), full, err, "'%s' is not 1..%d of " CV_NAME_CHARS, *out,
                               CV_NAME_MAX_BYTES);
    }
    return 0;
}

/* Checks every scalar under node as a template, naming the scalar's own path and line. */
static int
s_check_templates (const cv_config_t *config, cv_node_t *node, const char *path, cv_error_t *err)
{
    char child[256];
    if (cv_node_is_map (node)) {
        for (size_t i = 0; i < cv_node_count (node); i++) {
            snprintf (child, sizeof child, "%s.%s", path, cv_node_key (node, i) ? cv_node_key (node, i) : "?");
            if (s_check_templates (config, cv_node_value (node, i), child, err))
                return -1;
        }
    } else if (cv_node_is_list (node)) {
        for (size_t i = 0; i < cv_node_count (node); i++) {
            snprintf (child, sizeof child, "%s.%zu", path, i);
            if (s_check_templates (config, cv_node_item (node, i), child, err))
                return -1;
        }
    } else if (cv_node_text (node)) {
        cv_error_t reason;
        if (cv_template_check (cv_node_text (node), &reason))
            return cv_config_fail (config, node, path, err, "%s", reason.message);
    }
    return 0;
}

static int
s_load_conditions (const cv_config_t *config, cv_node_t *policy_node, policy_t *policy, const char *path,
                   cv_node_t *tools, cv_error_t *err)
{
    cv_node_t *when = cv_node_get (policy_node, "when");
    if (!when)
        return 0;
    char when_path[256];
    snprintf (when_path, sizeof when_path, "%s.when", path);
    if (cv_config_known_keys (config, when, when_path, s_when_keys, err))
        return -1;
    if (cv_node_count (when) == 0)
        return cv_config_fail (config, s_at (when, policy_node), when_path, err,
                               "must name at least one condition (has_rows, no_rows, failed)");
    for (condition_kind_t kind = CONDITION_HAS_ROWS; kind <= CONDITION_FAILED; kind++) {
        const char *key = s_when_keys[kind];
        const char **names = NULL;
        size_t count = 0;
        if (cv_config_strings (config, when, key, when_path, &names, &count, err))
            return -1;
        char full[300];
        snprintf (full, sizeof full, "%s.%s", when_path, key);
        cv_node_t *node = cv_node_get (when, key);
        if (node && count == 0) {
            free (names);
            return cv_config_fail (config, s_at (node, when), full, err, "must name at least one tool");
        }
        for (size_t i = 0; i < count; i++) {
            int rc = 0;
            if (!cv_name_valid (names[i]))
                rc = cv_config_fail (config, node, full, err, "'%s' is not a tool name", names[i]);
            else if (tools && !cv_node_get (tools, names[i]))
                rc = cv_config_fail (config, node, full, err, "'%s' is not one of the agent's tools", names[i]);
            if (rc) {
                free (names);
                return -1;
            }
            condition_t *grown = cv_realloc (policy->conditions, (policy->condition_count + 1) * sizeof *grown);
            policy->conditions = grown;
            policy->conditions[policy->condition_count].kind = kind;
            policy->conditions[policy->condition_count].tool = s_strdup (names[i]);
            policy->condition_count++;
        }
        free (names);
    }
    return 0;
}

static int
s_load_actions (const cv_config_t *config, cv_node_t *policy_node, policy_t *policy, const char *path, cv_error_t *err)
{
    cv_node_t *actions = cv_node_get (policy_node, "actions");
    if (!actions)
        return 0;
    char actions_path[256];
    snprintf (actions_path, sizeof actions_path, "%s.actions", path);
    if (!cv_node_is_list (actions))
        return cv_config_fail (config, actions, actions_path, err, "must be a list of {kind, params}");
    size_t count = cv_node_count (actions);
    if (count > CV_MAX_ACTIONS)
        return cv_config_fail (config, actions, actions_path, err, "has %zu actions, over the limit of %d", count,
                               CV_MAX_ACTIONS);
    /* Action ids "<policy>.<n>" must fit a name on the wire. */
    if (strlen (policy->name) + 1 + s_digits (count) > CV_NAME_MAX_BYTES)
        return cv_config_fail (config, actions, actions_path, err,
                               "the policy name is too long for its action ids (%d bytes at most)", CV_NAME_MAX_BYTES);
    policy->actions = cv_calloc (count ? count : 1, sizeof *policy->actions);
    for (size_t i = 0; i < count; i++) {
        cv_node_t *node = cv_node_item (actions, i);
        char action_path[300];
        snprintf (action_path, sizeof action_path, "%s.%zu", actions_path, i);
        if (cv_config_known_keys (config, node, action_path, s_action_keys, err))
            return -1;
        const char *kind = NULL;
        if (s_name (config, node, "kind", action_path, true, &kind, err))
            return -1;
        cv_node_t *params = cv_node_get (node, "params");
        char params_path[320];
        snprintf (params_path, sizeof params_path, "%s.params", action_path);
        if (params && !cv_node_is_map (params))
            return cv_config_fail (config, params, params_path, err, "must be a map of name to value");
        if (params && s_check_templates (config, params, params_path, err))
            return -1;
        json_t *value = params ? cv_node_to_json (params) : json_object ();
        assert (value);
        /* What cannot travel as msgpack now never will. */
        size_t size;
        cv_error_t reason;
        uint8_t *packed = cv_msgpack_pack (value, &size, &reason);
        if (!packed) {
            json_decref (value);
            return cv_config_fail (config, params, params_path, err, "%s", reason.message);
        }
        free (packed);
        policy->actions[i].kind = s_strdup (kind);
        policy->actions[i].params = value;
        policy->action_count++;
    }
    return 0;
}

static int
s_load_policy (decision_policy_t *self, const cv_config_t *config, cv_node_t *node, size_t index, cv_node_t *tools,
               cv_error_t *err)
{
    char path[256];
    snprintf (path, sizeof path, "policies.%zu", index);
    if (cv_config_known_keys (config, node, path, s_policy_keys, err))
        return -1;
    const char *name = NULL;
    if (s_name (config, node, "name", path, true, &name, err))
        return -1;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->policies[i].name, name) == 0)
            return cv_config_fail (config, cv_node_get (node, "name"), path, err,
                                   "name '%s' is already used by policy %zu", name, i);
    policy_t *policy = &self->policies[self->count++];
    policy->name = s_strdup (name);
    snprintf (path, sizeof path, "policies.%s", name);

    const char **intents = NULL;
    size_t count = 0;
    if (cv_config_strings (config, node, "intent", path, &intents, &count, err))
        return -1;
    char full[300];
    snprintf (full, sizeof full, "%s.intent", path);
    if (cv_node_get (node, "intent") && count == 0) {
        free (intents);
        return cv_config_fail (config, s_at (cv_node_get (node, "intent"), node), full, err,
                               "must name at least one intent");
    }
    policy->intents = cv_calloc (count ? count : 1, sizeof *policy->intents);
    for (size_t i = 0; i < count; i++) {
        if (!cv_name_valid (intents[i])) {
            cv_config_fail (config, cv_node_get (node, "intent"), full, err, "'%s' is not an intent name", intents[i]);
            free (intents);
            return -1;
        }
        policy->intents[policy->intent_count++] = s_strdup (intents[i]);
    }
    free (intents);

    if (s_load_conditions (config, node, policy, path, tools, err))
        return -1;
    const char *outcome = NULL, *reason = "";
    if (s_name (config, node, "outcome", path, true, &outcome, err)
        || cv_config_string (config, node, "reason", path, false, &reason, err))
        return -1;
    if (strlen (reason) > CV_DETAIL_MAX_BYTES) {
        snprintf (full, sizeof full, "%s.reason", path);
        return cv_config_fail (config, cv_node_get (node, "reason"), full, err, "is over the limit of %d bytes",
                               CV_DETAIL_MAX_BYTES);
    }
    policy->outcome = s_strdup (outcome);
    policy->reason = s_strdup (reason);
    return s_load_actions (config, node, policy, path, err);
}

static bool
s_is_catch_all (const policy_t *policy)
{
    return policy->intent_count == 0 && policy->condition_count == 0;
}

decision_policy_t *
decision_policy_new (cv_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    decision_policy_t *self = cv_calloc (1, sizeof *self);
    self->log = log;
    cv_node_t *root = cv_config_root (config);
    cv_node_t *policies = cv_node_get (root, "policies");
    /* Conditions name tools; when the file has a tools section, a typo there is caught here. */
    cv_node_t *tools = cv_node_get (root, "tools");
    if (tools && !cv_node_is_map (tools))
        tools = NULL;
    int rc = 0;
    if (!policies)
        rc = cv_config_fail (config, root, "policies", err, "is required");
    else if (!cv_node_is_list (policies) || cv_node_count (policies) == 0)
        rc = cv_config_fail (config, s_at (policies, root), "policies", err,
                             "must be a list of policies, the catch-all last");
    else {
        size_t count = cv_node_count (policies);
        self->policies = cv_calloc (count, sizeof *self->policies);
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = s_load_policy (self, config, cv_node_item (policies, i), i, tools, err);
        for (size_t i = 0; i + 1 < count && rc == 0; i++)
            if (s_is_catch_all (&self->policies[i])) {
                char path[256];
                snprintf (path, sizeof path, "policies.%s", self->policies[i].name);
                rc = cv_config_fail (config, cv_node_item (policies, i), path, err,
                                     "has no intent and no when, so it catches everything and must be the last policy");
            }
        if (rc == 0 && !s_is_catch_all (&self->policies[count - 1]))
            rc = cv_config_fail (config, cv_node_item (policies, count - 1), "policies", err,
                                 "no catch-all: the last policy (%s) must have no intent and no when, so that every "
                                 "request gets a decision",
                                 self->policies[count - 1].name);
    }
    if (rc)
        decision_policy_destroy (&self);
    return self;
}

void
decision_policy_destroy (decision_policy_t **self_p)
{
    assert (self_p);
    decision_policy_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        policy_t *policy = &self->policies[i];
        free (policy->name);
        for (size_t j = 0; j < policy->intent_count; j++)
            free (policy->intents[j]);
        free (policy->intents);
        for (size_t j = 0; j < policy->condition_count; j++)
            free (policy->conditions[j].tool);
        free (policy->conditions);
        free (policy->outcome);
        free (policy->reason);
        for (size_t j = 0; j < policy->action_count; j++) {
            free (policy->actions[j].kind);
            json_decref (policy->actions[j].params);
        }
        free (policy->actions);
    }
    free (self->policies);
    free (self);
    *self_p = NULL;
}

size_t
decision_policy_count (const decision_policy_t *self)
{
    assert (self);
    return self->count;
}

const char *
decision_policy_name (const decision_policy_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->policies[index].name : NULL;
}

const char *
decision_policy_catch_all (const decision_policy_t *self)
{
    assert (self && self->count > 0);
    return self->policies[self->count - 1].name;
}

/*  --------------------------------------------------------------------------
    Deciding */

static bool
s_intent_matches (const policy_t *policy, const char *intent)
{
    if (policy->intent_count == 0)
        return true;
    for (size_t i = 0; intent && i < policy->intent_count; i++)
        if (strcmp (policy->intents[i], intent) == 0)
            return true;
    return false;
}

static bool
s_condition_holds (const condition_t *condition, const json_t *context)
{
    const json_t *tool = json_object_get (json_object_get (context, "tools"), condition->tool);
    const char *status = json_string_value (json_object_get (tool, "status"));
    if (!status)
        return false; /* the tool did not run for this request */
    bool ok = strcmp (status, "ok") == 0;
    if (condition->kind == CONDITION_FAILED)
        return strcmp (status, "failed") == 0 || strcmp (status, "timed_out") == 0;
    if (!ok)
        return false;
    /* Rows are an array; a tool that returns one record returns an object; no data is {}. */
    const json_t *data = json_object_get (json_object_get (context, "evidence"), condition->tool);
    bool has_rows = json_is_array (data)    ? json_array_size (data) > 0
                    : json_is_object (data) ? json_object_size (data) > 0
                                            : data && !json_is_null (data);
    return condition->kind == CONDITION_HAS_ROWS ? has_rows : !has_rows;
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
s_render_actions (const policy_t *policy, const json_t *context, decision_result_t *result, cv_error_t *err)
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
    for (size_t i = 0; i < self->count; i++) {
        const policy_t *policy = &self->policies[i];
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

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

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

void
decision_policy_test (bool verbose)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new ("decision", "selftest", verbose);
    cv_config_t *config = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (config);
    decision_policy_t *policy = decision_policy_new (config, log, &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    cv_config_destroy (&config);
    assert (decision_policy_count (policy) == 11);
    assert (strcmp (decision_policy_name (policy, 0), "lost_card_freeze") == 0);
    assert (!decision_policy_name (policy, 11));
    assert (strcmp (decision_policy_catch_all (policy), "handoff") == 0);

    decision_result_t result;
    /* lost card with an active card: freeze it, params rendered from the evidence */
    s_expect (policy,
              s_context ("lost_or_stolen_card", "active_cards", "ok",
                         "[{\"id\": \"card-7\", \"last4\": \"4417\", \"status\": \"active\"}]"),
              "lost_card_freeze", "freeze_card", &result);
    assert (strcmp (result.reason, "a card reported lost or stolen is frozen at once") == 0);
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
    assert (strcmp (result.reason, "nothing more specific applies; a colleague takes over") == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("lost_or_stolen_card", "active_cards", "timed_out", NULL), "handoff", "handoff",
              &result);
    decision_result_reset (&result);

    /* charged twice: a duplicate found (has_rows) or not (no_rows) */
    s_expect (policy,
              s_context ("transaction_charged_twice", "duplicate_payments", "ok",
                         "[{\"id\": \"tx-2\", \"merchant\": \"Cafe\", \"amount\": \"3.20\", \"currency\": \"EUR\"}]"),
              "charged_twice_refund", "refund_eligible", &result);
    assert (result.action_count == 1 && strcmp (result.actions[0].kind, "issue_refund") == 0);
    assert (strcmp (result.actions[0].id, "charged_twice_refund.1") == 0);
    assert (strcmp (s_param (&result, 0, "transaction_id"), "tx-2") == 0);
    assert (strcmp (s_param (&result, 0, "amount"), "3.20") == 0);
    assert (strcmp (s_param (&result, 0, "currency"), "EUR") == 0);
    decision_result_reset (&result);
    s_expect (policy, s_context ("transaction_charged_twice", "duplicate_payments", "ok", "[]"),
              "charged_twice_none_found", "answer", &result);
    assert (result.action_count == 0);
    decision_result_reset (&result);
    /* an action whose template lacks data (no currency): that policy does not apply, the next is tried */
    s_expect (policy,
              s_context ("transaction_charged_twice", "duplicate_payments", "ok",
                         "[{\"id\": \"tx-2\", \"amount\": \"3.20\"}]"),
              "handoff", "handoff", &result);
    decision_result_reset (&result);

    /* the other demo policies, each for a representative context */
    static const struct {
        const char *intent, *tool, *rows, *rule, *outcome, *kind, *param, *value;
    } cases[] = {
        {"request_refund", "refundable_payments",
         "[{\"id\": \"tx-9\", \"merchant\": \"Shop\", \"amount\": \"25.00\", \"currency\": \"GBP\", "
         "\"day\": \"01 Mar 2025\"}]",
         "refund_recent_payment", "refund_eligible", "request_merchant_refund", "currency", "GBP"},
        {"card_payment_not_recognised", "recent_card_payments", "[{\"id\": \"tx-5\", \"amount\": \"9.99\"}]",
         "unrecognised_payment_review", "escalate", "open_dispute", "transaction_id", "tx-5"},
        {"card_arrival", "cards_in_delivery", "[{\"id\": \"card-2\", \"last4\": \"0042\"}]", "card_on_its_way",
         "answer", NULL, NULL, NULL},
        {"pending_transfer", "pending_transfers", "[{\"id\": \"tr-1\"}]", "transfer_pending", "answer", NULL, NULL,
         NULL},
        {"top_up_failed", "failed_topups", "[{\"id\": \"tp-1\"}]", "topup_failed", "answer", NULL, NULL, NULL},
        {"exchange_rate", "exchange_rates", "[{\"base\": \"EUR\", \"quote\": \"USD\", \"rate\": \"1.0841\"}]",
         "exchange_rates", "answer", NULL, NULL, NULL},
        {"exchange_rate", "exchange_rates", "[]", "handoff", "handoff", NULL, NULL, NULL},
        {"unknown", NULL, NULL, "handoff", "handoff", NULL, NULL, NULL},
        {"card_arrival", "active_cards", "[{\"id\": \"card-2\"}]", "handoff", "handoff", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_expect (policy, s_context (cases[i].intent, cases[i].tool, "ok", cases[i].rows), cases[i].rule,
                  cases[i].outcome, &result);
        if (verbose)
            printf ("  %-28s %-22s -> %s (%s)\n", cases[i].intent, cases[i].tool ? cases[i].tool : "-", result.rule,
                    result.outcome);
        assert (result.action_count == (cases[i].kind ? 1u : 0u));
        if (cases[i].kind) {
            assert (strcmp (result.actions[0].kind, cases[i].kind) == 0);
            assert (strcmp (s_param (&result, 0, cases[i].param), cases[i].value) == 0);
        }
        decision_result_reset (&result);
    }
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
