/* One customer request's life cycle: the stage state machine, its results and its API document. */
#include "orchestrator_request.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_budget.h"
#include "cv_context.h"
#include "cv_metrics.h"
#include "cv_msgpack.h"
#include "cv_probe.h"

struct _orchestrator_request_t {
    char *id;
    char *trace_id;
    char *user_id;
    char *session_id;
    char *text;
    json_t *context; /* the conversation before text; NULL when none */
    char *idempotency_key;
    uint64_t deadline_ms;
    orchestrator_state_t state;
    char *error;
    cv_envelope_t *results[REQUEST_STAGES]; /* owned, by stage */
    uint8_t *packed[REQUEST_STAGES];        /* ...and the bytes each came in */
    size_t packed_size[REQUEST_STAGES];
    int64_t stage_us[REQUEST_STAGES];
    char *checkpoint_at[REQUEST_STAGES]; /* noted checkpoints, for the document */
    double total_ms;
    /* the trace: when it arrived, the span it arrived under, when each stage was first sent */
    uint64_t created_unix_us;
    char parent_span_id[CV_SPAN_ID_BYTES];
    uint64_t stage_started_unix_us[REQUEST_STAGES];
    /* approvals: a follow-up's parent and what was decided, and a request's own follow-up */
    char *parent_id;
    orchestrator_approval_t approval;
    char *approver;
    char *follow_up_id;
    orchestrator_approval_t follow_up_approval; /* what the person decided, once they have */
    char *decided_by;
    char *decided_at;
    bool awaiting; /* done, its actions waiting for a person's decision */
    /* limits: the cost budget, and the stage attempts with what they used */
    orchestrator_limits_t limits;
    uint32_t stage_attempts[REQUEST_STAGES]; /* of the stages whose result is kept */
    uint32_t lost_attempts;                  /* of stages that failed for good */
    Conveyor__V1__RespondRequest__Stop stopped;
    orchestrator_state_t failed_stage; /* STAGE_FAILED: the stage that did */
    uint32_t reply_reserve_ms;         /* kept from the deadline for the reply */
};

static const char *s_stage_names[REQUEST_STAGES] = {"intent", "gather", "decide", "execute", "respond"};
static const cv_body_t s_awaited[REQUEST_STAGES] = {
    CONVEYOR__V1__ENVELOPE__BODY_INTENT, CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE, CONVEYOR__V1__ENVELOPE__BODY_DECISION,
    CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS, CONVEYOR__V1__ENVELOPE__BODY_REPLY};

static char *
s_strdup_or_empty (const char *text)
{
    return cv_strdup (text ? text : "");
}

void
orchestrator_request_new_id (char id[REQUEST_ID_BYTES])
{
    char random[REQUEST_ID_BYTES - 2];
    cv_envelope_random_hex (random, sizeof random);
    snprintf (id, REQUEST_ID_BYTES, "r-%s", random);
}

orchestrator_request_t *
orchestrator_request_new (const char *id, const char *trace_id, const char *user_id, const char *session_id,
                          const char *text, const char *idempotency_key, uint64_t deadline_ms)
{
    assert (user_id && text);
    orchestrator_request_t *self = cv_calloc (1, sizeof *self);
    char generated[33];
    if (id)
        self->id = cv_strdup (id);
    else {
        self->id = cv_malloc (REQUEST_ID_BYTES);
        orchestrator_request_new_id (self->id);
    }
    if (trace_id)
        self->trace_id = cv_strdup (trace_id);
    else {
        cv_envelope_random_hex (generated, sizeof generated);
        self->trace_id = cv_strdup (generated);
    }
    self->user_id = cv_strdup (user_id);
    self->session_id = s_strdup_or_empty (session_id);
    self->text = cv_strdup (text);
    self->idempotency_key = s_strdup_or_empty (idempotency_key);
    self->deadline_ms = deadline_ms;
    self->state = REQUEST_INTENT;
    self->total_ms = NAN;
    self->created_unix_us = cv_trace_wall_us (zclock_usecs ());
    return self;
}

void
orchestrator_request_destroy (orchestrator_request_t **self_p)
{
    assert (self_p);
    orchestrator_request_t *self = *self_p;
    if (!self)
        return;
    for (int stage = 0; stage < REQUEST_STAGES; stage++) {
        cv_envelope_destroy (&self->results[stage]);
        free (self->packed[stage]);
        free (self->checkpoint_at[stage]);
    }
    free (self->id);
    free (self->trace_id);
    free (self->user_id);
    free (self->session_id);
    free (self->text);
    json_decref (self->context);
    free (self->idempotency_key);
    free (self->error);
    free (self->parent_id);
    free (self->approver);
    free (self->follow_up_id);
    free (self->decided_by);
    free (self->decided_at);
    free (self);
    *self_p = NULL;
}

const char *
orchestrator_request_id (const orchestrator_request_t *self)
{
    return self->id;
}
const char *
orchestrator_request_trace_id (const orchestrator_request_t *self)
{
    return self->trace_id;
}
const char *
orchestrator_request_user_id (const orchestrator_request_t *self)
{
    return self->user_id;
}
const char *
orchestrator_request_session_id (const orchestrator_request_t *self)
{
    return self->session_id;
}
const char *
orchestrator_request_text (const orchestrator_request_t *self)
{
    return self->text;
}
const char *
orchestrator_request_idempotency_key (const orchestrator_request_t *self)
{
    return self->idempotency_key;
}
uint64_t
orchestrator_request_deadline (const orchestrator_request_t *self)
{
    return self->deadline_ms;
}
orchestrator_state_t
orchestrator_request_state (const orchestrator_request_t *self)
{
    return self->state;
}
const char *
orchestrator_request_error (const orchestrator_request_t *self)
{
    return self->error;
}

void
orchestrator_request_set_deadline (orchestrator_request_t *self, uint64_t deadline_ms)
{
    self->deadline_ms = deadline_ms;
}

bool
orchestrator_request_finished (const orchestrator_request_t *self)
{
    return self->state == REQUEST_DONE || self->state == REQUEST_FAILED;
}

const char *
orchestrator_request_stage_name (orchestrator_state_t state)
{
    return state < REQUEST_STAGES ? s_stage_names[state] : NULL;
}

const char *
orchestrator_request_service (orchestrator_state_t state)
{
    return state < REQUEST_STAGES ? cv_worker_services[state] : NULL; /* one service per stage, in order */
}

const char *
orchestrator_request_status (const orchestrator_request_t *self)
{
    switch (self->state) {
    case REQUEST_DONE:
        if (self->stopped)
            return cv_context_stop_name (self->stopped);
        if (self->awaiting)
            return "pending_approval";
        const cv_envelope_t *reply = self->results[REQUEST_RESPOND];
        return reply && cv_envelope_reply_escalated (reply->reply) ? "escalated" : "done";
    case REQUEST_FAILED:
        return "failed";
    default:
        return "running";
    }
}

const cv_envelope_t *
orchestrator_request_result (const orchestrator_request_t *self, int stage)
{
    return stage >= 0 && stage < REQUEST_STAGES ? self->results[stage] : NULL;
}

const uint8_t *
orchestrator_request_result_bytes (const orchestrator_request_t *self, int stage, size_t *size)
{
    if (stage < 0 || stage >= REQUEST_STAGES || !self->packed[stage])
        return NULL;
    *size = self->packed_size[stage];
    return self->packed[stage];
}

int64_t
orchestrator_request_stage_us (const orchestrator_request_t *self, int stage)
{
    return stage >= 0 && stage < REQUEST_STAGES ? self->stage_us[stage] : 0;
}

int
orchestrator_request_result_count (const orchestrator_request_t *self)
{
    int count = 0;
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        count += self->results[stage] != NULL;
    return count;
}

int
orchestrator_request_result_stage (const orchestrator_request_t *self, int index)
{
    assert (index >= 0);
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        if (self->results[stage] && index-- == 0)
            return stage;
    assert (false && "fewer results than index");
    return -1;
}

/* The decision's actions, or NULL when there is no decision yet. */
static const Conveyor__V1__Decision *
s_decision (const orchestrator_request_t *self)
{
    return self->results[REQUEST_DECIDE] ? self->results[REQUEST_DECIDE]->decision : NULL;
}

/* The executor's results, or NULL before it answered (or when the decision had no actions). */
static const Conveyor__V1__ActionResults *
s_action_results (const orchestrator_request_t *self)
{
    return self->results[REQUEST_EXECUTE] ? self->results[REQUEST_EXECUTE]->action_results : NULL;
}

void
orchestrator_request_set_context (orchestrator_request_t *self, json_t *context)
{
    json_decref (self->context);
    self->context = json_incref (context);
}

const json_t *
orchestrator_request_context (const orchestrator_request_t *self)
{
    return self->context;
}

/* The context as the responder's turns, in arena; their strings are borrowed from the request. */
static Conveyor__V1__Turn **
s_turns (const orchestrator_request_t *self, cv_arena_t *arena, size_t *count)
{
    *count = json_array_size (self->context);
    if (*count == 0)
        return NULL;
    Conveyor__V1__Turn **turns = cv_arena_alloc (arena, *count * sizeof *turns);
    for (size_t i = 0; i < *count; i++) {
        const json_t *turn = json_array_get (self->context, i);
        turns[i] = cv_envelope_turn_new (arena);
        turns[i]->role = strcmp (json_string_value (json_object_get (turn, "role")), "assistant") == 0
                             ? CONVEYOR__V1__TURN__ROLE__ASSISTANT
                             : CONVEYOR__V1__TURN__ROLE__USER;
        turns[i]->content = (char *) json_string_value (json_object_get (turn, "content"));
    }
    return turns;
}

void
orchestrator_request_set_limits (orchestrator_request_t *self, const orchestrator_limits_t *limits)
{
    self->limits = *limits;
    if (!limits->budgeted)
        self->limits.budget_micros = 0;
}

const orchestrator_limits_t *
orchestrator_request_limits (const orchestrator_request_t *self)
{
    return &self->limits;
}

