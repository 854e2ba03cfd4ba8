/* The orchestrator's metrics, in the process's registry (cv_metrics), shown by its GET /metrics
   on the API port: what its requests, their stages and its broker did.

     conveyor_requests_total{intent, method, status}     requests ended: the intent's name ("none"
                                                         before one), how it was found (rule,
                                                         model, llm, fallback; "none"), the status
                                                         word of the API (done, failed, escalated...)
     conveyor_request_duration_seconds{status}           their whole time, histogram
     conveyor_stage_duration_seconds{stage}              each stage's time in ended requests,
                                                         histogram (a stage skipped is not observed)
     conveyor_dispatches_total{service}                  stage attempts sent to a worker
     conveyor_retries_total{service}                     attempts that failed and go again
     conveyor_workers_lost_total{service}                workers dropped for missed heartbeats
     conveyor_workers{service}                           workers connected, at the scrape
     conveyor_queue_depth{service}                       stages waiting for a worker, at the scrape
     conveyor_requests_in_flight                         requests being run, at the scrape
     conveyor_api_errors_total{status, code}             API answers of 400 and over, by HTTP status
                                                         and the error's code (invalid_json,
                                                         store_unavailable...; "none" without one)
     conveyor_store_batch_size                           operations (checkpoints, request rows,
                                                         look-ups) per committed store
                                                         transaction, histogram
     conveyor_store_commit_duration_seconds              a store transaction's time from being
                                                         sent to its commit, histogram
     conveyor_approvals_pending                          requests waiting for a person, and how
     conveyor_approvals_oldest_age_seconds               long the oldest has waited: read from
                                                         PostgreSQL with each expiry round (every
                                                         orchestrator shows the same figures)

   The labels come from bounded sets: the agent's intents, the worker services, the statuses. */
#ifndef ORCHESTRATOR_METRICS_H
#define ORCHESTRATOR_METRICS_H

#include "cv_metrics.h"
#include "orchestrator_request.h"

typedef struct {
    cv_metric_family_t *requests;
    cv_metric_family_t *request_seconds;
    cv_metric_family_t *stage_seconds;
    cv_metric_family_t *dispatches;
    cv_metric_family_t *retries;
    cv_metric_family_t *workers_lost;
    cv_metric_family_t *workers;
    cv_metric_family_t *queue_depth;
    cv_metric_family_t *in_flight;
    cv_metric_family_t *api_errors;
    cv_metric_family_t *store_batch;
    cv_metric_family_t *store_commit_seconds;
    cv_metric_family_t *approvals_pending;
    cv_metric_family_t *approvals_oldest_seconds;
} orchestrator_metrics_t;

/* The families, made in the process's registry on first use. */
const orchestrator_metrics_t *orchestrator_metrics (void);

/* An ended request counted: its intent, method and status, its time and its stages' times. */
void orchestrator_metrics_request_ended (const orchestrator_request_t *request, double total_seconds);

/* An API answer of 400 or over counted: its status and its error's code (NULL: none). */
void orchestrator_metrics_api_error (unsigned status, const char *code);

#endif
