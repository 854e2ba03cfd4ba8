/* The responder worker's service glue: RespondRequest in, Reply out, through responder_templates. */
#include "responder_server.h"

#include "cv_alloc.h"
#include "cv_launcher.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_context.h"
#include "cv_injection.h"
#include "cv_metrics.h"
#include "cv_msgpack.h"
#include "cv_trace.h"
#include "responder_llm.h"
#include "responder_templates.h"

/* What the handler threads share, read only: the templates, and the LLM replies' rules. */
typedef struct {
    responder_templates_t *templates;
    responder_llm_t *llm;      /* NULL: every reply is a template's */
    cv_injection_t *injection; /* the known injection phrasings */
    /* the counts, in the process's registry (cv_metrics) */
    cv_metric_family_t *steps;      /* conveyor_reply_steps_total{rung, outcome} */
    cv_metric_family_t *rejections; /* conveyor_guardrail_rejections_total{rule, rung} */
    cv_metric_family_t *flags;      /* conveyor_input_flags_total{kind} */
} responder_shared_t;

/* One handler thread's logic: the shared parts, and its own LLM client. */
typedef struct {
    const responder_shared_t *shared;
    cv_llm_t *llm; /* NULL without LLM replies */
    cv_log_t *log; /* borrowed */
} responder_server_logic_t;

void
responder_server_shared_destroy (void **shared_p)
{
    assert (shared_p);
    responder_shared_t *shared = *shared_p;
    if (!shared)
        return;
    responder_templates_destroy (&shared->templates);
    responder_llm_destroy (&shared->llm);
    cv_injection_destroy (&shared->injection);
    free (shared);
    *shared_p = NULL;
}

void *
responder_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err)
{
    const cv_launcher_args_t *launcher = shared_args;
    assert (launcher && launcher->agent);
    responder_shared_t *shared = cv_calloc (1, sizeof *shared);
    if (!(shared->templates = responder_templates_new (launcher->agent, err))
        || responder_llm_load (launcher->agent, launcher->settings, log, &shared->llm, err)
        || !(shared->injection = cv_injection_new (err))) {
        void *doomed = shared;
        responder_server_shared_destroy (&doomed);
        return NULL;
    }
    cv_metrics_t *metrics = cv_metrics_process ();
    shared->steps = cv_metrics_counter (metrics, "conveyor_reply_steps_total",
                                        "Rungs of the reply's ladder tried, by rung and whether it answered or was "
                                        "skipped.",
                                        "rung,outcome");
    shared->rejections = cv_metrics_counter (metrics, "conveyor_guardrail_rejections_total",
                                             "Replies the output guardrails refused, by rule and rung.", "rule,rung");
    shared->flags = cv_metrics_counter (metrics, "conveyor_input_flags_total",
                                        "Requests whose customer's words hold a known prompt-injection phrasing, by "
                                        "kind.",
                                        "kind");
    return shared;
}

/* The reply's rungs and what the guardrails refused, counted. */
static void
s_count_steps (const responder_shared_t *shared, const responder_steps_t *steps)
{
    for (size_t i = 0; i < steps->count; i++) {
        const responder_step_t *step = &steps->steps[i];
        const char *rung = cv_context_rung_name (step->rung);
        cv_metric_add (cv_metric_with (shared->steps, rung, step->skipped[0] ? "skipped" : "answered"), 1);
        if (step->refused_by)
            cv_metric_add (cv_metric_with (shared->rejections, step->refused_by, rung), 1);
    }
}

void
responder_server_logic_destroy (void **logic_p)
{
    assert (logic_p);
    responder_server_logic_t *self = *logic_p;
    if (!self)
        return;
    cv_llm_destroy (&self->llm);
    free (self);
    *logic_p = NULL;
}

void *
responder_server_logic_new (const void *shared_arg, cv_log_t *log, cv_error_t *err)
{
    const responder_shared_t *shared = shared_arg;
    assert (shared);
    responder_server_logic_t *self = cv_calloc (1, sizeof *self);
    self->shared = shared;
    self->log = log;
    if (shared->llm && !(self->llm = responder_llm_client (shared->llm, log, err))) {
        void *doomed = self;
        responder_server_logic_destroy (&doomed);
        return NULL;
    }
    return self;
}

