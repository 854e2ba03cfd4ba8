/* A request's trace: the spans of its work, and the W3C trace context it may arrive with.

   A request has one trace id (32 hex digits, the envelopes' trace_id) and a span for each piece
   of its work:

     request                      the orchestrator's: from its arrival to its end
       intent, gather, ...        the orchestrator's: each stage, from its first dispatch to its
                                  result accepted (retries included)
         tool fx_rate, llm m      the workers': each tool call, each LLM call, of the stage

   The orchestrator sends every attempt of a stage with the stage's span id as the envelope's
   span_id; a worker adds its spans to its reply (cv_trace_add), each naming that span id as its
   parent, and they are kept with the stage's checkpoint. The orchestrator's own spans are made
   from what it stores (services/orchestrator/orchestrator_trace.h).

   Span starts are wall-clock microseconds since the Unix epoch, as a trace viewer wants; durations
   are measured on the monotonic clock (zclock_usecs), which a clock step does not disturb. */
#ifndef CV_TRACE_H
#define CV_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_arena.h"
#include "cv_envelope.h"

#define CV_TRACE_ID_BYTES 33 /* 32 hex digits and a NUL */
#define CV_SPAN_ID_BYTES 17  /* 16 hex digits and a NUL */
#define CV_TRACEPARENT_BYTES 56

/* Adds a span to reply, a child of parent_span_id (the request's span_id), for work that ran from
   started_us to finished_us (zclock_usecs), with its outcome's word (status) and whether it failed.
   name is cut to CV_STEP_NAME_MAX_BYTES. Returns it, or NULL when reply already holds CV_SPANS_MAX
   spans (the work is still done; only its span is left out) or parent_span_id is empty. */
Conveyor__V1__Span *cv_trace_add (cv_envelope_t *reply, cv_arena_t *arena, const char *parent_span_id, const char *name,
                                  int64_t started_us, int64_t finished_us, const char *status, bool error);

/* The span of an LLM call, "llm MODEL", with its outcome's word; failed when status is "failed". */
Conveyor__V1__Span *cv_trace_add_llm (cv_envelope_t *reply, cv_arena_t *arena, const char *parent_span_id,
                                      const char *model, int64_t started_us, int64_t finished_us, const char *status);

/* A span id derived from a request's id and a part of its work ("request", a stage's name): the
   same names give the same id, so the orchestrator's spans need no id stored. FNV-1a, never all
   zeros. */
void cv_trace_span_id_of (const char *request_id, const char *part, char out[CV_SPAN_ID_BYTES]);

/* Whether the process makes spans at all (default on): off, cv_trace_add adds none (a service's
   --telemetry false). */
void cv_trace_set_recording (bool on);
bool cv_trace_recording (void);

/* The wall-clock time, in microseconds since the Unix epoch, of the monotonic instant mono_us
   (zclock_usecs), as of now. */
uint64_t cv_trace_wall_us (int64_t mono_us);

/* A W3C traceparent header: "00-" 32 hex digits (the trace id) "-" 16 (the parent span's id) "-"
   2 (flags). 0 with the ids when header is one (version 00, or a later version's first four
   fields, as the recommendation says), -1 when it is not one (malformed, ids all zeros, version
   ff): the caller then starts a trace of its own. */
int cv_trace_parent_parse (const char *header, char trace_id[CV_TRACE_ID_BYTES], char parent_id[CV_SPAN_ID_BYTES]);

/* Writes "00-<trace_id>-<span_id>-01" into out. */
void cv_trace_parent_format (const char *trace_id, const char *span_id, char out[CV_TRACEPARENT_BYTES]);

void cv_trace_test (bool verbose);

#endif
