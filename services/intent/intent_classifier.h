/* The intent worker's decision order, as logic the worker and `conveyor eval` share:

     1. the agent's rules (intent_rules): exact, must-win patterns   -> method RULE, confidence 1
     2. the trained model (intent_model), when its calibrated confidence reaches the threshold
                                                                    -> method MODEL
     3. below the threshold, the LLM when one is configured: asked to choose one of the model's
        labels given the text and the model's best candidates, for an answer in the shape of a
        JSON schema ({"intent": one of the labels}, cv_llm_set_json_schema), which cv_llm
        enforces on what comes back, and checked against the label list again
                                                                    -> method LLM
     4. otherwise (no LLM, or it failed, timed out, answered off the list or did not fit the
        request's budget): the model's best guess, marked low_confidence -> method FALLBACK
   Without a model (an agent file with no `classifier` section) text that no rule matches is
   `unknown`, by the fallback method, as before.

   The LLM costs money, so the request's budget decides (cv_budget.h): before the call its worst
   case (cv_llm_worst_cost) is reserved, and when that does not fit what is left the LLM is not
   asked: the intent is the model's guess, as without an LLM, and the spend says over_budget.
   After a call, answered or failed, what it did not cost is given back. The result's spend is
   the call's tokens and cost, for Intent.spend; there is none when the LLM was neither asked nor
   kept from being asked by the budget (a rule or the model decided, no LLM, no time left).

   Slots come from intent_slots (amounts, dates, card digits, references, countries, currencies,
   normalised), overridden by the named groups of the rule that matched.

   The agent file's section:
     classifier:
       model: build/models/banking77.model   # relative to the working directory
       threshold: model                      # or 0..1; `model` takes the one chosen at training
       candidates: 5                         # the model's best labels kept and shown to the LLM
       llm_timeout_ms: 2000                  # the LLM's share of a request's time, at most
       llm_output: schema                    # or json_object: JSON mode alone, for a server
                                             # that does not take a JSON schema
   and optionally `llm:` (see cv_llm.h).

   Threads: what is loaded from the agent file (the compiled rules and slot patterns, the model,
   the settings above) is an intent_knowledge_t, read-only once made, so a worker loads it once
   and all its threads share it. An intent_classifier_t serves one thread: its own PCRE2 match
   data, buffers and LLM client over a knowledge it borrows (intent_classifier_new_from), or over
   one of its own (intent_classifier_new, for a program with one thread). */
#ifndef INTENT_CLASSIFIER_H
#define INTENT_CLASSIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_budget.h"
#include "cv_config.h"
#include "cv_error.h"
#include "cv_log.h"
#include "cv_settings.h"
#include "intent_model.h"

typedef struct _intent_knowledge_t intent_knowledge_t;
typedef struct _intent_classifier_t intent_classifier_t;

/* A classification; plain data, released with intent_result_reset. */
typedef struct {
    const char *name; /* borrowed from the classifier */
    float confidence; /* 0..1 */
    Conveyor__V1__Intent__Method method;
    bool low_confidence;
    char rule[CV_NAME_MAX_BYTES + 1]; /* the rule that matched, or "" */
    json_t *slots;                    /* owned */
    struct {
        const char *name; /* borrowed */
        float score;      /* share of the candidates' softmax, 0..1 */
    } candidates[INTENT_MODEL_TOP_MAX];
    size_t candidate_count;
    char llm_note[160]; /* what the LLM step did, "" when it was not asked */
    /* What the LLM step spent, as Intent.spend: has_spend when the LLM was asked, or would have
       been but for the budget (over_budget, nothing spent). */
    bool has_spend;
    struct {
        uint64_t prompt_tokens;
        uint64_t completion_tokens;
        uint64_t cost_micros; /* cv_llm_reply_t's */
        bool over_budget;     /* the call's worst case did not fit: not asked */
    } spend;
    /* The LLM call, when one was made, for its span: its time (zclock_usecs), the model that
       answered (the main one when none did) and its outcome: answered, refused (the answer named
       no intent of the agent's), failed. */
    bool llm_asked;
    int64_t llm_started_us, llm_finished_us;
    char llm_model[CV_STEP_NAME_MAX_BYTES];
    const char *llm_status;
} intent_result_t;

/* Loads the agent file's `intents`, `classifier` and `llm` sections, and the model; model_path,
   when not NULL, overrides the file's classifier.model; the LLM settings come from settings
   (borrowed, may be NULL: then from the environment), as cv_llm_config_apply_settings reads them,
   and are logged. Nothing of agent is kept. NULL with err naming the file, line and key, or the
   model file's problem. log is borrowed, may be NULL. */
intent_knowledge_t *intent_knowledge_new (cv_config_t *agent, const char *model_path, const cv_settings_t *settings,
                                          cv_log_t *log, cv_error_t *err) CV_MUST_CHECK;
void intent_knowledge_destroy (intent_knowledge_t **self_p);

/* A classifier for one thread over knowledge (borrowed, read only; it must outlive the
   classifier), with its own LLM client when one is configured. NULL with err when the client
   cannot be made or memory runs out. */
intent_classifier_t *intent_classifier_new_from (const intent_knowledge_t *knowledge, cv_log_t *log,
                                                 cv_error_t *err) CV_MUST_CHECK;
/* The same over a knowledge of its own, loaded as intent_knowledge_new does. */
intent_classifier_t *intent_classifier_new (cv_config_t *agent, const char *model_path, cv_log_t *log,
                                            cv_error_t *err) CV_MUST_CHECK;
void intent_classifier_destroy (intent_classifier_t **self_p);

/* The knowledge the classifier reads (borrowed). */
const intent_knowledge_t *intent_classifier_knowledge (const intent_classifier_t *self);

/* Classifies text; deadline_ms (absolute, ms since the epoch) bounds the LLM step, and budget
   (borrowed; NULL: no budget) pays for it: the call is reserved from it and settled to its real
   cost, so that budget afterwards holds what the request may still spend; today (UTC year,
   month, day) anchors relative dates. -1 with err only for text that is not valid input. */
int intent_classifier_classify (intent_classifier_t *self, const char *text, uint64_t deadline_ms, cv_budget_t *budget,
                                int year, int month, int day, intent_result_t *result, cv_error_t *err) CV_MUST_CHECK;
void intent_result_reset (intent_result_t *result);

/* True when name is an intent this classifier can return. */
bool intent_classifier_knows (const intent_classifier_t *self, const char *name);
bool intent_classifier_has_model (const intent_classifier_t *self);
bool intent_classifier_has_llm (const intent_classifier_t *self);
/* The confidence at or above which the model decides alone. */
float intent_classifier_threshold (const intent_classifier_t *self);

void intent_classifier_test (bool verbose);

#endif
