/* The intent worker's service glue: IntentRequest in, Intent out, through intent_rules. */
#include "intent_server.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_launcher.h"
#include "cv_msgpack.h"
#include "cv_trace.h"
#include "intent_classifier.h"

/* One handler thread's logic; the knowledge its classifier reads is the worker's. */
typedef struct {
    intent_classifier_t *classifier;
    cv_log_t *log;          /* borrowed */
    const char *check_text; /* what the probe classifies */
} intent_server_logic_t;

const cv_setting_t intent_server_settings[] = {
    {"intent-model", CV_SETTING_STRING, NULL, 0, 0,
     "the trained model file, instead of the agent file's classifier.model"},
};
const size_t intent_server_settings_count = sizeof intent_server_settings / sizeof intent_server_settings[0];

void *
intent_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err)
{
    cv_launcher_args_t *args = shared_args;
    assert (args && args->agent);
    const char *model = NULL;
    if (args->settings && cv_settings_has (args->settings, "intent-model"))
        model = cv_settings_string (args->settings, "intent-model");
    return intent_knowledge_new (args->agent, model && *model ? model : NULL, args->settings, log, err);
}

void
intent_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    intent_knowledge_t *knowledge = *shared_p;
    intent_knowledge_destroy (&knowledge);
    *shared_p = NULL;
}

void *
intent_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err)
{
    assert (shared);
    intent_classifier_t *classifier = intent_classifier_new_from (shared, log, err);
    if (!classifier)
        return NULL;
    intent_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->classifier = classifier;
    self->log = log;
    self->check_text = INTENT_SERVER_CHECK_TEXT;
    return self;
}

void
intent_server_logic_destroy (void **logic_p)
{
    assert (logic_p);
    intent_server_logic_t *self = *logic_p;
    if (!self)
        return;
    intent_classifier_destroy (&self->classifier);
    free (self);
    *logic_p = NULL;
}

/* Classifies text into intent (its strings in arena), the LLM paid from budget; 0, or -1 with
   err. Relative dates are read in UTC. */
static int
s_classify (intent_server_logic_t *self, const char *text, uint64_t deadline_ms, cv_budget_t *budget,
            const char *request_id, cv_envelope_t *reply, const char *parent_span_id, Conveyor__V1__Intent *intent,
            cv_arena_t *arena, cv_error_t *err)
{
    time_t now = time (NULL);
    struct tm today;
    gmtime_r (&now, &today);
    intent_result_t result;
    if (intent_classifier_classify (self->classifier, text, deadline_ms, budget, today.tm_year + 1900, today.tm_mon + 1,
                                    today.tm_mday, &result, err))
        return -1;
    if (result.llm_note[0])
        cv_log_event (self->log, CV_LOG_INFO, request_id, NULL, "below the model's threshold, LLM %s", result.llm_note);
    if (result.llm_asked && reply)
        (void) cv_trace_add_llm (reply, arena, parent_span_id, result.llm_model, result.llm_started_us,
                                 result.llm_finished_us, result.llm_status);
    size_t size = 0;
    uint8_t *packed = cv_msgpack_pack (result.slots, &size, err);
    if (!packed) {
        cv_error_prefix (err, "slots of %s", result.name);
        intent_result_reset (&result);
        return -1;
    }
    intent->name = cv_arena_strdup (arena, result.name);
    intent->confidence = result.confidence;
    intent->method = result.method;
    intent->rule = cv_arena_strdup (arena, result.rule);
    intent->slots.data = cv_arena_adopt (arena, packed, size);
    intent->slots.len = size;
    intent->low_confidence = result.low_confidence;
    if (result.candidate_count) {
        intent->candidates = cv_arena_alloc (arena, result.candidate_count * sizeof *intent->candidates);
        for (size_t i = 0; i < result.candidate_count; i++) {
            Conveyor__V1__Candidate *candidate = cv_envelope_candidate_new (arena);
            candidate->name = cv_arena_strdup (arena, result.candidates[i].name);
            candidate->score = result.candidates[i].score;
            intent->candidates[i] = candidate;
        }
        intent->n_candidates = result.candidate_count;
    }
    if (result.has_spend) {
        intent->spend = cv_envelope_spend_new (arena);
        intent->spend->prompt_tokens = result.spend.prompt_tokens;
        intent->spend->completion_tokens = result.spend.completion_tokens;
        intent->spend->cost_micros = result.spend.cost_micros;
        intent->spend->over_budget = result.spend.over_budget;
    }
    intent_result_reset (&result);
    return 0;
}

