/* LLM-written replies, where the agent file asks for them: which requests, what the LLM sees,
   and the call, held to the request's budget. The template ladder stays the fallback.

     llm_replies:
       for: [card_on_its_way, fx_rate]    -- deciding policies (decision.rule), outcomes or intents
       instructions: >-                   -- the system message: how to write the reply
         You are the support desk of a bank. Answer in two sentences, from the facts only.
       visible: [evidence.cards_in_delivery.0.last4, evidence.fx_rate.0.rate]
                                          -- context paths the LLM may see (cv_context.h)
       flagged_input: templates           -- a customer's text with a known injection phrasing
                                             (cv_injection.h): templates (the default: it never
                                             reaches the LLM) or llm

   With the `llm:` section (cv_llm.h) or the LLM settings giving an endpoint and a model, a request
   whose decision.rule, decision.outcome or intent.name is in `for` gets its reply from the LLM;
   a request that stopped early, or whose decision has actions, never does (its reply must say
   exactly what happened: the templates for it do). The LLM gets the instructions (system), the
   facts (system: a JSON object of the intent's name, the decision's outcome and reason, and the
   value at each visible path that has one, nothing else of the customer's data), the conversation
   before the text when the request has one (its context: each turn the user's or the assistant's
   message, as the client sent it), and the customer's text alone (user): what the customer and the
   client wrote is never spliced into instructions.

   The call reserves its worst case from the request's budget first and is not made when that
   does not fit; what it cost is in the spend either way. Its answer must pass the output
   guardrails (responder_guard.h), and show no personal data (an e-mail address, a phone number,
   an IBAN, a card number) that the messages it was given do not hold (responder_guard_personal); a call that fails,
   times out or is refused leaves the reply to the templates. */
#ifndef RESPONDER_LLM_H
#define RESPONDER_LLM_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_budget.h"
#include "cv_config.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_llm.h"
#include "cv_log.h"
#include "cv_settings.h"
#include "responder_steps.h"

typedef struct _responder_llm_t responder_llm_t;

/* Reads `llm_replies` and the LLM configuration from agent and settings into *out: NULL when the
   agent file has no `llm_replies` or no LLM is configured. -1 with err (file:line:key) on a
   mistake: an unknown key, `for` or `visible` not lists of names and paths, no instructions. */
int responder_llm_load (cv_config_t *agent, const cv_settings_t *settings, cv_log_t *log, responder_llm_t **out,
                        cv_error_t *err) CV_MUST_CHECK;
void responder_llm_destroy (responder_llm_t **self_p);

/* A client for one handler thread (cv_llm's rules), or NULL with err. */
cv_llm_t *responder_llm_client (const responder_llm_t *self, cv_log_t *log, cv_error_t *err) CV_MUST_CHECK;

/* The main model's name. */
const char *responder_llm_model (const responder_llm_t *self);
/* Whether the LLM writes replies to texts flagged with injection phrasings (flagged_input: llm). */
bool responder_llm_writes_flagged (const responder_llm_t *self);

/* Whether the reply to context (cv_context.h, the responder's) is the LLM's to write. */
bool responder_llm_wanted (const responder_llm_t *self, const json_t *context);

/* What one attempt at an LLM-written reply did. */
typedef struct {
    bool asked;             /* a call was made */
    bool over_budget;       /* ...or not, its worst case not fitting the budget */
    uint64_t prompt_tokens; /* what the call spent */
    uint64_t completion_tokens;
    uint64_t cost_micros;
    bool cached;    /* the answer came from the cache: nothing was sent */
    char note[256]; /* why there is no reply, for the log */
    /* when asked, for its span: the call's time (zclock_usecs), the model that answered (the main
       one when none did), and its outcome: answered, cached, refused (by the guardrails), failed */
    int64_t started_us, finished_us;
    char model[CV_STEP_NAME_MAX_BYTES];
    const char *status;
} responder_llm_outcome_t;

/* Asks llm to write the reply to request's text (its user's, after its context's turns) with
   context's facts, giving up at deadline_ms,
   paid from budget; with the `llm:` section's answer cache (cache_ttl_ms), the same facts and text
   within the TTL are answered from it for this user only, at no cost, and a cached answer the
   guardrails refuse is dropped from it. Returns the reply, cleaned by the guardrails and at most max_bytes, malloc'd;
   or NULL with outcome->note saying why (over budget, the call failed, the guardrails refused it). The rungs it tried
   are added to steps: the main model (LLM), and the fallback model (LLM_FALLBACK) where it was asked, each with why it
   did not answer. */
char *responder_llm_write (const responder_llm_t *self, cv_llm_t *llm, const json_t *context,
                           const Conveyor__V1__RespondRequest *request, uint64_t deadline_ms, size_t max_bytes,
                           cv_budget_t *budget, responder_llm_outcome_t *outcome, responder_steps_t *steps);

void responder_llm_test (bool verbose);

#endif
