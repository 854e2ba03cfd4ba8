/* The HTTP API's routes. */
#include "orchestrator_routes.h"

#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_metrics_http.h"
#include "cv_probe.h"
#include "orchestrator_api.h"
#include "orchestrator_chat.h"
#include "orchestrator_metrics.h"
#include "orchestrator_trace.h"

/* Starts a request for submission, or answers why not now. */
static void
s_submit (orchestrator_routes_t *self, orchestrator_exchange_t *exchange, const orchestrator_submission_t *submission)
{
    size_t in_flight = orchestrator_flights_size (self->flights);
    size_t queued = orchestrator_broker_queued (self->broker, "intent");
    if (in_flight >= self->max_in_flight || queued >= self->max_queued) {
        char message[128];
        snprintf (message, sizeof message, "%zu requests in flight, %zu waiting for an intent worker; retry shortly",
                  in_flight, queued);
        orchestrator_http_answer_unavailable (exchange, "overloaded", "%s", message);
        return;
    }
    if (!orchestrator_store_available (self->store)) {
        char message[CV_DETAIL_MAX_BYTES + 96];
        snprintf (message, sizeof message, "the request store is unavailable (%s); nothing was recorded, retry",
                  orchestrator_store_last_error (self->store));
        orchestrator_http_answer_unavailable (exchange, "store_unavailable", "%s", message);
        return;
    }
    /* a W3C traceparent puts the request in the caller's trace, under the caller's span */
    char trace_id[CV_TRACE_ID_BYTES], parent_span_id[CV_SPAN_ID_BYTES];
    bool traced =
        cv_trace_parent_parse (orchestrator_http_header (exchange, "traceparent"), trace_id, parent_span_id) == 0;
    orchestrator_request_t *request = orchestrator_request_new (
        NULL, traced ? trace_id : NULL, submission->user_id, submission->session_id, submission->text,
        submission->idempotency_key, (uint64_t) zclock_time () + (uint64_t) self->request_timeout_ms);
    if (traced)
        orchestrator_request_set_parent_span_id (request, parent_span_id);
    /* a submission may lower the configured budget, never raise it */
    orchestrator_limits_t limits = self->limits;
    if (submission->has_budget && (!limits.budgeted || submission->budget_micros < limits.budget_micros)) {
        limits.budgeted = true;
        limits.budget_micros = submission->budget_micros;
    }
    orchestrator_request_set_limits (request, &limits);
    orchestrator_request_set_context (request, submission->context);
    orchestrator_flights_start (self->flights, &request, exchange);
}

static void
s_post_request (orchestrator_routes_t *self, orchestrator_exchange_t *exchange, json_t *body)
{
    orchestrator_submission_t submission;
    cv_error_t err;
    if (!body) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_json", "a JSON body is required");
        return;
    }
    if (orchestrator_api_parse_submission (body, &submission, &err)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_field", "%s", err.message);
        return;
    }
    s_submit (self, exchange, &submission);
    json_decref (submission.context);
}

/* POST /v1/chat/completions: a request whose answers, errors included, take OpenAI's shapes. */
static void
s_post_chat (orchestrator_routes_t *self, orchestrator_exchange_t *exchange, json_t *body)
{
    orchestrator_submission_t submission;
    cv_error_t err;
    const char *user = self->chat.user_header ? orchestrator_http_header (exchange, self->chat.user_header) : NULL;
    if (!body) {
        orchestrator_http_answer (
            exchange, MHD_HTTP_BAD_REQUEST,
            orchestrator_chat_error (MHD_HTTP_BAD_REQUEST, "a JSON body is required", NULL, "invalid_json"));
        return;
    }
    bool stream;
    if (orchestrator_chat_parse (&self->chat, body, user, &submission, &stream, &err)) {
        bool unknown_model = streq (err.field, "model") && json_is_string (json_object_get (body, "model"));
        unsigned status = unknown_model ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST;
        orchestrator_http_answer (exchange, status,
                                  orchestrator_chat_error (status, err.message, err.field,
                                                           unknown_model ? "model_not_found" : "invalid_value"));
        return;
    }
    orchestrator_http_set_shape (exchange, stream ? orchestrator_chat_answer_stream : orchestrator_chat_answer,
                                 &self->chat);
    s_submit (self, exchange, &submission);
    json_decref (submission.context);
}

static void
s_request_loaded (void *owner, orchestrator_store_answer_t *answer)
{
    orchestrator_exchange_t *exchange = owner;
    if (answer->request)
        orchestrator_http_answer (exchange, MHD_HTTP_OK, orchestrator_request_to_json (answer->request, true));
    else if (answer->err->code == CV_ERR_INVALID)
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "%s", answer->err->message);
    else
        orchestrator_http_answer_unavailable (exchange, "store_unavailable", "%s", answer->err->message);
}

static void
s_trace_loaded (void *owner, orchestrator_store_answer_t *answer)
{
    orchestrator_exchange_t *exchange = owner;
    if (answer->request)
        orchestrator_http_answer (exchange, MHD_HTTP_OK,
                                  orchestrator_trace_document (answer->request, cv_trace_wall_us (zclock_usecs ())));
    else
        s_request_loaded (owner, answer);
}

/* GET /v1/requests/{id}, and /v1/requests/{id}/trace: its spans (orchestrator_trace.h). */
static void
s_get_request (orchestrator_routes_t *self, orchestrator_exchange_t *exchange, const char *path)
{
    char id[CV_NAME_MAX_BYTES + 1];
    const char *slash = strchr (path, '/');
    bool trace = slash && streq (slash, "/trace");
    size_t length = slash ? (size_t) (slash - path) : strlen (path);
    if ((slash && !trace) || length > CV_NAME_MAX_BYTES) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no route /v1/requests/%s", path);
        return;
    }
    memcpy (id, path, length);
    id[length] = '\0';
    if (!cv_name_valid (id)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no request %s", id);
        return;
    }
    cv_error_t err;
    if (orchestrator_store_load (self->store, id, trace ? s_trace_loaded : s_request_loaded, exchange, &err))
        orchestrator_http_answer_unavailable (exchange, "store_unavailable", "%s", err.message);
}