/* The LLM's reply to the request, when the agent file gives it this one and it comes: into
   reply's body, with what it spent. False when the templates are to answer. */
static bool
s_llm_reply (responder_server_logic_t *self, const Conveyor__V1__RespondRequest *request, const json_t *context,
             const char *flagged, const cv_envelope_t *envelope, cv_arena_t *arena, cv_envelope_t *reply,
             responder_steps_t *steps)
{
    if (!self->llm || !responder_llm_wanted (self->shared->llm, context))
        return false;
    if (flagged && !responder_llm_writes_flagged (self->shared->llm)) {
        char why[160];
        snprintf (why, sizeof why, "not asked: the customer's words hold a known injection phrasing (%s)", flagged);
        responder_steps_add (steps, CONVEYOR__V1__REPLY_STEP__RUNG__LLM, responder_llm_model (self->shared->llm), why);
        return false;
    }
    cv_budget_t budget;
    cv_budget_from_wire (&budget, envelope->budget);
    responder_llm_outcome_t outcome;
    char *text = responder_llm_write (self->shared->llm, self->llm, context, request, envelope->deadline_ms,
                                      CV_REPLY_MAX_BYTES, &budget, &outcome, steps);
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    if (outcome.asked)
        (void) cv_trace_add_llm (reply, arena, envelope->span_id, outcome.model, outcome.started_us,
                                 outcome.finished_us, outcome.status);
    if (outcome.asked || outcome.over_budget) {
        body->spend = cv_envelope_spend_new (arena);
        body->spend->prompt_tokens = outcome.prompt_tokens;
        body->spend->completion_tokens = outcome.completion_tokens;
        body->spend->cost_micros = outcome.cost_micros;
        body->spend->over_budget = outcome.over_budget;
    }
    if (!text) {
        cv_log_event (self->log, CV_LOG_INFO, envelope->request_id, envelope->trace_id,
                      "reply from the templates: LLM %s", outcome.note);
        return false;
    }
    body->text = cv_arena_adopt (arena, text, strlen (text) + 1);
    body->template_ = "llm";
    return true;
}

/* The kinds of injection phrasing in the customer's text or in the conversation before it (the
   client wrote its turns, the assistant's too), each once, into out; returns how many. */
static size_t
s_scan_input (const cv_injection_t *injection, const Conveyor__V1__RespondRequest *request,
              const char *out[CV_INJECTION_KINDS])
{
    size_t count = cv_injection_scan (injection, request->text, out);
    for (size_t turn = 0; turn < request->n_context; turn++) {
        const char *found[CV_INJECTION_KINDS];
        size_t found_count = cv_injection_scan (injection, request->context[turn]->content, found);
        for (size_t i = 0; i < found_count; i++) {
            size_t known = 0;
            while (known < count && out[known] != found[i])
                known++;
            if (known == count)
                out[count++] = found[i];
        }
    }
    return count;
}

/* The kinds of injection phrasing the customer's words hold, on the reply. */
static void
s_note_flags (Conveyor__V1__Reply *reply, const char *const *flags, size_t count, cv_arena_t *arena)
{
    reply->n_input_flags = count;
    reply->input_flags = count ? cv_arena_alloc (arena, count * sizeof *reply->input_flags) : NULL;
    for (size_t i = 0; i < count; i++)
        reply->input_flags[i] = (char *) flags[i];
}

