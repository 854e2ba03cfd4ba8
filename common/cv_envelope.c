/* The wire: packs, unpacks and validates conveyor.v1.Envelope, the one message every socket carries. */
#include "cv_envelope.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_msgpack.h"
#include "cv_utf8.h"

cv_envelope_t *
cv_envelope_unpack (const uint8_t *data, size_t size, cv_error_t *err)
{
    if (size == 0) {
        cv_error_set (err, CV_ERR_MALFORMED, NULL, "empty frame");
        return NULL;
    }
    if (size > CV_ENVELOPE_MAX_BYTES) {
        cv_error_set (err, CV_ERR_MALFORMED, NULL, "frame is %zu bytes, over the limit of %d", size,
                      CV_ENVELOPE_MAX_BYTES);
        return NULL;
    }
    cv_envelope_t *self = conveyor__v1__envelope__unpack (NULL, size, data);
    if (!self)
        cv_error_set (err, CV_ERR_MALFORMED, NULL, "frame of %zu bytes is not a conveyor.v1.Envelope", size);
    return self;
}

void
cv_envelope_destroy (cv_envelope_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        conveyor__v1__envelope__free_unpacked (*self_p, NULL);
        *self_p = NULL;
    }
}

uint8_t *
cv_envelope_pack (const cv_envelope_t *self, size_t *size)
{
    assert (self && size);
    *size = conveyor__v1__envelope__get_packed_size (self);
    uint8_t *buffer = cv_malloc (*size ? *size : 1);
    conveyor__v1__envelope__pack (self, buffer);
    return buffer;
}

/*  --------------------------------------------------------------------------
    Validation: one function per message, each failing with the field's path. */

static int
s_check_text (const char *value, const char *field, size_t max_bytes, bool required, cv_error_t *err)
{
    size_t size = value ? strlen (value) : 0;
    if (required && size == 0)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field);
    if (size > max_bytes)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is %zu bytes, over the limit of %zu", field, size,
                             max_bytes);
    if (!cv_utf8_valid (value ? value : "", size))
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is not valid UTF-8", field);
    return 0;
}

bool
cv_name_valid_bytes (const char *name, size_t size)
{
    if (!name || size == 0 || size > CV_NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || c == '.' || c == ':'))
            return false;
    }
    return true;
}

bool
cv_name_valid (const char *name)
{
    return name && cv_name_valid_bytes (name, strlen (name));
}

/* Ids and names: the name rule, with an error naming the field. */
static int
s_check_name (const char *value, const char *field, bool required, cv_error_t *err)
{
    size_t size = value ? strlen (value) : 0;
    if (size == 0)
        return required ? cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field) : 0;
    if (size > CV_NAME_MAX_BYTES)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is %zu bytes, over the limit of %d", field, size,
                             CV_NAME_MAX_BYTES);
    if (!cv_name_valid_bytes (value, size))
        return cv_error_set (err, CV_ERR_INVALID, field, "%s has a character outside " CV_NAME_CHARS, field);
    return 0;
}

static int
s_check_hex (const char *value, const char *field, size_t digits, cv_error_t *err)
{
    if (!value || !*value)
        return 0;
    if (strlen (value) != digits)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be %zu hex digits", field, digits);
    for (const char *c = value; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return cv_error_set (err, CV_ERR_INVALID, field, "%s must be lower-case hex", field);
    return 0;
}

/* A reply's spans: at most CV_SPANS_MAX, each with its ids, a name and a status word. */
static int
s_check_spans (const cv_envelope_t *self, cv_error_t *err)
{
    if (self->n_spans > CV_SPANS_MAX)
        return cv_error_set (err, CV_ERR_INVALID, "spans", "%zu spans, over the limit of %d", self->n_spans,
                             CV_SPANS_MAX);
    for (size_t i = 0; i < self->n_spans; i++) {
        const Conveyor__V1__Span *span = self->spans[i];
        if (!span->span_id || !*span->span_id || !span->parent_span_id || !*span->parent_span_id)
            return cv_error_set (err, CV_ERR_INVALID, "spans.span_id", "a span needs its id and its parent's");
        if (s_check_hex (span->span_id, "spans.span_id", 16, err)
            || s_check_hex (span->parent_span_id, "spans.parent_span_id", 16, err)
            || s_check_text (span->name, "spans.name", CV_STEP_NAME_MAX_BYTES, true, err)
            || s_check_name (span->status, "spans.status", true, err))
            return -1;
    }
    return 0;
}

static int
s_check_msgpack (ProtobufCBinaryData data, const char *field, cv_error_t *err)
{
    json_t *value = cv_msgpack_unpack (data.data, data.len, field, err);
    if (!value)
        return -1;
    bool is_container = json_is_object (value) || json_is_array (value);
    json_decref (value);
    if (!is_container)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be a msgpack map or array", field);
    return 0;
}

/* A msgpack map of at most max_bytes: the Decision's log. */
static int
s_check_msgpack_map (ProtobufCBinaryData data, const char *field, size_t max_bytes, cv_error_t *err)
{
    if (data.len > max_bytes)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is %zu bytes, over the limit of %zu", field, data.len,
                             max_bytes);
    json_t *value = cv_msgpack_unpack (data.data, data.len, field, err);
    if (!value)
        return -1;
    bool is_map = json_is_object (value);
    json_decref (value);
    if (!is_map)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be a msgpack map", field);
    return 0;
}

static int
s_check_intent (const Conveyor__V1__Intent *intent, const char *field, cv_error_t *err)
{
    char path[96];
    if (!intent)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field);
    snprintf (path, sizeof path, "%s.name", field);
    if (s_check_name (intent->name, path, true, err))
        return -1;
    if (!(intent->confidence >= 0.0f && intent->confidence <= 1.0f)) /* NaN fails too */
        return cv_error_set (err, CV_ERR_INVALID, field, "%s.confidence must be within 0..1", field);
    if (intent->method < CONVEYOR__V1__INTENT__METHOD__RULE || intent->method > CONVEYOR__V1__INTENT__METHOD__FALLBACK)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s.method %d is not a known method", field,
                             (int) intent->method);
    snprintf (path, sizeof path, "%s.slots", field);
    if (s_check_msgpack (intent->slots, path, err))
        return -1;
    if (intent->n_candidates > CV_MAX_CANDIDATES)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s.candidates has %zu entries, over the limit of %d", field,
                             intent->n_candidates, CV_MAX_CANDIDATES);
    for (size_t i = 0; i < intent->n_candidates; i++) {
        snprintf (path, sizeof path, "%s.candidates[%zu].name", field, i);
        if (s_check_name (intent->candidates[i]->name, path, true, err))
            return -1;
        float score = intent->candidates[i]->score;
        if (!(score >= 0.0f && score <= 1.0f))
            return cv_error_set (err, CV_ERR_INVALID, path, "%s.candidates[%zu].score must be within 0..1", field, i);
    }
    snprintf (path, sizeof path, "%s.rule", field);
    return s_check_name (intent->rule, path, false, err);
}