void
orchestrator_request_spend (const orchestrator_request_t *self, orchestrator_spend_t *spend)
{
    *spend = (orchestrator_spend_t){0};
    const cv_envelope_t *intent = self->results[REQUEST_INTENT], *reply = self->results[REQUEST_RESPOND];
    const Conveyor__V1__Spend *llm_spends[] = {intent ? intent->intent->spend : NULL,
                                               reply ? reply->reply->spend : NULL};
    for (size_t i = 0; i < sizeof llm_spends / sizeof *llm_spends; i++) {
        const Conveyor__V1__Spend *llm = llm_spends[i];
        if (!llm)
            continue;
        spend->prompt_tokens = cv_budget_add (spend->prompt_tokens, llm->prompt_tokens);
        spend->completion_tokens = cv_budget_add (spend->completion_tokens, llm->completion_tokens);
        spend->llm_micros = cv_budget_add (spend->llm_micros, llm->cost_micros);
    }
    const cv_envelope_t *gather = self->results[REQUEST_GATHER];
    for (size_t i = 0; gather && i < gather->evidence->n_results; i++)
        spend->tool_micros = cv_budget_add (spend->tool_micros, gather->evidence->results[i]->cost_micros);
    spend->micros = cv_budget_add (spend->llm_micros, spend->tool_micros);
}

uint32_t
orchestrator_request_attempts_used (const orchestrator_request_t *self)
{
    uint32_t used = self->lost_attempts;
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        used += self->stage_attempts[stage];
    return used;
}

uint32_t
orchestrator_request_attempts_allowed (const orchestrator_request_t *self)
{
    if (!self->limits.max_attempts)
        return 0;
    uint32_t used = orchestrator_request_attempts_used (self);
    if (used < self->limits.max_attempts)
        return self->limits.max_attempts - used;
    /* past the limit, only the reply goes, once: a stopped request's, or one whose other stages
       are all done (it tells what they did) */
    assert (self->state == REQUEST_RESPOND);
    return 1;
}

uint32_t
orchestrator_request_stage_attempts (const orchestrator_request_t *self, int stage)
{
    return stage >= 0 && stage < REQUEST_STAGES ? self->stage_attempts[stage] : 0;
}

Conveyor__V1__RespondRequest__Stop
orchestrator_request_stopped (const orchestrator_request_t *self)
{
    return self->stopped;
}

/* Stops the request before its later stages: it goes to RESPOND for the reply that says so. */
static void
s_stop (orchestrator_request_t *self, Conveyor__V1__RespondRequest__Stop why)
{
    self->stopped = why;
    self->state = REQUEST_RESPOND;
}

/* The current stage, one before the reply, failed for good (message says how): the reply says
   so, and what happens next. */
static void
s_stop_stage_failed (orchestrator_request_t *self, const char *message)
{
    assert (self->state < REQUEST_RESPOND);
    free (self->error);
    self->error = cv_strdup (message);
    self->failed_stage = self->state;
    s_stop (self, CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED);
}

const char *
orchestrator_request_failed_stage (const orchestrator_request_t *self)
{
    return self->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED ? s_stage_names[self->failed_stage]
                                                                              : NULL;
}

int
orchestrator_request_stop_for_stage_failure (orchestrator_request_t *self, const char *message)
{
    if (self->state >= REQUEST_RESPOND || self->stopped)
        return -1;
    s_stop_stage_failed (self, message);
    return 0;
}

uint32_t
orchestrator_request_keep_reply_reserve (orchestrator_request_t *self, uint32_t configured_ms, uint64_t now_ms)
{
    uint64_t half_left = self->deadline_ms > now_ms ? (self->deadline_ms - now_ms) / 2 : 0;
    self->reply_reserve_ms = (uint32_t) (configured_ms < half_left ? configured_ms : half_left);
    return self->reply_reserve_ms;
}

uint32_t
orchestrator_request_lost_attempts (const orchestrator_request_t *self)
{
    return self->lost_attempts;
}

void
orchestrator_request_note_lost_attempts (orchestrator_request_t *self, uint32_t attempts)
{
    self->lost_attempts = attempts;
}

