/* LLM-written replies: the agent file's llm_replies, the facts the LLM sees, the call under the
   budget and the guardrails. */
#include "responder_llm.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"
#include "cv_template.h"
#include "responder_guard.h"

/* Left for the rest of the request after the LLM answers: the reply still has to go back. */
#define LLM_REPLY_MARGIN_MS 50

struct _responder_llm_t {
    cv_llm_config_t llm;
    char **names;   /* `for`, NULL-terminated */
    char **visible; /* context paths, NULL-terminated */
    char *instructions;
    bool writes_flagged;     /* flagged_input: llm */
    cv_personal_t *personal; /* the personal data a reply may show only when it was given it */
};

static char **
s_copy_list (const char **list, size_t count)
{
    char **copy = cv_calloc (count + 1, sizeof *copy);
    for (size_t i = 0; i < count; i++)
        copy[i] = cv_strdup (list[i]);
    return copy;
}

static void
s_free_list (char **list)
{
    for (char **item = list; item && *item; item++)
        free (*item);
    free (list);
}

void
responder_llm_destroy (responder_llm_t **self_p)
{
    assert (self_p);
    responder_llm_t *self = *self_p;
    if (!self)
        return;
    s_free_list (self->names);
    s_free_list (self->visible);
    free (self->instructions);
    cv_personal_destroy (&self->personal);
    free (self);
    *self_p = NULL;
}

int
responder_llm_load (cv_config_t *agent, const cv_settings_t *settings, cv_log_t *log, responder_llm_t **out,
                    cv_error_t *err)
{
    *out = NULL;
    cv_node_t *section = cv_node_get (cv_config_root (agent), "llm_replies");
    if (!section)
        return 0;
    static const char *const keys[] = {"for", "instructions", "visible", "flagged_input", NULL};
    if (cv_config_known_keys (agent, section, "llm_replies", keys, err))
        return -1;
    const char **names = NULL, **visible = NULL;
    size_t name_count = 0, visible_count = 0;
    const char *instructions = NULL, *flagged = NULL;
    if (cv_config_strings (agent, section, "for", "llm_replies", &names, &name_count, err)
        || cv_config_strings (agent, section, "visible", "llm_replies", &visible, &visible_count, err)
        || cv_config_string (agent, section, "instructions", "llm_replies", true, &instructions, err)
        || cv_config_string (agent, section, "flagged_input", "llm_replies", false, &flagged, err)) {
        free (names);
        free (visible);
        return -1;
    }
    if (flagged && strcmp (flagged, "templates") != 0 && strcmp (flagged, "llm") != 0) {
        cv_config_fail (agent, cv_node_get (section, "flagged_input"), "llm_replies.flagged_input", err,
                        "must be templates (a flagged customer's text never reaches the LLM) or llm");
        free (names);
        free (visible);
        return -1;
    }
    for (size_t i = 0; i < name_count; i++)
        if (!cv_name_valid (names[i])) {
            cv_config_fail (agent, cv_node_get (section, "for"), "llm_replies.for", err,
                            "'%s' is not a policy, outcome or intent name", names[i]);
            free (names);
            free (visible);
            return -1;
        }
    responder_llm_t *self = cv_calloc (1, sizeof *self);
    self->names = s_copy_list (names, name_count);
    self->visible = s_copy_list (visible, visible_count);
    self->instructions = cv_strdup (instructions);
    self->writes_flagged = flagged && strcmp (flagged, "llm") == 0;
    free (names);
    free (visible);
    cv_llm_config_defaults (&self->llm);
    cv_node_t *llm = cv_node_get (cv_config_root (agent), "llm");
    if ((llm && cv_llm_config_load (&self->llm, agent, llm, "llm", err))
        || cv_llm_config_apply_settings (&self->llm, settings, err)) {
        responder_llm_destroy (&self);
        return -1;
    }
    if (!cv_llm_config_enabled (&self->llm)) {
        if (log)
            cv_log_info (log, "llm_replies: no LLM is configured, so every reply is a template's");
        responder_llm_destroy (&self);
        return 0;
    }
    self->llm.json_object = false; /* a reply is text */
    if (!(self->personal = cv_personal_new (err))) {
        responder_llm_destroy (&self);
        return -1;
    }
    if (log)
        cv_llm_config_log (&self->llm, log); /* the effective LLM settings, the key's value never */
    *out = self;
    return 0;
}

