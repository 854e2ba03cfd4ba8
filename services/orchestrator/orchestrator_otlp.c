/* The export of ended requests' traces as OTLP/HTTP JSON (orchestrator_otlp.h). */
#include "orchestrator_otlp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_http.h"
#include "cv_metrics.h"
#include "cv_trace.h"
#include "orchestrator_trace.h"

#define MAX_ANSWER_BYTES 65536

struct _orchestrator_otlp_t {
    orchestrator_otlp_config_t config;
    char *url, *service, *instance;
    zloop_t *loop;
    cv_http_t *http;
    cv_log_t *log;
    int timer;
    json_t *pending;            /* the spans of the requests waiting for the next batch, one array each */
    size_t in_flight;           /* requests in the batch being sent (0: none is) */
    int64_t first_pending_us;   /* when the oldest pending one was queued */
    bool failing;               /* the last batch failed: logged once until one goes */
    cv_metric_family_t *counts; /* conveyor_trace_exports_total{outcome} */
};

/*  --------------------------------------------------------------------------
    OTLP's shapes */

static json_t *
s_attribute (const char *key, const char *value)
{
    return json_pack ("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value);
}

static json_t *
s_nanos (json_int_t micros)
{
    char text[32];
    snprintf (text, sizeof text, "%lld000", (long long) micros);
    return json_string (text); /* a 64-bit integer is a string in OTLP's JSON */
}

json_t *
orchestrator_otlp_spans (const json_t *trace)
{
    json_t *out = json_array ();
    const char *trace_id = json_string_value (json_object_get (trace, "trace_id"));
    const char *request_id = json_string_value (json_object_get (trace, "request_id"));
    size_t index;
    json_t *span;
    json_array_foreach (json_object_get (trace, "spans"), index, span) {
        const char *kind = json_string_value (json_object_get (span, "kind"));
        json_int_t start = json_integer_value (json_object_get (span, "start_unix_us"));
        json_int_t duration = json_integer_value (json_object_get (span, "duration_us"));
        bool error = json_is_true (json_object_get (span, "error"));
        json_t *entry = json_pack (
            "{s:s, s:s, s:s, s:i, s:o, s:o, s:[o, o, o], s:{s:i}}", "traceId", trace_id, "spanId",
            json_string_value (json_object_get (span, "span_id")), "name",
            json_string_value (json_object_get (span, "name")), "kind",
            strcmp (kind, "request") == 0 ? 2 : 1, /* SPAN_KIND_SERVER, SPAN_KIND_INTERNAL */
            "startTimeUnixNano", s_nanos (start), "endTimeUnixNano", s_nanos (start + duration), "attributes",
            s_attribute ("conveyor.request_id", request_id), s_attribute ("conveyor.kind", kind),
            s_attribute ("conveyor.status", json_string_value (json_object_get (span, "status"))), "status", "code",
            error ? 2 : 0); /* STATUS_CODE_ERROR, STATUS_CODE_UNSET */
        const char *parent = json_string_value (json_object_get (span, "parent_span_id"));
        if (parent)
            json_object_set_new (entry, "parentSpanId", json_string (parent));
        json_array_append_new (out, entry);
    }
    return out;
}

/*  --------------------------------------------------------------------------
    Batches */

static void s_send (orchestrator_otlp_t *self);

static void
s_count (orchestrator_otlp_t *self, const char *outcome, size_t requests)
{
    cv_metric_add (cv_metric_with (self->counts, outcome), (double) requests);
}

static void
s_sent (void *arg, const cv_http_outcome_t *outcome)
{
    orchestrator_otlp_t *self = arg;
    size_t requests = self->in_flight;
    self->in_flight = 0;
    cv_backoff_failure_t failure;
    int status = 0;
    if (cv_http_failure (outcome, &failure, &status)) {
        s_count (self, "failed", requests);
        if (!self->failing)
            cv_log_warn (
                self->log, "traces not exported to %s: %s; %zu requests' traces dropped (they stay in the store)",
                self->url,
                outcome->result == CV_HTTP_ANSWERED ? "the collector answered with an error status" : outcome->error,
                requests);
        if (outcome->result == CV_HTTP_ANSWERED)
            cv_log_debug (self->log, "the collector answered %d: %.200s", outcome->status, outcome->body);
        self->failing = true;
    } else {
        s_count (self, "sent", requests);
        if (self->failing)
            cv_log_info (self->log, "traces are exported to %s again", self->url);
        self->failing = false;
    }
    if (json_array_size (self->pending) >= ORCHESTRATOR_OTLP_BATCH)
        s_send (self);
}

/* Sends the oldest pending requests' spans, up to a batch, in one POST. */
static void
s_send (orchestrator_otlp_t *self)
{
    if (self->in_flight || json_array_size (self->pending) == 0)
        return;
    json_t *spans = json_array ();
    size_t requests = 0;
    while (requests < ORCHESTRATOR_OTLP_BATCH && json_array_size (self->pending) > 0) {
        json_array_extend (spans, json_array_get (self->pending, 0));
        json_array_remove (self->pending, 0);
        requests++;
    }
    /* those left waiting are at least as old as first_pending_us says: it stands */
    json_t *resource = json_pack ("{s:[o]}", "attributes", s_attribute ("service.name", self->service));
    if (self->instance)
        json_array_append_new (json_object_get (resource, "attributes"),
                               s_attribute ("service.instance.id", self->instance));
    json_t *body = json_pack ("{s:[{s:o, s:[{s:{s:s}, s:o}]}]}", "resourceSpans", "resource", resource, "scopeSpans",
                              "scope", "name", "conveyor", "spans", spans);
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json"};
    cv_http_request_t request = {.method = "POST",
                                 .url = self->url,
                                 .headers = headers,
                                 .header_count = 2,
                                 .body = text,
                                 .body_size = strlen (text),
                                 .until_us = zclock_usecs () + (int64_t) self->config.timeout_ms * 1000,
                                 .max_body = MAX_ANSWER_BYTES};
    self->in_flight = requests;
    (void) cv_http_start (self->http, &request, s_sent, self);
    free (text);
}

static int
s_flush_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    orchestrator_otlp_t *self = arg;
    if (json_array_size (self->pending) > 0
        && zclock_usecs () - self->first_pending_us >= (int64_t) self->config.flush_ms * 1000)
        s_send (self);
    return 0;
}