static int
s_check_evidence (const Conveyor__V1__Evidence *evidence, const char *field, cv_error_t *err)
{
    char path[96];
    if (!evidence)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field);
    if (evidence->n_results > CV_MAX_TOOL_RESULTS)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s.results has %zu entries, over the limit of %d", field,
                             evidence->n_results, CV_MAX_TOOL_RESULTS);
    for (size_t i = 0; i < evidence->n_results; i++) {
        const Conveyor__V1__ToolResult *result = evidence->results[i];
        snprintf (path, sizeof path, "%s.results[%zu].tool", field, i);
        if (s_check_name (result->tool, path, true, err))
            return -1;
        snprintf (path, sizeof path, "%s.results[%zu].status", field, i);
        if (result->status < CONVEYOR__V1__TOOL_RESULT__STATUS__OK
            || result->status > CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET)
            return cv_error_set (err, CV_ERR_INVALID, path, "%s %d is not a known status", path, (int) result->status);
        snprintf (path, sizeof path, "%s.results[%zu].data", field, i);
        if (s_check_msgpack (result->data, path, err))
            return -1;
        snprintf (path, sizeof path, "%s.results[%zu].error", field, i);
        if (s_check_text (result->error, path, CV_DETAIL_MAX_BYTES, false, err))
            return -1;
    }
    return 0;
}

/* A request's actions: each with an id unique among them (its idempotency key is made of it), a
   kind and msgpack params. */
static int
s_check_actions (Conveyor__V1__Action **actions, size_t count, const char *field, cv_error_t *err)
{
    char path[96];
    for (size_t i = 0; i < count; i++) {
        const Conveyor__V1__Action *action = actions[i];
        snprintf (path, sizeof path, "%s.actions[%zu].id", field, i);
        if (s_check_name (action->id, path, true, err))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp (actions[j]->id, action->id) == 0)
                return cv_error_set (err, CV_ERR_INVALID, path, "%s repeats actions[%zu].id %s", path, j, action->id);
        snprintf (path, sizeof path, "%s.actions[%zu].kind", field, i);
        if (s_check_name (action->kind, path, true, err))
            return -1;
        snprintf (path, sizeof path, "%s.actions[%zu].params", field, i);
        if (s_check_msgpack (action->params, path, err))
            return -1;
    }
    return 0;
}

static int
s_check_execute_request (const Conveyor__V1__ExecuteRequest *body, cv_error_t *err)
{
    if (s_check_name (body->user_id, "execute_request.user_id", true, err))
        return -1;
    if (body->n_actions == 0)
        return cv_error_set (err, CV_ERR_INVALID, "execute_request.actions", "execute_request.actions is required");
    if (body->n_actions > CV_MAX_ACTIONS)
        return cv_error_set (err, CV_ERR_INVALID, "execute_request.actions",
                             "execute_request.actions has %zu entries, over the limit of %d", body->n_actions,
                             CV_MAX_ACTIONS);
    return s_check_actions (body->actions, body->n_actions, "execute_request", err);
}

/* An executor's results, in field (an ActionResults' or a RespondRequest's): one per action,
   each action id once, each outcome at most last_outcome (the executor's end at FAILED; the
   orchestrator's to the responder may also say an action waits for approval or was rejected). */
static int
s_check_action_results (Conveyor__V1__ActionResult **results, size_t count, const char *field,
                        Conveyor__V1__ActionResult__Outcome last_outcome, cv_error_t *err)
{
    char path[96];
    if (count > CV_MAX_ACTIONS)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s has %zu entries, over the limit of %d", field, count,
                             CV_MAX_ACTIONS);
    for (size_t i = 0; i < count; i++) {
        const Conveyor__V1__ActionResult *result = results[i];
        snprintf (path, sizeof path, "%s[%zu].action_id", field, i);
        if (s_check_name (result->action_id, path, true, err))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp (results[j]->action_id, result->action_id) == 0)
                return cv_error_set (err, CV_ERR_INVALID, path, "%s repeats %s[%zu].action_id %s", path, field, j,
                                     result->action_id);
        snprintf (path, sizeof path, "%s[%zu].kind", field, i);
        if (s_check_name (result->kind, path, true, err))
            return -1;
        snprintf (path, sizeof path, "%s[%zu].outcome", field, i);
        if (result->outcome < CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE || result->outcome > last_outcome)
            return cv_error_set (err, CV_ERR_INVALID, path, "%s %d is not a known outcome", path,
                                 (int) result->outcome);
        snprintf (path, sizeof path, "%s[%zu].result", field, i);
        if (s_check_msgpack (result->result, path, err))
            return -1;
        snprintf (path, sizeof path, "%s[%zu].reason", field, i);
        if (s_check_text (result->reason, path, CV_DETAIL_MAX_BYTES, false, err))
            return -1;
        snprintf (path, sizeof path, "%s[%zu].elapsed_us", field, i);
        if (result->elapsed_us < 0)
            return cv_error_set (err, CV_ERR_INVALID, path, "%s must not be negative", path);
    }
    return 0;
}

static int
s_check_decision (const Conveyor__V1__Decision *decision, const char *field, cv_error_t *err)
{
    char path[96];
    if (!decision)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field);
    snprintf (path, sizeof path, "%s.outcome", field);
    if (s_check_name (decision->outcome, path, true, err))
        return -1;
    if (decision->n_actions > CV_MAX_ACTIONS)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s.actions has %zu entries, over the limit of %d", field,
                             decision->n_actions, CV_MAX_ACTIONS);
    if (s_check_actions (decision->actions, decision->n_actions, field, err))
        return -1;
    snprintf (path, sizeof path, "%s.rule", field);
    if (s_check_name (decision->rule, path, false, err))
        return -1;
    snprintf (path, sizeof path, "%s.reason", field);
    if (s_check_text (decision->reason, path, CV_DETAIL_MAX_BYTES, false, err))
        return -1;
    snprintf (path, sizeof path, "%s.log", field);
    return s_check_msgpack_map (decision->log, path, CV_DECISION_LOG_MAX_BYTES, err);
}

