/* The intent worker's decision order: rules, the trained model, the LLM, the model's guess. */
#include "intent_classifier.h"

#include <arpa/inet.h>
#include <assert.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_llm.h"
#include "intent_rules.h"
#include "intent_model_file.h"
#include "intent_slots.h"

#define DEFAULT_CANDIDATES 5
#define DEFAULT_LLM_TIMEOUT_MS 2000
#define LLM_REPLY_MARGIN_MS 20 /* left for the rest of the request after the LLM answers */

/* Read-only once loaded: what every thread's classifier reads. */
struct _intent_knowledge_t {
    intent_rules_t *rules;
    intent_slots_t *slots;
    intent_model_t *model; /* NULL: rules only */
    float threshold;
    size_t candidates;
    long llm_timeout_ms;
    bool has_llm;
    bool llm_json_mode;         /* llm_output: json_object, for a server without JSON-schema output */
    json_t *llm_schema;         /* when has_llm and not llm_json_mode: {"intent": one of the labels} */
    cv_llm_config_t llm_config; /* when has_llm: each classifier makes its own client */
    char *llm_system;           /* the LLM's instructions, listing the labels */
    cv_log_t *log;              /* borrowed, may be NULL */
};

/* One thread's: the knowledge it reads, and what classifying writes. */
struct _intent_classifier_t {
    const intent_knowledge_t *knowledge;
    intent_knowledge_t *owned; /* the knowledge when this classifier made it, else NULL */
    intent_rules_scratch_t *rules;
    intent_slots_scratch_t *slots;
    intent_scratch_t *model; /* NULL without a model */
    cv_llm_t *llm;           /* NULL: no LLM */
    cv_log_t *log;           /* borrowed, may be NULL */
};

static const char *const s_classifier_keys[] = {"model",          "threshold",  "candidates",
                                                "llm_timeout_ms", "llm_output", NULL};

static uint64_t
s_now_ms (void)
{
    struct timeval now;
    gettimeofday (&now, NULL);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_usec / 1000;
}

/* The shape of the LLM's answer: {"intent": one of the model's labels}, nothing else. */
static json_t *
s_llm_schema (const intent_model_t *model)
{
    json_t *labels = json_array ();
    for (size_t i = 0; i < intent_model_label_count (model); i++)
        json_array_append_new (labels, json_string (intent_model_label (model, i)));
    return json_pack ("{s:s, s:{s:{s:s, s:o}}, s:[s], s:b}", "type", "object", "properties", "intent", "type", "string",
                      "enum", labels, "required", "intent", "additionalProperties", false);
}

/* The LLM's instructions: choose one label, answer in JSON. */
static char *
s_llm_system (const intent_model_t *model)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    fputs ("You classify one message from a bank's customer into exactly one intent. The intents are: ", out);
    for (size_t i = 0; i < intent_model_label_count (model); i++)
        fprintf (out, "%s%s", i ? ", " : "", intent_model_label (model, i));
    fputs (". Answer with a JSON object and nothing else: {\"intent\": \"<one of the intents above>\"}.", out);
    fclose (out);
    return text;
}

