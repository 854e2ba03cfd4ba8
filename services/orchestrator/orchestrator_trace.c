/* A request's trace as a document (orchestrator_trace.h). */
#include "orchestrator_trace.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_trace.h"

static bool
s_failed (const char *status)
{
    return strcmp (status, "failed") == 0 || strcmp (status, "stage_failed") == 0
           || strcmp (status, "out_of_attempts") == 0;
}

static json_t *
s_span (const char *span_id, const char *parent_span_id, const char *name, const char *kind, uint64_t start_unix_us,
        uint64_t duration_us, const char *status, bool error)
{
    return json_pack ("{s:s, s:s?, s:s, s:s, s:I, s:I, s:s, s:b}", "span_id", span_id, "parent_span_id",
                      parent_span_id && *parent_span_id ? parent_span_id : NULL, "name", name, "kind", kind,
                      "start_unix_us", (json_int_t) start_unix_us, "duration_us", (json_int_t) duration_us, "status",
                      status, "error", error);
}

/* A worker's span's kind, from its name's first word. */
static const char *
s_kind (const char *name)
{
    if (strncmp (name, "tool ", 5) == 0)
        return "tool";
    if (strncmp (name, "llm ", 4) == 0)
        return "llm";
    return "work";
}

static int
s_by_start (const void *a, const void *b)
{
    const Conveyor__V1__Span *x = *(Conveyor__V1__Span *const *) a, *y = *(Conveyor__V1__Span *const *) b;
    return x->start_unix_us < y->start_unix_us ? -1 : x->start_unix_us > y->start_unix_us;
}

json_t *
orchestrator_trace_document (const orchestrator_request_t *request, uint64_t now_unix_us)
{
    assert (request);
    const char *status = orchestrator_request_status (request);
    uint64_t created = orchestrator_request_created_unix_us (request);
    double total_ms = orchestrator_request_total_ms (request);
    uint64_t duration = !isnan (total_ms)       ? (total_ms > 0 ? (uint64_t) llround (total_ms * 1000) : 0)
                        : now_unix_us > created ? now_unix_us - created
                                                : 0; /* ended: its total; running: until now */
    char root[CV_SPAN_ID_BYTES];
    orchestrator_request_span_id (request, root);
    json_t *spans = json_array ();
    json_t *untimed = json_array ();
    json_array_append_new (spans, s_span (root, orchestrator_request_parent_span_id (request), "request", "request",
                                          created, duration, status, s_failed (status)));
    for (int i = 0; i < orchestrator_request_result_count (request); i++) {
        int stage = orchestrator_request_result_stage (request, i);
        const char *name = orchestrator_request_stage_name ((orchestrator_state_t) stage);
        uint64_t started = orchestrator_request_stage_started_unix_us (request, stage);
        if (!started) {
            json_array_append_new (untimed, json_string (name));
            continue;
        }
        char span_id[CV_SPAN_ID_BYTES];
        orchestrator_request_stage_span_id (request, stage, span_id);
        json_t *span = s_span (span_id, root, name, "stage", started,
                               (uint64_t) orchestrator_request_stage_us (request, stage), "ok", false);
        json_object_set_new (span, "attempts", json_integer (orchestrator_request_stage_attempts (request, stage)));
        json_array_append_new (spans, span);
        /* its worker's, by start: children of the stage */
        const cv_envelope_t *result = orchestrator_request_result (request, stage);
        if (!result || result->n_spans == 0)
            continue;
        Conveyor__V1__Span **work = cv_malloc (result->n_spans * sizeof *work);
        memcpy (work, result->spans, result->n_spans * sizeof *work);
        qsort (work, result->n_spans, sizeof *work, s_by_start);
        for (size_t w = 0; w < result->n_spans; w++)
            json_array_append_new (spans, s_span (work[w]->span_id, work[w]->parent_span_id, work[w]->name,
                                                  s_kind (work[w]->name), work[w]->start_unix_us, work[w]->duration_us,
                                                  work[w]->status, work[w]->error));
        free (work);
    }
    return json_pack ("{s:s, s:s, s:s, s:o, s:o}", "request_id", orchestrator_request_id (request), "trace_id",
                      orchestrator_request_trace_id (request), "status", status, "spans", spans, "untimed_stages",
                      untimed);
}

/*  --------------------------------------------------------------------------
    Self-test: a request with its intent stage done, whose worker timed an LLM call. */