cv_llm_t *
responder_llm_client (const responder_llm_t *self, cv_log_t *log, cv_error_t *err)
{
    return cv_llm_new (&self->llm, log, err);
}

static bool
s_named (const responder_llm_t *self, const char *name)
{
    for (char **item = self->names; name && *item; item++)
        if (strcmp (*item, name) == 0)
            return true;
    return false;
}

bool
responder_llm_wanted (const responder_llm_t *self, const json_t *context)
{
    if (!self || json_object_get (context, "stopped"))
        return false;
    const json_t *decision = json_object_get (context, "decision");
    if (!decision || json_array_size (json_object_get (decision, "actions")) > 0)
        return false;
    return s_named (self, json_string_value (json_object_get (decision, "rule")))
           || s_named (self, json_string_value (json_object_get (decision, "outcome")))
           || s_named (self, json_string_value (cv_template_lookup (context, "intent.name")));
}

const char *
responder_llm_model (const responder_llm_t *self)
{
    assert (self);
    return self->llm.model;
}

bool
responder_llm_writes_flagged (const responder_llm_t *self)
{
    assert (self);
    return self->writes_flagged;
}

/* The facts message: the intent, the decision's outcome and reason, the visible paths' values. */
static char *
s_facts (const responder_llm_t *self, const json_t *context)
{
    json_t *facts = json_object ();
    json_t *value = cv_template_lookup (context, "intent.name");
    if (value)
        json_object_set (facts, "intent", value);
    if ((value = cv_template_lookup (context, "decision.outcome")))
        json_object_set (facts, "outcome", value);
    if ((value = cv_template_lookup (context, "decision.reason")) && *json_string_value (value))
        json_object_set (facts, "reason", value);
    for (char **path = self->visible; *path; path++)
        if ((value = cv_template_lookup (context, *path)) && !json_is_null (value))
            json_object_set (facts, *path, value);
    char *text = json_dumps (facts, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (facts);
    size_t size = strlen (text) + 64;
    char *message = cv_malloc (size);
    snprintf (message, size, "Facts (JSON), the only ones to answer from: %s", text);
    free (text);
    return message;
}

/* Whether reply shows personal data that none of the count messages it was given (the agent's
   instructions, the facts, the conversation, the customer's text) holds: -1 with err then, else 0. */
static int
s_shows_unknown_personal_data (const responder_llm_t *self, const char *reply, const cv_llm_message_t *given,
                               size_t count, cv_error_t *err)
{
    char *known = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&known, &size);
    for (size_t i = 0; i < count; i++)
        fprintf (out, "%s\n", given[i].content);
    fclose (out);
    int rc = responder_guard_personal (self->personal, reply, known, err);
    free (known);
    return rc;
}

/* The fallback model's name: its own, or the main one's at the fallback endpoint. */
static const char *
s_fallback_model (const responder_llm_t *self)
{
    return self->llm.fallback_model[0] ? self->llm.fallback_model : self->llm.model;
}

