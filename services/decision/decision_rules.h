/* The decision worker's policies as the agent file writes them: the `policies` section read and
   validated into plain data, which decision_policy decides with (decision_policy.h says what a
   policy means and how one is chosen).

   Each policy has a wire name, unique in the file; the intents it takes (none: any); its
   conditions, one per tool named under when: has_rows, no_rows or failed (each a tool name or a
   list, every tool one of the agent's when the file has a tools section); an outcome (a wire
   name) and a reason (at most CV_DETAIL_MAX_BYTES, "" when none); and at most CV_MAX_ACTIONS
   actions {kind, params}, params a map whose every string is a cv_template template, checked at
   load, and whose whole value travels as msgpack. The last policy, and only it, is the catch-all:
   no intent and no when. A policy name must leave room for its action ids ("<policy>.<n>") in a
   wire name. A mistake is refused with the file, the line and the key.

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

void decision_rules_test (bool verbose);

#endif