static int
s_load_section (intent_knowledge_t *self, cv_config_t *agent, const char *model_override, cv_error_t *err)
{
    cv_node_t *root = cv_config_root (agent);
    cv_node_t *section = cv_node_get (root, "classifier");
    if (!section && !model_override)
        return 0;
    if (section && cv_config_known_keys (agent, section, "classifier", s_classifier_keys, err))
        return -1;
    const char *path = model_override;
    if (!path && cv_config_string (agent, section, "model", "classifier", true, &path, err))
        return -1;
    self->model = intent_model_file_load (path, err);
    if (!self->model) {
        cv_error_prefix (err, "intent model %s (train one with `conveyor train` or `make`)", path);
        return -1;
    }
    self->threshold = intent_model_threshold (self->model);
    long candidates = DEFAULT_CANDIDATES, timeout = DEFAULT_LLM_TIMEOUT_MS;
    if (section) {
        if (cv_config_int (agent, section, "candidates", "classifier", 1, INTENT_MODEL_TOP_MAX, &candidates, err)
            || cv_config_int (agent, section, "llm_timeout_ms", "classifier", 1, 600000, &timeout, err))
            return -1;
        const char *threshold = NULL, *output = NULL;
        if (cv_config_string (agent, section, "threshold", "classifier", false, &threshold, err)
            || cv_config_string (agent, section, "llm_output", "classifier", false, &output, err))
            return -1;
        if (output && strcmp (output, "schema") != 0 && strcmp (output, "json_object") != 0)
            return cv_config_fail (agent, cv_node_get (section, "llm_output"), "classifier.llm_output", err,
                                   "must be schema or json_object, not %.40s", output);
        self->llm_json_mode = output && strcmp (output, "json_object") == 0;
        if (threshold && strcmp (threshold, "model") != 0) {
            char *end;
            double value = strtod (threshold, &end);
            if (*end || !(value >= 0.0 && value <= 1.0))
                return cv_config_fail (agent, cv_node_get (section, "threshold"), "classifier.threshold", err,
                                       "must be `model` or a number within 0..1");
            self->threshold = (float) value;
        }
    }
    self->candidates = (size_t) candidates;
    self->llm_timeout_ms = timeout;
    return 0;
}

static int
s_load_llm (intent_knowledge_t *self, cv_config_t *agent, const cv_settings_t *settings, cv_error_t *err)
{
    cv_llm_config_t *config = &self->llm_config;
    cv_llm_config_defaults (config);
    cv_node_t *section = cv_node_get (cv_config_root (agent), "llm");
    if (section && cv_llm_config_load (config, agent, section, "llm", err))
        return -1;
    if (cv_llm_config_apply_settings (config, settings, err))
        return -1;
    if (self->log)
        cv_llm_config_log (config, self->log); /* the effective LLM settings, the key's value never */
    if (!cv_llm_config_enabled (config))
        return 0;
    if (!self->model)
        return cv_error_set (err, CV_ERR_INVALID, "llm",
                             "an LLM is configured but no classifier model: the LLM chooses among the model's labels");
    config->json_object = true;
    self->has_llm = true;
    self->llm_system = s_llm_system (self->model);
    if (!self->llm_json_mode)
        self->llm_schema = s_llm_schema (self->model);
    return 0;
}

intent_knowledge_t *
intent_knowledge_new (cv_config_t *agent, const char *model_path, const cv_settings_t *settings, cv_log_t *log,
                      cv_error_t *err)
{
    assert (agent);
    intent_knowledge_t *self = cv_calloc (1, sizeof *self);
    self->log = log;
    self->candidates = DEFAULT_CANDIDATES;
    self->llm_timeout_ms = DEFAULT_LLM_TIMEOUT_MS;
    self->rules = intent_rules_new (agent, log, err);
    self->slots = self->rules ? intent_slots_new (agent, err) : NULL;
    if (!self->slots || s_load_section (self, agent, model_path, err) || s_load_llm (self, agent, settings, err))
        intent_knowledge_destroy (&self);
    else if (log)
        cv_log_debug (log, "intent classifier from %s: %zu intents, model %s (threshold %.3f), LLM %s",
                      cv_config_name (agent), intent_rules_count (self->rules), self->model ? "yes" : "no",
                      self->threshold, self->has_llm ? "yes" : "no");
    return self;
}

void
intent_knowledge_destroy (intent_knowledge_t **self_p)
{
    assert (self_p);
    intent_knowledge_t *self = *self_p;
    if (!self)
        return;
    intent_rules_destroy (&self->rules);
    intent_slots_destroy (&self->slots);
    intent_model_destroy (&self->model);
    free (self->llm_system);
    json_decref (self->llm_schema);
    free (self);
    *self_p = NULL;
}