/* Writes the reply to a request's parts into reply's body: the LLM's, or the templates'. */
static int
s_respond (responder_server_logic_t *self, const cv_envelope_t *envelope, cv_arena_t *arena, cv_envelope_t *reply,
           cv_error_t *err)
{
    const Conveyor__V1__RespondRequest *request = envelope->respond_request;
    const char *request_id = envelope->request_id, *trace_id = envelope->trace_id;
    json_t *context =
        cv_context_new (request->user_id, request->text, request->intent, request->evidence, request->decision, err);
    if (!context)
        return -1;
    if (cv_context_add_action_results (context, request->action_results, request->n_action_results, err)) {
        json_decref (context);
        return -1;
    }
    const char *stopped = cv_context_stop_name (request->stopped);
    if (stopped)
        json_object_set_new (context, "stopped", json_string (stopped));
    if (request->failed_stage && *request->failed_stage)
        json_object_set_new (context, "failed_stage", json_string (request->failed_stage));
    const char *flags[CV_INJECTION_KINDS];
    size_t flag_count = s_scan_input (self->shared->injection, request, flags);
    char flagged[CV_INJECTION_KINDS * CV_NAME_MAX_BYTES] = "";
    for (size_t i = 0; i < flag_count; i++)
        snprintf (flagged + strlen (flagged), sizeof flagged - strlen (flagged), "%s%s", i ? ", " : "", flags[i]);
    for (size_t i = 0; i < flag_count; i++)
        cv_metric_add (cv_metric_with (self->shared->flags, flags[i]), 1);
    if (flag_count)
        cv_log_event (self->log, CV_LOG_WARN, request_id, trace_id,
                      "the customer's text or the conversation before it holds known prompt-injection phrasings: %s",
                      flagged);
    responder_steps_t steps = {0};
    if (s_llm_reply (self, request, context, flag_count ? flagged : NULL, envelope, arena, reply, &steps)) {
        json_decref (context);
        s_count_steps (self->shared, &steps);
        responder_steps_to_reply (&steps, arena, reply->reply);
        s_note_flags (reply->reply, flags, flag_count, arena);
        return 0;
    }
    const char *used = NULL;
    char *text =
        responder_templates_render (self->shared->templates, context, &used, &steps, self->log, request_id, trace_id);
    json_decref (context);
    if (!text)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory rendering the reply");
    Conveyor__V1__Reply *body = reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY
                                    ? reply->reply /* the LLM's attempt left its spend */
                                    : cv_envelope_set_reply (reply, arena);
    body->text = cv_arena_adopt (arena, text, strlen (text) + 1);
    body->template_ = cv_arena_strdup (arena, used);
    s_count_steps (self->shared, &steps);
    responder_steps_to_reply (&steps, arena, body);
    s_note_flags (body, flags, flag_count, arena);
    if (cv_envelope_reply_escalated (body))
        cv_log_event (
            self->log, CV_LOG_WARN, request_id, trace_id,
            "no reply for this request rendered above the hand-off (%zu rung(s) tried): escalated to a person",
            steps.count);
    return 0;
}

int
responder_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                         cv_error_t *err)
{
    responder_server_logic_t *self = logic;
    assert (self && request && arena && reply);
    /* cv_worker only hands over the body it was configured with, validated */
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST);
    return s_respond (self, request, arena, reply, err);
}

int
responder_server_check (void *logic, cv_arena_t *arena, cv_error_t *err)
{
    responder_server_logic_t *self = logic;
    assert (self && arena);
    /* A message nothing matched: intent unknown, no evidence, the hand-off policy decided. */
    cv_envelope_t *canned = cv_envelope_new (arena, "probe", NULL, 0, 1);
    Conveyor__V1__RespondRequest *request = cv_envelope_set_respond_request (canned, arena);
    request->user_id = "probe";
    request->text = "canned probe request";
    request->intent = cv_envelope_intent_new (arena);
    request->intent->name = "unknown";
    request->intent->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
    request->intent->low_confidence = true;
    request->evidence = cv_envelope_evidence_new (arena);
    request->decision = cv_envelope_decision_new (arena);
    request->decision->outcome = "handoff";
    request->decision->rule = "handoff";
    cv_envelope_t *reply = cv_envelope_reply_new (arena, canned);
    if (s_respond (self, canned, arena, reply, err))
        return -1;
    if (!*reply->reply->text)
        return cv_error_set (err, CV_ERR_INTERNAL, "reply.text", "the canned hand-off reply (template %s) is empty",
                             reply->reply->template_);
    return 0;
}