int
orchestrator_request_stop_for_attempts (orchestrator_request_t *self)
{
    if (self->state >= REQUEST_RESPOND || self->stopped || !self->limits.max_attempts
        || orchestrator_request_attempts_used (self) < self->limits.max_attempts)
        return -1;
    s_stop (self, CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
    return 0;
}

int
orchestrator_request_stage_failed (orchestrator_request_t *self, uint32_t attempts, const cv_error_t *err)
{
    assert (!orchestrator_request_finished (self));
    self->lost_attempts += attempts;
    bool out_of_attempts = err->code == CV_ERR_UNAVAILABLE && self->limits.max_attempts
                           && orchestrator_request_attempts_used (self) >= self->limits.max_attempts;
    /* The executor had the actions, so whether they were performed is not known: that is a failed
       stage's reply, whatever used up the attempts. */
    if (out_of_attempts && self->state < REQUEST_EXECUTE && !self->stopped) {
        s_stop (self, CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
        return 0;
    }
    if (self->state < REQUEST_RESPOND && !self->stopped) {
        s_stop_stage_failed (self, err->message);
        return 0;
    }
    orchestrator_request_fail (self, err->message);
    return -1;
}

cv_envelope_t *
orchestrator_request_stage_envelope (orchestrator_request_t *self, cv_arena_t *arena)
{
    if (orchestrator_request_finished (self))
        return NULL;
    /* The stages before the reply have until the deadline less the reply's reserve: when one of
       them fails at its deadline, the reply that says so still has time to be written. */
    uint64_t deadline_ms = self->deadline_ms;
    if (self->state < REQUEST_RESPOND && deadline_ms > self->reply_reserve_ms)
        deadline_ms -= self->reply_reserve_ms;
    cv_envelope_t *envelope = cv_envelope_new (arena, self->id, self->trace_id, deadline_ms, 1);
    char span[CV_SPAN_ID_BYTES]; /* the stage's: its workers' spans are its children */
    orchestrator_request_stage_span_id (self, (int) self->state, span);
    envelope->span_id = cv_arena_strdup (arena, span);
    if (self->limits.budgeted) {
        orchestrator_spend_t spend;
        orchestrator_request_spend (self, &spend);
        envelope->budget = cv_arena_alloc (arena, sizeof *envelope->budget);
        conveyor__v1__budget__init (envelope->budget);
        envelope->budget->cost_micros_left =
            spend.micros < self->limits.budget_micros ? self->limits.budget_micros - spend.micros : 0;
    }
    /* Earlier results are borrowed: the envelope is packed before they can go away. */
    Conveyor__V1__Intent *intent = self->results[REQUEST_INTENT] ? self->results[REQUEST_INTENT]->intent : NULL;
    Conveyor__V1__Evidence *evidence = self->results[REQUEST_GATHER] ? self->results[REQUEST_GATHER]->evidence : NULL;
    Conveyor__V1__Decision *decision = (Conveyor__V1__Decision *) s_decision (self);
    const Conveyor__V1__ActionResults *performed = s_action_results (self);
    switch (self->state) {
    case REQUEST_INTENT: {
        Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (envelope, arena);
        body->user_id = self->user_id;
        body->session_id = self->session_id;
        body->text = self->text;
        break;
    }
    case REQUEST_GATHER: {
        Conveyor__V1__GatherRequest *body = cv_envelope_set_gather_request (envelope, arena);
        body->user_id = self->user_id;
        body->text = self->text;
        body->intent = intent;
        break;
    }
    case REQUEST_DECIDE: {
        Conveyor__V1__DecideRequest *body = cv_envelope_set_decide_request (envelope, arena);
        body->user_id = self->user_id;
        body->intent = intent;
        body->evidence = evidence;
        break;
    }
    case REQUEST_EXECUTE: {
        Conveyor__V1__ExecuteRequest *body = cv_envelope_set_execute_request (envelope, arena);
        body->user_id = self->user_id;
        body->n_actions = decision->n_actions;
        body->actions = decision->actions;
        if (self->approval == REQUEST_APPROVAL_APPROVED) {
            /* a person approved them: they wait no more (the executor performs none that do) */
            body->actions = cv_arena_alloc (arena, decision->n_actions * sizeof *body->actions);
            for (size_t i = 0; i < decision->n_actions; i++) {
                body->actions[i] = cv_arena_memdup (arena, decision->actions[i], sizeof *decision->actions[i]);
                body->actions[i]->requires_approval = false;
            }
        }
        break;
    }
    case REQUEST_RESPOND: {
        Conveyor__V1__RespondRequest *body = cv_envelope_set_respond_request (envelope, arena);
        body->user_id = self->user_id;
        body->text = self->text;
        body->intent = intent;
        body->evidence = evidence;
        body->decision = decision;
        if (performed) {
            body->n_action_results = performed->n_results;
            body->action_results = performed->results;
        }
        body->stopped = self->stopped;
        body->context = s_turns (self, arena, &body->n_context);
        const char *failed_stage = orchestrator_request_failed_stage (self);
        body->failed_stage = (char *) (failed_stage ? failed_stage : "");
        break;
    }
    case REQUEST_DONE:
    case REQUEST_FAILED:
        return NULL;
    }
    return envelope;
}

void
orchestrator_request_set_follow_up_of (orchestrator_request_t *self, const char *parent_id,
                                       orchestrator_approval_t approval, const char *approver)
{
    assert (parent_id && approval != REQUEST_APPROVAL_NONE && approver);
    free (self->parent_id);
    free (self->approver);
    self->parent_id = cv_strdup (parent_id);
    self->approval = approval;
    self->approver = cv_strdup (approver);
}

const char *
orchestrator_request_parent_id (const orchestrator_request_t *self)
{
    return self->parent_id;
}

orchestrator_approval_t
orchestrator_request_approval (const orchestrator_request_t *self)
{
    return self->approval;
}

const char *
orchestrator_request_approver (const orchestrator_request_t *self)
{
    return self->approver;
}

bool
orchestrator_request_awaiting_approval (const orchestrator_request_t *self)
{
    return self->awaiting;
}

void
orchestrator_request_note_follow_up (orchestrator_request_t *self, const char *follow_up_id,
                                     orchestrator_approval_t approval, const char *approver, const char *at)
{
    free (self->follow_up_id);
    free (self->decided_by);
    free (self->decided_at);
    self->follow_up_id = cv_strdup (follow_up_id);
    self->decided_by = cv_strdup (approver);
    self->decided_at = cv_strdup (at);
    self->follow_up_approval = approval;
    self->awaiting = false;
}

int
orchestrator_request_checkpoint_count (const orchestrator_request_t *self)
{
    int count = 0;
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        count += self->checkpoint_at[stage] != NULL;
    return count;
}

void
orchestrator_request_fail (orchestrator_request_t *self, const char *message)
{
    char *error;
    if (self->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED) {
        /* The reply to a stage's failure failed too: the request fails with both causes, and
           is no longer stopped, as it reads back from its checkpoints and its row. */
        size_t size = strlen (message) + strlen (self->error) + 64;
        error = cv_malloc (size);
        snprintf (error, size, "%s (after stage %s failed: %s)", message, s_stage_names[self->failed_stage],
                  self->error);
        self->stopped = CONVEYOR__V1__RESPOND_REQUEST__STOP__STOP_UNSPECIFIED;
    } else
        error = cv_strdup (message);
    free (self->error);
    self->error = error;
    self->state = REQUEST_FAILED;
}

/* The executor's results answer the decision's actions one for one, in their order: an answer
   for another action, or a missing one, would let the reply speak of what was not done. */
static int
s_check_performed (const Conveyor__V1__Decision *decision, const Conveyor__V1__ActionResults *performed,
                   cv_error_t *err)
{
    if (performed->n_results != decision->n_actions)
        return cv_error_set (err, CV_ERR_INVALID, "results", "executor worker: %zu results for %zu actions",
                             performed->n_results, decision->n_actions);
    for (size_t i = 0; i < decision->n_actions; i++) {
        const Conveyor__V1__Action *action = decision->actions[i];
        const Conveyor__V1__ActionResult *result = performed->results[i];
        if (strcmp (result->action_id, action->id) != 0 || strcmp (result->kind, action->kind) != 0)
            return cv_error_set (err, CV_ERR_INVALID, "results",
                                 "executor worker: result %zu is for %s (%s), the action is %s (%s)", i,
                                 result->action_id, result->kind, action->id, action->kind);
    }
    return 0;
}

/* True when an action of the decision waits for a person's approval. */
static bool
s_needs_approval (const Conveyor__V1__Decision *decision)
{
    for (size_t i = 0; i < decision->n_actions; i++)
        if (decision->actions[i]->requires_approval)
            return true;
    return false;
}

/* The execute stage's result when nothing may be performed: the orchestrator's own, outcome for
   every action (PENDING_APPROVAL, or REJECTED with why), kept with its bytes as a worker's is. */
static void
s_hold_actions (orchestrator_request_t *self, Conveyor__V1__ActionResult__Outcome outcome)
{
    const Conveyor__V1__Decision *decision = s_decision (self);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = cv_envelope_new (arena, self->id, self->trace_id, self->deadline_ms, 1);
    envelope->message_id = cv_arena_strdup (arena, "orchestrator");
    Conveyor__V1__ActionResults *held = cv_envelope_set_action_results (envelope, arena);
    held->results = cv_arena_alloc (arena, decision->n_actions * sizeof *held->results);
    char reason[CV_DETAIL_MAX_BYTES];
    if (outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL)
        snprintf (reason, sizeof reason, "waits for a person's approval");
    else if (self->approver && strcmp (self->approver, ORCHESTRATOR_APPROVAL_EXPIRED) == 0)
        snprintf (reason, sizeof reason, "its approval expired");
    else
        snprintf (reason, sizeof reason, "rejected by %s", self->approver ? self->approver : "an operator");
    for (size_t i = 0; i < decision->n_actions; i++) {
        Conveyor__V1__ActionResult *result = cv_envelope_action_result_new (arena);
        result->action_id = decision->actions[i]->id;
        result->kind = decision->actions[i]->kind;
        result->outcome = outcome;
        result->reason = reason;
        held->results[held->n_results++] = result;
    }
    size_t size;
    uint8_t *packed = cv_envelope_pack (envelope, &size);
    cv_error_t err;
    cv_envelope_t *copy = cv_envelope_unpack (packed, size, &err);
    assert (copy);
    cv_envelope_destroy (&self->results[REQUEST_EXECUTE]);
    self->results[REQUEST_EXECUTE] = copy;
    free (self->packed[REQUEST_EXECUTE]);
    self->packed[REQUEST_EXECUTE] = packed;
    self->packed_size[REQUEST_EXECUTE] = size;
    self->stage_us[REQUEST_EXECUTE] = 0;
    cv_arena_destroy (&arena);
}

/* The state after stage: the next one, except after the decision. Without actions there is
   nothing to execute; with one that waits for a person, nothing is performed until one decides
   (a follow-up approved performs them; rejected, it says so). */
static orchestrator_state_t
s_next_state (orchestrator_request_t *self, int stage)
{
    if (stage != REQUEST_DECIDE)
        return (orchestrator_state_t) (stage + 1); /* RESPOND + 1 is DONE */
    const Conveyor__V1__Decision *decision = s_decision (self);
    if (decision->n_actions == 0)
        return REQUEST_RESPOND;
    if (!s_needs_approval (decision) || self->approval == REQUEST_APPROVAL_APPROVED)
        return REQUEST_EXECUTE;
    if (self->approval == REQUEST_APPROVAL_REJECTED)
        s_hold_actions (self, CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED);
    else {
        s_hold_actions (self, CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL);
        self->awaiting = true;
    }
    return REQUEST_RESPOND;
}

/* True when a stage left a spend undone because it did not fit the budget left. */
static bool
s_spend_refused (const orchestrator_request_t *self, int stage)
{
    const cv_envelope_t *result = self->results[stage];
    if (stage == REQUEST_INTENT)
        return result->intent->spend && result->intent->spend->over_budget;
    if (stage == REQUEST_GATHER)
        for (size_t i = 0; i < result->evidence->n_results; i++)
            if (result->evidence->results[i]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET)
                return true;
    return false;
}

/* After the result of stage is kept, on to the next state: stopped when a stage would have
   overspent (or did), or when the attempts are used up before a stage other than the reply,
   which tells what the others did. */
static void
s_after_stage (orchestrator_request_t *self, int stage)
{
    if (stage >= REQUEST_RESPOND || self->stopped) {
        self->state = REQUEST_DONE;
        return;
    }
    orchestrator_spend_t spend;
    orchestrator_request_spend (self, &spend);
    if (s_spend_refused (self, stage) || (self->limits.budgeted && spend.micros > self->limits.budget_micros)) {
        s_stop (self, CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET);
        return;
    }
    self->state = s_next_state (self, stage);
    if (self->state != REQUEST_RESPOND && self->limits.max_attempts
        && orchestrator_request_attempts_used (self) >= self->limits.max_attempts)
        s_stop (self, CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
}

int
orchestrator_request_accept (orchestrator_request_t *self, cv_envelope_t **reply_p, const uint8_t *packed, size_t size,
                             int64_t elapsed_us, uint32_t attempts, cv_error_t *err)
{
    assert (reply_p && *reply_p && packed);
    cv_envelope_t *reply = *reply_p;
    *reply_p = NULL;
    int rc = 0;
    switch (self->state) {
    case REQUEST_INTENT:
    case REQUEST_GATHER:
    case REQUEST_DECIDE:
    case REQUEST_EXECUTE:
    case REQUEST_RESPOND: {
        int stage = (int) self->state;
        if (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR)
            rc = cv_error_set (err, (cv_error_code_t) reply->error->code, reply->error->field, "%s worker: %s",
                               cv_worker_services[stage], reply->error->message);
        else if ((rc = cv_envelope_validate (reply, CV_BODY (s_awaited[stage]), 0, err)))
            cv_metric_add (
                cv_metric_with (cv_metrics_messages_rejected (cv_metrics_process ()), cv_error_code_name (err->code)),
                1);
        if (rc == 0 && stage == REQUEST_EXECUTE)
            rc = s_check_performed (s_decision (self), reply->action_results, err);
        if (rc == 0) {
            cv_envelope_destroy (&self->results[stage]);
            self->results[stage] = reply;
            free (self->packed[stage]);
            self->packed[stage] = cv_malloc (size ? size : 1);
            memcpy (self->packed[stage], packed, size);
            self->packed_size[stage] = size;
            self->stage_us[stage] = elapsed_us;
            self->stage_attempts[stage] = attempts;
            s_after_stage (self, stage);
            return 0;
        }
        self->lost_attempts += attempts;
        if (stage < REQUEST_RESPOND && !self->stopped)
            s_stop_stage_failed (self, err->message); /* an unusable answer: the reply still comes */
        else
            orchestrator_request_fail (self, err->message);
        break;
    }
    case REQUEST_DONE:
    case REQUEST_FAILED:
        rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "request %s is already %s", self->id,
                           orchestrator_request_status (self));
        break;
    }
    cv_envelope_destroy (&reply);
    return rc;
}

void
orchestrator_request_note_checkpoint (orchestrator_request_t *self, int stage, const char *at)
{
    assert (stage >= 0 && stage < REQUEST_STAGES);
    free (self->checkpoint_at[stage]);
    self->checkpoint_at[stage] = cv_strdup (at);
}

void
orchestrator_request_set_total_ms (orchestrator_request_t *self, double total_ms)
{
    self->total_ms = total_ms;
}

double
orchestrator_request_total_ms (const orchestrator_request_t *self)
{
    return self->total_ms;
}

uint64_t
orchestrator_request_created_unix_us (const orchestrator_request_t *self)
{
    return self->created_unix_us;
}

void
orchestrator_request_set_created_unix_us (orchestrator_request_t *self, uint64_t unix_us)
{
    self->created_unix_us = unix_us;
}

const char *
orchestrator_request_parent_span_id (const orchestrator_request_t *self)
{
    return self->parent_span_id;
}

void
orchestrator_request_set_parent_span_id (orchestrator_request_t *self, const char *parent_span_id)
{
    snprintf (self->parent_span_id, sizeof self->parent_span_id, "%s", parent_span_id ? parent_span_id : "");
}

uint64_t
orchestrator_request_stage_started_unix_us (const orchestrator_request_t *self, int stage)
{
    return stage >= 0 && stage < REQUEST_STAGES ? self->stage_started_unix_us[stage] : 0;
}

void
orchestrator_request_set_stage_started_unix_us (orchestrator_request_t *self, int stage, uint64_t unix_us)
{
    assert (stage >= 0 && stage < REQUEST_STAGES);
    self->stage_started_unix_us[stage] = unix_us;
}

void
orchestrator_request_span_id (const orchestrator_request_t *self, char out[CV_SPAN_ID_BYTES])
{
    cv_trace_span_id_of (self->id, "request", out);
}

void
orchestrator_request_stage_span_id (const orchestrator_request_t *self, int stage, char out[CV_SPAN_ID_BYTES])
{
    assert (stage >= 0 && stage < REQUEST_STAGES);
    cv_trace_span_id_of (self->id, s_stage_names[stage], out);
}

static double
s_ms (int64_t us)
{
    return (double) us / 1000.0;
}

/* Micros in the agent's cost units, for the document. */
static double
s_units (uint64_t micros)
{
    return (double) micros / CV_BUDGET_MICROS_PER_UNIT;
}

/* The evidence summary: per tool its name, status, time, attempts, whether it came from the cache
   or its breaker was open, its row count and error; the rows stay out of the document. */
static json_t *
s_evidence_json (const Conveyor__V1__Evidence *evidence)
{
    json_t *tools = json_array ();
    for (size_t i = 0; i < evidence->n_results; i++) {
        const Conveyor__V1__ToolResult *result = evidence->results[i];
        json_t *tool =
            json_pack ("{s:s, s:s, s:f, s:i, s:b, s:b, s:f}", "name", result->tool, "status",
                       cv_context_tool_status_name (result->status), "duration_ms", s_ms (result->elapsed_us),
                       "attempts", (int) result->attempts, "cached", result->cached, "breaker_open",
                       result->breaker_open, "cost", s_units (result->cost_micros));
        cv_error_t err;
        json_t *data = cv_msgpack_unpack (result->data.data, result->data.len, "data", &err);
        if (json_is_array (data))
            json_object_set_new (tool, "rows", json_integer ((json_int_t) json_array_size (data)));
        json_decref (data);
        if (*result->error)
            json_object_set_new (tool, "error", json_string (result->error));
        json_array_append_new (tools, tool);
    }
    return json_pack ("{s:o}", "tools", tools);
}

/* The reply: its text, the template that rendered it, and the rungs of the ladder tried, the
   last the one that answered; escalated when that was the hand-off to a person. */
static json_t *
s_reply_json (const Conveyor__V1__Reply *reply)
{
    json_t *section = json_pack ("{s:s, s:s}", "text", reply->text, "template", reply->template_);
    if (reply->n_steps) {
        json_t *steps = json_array ();
        for (size_t i = 0; i < reply->n_steps; i++) {
            const Conveyor__V1__ReplyStep *step = reply->steps[i];
            json_t *item = json_pack ("{s:s, s:s}", "rung", cv_context_rung_name (step->rung), "name", step->name);
            if (*step->skipped)
                json_object_set_new (item, "skipped", json_string (step->skipped));
            json_array_append_new (steps, item);
        }
        json_object_set_new (section, "steps", steps);
    }
    json_object_set_new (section, "escalated", json_boolean (cv_envelope_reply_escalated (reply)));
    return section;
}

/* What the document says of each action beyond its result: unknown when the execute stage failed
   without an answer, what a person decided of one held for approval, and when its row was
   committed, recorded (with the decide checkpoint) and performed (with the execute one), where the
   checkpoints are known: a request read back from the store. */
static void
s_note_actions (const orchestrator_request_t *self, json_t *actions)
{
    size_t index;
    json_t *action;
    json_array_foreach (actions, index, action) {
        /* held for approval, then decided: what the person decided (the follow-up acts on it) */
        const char *status = json_string_value (json_object_get (action, "status"));
        /* the executor took it and its answer never came: it may have been performed or not */
        if (self->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED && self->failed_stage == REQUEST_EXECUTE
            && status && strcmp (status, "not_performed") == 0)
            json_object_set_new (action, "status", json_string ("unknown"));
        if (self->follow_up_id && status && strcmp (status, "pending_approval") == 0) {
            json_object_set_new (
                action, "status",
                json_string (self->follow_up_approval == REQUEST_APPROVAL_APPROVED ? "approved" : "rejected"));
            json_object_set_new (action, "approver", json_string (self->decided_by));
            json_object_set_new (action, "decided_at", json_string (self->decided_at));
        }
        if (self->checkpoint_at[REQUEST_DECIDE])
            json_object_set_new (action, "recorded_at", json_string (self->checkpoint_at[REQUEST_DECIDE]));
        if (self->checkpoint_at[REQUEST_EXECUTE])
            json_object_set_new (action, "performed_at", json_string (self->checkpoint_at[REQUEST_EXECUTE]));
    }
}

json_t *
orchestrator_request_to_json (const orchestrator_request_t *self, bool with_checkpoints)
{
    json_t *document =
        json_pack ("{s:s, s:s, s:s, s:s}", "request_id", self->id, "status", orchestrator_request_status (self),
                   "user_id", self->user_id, "trace_id", self->trace_id);
    if (*self->session_id)
        json_object_set_new (document, "session_id", json_string (self->session_id));
    if (self->context)
        json_object_set_new (document, "context", json_deep_copy (self->context));
    if (self->parent_id)
        json_object_set_new (document, "parent_id", json_string (self->parent_id));
    if (self->approval != REQUEST_APPROVAL_NONE)
        json_object_set_new (document, "approval",
                             json_pack ("{s:s, s:s}", "decision",
                                        self->approval == REQUEST_APPROVAL_APPROVED ? "approved" : "rejected",
                                        "approver", self->approver));
    if (self->follow_up_id)
        json_object_set_new (document, "follow_up_id", json_string (self->follow_up_id));
    if ((self->state == REQUEST_FAILED || orchestrator_request_failed_stage (self)) && self->error)
        json_object_set_new (document, "error", json_pack ("{s:s}", "message", self->error));
    else if (!orchestrator_request_finished (self))
        json_object_set_new (document, "stage", json_string (s_stage_names[self->state]));

    const Conveyor__V1__Intent *intent = self->results[REQUEST_INTENT] ? self->results[REQUEST_INTENT]->intent : NULL;
    const Conveyor__V1__ActionResults *performed = s_action_results (self);
    cv_error_t err;
    json_t *context = cv_context_new (self->user_id, self->text, intent, NULL, s_decision (self), &err);
    /* Each action with what became of it: the executor's answer, or not performed when the
       request failed or stopped before the executor answered. While it runs, an action has no status yet. */
    if (context && (performed || self->state == REQUEST_FAILED || self->stopped)
        && cv_context_add_action_results (context, performed ? performed->results : NULL,
                                          performed ? performed->n_results : 0, &err)) {
        json_decref (context);
        context = NULL;
    }
    if (context) {
        json_t *section = json_object_get (context, "intent");
        if (section) {
            json_t *candidates = json_array ();
            for (size_t i = 0; i < intent->n_candidates; i++)
                json_array_append_new (candidates, json_pack ("{s:s, s:f}", "name", intent->candidates[i]->name,
                                                              "score", (double) intent->candidates[i]->score));
            json_object_set_new (section, "candidates", candidates);
            if (*intent->rule)
                json_object_set_new (section, "rule", json_string (intent->rule));
            json_object_set (document, "intent", section);
        }
        json_t *decision = json_object_get (context, "decision");
        if (decision) {
            s_note_actions (self, json_object_get (decision, "actions"));
            if (self->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED
                && self->failed_stage == REQUEST_EXECUTE && json_object_get (decision, "actions_status"))
                json_object_set_new (decision, "actions_status", json_string ("unknown"));
            json_object_set (document, "decision", decision);
        }
        json_decref (context);
    }
    if (self->results[REQUEST_GATHER])
        json_object_set_new (document, "evidence", s_evidence_json (self->results[REQUEST_GATHER]->evidence));
    const cv_envelope_t *reply = self->results[REQUEST_RESPOND];
    if (reply) {
        json_object_set_new (document, "reply", s_reply_json (reply->reply));
        if (reply->reply->n_input_flags) {
            json_t *flags = json_array ();
            for (size_t i = 0; i < reply->reply->n_input_flags; i++)
                json_array_append_new (flags, json_string (reply->reply->input_flags[i]));
            json_object_set_new (document, "input_flags", flags);
        }
    }

    orchestrator_spend_t spend;
    orchestrator_request_spend (self, &spend);
    json_t *cost =
        json_pack ("{s:f, s:f, s:f, s:I, s:I}", "total", s_units (spend.micros), "llm", s_units (spend.llm_micros),
                   "tools", s_units (spend.tool_micros), "prompt_tokens", (json_int_t) spend.prompt_tokens,
                   "completion_tokens", (json_int_t) spend.completion_tokens);
    if (self->limits.budgeted)
        json_object_set_new (cost, "budget", json_real (s_units (self->limits.budget_micros)));
    json_object_set_new (document, "cost", cost);
    json_t *attempts = json_pack ("{s:i}", "used", (int) orchestrator_request_attempts_used (self));
    if (self->limits.max_attempts)
        json_object_set_new (attempts, "limit", json_integer (self->limits.max_attempts));
    json_object_set_new (document, "attempts", attempts);
    if (self->stopped)
        json_object_set_new (document, "stopped", json_string (cv_context_stop_name (self->stopped)));
    if (orchestrator_request_failed_stage (self))
        json_object_set_new (document, "failed_stage", json_string (orchestrator_request_failed_stage (self)));

    json_t *timings = json_object ();
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        if (self->results[stage])
            json_object_set_new (timings, s_stage_names[stage], json_real (s_ms (self->stage_us[stage])));
    if (!isnan (self->total_ms))
        json_object_set_new (timings, "total", json_real (self->total_ms));
    json_object_set_new (document, "timings_ms", timings);

    if (with_checkpoints) {
        json_t *checkpoints = json_array ();
        for (int stage = 0; stage < REQUEST_STAGES; stage++)
            if (self->checkpoint_at[stage])
                json_array_append_new (checkpoints, json_pack ("{s:i, s:s, s:s}", "seq", stage + 1, "stage",
                                                               s_stage_names[stage], "at", self->checkpoint_at[stage]));
        json_object_set_new (document, "checkpoints", checkpoints);
    }
    return document;
}

/* A spend in the record's shape: {total, llm, tools, prompt_tokens, completion_tokens}. */
static json_t *
s_spend_json (uint64_t llm_micros, uint64_t tool_micros, uint64_t prompt_tokens, uint64_t completion_tokens)
{
    return json_pack ("{s:f, s:f, s:f, s:I, s:I}", "total", s_units (cv_budget_add (llm_micros, tool_micros)), "llm",
                      s_units (llm_micros), "tools", s_units (tool_micros), "prompt_tokens", (json_int_t) prompt_tokens,
                      "completion_tokens", (json_int_t) completion_tokens);
}

/* What stage spent itself: its LLM call (intent, respond) or its tools (gather). */
static void
s_stage_spend (const orchestrator_request_t *self, int stage, orchestrator_spend_t *spend)
{
    *spend = (orchestrator_spend_t){0};
    const cv_envelope_t *result = self->results[stage];
    const Conveyor__V1__Spend *llm = !result                    ? NULL
                                     : stage == REQUEST_INTENT  ? result->intent->spend
                                     : stage == REQUEST_RESPOND ? result->reply->spend
                                                                : NULL;
    if (llm) {
        spend->llm_micros = llm->cost_micros;
        spend->prompt_tokens = llm->prompt_tokens;
        spend->completion_tokens = llm->completion_tokens;
    }
    for (size_t i = 0; result && stage == REQUEST_GATHER && i < result->evidence->n_results; i++)
        spend->tool_micros = cv_budget_add (spend->tool_micros, result->evidence->results[i]->cost_micros);
    spend->micros = cv_budget_add (spend->llm_micros, spend->tool_micros);
}

json_t *
orchestrator_request_record (const orchestrator_request_t *self)
{
    json_t *document = orchestrator_request_to_json (self, false);
    json_t *record = json_object ();
    static const char *const kept[] = {"status",   "parent_id", "approval",     "intent", "decision",   "input_flags",
                                       "attempts", "stopped",   "failed_stage", "error",  "timings_ms", NULL};
    for (const char *const *key = kept; *key; key++)
        if (json_object_get (document, *key))
            json_object_set (record, *key, json_object_get (document, *key));
    json_object_del (json_object_get (record, "intent"), "candidates");
    json_t *tools = json_object_get (json_object_get (document, "evidence"), "tools");
    if (tools)
        json_object_set (record, "tools", tools);
    json_t *reply = json_object_get (document, "reply");
    if (reply) {
        json_t *kept_reply = json_pack ("{s:O}", "template", json_object_get (reply, "template"));
        if (json_object_get (reply, "steps"))
            json_object_set (kept_reply, "steps", json_object_get (reply, "steps"));
        json_object_set (kept_reply, "escalated", json_object_get (reply, "escalated"));
        json_object_set_new (record, "reply", kept_reply);
    }
    /* what the request spent itself, by stage: a follow-up's first stages are its parent's (copied,
       never sent by it: no start), and counted with the parent */
    json_t *stages = json_object ();
    orchestrator_spend_t own = {0};
    for (int stage = 0; stage < REQUEST_STAGES; stage++) {
        if (!self->results[stage] || stage == REQUEST_DECIDE || stage == REQUEST_EXECUTE
            || (self->parent_id && !self->stage_started_unix_us[stage]))
            continue;
        orchestrator_spend_t spend;
        s_stage_spend (self, stage, &spend);
        json_object_set_new (
            stages, s_stage_names[stage],
            s_spend_json (spend.llm_micros, spend.tool_micros, spend.prompt_tokens, spend.completion_tokens));
        own.llm_micros = cv_budget_add (own.llm_micros, spend.llm_micros);
        own.tool_micros = cv_budget_add (own.tool_micros, spend.tool_micros);
        own.prompt_tokens = cv_budget_add (own.prompt_tokens, spend.prompt_tokens);
        own.completion_tokens = cv_budget_add (own.completion_tokens, spend.completion_tokens);
    }
    json_t *cost = s_spend_json (own.llm_micros, own.tool_micros, own.prompt_tokens, own.completion_tokens);
    json_object_set_new (cost, "stages", stages);
    json_object_set_new (record, "cost", cost);
    json_decref (document);
    return record;
}

/*  --------------------------------------------------------------------------
    Self-test: requests walked through their stages with hand-made worker replies: one whose
    decision has an action (five stages), one whose decision has none (execute skipped), and the
    replies that fail a request. */

static bool
s_equal (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

/* What the test's hand-made workers answer. */
typedef struct {
    bool with_action;      /* the decision has one action, a-1 freeze_card */
    bool needs_approval;   /* ...which waits for a person's approval */
    const char *result_id; /* the executor answers for this action id */
    size_t results;        /* ...with this many results */
    uint64_t llm_micros;   /* the intent's LLM spent this ... */
    bool llm_refused;      /* ... or left a call undone for the budget */
    uint64_t tool_micros;  /* the evidence has one tool that cost this ... */
    bool tool_refused;     /* ... or was left undone for the budget */
    uint32_t attempts;     /* each stage took this many attempts; 0: one */
    uint64_t reply_micros; /* the responder's LLM spent this */
    bool escalated;        /* the reply's LLM failed, its template too: the hand-off answered */
} s_script_t;

/* A worker's reply to request with a body of body_case, unpacked from the bytes it came in
   (*packed_p, the caller's to free). */
static cv_envelope_t *
s_reply (const cv_envelope_t *request, cv_body_t body_case, const s_script_t *script, uint8_t **packed_p,
         size_t *size_p)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    cv_error_t err;
    uint8_t *packed_result = NULL;
    switch (body_case) {
    case CONVEYOR__V1__ENVELOPE__BODY_INTENT: {
        Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
        intent->name = "lost_or_stolen_card";
        intent->confidence = 1.0f;
        intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
        if (script->llm_micros || script->llm_refused) {
            intent->spend = cv_arena_alloc (arena, sizeof *intent->spend);
            conveyor__v1__spend__init (intent->spend);
            intent->spend->prompt_tokens = script->llm_micros ? 1000 : 0;
            intent->spend->completion_tokens = script->llm_micros ? 20 : 0;
            intent->spend->cost_micros = script->llm_micros;
            intent->spend->over_budget = script->llm_refused;
        }
        break;
    }
    case CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE: {
        Conveyor__V1__Evidence *evidence = cv_envelope_set_evidence (reply, arena);
        if (script->tool_micros || script->tool_refused) {
            json_t *rows = json_array ();
            size_t size;
            packed_result = cv_msgpack_pack (rows, &size, &err);
            json_decref (rows);
            Conveyor__V1__ToolResult *tool = cv_arena_alloc (arena, sizeof *tool);
            conveyor__v1__tool_result__init (tool);
            tool->tool = "fx_rate";
            tool->status = script->tool_refused ? CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET
                                                : CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
            tool->data.data = packed_result;
            tool->data.len = size;
            tool->cost_micros = script->tool_micros;
            evidence->results = cv_arena_alloc (arena, sizeof *evidence->results);
            evidence->results[0] = tool;
            evidence->n_results = 1;
        }
        break;
    }
    case CONVEYOR__V1__ENVELOPE__BODY_DECISION: {
        Conveyor__V1__Decision *decision = cv_envelope_set_decision (reply, arena);
        decision->outcome = script->with_action ? "freeze_card" : "answer";
        decision->rule = script->with_action ? "lost_card_freeze" : "card_on_its_way";
        if (script->with_action) {
            Conveyor__V1__Action *action = cv_envelope_action_new (arena);
            action->id = "a-1";
            action->kind = "freeze_card";
            action->requires_approval = script->needs_approval;
            decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
            decision->actions[0] = action;
            decision->n_actions = 1;
        }
        break;
    }
    case CONVEYOR__V1__ENVELOPE__BODY_ACTION_RESULTS: {
        Conveyor__V1__ActionResults *performed = cv_envelope_set_action_results (reply, arena);
        json_t *bank = json_pack ("{s:s}", "last4", "4417");
        size_t size;
        packed_result = cv_msgpack_pack (bank, &size, &err);
        json_decref (bank);
        performed->n_results = script->results;
        performed->results = cv_arena_alloc (arena, (script->results + 1) * sizeof *performed->results);
        for (size_t i = 0; i < script->results; i++) {
            Conveyor__V1__ActionResult *result = cv_envelope_action_result_new (arena);
            result->action_id = (char *) (i == 0 ? script->result_id : "a-2");
            result->kind = "freeze_card";
            result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
            result->result.data = packed_result;
            result->result.len = size;
            result->attempts = 1;
            performed->results[i] = result;
        }
        break;
    }
    case CONVEYOR__V1__ENVELOPE__BODY_REPLY: {
        Conveyor__V1__Reply *written = cv_envelope_set_reply (reply, arena);
        written->text = "Your card ending 4417 is frozen.";
        if (script->reply_micros) {
            written->spend = cv_envelope_spend_new (arena);
            written->spend->completion_tokens = 30;
            written->spend->cost_micros = script->reply_micros;
        }
        if (script->escalated) {
            written->template_ = "fallback";
            written->n_steps = 3;
            written->steps = cv_arena_alloc (arena, 3 * sizeof *written->steps);
            const Conveyor__V1__ReplyStep__Rung rungs[] = {CONVEYOR__V1__REPLY_STEP__RUNG__LLM,
                                                           CONVEYOR__V1__REPLY_STEP__RUNG__TEMPLATE,
                                                           CONVEYOR__V1__REPLY_STEP__RUNG__HANDOFF};
            const char *names[] = {"small", "card_rule", "fallback"}, *skipped[] = {"HTTP 500", "no value", ""};
            for (int i = 0; i < 3; i++) {
                written->steps[i] = cv_envelope_reply_step_new (arena);
                *written->steps[i] = (Conveyor__V1__ReplyStep){written->steps[i]->base, rungs[i], (char *) names[i],
                                                               (char *) skipped[i]};
            }
        }
        break;
    }
    default: {
        cv_error_t bad;
        cv_error_set (&bad, CV_ERR_INVALID, NULL, "bad");
        cv_envelope_set_error (reply, arena, &bad);
    }
    }
    *packed_p = cv_envelope_pack (reply, size_p);
    cv_envelope_t *copy = cv_envelope_unpack (*packed_p, *size_p, &err);
    free (packed_result);
    cv_arena_destroy (&arena);
    return copy;
}

/* Runs request's current stage with the script's workers: checks what is sent, and returns
   what accepting the reply returned. */
static int
s_run_stage (orchestrator_request_t *request, const s_script_t *script, cv_error_t *err)
{
    static const cv_body_t sent[REQUEST_STAGES] = {
        CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
        CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_EXECUTE_REQUEST,
        CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST};
    int stage = (int) orchestrator_request_state (request);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = orchestrator_request_stage_envelope (request, arena);
    assert (envelope && envelope->body_case == sent[stage]);
    envelope->message_id = "m-1";
    assert (cv_envelope_validate (envelope, CV_BODY (sent[stage]), 0, err) == 0);
    if (stage == REQUEST_EXECUTE) /* the decision's actions go to the executor */
        assert (envelope->execute_request->n_actions == 1
                && s_equal (envelope->execute_request->actions[0]->id, "a-1"));
    if (stage == REQUEST_RESPOND && !envelope->respond_request->stopped) /* ...and what they did, to the responder */
        assert (envelope->respond_request->n_action_results == (script->with_action ? 1u : 0u));
    if (stage == REQUEST_RESPOND) /* with the conversation so far, in order */
        for (size_t i = 0; i < envelope->respond_request->n_context; i++) {
            const json_t *turn = json_array_get (orchestrator_request_context (request), i);
            const Conveyor__V1__Turn *sent_turn = envelope->respond_request->context[i];
            assert (s_equal (sent_turn->content, json_string_value (json_object_get (turn, "content"))));
            assert ((sent_turn->role == CONVEYOR__V1__TURN__ROLE__ASSISTANT)
                    == s_equal (json_string_value (json_object_get (turn, "role")), "assistant"));
        }
    uint8_t *packed;
    size_t size, kept_size;
    cv_envelope_t *reply = s_reply (envelope, s_awaited[stage], script, &packed, &size);
    int rc = orchestrator_request_accept (request, &reply, packed, size, 1000 * (stage + 1),
                                          script->attempts ? script->attempts : 1, err);
    assert (reply == NULL);
    if (rc == 0) { /* the bytes are kept as they came, for the checkpoint */
        const uint8_t *kept = orchestrator_request_result_bytes (request, stage, &kept_size);
        assert (kept && kept != packed && kept_size == size && memcmp (kept, packed, size) == 0);
        orchestrator_request_note_checkpoint (request, stage, "2026-01-15T12:00:00Z");
    }
    free (packed);
    cv_arena_destroy (&arena);
    return rc;
}

/* What the current stage is sent as the budget left: -1 for none. */
static int64_t
s_budget_left (orchestrator_request_t *request)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = orchestrator_request_stage_envelope (request, arena);
    int64_t left = envelope->budget ? (int64_t) envelope->budget->cost_micros_left : -1;
    cv_arena_destroy (&arena);
    return left;
}

/* A new request under limits. */
static orchestrator_request_t *
s_limited (bool budgeted, uint64_t budget_micros, uint32_t max_attempts)
{
    orchestrator_request_t *request =
        orchestrator_request_new (NULL, NULL, "cust-1", NULL, "I lost my card", NULL, 4102444800000ULL);
    orchestrator_limits_t limits = {.budgeted = budgeted, .budget_micros = budget_micros, .max_attempts = max_attempts};
    orchestrator_request_set_limits (request, &limits);
    return request;
}

/* The document's value at key.key2 (key2 may be NULL). */
static json_t *
s_field (json_t *document, const char *key, const char *key2)
{
    json_t *value = json_object_get (document, key);
    return key2 ? json_object_get (value, key2) : value;
}

/* Budgets and attempt limits: what each stage is sent, the sums, and where a request stops. */
static void
s_test_limits (void)
{
    cv_error_t err;
    /* within the budget: each stage hears what is left, the document sums the spend */
    s_script_t spending = {.with_action = true,
                           .result_id = "a-1",
                           .results = 1,
                           .llm_micros = 1200,
                           .tool_micros = 3000,
                           .reply_micros = 500};
    orchestrator_request_t *request = s_limited (true, 5000, 0);
    assert (s_budget_left (request) == 5000 && orchestrator_request_attempts_allowed (request) == 0);
    assert (s_run_stage (request, &spending, &err) == 0 && s_budget_left (request) == 3800);
    assert (s_run_stage (request, &spending, &err) == 0 && s_budget_left (request) == 800);
    while (!orchestrator_request_finished (request))
        assert (s_run_stage (request, &spending, &err) == 0);
    assert (s_equal (orchestrator_request_status (request), "done"));
    json_t *document = orchestrator_request_to_json (request, false);
    assert (json_real_value (s_field (document, "cost", "total")) == 0.0047); /* the reply's LLM too */
    assert (json_real_value (s_field (document, "cost", "llm")) == 0.0017);
    assert (json_integer_value (s_field (document, "cost", "completion_tokens")) == 50);
    assert (json_real_value (s_field (document, "cost", "tools")) == 0.003);
    assert (json_real_value (s_field (document, "cost", "budget")) == 0.005);
    assert (json_integer_value (s_field (document, "cost", "prompt_tokens")) == 1000);
    assert (json_integer_value (s_field (document, "attempts", "used")) == 5);
    assert (!s_field (document, "attempts", "limit") && !s_field (document, "stopped", NULL));
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* no budget: nothing sent, the spend still counted */
    request = s_limited (false, 0, 0);
    assert (s_budget_left (request) == -1);
    assert (s_run_stage (request, &spending, &err) == 0 && s_run_stage (request, &spending, &err) == 0);
    orchestrator_spend_t spend;
    orchestrator_request_spend (request, &spend);
    assert (spend.micros == 4200 && spend.llm_micros == 1200 && spend.tool_micros == 3000);
    orchestrator_request_destroy (&request);

    /* a stage that left a spend undone stops the request: the reply is next, told why, and
       given only what ran */
    static const struct {
        s_script_t script;
        uint64_t budget;
        int stopped_after; /* the stage after which it stops */
    } over[] = {
        {{.llm_refused = true}, 1000, REQUEST_INTENT},
        {{.llm_micros = 200, .tool_refused = true}, 1000, REQUEST_GATHER},
        {{.llm_micros = 200, .tool_micros = 900}, 1000, REQUEST_GATHER}, /* spent past it: stopped too */
        {{.llm_micros = 1001}, 1000, REQUEST_INTENT},
    };
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        request = s_limited (true, over[i].budget, 0);
        for (int stage = 0; stage <= over[i].stopped_after; stage++)
            assert (s_run_stage (request, &over[i].script, &err) == 0);
        assert (orchestrator_request_state (request) == REQUEST_RESPOND);
        assert (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET);
        cv_arena_t *arena = cv_arena_new ();
        cv_envelope_t *respond = orchestrator_request_stage_envelope (request, arena);
        assert (respond->respond_request->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET);
        assert ((respond->respond_request->evidence != NULL) == (over[i].stopped_after == REQUEST_GATHER));
        assert (!respond->respond_request->decision);
        cv_arena_destroy (&arena);
        assert (s_run_stage (request, &over[i].script, &err) == 0);
        assert (orchestrator_request_state (request) == REQUEST_DONE);
        assert (s_equal (orchestrator_request_status (request), "over_budget"));
        document = orchestrator_request_to_json (request, false);
        assert (s_equal (json_string_value (s_field (document, "stopped", NULL)), "over_budget"));
        assert (s_equal (json_string_value (s_field (document, "status", NULL)), "over_budget"));
        json_decref (document);
        orchestrator_request_destroy (&request);
    }

    /* attempts: each stage may take what is left; used up before a stage, the request stops */
    s_script_t retried = {.with_action = true, .result_id = "a-1", .results = 1, .attempts = 2};
    s_script_t once = {.with_action = true, .result_id = "a-1", .results = 1};
    request = s_limited (false, 0, 4);
    assert (orchestrator_request_attempts_allowed (request) == 4);
    assert (s_run_stage (request, &retried, &err) == 0 && orchestrator_request_attempts_allowed (request) == 2);
    assert (s_run_stage (request, &retried, &err) == 0);
    assert (orchestrator_request_attempts_used (request) == 4
            && orchestrator_request_state (request) == REQUEST_RESPOND);
    assert (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
    assert (orchestrator_request_attempts_allowed (request) == 1); /* the reply's, past the limit */
    assert (s_run_stage (request, &retried, &err) == 0);
    assert (s_equal (orchestrator_request_status (request), "out_of_attempts"));
    document = orchestrator_request_to_json (request, false);
    assert (json_integer_value (s_field (document, "attempts", "used")) == 6);
    assert (json_integer_value (s_field (document, "attempts", "limit")) == 4);
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* stopped before its actions ran: they say not performed */
    request = s_limited (false, 0, 6);
    for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
        assert (s_run_stage (request, &retried, &err) == 0);
    assert (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
    assert (s_run_stage (request, &retried, &err) == 0);
    document = orchestrator_request_to_json (request, false);
    json_t *action = json_array_get (s_field (document, "decision", "actions"), 0);
    assert (s_equal (json_string_value (json_object_get (action, "status")), "not_performed"));
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* read back, a reply that follows a stage which left no checkpoint is a stop only when the
       row's lost attempts used the limit up */
    request = s_limited (false, 0, 5);
    assert (s_run_stage (request, &once, &err) == 0);
    orchestrator_request_note_lost_attempts (request, 3);
    assert (orchestrator_request_stop_for_attempts (request) == -1
            && orchestrator_request_state (request) == REQUEST_GATHER);
    orchestrator_request_note_lost_attempts (request, 4);
    assert (orchestrator_request_stop_for_attempts (request) == 0
            && orchestrator_request_state (request) == REQUEST_RESPOND);
    orchestrator_request_destroy (&request);
    request = s_limited (false, 0, 0);
    assert (s_run_stage (request, &once, &err) == 0);
    orchestrator_request_note_lost_attempts (request, 40);
    assert (orchestrator_request_stop_for_attempts (request) == -1);
    orchestrator_request_destroy (&request);

    /* ...but the reply of a request whose other stages all ran still goes, and tells them */
    request = s_limited (false, 0, 4);
    for (int stage = 0; stage <= REQUEST_EXECUTE; stage++)
        assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_RESPOND && !orchestrator_request_stopped (request));
    assert (orchestrator_request_attempts_allowed (request) == 1);
    assert (s_run_stage (request, &once, &err) == 0 && s_equal (orchestrator_request_status (request), "done"));
    orchestrator_request_destroy (&request);

    /* a stage whose workers failed until the last attempt went stops the request for its
       attempts; a deadline, or a stage failing within its own limit, stops it because the stage
       failed; only the reply's own failure fails it */
    cv_error_t gave_up, late;
    cv_error_set (&gave_up, CV_ERR_UNAVAILABLE, NULL, "gatherer: gave up after 3 attempt(s)");
    cv_error_set (&late, CV_ERR_DEADLINE_EXCEEDED, NULL, "gatherer: deadline passed after 2 attempt(s)");
    request = s_limited (false, 0, 4);
    assert (s_run_stage (request, &once, &err) == 0 && orchestrator_request_attempts_allowed (request) == 3);
    assert (orchestrator_request_stage_failed (request, 3, &gave_up) == 0);
    assert (orchestrator_request_state (request) == REQUEST_RESPOND
            && orchestrator_request_attempts_used (request) == 4);
    assert (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__OUT_OF_ATTEMPTS);
    assert (s_run_stage (request, &once, &err) == 0
            && s_equal (orchestrator_request_status (request), "out_of_attempts"));
    orchestrator_request_destroy (&request);
    request = s_limited (false, 0, 10);
    assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stage_failed (request, 3, &gave_up) == 0);
    assert (orchestrator_request_state (request) == REQUEST_RESPOND);
    assert (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED);
    assert (s_equal (orchestrator_request_failed_stage (request), "gather"));
    assert (s_equal (orchestrator_request_error (request), "gatherer: gave up after 3 attempt(s)"));
    orchestrator_request_destroy (&request);
    request = s_limited (false, 0, 3);
    assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stage_failed (request, 2, &late) == 0);
    assert (s_equal (orchestrator_request_failed_stage (request), "gather"));
    /* the reply is told which stage failed, and the request ends answered */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *respond = orchestrator_request_stage_envelope (request, arena);
    assert (respond->respond_request->stopped == CONVEYOR__V1__RESPOND_REQUEST__STOP__STAGE_FAILED);
    assert (s_equal (respond->respond_request->failed_stage, "gather") && !respond->respond_request->evidence);
    cv_arena_destroy (&arena);
    assert (s_run_stage (request, &once, &err) == 0 && s_equal (orchestrator_request_status (request), "stage_failed"));
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (s_field (document, "failed_stage", NULL)), "gather"));
    assert (s_equal (json_string_value (s_field (document, "error", "message")), late.message));
    json_decref (document);
    /* ...read back, its reply following the last stage that answered, it stops so again */
    assert (orchestrator_request_stop_for_stage_failure (request, "again") == -1);
    orchestrator_request_destroy (&request);
    request = s_limited (false, 0, 3);
    assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stop_for_stage_failure (request, late.message) == 0);
    assert (s_equal (orchestrator_request_failed_stage (request), "gather"));
    assert (orchestrator_request_stop_for_stage_failure (request, late.message) == -1); /* once */
    orchestrator_request_destroy (&request);
    /* the executor's workers failing until the request's last attempt: the actions were sent, so
       the stage failed and whether they were performed is unknown, not "out of attempts" */
    s_script_t acting_once = {.with_action = true, .result_id = "a-1", .results = 1};
    request = s_limited (false, 0, 5);
    for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
        assert (s_run_stage (request, &acting_once, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_EXECUTE);
    assert (orchestrator_request_stage_failed (request, 2, &gave_up) == 0);
    assert (s_equal (orchestrator_request_failed_stage (request), "execute"));
    assert (s_run_stage (request, &acting_once, &err) == 0
            && s_equal (orchestrator_request_status (request), "stage_failed"));
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (s_field (document, "decision", "actions_status")), "unknown"));
    assert (s_equal (
        json_string_value (json_object_get (json_array_get (s_field (document, "decision", "actions"), 0), "status")),
        "unknown"));
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* the reply to a stage's failure fails too: the request fails with both causes, not stopped */
    request = s_limited (false, 0, 3);
    assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stage_failed (request, 2, &late) == 0);
    cv_error_t no_reply;
    cv_error_set (&no_reply, CV_ERR_DEADLINE_EXCEEDED, NULL, "responder: deadline passed after 1 attempt(s)");
    assert (orchestrator_request_stage_failed (request, 1, &no_reply) == -1);
    assert (orchestrator_request_state (request) == REQUEST_FAILED && !orchestrator_request_failed_stage (request));
    assert (!orchestrator_request_stopped (request));
    assert (s_equal (orchestrator_request_error (request),
                     "responder: deadline passed after 1 attempt(s) (after stage "
                     "gather failed: gatherer: deadline passed after 2 attempt(s))"));
    orchestrator_request_destroy (&request);

    /* the reply's own failure has nothing left to answer with: the request fails */
    request = s_limited (false, 0, 0);
    for (int stage = 0; stage <= REQUEST_EXECUTE; stage++)
        assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stage_failed (request, 2, &late) == -1);
    assert (orchestrator_request_state (request) == REQUEST_FAILED && !orchestrator_request_failed_stage (request));
    orchestrator_request_destroy (&request);

    /* the stages before the reply have the deadline less the reply's reserve; the reply all of it */
    request = s_limited (false, 0, 0);
    uint64_t deadline_ms = 4102444800000ULL;
    orchestrator_request_set_deadline (request, deadline_ms);
    /* the configured reserve, or half the time left when that is less, or none past the deadline */
    assert (orchestrator_request_keep_reply_reserve (request, 700, deadline_ms - 3000) == 700);
    assert (orchestrator_request_keep_reply_reserve (request, 700, deadline_ms - 1000) == 500);
    assert (orchestrator_request_keep_reply_reserve (request, 700, deadline_ms) == 0);
    assert (orchestrator_request_keep_reply_reserve (request, 700, deadline_ms + 5) == 0);
    assert (orchestrator_request_keep_reply_reserve (request, 0, deadline_ms - 3000) == 0);
    assert (orchestrator_request_keep_reply_reserve (request, 700, deadline_ms - 3000) == 700);
    arena = cv_arena_new ();
    assert (orchestrator_request_stage_envelope (request, arena)->deadline_ms == 4102444800000ULL - 700);
    for (int stage = 0; stage <= REQUEST_EXECUTE; stage++)
        assert (s_run_stage (request, &once, &err) == 0);
    assert (orchestrator_request_stage_envelope (request, arena)->deadline_ms == 4102444800000ULL);
    cv_arena_destroy (&arena);
    orchestrator_request_destroy (&request);
}

