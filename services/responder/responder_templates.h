/* The responder's reply templates: the agent file's `templates` section (name -> text), and the
   ladder that picks which one answers a request.

   A reply is rendered from the request's context (cv_context.h). For a decision without actions
   (decision.actions_status "none") the ladder is the template named after the deciding policy
   (decision.rule), else the one named after the outcome (decision.outcome), else `fallback`.

   A decision with actions is answered only from what became of them, decision.actions_status
   (done, refused, failed or not_performed; not_performed when the executor's results never
   reached the context): `<rule>.<status>`, else `<outcome>.<status>`, else `actions.<status>`,
   else `fallback`. Its plain rule and outcome templates are never used: written before the
   action ran, they could claim a change the bank did not make.

   A request stopped before its later stages (context "stopped": over_budget, out_of_attempts or
   stage_failed, RespondRequest.stopped) is answered by `stopped.<reason>` (first, for a stage that
   failed, `stopped.stage_failed.<stage>`), else `fallback`: whatever ran, it
   did not finish, and no template written for a finished request may answer it.

   A request whose decision has no actions and that did not stop has one rung more before
   `fallback`: its intent's static text, `static.<intent>` (no placeholders, so it renders unless
   the guardrails refuse it), which must hold for every request of that intent: it may not claim
   that anything was looked up or done.

   A rung is skipped when it has no template, when a placeholder has no value, or when its result
   fails the output guardrails (responder_guard.h); a name already tried is not tried again.
   `fallback` must have no placeholders and pass the guardrails when loaded, so the last rung
   always renders; it is the hand-off to a person, and a reply from it escalates the request
   (ReplyStep.HANDOFF). */
#ifndef RESPONDER_TEMPLATES_H
#define RESPONDER_TEMPLATES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"
#include "cv_log.h"
#include "responder_steps.h"

/* The template every ladder ends with: the hand-off. */
#define RESPONDER_FALLBACK "fallback"
/* The intent's static text is the template named this and the intent's name. */
#define RESPONDER_STATIC_PREFIX "static."

typedef struct _responder_templates_t responder_templates_t;

/* Reads and checks the `templates` section of agent: names of [A-Za-z0-9_.:-] (1..64 bytes),
   non-empty texts whose placeholders are well formed and whose fixed text passes the guardrails,
   and a `fallback` with no placeholders. NULL with err ("file:line: templates.NAME: reason") on
   the first problem. Copies what it keeps: agent may be destroyed afterwards. */
responder_templates_t *responder_templates_new (cv_config_t *agent, cv_error_t *err) CV_MUST_CHECK;
void responder_templates_destroy (responder_templates_t **self_p);

/* How many templates there are, and the name of the one at index in file order (NULL past the end). */
size_t responder_templates_size (const responder_templates_t *self);
const char *responder_templates_name (const responder_templates_t *self, size_t index);
/* The text of the template called name, as written in the file, or NULL. Borrowed. */
const char *responder_templates_text (const responder_templates_t *self, const char *name);

/* Renders the reply to context down the ladder (above) and returns it, cleaned
   by the guardrails and at most CV_REPLY_MAX_BYTES, malloc'd for the caller to free; *used gets
   the name of the template that rendered it, borrowed from self. NULL only when out of memory.
   Each template tried is added to steps (unless NULL): TEMPLATE, STATIC or HANDOFF, with why it
   did not render. The rung that answered and those skipped are logged to log (may be NULL) at
   debug, each by its kind (rule, outcome, rule.status, outcome.status, actions.status,
   stopped.reason, stopped.reason.stage, static, fallback), a reply refused by the guardrails at
   warn, with request_id and trace_id (may be NULL). */
char *responder_templates_render (const responder_templates_t *self, const json_t *context, const char **used,
                                  responder_steps_t *steps, cv_log_t *log, const char *request_id,
                                  const char *trace_id) CV_MUST_CHECK;

void responder_templates_test (bool verbose);

#endif