intent_classifier_t *
intent_classifier_new_from (const intent_knowledge_t *knowledge, cv_log_t *log, cv_error_t *err)
{
    assert (knowledge);
    intent_classifier_t *self = cv_calloc (1, sizeof *self);
    self->knowledge = knowledge;
    self->log = log;
    self->rules = intent_rules_scratch_new (knowledge->rules);
    self->slots = intent_slots_scratch_new (knowledge->slots);
    self->model = knowledge->model ? intent_scratch_new (knowledge->model) : NULL;
    if (!self->rules || !self->slots || (knowledge->model && !self->model)) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        intent_classifier_destroy (&self);
        return NULL;
    }
    if (knowledge->has_llm
        && (!(self->llm = cv_llm_new (&knowledge->llm_config, log, err))
            || (knowledge->llm_schema && cv_llm_set_json_schema (self->llm, "intent", knowledge->llm_schema, err))))
        intent_classifier_destroy (&self);
    return self;
}

intent_classifier_t *
intent_classifier_new (cv_config_t *agent, const char *model_path, cv_log_t *log, cv_error_t *err)
{
    intent_knowledge_t *knowledge = intent_knowledge_new (agent, model_path, NULL, log, err);
    if (!knowledge)
        return NULL;
    intent_classifier_t *self = intent_classifier_new_from (knowledge, log, err);
    if (self)
        self->owned = knowledge;
    else
        intent_knowledge_destroy (&knowledge);
    return self;
}

void
intent_classifier_destroy (intent_classifier_t **self_p)
{
    assert (self_p);
    intent_classifier_t *self = *self_p;
    if (!self)
        return;
    intent_rules_scratch_destroy (&self->rules);
    intent_slots_scratch_destroy (&self->slots);
    intent_scratch_destroy (&self->model);
    cv_llm_destroy (&self->llm);
    intent_knowledge_destroy (&self->owned);
    free (self);
    *self_p = NULL;
}

const intent_knowledge_t *
intent_classifier_knowledge (const intent_classifier_t *self)
{
    assert (self);
    return self->knowledge;
}

bool
intent_classifier_knows (const intent_classifier_t *self, const char *name)
{
    const intent_knowledge_t *knowledge = self->knowledge;
    size_t index;
    return intent_rules_known (knowledge->rules, name)
           || (knowledge->model && intent_model_find (knowledge->model, name, &index));
}

bool
intent_classifier_has_model (const intent_classifier_t *self)
{
    return self->knowledge->model != NULL;
}

bool
intent_classifier_has_llm (const intent_classifier_t *self)
{
    return self->llm != NULL;
}

float
intent_classifier_threshold (const intent_classifier_t *self)
{
    return self->knowledge->threshold;
}

void
intent_result_reset (intent_result_t *result)
{
    if (!result)
        return;
    json_decref (result->slots);
    memset (result, 0, sizeof *result);
}

/* The candidates' scores as shares of a softmax over their linear scores. */
static void
s_candidates (intent_result_t *result, const intent_prediction_t *prediction)
{
    double total = 0.0, best = prediction->count ? prediction->top[0].score : 0.0;
    for (size_t i = 0; i < prediction->count; i++)
        total += exp ((double) prediction->top[i].score - best);
    for (size_t i = 0; i < prediction->count; i++) {
        result->candidates[i].name = prediction->top[i].name;
        result->candidates[i].score = (float) (exp ((double) prediction->top[i].score - best) / total);
    }
    result->candidate_count = prediction->count;
}

/* Asks the LLM to choose, when its worst case fits budget; returns the label (borrowed from the
   model) or NULL, saying why in result->llm_note; result->spend gets what the call spent. */
