/* The orchestrator's metrics (orchestrator_metrics.h). */
#include "orchestrator_metrics.h"

#include <pthread.h>
#include <stdio.h>

#include "cv_context.h"

static orchestrator_metrics_t s_metrics;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_make (void)
{
    cv_metrics_t *registry = cv_metrics_process ();
    s_metrics.requests =
        cv_metrics_counter (registry, "conveyor_requests_total",
                            "Requests ended, by intent, how the intent was found, and status.", "intent,method,status");
    s_metrics.request_seconds =
        cv_metrics_histogram (registry, "conveyor_request_duration_seconds", "Ended requests' time, by status.",
                              "status", cv_metrics_latency_buckets, cv_metrics_latency_bucket_count);
    s_metrics.stage_seconds =
        cv_metrics_histogram (registry, "conveyor_stage_duration_seconds", "Each stage's time in ended requests.",
                              "stage", cv_metrics_latency_buckets, cv_metrics_latency_bucket_count);
    s_metrics.dispatches =
        cv_metrics_counter (registry, "conveyor_dispatches_total", "Stage attempts sent to a worker.", "service");
    s_metrics.retries = cv_metrics_counter (registry, "conveyor_retries_total",
                                            "Stage attempts that failed and are sent again.", "service");
    s_metrics.workers_lost = cv_metrics_counter (registry, "conveyor_workers_lost_total",
                                                 "Workers dropped for missed heartbeats.", "service");
    s_metrics.workers = cv_metrics_gauge (registry, "conveyor_workers", "Workers connected.", "service");
    s_metrics.queue_depth =
        cv_metrics_gauge (registry, "conveyor_queue_depth", "Stages waiting for a worker.", "service");
    s_metrics.in_flight = cv_metrics_gauge (registry, "conveyor_requests_in_flight", "Requests being run.", NULL);
    s_metrics.api_errors =
        cv_metrics_counter (registry, "conveyor_api_errors_total",
                            "API answers of 400 and over, by HTTP status and error code.", "status,code");
    (void) cv_metrics_messages_rejected (registry); /* the broker's and the stages' refusals */
    static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    s_metrics.store_batch = cv_metrics_histogram (registry, "conveyor_store_batch_size",
                                                  "Operations (checkpoints, request rows, look-ups) per committed "
                                                  "store transaction.",
                                                  NULL, batch_bounds, sizeof batch_bounds / sizeof *batch_bounds);
    s_metrics.store_commit_seconds = cv_metrics_histogram (
        registry, "conveyor_store_commit_duration_seconds", "Store transactions' time from being sent to their commit.",
        NULL, cv_metrics_latency_buckets, cv_metrics_latency_bucket_count);
    s_metrics.approvals_pending =
        cv_metrics_gauge (registry, "conveyor_approvals_pending", "Requests waiting for a person's decision.", NULL);
    s_metrics.approvals_oldest_seconds =
        cv_metrics_gauge (registry, "conveyor_approvals_oldest_age_seconds",
                          "How long the oldest request waiting for a person has waited (0 when none waits).", NULL);
}

const orchestrator_metrics_t *
orchestrator_metrics (void)
{
    pthread_once (&s_once, s_make);
    return &s_metrics;
}

void
orchestrator_metrics_request_ended (const orchestrator_request_t *request, double total_seconds)
{
    const orchestrator_metrics_t *metrics = orchestrator_metrics ();
    const cv_envelope_t *found = orchestrator_request_result (request, REQUEST_INTENT);
    const char *intent = found && found->intent->name && *found->intent->name ? found->intent->name : "none";
    const char *method = found ? cv_context_method_name (found->intent->method) : "none";
    const char *status = orchestrator_request_status (request);
    cv_metric_add (cv_metric_with (metrics->requests, intent, method, status), 1);
    cv_metric_observe (cv_metric_with (metrics->request_seconds, status), total_seconds);
    for (int stage = 0; stage < REQUEST_STAGES; stage++)
        if (orchestrator_request_result (request, stage))
            cv_metric_observe (
                cv_metric_with (metrics->stage_seconds, orchestrator_request_stage_name ((orchestrator_state_t) stage)),
                (double) orchestrator_request_stage_us (request, stage) / 1e6);
}

void
orchestrator_metrics_api_error (unsigned status, const char *code)
{
    char text[16];
    snprintf (text, sizeof text, "%u", status);
    cv_metric_add (cv_metric_with (orchestrator_metrics ()->api_errors, text, code && *code ? code : "none"), 1);
}
