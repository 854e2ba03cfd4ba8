/* The agent file's `policies` section, read and validated into plain data. */
#include "decision_rules.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"
#include "cv_msgpack.h"
#include "cv_template.h"

static const char *const s_policy_keys[] = {"name", "intent", "when", "outcome", "reason", "actions", NULL};
static const char *const s_when_keys[] = {"has_rows", "no_rows", "failed", "checks", NULL};
static const char *const s_action_keys[] = {"kind", "params", NULL};
/* In decision_check_op_t's order. */
static const char *const s_check_ops[] = {"equals",      "not_equals",      "above", "at_least", "below",
                                          "at_most",     "between",         "in",    "not_in",   "present",
                                          "within_days", "older_than_days", NULL};
/* What a check's value may start with: the parts of a decision's context (common/cv_context.h). */
static const char *const s_value_roots[] = {"user_id", "text", "intent", "evidence", "tools", NULL};

#define S_VALUE_MAX_BYTES 127 /* as cv_template's paths */
#define S_DAYS_MAX 36500      /* a hundred years */

/*  --------------------------------------------------------------------------
    Values */

bool
decision_value_number (const json_t *value, double *out)
{
    if (json_is_number (value)) {
        *out = json_number_value (value);
        return true;
    }
    const char *text = json_string_value (value);
    if (!text)
        return false;
    const char *c = text;
    if (*c == '-' || *c == '+')
        c++;
    size_t digits = 0;
    while (*c >= '0' && *c <= '9')
        c++, digits++;
    if (*c == '.') {
        c++;
        while (*c >= '0' && *c <= '9')
            c++, digits++;
    }
    if (digits == 0 || *c)
        return false;
    *out = strtod (text, NULL);
    return isfinite (*out);
}

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

const char *
decision_check_op_name (decision_check_op_t op)
{
    assert (op <= DECISION_CHECK_OLDER_THAN_DAYS);
    return s_check_ops[op];
}

/* Why path is not a context path a check can read, or NULL when it is one. */
static const char *
s_value_path_problem (const char *path, cv_node_t *tools, char *why, size_t size)
{
    size_t length = strlen (path);
    if (length == 0 || length > S_VALUE_MAX_BYTES) {
        snprintf (why, size, "must be a path of 1..%d bytes", S_VALUE_MAX_BYTES);
        return why;
    }
    for (const char *c = path; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'
              || *c == '.')) {
            snprintf (why, size, "'%s' has a character outside [A-Za-z0-9_.]", path);
            return why;
        }
    if (path[0] == '.' || path[length - 1] == '.' || strstr (path, "..")) {
        snprintf (why, size, "'%s' has an empty part", path);
        return why;
    }
    size_t root_length = strcspn (path, ".");
    bool known = false;
    for (size_t i = 0; s_value_roots[i] && !known; i++)
        known = strlen (s_value_roots[i]) == root_length && strncmp (path, s_value_roots[i], root_length) == 0;
    if (!known) {
        snprintf (why, size,
                  "'%s' is not in the decision's context: a path starts with user_id, text, intent (slots are "
                  "intent.slots.NAME), evidence or tools",
                  path);
        return why;
    }
    /* evidence.TOOL and tools.TOOL name one of the agent's tools, when the file lists them. */
    if (tools && (strncmp (path, "evidence.", 9) == 0 || strncmp (path, "tools.", 6) == 0)) {
        const char *tool = strchr (path, '.') + 1;
        char name[S_VALUE_MAX_BYTES + 1];
        size_t tool_length = strcspn (tool, ".");
        memcpy (name, tool, tool_length);
        name[tool_length] = '\0';
        if (!cv_node_get (tools, name)) {
            snprintf (why, size, "'%s' names '%s', which is not one of the agent's tools", path, name);
            return why;
        }
    }
    return NULL;
}

static bool
s_is_scalar_operand (const json_t *operand)
{
    return json_is_string (operand) || json_is_number (operand) || json_is_boolean (operand);
}