/* A reply that ended in the hand-off escalates the request; its document shows the rungs tried. */
static void
s_test_escalated (void)
{
    orchestrator_request_t *request =
        orchestrator_request_new ("r-9", NULL, "cust-1", NULL, "I lost my card", NULL, 4102444800000ULL);
    s_script_t handed_off = {.escalated = true};
    cv_error_t err;
    while (!orchestrator_request_finished (request))
        assert (s_run_stage (request, &handed_off, &err) == 0);
    assert (s_equal (orchestrator_request_status (request), "escalated"));
    json_t *document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (s_field (document, "status", NULL)), "escalated"));
    json_t *reply = json_object_get (document, "reply");
    assert (json_is_true (json_object_get (reply, "escalated")));
    json_t *steps = json_object_get (reply, "steps");
    assert (json_array_size (steps) == 3);
    assert (s_equal (json_string_value (json_object_get (json_array_get (steps, 0), "rung")), "llm"));
    assert (s_equal (json_string_value (json_object_get (json_array_get (steps, 0), "skipped")), "HTTP 500"));
    assert (s_equal (json_string_value (json_object_get (json_array_get (steps, 2), "rung")), "handoff"));
    assert (!json_object_get (json_array_get (steps, 2), "skipped"));
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* a reply with no steps recorded was a template's: done, not escalated */
    request = orchestrator_request_new ("r-10", NULL, "cust-1", NULL, "I lost my card", NULL, 4102444800000ULL);
    s_script_t plain = {0};
    while (!orchestrator_request_finished (request))
        assert (s_run_stage (request, &plain, &err) == 0);
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (s_field (document, "status", NULL)), "done"));
    assert (json_is_false (s_field (document, "reply", "escalated")) && !s_field (document, "reply", "steps"));
    json_decref (document);
    orchestrator_request_destroy (&request);
}