/* GET /metrics: the process's series and the orchestrator's, its gauges read now (on the loop's
   thread, which owns what they count). */
static void
s_metrics (orchestrator_routes_t *self, orchestrator_exchange_t *exchange)
{
    const orchestrator_metrics_t *metrics = orchestrator_metrics ();
    for (const char *const *service = cv_worker_services; *service; service++) {
        cv_metric_set (cv_metric_with (metrics->workers, *service),
                       (double) orchestrator_broker_workers (self->broker, *service));
        cv_metric_set (cv_metric_with (metrics->queue_depth, *service),
                       (double) orchestrator_broker_queued (self->broker, *service));
    }
    cv_metric_set (cv_metric_with (metrics->in_flight), (double) orchestrator_flights_size (self->flights));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cv_metrics_http_write (cv_metrics_process (), out);
    fclose (out);
    orchestrator_http_answer_text (exchange, MHD_HTTP_OK, CV_METRICS_CONTENT_TYPE, text);
}

/* A readiness check waiting for the store's answer, with the workers counted when it was asked. */
typedef struct {
    orchestrator_exchange_t *exchange;
    json_t *checks;
    bool ready;
} readiness_t;

static void
s_readiness_answer (readiness_t *readiness, const cv_error_t *err)
{
    json_object_set_new (readiness->checks, "postgresql", json_string (err ? err->message : "ok"));
    bool ready = readiness->ready && !err;
    orchestrator_http_answer (
        readiness->exchange, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
        json_pack ("{s:s, s:o}", "status", ready ? "ready" : "not_ready", "checks", readiness->checks));
    free (readiness);
}

static void
s_pinged (void *owner, orchestrator_store_answer_t *answer)
{
    s_readiness_answer ((readiness_t *) owner, answer->err);
}

static void
s_readyz (orchestrator_routes_t *self, orchestrator_exchange_t *exchange)
{
    readiness_t *readiness = cv_calloc (1, sizeof *readiness);
    readiness->exchange = exchange;
    readiness->checks = json_object ();
    readiness->ready = true;
    for (const char *const *service = cv_worker_services; *service; service++) {
        size_t workers = orchestrator_broker_workers (self->broker, *service);
        readiness->ready &= workers > 0;
        json_object_set_new (readiness->checks, *service, json_integer ((json_int_t) workers));
    }
    cv_error_t err;
    if (orchestrator_store_ping (self->store, s_pinged, readiness, &err))
        s_readiness_answer (readiness, &err);
}

/* POST /v1/requests/{id}/approve or /reject (rest is "{id}/approve"); false when rest is neither. */
static bool
s_decision_route (orchestrator_routes_t *self, orchestrator_exchange_t *exchange, const char *rest, json_t *body)
{
    const char *slash = strchr (rest, '/');
    if (!slash || (!streq (slash, "/approve") && !streq (slash, "/reject")))
        return false;
    char id[CV_NAME_MAX_BYTES + 2];
    snprintf (id, sizeof id, "%.*s", (int) (slash - rest < (long) sizeof id - 1 ? slash - rest : (long) sizeof id - 1),
              rest);
    orchestrator_approvals_decide (self->approvals, exchange, id, streq (slash, "/approve"), body);
    return true;
}

void
orchestrator_routes_handle (void *arg, orchestrator_exchange_t *exchange, const char *method, const char *path,
                            json_t *body)
{
    orchestrator_routes_t *self = arg;
    bool get = streq (method, "GET"), post = streq (method, "POST");
    const char *prefix = "/v1/requests/";
    if (streq (path, "/healthz") && get)
        orchestrator_http_answer (exchange, MHD_HTTP_OK, json_pack ("{s:s}", "status", "ok"));
    else if (streq (path, "/readyz") && get)
        s_readyz (self, exchange);
    else if (streq (path, "/metrics") && (get || streq (method, "HEAD")))
        s_metrics (self, exchange);
    else if (streq (path, "/v1/requests") && post)
        s_post_request (self, exchange, body);
    else if (streq (path, "/v1/chat/completions") && post)
        s_post_chat (self, exchange, body);
    else if (streq (path, "/v1/models") && get)
        orchestrator_http_answer (exchange, MHD_HTTP_OK, orchestrator_chat_models (&self->chat));
    else if (strncmp (path, prefix, strlen (prefix)) == 0 && get)
        s_get_request (self, exchange, path + strlen (prefix));
    else if (strncmp (path, prefix, strlen (prefix)) == 0 && post
             && s_decision_route (self, exchange, path + strlen (prefix), body))
        ;
    else if (streq (path, "/v1/approvals") && get)
        orchestrator_approvals_list (self->approvals, exchange);
    else if (streq (path, "/v1/tools/test") && post)
        orchestrator_toolcheck_start (self->toolcheck, exchange, body);
    else if (streq (path, "/healthz") || streq (path, "/readyz") || streq (path, "/metrics")
             || streq (path, "/v1/requests") || streq (path, "/v1/tools/test") || streq (path, "/v1/approvals")
             || streq (path, "/v1/chat/completions") || streq (path, "/v1/models")
             || strncmp (path, prefix, strlen (prefix)) == 0)
        orchestrator_http_answer_error (exchange, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                        "%s is not allowed on %s", method, path);
    else
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no route %s", path);
}