/* What conveyor-responder's main.c runs and its tests start. */
const cv_launcher_spec_t responder_server_spec = {
    .service = RESPONDER_SERVICE,
    .summary = "The responder worker: writes each request's reply down a ladder, behind output guardrails:\n"
               "the LLM where llm_replies says so (its main model, then its fallback), the agent file's\n"
               "templates (the deciding policy's, the outcome's; for a decision that acted, those for what\n"
               "became of its actions), the intent's static text, and last the hand-off (`fallback`), which\n"
               "escalates the request to a person. The reply records the rungs it tried.",
    .request_body = CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST,
    .shared_new = responder_server_shared_new,
    .shared_destroy = responder_server_shared_destroy,
    .logic_new = responder_server_logic_new,
    .logic_destroy = responder_server_logic_destroy,
    .handle = responder_server_handle,
    .check = responder_server_check,
    .capacity_per_cpu = 1,
    .capacity_why = "rendering templates is CPU work, with no I/O",
    .default_control_endpoint = RESPONDER_CONTROL_ENDPOINT,
};

/*  --------------------------------------------------------------------------
    Self-test */

#ifndef CONVEYOR_SOURCE_DIR
#define CONVEYOR_SOURCE_DIR "."
#endif

/* The injection phrasings are narrow: not one of Banking77's training questions, a customer's
   ordinary words, is flagged (the README says so). */
static void
s_test_ordinary_texts (const cv_injection_t *injection)
{
    FILE *file = fopen (CONVEYOR_SOURCE_DIR "/data/banking77/train.csv", "r");
    assert (file);
    char line[4096];
    size_t lines = 0, flagged = 0;
    while (fgets (line, sizeof line, file)) {
        const char *kinds[CV_INJECTION_KINDS];
        lines++;
        if (cv_injection_scan (injection, line, kinds)) {
            fprintf (stderr, "responder_server: flagged as %s: %s", kinds[0], line);
            flagged++;
        }
    }
    fclose (file);
    assert (lines > 10000 && flagged == 0);
}