static const char *
s_ask_llm (intent_classifier_t *self, const char *text, const intent_prediction_t *prediction, uint64_t deadline_ms,
           cv_budget_t *budget, intent_result_t *result)
{
    const intent_knowledge_t *knowledge = self->knowledge;
    uint64_t now = s_now_ms ();
    uint64_t until = now + (uint64_t) knowledge->llm_timeout_ms;
    if (deadline_ms) {
        uint64_t latest = deadline_ms > LLM_REPLY_MARGIN_MS ? deadline_ms - LLM_REPLY_MARGIN_MS : 0;
        if (latest < until)
            until = latest;
    }
    if (until <= now) {
        snprintf (result->llm_note, sizeof result->llm_note, "not asked: no time left");
        return NULL;
    }
    char user[CV_TEXT_MAX_BYTES + 512];
    int used = snprintf (user, sizeof user, "Message: %s\nMost likely intents, best first:", text);
    for (size_t i = 0; i < prediction->count && used > 0 && (size_t) used < sizeof user; i++)
        used += snprintf (user + used, sizeof user - (size_t) used, " %s", prediction->top[i].name);
    cv_llm_message_t messages[] = {{CV_LLM_SYSTEM, knowledge->llm_system}, {CV_LLM_USER, user}};
    uint64_t worst = cv_llm_worst_cost (self->llm, messages, 2);
    result->has_spend = true;
    if (!cv_budget_reserve (budget, worst)) {
        char worst_text[CV_BUDGET_TEXT_BYTES], left_text[CV_BUDGET_TEXT_BYTES];
        cv_budget_format (worst, worst_text);
        cv_budget_format (budget->left, left_text);
        result->spend.over_budget = true;
        snprintf (result->llm_note, sizeof result->llm_note,
                  "not asked: over budget, the call could cost %s and %s is left", worst_text, left_text);
        return NULL;
    }
    cv_llm_reply_t reply;
    memset (&reply, 0, sizeof reply);
    cv_error_t err;
    const char *label = NULL;
    result->llm_asked = true;
    result->llm_started_us = zclock_usecs ();
    int rc = cv_llm_chat (self->llm, messages, 2, until, &reply, &err);
    result->llm_finished_us = zclock_usecs ();
    snprintf (result->llm_model, sizeof result->llm_model, "%s",
              reply.model[0] ? reply.model : knowledge->llm_config.model);
    bool within = cv_budget_settle (budget, worst, reply.cost_micros);
    result->spend.prompt_tokens = (uint64_t) reply.prompt_tokens;
    result->spend.completion_tokens = (uint64_t) reply.completion_tokens;
    result->spend.cost_micros = reply.cost_micros;
    if (rc)
        snprintf (result->llm_note, sizeof result->llm_note, "failed: %s", err.message);
    else {
        json_t *answer = cv_llm_json_content (&reply, &err);
        const char *chosen = json_string_value (json_object_get (answer, "intent"));
        size_t index;
        if (!answer)
            snprintf (result->llm_note, sizeof result->llm_note, "refused: %s", err.message);
        else if (!chosen)
            snprintf (result->llm_note, sizeof result->llm_note, "refused: no string \"intent\" in the answer");
        else if (!intent_model_find (knowledge->model, chosen, &index))
            snprintf (result->llm_note, sizeof result->llm_note, "refused: %.64s is not an intent", chosen);
        else {
            label = intent_model_label (knowledge->model, index);
            snprintf (result->llm_note, sizeof result->llm_note, "chose %s", label);
        }
        json_decref (answer);
    }
    result->llm_status = rc ? "failed" : label ? "answered" : "refused";
    if (!within) {
        char cost_text[CV_BUDGET_TEXT_BYTES], worst_text[CV_BUDGET_TEXT_BYTES];
        cv_budget_format (reply.cost_micros, cost_text);
        cv_budget_format (worst, worst_text);
        size_t noted = strlen (result->llm_note);
        snprintf (result->llm_note + noted, sizeof result->llm_note - noted, "; it cost %s, over its worst case %s",
                  cost_text, worst_text);
    }
    cv_llm_reply_reset (&reply);
    return label;
}

