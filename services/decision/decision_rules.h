/* The decision worker's policies as the agent file writes them: the `policies` section read and
   validated into plain data, which decision_policy decides with (decision_policy.h says what a
   policy means and how one is chosen).

   Each policy has a wire name, unique in the file; the intents it takes (none: any); its
   conditions, one per tool named under when: has_rows, no_rows or failed (each a tool name or a
   list, every tool one of the agent's when the file has a tools section); its checks, a list
   under when: checks, each {value: PATH, OPERATOR: OPERAND} with exactly one operator (see
   decision_check_op_t), PATH one a template could name under user_id, text, intent, evidence or
   tools (evidence.TOOL and tools.TOOL one of the agent's), the operand of the operator's type
   (between's lo not above its hi); an outcome (a wire name) and a reason (at most CV_DETAIL_MAX_BYTES, "" when none);
   and at most CV_MAX_ACTIONS actions {kind, params}, params a map whose every string is a cv_template template, checked
   at load, and whose whole value travels as msgpack. The last policy, and only it, is the catch-all: no intent and no
   when. A policy name must leave room for its action ids ("<policy>.<n>") in a wire name. A mistake is refused with the
   file, the line and the key
   ("agent.yaml:42: policies.refund.when.checks.0.between: [20, 10] is empty: lo is above hi").

   Plain data, read-only once loaded; nothing of the document is kept. */
#ifndef DECISION_RULES_H
#define DECISION_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"

typedef enum {
    DECISION_CONDITION_HAS_ROWS, /* the tool succeeded with at least one row */
    DECISION_CONDITION_NO_ROWS,  /* the tool succeeded with none */
    DECISION_CONDITION_FAILED    /* the tool failed or timed out */
} decision_condition_kind_t;

/* One condition of a policy's when, on one tool. */
typedef struct {
    decision_condition_kind_t kind;
    char *tool;
} decision_condition_t;

/* A check's operator, and what its operand must be. */
typedef enum {
    DECISION_CHECK_EQUALS,         /* a string, number or boolean */
    DECISION_CHECK_NOT_EQUALS,     /* the same */
    DECISION_CHECK_ABOVE,          /* a number */
    DECISION_CHECK_AT_LEAST,       /* a number */
    DECISION_CHECK_BELOW,          /* a number */
    DECISION_CHECK_AT_MOST,        /* a number */
    DECISION_CHECK_BETWEEN,        /* [lo, hi], numbers, lo <= hi; inclusive */
    DECISION_CHECK_IN,             /* a non-empty list of strings, numbers or booleans */
    DECISION_CHECK_NOT_IN,         /* the same */
    DECISION_CHECK_PRESENT,        /* a boolean */
    DECISION_CHECK_WITHIN_DAYS,    /* a whole number of days, 0..36500 */
    DECISION_CHECK_OLDER_THAN_DAYS /* the same */
} decision_check_op_t;

/* One check of a policy's when, on one value of the context. */
typedef struct {
    char *value; /* the context path, as a template names it */
    decision_check_op_t op;
    json_t *operand; /* as the file wrote it, of the operator's type */
} decision_check_t;

/* One action a policy takes, before its params are rendered. */
typedef struct {
    char *kind;
    json_t *params; /* an object; string values anywhere in it are templates */
} decision_rule_action_t;

/* One policy, in file order. */
typedef struct {
    char *name;
    char **intents; /* empty: any intent */
    size_t intent_count;
    decision_condition_t *conditions; /* all must hold */
    size_t condition_count;
    decision_check_t *checks; /* all must hold, tried in file order after the conditions */
    size_t check_count;
    char *outcome;
    char *reason; /* "" when none */
    decision_rule_action_t *actions;
    size_t action_count;
} decision_rule_t;

/* The policies of one agent file, the catch-all last. */
typedef struct {
    decision_rule_t *items;
    size_t count; /* at least one */
} decision_rules_t;

/* Reads and validates the `policies` section of config; NULL with err (INVALID) naming
   file:line:key. */
decision_rules_t *decision_rules_new (cv_config_t *config, cv_error_t *err) CV_MUST_CHECK;
void decision_rules_destroy (decision_rules_t **self_p);

/* True for a policy with no intent and no when: it takes every request. */
bool decision_rule_catches_all (const decision_rule_t *rule);

/* The name of a check's operator as the file writes it ("at_most"). */
const char *decision_check_op_name (decision_check_op_t op);

/* Whether value is a number, or a string that is one written plainly ("18.90", "-3", "500"):
   the bank's amounts are numeric text. Hex, exponents, inf and nan are not amounts. The number
   into *out. */
bool decision_value_number (const json_t *value, double *out);

void decision_rules_test (bool verbose);

#endif
