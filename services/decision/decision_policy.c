/* The decision worker's policies: the first that applies to a request decides its outcome and actions. */
#include "decision_policy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_context.h"
#include "cv_msgpack.h"
#include "cv_template.h"
#include "decision_approvals.h"
#include "decision_rules.h"

struct _decision_policy_t {
    decision_rules_t *rules;         /* the agent file's, the catch-all last */
    decision_approvals_t *approvals; /* which actions wait for a person */
    cv_log_t *log;                   /* borrowed, may be NULL */
};

decision_policy_t *
decision_policy_new (cv_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    decision_rules_t *rules = decision_rules_new (config, err);
    if (!rules)
        return NULL;
    decision_approvals_t *approvals = decision_approvals_new (config, err);
    if (!approvals) {
        decision_rules_destroy (&rules);
        return NULL;
    }
    decision_policy_t *self = cv_calloc (1, sizeof *self);
    self->rules = rules;
    self->approvals = approvals;
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
    decision_approvals_destroy (&self->approvals);
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

/* Whether condition holds; when not, why into failed ("has_rows active_cards: no rows"). */
static bool
s_condition_holds (const decision_condition_t *condition, const json_t *context, char *failed, size_t size)
{
    static const char *const names[] = {"has_rows", "no_rows", "failed"};
    const json_t *tool = json_object_get (json_object_get (context, "tools"), condition->tool);
    const char *status = json_string_value (json_object_get (tool, "status"));
    const char *why = NULL;
    bool has_rows = false;
    if (!status)
        why = "it did not run"; /* the tool did not run for this request */
    else if (condition->kind == DECISION_CONDITION_FAILED) {
        if (strcmp (status, "failed") != 0 && strcmp (status, "timed_out") != 0)
            why = "it did not fail";
    } else if (strcmp (status, "ok") != 0)
        why = strcmp (status, "timed_out") == 0 ? "it timed out" : "it failed";
    else {
        /* Rows are an array; a tool that returns one record returns an object; no data is {}. */
        const json_t *data = json_object_get (json_object_get (context, "evidence"), condition->tool);
        has_rows = json_is_array (data)    ? json_array_size (data) > 0
                   : json_is_object (data) ? json_object_size (data) > 0
                                           : data && !json_is_null (data);
        if (condition->kind == DECISION_CONDITION_HAS_ROWS && !has_rows)
            why = "no rows";
        else if (condition->kind == DECISION_CONDITION_NO_ROWS && has_rows)
            why = "it has rows";
    }
    if (why)
        snprintf (failed, size, "%s %s: %s", names[condition->kind], condition->tool, why);
    return !why;
}

/* 1 when value equals operand, 0 when it differs, -1 when it is not of the operand's type. */
static int
s_compare_equal (const json_t *value, const json_t *operand)
{
    if (json_is_boolean (operand))
        return json_is_boolean (value) ? json_equal (value, operand) : -1;
    if (json_is_number (operand)) {
        double number;
        return decision_value_number (value, &number) ? number == json_number_value (operand) : -1;
    }
    if (!json_is_string (value))
        return -1;
    return strcmp (json_string_value (value), json_string_value (operand)) == 0;
}

static int
s_digits_at (const char *text, size_t count)
{
    int number = 0;
    for (size_t i = 0; i < count; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        number = number * 10 + (text[i] - '0');
    }
    return number;
}

/* An ISO 8601 date ("2026-01-14", midnight UTC) or timestamp ("2026-01-14T10:00:00Z", a space
   for the T as PostgreSQL writes it, seconds and their fraction optional, a zone Z or +HH[:MM]
   or none, which is UTC) as seconds since the epoch; false for anything else. */
static bool
s_time (const char *text, time_t *out)
{
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!text || strlen (text) < 10 || text[4] != '-' || text[7] != '-')
        return false;
    struct tm tm = {0};
    int year = s_digits_at (text, 4), month = s_digits_at (text + 5, 2), day = s_digits_at (text + 8, 2);
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > month_days[month - 1])
        return false;
    if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return false;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    const char *c = text + 10;
    long offset = 0;
    if (*c == 'T' || *c == 't' || *c == ' ') {
        c++;
        if (strlen (c) < 5 || c[2] != ':')
            return false;
        tm.tm_hour = s_digits_at (c, 2);
        tm.tm_min = s_digits_at (c + 3, 2);
        if (tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59)
            return false;
        c += 5;
        if (*c == ':') {
            if (strlen (c) < 3)
                return false;
            tm.tm_sec = s_digits_at (c + 1, 2);
            if (tm.tm_sec < 0 || tm.tm_sec > 60)
                return false;
            c += 3;
            if (*c == '.' || *c == ',') {
                c++;
                if (*c < '0' || *c > '9')
                    return false;
                while (*c >= '0' && *c <= '9')
                    c++;
            }
        }
        if (*c == 'Z' || *c == 'z')
            c++;
        else if (*c == '+' || *c == '-') {
            int sign = *c == '-' ? -1 : 1, hours = strlen (c + 1) >= 2 ? s_digits_at (c + 1, 2) : -1, minutes = 0;
            if (hours < 0 || hours > 23)
                return false;
            c += 3;
            if (*c == ':')
                c++;
            if (*c) {
                minutes = strlen (c) == 2 ? s_digits_at (c, 2) : -1;
                c += strlen (c);
            }
            if (minutes < 0 || minutes > 59)
                return false;
            offset = sign * (hours * 3600L + minutes * 60L);
        }
    }
    if (*c)
        return false;
    *out = timegm (&tm) - offset;
    return true;
}

