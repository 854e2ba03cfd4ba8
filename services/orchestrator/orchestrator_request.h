/* One customer request's life cycle: the state machine that moves it through its stages,
   the stage requests it sends, the results it keeps, and its JSON document for the HTTP API.

   States, in order (one switch in orchestrator_request_accept moves between them):
     INTENT   waiting for the intent worker's Intent
     GATHER   waiting for the gatherer's Evidence
     DECIDE   waiting for the decision worker's Decision
     EXECUTE  waiting for the executor's ActionResults, one for each of the decision's actions;
              a decision without actions goes straight to RESPOND, and so does one with an
              action that waits for a person's approval: its execute result is then the
              orchestrator's own (every action PENDING_APPROVAL), its reply says what happens
              next, and it ends DONE with the status word "pending_approval". A follow-up request
              (orchestrator_request_set_follow_up_of) carries the decision: approved, it goes to
              EXECUTE; rejected, to RESPOND with every action REJECTED.
     RESPOND  waiting for the responder's Reply, written from the results of all the above
     DONE     the reply is checkpointed; final
     FAILED   the reply's stage failed for good (deadline, attempts, invalid result); final. A
              stage before it that fails so stops the request instead (below): a customer always
              gets a reply while a responder can write one.
   A stage result is accepted only when it is the body the current state waits for and it is
   valid; the caller checkpoints it before sending the next stage (write-ahead).

   Limits (orchestrator_request_set_limits): a cost budget, which every stage is sent with as
   what is left of it, and a number of stage attempts, retries included. A request stops, and
   goes straight to RESPOND for a reply that says it could not be finished here
   (RespondRequest.stopped), when a stage left a spend undone because it did not fit the budget
   left (or spent past it), or when its attempts are used up: a stage before the reply due with
   none left, or a stage whose workers failed until the last of them went. The reply gets one
   attempt past the limit, stopped or not (it tells what the stages did). A stage before the reply
   that fails for good — no answer before its deadline, its workers gone or giving up, an Error or
   an answer that breaks the schema — stops the request too (STAGE_FAILED, with the stage's name
   and the error): the reply says honestly that the look-up, the decision or the action could not
   be completed, and what happens next. Those stages are sent with the request's deadline less the
   reply's reserve (orchestrator_request_keep_reply_reserve), so the reply has time left. A stopped
   request ends DONE with the status word "over_budget", "out_of_attempts" or "stage_failed".

   What a request spent is the sum of its stages' results (orchestrator_request_spend), so a
   request read back from its checkpoints knows it again; its attempts are its checkpoints' and,
   for the stage that failed for good, the row's lost attempts. Not counted: the spend of an
   attempt whose answer never came, and the attempts of a stage at a worker when the request was
   parked or its orchestrator stopped. A follow-up counts its own attempts, not its parent's. */
#ifndef ORCHESTRATOR_REQUEST_H
#define ORCHESTRATOR_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_trace.h"

typedef enum {
    REQUEST_INTENT,
    REQUEST_GATHER,
    REQUEST_DECIDE,
    REQUEST_EXECUTE,
    REQUEST_RESPOND,
    REQUEST_DONE,
    REQUEST_FAILED
} orchestrator_state_t;

#define REQUEST_STAGES 5

typedef enum { REQUEST_APPROVAL_NONE, REQUEST_APPROVAL_APPROVED, REQUEST_APPROVAL_REJECTED } orchestrator_approval_t;

/* The approver recorded when a pending approval expires. */
#define ORCHESTRATOR_APPROVAL_EXPIRED "expired"

typedef struct _orchestrator_request_t orchestrator_request_t;

/* The bytes of a request id orchestrator_request_new_id writes, its NUL included. */
#define REQUEST_ID_BYTES 24
/* A new random request id, "r-" and 21 hex digits, into id. */
void orchestrator_request_new_id (char id[REQUEST_ID_BYTES]);

/* A new request in state INTENT. id and trace_id may be NULL to generate them. */
orchestrator_request_t *orchestrator_request_new (const char *id, const char *trace_id, const char *user_id,
                                                  const char *session_id, const char *text, const char *idempotency_key,
                                                  uint64_t deadline_ms);