int
intent_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                      cv_error_t *err)
{
    intent_server_logic_t *self = logic;
    assert (self && request && arena && reply);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST);
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
    cv_budget_t budget; /* what the request may still spend: this stage's to use */
    cv_budget_from_wire (&budget, request->budget);
    if (s_classify (self, request->intent_request->text, request->deadline_ms, &budget, request->request_id, reply,
                    request->span_id, intent, arena, err)) {
        if (err && strcmp (err->field, "text") == 0)
            snprintf (err->field, sizeof err->field, "intent_request.text");
        return -1;
    }
    return 0;
}

int
intent_server_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    intent_server_logic_t *self = logic;
    assert (self && arena);
    /* What the orchestrator will check when it receives an Intent. */
    cv_envelope_t *envelope = cv_envelope_new (arena, "", "", 0, 1);
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (envelope, arena);
    /* No LLM for the probe: its deadline is now, so the check measures this worker alone. */
    if (s_classify (self, self->check_text, 1, NULL, "", NULL, NULL, intent, arena, err)) {
        cv_error_prefix (err, "canned request '%s'", self->check_text);
        return -1;
    }
    if (!intent_classifier_knows (self->classifier, intent->name))
        return cv_error_set (err, CV_ERR_INTERNAL, NULL,
                             "canned request '%s' classified as %s, not a configured intent", self->check_text,
                             intent->name);
    uint64_t now = (uint64_t) zclock_time ();
    if (cv_envelope_validate (envelope, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), now, err)) {
        cv_error_prefix (err, "canned request '%s' gives an Intent the orchestrator refuses", self->check_text);
        return -1;
    }
    return 0;
}

/* What conveyor-intent's main.c runs and its tests start. */
const cv_launcher_spec_t intent_server_spec = {
    .service = INTENT_SERVER_SERVICE,
    .summary = "conveyor's intent worker: classifies a customer's text into an intent and its slots",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST,
    .shared_new = intent_server_shared_new,
    .shared_destroy = intent_server_shared_destroy,
    .logic_new = intent_server_logic_new,
    .logic_destroy = intent_server_logic_destroy,
    .handle = intent_server_handle,
    .check = intent_server_check,
    .capacity_per_cpu = 1,
    .capacity_why = "classifying is CPU work, and a handler waits only on the LLM, which is off by default",
    .default_control_endpoint = INTENT_SERVER_CONTROL_ENDPOINT,
    .extra_settings = intent_server_settings,
    .extra_count = sizeof intent_server_settings / sizeof intent_server_settings[0],
    .http_client = true, /* its LLM client, when one is configured */
};

/*  --------------------------------------------------------------------------
    Self-test */

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

static cv_envelope_t *
s_request (cv_arena_t *arena, const char *text)
{
    cv_envelope_t *request = cv_envelope_new (arena, "req-1", "", (uint64_t) zclock_time () + 5000, 1);
    Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
    body->user_id = cv_arena_strdup (arena, "cust-1");
    body->text = cv_arena_strdup (arena, text);
    return request;
}