/* Whether check holds for value (NULL when the context has none) at now. */
static bool
s_check_holds (const decision_check_t *check, const json_t *value, time_t now)
{
    if (json_is_null (value))
        value = NULL;
    if (check->op == DECISION_CHECK_PRESENT)
        return json_is_true (check->operand) == (value != NULL);
    if (!value)
        return false;
    double number = 0, lo, hi;
    bool numeric = decision_value_number (value, &number);
    time_t when;
    switch (check->op) {
    case DECISION_CHECK_EQUALS:
        return s_compare_equal (value, check->operand) == 1;
    case DECISION_CHECK_NOT_EQUALS:
        return s_compare_equal (value, check->operand) == 0;
    case DECISION_CHECK_ABOVE:
        return numeric && number > json_number_value (check->operand);
    case DECISION_CHECK_AT_LEAST:
        return numeric && number >= json_number_value (check->operand);
    case DECISION_CHECK_BELOW:
        return numeric && number < json_number_value (check->operand);
    case DECISION_CHECK_AT_MOST:
        return numeric && number <= json_number_value (check->operand);
    case DECISION_CHECK_BETWEEN:
        lo = json_number_value (json_array_get (check->operand, 0));
        hi = json_number_value (json_array_get (check->operand, 1));
        return numeric && number >= lo && number <= hi;
    case DECISION_CHECK_IN:
    case DECISION_CHECK_NOT_IN: {
        if (!json_is_string (value) && !json_is_number (value) && !json_is_boolean (value))
            return false;
        bool found = false;
        size_t index;
        const json_t *item;
        json_array_foreach (check->operand, index, item)
            found = found || s_compare_equal (value, item) == 1;
        return check->op == DECISION_CHECK_IN ? found : !found;
    }
    case DECISION_CHECK_WITHIN_DAYS:
    case DECISION_CHECK_OLDER_THAN_DAYS: {
        if (!s_time (json_string_value (value), &when))
            return false;
        double age = difftime (now, when), limit = (double) json_integer_value (check->operand) * 86400.0;
        return check->op == DECISION_CHECK_WITHIN_DAYS ? age <= limit : age > limit;
    }
    case DECISION_CHECK_PRESENT:
        break;
    }
    return false;
}