void orchestrator_request_destroy (orchestrator_request_t **self_p);

const char *orchestrator_request_id (const orchestrator_request_t *self);
const char *orchestrator_request_trace_id (const orchestrator_request_t *self);
const char *orchestrator_request_user_id (const orchestrator_request_t *self);
const char *orchestrator_request_session_id (const orchestrator_request_t *self);
const char *orchestrator_request_text (const orchestrator_request_t *self);
const char *orchestrator_request_idempotency_key (const orchestrator_request_t *self);
/* The session's context: the conversation before the text, an array of {"role": "user" or
   "assistant", "content"} objects as orchestrator_api_context makes them (held: a reference is
   taken), set before the first stage or replay; the responder gets it. NULL: none, the default. */
void orchestrator_request_set_context (orchestrator_request_t *self, json_t *context);
const json_t *orchestrator_request_context (const orchestrator_request_t *self);
uint64_t orchestrator_request_deadline (const orchestrator_request_t *self);
void orchestrator_request_set_deadline (orchestrator_request_t *self, uint64_t deadline_ms);
orchestrator_state_t orchestrator_request_state (const orchestrator_request_t *self);
bool orchestrator_request_finished (const orchestrator_request_t *self);

/* The stage a state waits for: "intent", "gather", "decide", "execute", "respond"; NULL for
   DONE/FAILED. */
const char *orchestrator_request_stage_name (orchestrator_state_t state);
/* The worker service a state's stage goes to: "intent", "gatherer", "decision", "executor",
   "responder"; NULL for DONE/FAILED. */
const char *orchestrator_request_service (orchestrator_state_t state);
/* The status word of the API: "running", "failed", or for a finished request, in this order of
   precedence: why it stopped ("over_budget", "out_of_attempts", "stage_failed"), then
   "pending_approval", then "escalated" (its reply was the hand-off), else "done". */
const char *orchestrator_request_status (const orchestrator_request_t *self);

/* A request's limits (see above). */
typedef struct {
    bool budgeted;          /* false: no cost budget */
    uint64_t budget_micros; /* when budgeted */
    uint32_t max_attempts;  /* stage attempts in all; 0: no limit */
} orchestrator_limits_t;

/* Sets the limits, before the first stage (or replay). */
void orchestrator_request_set_limits (orchestrator_request_t *self, const orchestrator_limits_t *limits);
const orchestrator_limits_t *orchestrator_request_limits (const orchestrator_request_t *self);

/* What the request's stages spent, from their results. */
typedef struct {
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t llm_micros;
    uint64_t tool_micros;
    uint64_t micros; /* both */
} orchestrator_spend_t;
void orchestrator_request_spend (const orchestrator_request_t *self, orchestrator_spend_t *spend);

/* Stage attempts used so far: those of the results kept and of the stages that failed. */
uint32_t orchestrator_request_attempts_used (const orchestrator_request_t *self);
/* The attempts the current stage may take (the broker's max_attempts for its job): what is left
   of the limit, one for the reply past it, 0 without a limit. */
uint32_t orchestrator_request_attempts_allowed (const orchestrator_request_t *self);
/* The attempts the result of stage took (0: not reached, or the orchestrator's own). */
uint32_t orchestrator_request_stage_attempts (const orchestrator_request_t *self, int stage);

/* Why the request stopped, or STOP_UNSPECIFIED. */
Conveyor__V1__RespondRequest__Stop orchestrator_request_stopped (const orchestrator_request_t *self);

/* The current stage's job failed for good after attempts attempts (err from the broker). Before
   RESPOND the request stops and 0 is returned: its reply is next — OUT_OF_ATTEMPTS when that used
   up the request's attempts (err UNAVAILABLE: its workers failed until the last) before EXECUTE,
   STAGE_FAILED otherwise (always for EXECUTE, whose actions may or may not have been performed). For RESPOND it is
   FAILED with err's message and -1 is returned. */