void
intent_server_test (bool verbose)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new (INTENT_SERVER_SERVICE, "selftest", verbose);
    /* The demo model the build trained, named as an operator would: --intent-model. */
    cv_settings_t *settings =
        cv_settings_new ("conveyor-intent", "test", intent_server_settings, intent_server_settings_count);
    char *model_argv[] = {"conveyor-intent", "--intent-model", CONVEYOR_DEMO_MODEL, NULL};
    assert (cv_settings_load (settings, 3, model_argv, &err) == 0);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = settings};
    void *shared = intent_server_shared_new (&args, log, &err);
    assert (shared);
    cv_config_destroy (&agent); /* the knowledge keeps nothing of the agent file */
    void *logic = intent_server_logic_new (shared, log, &err);
    assert (logic);
    /* a second handler's logic reads the same knowledge, loaded once */
    void *second = intent_server_logic_new (shared, log, &err);
    assert (second && second != logic);
    assert (intent_classifier_knowledge (((intent_server_logic_t *) logic)->classifier) == shared);
    assert (intent_classifier_knowledge (((intent_server_logic_t *) second)->classifier) == shared);
    intent_server_logic_destroy (&second);

    /* a rule match: name, rule, slots, the one candidate */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = s_request (arena, "I lost my card ending 4417");
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    assert (intent_server_handle (logic, request, arena, reply, &err) == 0);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT);
    Conveyor__V1__Intent *intent = reply->intent;
    assert (streq (intent->name, "lost_or_stolen_card"));
    assert (intent->confidence == 1.0f && intent->method == CONVEYOR__V1__INTENT__METHOD__RULE);
    assert (streq (intent->rule, "lost_or_stolen_card:1"));
    assert (!intent->low_confidence);
    assert (intent->n_candidates == 1 && streq (intent->candidates[0]->name, "lost_or_stolen_card"));
    json_t *slots = cv_msgpack_unpack (intent->slots.data, intent->slots.len, "slots", &err);
    assert (slots && streq (json_string_value (json_object_get (slots, "card_last4")), "4417"));
    json_decref (slots);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);

    /* the model, above its threshold: a text it was trained on */
    request = s_request (arena, "I want to start using my card.");
    reply = cv_envelope_reply_new (arena, request);
    assert (intent_server_handle (logic, request, arena, reply, &err) == 0);
    intent = reply->intent;
    assert (streq (intent->name, "activate_my_card") && intent->method == CONVEYOR__V1__INTENT__METHOD__MODEL);
    assert (!intent->low_confidence && intent->confidence > 0.5f && streq (intent->rule, ""));
    assert (intent->n_candidates == 5 && streq (intent->candidates[0]->name, "activate_my_card"));
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);

    /* the fallback, without an LLM: the model's guess, low confidence, its candidates; a budget,
       even an empty one, changes nothing, and there is no spend to tell */
    request = s_request (arena, "what is your favourite colour");
    Conveyor__V1__Budget empty = CONVEYOR__V1__BUDGET__INIT;
    request->budget = &empty;
    reply = cv_envelope_reply_new (arena, request);
    assert (intent_server_handle (logic, request, arena, reply, &err) == 0);
    intent = reply->intent;
    assert (intent->method == CONVEYOR__V1__INTENT__METHOD__FALLBACK && intent->low_confidence && !intent->spend);
    assert (streq (intent->rule, "") && intent->n_candidates == 5 && streq (intent->candidates[0]->name, intent->name));
    slots = cv_msgpack_unpack (intent->slots.data, intent->slots.len, "slots", &err);
    assert (json_is_object (slots) && json_object_size (slots) == 0);
    json_decref (slots);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT), 0, &err) == 0);

    /* text the envelope would have refused: an error naming the field, not a crash */
    request = s_request (arena, "caf\xc3");
    reply = cv_envelope_reply_new (arena, request);
    assert (intent_server_handle (logic, request, arena, reply, &err) == -1);
    assert (err.code == CV_ERR_INVALID && streq (err.field, "intent_request.text"));

    /* the probe's check passes, and fails with the reason when classification fails */
    assert (intent_server_check (logic, arena, &err) == 0);
    ((intent_server_logic_t *) logic)->check_text = "caf\xc3";
    assert (intent_server_check (logic, arena, &err) == -1);
    assert (strstr (err.message, "canned request") && strstr (err.message, "UTF-8"));
    cv_arena_destroy (&arena);
    intent_server_logic_destroy (&logic);
    assert (!logic);
    intent_server_logic_destroy (&logic);
    intent_server_shared_destroy (&shared);
    assert (!shared);
    intent_server_shared_destroy (&shared);

    /* a bad intents section stops the worker from starting, naming the line */
    agent = cv_config_parse ("bad.yaml", "intents:\n  x:\n    patterns: ['(?<last4>\\d{4']\n", &err);
    assert (agent);
    args.agent = agent;
    assert (!intent_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "bad.yaml:3: intents.x.patterns: pattern 1 does not compile"));
    cv_config_destroy (&agent);

    cv_settings_destroy (&settings);
    cv_log_destroy (&log);
    if (verbose)
        printf ("intent_server: ok\n");
}