/* How many bytes of text fit in max without splitting a UTF-8 character. */
static size_t
s_cut_length (const char *text, size_t max)
{
    if (strlen (text) <= max)
        return strlen (text);
    while (max > 0 && ((unsigned char) text[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Cuts text to at most max bytes without splitting a UTF-8 character. */
static void
s_cut (char *text, size_t max)
{
    text[s_cut_length (text, max)] = '\0';
}

/* What the log says of a value: scalars as they are (strings cut), a list or map by its size. */
static json_t *
s_seen (const json_t *value)
{
    char text[DECISION_LOG_TEXT_MAX + 1];
    if (!value)
        return json_null ();
    if (json_is_array (value) || json_is_object (value)) {
        snprintf (text, sizeof text, "(%s of %zu)", json_is_array (value) ? "list" : "map",
                  json_is_array (value) ? json_array_size (value) : json_object_size (value));
        return json_string (text);
    }
    if (json_is_string (value)) {
        const char *string = json_string_value (value);
        return json_stringn (string, s_cut_length (string, DECISION_LOG_TEXT_MAX));
    }
    return json_deep_copy (value);
}

/* A check as its failure reads: "checks[0]: evidence.x.0.amount 812.00 at_most 500". */
static void
s_check_failed (const decision_check_t *check, size_t index, const json_t *value, char *failed, size_t size)
{
    char *seen = value && !json_is_null (value) ? cv_template_scalar_text (value) : NULL;
    char *operand = json_is_array (check->operand) ? json_dumps (check->operand, JSON_COMPACT)
                                                   : cv_template_scalar_text (check->operand);
    const char *shown = seen                             ? seen
                        : !value || json_is_null (value) ? "(missing)"
                        : json_is_array (value)          ? "(a list)"
                                                         : "(a map)";
    snprintf (failed, size, "checks[%zu]: %s %s %s %s", index, check->value, shown, decision_check_op_name (check->op),
              operand ? operand : "?");
    free (seen);
    free (operand);
}

/* Adds what check read to the log's values, while there is room. */
static void
s_log_value (json_t *values, const char *path, const json_t *value)
{
    if (json_object_get (values, path) || json_object_size (values) >= DECISION_LOG_VALUES_MAX)
        return;
    json_object_set_new (values, path, s_seen (json_is_null (value) ? NULL : value));
}

/* Whether policy takes the request; when not, the first condition that failed into failed.
   Every value a check reads goes into values. */
static bool
s_policy_holds (const decision_rule_t *policy, const char *intent, const json_t *context, time_t now, json_t *values,
                char *failed, size_t size)
{
    if (!s_intent_matches (policy, intent)) {
        int used = snprintf (failed, size, "intent ");
        for (size_t i = 0; i < policy->intent_count && used >= 0 && (size_t) used < size; i++)
            used += snprintf (failed + used, size - (size_t) used, "%s%s", i ? "|" : "", policy->intents[i]);
        if (used >= 0 && (size_t) used < size)
            snprintf (failed + used, size - (size_t) used, ": the request's is %s", intent ? intent : "none acted on");
        return false;
    }
    for (size_t j = 0; j < policy->condition_count; j++)
        if (!s_condition_holds (&policy->conditions[j], context, failed, size))
            return false;
    for (size_t j = 0; j < policy->check_count; j++) {
        const decision_check_t *check = &policy->checks[j];
        const json_t *value = cv_template_lookup (context, check->value);
        s_log_value (values, check->value, value);
        if (!s_check_holds (check, value, now)) {
            s_check_failed (check, j, value, failed, size);
            return false;
        }
    }
    return true;
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

/* Fills result's actions from policy, each marked when it waits for a person's approval; -1 with
   err (and result's actions released) when a param does not render. */
static int
s_render_actions (const decision_policy_t *self, const decision_rule_t *policy, const json_t *context,
                  decision_result_t *result, cv_error_t *err)
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
        action->requires_approval = decision_approvals_needed (self->approvals, action->kind, params);
        result->action_count++;
    }
    return 0;
}

/* Appends one tried policy to the log's checked list, keeping its last place for the one that
   decides. */
static void
s_log_checked (json_t *log, const char *policy, bool matched, char *failed)
{
    json_t *checked = json_object_get (log, "checked");
    if (!matched && json_array_size (checked) + 1 >= DECISION_LOG_CHECKED_MAX) {
        json_t *omitted = json_object_get (log, "checked_omitted");
        json_object_set_new (log, "checked_omitted", json_integer (json_integer_value (omitted) + 1));
        return;
    }
    json_t *entry = json_pack ("{s:s, s:b}", "policy", policy, "matched", matched);
    if (!matched) {
        s_cut (failed, DECISION_LOG_TEXT_MAX);
        json_t *text = json_string (failed);
        json_object_set_new (entry, "failed", text ? text : json_string ("(not valid UTF-8)"));
    }
    json_array_append_new (checked, entry);
}

int
decision_policy_decide (const decision_policy_t *self, const json_t *context, time_t now, decision_result_t *result,
                        cv_error_t *err)
{
    assert (self && context && result);
    memset (result, 0, sizeof *result);
    /* No intent, or a low-confidence guess: only the policies for any intent, in the end the
       catch-all, take the request. */
    const char *intent = cv_context_acted_intent (context);
    char stamp[32];
    struct tm tm;
    strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
    json_t *log = json_pack ("{s:s, s:[], s:{}}", "now", stamp, "checked", "values");
    json_t *values = json_object_get (log, "values");
    cv_error_t skipped;
    cv_error_clear (&skipped);
    char failed[DECISION_LOG_TEXT_MAX * 2];
    for (size_t i = 0; i < self->rules->count; i++) {
        const decision_rule_t *policy = &self->rules->items[i];
        if (!s_policy_holds (policy, intent, context, now, values, failed, sizeof failed)) {
            s_log_checked (log, policy->name, false, failed);
            continue;
        }
        if (s_render_actions (self, policy, context, result, &skipped)) {
            if (self->log)
                cv_log_debug (self->log, "policy %s does not apply: %s", policy->name, skipped.message);
            snprintf (failed, sizeof failed, "%s", skipped.message);
            s_log_checked (log, policy->name, false, failed);
            continue;
        }
        s_log_checked (log, policy->name, true, NULL);
        json_object_set_new (log, "rule", json_string (policy->name));
        result->outcome = policy->outcome;
        result->rule = policy->name;
        result->reason = policy->reason;
        result->log = log;
        if (self->log && cv_log_verbose (self->log)) {
            char *dump = json_dumps (log, JSON_COMPACT | JSON_SORT_KEYS);
            cv_log_debug (self->log, "intent %s: policy %s decides %s with %zu actions; log %s",
                          intent ? intent : "(none)", policy->name, policy->outcome, result->action_count, dump);
            free (dump);
        }
        return 0;
    }
    json_decref (log);
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
    json_decref (result->log);
    memset (result, 0, sizeof *result);
}
/*  --------------------------------------------------------------------------
    Self-test */

#define S_NOW ((time_t) 1772366400) /* 2026-03-01T12:00:00Z, the tests' now */

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
    assert (decision_policy_decide (policy, context, S_NOW, result, &err) == 0);
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

/* One check, alone in a policy, on the value evidence.t.0.v: value is its JSON text, NULL when
   the row has no v. */
typedef struct {
    const char *check;
    const char *value;
    bool holds;
} s_check_case_t;

static const s_check_case_t s_check_cases[] = {
    /* equals: strings with strings, numbers with numbers and numeric strings, booleans alone */
    {"equals: active", "\"active\"", true},
    {"equals: active", "\"frozen\"", false},
    {"equals: active", NULL, false},
    {"equals: active", "null", false},
    {"equals: 18.9", "\"18.90\"", true},
    {"equals: 18.9", "18.9", true},
    {"equals: 5", "\"five\"", false},
    {"equals: '5'", "5", false},
    {"equals: true", "true", true},
    {"equals: true", "\"true\"", false},
    {"equals: false", "true", false},
    /* not_equals: a value of the operand's type that differs */
    {"not_equals: active", "\"frozen\"", true},
    {"not_equals: active", "\"active\"", false},
    {"not_equals: active", NULL, false},
    {"not_equals: 500", "\"abc\"", false},
    {"not_equals: 500", "\"499\"", true},
    /* order, on numbers and numeric strings */
    {"above: 500", "\"812.00\"", true},
    {"above: 500", "\"500\"", false},
    {"above: 500", "\"abc\"", false},
    {"above: 500", NULL, false},
    {"above: -1", "0", true},
    {"at_least: 500", "500", true},
    {"at_least: 500", "\"499.99\"", false},
    {"below: 500", "\"499.99\"", true},
    {"below: 500", "500", false},
    {"at_most: 500", "\"500.00\"", true},
    {"at_most: 500", "\"812.00\"", false},
    {"at_most: 500", "\"1e2\"", false}, /* not written plainly: not an amount */
    {"at_most: 500", "\"0x10\"", false},
    {"at_most: 500", "\"\"", false},
    {"at_most: 500", "true", false},
    {"at_most: 500", "[1]", false},
    {"between: [10, 20]", "\"18.90\"", true},
    {"between: [10, 20]", "10", true},
    {"between: [10, 20]", "\"20\"", true},
    {"between: [10, 20]", "\"20.01\"", false},
    {"between: [10, 20]", "\"9.99\"", false},
    {"between: [10, 20]", "true", false},
    {"between: [10, 20]", NULL, false},
    /* membership */
    {"in: [active, frozen]", "\"frozen\"", true},
    {"in: [active, frozen]", "\"lost\"", false},
    {"in: [active, frozen]", NULL, false},
    {"in: [1, 2]", "\"2\"", true},
    {"in: [1, 2]", "\"3\"", false},
    {"not_in: [lost, stolen]", "\"active\"", true},
    {"not_in: [lost, stolen]", "\"lost\"", false},
    {"not_in: [lost, stolen]", NULL, false},
    {"not_in: [lost, stolen]", "{\"a\": 1}", false},
    /* presence */
    {"present: true", "\"x\"", true},
    {"present: true", "\"\"", true},
    {"present: true", NULL, false},
    {"present: true", "null", false},
    {"present: false", NULL, true},
    {"present: false", "null", true},
    {"present: false", "\"x\"", false},
    /* time windows, against now 2026-03-01T12:00:00Z */
    {"within_days: 30", "\"2026-02-15\"", true},
    {"within_days: 30", "\"2026-01-15T10:00:00Z\"", false},
    {"within_days: 30", "\"2026-01-30T12:00:00Z\"", true}, /* exactly 30 days */
    {"within_days: 30", "\"2026-01-30T11:59:59Z\"", false},
    {"within_days: 30", "\"2026-01-30T13:00:00+01:00\"", true}, /* 12:00 UTC */
    {"within_days: 30", "\"2026-01-30T11:00:00-01\"", true},
    {"within_days: 30", "\"2026-01-30 12:00:00.25+00\"", true}, /* as PostgreSQL writes it */
    {"within_days: 30", "\"2026-01-30T12:00\"", true},
    {"within_days: 30", "\"2026-03-05\"", true}, /* a later time is within */
    {"within_days: 0", "\"2026-03-01T12:00:00Z\"", true},
    {"within_days: 30", "\"2026-02-30\"", false},
    {"within_days: 30", "\"2026-02-15T25:00:00Z\"", false},
    {"within_days: 30", "\"2026-02-15T10:00:00+5\"", false},
    {"within_days: 30", "\"15 Feb 2026\"", false},
    {"within_days: 30", "\"2026-02-15x\"", false},
    {"within_days: 30", "20260215", false},
    {"within_days: 30", NULL, false},
    {"older_than_days: 30", "\"2026-01-15\"", true},
    {"older_than_days: 30", "\"2026-02-15\"", false},
    {"older_than_days: 30", "\"2026-01-30T12:00:00Z\"", false},
    {"older_than_days: 30", "\"not a date\"", false},
    {"older_than_days: 30", NULL, false},
};

static void
s_test_operators (bool verbose)
{
    cv_error_t err;
    decision_result_t result;
    for (size_t i = 0; i < sizeof s_check_cases / sizeof s_check_cases[0]; i++) {
        const s_check_case_t *test = &s_check_cases[i];
        char text[512], rows[256];
        snprintf (text, sizeof text,
                  "policies:\n  - name: hit\n    when:\n      checks:\n        - {value: evidence.t.0.v, %s}\n"
                  "    outcome: answer\n  - name: rest\n    outcome: handoff\n",
                  test->check);
        decision_policy_t *policy = s_parse (text, &err);
        cv_assert_that (policy, "decision_policy: %s: %s", test->check, err.message);
        if (test->value)
            snprintf (rows, sizeof rows, "[{\"v\": %s}]", test->value);
        else
            snprintf (rows, sizeof rows, "[{\"w\": 1}]");
        json_t *context = s_context ("any", "t", "ok", rows);
        assert (decision_policy_decide (policy, context, S_NOW, &result, &err) == 0);
        cv_assert_that (strcmp (result.rule, test->holds ? "hit" : "rest") == 0,
                        "decision_policy: {%s} on %s should %s", test->check, test->value ? test->value : "(missing)",
                        test->holds ? "hold" : "not hold");
        /* the log has the value as the check saw it */
        json_t *seen = json_object_get (json_object_get (result.log, "values"), "evidence.t.0.v");
        json_t *given = test->value ? json_loads (test->value, JSON_DECODE_ANY, NULL) : json_null ();
        assert (seen && given);
        assert (json_is_array (given) || json_is_object (given) ? json_is_string (seen) : json_equal (seen, given));
        json_decref (given);
        json_decref (context);
        decision_result_reset (&result);
        decision_policy_destroy (&policy);
    }
    if (verbose)
        printf ("  %zu checks\n", sizeof s_check_cases / sizeof s_check_cases[0]);
}

/* Decides for context (consumed) at S_NOW and compares the log with expected, a JSON text. */
static void
s_expect_log (const decision_policy_t *policy, json_t *context, const char *expected_text)
{
    cv_error_t err;
    decision_result_t result;
    assert (decision_policy_decide (policy, context, S_NOW, &result, &err) == 0);
    json_t *expected = json_loads (expected_text, 0, NULL);
    cv_assert_that (expected, "decision_policy: bad expected log %s", expected_text);
    char *got = json_dumps (result.log, JSON_COMPACT | JSON_SORT_KEYS);
    cv_assert_that (json_equal (result.log, expected), "decision_policy: log %s\n  expected %s", got, expected_text);
    assert (strcmp (json_string_value (json_object_get (result.log, "rule")), result.rule) == 0);
    free (got);
    json_decref (expected);
    json_decref (context);
    decision_result_reset (&result);
}

/* Policies with checks: the first that holds decides, and the log says why each before it did not. */
static void
s_test_checks (bool verbose)
{
    cv_error_t err;
    decision_policy_t *policy = s_parse ("policies:\n"
                                         "  - name: big_refund\n"
                                         "    intent: request_refund\n"
                                         "    when:\n"
                                         "      has_rows: payments\n"
                                         "      checks:\n"
                                         "        - {value: evidence.payments.0.amount, above: 500}\n"
                                         "    outcome: escalate\n"
                                         "  - name: recent_refund\n"
                                         "    intent: request_refund\n"
                                         "    when:\n"
                                         "      has_rows: payments\n"
                                         "      checks:\n"
                                         "        - {value: evidence.payments.0.amount, at_most: 500}\n"
                                         "        - {value: evidence.payments.0.created_at, within_days: 30}\n"
                                         "        - {value: intent.slots.card_last4, present: false}\n"
                                         "    outcome: refund_eligible\n"
                                         "  - name: any_refund\n"
                                         "    intent: [request_refund, Refund_not_showing_up]\n"
                                         "    when:\n"
                                         "      checks: [{value: evidence.payments.0.amount, at_least: 0}]\n"
                                         "    outcome: answer\n"
                                         "  - name: rest\n"
                                         "    outcome: handoff\n",
                                         &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    decision_result_t result;
    /* a small, recent payment: the second policy; the third would hold too but comes later */
    s_expect (policy,
              s_context ("request_refund", "payments", "ok",
                         "[{\"id\": \"tx-1\", \"amount\": \"312.00\", \"created_at\": \"2026-02-20T09:00:00Z\"}]"),
              "recent_refund", "refund_eligible", &result);
    decision_result_reset (&result);
    s_expect_log (policy,
                  s_context ("request_refund", "payments", "ok",
                             "[{\"id\": \"tx-1\", \"amount\": \"312.00\", \"created_at\": \"2026-02-20T09:00:00Z\"}]"),
                  "{\"rule\": \"recent_refund\", \"now\": \"2026-03-01T12:00:00Z\","
                  " \"checked\": [{\"policy\": \"big_refund\", \"matched\": false,"
                  "                \"failed\": \"checks[0]: evidence.payments.0.amount 312.00 above 500\"},"
                  "               {\"policy\": \"recent_refund\", \"matched\": true}],"
                  " \"values\": {\"evidence.payments.0.amount\": \"312.00\","
                  "              \"evidence.payments.0.created_at\": \"2026-02-20T09:00:00Z\","
                  "              \"intent.slots.card_last4\": null}}");
    /* a large one goes first to the first policy */
    s_expect (policy, s_context ("request_refund", "payments", "ok", "[{\"amount\": \"812.00\"}]"), "big_refund",
              "escalate", &result);
    decision_result_reset (&result);
    /* an old one: the window fails, so the next policy that holds decides */
    s_expect_log (
        policy,
        s_context ("request_refund", "payments", "ok", "[{\"amount\": \"18.90\", \"created_at\": \"2026-01-01\"}]"),
        "{\"rule\": \"any_refund\", \"now\": \"2026-03-01T12:00:00Z\","
        " \"checked\": [{\"policy\": \"big_refund\", \"matched\": false,"
        "                \"failed\": \"checks[0]: evidence.payments.0.amount 18.90 above 500\"},"
        "               {\"policy\": \"recent_refund\", \"matched\": false,"
        "                \"failed\": \"checks[1]: evidence.payments.0.created_at 2026-01-01 within_days 30\"},"
        "               {\"policy\": \"any_refund\", \"matched\": true}],"
        " \"values\": {\"evidence.payments.0.amount\": \"18.90\","
        "              \"evidence.payments.0.created_at\": \"2026-01-01\"}}");
    /* a slot named: present: false fails, with the value it saw */
    json_t *context =
        s_context ("request_refund", "payments", "ok", "[{\"amount\": \"18.90\", \"created_at\": \"2026-02-27\"}]");
    json_object_set_new (json_object_get (json_object_get (context, "intent"), "slots"), "card_last4",
                         json_string ("4417"));
    s_expect (policy, context, "any_refund", "answer", &result);
    json_t *recent = json_array_get (json_object_get (result.log, "checked"), 1);
    assert (strcmp (json_string_value (json_object_get (recent, "failed")),
                    "checks[2]: intent.slots.card_last4 4417 present false")
            == 0);
    decision_result_reset (&result);
    /* tool conditions and intents in the log, and a value that is missing */
    s_expect_log (policy, s_context ("request_refund", "payments", "ok", "[]"),
                  "{\"rule\": \"rest\", \"now\": \"2026-03-01T12:00:00Z\","
                  " \"checked\": [{\"policy\": \"big_refund\", \"matched\": false,"
                  "                \"failed\": \"has_rows payments: no rows\"},"
                  "               {\"policy\": \"recent_refund\", \"matched\": false,"
                  "                \"failed\": \"has_rows payments: no rows\"},"
                  "               {\"policy\": \"any_refund\", \"matched\": false,"
                  "                \"failed\": \"checks[0]: evidence.payments.0.amount (missing) at_least 0\"},"
                  "               {\"policy\": \"rest\", \"matched\": true}],"
                  " \"values\": {\"evidence.payments.0.amount\": null}}");
    s_expect_log (policy, s_context ("card_arrival", "payments", "timed_out", NULL),
                  "{\"rule\": \"rest\", \"now\": \"2026-03-01T12:00:00Z\","
                  " \"checked\": [{\"policy\": \"big_refund\", \"matched\": false,"
                  "                \"failed\": \"intent request_refund: the request's is card_arrival\"},"
                  "               {\"policy\": \"recent_refund\", \"matched\": false,"
                  "                \"failed\": \"intent request_refund: the request's is card_arrival\"},"
                  "               {\"policy\": \"any_refund\", \"matched\": false,"
                  "                \"failed\": \"intent request_refund|Refund_not_showing_up: the request's is "
                  "card_arrival\"},"
                  "               {\"policy\": \"rest\", \"matched\": true}],"
                  " \"values\": {}}");
    s_expect (policy, s_context ("request_refund", "payments", "timed_out", NULL), "rest", "handoff", &result);
    assert (strcmp (json_string_value (
                        json_object_get (json_array_get (json_object_get (result.log, "checked"), 0), "failed")),
                    "has_rows payments: it timed out")
            == 0);
    decision_result_reset (&result);
    decision_policy_destroy (&policy);

    /* the log stays bounded: values past the limit are not kept, nor the policies tried past it */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    fprintf (out, "policies:\n  - name: many_values\n    intent: many\n    when:\n      checks:\n");
    for (int i = 0; i < DECISION_LOG_VALUES_MAX + 8; i++)
        fprintf (out, "        - {value: evidence.t.0.v%d, present: false}\n", i);
    fprintf (out, "    outcome: answer\n");
    for (int i = 0; i < DECISION_LOG_CHECKED_MAX + 6; i++)
        fprintf (out, "  - name: p%d\n    intent: other\n    outcome: answer\n", i);
    fprintf (out, "  - name: rest\n    outcome: handoff\n");
    fclose (out);
    policy = s_parse (text, &err);
    free (text);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    s_expect (policy, s_context ("many", "t", "ok", "[{}]"), "many_values", "answer", &result);
    assert (json_object_size (json_object_get (result.log, "values")) == DECISION_LOG_VALUES_MAX);
    decision_result_reset (&result);
    s_expect (policy, s_context ("unknown", NULL, NULL, NULL), "rest", "handoff", &result);
    json_t *checked = json_object_get (result.log, "checked");
    assert (json_array_size (checked) == DECISION_LOG_CHECKED_MAX);
    assert (
        strcmp (json_string_value (json_object_get (json_array_get (checked, DECISION_LOG_CHECKED_MAX - 1), "policy")),
                "rest")
        == 0);
    /* 1 + 70 tried before rest, 63 of them kept */
    assert (json_integer_value (json_object_get (result.log, "checked_omitted"))
            == 1 + DECISION_LOG_CHECKED_MAX + 6 - (DECISION_LOG_CHECKED_MAX - 1));
    size_t packed_size;
    uint8_t *packed = cv_msgpack_pack (result.log, &packed_size, &err);
    assert (packed && packed_size <= DECISION_LOG_MAX_BYTES);
    free (packed);
    decision_result_reset (&result);
    decision_policy_destroy (&policy);

    /* a long string value is cut, on a character boundary */
    policy = s_parse ("policies:\n  - name: hit\n    when:\n      checks: [{value: evidence.t.0.v, equals: x}]\n"
                      "    outcome: answer\n  - name: rest\n    outcome: handoff\n",
                      &err);
    assert (policy);
    char rows[DECISION_LOG_TEXT_MAX * 3];
    int used = snprintf (rows, sizeof rows, "[{\"v\": \"a"); /* then é's: the limit falls inside one */
    for (int i = 0; i < DECISION_LOG_TEXT_MAX; i++)
        used += snprintf (rows + used, sizeof rows - (size_t) used, "\xc3\xa9"); /* é, two bytes */
    snprintf (rows + used, sizeof rows - (size_t) used, "\"}]");
    s_expect (policy, s_context ("any", "t", "ok", rows), "rest", "handoff", &result);
    const char *seen = json_string_value (json_object_get (json_object_get (result.log, "values"), "evidence.t.0.v"));
    assert (seen && strlen (seen) == DECISION_LOG_TEXT_MAX - 1);
    const char *failed =
        json_string_value (json_object_get (json_array_get (json_object_get (result.log, "checked"), 0), "failed"));
    assert (failed && strlen (failed) <= DECISION_LOG_TEXT_MAX);
    decision_result_reset (&result);
    decision_policy_destroy (&policy);

    /* check errors name the file, the line and the key */
    static const struct {
        const char *check, *expected;
    } errors[] = {
        {"{value: evidence.t.0.v, at_mostt: 5}", "test.yaml:5: policies.a.when.checks.0.at_mostt: unknown key"},
        {"{value: evidence.t.0.v, above: 1, below: 5}",
         "test.yaml:5: policies.a.when.checks.0.below: is a second operator, after above"},
        {"{value: evidence.t.0.v}", "test.yaml:5: policies.a.when.checks.0: has no operator"},
        {"{above: 1}", "test.yaml:5: policies.a.when.checks.0.value: is required"},
        {"{value: [a], above: 1}", "test.yaml:5: policies.a.when.checks.0.value: must be a string"},
        {"{value: evidence.t.0.v, above: '5'}", "test.yaml:5: policies.a.when.checks.0.above: must be a number"},
        {"{value: evidence.t.0.v, at_most: true}", "test.yaml:5: policies.a.when.checks.0.at_most: must be a number"},
        {"{value: evidence.t.0.v, equals: [1]}", "test.yaml:5: policies.a.when.checks.0.equals: must be a string"},
        {"{value: evidence.t.0.v, not_equals: {a: 1}}",
         "test.yaml:5: policies.a.when.checks.0.not_equals: must be a string"},
        {"{value: evidence.t.0.v, between: [20, 10]}",
         "test.yaml:5: policies.a.when.checks.0.between: [20, 10] is empty: lo is above hi"},
        {"{value: evidence.t.0.v, between: [1]}",
         "test.yaml:5: policies.a.when.checks.0.between: must be a list of two numbers"},
        {"{value: evidence.t.0.v, between: [1, x]}",
         "test.yaml:5: policies.a.when.checks.0.between: must be a list of two numbers"},
        {"{value: evidence.t.0.v, in: active}", "test.yaml:5: policies.a.when.checks.0.in: must be a non-empty list"},
        {"{value: evidence.t.0.v, not_in: []}", "test.yaml:5: policies.a.when.checks.0.not_in: must be a non-empty"},
        {"{value: evidence.t.0.v, in: [a, [b]]}", "test.yaml:5: policies.a.when.checks.0.in: item 1 is not"},
        {"{value: evidence.t.0.v, present: yes}", "test.yaml:5: policies.a.when.checks.0.present: must be true or"},
        {"{value: evidence.t.0.v, within_days: -1}",
         "test.yaml:5: policies.a.when.checks.0.within_days: must be a whole number of days"},
        {"{value: evidence.t.0.v, older_than_days: 1.5}",
         "test.yaml:5: policies.a.when.checks.0.older_than_days: must be a whole number of days"},
        {"{value: 'evidence..v', present: true}", "test.yaml:5: policies.a.when.checks.0.value: 'evidence..v' has an"},
        {"{value: 'evidence.t.', present: true}", "test.yaml:5: policies.a.when.checks.0.value: 'evidence.t.' has an"},
        {"{value: 'evidence.t-1', present: true}",
         "test.yaml:5: policies.a.when.checks.0.value: 'evidence.t-1' has a character outside"},
        {"{value: '', present: true}", "test.yaml:5: policies.a.when.checks.0.value: must not be empty"},
        {"{value: slots.card_last4, present: true}",
         "test.yaml:5: policies.a.when.checks.0.value: 'slots.card_last4' is not in the decision's context"},
        {"{value: decision.rule, present: true}",
         "test.yaml:5: policies.a.when.checks.0.value: 'decision.rule' is not in the decision's context"},
        {"just_text", "test.yaml:5: policies.a.when.checks.0: must be a map"},
    };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        char yaml[512];
        snprintf (yaml, sizeof yaml,
                  "policies:\n  - name: a\n    when:\n      checks:\n        - %s\n    outcome: x\n"
                  "  - name: b\n    outcome: y\n",
                  errors[i].check);
        s_expect_load_error (yaml, errors[i].expected, verbose);
    }
    s_expect_load_error ("policies:\n  - name: a\n    when:\n      checks: {value: evidence.t.0.v, present: true}\n"
                         "    outcome: x\n  - name: b\n    outcome: y\n",
                         "test.yaml:4: policies.a.when.checks: must be a non-empty list", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    when:\n      checks: []\n    outcome: x\n"
                         "  - name: b\n    outcome: y\n",
                         "test.yaml:4: policies.a.when.checks: must be a non-empty list", verbose);
    s_expect_load_error ("policies:\n  - name: a\n    when:\n      checks:\n"
                         "        - {value: evidence.t.0.v, present: true}\n"
                         "        - {value: evidence.t.0.v, present: true, equals: 1}\n"
                         "    outcome: x\n  - name: b\n    outcome: y\n",
                         "test.yaml:6: policies.a.when.checks.1.equals: is a second operator", verbose);
    s_expect_load_error (
        "tools:\n  cards: {kind: sql}\n"
        "policies:\n  - name: a\n    when:\n      checks: [{value: evidence.card.0.id, present: true}]\n"
        "    outcome: x\n  - name: b\n    outcome: y\n",
        "test.yaml:6: policies.a.when.checks.0.value: 'evidence.card.0.id' names 'card', which is "
        "not one of the agent's tools",
        verbose);
    /* with a tools section, a tool of the agent's is fine; a policy with checks only is no catch-all */
    policy = s_parse ("tools:\n  cards: {kind: sql}\n"
                      "policies:\n  - name: a\n    when:\n      checks: [{value: tools.cards.status, equals: ok}]\n"
                      "    outcome: x\n  - name: b\n    outcome: y\n",
                      &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    decision_policy_destroy (&policy);
    s_expect_load_error ("policies:\n  - name: a\n    when:\n      checks: [{value: user_id, present: true}]\n"
                         "    outcome: x\n",
                         "no catch-all", verbose);
}

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
    assert (decision_policy_decide (policy, context, S_NOW, &result, &err) == -1);
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

    /* an action the approvals section names is marked: by its amount, here, or by its kind */
    policy = s_parse ("approvals: {kinds: [freeze_card], amount_above: 100}\n"
                      "policies:\n"
                      "  - name: refund\n"
                      "    when: { has_rows: t }\n"
                      "    outcome: refund_eligible\n"
                      "    actions:\n"
                      "      - kind: refund_transaction\n"
                      "        params: { amount: '{{evidence.t.0.amount}}' }\n"
                      "      - kind: freeze_card\n"
                      "      - kind: note\n"
                      "  - name: rest\n"
                      "    outcome: handoff\n",
                      &err);
    cv_assert_that (policy, "decision_policy: %s", err.message);
    s_expect (policy, s_context ("any", "t", "ok", "[{\"amount\": \"100.01\"}]"), "refund", "refund_eligible", &result);
    assert (result.action_count == 3);
    assert (result.actions[0].requires_approval && result.actions[1].requires_approval);
    assert (!result.actions[2].requires_approval);
    decision_result_reset (&result);
    s_expect (policy, s_context ("any", "t", "ok", "[{\"amount\": \"23.47\"}]"), "refund", "refund_eligible", &result);
    assert (!result.actions[0].requires_approval && result.actions[1].requires_approval);
    decision_result_reset (&result);
    decision_policy_destroy (&policy);
    /* and a mistake there stops the policies from loading */
    s_expect_load_error ("approvals: {amount_above: 0}\npolicies:\n  - name: rest\n    outcome: handoff\n",
                         "test.yaml:1: approvals.amount_above: must be a positive number", verbose);

    s_test_operators (verbose);
    s_test_checks (verbose);
    cv_log_destroy (&log);
    if (verbose)
        printf ("decision_policy: ok\n");
}