int orchestrator_request_stage_failed (orchestrator_request_t *self, uint32_t attempts, const cv_error_t *err);
/* The attempts of the stage that failed for good (orchestrator_request_stage_failed), which left
   no checkpoint: the request's last write records them, and a request read back notes them. */
uint32_t orchestrator_request_lost_attempts (const orchestrator_request_t *self);
void orchestrator_request_note_lost_attempts (orchestrator_request_t *self, uint32_t attempts);
/* For a request read back whose next checkpoint is its reply though a stage before it left none:
   stops it for its attempts, as orchestrator_request_stage_failed did, and returns 0 when they
   are used up (the lost ones noted); else -1, and nothing changes. */
int orchestrator_request_stop_for_attempts (orchestrator_request_t *self);

/* The stage that failed for good, for a request stopped for it (STAGE_FAILED): "intent",
   "gather", "decide" or "execute"; NULL for any other. orchestrator_request_error tells how. */
const char *orchestrator_request_failed_stage (const orchestrator_request_t *self);
/* For a request read back whose reply follows a stage that left no checkpoint, and whose row says
   it stopped because that stage failed (message, the row's error): stops it so again, as
   orchestrator_request_stage_failed did, and returns 0; -1 when it is past its stages or already
   stopped, and nothing changes. */
int orchestrator_request_stop_for_stage_failure (orchestrator_request_t *self, const char *message);

/* Keeps time from the deadline for the reply (none by default): the stages before it are sent
   with the deadline less the reserve, so that when one fails at its deadline, there is still time
   to answer that it did. The reserve is configured_ms, or half the time left at now_ms when that
   is less (none once the deadline is past), so that the stages keep the other half. Call it again
   whenever the deadline is set anew (a resumed request). Returns the reserve kept. */
uint32_t orchestrator_request_keep_reply_reserve (orchestrator_request_t *self, uint32_t configured_ms,
                                                  uint64_t now_ms);

/* The envelope for the current stage, in arena; NULL when finished. */
cv_envelope_t *orchestrator_request_stage_envelope (orchestrator_request_t *self, cv_arena_t *arena);

/* Takes reply (a worker's answer to the current stage, unpacked from the size bytes at packed,
   which are copied: the checkpoint stores them as they came), its stage time and the attempts it
   took, validates it and moves to the next state (or stops the request, see above). Returns 0,
   or -1 with err when reply is an Error or not the awaited body, and reply is destroyed: then a
   stage before the reply has failed, and the request stops for it (STAGE_FAILED: its reply is
   next), or the reply itself has, and the request is FAILED. */
int orchestrator_request_accept (orchestrator_request_t *self, cv_envelope_t **reply_p, const uint8_t *packed,
                                 size_t size, int64_t elapsed_us, uint32_t attempts, cv_error_t *err);

/* Makes self the follow-up of request parent_id, whose actions approver approved or rejected:
   call it before its stages are accepted (or replayed). */
void orchestrator_request_set_follow_up_of (orchestrator_request_t *self, const char *parent_id,
                                            orchestrator_approval_t approval, const char *approver);
const char *orchestrator_request_parent_id (const orchestrator_request_t *self); /* NULL: none */
orchestrator_approval_t orchestrator_request_approval (const orchestrator_request_t *self);
const char *orchestrator_request_approver (const orchestrator_request_t *self); /* NULL: none */
/* True while the request is done with its actions waiting for a person. */
bool orchestrator_request_awaiting_approval (const orchestrator_request_t *self);
/* Notes that approver decided (approval) at `at` (ISO 8601) and the follow-up's id, for the
   document: its actions say approved or rejected, by whom and when; the request no longer
   awaits. */
void orchestrator_request_note_follow_up (orchestrator_request_t *self, const char *follow_up_id,
                                          orchestrator_approval_t approval, const char *approver, const char *at);

/* Ends the request as FAILED with message. A request stopped because a stage failed (its reply
   failing now) is no longer stopped, and its error holds both causes: message, then the stage's. */
void orchestrator_request_fail (orchestrator_request_t *self, const char *message);
const char *orchestrator_request_error (const orchestrator_request_t *self);