/* Why operand does not suit op, or NULL when it does. */
static const char *
s_operand_problem (decision_check_op_t op, const json_t *operand, char *why, size_t size)
{
    switch (op) {
    case DECISION_CHECK_EQUALS:
    case DECISION_CHECK_NOT_EQUALS:
        return s_is_scalar_operand (operand) ? NULL : "must be a string, a number or true/false";
    case DECISION_CHECK_ABOVE:
    case DECISION_CHECK_AT_LEAST:
    case DECISION_CHECK_BELOW:
    case DECISION_CHECK_AT_MOST:
        return json_is_number (operand) ? NULL : "must be a number";
    case DECISION_CHECK_BETWEEN: {
        const json_t *lo = json_array_get (operand, 0), *hi = json_array_get (operand, 1);
        if (!json_is_array (operand) || json_array_size (operand) != 2 || !json_is_number (lo) || !json_is_number (hi))
            return "must be a list of two numbers, [lo, hi]";
        if (json_number_value (lo) > json_number_value (hi)) {
            snprintf (why, size, "[%.15g, %.15g] is empty: lo is above hi", json_number_value (lo),
                      json_number_value (hi));
            return why;
        }
        return NULL;
    }
    case DECISION_CHECK_IN:
    case DECISION_CHECK_NOT_IN: {
        if (!json_is_array (operand) || json_array_size (operand) == 0)
            return "must be a non-empty list of strings, numbers or true/false";
        size_t index;
        const json_t *item;
        json_array_foreach (operand, index, item)
            if (!s_is_scalar_operand (item)) {
                snprintf (why, size, "item %zu is not a string, a number or true/false", index);
                return why;
            }
        return NULL;
    }
    case DECISION_CHECK_PRESENT:
        return json_is_boolean (operand) ? NULL : "must be true or false";
    case DECISION_CHECK_WITHIN_DAYS:
    case DECISION_CHECK_OLDER_THAN_DAYS:
        if (!json_is_integer (operand) || json_integer_value (operand) < 0
            || json_integer_value (operand) > S_DAYS_MAX) {
            snprintf (why, size, "must be a whole number of days, 0..%d", S_DAYS_MAX);
            return why;
        }
        return NULL;
    }
    return "is not an operator";
}

static int
s_load_check (const cv_config_t *config, cv_node_t *node, decision_check_t *check, const char *path, cv_node_t *tools,
              cv_error_t *err)
{
    char full[400], why[300];
    if (!cv_node_is_map (node))
        return cv_config_fail (config, node, path, err, "must be a map {value: PATH, OPERATOR: OPERAND}");
    /* Keys first: a typo in an operator is named as such, not as a missing operator. */
    cv_node_t *op_node = NULL;
    for (size_t i = 0; i < cv_node_count (node); i++) {
        const char *key = cv_node_key (node, i);
        snprintf (full, sizeof full, "%s.%s", path, key ? key : "?");
        if (key && strcmp (key, "value") == 0)
            continue;
        size_t op = 0;
        while (s_check_ops[op] && (!key || strcmp (s_check_ops[op], key) != 0))
            op++;
        if (!s_check_ops[op])
            return cv_config_fail (config, s_at (cv_node_value (node, i), node), full, err,
                                   "unknown key: a check is {value: PATH} and one of equals, not_equals, above, "
                                   "at_least, below, at_most, between, in, not_in, present, within_days, "
                                   "older_than_days");
        if (op_node)
            return cv_config_fail (config, s_at (cv_node_value (node, i), node), full, err,
                                   "is a second operator, after %s: a check has exactly one", s_check_ops[check->op]);
        op_node = cv_node_value (node, i);
        check->op = (decision_check_op_t) op;
    }
    const char *value = NULL;
    if (cv_config_string (config, node, "value", path, true, &value, err))
        return -1;
    snprintf (full, sizeof full, "%s.value", path);
    if (s_value_path_problem (value, tools, why, sizeof why))
        return cv_config_fail (config, s_at (cv_node_get (node, "value"), node), full, err, "%s", why);
    if (!op_node)
        return cv_config_fail (config, node, path, err,
                               "has no operator: one of equals, not_equals, above, at_least, below, at_most, between, "
                               "in, not_in, present, within_days, older_than_days");
    json_t *operand = cv_node_to_json (op_node);
    assert (operand);
    snprintf (full, sizeof full, "%s.%s", path, s_check_ops[check->op]);
    const char *problem = s_operand_problem (check->op, operand, why, sizeof why);
    if (problem) {
        json_decref (operand);
        return cv_config_fail (config, s_at (op_node, node), full, err, "%s", problem);
    }
    check->value = s_strdup (value);
    check->operand = operand;
    return 0;
}

static int
s_load_checks (const cv_config_t *config, cv_node_t *when, decision_rule_t *policy, const char *when_path,
               cv_node_t *tools, cv_error_t *err)
{
    cv_node_t *checks = cv_node_get (when, "checks");
    if (!checks)
        return 0;
    char path[300];
    snprintf (path, sizeof path, "%s.checks", when_path);
    if (!cv_node_is_list (checks) || cv_node_count (checks) == 0)
        return cv_config_fail (config, s_at (checks, when), path, err,
                               "must be a non-empty list of {value: PATH, OPERATOR: OPERAND}");
    size_t count = cv_node_count (checks);
    policy->checks = cv_calloc (count, sizeof *policy->checks);
    for (size_t i = 0; i < count; i++) {
        char check_path[320];
        snprintf (check_path, sizeof check_path, "%s.%zu", path, i);
        if (s_load_check (config, cv_node_item (checks, i), &policy->checks[i], check_path, tools, err))
            return -1;
        policy->check_count++;
    }
    return 0;
}