int
intent_classifier_classify (intent_classifier_t *self, const char *text, uint64_t deadline_ms, cv_budget_t *budget,
                            int year, int month, int day, intent_result_t *result, cv_error_t *err)
{
    assert (self && text && result);
    const intent_knowledge_t *knowledge = self->knowledge;
    memset (result, 0, sizeof *result);
    result->slots = intent_slots_extract (knowledge->slots, self->slots, text, year, month, day, err);
    if (!result->slots)
        return -1;

    intent_match_t match;
    if (intent_rules_classify (knowledge->rules, self->rules, text, &match, err)) {
        intent_match_reset (&match);
        intent_result_reset (result);
        return -1;
    }
    if (match.method == CONVEYOR__V1__INTENT__METHOD__RULE || !knowledge->model) {
        result->name = match.name;
        result->confidence = match.confidence;
        result->method = match.method;
        result->low_confidence = match.method != CONVEYOR__V1__INTENT__METHOD__RULE;
        snprintf (result->rule, sizeof result->rule, "%s", match.rule);
        json_object_update (result->slots, match.slots); /* the rule's named groups win */
        if (match.method == CONVEYOR__V1__INTENT__METHOD__RULE) {
            result->candidates[0].name = match.name;
            result->candidates[0].score = 1.0f;
            result->candidate_count = 1;
        }
        intent_match_reset (&match);
        return 0;
    }
    intent_match_reset (&match);

    intent_prediction_t prediction;
    intent_model_predict (knowledge->model, self->model, text, strlen (text), knowledge->candidates, &prediction);
    s_candidates (result, &prediction);
    result->name = prediction.top[0].name;
    result->confidence = prediction.confidence;
    if (prediction.confidence >= knowledge->threshold) {
        result->method = CONVEYOR__V1__INTENT__METHOD__MODEL;
        return 0;
    }
    cv_budget_t unlimited;
    if (!budget) {
        cv_budget_from_wire (&unlimited, NULL);
        budget = &unlimited;
    }
    const char *chosen = self->llm ? s_ask_llm (self, text, &prediction, deadline_ms, budget, result) : NULL;
    if (chosen) {
        /* The LLM's pick, with the model's share for it among the candidates (0 when it was none). */
        result->name = chosen;
        result->method = CONVEYOR__V1__INTENT__METHOD__LLM;
        result->confidence = 0.0f;
        for (size_t i = 0; i < result->candidate_count; i++)
            if (strcmp (result->candidates[i].name, chosen) == 0)
                result->confidence = result->candidates[i].score;
        return 0;
    }
    result->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
    result->low_confidence = true;
    if (self->llm && self->log)
        cv_log_debug (self->log, "LLM %s; keeping the model's guess %s", result->llm_note, result->name);
    return 0;
}

/*  --------------------------------------------------------------------------
    Self-test: the demo model, rules in front of it, the fallback, and the budget's say over the
    LLM step. The LLM answering runs against the stand-in LLM server in
    tests/isolation/intent_test.c. */

/* The agent file's text is written in text (size bytes), which the document reads from: it must
   outlive the document. */
static cv_config_t *
s_test_agent (char *text, size_t size, const char *model_path, const char *classifier_section, cv_error_t *err)
{
    snprintf (text, size,
              "intents:\n"
              "  lost_or_stolen_card:\n"
              "    patterns: ['(?i)\\bstolen\\b.*\\bcard\\b(?:.*\\bending (?<card_last4>\\d{4}))?']\n"
              "%s",
              classifier_section ? classifier_section : "");
    if (model_path && classifier_section) {
        char *at = strstr (text, "MODEL");
        if (at) {
            char rest[2048];
            snprintf (rest, sizeof rest, "%s%s", model_path, at + 5);
            snprintf (at, size - (size_t) (at - text), "%s", rest);
        }
    }
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, err);
    assert (agent);
    return agent;
}

static intent_classifier_t *
s_test_classifier (const char *model_path, const char *classifier_section, cv_error_t *err)
{
    char text[2048];
    cv_config_t *agent = s_test_agent (text, sizeof text, model_path, classifier_section, err);
    intent_classifier_t *classifier = intent_classifier_new (agent, NULL, NULL, err);
    cv_config_destroy (&agent);
    return classifier;
}

/* Texts a thread classifies over and over, each against the answer one thread alone gave. */
static const char *const s_shared_texts[] = {
    "what exchange rate do you use",
    "my card was stolen, the card ending 4417, on 15 March",
    "hello there",
    "my top up failed twice",
    "where is my new card",
    "I paid 12.50 EUR yesterday",
};
#define SHARED_TEXTS (sizeof s_shared_texts / sizeof s_shared_texts[0])