static int
s_check_customer_text (const char *user_id, const char *text, const char *body, cv_error_t *err)
{
    char path[64];
    snprintf (path, sizeof path, "%s.user_id", body);
    if (s_check_name (user_id, path, true, err))
        return -1;
    snprintf (path, sizeof path, "%s.text", body);
    return s_check_text (text, path, CV_TEXT_MAX_BYTES, true, err);
}

/* A request's earlier turns: at most CV_CONTEXT_TURNS_MAX, each a known role with content, all together
   at most CV_CONTEXT_MAX_BYTES. */
static int
s_check_context (Conveyor__V1__Turn *const *turns, size_t count, const char *field, cv_error_t *err)
{
    if (count > CV_CONTEXT_TURNS_MAX)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s has %zu turns, over the limit of %d", field, count,
                             CV_CONTEXT_TURNS_MAX);
    size_t bytes = 0;
    char path[64];
    for (size_t i = 0; i < count; i++) {
        if (turns[i]->role != CONVEYOR__V1__TURN__ROLE__USER && turns[i]->role != CONVEYOR__V1__TURN__ROLE__ASSISTANT) {
            snprintf (path, sizeof path, "%s[%zu].role", field, i);
            return cv_error_set (err, CV_ERR_INVALID, path, "%s %d is not user or assistant", path,
                                 (int) turns[i]->role);
        }
        snprintf (path, sizeof path, "%s[%zu].content", field, i);
        if (s_check_text (turns[i]->content, path, CV_REPLY_MAX_BYTES, true, err))
            return -1;
        bytes += strlen (turns[i]->content);
    }
    if (bytes > CV_CONTEXT_MAX_BYTES)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is %zu bytes, over the limit of %d", field, bytes,
                             CV_CONTEXT_MAX_BYTES);
    return 0;
}

static bool
s_is_request (cv_body_t body_case)
{
    return body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST
           || body_case == CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST
           || body_case == CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST
           || body_case == CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST
           || body_case == CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST;
}

/* A reply's ladder: at most CV_REPLY_STEPS_MAX rungs, each known and named, every one but the
   last saying why it did not answer, the last (which did) saying nothing. */
static int
s_check_reply_steps (const Conveyor__V1__Reply *reply, cv_error_t *err)
{
    if (reply->n_steps > CV_REPLY_STEPS_MAX)
        return cv_error_set (err, CV_ERR_INVALID, "reply.steps", "reply.steps has %zu rungs, over the limit of %d",
                             reply->n_steps, CV_REPLY_STEPS_MAX);
    for (size_t i = 0; i < reply->n_steps; i++) {
        const Conveyor__V1__ReplyStep *step = reply->steps[i];
        char field[48];
        snprintf (field, sizeof field, "reply.steps[%zu]", i);
        if (step->rung < CONVEYOR__V1__REPLY_STEP__RUNG__LLM || step->rung > CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF)
            return cv_error_set (err, CV_ERR_INVALID, field, "%s.rung %d is not a known rung", field, (int) step->rung);
        if (s_check_text (step->name, field, CV_STEP_NAME_MAX_BYTES, true, err)
            || s_check_text (step->skipped, field, CV_DETAIL_MAX_BYTES, false, err))
            return -1;
        bool last = i + 1 == reply->n_steps, skipped = step->skipped && *step->skipped;
        if (last == skipped)
            return cv_error_set (err, CV_ERR_INVALID, field, "%s %s", field,
                                 last ? "answered, but says why it did not" : "did not answer, but says not why");
    }
    return 0;
}

bool
cv_envelope_reply_escalated (const Conveyor__V1__Reply *reply)
{
    return reply && reply->n_steps && reply->steps[reply->n_steps - 1]->rung == CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF;
}

