/* The wire: packs, unpacks and validates conveyor.v1.Envelope, the one message every socket carries.

   Receivers call cv_envelope_unpack, then cv_envelope_validate with the bodies they take; both
   fail with an error naming the field and the rule, ready to become an Error reply. This is the
   only module that calls protobuf-c's pack and unpack. */
#ifndef CV_ENVELOPE_H
#define CV_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor/v1/conveyor.pb-c.h"
#include "cv_arena.h"
#include "cv_envelope_ids.h"
#include "cv_error.h"

#define CV_SCHEMA_VERSION 1
#define CV_ENVELOPE_MAX_BYTES (1024 * 1024)
#define CV_TEXT_MAX_BYTES 2000          /* a customer's message */
#define CV_REPLY_MAX_BYTES 8000         /* a rendered reply */
#define CV_NAME_MAX_BYTES 64            /* ids, intent, tool, outcome and action names */
#define CV_NAME_CHARS "[A-Za-z0-9_.:-]" /* what such names are made of, for messages */
#define CV_DETAIL_MAX_BYTES 1024        /* error messages and probe details */
#define CV_MAX_CANDIDATES 16
#define CV_MAX_TOOL_RESULTS 32
#define CV_MAX_ACTIONS 16          /* a decision's, an ExecuteRequest's (ids unique), an ActionResults' */
#define CV_REPLY_STEPS_MAX 10      /* the rungs of a reply's ladder it records */
#define CV_INPUT_FLAGS_MAX 8       /* the kinds of injection phrasing a reply notes */
#define CV_STEP_NAME_MAX_BYTES 128 /* a reply step's name: a model's or a template's */
#define CV_CONTEXT_TURNS_MAX 16    /* the earlier turns of a conversation a request carries */
#define CV_CONTEXT_MAX_BYTES 16000 /* ...their contents' bytes, each turn's at most CV_REPLY_MAX_BYTES */

#define CV_SPANS_MAX 64 /* a reply's spans */

#define CV_DECISION_LOG_MAX_BYTES (64 * 1024) /* a Decision's log, packed */

typedef Conveyor__V1__Envelope cv_envelope_t;
typedef Conveyor__V1__Envelope__BodyCase cv_body_t;

/* A set of body cases, for cv_envelope_validate. */
#define CV_BODY(body_case) (1u << ((body_case) -CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST))

/* Unpacks size bytes into a new envelope the caller destroys, or NULL (MALFORMED) when the bytes
   are not an Envelope or exceed CV_ENVELOPE_MAX_BYTES. */
cv_envelope_t *cv_envelope_unpack (const uint8_t *data, size_t size, cv_error_t *err) CV_MUST_CHECK;
void cv_envelope_destroy (cv_envelope_t **self_p);

/* The wire's rule for ids and names (service, instance, request, intent, tool, policy, outcome,
   action and template names): 1..CV_NAME_MAX_BYTES characters of CV_NAME_CHARS. name need not
   end in a NUL; NULL is not a name. */
bool cv_name_valid_bytes (const char *name, size_t size);
/* The same rule for a NUL-terminated string. */
bool cv_name_valid (const char *name);

/* Checks the header and body semantically: the body is one of accepted (a CV_BODY mask), ids well
   formed, schema version known, deadline not before now_ms (for request bodies), texts within
   limits and valid UTF-8, enums in range, repeated fields and msgpack within limits. */
int cv_envelope_validate (const cv_envelope_t *self, uint32_t accepted, uint64_t now_ms, cv_error_t *err) CV_MUST_CHECK;

/* Packs into a malloc'd buffer the caller frees; *size gets its length. */
uint8_t *cv_envelope_pack (const cv_envelope_t *self, size_t *size);

/* A new envelope in arena, answering request: same message, request and trace ids, deadline and
   attempt, a new span id. request may be NULL (an unreadable request): ids are left empty. */
cv_envelope_t *cv_envelope_reply_new (cv_arena_t *arena, const cv_envelope_t *request);

/* A new envelope in arena with a fresh message and span id. */
cv_envelope_t *cv_envelope_new (cv_arena_t *arena, const char *request_id, const char *trace_id, uint64_t deadline_ms,
                                uint32_t attempt);

/*  Typed bodies: each sets self's body to a new, empty message of its kind in arena and returns
    it for the caller to fill. What the caller points it at must outlive the packing (arena memory
    does). Setting a body replaces the one before. */
Conveyor__V1__IntentRequest *cv_envelope_set_intent_request (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__Intent *cv_envelope_set_intent (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__GatherRequest *cv_envelope_set_gather_request (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__Evidence *cv_envelope_set_evidence (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__DecideRequest *cv_envelope_set_decide_request (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__Decision *cv_envelope_set_decision (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__RespondRequest *cv_envelope_set_respond_request (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__Reply *cv_envelope_set_reply (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__Probe *cv_envelope_set_probe (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__ProbeResult *cv_envelope_set_probe_result (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__ExecuteRequest *cv_envelope_set_execute_request (cv_envelope_t *self, cv_arena_t *arena);
Conveyor__V1__ActionResults *cv_envelope_set_action_results (cv_envelope_t *self, cv_arena_t *arena);

/*  Parts of bodies: a new, empty message in arena, for a stage result that travels inside a
    later request (an Intent in a GatherRequest) or for the repeated fields. */
Conveyor__V1__Intent *cv_envelope_intent_new (cv_arena_t *arena);
Conveyor__V1__Candidate *cv_envelope_candidate_new (cv_arena_t *arena);
Conveyor__V1__Spend *cv_envelope_spend_new (cv_arena_t *arena);
Conveyor__V1__Evidence *cv_envelope_evidence_new (cv_arena_t *arena);
Conveyor__V1__ToolResult *cv_envelope_tool_result_new (cv_arena_t *arena);
Conveyor__V1__Decision *cv_envelope_decision_new (cv_arena_t *arena);
Conveyor__V1__Action *cv_envelope_action_new (cv_arena_t *arena);
Conveyor__V1__ActionResult *cv_envelope_action_result_new (cv_arena_t *arena);
Conveyor__V1__ReplyStep *cv_envelope_reply_step_new (cv_arena_t *arena);
Conveyor__V1__Turn *cv_envelope_turn_new (cv_arena_t *arena);

/* Whether reply's ladder ended in the hand-off to a person: the request is escalated. */
bool cv_envelope_reply_escalated (const Conveyor__V1__Reply *reply);

/* Sets self's body to an Error built from err, in arena. */
void cv_envelope_set_error (cv_envelope_t *self, cv_arena_t *arena, const cv_error_t *err);

/* The name of a body case, e.g. "intent_request". */
const char *cv_envelope_body_name (cv_body_t body_case);

void cv_envelope_test (bool verbose);

#endif