static int
s_load_conditions (const cv_config_t *config, cv_node_t *policy_node, decision_rule_t *policy, const char *path,
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
                               "must name at least one condition (has_rows, no_rows, failed, checks)");
    for (decision_condition_kind_t kind = DECISION_CONDITION_HAS_ROWS; kind <= DECISION_CONDITION_FAILED; kind++) {
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
            decision_condition_t *grown =
                cv_realloc (policy->conditions, (policy->condition_count + 1) * sizeof *grown);
            policy->conditions = grown;
            policy->conditions[policy->condition_count].kind = kind;
            policy->conditions[policy->condition_count].tool = s_strdup (names[i]);
            policy->condition_count++;
        }
        free (names);
    }
    return s_load_checks (config, when, policy, when_path, tools, err);
}

static int
s_load_actions (const cv_config_t *config, cv_node_t *policy_node, decision_rule_t *policy, const char *path,
                cv_error_t *err)
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
s_load_policy (decision_rules_t *self, const cv_config_t *config, cv_node_t *node, size_t index, cv_node_t *tools,
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
        if (strcmp (self->items[i].name, name) == 0)
            return cv_config_fail (config, cv_node_get (node, "name"), path, err,
                                   "name '%s' is already used by policy %zu", name, i);
    decision_rule_t *policy = &self->items[self->count++];
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

bool
decision_rule_catches_all (const decision_rule_t *policy)
{
    assert (policy);
    return policy->intent_count == 0 && policy->condition_count == 0 && policy->check_count == 0;
}

decision_rules_t *
decision_rules_new (cv_config_t *config, cv_error_t *err)
{
    assert (config);
    decision_rules_t *self = cv_calloc (1, sizeof *self);
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
        self->items = cv_calloc (count, sizeof *self->items);
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = s_load_policy (self, config, cv_node_item (policies, i), i, tools, err);
        for (size_t i = 0; i + 1 < count && rc == 0; i++)
            if (decision_rule_catches_all (&self->items[i])) {
                char path[256];
                snprintf (path, sizeof path, "policies.%s", self->items[i].name);
                rc = cv_config_fail (config, cv_node_item (policies, i), path, err,
                                     "has no intent and no when, so it catches everything and must be the last policy");
            }
        if (rc == 0 && !decision_rule_catches_all (&self->items[count - 1]))
            rc = cv_config_fail (config, cv_node_item (policies, count - 1), "policies", err,
                                 "no catch-all: the last policy (%s) must have no intent and no when, so that every "
                                 "request gets a decision",
                                 self->items[count - 1].name);
    }
    if (rc)
        decision_rules_destroy (&self);
    return self;
}

void
decision_rules_destroy (decision_rules_t **self_p)
{
    assert (self_p);
    decision_rules_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        decision_rule_t *policy = &self->items[i];
        free (policy->name);
        for (size_t j = 0; j < policy->intent_count; j++)
            free (policy->intents[j]);
        free (policy->intents);
        for (size_t j = 0; j < policy->condition_count; j++)
            free (policy->conditions[j].tool);
        free (policy->conditions);
        for (size_t j = 0; j < policy->check_count; j++) {
            free (policy->checks[j].value);
            json_decref (policy->checks[j].operand);
        }
        free (policy->checks);
        free (policy->outcome);
        free (policy->reason);
        for (size_t j = 0; j < policy->action_count; j++) {
            free (policy->actions[j].kind);
            json_decref (policy->actions[j].params);
        }
        free (policy->actions);
    }
    free (self->items);
    free (self);
    *self_p = NULL;
}

/*  --------------------------------------------------------------------------
    Self-test: what a section becomes (decision_policy's self-test checks the errors) */