static int
s_check_body (const cv_envelope_t *self, cv_error_t *err)
{
    switch (self->body_case) {
    case CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST: {
        const Conveyor__V1__IntentRequest *body = self->intent_request;
        if (s_check_customer_text (body->user_id, body->text, "intent_request", err))
            return -1;
        return s_check_name (body->session_id, "intent_request.session_id", false, err);
    }
    case CONVEYOR__V1__ENVELOPE__BODY_INTENT:
        return s_check_intent (self->intent, "intent", err);
    case CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST: {
        const Conveyor__V1__GatherRequest *body = self->gather_request;
        if (s_check_customer_text (body->user_id, body->text, "gather_request", err))
            return -1;
        return s_check_intent (body->intent, "gather_request.intent", err);
    }
    case CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE:
        return s_check_evidence (self->evidence, "evidence", err);
    case CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST: {
        const Conveyor__V1__DecideRequest *body = self->decide_request;
        if (s_check_name (body->user_id, "decide_request.user_id", true, err)
            || s_check_intent (body->intent, "decide_request.intent", err))
            return -1;
        return s_check_evidence (body->evidence, "decide_request.evidence", err);
    }
    case CONVEYOR__V1__ENVELOPE__BODY_DECISION:
        return s_check_decision (self->decision, "decision", err);
    case CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST: {
        const Conveyor__V1__RespondRequest *body = self->respond_request;
        if (body->stopped < CONVEYOR__V1__RESPOND_REQUEST__STOP__STOP_UNSPECIFIED
            || body->stopped > CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED)
            return cv_error_set (err, CV_ERR_INVALID, "respond_request.stopped",
                                 "respond_request.stopped %d is not a known reason", (int) body->stopped);
        /* the stage that failed is named exactly when one did, and it is one before the reply */
        bool stage_failed = body->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED;
        const char *failed = body->failed_stage ? body->failed_stage : "";
        bool known = strcmp (failed, "intent") == 0 || strcmp (failed, "gather") == 0 || strcmp (failed, "decide") == 0
                     || strcmp (failed, "execute") == 0;
        if (stage_failed ? !known : *failed != '\0')
            return cv_error_set (err, CV_ERR_INVALID, "respond_request.failed_stage",
                                 "respond_request.failed_stage \"%.40s\" %s", failed,
                                 stage_failed ? "is not a stage before the reply" : "is set, but no stage failed");
        /* a stopped request has the results of the stages that ran, and only those */
        bool stopped = body->stopped != CONVEYOR__V1__RESPOND_REQUEST__STOP__STOP_UNSPECIFIED;
        if (s_check_customer_text (body->user_id, body->text, "respond_request", err)
            || s_check_context (body->context, body->n_context, "respond_request.context", err)
            || ((!stopped || body->intent) && s_check_intent (body->intent, "respond_request.intent", err))
            || ((!stopped || body->evidence) && s_check_evidence (body->evidence, "respond_request.evidence", err))
            || ((!stopped || body->decision) && s_check_decision (body->decision, "respond_request.decision", err)))
            return -1;
        return s_check_action_results (body->action_results, body->n_action_results, "respond_request.action_results",
                                       CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED, err);
    }
    case CONVEYOR__V1__ENVELOPE__BODY_REPLY:
        if (s_check_text (self->reply->text, "reply.text", CV_REPLY_MAX_BYTES, true, err)
            || s_check_name (self->reply->template_, "reply.template", false, err))
            return -1;
        if (self->reply->n_input_flags > CV_INPUT_FLAGS_MAX)
            return cv_error_set (err, CV_ERR_INVALID, "reply.input_flags",
                                 "reply.input_flags has %zu flags, over the limit of %d", self->reply->n_input_flags,
                                 CV_INPUT_FLAGS_MAX);
        for (size_t i = 0; i < self->reply->n_input_flags; i++)
            if (s_check_name (self->reply->input_flags[i], "reply.input_flags", true, err))
                return -1;
        return s_check_reply_steps (self->reply, err);
    case CONVEYOR__V1__ENVELOPE__BODY_ERROR:
        if (self->error->code < CONVEYOR__V1__ERROR__CODE__MALFORMED
            || self->error->code > CONVEYOR__V1__ERROR__CODE__INTERNAL)
            return cv_error_set (err, CV_ERR_INVALID, "error.code", "error.code %d is not a known code",
                                 (int) self->error->code);
        if (s_check_text (self->error->field, "error.field", CV_DETAIL_MAX_BYTES, false, err))
            return -1;
        return s_check_text (self->error->message, "error.message", CV_DETAIL_MAX_BYTES, false, err);
    case CONVEYOR__V1__ENVELOPE__BODY_PROBE:
        return s_check_name (self->probe->service, "probe.service", false, err);
    case CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT: {
        const Conveyor__V1__ProbeResult *body = self->probe_result;
        if (s_check_name (body->service, "probe_result.service", true, err)
            || s_check_name (body->instance, "probe_result.instance", false, err)
            || s_check_text (body->version, "probe_result.version", CV_NAME_MAX_BYTES, false, err))
            return -1;
        return s_check_text (body->detail, "probe_result.detail", CV_DETAIL_MAX_BYTES, false, err);
    }
    case CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST:
        return s_check_execute_request (self->execute_request, err);
    case CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS:
        return s_check_action_results (self->action_results->results, self->action_results->n_results,
                                       "action_results.results", CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED, err);
    case CONVEYOR__V1__ENVELOPE__BODY__NOT_SET:
    default:
        return cv_error_set (err, CV_ERR_INVALID, "body", "envelope has no body");
    }
}

int
cv_envelope_validate (const cv_envelope_t *self, uint32_t accepted, uint64_t now_ms, cv_error_t *err)
{
    assert (self);
    if (self->schema_version != CV_SCHEMA_VERSION)
        return cv_error_set (err, CV_ERR_INVALID, "schema_version", "schema_version %u is not %d", self->schema_version,
                             CV_SCHEMA_VERSION);
    if (self->body_case == CONVEYOR__V1__ENVELOPE__BODY__NOT_SET)
        return cv_error_set (err, CV_ERR_INVALID, "body", "envelope has no body");
    if (!(accepted & CV_BODY (self->body_case)))
        return cv_error_set (err, CV_ERR_WRONG_BODY, "body", "this service does not take a %s body",
                             cv_envelope_body_name (self->body_case));
    if (s_check_name (self->message_id, "message_id", true, err)
        || s_check_name (self->request_id, "request_id", s_is_request (self->body_case), err)
        || s_check_hex (self->trace_id, "trace_id", 32, err) || s_check_hex (self->span_id, "span_id", 16, err)
        || s_check_spans (self, err))
        return -1;
    if (s_is_request (self->body_case)) {
        if (self->deadline_ms == 0)
            return cv_error_set (err, CV_ERR_INVALID, "deadline_ms", "deadline_ms is required");
        if (self->deadline_ms <= now_ms)
            return cv_error_set (err, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed %llu ms ago",
                                 (unsigned long long) (now_ms - self->deadline_ms));
        if (self->attempt == 0)
            return cv_error_set (err, CV_ERR_INVALID, "attempt", "attempt must be 1 or more");
    }
    return s_check_body (self, err);
}

/*  --------------------------------------------------------------------------
    Building envelopes */

static cv_envelope_t *
s_envelope_alloc (cv_arena_t *arena)
{
    cv_envelope_t *self = cv_arena_alloc (arena, sizeof *self);
    conveyor__v1__envelope__init (self);
    self->schema_version = CV_SCHEMA_VERSION;
    char span[17];
    cv_envelope_random_hex (span, sizeof span);
    self->span_id = cv_arena_strdup (arena, span);
    return self;
}

cv_envelope_t *
cv_envelope_new (cv_arena_t *arena, const char *request_id, const char *trace_id, uint64_t deadline_ms,
                 uint32_t attempt)
{
    cv_envelope_t *self = s_envelope_alloc (arena);
    char message_id[33];
    cv_envelope_random_hex (message_id, sizeof message_id);
    self->message_id = cv_arena_strdup (arena, message_id);
    self->request_id = cv_arena_strdup (arena, request_id ? request_id : "");
    self->trace_id = cv_arena_strdup (arena, trace_id ? trace_id : "");
    self->deadline_ms = deadline_ms;
    self->attempt = attempt;
    return self;
}

cv_envelope_t *
cv_envelope_reply_new (cv_arena_t *arena, const cv_envelope_t *request)
{
    cv_envelope_t *self = s_envelope_alloc (arena);
    if (request) {
        self->message_id = cv_arena_strdup (arena, request->message_id);
        self->request_id = cv_arena_strdup (arena, request->request_id);
        self->trace_id = cv_arena_strdup (arena, request->trace_id);
        self->deadline_ms = request->deadline_ms;
        self->attempt = request->attempt;
    }
    return self;
}

/* cv_envelope_set_<field>: a new, empty body of Type in arena, set as self's body. */
#define S_BODY_SETTER(Type, field, CASE)                                                                               \
    Type *cv_envelope_set_##field (cv_envelope_t *self, cv_arena_t *arena)                                             \
    {                                                                                                                  \
        assert (self &&arena);                                                                                         \
        Type *body = cv_arena_alloc (arena, sizeof *body);                                                             \
        conveyor__v1__##field##__init (body);                                                                          \
        self->body_case = CONVEYOR__V1__ENVELOPE__BODY_##CASE;                                                         \
        self->field = body;                                                                                            \
        return body;                                                                                                   \
    }

