/* A request's trace as a document: its spans (common/cv_trace.h), made from what the request
   holds, in memory or read back from the store, for GET /v1/requests/{id}/trace, `conveyor
   trace` and the OTLP export.

     {"request_id", "trace_id", "status",
      "spans": [{"span_id", "parent_span_id" (null for a request that arrived without a
                 traceparent), "name", "kind", "start_unix_us", "duration_us", "status", "error",
                 "attempts" (a stage's)}, ...],
      "untimed_stages": [...]}

   The spans come in order: the request's own (kind "request": from its arrival to its end, or to
   now while it runs), then each stage that has a result (kind "stage": from when it was first
   sent to when its result was accepted, retries included), each followed by its worker's spans
   (kind "tool", "llm", or "work" for others), children of the stage. A stage whose start is not
   known (a follow-up's first three, copied from its parent, whose own trace shows them; a
   checkpoint from before migration 0013) is named in untimed_stages instead. */
#ifndef ORCHESTRATOR_TRACE_H
#define ORCHESTRATOR_TRACE_H

#include <stdbool.h>

#include <jansson.h>

#include "orchestrator_request.h"

/* The document, a new reference. now_unix_us is the wall clock now (a running request's span
   ends there). */
json_t *orchestrator_trace_document (const orchestrator_request_t *request, uint64_t now_unix_us);

void orchestrator_trace_test (bool verbose);

#endif