typedef struct {
    intent_classifier_t *classifier;
    const char *names[SHARED_TEXTS]; /* what one thread alone found */
    float confidences[SHARED_TEXTS];
    bool agreed;
} sharer_t;

static void *
s_sharer (void *args)
{
    sharer_t *sharer = args;
    sharer->agreed = true;
    for (size_t round = 0; round < 200; round++)
        for (size_t i = 0; i < SHARED_TEXTS; i++) {
            intent_result_t result;
            cv_error_t err;
            int rc =
                intent_classifier_classify (sharer->classifier, s_shared_texts[i], 0, NULL, 2026, 3, 18, &result, &err);
            sharer->agreed &=
                rc == 0 && strcmp (result.name, sharer->names[i]) == 0 && result.confidence == sharer->confidences[i];
            intent_result_reset (&result);
        }
    return NULL;
}

/* The budget decides whether the LLM is asked. Its endpoint refuses connections (a socket bound
   and never listening), so an asked LLM fails at once, and says so in the note. */
static void
s_test_budget (const char *path, const char *guess)
{
    int sock = socket (AF_INET, SOCK_STREAM, 0);
    assert (sock >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert (bind (sock, (struct sockaddr *) &address, sizeof address) == 0);
    socklen_t size = sizeof address;
    assert (getsockname (sock, (struct sockaddr *) &address, &size) == 0);
    /* The prompt is free and an answer of 10 tokens at 1 unit per 1,000: the worst case is 10,000 micros. */
    char section[512];
    snprintf (section, sizeof section,
              "classifier: {model: MODEL, threshold: 1}\n"
              "llm: {base_url: 'http://127.0.0.1:%d/v1', model: m, max_retries: 0, max_tokens: 10,\n"
              "      price_prompt_per_1k: 0, price_completion_per_1k: 1}\n",
              ntohs (address.sin_port));
    cv_error_t err;
    intent_classifier_t *classifier = s_test_classifier (path, section, &err);
    assert (classifier && intent_classifier_has_llm (classifier));
    /* the answer's shape asked for: one of the model's labels, nothing else */
    const json_t *schema = classifier->knowledge->llm_schema;
    const json_t *labels = json_object_get (json_object_get (json_object_get (schema, "properties"), "intent"), "enum");
    assert (json_array_size (labels) == intent_model_label_count (classifier->knowledge->model));
    assert (json_is_false (json_object_get (schema, "additionalProperties")));
    intent_result_t result;
    uint64_t deadline = s_now_ms () + 5000;

    /* A micro short of the worst case: not asked, the model's guess, over_budget, nothing spent. */
    cv_budget_t budget;
    cv_budget_limit (&budget, 9999);
    assert (intent_classifier_classify (classifier, "hello there", deadline, &budget, 2026, 3, 18, &result, &err) == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && result.low_confidence);
    assert (strcmp (result.name, guess) == 0);
    assert (result.has_spend && result.spend.over_budget);
    assert (result.spend.prompt_tokens == 0 && result.spend.completion_tokens == 0 && result.spend.cost_micros == 0);
    assert (budget.left == 9999 && budget.spent == 0);
    cv_assert_that (strstr (result.llm_note, "over budget") && strstr (result.llm_note, "0.010000")
                        && strstr (result.llm_note, "0.009999"),
                    "note: %s", result.llm_note);
    intent_result_reset (&result);

    /* Exactly the worst case: asked; the call failed, cost nothing, and the reservation came back. */
    cv_budget_limit (&budget, 10000);
    assert (intent_classifier_classify (classifier, "hello there", deadline, &budget, 2026, 3, 18, &result, &err) == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && strcmp (result.name, guess) == 0);
    cv_assert_that (strncmp (result.llm_note, "failed: ", 8) == 0, "note: %s", result.llm_note);
    assert (result.has_spend && !result.spend.over_budget && result.spend.cost_micros == 0);
    assert (budget.left == 10000 && budget.spent == 0);
    intent_result_reset (&result);

    /* No budget: asked, as before budgets, and the spend still told. */
    assert (intent_classifier_classify (classifier, "hello there", deadline, NULL, 2026, 3, 18, &result, &err) == 0);
    assert (strncmp (result.llm_note, "failed: ", 8) == 0 && result.has_spend && !result.spend.over_budget);
    intent_result_reset (&result);

    /* The LLM not needed (a rule decides) or out of time: no spend, the budget untouched, even empty. */
    cv_budget_limit (&budget, 0);
    assert (intent_classifier_classify (classifier, "a stolen card", deadline, &budget, 2026, 3, 18, &result, &err)
            == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__RULE && !result.has_spend && result.llm_note[0] == '\0');
    intent_result_reset (&result);
    assert (intent_classifier_classify (classifier, "hello there", 1, &budget, 2026, 3, 18, &result, &err) == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && !result.has_spend);
    assert (strcmp (result.llm_note, "not asked: no time left") == 0);
    assert (budget.left == 0 && budget.spent == 0);
    intent_result_reset (&result);
    intent_classifier_destroy (&classifier);
    close (sock);
}

void
intent_classifier_test (bool verbose)
{
    cv_error_t err;
    /* The demo model the build trained from Banking77 (the trainer is the learning kit's, which the
       worker does not carry). */
    const char *path = CONVEYOR_DEMO_MODEL;

    /* The model decides when confident enough (threshold 0: always); rules still come first. */
    intent_classifier_t *classifier =
        s_test_classifier (path, "classifier: {model: MODEL, threshold: 0, candidates: 3}\n", &err);
    assert (classifier);
    assert (intent_classifier_has_model (classifier) && !intent_classifier_has_llm (classifier));
    assert (intent_classifier_knows (classifier, "exchange_rate")
            && intent_classifier_knows (classifier, "lost_or_stolen_card"));
    intent_result_t result;
    assert (
        intent_classifier_classify (classifier, "what exchange rate do you use", 0, NULL, 2026, 3, 18, &result, &err)
        == 0);
    assert (strcmp (result.name, "exchange_rate") == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__MODEL && !result.low_confidence);
    assert (result.candidate_count == 3 && strcmp (result.candidates[0].name, "exchange_rate") == 0);
    float total = 0;
    for (size_t i = 0; i < result.candidate_count; i++)
        total += result.candidates[i].score;
    assert (fabsf (total - 1.0f) < 1e-4f);
    intent_result_reset (&result);

    assert (intent_classifier_classify (classifier, "my card was stolen, the card ending 4417, on 15 March", 0, NULL,
                                        2026, 3, 18, &result, &err)
            == 0);
    assert (strcmp (result.name, "lost_or_stolen_card") == 0 && result.method == CONVEYOR__V1__INTENT__METHOD__RULE);
    assert (strcmp (result.rule, "lost_or_stolen_card:1") == 0 && result.confidence == 1.0f);
    assert (strcmp (json_string_value (json_object_get (result.slots, "card_last4")), "4417") == 0);
    assert (strcmp (json_string_value (json_object_get (result.slots, "date")), "2026-03-15") == 0);
    intent_result_reset (&result);
    intent_classifier_destroy (&classifier);

    /* One knowledge, loaded once, shared by classifiers on several threads at once: each gives
       what one alone gives. */
    char text[2048];
    cv_config_t *agent = s_test_agent (text, sizeof text, path, "classifier: {model: MODEL, threshold: 0.5}\n", &err);
    intent_knowledge_t *knowledge = intent_knowledge_new (agent, NULL, NULL, NULL, &err);
    cv_config_destroy (&agent);
    assert (knowledge);
    sharer_t sharers[3];
    pthread_t threads[3];
    for (size_t t = 0; t < 3; t++) {
        sharers[t].classifier = intent_classifier_new_from (knowledge, NULL, &err);
        assert (sharers[t].classifier && intent_classifier_knowledge (sharers[t].classifier) == knowledge);
    }
    for (size_t i = 0; i < SHARED_TEXTS; i++) {
        assert (
            intent_classifier_classify (sharers[0].classifier, s_shared_texts[i], 0, NULL, 2026, 3, 18, &result, &err)
            == 0);
        for (size_t t = 0; t < 3; t++) {
            sharers[t].names[i] = result.name; /* borrowed from the knowledge */
            sharers[t].confidences[i] = result.confidence;
        }
        intent_result_reset (&result);
    }
    for (size_t t = 0; t < 3; t++)
        assert (pthread_create (&threads[t], NULL, s_sharer, &sharers[t]) == 0);
    for (size_t t = 0; t < 3; t++) {
        assert (pthread_join (threads[t], NULL) == 0);
        assert (sharers[t].agreed);
        intent_classifier_destroy (&sharers[t].classifier);
    }
    intent_knowledge_destroy (&knowledge);
    assert (!knowledge);
    intent_knowledge_destroy (&knowledge);

    /* Below the threshold, with no LLM: the model's guess, marked low confidence. */
    classifier = s_test_classifier (path, "classifier: {model: MODEL, threshold: 1}\n", &err);
    assert (classifier);
    assert (intent_classifier_classify (classifier, "hello there", 0, NULL, 2026, 3, 18, &result, &err) == 0);
    assert (result.method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && result.low_confidence);
    assert (intent_classifier_knows (classifier, result.name) && result.confidence < 1.0f);
    assert (result.llm_note[0] == '\0' && !result.has_spend); /* no LLM, nothing spent or held back */
    char guess[CV_NAME_MAX_BYTES + 1];
    snprintf (guess, sizeof guess, "%s", result.name);
    intent_result_reset (&result);
    /* bad input is refused, not classified */
    assert (intent_classifier_classify (classifier, "caf\xc3", 0, NULL, 2026, 3, 18, &result, &err) == -1);
    intent_classifier_destroy (&classifier);

    s_test_budget (path, guess);

    /* Without a model: rules, then `unknown` by the fallback method. */
    classifier = s_test_classifier (NULL, NULL, &err);
    assert (classifier && !intent_classifier_has_model (classifier));
    assert (intent_classifier_classify (classifier, "what is the exchange rate", 0, NULL, 2026, 3, 18, &result, &err)
            == 0);
    assert (strcmp (result.name, INTENT_UNKNOWN) == 0 && result.method == CONVEYOR__V1__INTENT__METHOD__FALLBACK);
    intent_result_reset (&result);
    intent_classifier_destroy (&classifier);

    /* The section's mistakes, named with file and line. */
    assert (!s_test_classifier (path, "classifier: {model: MODEL, threshold: high}\n", &err));
    assert (strstr (err.message, "classifier.threshold") && strstr (err.message, "agent.yaml:"));
    assert (!s_test_classifier (path, "classifier: {model: MODEL, candidates: 99}\n", &err));
    assert (strstr (err.message, "classifier.candidates"));
    assert (!s_test_classifier (path, "classifier: {model: MODEL, modle: x}\n", &err));
    assert (strstr (err.message, "unknown key"));
    assert (!s_test_classifier (path, "classifier: {model: /nonexistent/intent.model}\n", &err));
    assert (strstr (err.message, "/nonexistent/intent.model"));
    assert (!s_test_classifier (path, "llm: {base_url: 'http://127.0.0.1:1/v1', model: m}\n", &err));
    assert (strstr (err.message, "no classifier model"));
    assert (!s_test_classifier (path, "classifier: {model: MODEL, llm_output: yaml}\n", &err));
    assert (strstr (err.message, "classifier.llm_output: must be schema or json_object"));
    /* JSON mode alone, for a server without JSON-schema output */
    intent_classifier_t *json_mode = s_test_classifier (
        path,
        "classifier: {model: MODEL, llm_output: json_object}\nllm: {base_url: 'http://127.0.0.1:1/v1', model: m}\n",
        &err);
    cv_assert_that (json_mode && intent_classifier_has_llm (json_mode) && !json_mode->knowledge->llm_schema, "%s",
                    json_mode ? "a schema" : err.message);
    intent_classifier_destroy (&json_mode);
    if (verbose)
        printf ("intent_classifier: ok\n");
}