S_BODY_SETTER (Conveyor__V1__IntentRequest, intent_request, INTENT_REQUEST)
S_BODY_SETTER (Conveyor__V1__Intent, intent, INTENT)
S_BODY_SETTER (Conveyor__V1__GatherRequest, gather_request, GATHER_REQUEST)
S_BODY_SETTER (Conveyor__V1__Evidence, evidence, EVIDENCE)
S_BODY_SETTER (Conveyor__V1__DecideRequest, decide_request, DECIDE_REQUEST)
S_BODY_SETTER (Conveyor__V1__Decision, decision, DECISION)
S_BODY_SETTER (Conveyor__V1__RespondRequest, respond_request, RESPOND_REQUEST)
S_BODY_SETTER (Conveyor__V1__Reply, reply, REPLY)
S_BODY_SETTER (Conveyor__V1__Probe, probe, PROBE)
S_BODY_SETTER (Conveyor__V1__ProbeResult, probe_result, PROBE_RESULT)
S_BODY_SETTER (Conveyor__V1__ExecuteRequest, execute_request, EXECUTE_REQUEST)
S_BODY_SETTER (Conveyor__V1__ActionResults, action_results, ACTION_RESULTS)

/* cv_envelope_<part>_new: a new, empty message of Type in arena. */
#define S_PART_NEW(Type, part)                                                                                         \
    Type *cv_envelope_##part##_new (cv_arena_t *arena)                                                                 \
    {                                                                                                                  \
        Type *part = cv_arena_alloc (arena, sizeof *part);                                                             \
        conveyor__v1__##part##__init (part);                                                                           \
        return part;                                                                                                   \
    }

S_PART_NEW (Conveyor__V1__Intent, intent)
S_PART_NEW (Conveyor__V1__Candidate, candidate)
S_PART_NEW (Conveyor__V1__Spend, spend)
S_PART_NEW (Conveyor__V1__Evidence, evidence)
S_PART_NEW (Conveyor__V1__ToolResult, tool_result)
S_PART_NEW (Conveyor__V1__Decision, decision)
S_PART_NEW (Conveyor__V1__Action, action)
S_PART_NEW (Conveyor__V1__ActionResult, action_result)
S_PART_NEW (Conveyor__V1__ReplyStep, reply_step)
S_PART_NEW (Conveyor__V1__Turn, turn)

void
cv_envelope_set_error (cv_envelope_t *self, cv_arena_t *arena, const cv_error_t *err)
{
    Conveyor__V1__Error *error = cv_arena_alloc (arena, sizeof *error);
    conveyor__v1__error__init (error);
    error->code = err->code >= CV_ERR_MALFORMED && err->code <= CV_ERR_INTERNAL ? (Conveyor__V1__Error__Code) err->code
                                                                                : CONVEYOR__V1__ERROR__CODE__INTERNAL;
    error->field = cv_arena_strdup (arena, err->field);
    error->message = cv_arena_strdup (arena, err->message);
    self->body_case = CONVEYOR__V1__ENVELOPE__BODY_ERROR;
    self->error = error;
}

const char *
cv_envelope_body_name (cv_body_t body_case)
{
    switch (body_case) {
    case CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST:
        return "intent_request";
    case CONVEYOR__V1__ENVELOPE__BODY_INTENT:
        return "intent";
    case CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST:
        return "gather_request";
    case CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE:
        return "evidence";
    case CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST:
        return "decide_request";
    case CONVEYOR__V1__ENVELOPE__BODY_DECISION:
        return "decision";
    case CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST:
        return "respond_request";
    case CONVEYOR__V1__ENVELOPE__BODY_REPLY:
        return "reply";
    case CONVEYOR__V1__ENVELOPE__BODY_ERROR:
        return "error";
    case CONVEYOR__V1__ENVELOPE__BODY_PROBE:
        return "probe";
    case CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT:
        return "probe_result";
    case CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST:
        return "execute_request";
    case CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS:
        return "action_results";
    default:
        return "none";
    }
}

/*  --------------------------------------------------------------------------
    Self-test */

static cv_envelope_t *
s_round_trip (const cv_envelope_t *envelope)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (envelope, &size);
    cv_error_t err;
    cv_envelope_t *copy = cv_envelope_unpack (packed, size, &err);
    free (packed);
    assert (copy);
    return copy;
}

static void
s_expect_invalid (const cv_envelope_t *envelope, uint32_t accepted, uint64_t now, cv_error_code_t code,
                  const char *field)
{
    cv_envelope_t *copy = s_round_trip (envelope);
    cv_error_t err;
    cv_error_clear (&err);
    assert (cv_envelope_validate (copy, accepted, now, &err) == -1);
    assert (err.code == code);
    assert (strcmp (err.field, field) == 0);
    cv_envelope_destroy (&copy);
}

/* A reply's ladder: known rungs, each named, the skipped ones saying why, the last not; the
   hand-off at the end escalates it. */