void
responder_server_test (bool verbose)
{
    cv_error_t err;
    cv_log_t *log = cv_log_new (RESPONDER_SERVICE, "selftest", verbose);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = NULL};
    void *shared = responder_server_shared_new (&args, log, &err);
    assert (shared);
    cv_config_destroy (&agent); /* the templates are copies */
    void *logic = responder_server_logic_new (shared, log, &err);
    assert (logic && ((responder_server_logic_t *) logic)->shared == shared);
    s_test_ordinary_texts (((responder_server_logic_t *) logic)->shared->injection);

    cv_arena_t *arena = cv_arena_new ();
    assert (responder_server_check (logic, arena, &err) == 0);

    /* a lost card, frozen by the lost_card_freeze policy: the executor's result says it is done */
    json_t *cards = json_pack ("[{s:s, s:s, s:s}]", "id", "card-1-1", "last4", "4417", "status", "active");
    json_t *profile = json_pack ("[{s:s, s:s}]", "name", "Alex Morgan", "first_name", "Alex");
    json_t *frozen = json_pack ("{s:s, s:s, s:s}", "card_id", "card-1-1", "last4", "4417", "status", "frozen");
    Conveyor__V1__ToolResult *results[2] = {cv_envelope_tool_result_new (arena), cv_envelope_tool_result_new (arena)};
    results[0]->tool = "active_cards";
    results[0]->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    results[0]->data.data = cv_msgpack_pack (cards, &results[0]->data.len, &err);
    results[1]->tool = "customer_profile";
    results[1]->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    results[1]->data.data = cv_msgpack_pack (profile, &results[1]->data.len, &err);
    Conveyor__V1__ToolResult *pointers[] = {results[0], results[1]};
    cv_envelope_t *request = cv_envelope_new (arena, "req-1", NULL, 0, 1);
    Conveyor__V1__RespondRequest *body = cv_envelope_set_respond_request (request, arena);
    body->user_id = "cust-1";
    body->text = "I lost my card";
    body->intent = cv_envelope_intent_new (arena);
    body->intent->name = "lost_or_stolen_card";
    body->intent->confidence = 1.0f;
    body->intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    body->evidence = cv_envelope_evidence_new (arena);
    body->evidence->results = pointers;
    body->evidence->n_results = 2;
    body->decision = cv_envelope_decision_new (arena);
    body->decision->outcome = "freeze_card";
    body->decision->rule = "lost_card_freeze";
    Conveyor__V1__Action *action = cv_envelope_action_new (arena);
    action->id = "lost_card_freeze.1";
    action->kind = "freeze_card";
    Conveyor__V1__Action *actions[] = {action};
    body->decision->actions = actions;
    body->decision->n_actions = 1;
    Conveyor__V1__ActionResult *done = cv_envelope_action_result_new (arena);
    done->action_id = "lost_card_freeze.1";
    done->kind = "freeze_card";
    done->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
    uint8_t *packed_frozen = cv_msgpack_pack (frozen, &done->result.len, &err);
    done->result.data = packed_frozen;
    Conveyor__V1__ActionResult *action_results[] = {done};
    body->action_results = action_results;
    body->n_action_results = 1;

    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    assert (responder_server_handle (logic, request, arena, reply, &err) == 0);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_REPLY);
    assert (strcmp (reply->reply->template_, "lost_card_freeze.done") == 0);
    assert (strstr (reply->reply->text, "I'm sorry to hear that, Alex. I've frozen your card ending 4417"));
    /* what the worker sends back passes the orchestrator's validation */
    reply->deadline_ms = 0;
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == 0);

    /* the same decision with no result from the executor: nothing is said to have been done */
    body->n_action_results = 0;
    reply = cv_envelope_reply_new (arena, request);
    assert (responder_server_handle (logic, request, arena, reply, &err) == 0);
    assert (strcmp (reply->reply->template_, "actions.not_performed") == 0);
    assert (!strstr (reply->reply->text, "frozen"));

    /* a decision that did not act, whose policy has no template but for what its actions became,
       and without the card evidence: the fallback */
    body->decision->n_actions = 0;
    body->evidence->n_results = 1;
    pointers[0] = results[1];
    reply = cv_envelope_reply_new (arena, request);
    assert (responder_server_handle (logic, request, arena, reply, &err) == 0);
    assert (strcmp (reply->reply->template_, "fallback") == 0);

    /* the executor's results reach the context: one that does not decode is the sender's fault */
    body->decision->n_actions = 1;
    uint8_t not_msgpack[] = {0xc1};
    done->result.data = not_msgpack;
    done->result.len = 1;
    body->n_action_results = 1;
    reply = cv_envelope_reply_new (arena, request);
    assert (responder_server_handle (logic, request, arena, reply, &err) == -1);
    assert (err.code == CV_ERR_INVALID && strstr (err.field, "action_results"));
    body->decision->n_actions = 0;
    body->n_action_results = 0;

    /* evidence that does not decode is the sender's fault */
    uint8_t *packed_profile = results[1]->data.data;
    uint8_t junk[] = {0xc1};
    results[1]->data.data = junk;
    results[1]->data.len = 1;
    reply = cv_envelope_reply_new (arena, request);
    assert (responder_server_handle (logic, request, arena, reply, &err) == -1);
    assert (err.code == CV_ERR_INVALID);

    free (results[0]->data.data);
    free (packed_profile);
    free (packed_frozen);
    json_decref (frozen);
    json_decref (cards);
    json_decref (profile);
    cv_arena_destroy (&arena);
    responder_server_logic_destroy (&logic);
    responder_server_logic_destroy (&logic);
    assert (!logic);
    responder_server_shared_destroy (&shared);
    assert (!shared);
    responder_server_shared_destroy (&shared);

    /* an agent file without usable templates: the logic does not start, and says why */
    agent = cv_config_parse ("broken.yaml", "templates:\n  handoff: Passing you on.\n", &err);
    assert (agent);
    args.agent = agent;
    assert (!responder_server_shared_new (&args, log, &err));
    assert (strstr (err.message, "broken.yaml:2: templates.fallback: is required"));
    cv_config_destroy (&agent);
    cv_log_destroy (&log);
    if (verbose)
        printf ("responder_server: ok\n");
}