void
orchestrator_otlp_export (orchestrator_otlp_t *self, const orchestrator_request_t *request)
{
    assert (self && request);
    if (json_array_size (self->pending) >= ORCHESTRATOR_OTLP_QUEUE_MAX) {
        s_count (self, "dropped", 1);
        return;
    }
    json_t *trace = orchestrator_trace_document (request, cv_trace_wall_us (zclock_usecs ()));
    if (json_array_size (self->pending) == 0)
        self->first_pending_us = zclock_usecs ();
    json_array_append_new (self->pending, orchestrator_otlp_spans (trace));
    json_decref (trace);
    if (json_array_size (self->pending) >= ORCHESTRATOR_OTLP_BATCH)
        s_send (self);
}

/*  --------------------------------------------------------------------------
    The class */

orchestrator_otlp_t *
orchestrator_otlp_new (zloop_t *loop, const orchestrator_otlp_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (loop && config && config->url && log);
    if (strncasecmp (config->url, "http://", 7) != 0 && strncasecmp (config->url, "https://", 8) != 0) {
        cv_error_set (err, CV_ERR_INVALID, "otlp-url", "otlp-url must be an http:// or https:// URL, not '%s'",
                      config->url);
        return NULL;
    }
    cv_http_t *http = cv_http_new (loop, err);
    if (!http)
        return NULL;
    orchestrator_otlp_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    if (self->config.flush_ms <= 0)
        self->config.flush_ms = 500;
    if (self->config.timeout_ms <= 0)
        self->config.timeout_ms = 5000;
    self->url = cv_strdup (config->url);
    self->service = cv_strdup (config->service && *config->service ? config->service : "conveyor");
    self->instance = config->instance && *config->instance ? cv_strdup (config->instance) : NULL;
    self->loop = loop;
    self->http = http;
    self->log = log;
    self->pending = json_array ();
    self->counts = cv_metrics_counter (cv_metrics_process (), "conveyor_trace_exports_total",
                                       "Requests' traces exported to the OTLP collector, by outcome: sent, failed "
                                       "(the batch's POST failed), dropped (the queue was full).",
                                       "outcome");
    int tick = self->config.flush_ms < 100 ? self->config.flush_ms : 100;
    self->timer = zloop_timer (loop, (size_t) tick, 0, s_flush_timer, self);
    return self;
}