static void
s_test_reply_steps (cv_arena_t *arena, const char *trace, uint64_t now)
{
    uint32_t replies = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY);
    cv_envelope_t *reply = cv_envelope_new (arena, "req-1", trace, now + 5000, 1);
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    body->text = "Hello.";
    cv_error_t err;
    assert (cv_envelope_validate (reply, replies, now, &err) == 0 && !cv_envelope_reply_escalated (body));
    Conveyor__V1__ReplyStep *steps[CV_REPLY_STEPS_MAX + 1];
    for (size_t i = 0; i < CV_REPLY_STEPS_MAX + 1; i++) {
        steps[i] = cv_envelope_reply_step_new (arena);
        steps[i]->rung = CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE;
        steps[i]->name = "card_rule";
        steps[i]->skipped = "a placeholder left";
    }
    body->steps = steps;
    body->n_steps = 2;
    steps[0]->rung = CONVEYOR__V1__REPLY_STEP__RUNG__LLM;
    steps[0]->name = "meta-llama/Llama-3.1-8B-Instruct"; /* a model's name is no wire name */
    steps[1]->skipped = "";
    assert (cv_envelope_validate (reply, replies, now, &err) == 0 && !cv_envelope_reply_escalated (body));
    steps[1]->rung = CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF;
    cv_envelope_t *copy = s_round_trip (reply);
    assert (cv_envelope_validate (copy, replies, now, &err) == 0 && cv_envelope_reply_escalated (copy->reply));
    assert (copy->reply->n_steps == 2 && streq (copy->reply->steps[0]->name, steps[0]->name));
    cv_envelope_destroy (&copy);
    steps[1]->skipped = "and yet";
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps[1]"); /* the last answered */
    steps[1]->skipped = "";
    steps[0]->skipped = "";
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps[0]"); /* why not? */
    steps[0]->skipped = "HTTP 500";
    steps[0]->name = "";
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps[0]");
    steps[0]->name = "small";
    steps[0]->rung = (Conveyor__V1__ReplyStep__Rung) 6;
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps[0]");
    steps[0]->rung = CONVEYOR__V1__REPLY_STEP__RUNG__RUNG_UNSPECIFIED;
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps[0]");
    steps[0]->rung = CONVEYOR__V1__REPLY_STEP__RUNG__LLM;
    steps[1]->skipped = "no value for evidence.cards.0.last4";
    body->n_steps = CV_REPLY_STEPS_MAX + 1;
    steps[CV_REPLY_STEPS_MAX]->skipped = "";
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.steps");
    body->n_steps = CV_REPLY_STEPS_MAX;
    steps[CV_REPLY_STEPS_MAX - 1]->skipped = "";
    assert (cv_envelope_validate (reply, replies, now, &err) == 0);

    /* the input's flags are names, a few */
    char *flags[CV_INPUT_FLAGS_MAX + 1] = {"ignore_instructions", "role marker"};
    body->input_flags = flags;
    body->n_input_flags = 1;
    assert (cv_envelope_validate (reply, replies, now, &err) == 0);
    body->n_input_flags = 2;
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.input_flags");
    for (size_t i = 0; i <= CV_INPUT_FLAGS_MAX; i++)
        flags[i] = "role_marker";
    body->n_input_flags = CV_INPUT_FLAGS_MAX + 1;
    s_expect_invalid (reply, replies, now, CV_ERR_INVALID, "reply.input_flags");
    body->n_input_flags = 0;
}

/* The executor's bodies: an ExecuteRequest's actions, unique and within limits, and the results. */
static void
s_test_execute (cv_arena_t *arena, const char *trace, uint64_t now)
{
    uint32_t executes = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST), answers = executes << 1;
    cv_envelope_t *request = cv_envelope_new (arena, "req-1", trace, now + 5000, 1);
    Conveyor__V1__ExecuteRequest *execute = cv_envelope_set_execute_request (request, arena);
    execute->user_id = "cust-1";
    s_expect_invalid (request, executes, now, CV_ERR_INVALID, "execute_request.actions"); /* none */
    execute->actions = cv_arena_alloc (arena, (CV_MAX_ACTIONS + 1) * sizeof *execute->actions);
    for (size_t i = 0; i <= CV_MAX_ACTIONS; i++) {
        execute->actions[i] = cv_envelope_action_new (arena);
        execute->actions[i]->id = cv_arena_strdup (arena, (char[]){(char) ('a' + i), '\0'});
        execute->actions[i]->kind = "freeze_card";
    }
    execute->n_actions = 2;
    cv_envelope_t *copy = s_round_trip (request);
    cv_error_t err;
    assert (cv_envelope_validate (copy, executes, now, &err) == 0
            && streq (copy->execute_request->actions[1]->id, "b"));
    cv_envelope_destroy (&copy);
    s_expect_invalid (request, executes, now + 6000, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms");
    execute->n_actions = CV_MAX_ACTIONS + 1;
    s_expect_invalid (request, executes, now, CV_ERR_INVALID, "execute_request.actions");
    execute->n_actions = 2;
    execute->actions[1]->id = "a"; /* two actions under one idempotency key */
    s_expect_invalid (request, executes, now, CV_ERR_INVALID, "execute_request.actions[1].id");
    uint8_t bad[] = {0x81, 0xa1};
    execute->actions[0]->params = (ProtobufCBinaryData){.data = bad, .len = sizeof bad};
    s_expect_invalid (request, executes, now, CV_ERR_INVALID, "execute_request.actions[0].params");

    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    Conveyor__V1__ActionResults *results = cv_envelope_set_action_results (reply, arena);
    assert (streq (cv_envelope_body_name (reply->body_case), "action_results")
            && answers == CV_BODY (reply->body_case));
    results->results = cv_arena_alloc (arena, sizeof *results->results);
    Conveyor__V1__ActionResult *result = results->results[0] = cv_envelope_action_result_new (arena);
    results->n_results = 1;
    *result =
        (Conveyor__V1__ActionResult){result->base, "a", "freeze_card", CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED,
                                     .reason = "the card is frozen, not active"};
    copy = s_round_trip (reply);
    assert (cv_envelope_validate (copy, answers, now + 999999, &err) == 0); /* results carry no deadline check */
    assert (streq (copy->action_results->results[0]->reason, "the card is frozen, not active"));
    cv_envelope_destroy (&copy);
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__OUTCOME_UNSPECIFIED;
    s_expect_invalid (reply, answers, now, CV_ERR_INVALID, "action_results.results[0].outcome");
    /* waiting for approval, or rejected, is the orchestrator's word, never the executor's */
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL;
    s_expect_invalid (reply, answers, now, CV_ERR_INVALID, "action_results.results[0].outcome");
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
    result->result = (ProtobufCBinaryData){.data = bad, .len = sizeof bad};
    s_expect_invalid (reply, answers, now, CV_ERR_INVALID, "action_results.results[0].result");
    result->result.len = 0;
    result->elapsed_us = -1;
    s_expect_invalid (reply, answers, now, CV_ERR_INVALID, "action_results.results[0].elapsed_us");
    result->elapsed_us = 0;
    results->results = cv_arena_alloc (arena, 2 * sizeof *results->results);
    results->results[0] = results->results[1] = result; /* one action answered twice */
    results->n_results = 2;
    s_expect_invalid (reply, answers, now, CV_ERR_INVALID, "action_results.results[1].action_id");

    /* the responder hears the same results, checked the same way */
    cv_envelope_t *respond = cv_envelope_new (arena, "r-1", NULL, now + 1000, 1);
    respond->message_id = "m-2";
    Conveyor__V1__RespondRequest *body = cv_envelope_set_respond_request (respond, arena);
    body->user_id = "cust-1";
    body->text = "I lost my card";
    body->intent = cv_envelope_intent_new (arena);
    body->intent->name = "lost_or_stolen_card";
    body->intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    body->evidence = cv_envelope_evidence_new (arena);
    body->decision = cv_envelope_decision_new (arena);
    body->decision->outcome = "freeze_card";
    body->action_results = results->results;
    body->n_action_results = 1;
    uint32_t responds = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST);
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "respond_request: %s", err.message);
    /* ...but for the orchestrator's own outcomes: waiting for approval, rejected */
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "pending: %s", err.message);
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "rejected: %s", err.message);
    /* ...with the conversation before it: known roles, each turn's content and all of it bounded */
    Conveyor__V1__Turn *turns[CV_CONTEXT_TURNS_MAX + 1];
    static char long_turn[CV_REPLY_MAX_BYTES + 2];
    memset (long_turn, 'a', sizeof long_turn - 1);
    for (size_t i = 0; i < CV_CONTEXT_TURNS_MAX + 1; i++) {
        turns[i] = cv_envelope_turn_new (arena);
        turns[i]->role = i % 2 ? CONVEYOR__V1__TURN__ROLE__ASSISTANT : CONVEYOR__V1__TURN__ROLE__USER;
        turns[i]->content = "My card has not come.";
    }
    body->context = turns;
    body->n_context = CV_CONTEXT_TURNS_MAX;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "context: %s", err.message);
    body->n_context = CV_CONTEXT_TURNS_MAX + 1;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context");
    body->n_context = 2;
    turns[1]->role = CONVEYOR__V1__TURN__ROLE__ROLE_UNSPECIFIED;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context[1].role");
    turns[1]->role = CONVEYOR__V1__TURN__ROLE__ASSISTANT;
    turns[1]->content = "";
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context[1].content");
    turns[1]->content = long_turn; /* one byte over a turn's limit */
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context[1].content");
    turns[1]->content = "\xff\xfe";
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context[1].content");
    long_turn[CV_REPLY_MAX_BYTES] = '\0'; /* a turn at its limit, but three over the whole's */
    turns[0]->content = turns[1]->content = long_turn;
    turns[2]->content = long_turn;
    body->n_context = 3;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.context");
    body->n_context = 2;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "two long turns: %s", err.message);
    body->n_context = 0;
    result->outcome = (Conveyor__V1__ActionResult__Outcome) 6;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.action_results[0].outcome");
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__OUTCOME_UNSPECIFIED;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.action_results[0].outcome");
    result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;

    /* a request stopped before its later stages has only the results of those that ran */
    body->evidence = NULL;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.evidence");
    body->stopped = CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET;
    body->decision = NULL;
    body->n_action_results = 0;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "stopped: %s", err.message);
    body->stopped = CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS;
    body->intent = NULL;
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "no intent: %s", err.message);
    body->stopped = CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.failed_stage"); /* which? */
    body->failed_stage = "respond";
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.failed_stage");
    body->failed_stage = "gather";
    cv_assert_that (cv_envelope_validate (respond, responds, now, &err) == 0, "stage failed: %s", err.message);
    body->stopped = CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.failed_stage"); /* none failed */
    body->failed_stage = "";
    body->stopped = (Conveyor__V1__RespondRequest__Stop) 4;
    s_expect_invalid (respond, responds, now, CV_ERR_INVALID, "respond_request.stopped");
}