char *
responder_llm_write (const responder_llm_t *self, cv_llm_t *llm, const json_t *context,
                     const Conveyor__V1__RespondRequest *request, uint64_t deadline_ms, size_t max_bytes,
                     cv_budget_t *budget, responder_llm_outcome_t *outcome, responder_steps_t *steps)
{
    assert (self && llm && context && request && budget && outcome && steps);
    memset (outcome, 0, sizeof *outcome);
    const char *user_id = request->user_id;
    char *facts = s_facts (self, context);
    /* instructions, facts, the conversation so far, the text: validated, at most CV_CONTEXT_TURNS_MAX turns */
    cv_llm_message_t messages[CV_CONTEXT_TURNS_MAX + 3] = {{CV_LLM_SYSTEM, self->instructions}, {CV_LLM_SYSTEM, facts}};
    size_t count = 2;
    for (size_t i = 0; i < request->n_context && i < CV_CONTEXT_TURNS_MAX; i++)
        messages[count++] = (cv_llm_message_t){
            request->context[i]->role == CONVEYOR__V1__TURN__ROLE__ASSISTANT ? CV_LLM_ASSISTANT : CV_LLM_USER,
            request->context[i]->content};
    messages[count++] = (cv_llm_message_t){CV_LLM_USER, request->text};
    uint64_t worst = cv_llm_worst_cost (llm, messages, count);
    if (!cv_budget_reserve (budget, worst)) {
        char worst_text[CV_BUDGET_TEXT_BYTES], left_text[CV_BUDGET_TEXT_BYTES];
        cv_budget_format (worst, worst_text);
        cv_budget_format (budget->left, left_text);
        outcome->over_budget = true;
        snprintf (outcome->note, sizeof outcome->note, "not asked: over budget, the call could cost %s and %s is left",
                  worst_text, left_text);
        responder_steps_add (steps, CONVEYOR__V1__REPLY_STEP__RUNG__LLM, self->llm.model, outcome->note);
        free (facts);
        return NULL;
    }
    uint64_t until = deadline_ms > LLM_REPLY_MARGIN_MS ? deadline_ms - LLM_REPLY_MARGIN_MS : 0;
    cv_llm_reply_t reply;
    memset (&reply, 0, sizeof reply);
    cv_error_t err;
    outcome->asked = true;
    outcome->started_us = zclock_usecs ();
    /* The facts are the customer's: an answer from the cache is this customer's own, never another's. */
    int rc = cv_llm_chat_for (llm, messages, count, user_id, until, &reply, &err);
    outcome->finished_us = zclock_usecs ();
    snprintf (outcome->model, sizeof outcome->model, "%s", reply.model[0] ? reply.model : self->llm.model);
    (void) cv_budget_settle (budget, worst, reply.cost_micros);
    outcome->prompt_tokens = (uint64_t) reply.prompt_tokens;
    outcome->completion_tokens = (uint64_t) reply.completion_tokens;
    outcome->cost_micros = reply.cost_micros;
    char *clean = NULL;
    const char *refused_by = NULL; /* the guardrail rule that refused the answer */
    if (rc)
        snprintf (outcome->note, sizeof outcome->note, "the LLM failed: %s", err.message);
    else {
        clean = responder_guard_clean (reply.content, max_bytes, &refused_by, &err);
        if (clean && s_shows_unknown_personal_data (self, clean, messages, count, &err)) {
            refused_by = RESPONDER_GUARD_PERSONAL_DATA;
            free (clean);
            clean = NULL;
        }
        if (!clean) {
            snprintf (outcome->note, sizeof outcome->note, "the LLM's reply was refused by the guardrails: %s",
                      err.message);
            (void) cv_llm_forget (llm, messages, count, user_id); /* not to be served again for the TTL */
        }
    }
    outcome->cached = reply.cached;
    outcome->status = rc ? "failed" : !clean ? "refused" : reply.cached ? "cached" : "answered";
    free (facts);
    /* The rungs: the main model, and the fallback where it was tried, each with its own error. */
    if (reply.main_failure[0])
        responder_steps_add (steps, CONVEYOR__V1__REPLY_STEP__RUNG__LLM, self->llm.model, reply.main_failure);
    if (!rc || !reply.main_failure[0] || reply.fallback_tried)
        responder_steps_add (steps,
                             reply.fallback_tried ? CONVEYOR__V1__REPLY_STEP__RUNG__LLM_FALLBACK
                                                  : CONVEYOR__V1__REPLY_STEP__RUNG__LLM,
                             reply.fallback_tried ? s_fallback_model (self) : self->llm.model,
                             clean                             ? NULL
                             : rc && reply.fallback_failure[0] ? reply.fallback_failure
                             : rc                              ? err.message
                                                               : outcome->note);
    if (refused_by)
        responder_steps_refused_by (steps, refused_by);
    cv_llm_reply_reset (&reply);
    return clean;
}

/*  --------------------------------------------------------------------------
    Self-test: loading and choosing (the calls run against the stand-in LLM server in the
    responder's isolation test). */

static responder_llm_t *
s_load (const char *yaml, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", yaml, err);
    assert (agent);
    responder_llm_t *self = NULL;
    int rc = responder_llm_load (agent, NULL, NULL, &self, err);
    cv_config_destroy (&agent);
    return rc ? NULL : self;
}