void
decision_rules_test (bool verbose)
{
    cv_error_t err;
    cv_config_t *config = cv_config_parse ("test.yaml",
                                           "tools:\n  cards: {kind: sql}\n  profile: {kind: sql}\n"
                                           "policies:\n"
                                           "  - name: lost\n"
                                           "    intent: [lost_or_stolen_card, card_arrival]\n"
                                           "    when: { has_rows: [cards, profile], failed: profile }\n"
                                           "    outcome: freeze_card\n"
                                           "    reason: frozen at once\n"
                                           "    actions:\n"
                                           "      - kind: freeze_card\n"
                                           "        params: { card_id: '{{evidence.cards.0.id}}', limit: 5 }\n"
                                           "      - kind: notify\n"
                                           "  - name: none_found\n"
                                           "    when: { no_rows: cards }\n"
                                           "    outcome: answer\n"
                                           "  - name: checked\n"
                                           "    when:\n"
                                           "      checks:\n"
                                           "        - {value: evidence.cards.0.amount, between: [1, 500]}\n"
                                           "        - {value: intent.slots.card_last4, present: true}\n"
                                           "        - {value: tools.profile.status, in: [ok, failed]}\n"
                                           "    outcome: answer\n"
                                           "  - name: rest\n"
                                           "    outcome: handoff\n",
                                           &err);
    assert (config);
    decision_rules_t *rules = decision_rules_new (config, &err);
    cv_assert_that (rules, "decision_rules: %s", err.message);
    cv_config_destroy (&config); /* the rules keep nothing of the document */
    assert (rules->count == 4);

    const decision_rule_t *lost = &rules->items[0];
    assert (strcmp (lost->name, "lost") == 0 && lost->intent_count == 2);
    assert (strcmp (lost->intents[0], "lost_or_stolen_card") == 0 && strcmp (lost->intents[1], "card_arrival") == 0);
    /* conditions by kind, then in the order the tools are listed */
    assert (lost->condition_count == 3);
    assert (lost->conditions[0].kind == DECISION_CONDITION_HAS_ROWS && strcmp (lost->conditions[0].tool, "cards") == 0);
    assert (lost->conditions[1].kind == DECISION_CONDITION_HAS_ROWS
            && strcmp (lost->conditions[1].tool, "profile") == 0);
    assert (lost->conditions[2].kind == DECISION_CONDITION_FAILED && strcmp (lost->conditions[2].tool, "profile") == 0);
    assert (strcmp (lost->outcome, "freeze_card") == 0 && strcmp (lost->reason, "frozen at once") == 0);
    assert (lost->action_count == 2 && strcmp (lost->actions[0].kind, "freeze_card") == 0);
    json_t *expected = json_pack ("{s:s, s:i}", "card_id", "{{evidence.cards.0.id}}", "limit", 5);
    assert (json_equal (lost->actions[0].params, expected)); /* kept as written: rendered when deciding */
    json_decref (expected);
    assert (strcmp (lost->actions[1].kind, "notify") == 0 && json_object_size (lost->actions[1].params) == 0);
    assert (!decision_rule_catches_all (lost));

    const decision_rule_t *none_found = &rules->items[1];
    assert (none_found->intent_count == 0 && none_found->condition_count == 1);
    assert (none_found->conditions[0].kind == DECISION_CONDITION_NO_ROWS);
    assert (strcmp (none_found->reason, "") == 0 && none_found->action_count == 0);
    assert (!decision_rule_catches_all (none_found) && none_found->check_count == 0);

    /* checks: the path, the operator, the operand as written */
    const decision_rule_t *checked = &rules->items[2];
    assert (checked->condition_count == 0 && checked->check_count == 3 && !decision_rule_catches_all (checked));
    assert (strcmp (checked->checks[0].value, "evidence.cards.0.amount") == 0);
    assert (checked->checks[0].op == DECISION_CHECK_BETWEEN);
    expected = json_pack ("[i, i]", 1, 500);
    assert (json_equal (checked->checks[0].operand, expected));
    json_decref (expected);
    assert (checked->checks[1].op == DECISION_CHECK_PRESENT && json_is_true (checked->checks[1].operand));
    assert (checked->checks[2].op == DECISION_CHECK_IN && json_array_size (checked->checks[2].operand) == 2);
    assert (strcmp (decision_check_op_name (DECISION_CHECK_OLDER_THAN_DAYS), "older_than_days") == 0);
    assert (strcmp (decision_check_op_name (DECISION_CHECK_EQUALS), "equals") == 0);
    assert (decision_rule_catches_all (&rules->items[3]));
    decision_rules_destroy (&rules);
    assert (!rules);
    decision_rules_destroy (&rules);

    /* a mistake names the file, the line and the key */
    config = cv_config_parse ("test.yaml", "policies:\n  - name: a\n    intent: x\n    outcome: answer\n", &err);
    assert (config);
    assert (!decision_rules_new (config, &err) && err.code == CV_ERR_INVALID);
    assert (strstr (err.message, "test.yaml:2: policies: no catch-all"));
    cv_config_destroy (&config);
    if (verbose)
        printf ("decision_rules: ok\n");
}
