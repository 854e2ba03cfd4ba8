/* The decision worker's policies: the agent file's `policies` list, validated at load, and the
   choice of outcome and actions for one request's context (common/cv_context.h).

   Policies are tried in file order; the first whose intent matches (a policy without `intent`
   takes any) and whose conditions all hold decides:
     has_rows: TOOL   the tool succeeded with at least one row
     no_rows: TOOL    the tool succeeded with none
     failed: TOOL     the tool failed or timed out
   (each may also name a list of tools, all of which must satisfy it), and checks on values of
   the context, tried in order after them:
     checks:
       - {value: evidence.refundable_payments.0.amount, at_most: 500}
   A check has one operator: equals, not_equals (a string operand matches strings, a number
   numbers and numeric strings such as "18.90", a boolean booleans); above, at_least, below,
   at_most, between: [lo, hi] (inclusive), on numbers and numeric strings; in, not_in, on a list
   of such operands; present: true|false; within_days, older_than_days: N, on an ISO 8601 date
   or timestamp ("2026-01-14", "2026-01-14T10:00:00Z", without a zone UTC), against the
   decision's now: within N days holds when it is at most N days before now (a later time too),
   older than N days when it is more. A value missing, null or of the wrong type fails the check
   (not_equals and not_in too), except present: false, which it satisfies. The decision carries the
   policy's outcome and reason, the policy's name as its rule, and its actions with their
   params rendered from the context: string values are cv_template templates, other values are
   kept. A policy whose params do not render (the evidence lacks a value) does not apply, and the
   next one is tried. Action ids are "<policy>.<n>" (n from 1), the same on every retry of the
   same request, as the exactly-once action executor needs. An action the agent file's
   `approvals` section names (decision_approvals.h) is marked requires_approval.

   The last policy must be the catch-all (no intent, no when), and only it, so every request
   gets a decision as long as the catch-all's own params render. The section is read and checked
   by decision_rules (decision_rules.h has its form); this file decides with it.

   Pure logic, no I/O but debug logs; an instance is read-only once loaded. */
#ifndef DECISION_POLICY_H
#define DECISION_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_log.h"

typedef struct _decision_policy_t decision_policy_t;

/* One action of a decision; plain data. */
typedef struct {
    char id[CV_NAME_MAX_BYTES + 1]; /* "<policy>.<n>" */
    const char *kind;               /* borrowed from the policies */
    json_t *params;                 /* owned: an object, rendered */
    bool requires_approval;         /* it waits for a person (decision_approvals.h) */
} decision_action_t;

/* What decision_policy_decide chose; plain data, released with decision_result_reset. */
typedef struct {
    const char *outcome; /* borrowed from the policies */
    const char *rule;    /* the deciding policy's name, borrowed */
    const char *reason;  /* borrowed; "" when the policy gives none */
    decision_action_t actions[CV_MAX_ACTIONS];
    size_t action_count;
    /* owned: the decision log, an object
         {"rule": NAME, "now": ISO 8601,
          "checked": [{"policy": NAME, "matched": bool, "failed": "the first condition that
                       failed"}, ...] -- the policies tried, in order, the deciding one last,
          "checked_omitted": N -- when over DECISION_LOG_CHECKED_MAX were tried,
          "values": {PATH: the value a check read, null when missing}}
       within DECISION_LOG_MAX_BYTES packed: strings are cut, at most DECISION_LOG_VALUES_MAX
       values are kept. */
    json_t *log;
} decision_result_t;

#define DECISION_LOG_CHECKED_MAX 64
#define DECISION_LOG_VALUES_MAX 32
#define DECISION_LOG_TEXT_MAX 200 /* bytes of a failed condition, or of a string value */
#define DECISION_LOG_MAX_BYTES CV_DECISION_LOG_MAX_BYTES

/* Loads and validates the `policies` and `approvals` sections of config; NULL with err naming file:line:key.
   Nothing of config is kept. log is borrowed, may be NULL. */
decision_policy_t *decision_policy_new (cv_config_t *config, cv_log_t *log, cv_error_t *err) CV_MUST_CHECK;
void decision_policy_destroy (decision_policy_t **self_p);

/* Number of policies, the catch-all included. */
size_t decision_policy_count (const decision_policy_t *self);
/* The name of policy index, in file order, or NULL past the end. */
const char *decision_policy_name (const decision_policy_t *self, size_t index);
/* The name of the catch-all, the last policy. */
const char *decision_policy_catch_all (const decision_policy_t *self);

/* Decides for context (a cv_context: user_id, text, intent, evidence, tools) at now (what
   within_days and older_than_days count from: the wall clock, or a test's) into result, which
   the caller resets. Returns 0, or -1 with err (INTERNAL) when no policy applies, which happens
   only when the catch-all's params do not render. */
int decision_policy_decide (const decision_policy_t *self, const json_t *context, time_t now, decision_result_t *result,
                            cv_error_t *err) CV_MUST_CHECK;

/* Releases result's params and clears it; NULL-safe. */
void decision_result_reset (decision_result_t *result);

void decision_policy_test (bool verbose);

#endif