void
orchestrator_otlp_destroy (orchestrator_otlp_t **self_p)
{
    assert (self_p);
    orchestrator_otlp_t *self = *self_p;
    if (!self)
        return;
    zloop_timer_end (self->loop, self->timer);
    cv_http_destroy (&self->http);
    json_decref (self->pending);
    free (self->url);
    free (self->service);
    free (self->instance);
    free (self);
    *self_p = NULL;
}

/*  --------------------------------------------------------------------------
    Self-test: a trace document in OTLP's shapes. (The export itself is tested end to end, to a
    stand-in collector, by e2e.trace.) */

void
orchestrator_otlp_test (bool verbose)
{
    (void) verbose;
    json_t *trace = json_pack (
        "{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}, {s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}]}",
        "request_id", "r-1", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", "status", "done", "spans", "span_id",
        "1111111111111111", "parent_span_id", "00f067aa0ba902b7", "name", "request", "kind", "request", "start_unix_us",
        (json_int_t) 1700000000000000, "duration_us", (json_int_t) 2500, "status", "done", "error", false, "span_id",
        "2222222222222222", "parent_span_id", "1111111111111111", "name", "tool fx_rate", "kind", "tool",
        "start_unix_us", (json_int_t) 1700000000000100, "duration_us", (json_int_t) 900, "status", "timed_out", "error",
        true);
    json_t *spans = orchestrator_otlp_spans (trace);
    assert (json_array_size (spans) == 2);
    json_t *root = json_array_get (spans, 0), *tool = json_array_get (spans, 1);
    assert (streq (json_string_value (json_object_get (root, "traceId")), "4bf92f3577b34da6a3ce929d0e0e4736"));
    assert (streq (json_string_value (json_object_get (root, "parentSpanId")), "00f067aa0ba902b7"));
    assert (json_integer_value (json_object_get (root, "kind")) == 2);
    assert (streq (json_string_value (json_object_get (root, "startTimeUnixNano")), "1700000000000000000"));
    assert (streq (json_string_value (json_object_get (root, "endTimeUnixNano")), "1700000000002500000"));
    assert (json_integer_value (json_object_get (json_object_get (root, "status"), "code")) == 0);
    assert (streq (json_string_value (json_object_get (tool, "parentSpanId")), "1111111111111111"));
    assert (json_integer_value (json_object_get (tool, "kind")) == 1);
    assert (json_integer_value (json_object_get (json_object_get (tool, "status"), "code")) == 2);
    json_t *attribute = json_array_get (json_object_get (tool, "attributes"), 2);
    assert (streq (json_string_value (json_object_get (attribute, "key")), "conveyor.status"));
    assert (
        streq (json_string_value (json_object_get (json_object_get (attribute, "value"), "stringValue")), "timed_out"));
    json_decref (spans);
    /* a request that came without a traceparent: its span has no parent */
    json_object_del (json_array_get (json_object_get (trace, "spans"), 0), "parent_span_id");
    spans = orchestrator_otlp_spans (trace);
    assert (!json_object_get (json_array_get (spans, 0), "parentSpanId"));
    json_decref (spans);
    json_decref (trace);
}