void
orchestrator_trace_test (bool verbose)
{
    (void) verbose;
    orchestrator_request_t *request =
        orchestrator_request_new ("r-trace", NULL, "cust-1", NULL, "I lost my card", NULL, 4102444800000ULL);
    orchestrator_request_set_created_unix_us (request, 1000000000);
    orchestrator_request_set_parent_span_id (request, "00f067aa0ba902b7");

    /* running, nothing done: the request's span alone, to now */
    json_t *document = orchestrator_trace_document (request, 1000005000);
    json_t *spans = json_object_get (document, "spans");
    assert (json_array_size (spans) == 1);
    json_t *root = json_array_get (spans, 0);
    assert (streq (json_string_value (json_object_get (root, "parent_span_id")), "00f067aa0ba902b7"));
    assert (json_integer_value (json_object_get (root, "duration_us")) == 5000);
    assert (streq (json_string_value (json_object_get (root, "status")), "running"));
    json_decref (document);

    /* the intent stage: the envelope it goes in carries the stage's span id; the worker's span
       names it as its parent */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *sent = orchestrator_request_stage_envelope (request, arena);
    char stage_span[CV_SPAN_ID_BYTES], root_span[CV_SPAN_ID_BYTES];
    orchestrator_request_stage_span_id (request, REQUEST_INTENT, stage_span);
    orchestrator_request_span_id (request, root_span);
    assert (streq (sent->span_id, stage_span) && !streq (stage_span, root_span));
    orchestrator_request_set_stage_started_unix_us (request, REQUEST_INTENT, 1000001000);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, sent);
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
    intent->name = "lost_or_stolen_card";
    intent->confidence = 0.9f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__LLM;
    int64_t now = zclock_usecs ();
    assert (cv_trace_add (reply, arena, sent->span_id, "llm small", now - 300, now, "answered", false));
    assert (cv_trace_add (reply, arena, sent->span_id, "llm big", now - 900, now - 400, "failed", true));
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    cv_error_t err;
    cv_envelope_t *result = cv_envelope_unpack (packed, size, &err);
    cv_assert_that (orchestrator_request_accept (request, &result, packed, size, 700, 1, &err) == 0, "%s", err.message);
    free (packed);
    document = orchestrator_trace_document (request, 1000005000);
    spans = json_object_get (document, "spans");
    cv_assert_that (json_array_size (spans) == 4, "%zu spans", json_array_size (spans));
    json_t *stage = json_array_get (spans, 1);
    assert (streq (json_string_value (json_object_get (stage, "name")), "intent"));
    assert (streq (json_string_value (json_object_get (stage, "kind")), "stage"));
    assert (streq (json_string_value (json_object_get (stage, "span_id")), stage_span));
    assert (streq (json_string_value (json_object_get (stage, "parent_span_id")), root_span));
    assert (json_integer_value (json_object_get (stage, "start_unix_us")) == 1000001000);
    assert (json_integer_value (json_object_get (stage, "duration_us")) == 700);
    assert (json_integer_value (json_object_get (stage, "attempts")) == 1);
    /* the worker's, by start: the failed big model first */
    json_t *first = json_array_get (spans, 2), *second = json_array_get (spans, 3);
    assert (streq (json_string_value (json_object_get (first, "name")), "llm big"));
    assert (json_is_true (json_object_get (first, "error")));
    assert (streq (json_string_value (json_object_get (first, "kind")), "llm"));
    assert (streq (json_string_value (json_object_get (second, "parent_span_id")), stage_span));
    assert (json_array_size (json_object_get (document, "untimed_stages")) == 0);
    json_decref (document);

    /* a stage whose start is not known is named, not drawn; an ended request's span is its total */
    orchestrator_request_set_stage_started_unix_us (request, REQUEST_INTENT, 0);
    orchestrator_request_set_total_ms (request, 12.5);
    document = orchestrator_trace_document (request, 1000005000);
    assert (json_array_size (json_object_get (document, "spans")) == 1);
    assert (streq (json_string_value (json_array_get (json_object_get (document, "untimed_stages"), 0)), "intent"));
    assert (
        json_integer_value (json_object_get (json_array_get (json_object_get (document, "spans"), 0), "duration_us"))
        == 12500);
    json_decref (document);
    cv_arena_destroy (&arena);
    orchestrator_request_destroy (&request);
}
