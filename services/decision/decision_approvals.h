/* Which of a decision's actions wait for a person's approval before they are performed: the
   agent file's `approvals` section, validated at load, asked about one action at a time.

     approvals:
       kinds: [cancel_transfer]   # optional: actions of these kinds always wait
       amount_above: 100          # optional: an action whose params.amount is above this waits

   Without the section nothing waits. kinds is a list of action kinds (wire names; each one of
   the agent's `actions` when the file has that section); amount_above a positive number. The
   section must name at least one of the two. An action's amount is params.amount, a number or
   numeric text written plainly ("18.90"); an action with no amount param waits only by its kind.
   An amount that is there but not a number (text such as "12,50" or "about 200", null, a list)
   makes the action wait when amount_above is set: when in doubt, a person decides. A mistake in
   the section is refused with the file, the line and the key
   ("agent.yaml:12: approvals.amount_above: must be a positive number").

   The decision marks such an action requires_approval; the executor refuses to perform one, and
   the orchestrator holds it for an operator. Read-only once loaded; nothing of the document is
   kept. */
#ifndef DECISION_APPROVALS_H
#define DECISION_APPROVALS_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"

typedef struct _decision_approvals_t decision_approvals_t;

/* Loads and validates the `approvals` section of config (none: nothing waits); NULL with err
   (INVALID) naming file:line:key. */
decision_approvals_t *decision_approvals_new (cv_config_t *config, cv_error_t *err) CV_MUST_CHECK;
void decision_approvals_destroy (decision_approvals_t **self_p);

/* Whether an action of kind with params (an object, rendered; NULL for none) waits for a
   person's approval. */
bool decision_approvals_needed (const decision_approvals_t *self, const char *kind, const json_t *params);

void decision_approvals_test (bool verbose);

#endif