/* The result of stage (0..REQUEST_STAGES-1), borrowed, or NULL (not reached, or skipped). */
const cv_envelope_t *orchestrator_request_result (const orchestrator_request_t *self, int stage);
/* The bytes the result of stage came in (size in *size), borrowed, or NULL. */
const uint8_t *orchestrator_request_result_bytes (const orchestrator_request_t *self, int stage, size_t *size);
int64_t orchestrator_request_stage_us (const orchestrator_request_t *self, int stage);
/* How many stage results the request holds (a skipped stage has none), and the stage of the
   index-th of them, in the order they came (0 <= index < the count). */
int orchestrator_request_result_count (const orchestrator_request_t *self);
int orchestrator_request_result_stage (const orchestrator_request_t *self, int index);

/* How many checkpoints were noted: those committed, for a request read back from the store. */
int orchestrator_request_checkpoint_count (const orchestrator_request_t *self);
/* Adds a checkpoint's record for the document (stage 0..REQUEST_STAGES-1, created at `at`,
   ISO 8601). */
void orchestrator_request_note_checkpoint (orchestrator_request_t *self, int stage, const char *at);
/* Sets the total time in ms, from creation to the final state. */
void orchestrator_request_set_total_ms (orchestrator_request_t *self, double total_ms);
/* The total time in ms; NaN until the request has ended. */
double orchestrator_request_total_ms (const orchestrator_request_t *self);

/* Its trace (common/cv_trace.h): when it arrived (wall clock, µs since the epoch; set at
   orchestrator_request_new, or from the store), the span it arrived under (a traceparent's
   parent id; "" when none), and when each stage was first sent to a worker (0: not known). The
   span ids are derived from the request's id: its own ("request") and each stage's (its name),
   which is the span_id of the stage's envelopes. */
uint64_t orchestrator_request_created_unix_us (const orchestrator_request_t *self);
void orchestrator_request_set_created_unix_us (orchestrator_request_t *self, uint64_t unix_us);
const char *orchestrator_request_parent_span_id (const orchestrator_request_t *self);
void orchestrator_request_set_parent_span_id (orchestrator_request_t *self, const char *parent_span_id);
uint64_t orchestrator_request_stage_started_unix_us (const orchestrator_request_t *self, int stage);
void orchestrator_request_set_stage_started_unix_us (orchestrator_request_t *self, int stage, uint64_t unix_us);
void orchestrator_request_span_id (const orchestrator_request_t *self, char out[CV_SPAN_ID_BYTES]);
void orchestrator_request_stage_span_id (const orchestrator_request_t *self, int stage, char out[CV_SPAN_ID_BYTES]);

/* The API document: request_id, status, intent, evidence, decision (each action with what the
   executor answered: status, reason, replayed, result), reply, timings_ms, parent_id and
   approval {decision, approver} for a follow-up, follow_up_id once a person decided, and with
   with_checkpoints the checkpoints noted. A new reference. */
json_t *orchestrator_request_to_json (const orchestrator_request_t *self, bool with_checkpoints);

/* The decision record: why the request went as it did and what it cost, for the decision log (a
   JSON line in the orchestrator's log, redacted as every line is), the store (requests.record)
   and `conveyor decisions` / `conveyor costs`: the document's status, parent_id and approval,
   intent (with its slots, without candidates), decision (outcome, rule, reason, the log of the
   policies tried with the values its checks read, actions with their parameters and what became
   of them), tools (the evidence's summary), reply {template, steps, escalated}, cost ({total,
   llm, tools, prompt_tokens, completion_tokens} in cost units, and the same for each stage that
   spent: the intent's and the reply's LLM calls, the gather stage's tools; a follow-up counts
   only the stages it ran, its parent's are counted with the parent), attempts, stopped,
   failed_stage, error and timings_ms. Not in it: the customer's text and the conversation, the
   tools' rows, the reply's text. A new reference. */
json_t *orchestrator_request_record (const orchestrator_request_t *self);

void orchestrator_request_test (bool verbose);

#endif
