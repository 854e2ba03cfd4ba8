/* The export of ended requests' traces to an OpenTelemetry collector, as OTLP/HTTP with JSON
   bodies (POST to a URL such as http://collector:4318/v1/traces), from the orchestrator's loop.

   Each ended request's trace (orchestrator_trace.h) becomes its spans in OTLP's shape: the
   request's span is a SERVER span under the caller's (a traceparent's parent id), the rest
   INTERNAL, each with conveyor.request_id, conveyor.kind and conveyor.status attributes and
   status ERROR when it failed. Traces are batched: a batch goes when it holds
   ORCHESTRATOR_OTLP_BATCH requests or its first has waited flush_ms, one POST at a time, each
   within timeout_ms. Export is best effort and never slows a request: while a POST is out, new
   traces wait in the next batch, up to ORCHESTRATOR_OTLP_QUEUE_MAX requests; beyond, they are
   dropped. Each batch is counted in conveyor_trace_exports_total{outcome} (sent, failed,
   dropped: in requests), and a failure is logged when it starts and when export works again.
   Not retried: the trace stays in the store, for GET /v1/requests/{id}/trace. */
#ifndef ORCHESTRATOR_OTLP_H
#define ORCHESTRATOR_OTLP_H

#include <stdbool.h>

#include <czmq.h>
#include <jansson.h>

#include "cv_error.h"
#include "cv_log.h"
#include "orchestrator_request.h"

#define ORCHESTRATOR_OTLP_BATCH 64
#define ORCHESTRATOR_OTLP_QUEUE_MAX 4096

typedef struct _orchestrator_otlp_t orchestrator_otlp_t;

typedef struct {
    const char *url;      /* http:// or https:// */
    const char *service;  /* the resource's service.name; default "conveyor" */
    const char *instance; /* its service.instance.id; may be NULL */
    int flush_ms;         /* default 500 */
    int timeout_ms;       /* default 5000 */
} orchestrator_otlp_config_t;

/* NULL with err when the URL is not http(s) or libcurl cannot start. log is borrowed. */
orchestrator_otlp_t *orchestrator_otlp_new (zloop_t *loop, const orchestrator_otlp_config_t *config, cv_log_t *log,
                                            cv_error_t *err) CV_MUST_CHECK;
/* Drops what is queued or in flight. */
void orchestrator_otlp_destroy (orchestrator_otlp_t **self_p);

/* Queues request's trace (it has ended) for the next batch. */
void orchestrator_otlp_export (orchestrator_otlp_t *self, const orchestrator_request_t *request);

/* The OTLP resourceSpans entry's spans for a trace document (orchestrator_trace_document): a
   new array. */
json_t *orchestrator_otlp_spans (const json_t *trace);

void orchestrator_otlp_test (bool verbose);

#endif