void
cv_envelope_test (bool verbose)
{
    cv_arena_t *arena = cv_arena_new ();
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    assert (strlen (trace) == 32);
    /* the name rule: 1..64 of [A-Za-z0-9_.:-], sized or NUL-terminated */
    assert (cv_name_valid ("lost_or_stolen_card") && cv_name_valid ("r-0123.ab:CD"));
    assert (!cv_name_valid ("") && !cv_name_valid (NULL) && !cv_name_valid ("../etc") && !cv_name_valid ("a b"));
    char longest[CV_NAME_MAX_BYTES + 2];
    memset (longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    assert (!cv_name_valid (longest) && cv_name_valid_bytes (longest, CV_NAME_MAX_BYTES));
    assert (cv_name_valid_bytes ("card?", 4) && !cv_name_valid_bytes ("card?", 5) && !cv_name_valid_bytes ("x", 0));
    uint64_t now = 1700000000000ULL;
    uint32_t accepted = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST);

    cv_envelope_t *request = cv_envelope_new (arena, "req-1", trace, now + 5000, 1);
    Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
    assert (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST && request->intent_request == body);
    body->user_id = "cust-1";
    body->text = "I lost my card";

    cv_envelope_t *copy = s_round_trip (request);
    cv_error_t err;
    assert (cv_envelope_validate (copy, accepted, now, &err) == 0);
    assert (strcmp (copy->intent_request->text, "I lost my card") == 0);
    assert (strcmp (copy->message_id, request->message_id) == 0);

    /* a reply echoes the ids; an Error reply carries the code and field */
    cv_envelope_t *reply = cv_envelope_reply_new (arena, copy);
    assert (strcmp (reply->message_id, copy->message_id) == 0);
    assert (strcmp (reply->span_id, copy->span_id) != 0);
    cv_error_set (&err, CV_ERR_INVALID, "intent_request.text", "too long");
    cv_envelope_set_error (reply, arena, &err);
    cv_envelope_t *error_copy = s_round_trip (reply);
    assert (cv_envelope_validate (error_copy, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_ERROR), now, &err) == 0);
    assert (error_copy->error->code == CONVEYOR__V1__ERROR__CODE__INVALID);
    assert (strcmp (error_copy->error->field, "intent_request.text") == 0);
    cv_envelope_destroy (&error_copy);
    cv_envelope_destroy (&copy);

    /* each rule, one at a time */
    s_expect_invalid (request, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST), now, CV_ERR_WRONG_BODY, "body");
    s_expect_invalid (request, accepted, now + 6000, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms");

    char *long_text = cv_calloc (1, CV_TEXT_MAX_BYTES + 2);
    memset (long_text, 'a', CV_TEXT_MAX_BYTES + 1);
    body->text = long_text;
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "intent_request.text");
    free (long_text);
    body->text = "caf\xc3";
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "intent_request.text");
    body->text = "";
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "intent_request.text");
    body->text = "fine";
    body->user_id = "cust 1";
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "intent_request.user_id");
    body->user_id = "cust-1";

    request->trace_id = "XYZ";
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "trace_id");
    request->trace_id = trace;
    request->schema_version = 99;
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "schema_version");
    request->schema_version = CV_SCHEMA_VERSION;
    request->attempt = 0;
    s_expect_invalid (request, accepted, now, CV_ERR_INVALID, "attempt");
    request->attempt = 1;

    /* a stage result: slots must be msgpack, confidence a number within 0..1 */
    cv_envelope_t *result = cv_envelope_reply_new (arena, request);
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (result, arena);
    intent->name = "lost_or_stolen_card";
    intent->confidence = 1.0f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    uint8_t bad_slots[] = {0x81, 0xa1};
    intent->slots.data = bad_slots;
    intent->slots.len = sizeof bad_slots;
    uint32_t intents = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT);
    s_expect_invalid (result, intents, now, CV_ERR_INVALID, "intent.slots");
    intent->slots.len = 0;
    intent->confidence = NAN;
    s_expect_invalid (result, intents, now, CV_ERR_INVALID, "intent");
    intent->confidence = 0.5f;
    intent->method = 42;
    s_expect_invalid (result, intents, now, CV_ERR_INVALID, "intent");
    intent->method = CONVEYOR__V1__INTENT__METHOD__MODEL;
    copy = s_round_trip (result);
    assert (cv_envelope_validate (copy, intents, now + 999999, &err) == 0); /* results carry no deadline check */
    cv_envelope_destroy (&copy);

    /* every typed body sets its case; parts nest into later requests and pass validation */
    cv_envelope_t *later = cv_envelope_new (arena, "req-1", trace, now + 5000, 1);
    Conveyor__V1__DecideRequest *decide = cv_envelope_set_decide_request (later, arena);
    decide->user_id = "cust-1";
    decide->intent = cv_envelope_intent_new (arena);
    decide->intent->name = "card_arrival";
    decide->intent->method = CONVEYOR__V1__INTENT__METHOD__MODEL;
    decide->intent->candidates = cv_arena_alloc (arena, sizeof *decide->intent->candidates);
    decide->intent->candidates[0] = cv_envelope_candidate_new (arena);
    decide->intent->candidates[0]->name = "card_arrival";
    decide->intent->n_candidates = 1;
    decide->evidence = cv_envelope_evidence_new (arena);
    decide->evidence->results = cv_arena_alloc (arena, sizeof *decide->evidence->results);
    decide->evidence->results[0] = cv_envelope_tool_result_new (arena);
    decide->evidence->results[0]->tool = "cards_in_delivery";
    decide->evidence->results[0]->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    decide->evidence->n_results = 1;
    copy = s_round_trip (later);
    assert (cv_envelope_validate (copy, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST), now, &err) == 0);
    assert (streq (copy->decide_request->evidence->results[0]->tool, "cards_in_delivery"));
    cv_envelope_destroy (&copy);
    Conveyor__V1__Decision *decision = cv_envelope_set_decision (later, arena);
    decision->outcome = "freeze_card";
    decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
    decision->actions[0] = cv_envelope_action_new (arena);
    decision->actions[0]->id = "p.1";
    decision->actions[0]->kind = "freeze_card";
    decision->n_actions = 1;
    /* its log: unset, or a msgpack map within its bound; a list, a string or garbage is refused */
    uint32_t decisions = CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_DECISION);
    copy = s_round_trip (later);
    assert (cv_envelope_validate (copy, decisions, now, &err) == 0);
    cv_envelope_destroy (&copy);
    json_t *log = json_pack ("{s:s, s:[{s:s, s:b}], s:{s:n}}", "rule", "p", "checked", "policy", "p", "matched", 1,
                             "values", "evidence.cards.0.id");
    size_t log_size;
    uint8_t *packed_log = cv_msgpack_pack (log, &log_size, &err);
    assert (packed_log);
    decision->log = (ProtobufCBinaryData){.data = packed_log, .len = log_size};
    copy = s_round_trip (later);
    cv_assert_that (cv_envelope_validate (copy, decisions, now, &err) == 0, "decision.log: %s", err.message);
    cv_envelope_destroy (&copy);
    uint8_t list[] = {0x91, 0x01}, text[] = {0xa1, 'x'};
    decision->log = (ProtobufCBinaryData){.data = list, .len = sizeof list};
    s_expect_invalid (later, decisions, now, CV_ERR_INVALID, "decision.log");
    decision->log = (ProtobufCBinaryData){.data = text, .len = sizeof text};
    s_expect_invalid (later, decisions, now, CV_ERR_INVALID, "decision.log");
    decision->log = (ProtobufCBinaryData){.data = bad_slots, .len = sizeof bad_slots};
    s_expect_invalid (later, decisions, now, CV_ERR_INVALID, "decision.log");
    /* a map over the bound: one long string value */
    json_t *big = json_object ();
    char *filler = cv_malloc (CV_DECISION_LOG_MAX_BYTES + 1);
    memset (filler, 'v', CV_DECISION_LOG_MAX_BYTES);
    filler[CV_DECISION_LOG_MAX_BYTES] = '\0';
    json_object_set_new (big, "values", json_string (filler));
    size_t big_size;
    uint8_t *packed_big = cv_msgpack_pack (big, &big_size, &err);
    assert (packed_big && big_size > CV_DECISION_LOG_MAX_BYTES);
    decision->log = (ProtobufCBinaryData){.data = packed_big, .len = big_size};
    s_expect_invalid (later, decisions, now, CV_ERR_INVALID, "decision.log");
    decision->log = (ProtobufCBinaryData){0};
    free (packed_big);
    free (filler);
    json_decref (big);
    free (packed_log);
    json_decref (log);
    assert (later->body_case == CONVEYOR__V1__ENVELOPE__BODY_DECISION && cv_envelope_decision_new (arena));
    assert (cv_envelope_set_gather_request (later, arena) == later->gather_request);
    assert (cv_envelope_set_evidence (later, arena) == later->evidence);
    assert (cv_envelope_set_respond_request (later, arena) == later->respond_request);
    assert (cv_envelope_set_reply (later, arena) == later->reply);
    assert (cv_envelope_set_probe (later, arena) == later->probe);
    assert (cv_envelope_set_probe_result (later, arena) == later->probe_result);
    assert (later->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);

    s_test_execute (arena, trace, now);
    s_test_reply_steps (arena, trace, now);

    /* garbage never unpacks into something that validates by accident */
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x01, 0x02};
    assert (!cv_envelope_unpack (garbage, sizeof garbage, &err));
    assert (err.code == CV_ERR_MALFORMED);
    assert (!cv_envelope_unpack (garbage, 0, &err));

    cv_arena_destroy (&arena);
    if (verbose)
        printf ("cv_envelope: ok\n");
}