void
orchestrator_request_test (bool verbose)
{
    s_test_limits ();
    s_test_escalated ();
    uint64_t deadline = 4102444800000ULL; /* 2100 */
    orchestrator_request_t *request =
        orchestrator_request_new (NULL, NULL, "cust-1", NULL, "I lost my card", "key-1", deadline);
    assert (strncmp (orchestrator_request_id (request), "r-", 2) == 0);
    assert (strlen (orchestrator_request_trace_id (request)) == 32);
    assert (s_equal (orchestrator_request_status (request), "running"));
    assert (s_equal (orchestrator_request_service (REQUEST_EXECUTE), "executor"));
    assert (!orchestrator_request_service (REQUEST_DONE));
    cv_error_t err;

    /* a decision with an action: all five stages */
    s_script_t acting = {.with_action = true, .result_id = "a-1", .results = 1};
    for (int stage = 0; stage < REQUEST_STAGES; stage++) {
        assert (orchestrator_request_state (request) == (orchestrator_state_t) stage);
        assert (s_run_stage (request, &acting, &err) == 0);
        assert (orchestrator_request_result_count (request) == stage + 1);
        assert (orchestrator_request_result_stage (request, stage) == stage);
    }
    assert (orchestrator_request_state (request) == REQUEST_DONE);
    orchestrator_request_set_total_ms (request, 12.5);
    json_t *document = orchestrator_request_to_json (request, true);
    assert (s_equal (json_string_value (json_object_get (document, "status")), "done"));
    assert (s_equal (json_string_value (json_object_get (json_object_get (document, "intent"), "method")), "rule"));
    assert (s_equal (json_string_value (json_object_get (json_object_get (document, "reply"), "text")),
                     "Your card ending 4417 is frozen."));
    json_t *action = json_array_get (json_object_get (json_object_get (document, "decision"), "actions"), 0);
    assert (s_equal (json_string_value (json_object_get (action, "status")), "done"));
    assert (s_equal (json_string_value (json_object_get (json_object_get (action, "result"), "last4")), "4417"));
    assert (s_equal (json_string_value (json_object_get (action, "recorded_at")), "2026-01-15T12:00:00Z"));
    assert (s_equal (json_string_value (json_object_get (action, "performed_at")), "2026-01-15T12:00:00Z"));
    json_t *timings = json_object_get (document, "timings_ms");
    assert (json_real_value (json_object_get (timings, "gather")) == 2.0);
    assert (json_real_value (json_object_get (timings, "execute")) == 4.0);
    assert (json_real_value (json_object_get (timings, "total")) == 12.5);
    assert (json_array_size (json_object_get (document, "checkpoints")) == REQUEST_STAGES);
    json_decref (document);

    /* a finished request takes nothing more */
    cv_arena_t *arena = cv_arena_new ();
    assert (!orchestrator_request_stage_envelope (request, arena));
    uint8_t *packed;
    size_t size;
    cv_envelope_t *extra = s_reply (cv_envelope_new (arena, "r", NULL, deadline, 1), CONVEYOR__V1__ENVELOPE__BODY_REPLY,
                                    &acting, &packed, &size);
    assert (orchestrator_request_accept (request, &extra, packed, size, 1, 1, &err) == -1);
    free (packed);
    cv_arena_destroy (&arena);
    orchestrator_request_destroy (&request);

    /* a decision without actions skips execute: four results, the last one the reply's */
    s_script_t answering = {.with_action = false};
    request = orchestrator_request_new ("r-1", NULL, "cust-1", NULL, "Where is my card?", NULL, deadline);
    json_t *context = json_pack ("[{s:s, s:s}, {s:s, s:s}]", "role", "user", "content", "I ordered a card.", "role",
                                 "assistant", "content", "It is on its way.");
    orchestrator_request_set_context (request, context);
    json_decref (context);
    for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
        assert (s_run_stage (request, &answering, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_RESPOND);
    cv_arena_t *scratch = cv_arena_new ();
    assert (orchestrator_request_stage_envelope (request, scratch)->respond_request->n_context == 2);
    cv_arena_destroy (&scratch);
    assert (s_run_stage (request, &answering, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_DONE);
    assert (orchestrator_request_result_count (request) == 4);
    assert (orchestrator_request_result_stage (request, 3) == REQUEST_RESPOND);
    assert (!orchestrator_request_result (request, REQUEST_EXECUTE));
    document = orchestrator_request_to_json (request, true);
    assert (json_equal (json_object_get (document, "context"), (json_t *) orchestrator_request_context (request)));
    assert (!json_object_get (json_object_get (document, "timings_ms"), "execute"));
    assert (json_array_size (json_object_get (document, "checkpoints")) == 4);
    json_decref (document);
    orchestrator_request_destroy (&request);

    /* an action that waits for a person: nothing performed, the reply told it waits, and the
       request done but pending approval */
    s_script_t waiting = {.with_action = true, .needs_approval = true, .result_id = "a-1", .results = 1};
    request = orchestrator_request_new ("r-5", NULL, "cust-1", NULL, "Refund my payment", NULL, deadline);
    for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
        assert (s_run_stage (request, &waiting, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_RESPOND
            && orchestrator_request_result_count (request) == 4);
    const cv_envelope_t *held = orchestrator_request_result (request, REQUEST_EXECUTE);
    assert (held && held->action_results->n_results == 1
            && held->action_results->results[0]->outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__PENDING_APPROVAL);
    assert (orchestrator_request_result_bytes (request, REQUEST_EXECUTE, &size));
    assert (s_run_stage (request, &waiting, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_DONE && orchestrator_request_awaiting_approval (request));
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (json_object_get (document, "status")), "pending_approval"));
    assert (s_equal (json_string_value (json_object_get (json_object_get (document, "decision"), "actions_status")),
                     "pending_approval"));
    json_decref (document);
    orchestrator_request_note_follow_up (request, "r-5-a", REQUEST_APPROVAL_APPROVED, "alice", "2026-01-15T13:00:00Z");
    document = orchestrator_request_to_json (request, false);
    action = json_array_get (json_object_get (json_object_get (document, "decision"), "actions"), 0);
    assert (s_equal (json_string_value (json_object_get (action, "status")), "approved"));
    assert (s_equal (json_string_value (json_object_get (action, "approver")), "alice"));
    assert (s_equal (json_string_value (json_object_get (action, "decided_at")), "2026-01-15T13:00:00Z"));
    json_decref (document);
    assert (!orchestrator_request_awaiting_approval (request));
    assert (s_equal (orchestrator_request_status (request), "done"));
    orchestrator_request_destroy (&request);

    /* its follow-up, approved, performs the action; rejected, or expired, says why not */
    request = orchestrator_request_new ("r-5-a", NULL, "cust-1", NULL, "Refund my payment", NULL, deadline);
    orchestrator_request_set_follow_up_of (request, "r-5", REQUEST_APPROVAL_APPROVED, "alice");
    for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
        assert (s_run_stage (request, &waiting, &err) == 0);
    assert (orchestrator_request_state (request) == REQUEST_EXECUTE);
    cv_arena_t *sending = cv_arena_new (); /* approved: the executor hears they wait no more */
    cv_envelope_t *execute = orchestrator_request_stage_envelope (request, sending);
    assert (!execute->execute_request->actions[0]->requires_approval);
    assert (orchestrator_request_result (request, REQUEST_DECIDE)->decision->actions[0]->requires_approval);
    cv_arena_destroy (&sending);
    assert (s_run_stage (request, &waiting, &err) == 0 && s_run_stage (request, &waiting, &err) == 0);
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (json_object_get (document, "status")), "done"));
    assert (s_equal (json_string_value (json_object_get (document, "parent_id")), "r-5"));
    assert (
        s_equal (json_string_value (json_object_get (json_object_get (document, "approval"), "approver")), "alice"));
    json_decref (document);
    orchestrator_request_destroy (&request);
    const char *approvers[] = {"bob", ORCHESTRATOR_APPROVAL_EXPIRED};
    const char *reasons[] = {"rejected by bob", "its approval expired"};
    for (size_t i = 0; i < 2; i++) {
        request = orchestrator_request_new ("r-5-a", NULL, "cust-1", NULL, "Refund my payment", NULL, deadline);
        orchestrator_request_set_follow_up_of (request, "r-5", REQUEST_APPROVAL_REJECTED, approvers[i]);
        for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
            assert (s_run_stage (request, &waiting, &err) == 0);
        assert (orchestrator_request_state (request) == REQUEST_RESPOND);
        held = orchestrator_request_result (request, REQUEST_EXECUTE);
        assert (held->action_results->results[0]->outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__REJECTED);
        assert (s_equal (held->action_results->results[0]->reason, reasons[i]));
        assert (s_run_stage (request, &waiting, &err) == 0);
        assert (s_equal (orchestrator_request_status (request), "done"));
        orchestrator_request_destroy (&request);
    }

    /* results that do not answer the actions one for one fail the execute stage: the reply says
       it could not be confirmed */
    s_script_t strays[] = {{.with_action = true, .result_id = "a-9", .results = 1},
                           {.with_action = true, .result_id = "a-1", .results = 2},
                           {.with_action = true, .result_id = "a-1", .results = 0}};
    for (size_t i = 0; i < sizeof strays / sizeof strays[0]; i++) {
        request = orchestrator_request_new ("r-4", NULL, "cust-1", NULL, "I lost my card", NULL, deadline);
        for (int stage = 0; stage <= REQUEST_DECIDE; stage++)
            assert (s_run_stage (request, &strays[i], &err) == 0);
        assert (s_run_stage (request, &strays[i], &err) == -1);
        cv_assert_that (err.code == CV_ERR_INVALID && strstr (err.message, "executor worker"), "stray %zu: %s", i,
                        err.message);
        assert (orchestrator_request_state (request) == REQUEST_RESPOND);
        assert (s_equal (orchestrator_request_failed_stage (request), "execute"));
        /* the document cannot say whether the action was performed */
        document = orchestrator_request_to_json (request, false);
        action = json_array_get (json_object_get (json_object_get (document, "decision"), "actions"), 0);
        assert (s_equal (json_string_value (json_object_get (action, "status")), "unknown"));
        json_decref (document);
        orchestrator_request_destroy (&request);
    }

    /* an Error reply or the wrong body fails the stage with the reason; the reply still comes */
    request = orchestrator_request_new ("r-2", NULL, "cust-1", "s-1", "hello", NULL, deadline);
    arena = cv_arena_new ();
    cv_envelope_t *envelope = orchestrator_request_stage_envelope (request, arena);
    cv_envelope_t *reply = s_reply (envelope, CONVEYOR__V1__ENVELOPE__BODY_ERROR, &acting, &packed, &size);
    assert (orchestrator_request_accept (request, &reply, packed, size, 1, 1, &err) == -1);
    free (packed);
    assert (!orchestrator_request_result_bytes (request, 0, &size));
    assert (orchestrator_request_state (request) == REQUEST_RESPOND);
    assert (s_equal (orchestrator_request_failed_stage (request), "intent"));
    assert (strstr (orchestrator_request_error (request), "intent worker: bad"));
    assert (s_run_stage (request, &acting, &err) == 0);
    document = orchestrator_request_to_json (request, false);
    assert (s_equal (json_string_value (json_object_get (document, "status")), "stage_failed"));
    assert (strstr (json_string_value (s_field (document, "error", "message")), "intent worker: bad"));
    assert (!json_object_get (document, "checkpoints") && !json_object_get (document, "intent"));
    json_decref (document);
    cv_arena_destroy (&arena);
    orchestrator_request_destroy (&request);

    request = orchestrator_request_new ("r-3", NULL, "cust-1", NULL, "hello", NULL, deadline);
    arena = cv_arena_new ();
    envelope = orchestrator_request_stage_envelope (request, arena);
    /* a Reply where an Intent is due */
    reply = s_reply (envelope, CONVEYOR__V1__ENVELOPE__BODY_REPLY, &acting, &packed, &size);
    assert (orchestrator_request_accept (request, &reply, packed, size, 1, 1, &err) == -1);
    free (packed);
    assert (err.code == CV_ERR_WRONG_BODY && s_equal (orchestrator_request_failed_stage (request), "intent"));
    cv_arena_destroy (&arena);
    orchestrator_request_destroy (&request);
    if (verbose)
        printf ("orchestrator_request: ok\n");
}