void
responder_llm_test (bool verbose)
{
    cv_error_t err;
    static const char *const section = "llm_replies:\n"
                                       "  for: [card_on_its_way, exchange_rate]\n"
                                       "  instructions: Be brief.\n"
                                       "  visible: [evidence.fx_rate.0.rate]\n";
    /* no LLM configured: templates only, nothing refused */
    unsetenv ("CONVEYOR_LLM_BASE_URL");
    unsetenv ("CONVEYOR_LLM_MODEL");
    responder_llm_t *self = s_load (section, &err);
    assert (!self);
    char yaml[512];
    snprintf (yaml, sizeof yaml, "%sllm: {base_url: 'http://127.0.0.1:9/v1', model: m}\n", section);
    self = s_load (yaml, &err);
    cv_assert_that (self, "load: %s", err.message);

    json_t *context =
        json_loads ("{\"intent\": {\"name\": \"card_arrival\"},"
                    " \"decision\": {\"rule\": \"card_on_its_way\", \"outcome\": \"answer\", \"actions\": []}}",
                    0, NULL);
    assert (responder_llm_wanted (self, context));
    json_object_set_new (context, "stopped", json_string ("over_budget")); /* stopped: never */
    assert (!responder_llm_wanted (self, context));
    json_decref (context);
    context =
        json_loads ("{\"intent\": {\"name\": \"exchange_rate\"}, \"decision\": {\"rule\": \"fx_rate\"}}", 0, NULL);
    assert (responder_llm_wanted (self, context)); /* by the intent */
    char *facts = s_facts (self, context);
    assert (strcmp (facts, "Facts (JSON), the only ones to answer from: {\"intent\":\"exchange_rate\"}") == 0);
    free (facts);
    json_decref (context);
    context = json_loads ("{\"intent\": {\"name\": \"lost_or_stolen_card\"}, \"decision\": {\"rule\": "
                          "\"card_on_its_way\", \"actions\": [{\"id\": \"a-1\"}]}}",
                          0, NULL);
    assert (!responder_llm_wanted (self, context)); /* actions: the templates tell what happened */
    json_decref (context);
    context = json_loads ("{\"intent\": {\"name\": \"exchange_rate\"}, \"decision\": {\"outcome\": \"answer\","
                          " \"reason\": \"\"}, \"evidence\": {\"fx_rate\": [{\"rate\": 1.5, \"secret\": 1}]}}",
                          0, NULL);
    facts = s_facts (self, context);
    cv_assert_that (strcmp (facts, "Facts (JSON), the only ones to answer from: {\"intent\":\"exchange_rate\","
                                   "\"outcome\":\"answer\",\"evidence.fx_rate.0.rate\":1.5}")
                        == 0,
                    "facts: %s", facts);
    free (facts);
    json_decref (context);
    assert (!responder_llm_writes_flagged (self) && strcmp (responder_llm_model (self), "m") == 0);
    responder_llm_destroy (&self);

    /* flagged texts: kept from the LLM by default, given to it when the agent says so */
    snprintf (yaml, sizeof yaml, "%s  flagged_input: llm\nllm: {base_url: 'http://127.0.0.1:9/v1', model: m}\n",
              section);
    self = s_load (yaml, &err);
    assert (self && responder_llm_writes_flagged (self));
    responder_llm_destroy (&self);
    snprintf (yaml, sizeof yaml, "%s  flagged_input: never\nllm: {base_url: 'http://127.0.0.1:9/v1', model: m}\n",
              section);
    assert (!s_load (yaml, &err) && strstr (err.message, "llm_replies.flagged_input: must be templates"));

    /* mistakes, with file, line and key */
    assert (!s_load ("llm_replies:\n  for: [a]\n", &err) && strstr (err.message, "instructions"));
    assert (!s_load ("llm_replies:\n  for: [a]\n  instructions: x\n  tone: warm\n", &err)
            && strstr (err.message, "tone"));
    assert (!s_load ("llm_replies:\n  for: ['a b']\n  instructions: x\n", &err)
            && strstr (err.message, "agent.yaml:2: llm_replies.for"));
    if (verbose)
        printf ("responder_llm: ok\n");
}
