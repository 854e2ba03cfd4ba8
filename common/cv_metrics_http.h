/* A worker's /metrics: a small HTTP server of its own (libmicrohttpd, one thread) that answers
   GET /metrics with the process's registry (cv_metrics_process) in Prometheus' text format,
   after the process's own series, under the names Prometheus' client libraries give them:
   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
   process_open_fds, process_max_fds, process_start_time_seconds. Anything else is 404; a method
   other than GET or HEAD is 405. The orchestrator serves its /metrics on its API port instead
   (cv_metrics_http_write there too). */
#ifndef CV_METRICS_HTTP_H
#define CV_METRICS_HTTP_H

#include <stdbool.h>
#include <stdio.h>

#include "cv_error.h"
#include "cv_log.h"
#include "cv_metrics.h"

/* The Content-Type of the text format. */
#define CV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct _cv_metrics_http_t cv_metrics_http_t;

/* Listens on listen ("HOST:PORT"; port 0 picks a free one) and serves metrics (borrowed: it
   outlives the server), or NULL with err (INVALID for a malformed listen, UNAVAILABLE when the
   address cannot be bound). log (borrowed, may be NULL) gets where it listens, at info. */
cv_metrics_http_t *cv_metrics_http_new (const char *listen, cv_metrics_t *metrics, cv_log_t *log,
                                        cv_error_t *err) CV_MUST_CHECK;
void cv_metrics_http_destroy (cv_metrics_http_t **self_p);

/* The port it listens on. */
int cv_metrics_http_port (const cv_metrics_http_t *self);

/* Writes the process's series, then metrics's, as GET /metrics answers. */
void cv_metrics_http_write (cv_metrics_t *metrics, FILE *out);

void cv_metrics_http_test (bool verbose);

#endif
