/* A request's trace: spans and the W3C trace context (cv_trace.h). */
#include "cv_trace.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "cv_assert.h"
#include "cv_utf8.h"

static atomic_bool s_recording = true;

void
cv_trace_set_recording (bool on)
{
    atomic_store (&s_recording, on);
}

Conveyor__V1__Span *
cv_trace_add_llm (cv_envelope_t *reply, cv_arena_t *arena, const char *parent_span_id, const char *model,
                  int64_t started_us, int64_t finished_us, const char *status)
{
    char name[CV_STEP_NAME_MAX_BYTES + 8];
    snprintf (name, sizeof name, "llm %s", model);
    return cv_trace_add (reply, arena, parent_span_id, name, started_us, finished_us, status,
                         strcmp (status, "failed") == 0);
}

bool
cv_trace_recording (void)
{
    return atomic_load (&s_recording);
}

Conveyor__V1__Span *
cv_trace_add (cv_envelope_t *reply, cv_arena_t *arena, const char *parent_span_id, const char *name, int64_t started_us,
              int64_t finished_us, const char *status, bool error)
{
    assert (reply && arena && name && status);
    if (reply->n_spans >= CV_SPANS_MAX || !parent_span_id || !*parent_span_id
        || !atomic_load_explicit (&s_recording, memory_order_relaxed))
        return NULL;
    if (reply->n_spans % 8 == 0) { /* room for eight more */
        Conveyor__V1__Span **spans = cv_arena_alloc (arena, (reply->n_spans + 8) * sizeof *spans);
        if (reply->n_spans)
            memcpy (spans, reply->spans, reply->n_spans * sizeof *spans);
        reply->spans = spans;
    }
    Conveyor__V1__Span *span = cv_arena_alloc (arena, sizeof *span);
    conveyor__v1__span__init (span);
    char id[CV_SPAN_ID_BYTES];
    cv_envelope_random_hex (id, sizeof id);
    span->span_id = cv_arena_strdup (arena, id);
    span->parent_span_id = cv_arena_strdup (arena, parent_span_id);
    size_t cut = cv_utf8_prefix (name, CV_STEP_NAME_MAX_BYTES);
    span->name = cv_arena_memdup (arena, name, cut + 1);
    span->name[cut] = '\0';
    span->start_unix_us = cv_trace_wall_us (started_us);
    span->duration_us = finished_us > started_us ? (uint64_t) (finished_us - started_us) : 0;
    span->status = cv_arena_strdup (arena, status);
    span->error = error;
    reply->spans[reply->n_spans++] = span;
    return span;
}

void
cv_trace_span_id_of (const char *request_id, const char *part, char out[CV_SPAN_ID_BYTES])
{
    assert (request_id && part);
    uint64_t hash = 14695981039346656037ULL;
    for (const char *c = request_id; *c; c++)
        hash = (hash ^ (uint8_t) *c) * 1099511628211ULL;
    hash = (hash ^ 0x1f) * 1099511628211ULL; /* a separator no id holds */
    for (const char *c = part; *c; c++)
        hash = (hash ^ (uint8_t) *c) * 1099511628211ULL;
    snprintf (out, CV_SPAN_ID_BYTES, "%016llx", (unsigned long long) (hash ? hash : 1));
}

uint64_t
cv_trace_wall_us (int64_t mono_us)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    int64_t wall_now = (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
    int64_t wall = wall_now - (zclock_usecs () - mono_us);
    return wall > 0 ? (uint64_t) wall : 0;
}

/* True when text's first count characters are lower-case hex digits, not all zeros. */
static bool
s_hex_id (const char *text, size_t count)
{
    bool nonzero = false;
    for (size_t i = 0; i < count; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        nonzero |= c != '0';
    }
    return nonzero;
}

int
cv_trace_parent_parse (const char *header, char trace_id[CV_TRACE_ID_BYTES], char parent_id[CV_SPAN_ID_BYTES])
{
    /* version(2) - trace id(32) - parent id(16) - flags(2): 55 characters */
    if (!header)
        return -1;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t size = strlen (header);
    while (size > 0 && (header[size - 1] == ' ' || header[size - 1] == '\t'))
        size--;
    if (size < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-')
        return -1;
    bool version_hex = s_hex_id (header, 2) || (header[0] == '0' && header[1] == '0');
    if (!version_hex || strncmp (header, "ff", 2) == 0)
        return -1;
    bool version_00 = header[0] == '0' && header[1] == '0';
    if (version_00 ? size != 55 : (size > 55 && header[55] != '-'))
        return -1; /* version 00 has exactly four fields; a later one may have more after a dash */
    if (!s_hex_id (header + 3, 32) || !s_hex_id (header + 36, 16))
        return -1;
    char flags_0 = header[53], flags_1 = header[54];
    bool flags_hex = ((flags_0 >= '0' && flags_0 <= '9') || (flags_0 >= 'a' && flags_0 <= 'f'))
                     && ((flags_1 >= '0' && flags_1 <= '9') || (flags_1 >= 'a' && flags_1 <= 'f'));
    if (!flags_hex)
        return -1;
    memcpy (trace_id, header + 3, 32);
    trace_id[32] = '\0';
    memcpy (parent_id, header + 36, 16);
    parent_id[16] = '\0';
    return 0;
}

void
cv_trace_parent_format (const char *trace_id, const char *span_id, char out[CV_TRACEPARENT_BYTES])
{
    assert (trace_id && span_id);
    snprintf (out, CV_TRACEPARENT_BYTES, "00-%s-%s-01", trace_id, span_id);
}

/*  --------------------------------------------------------------------------
    Self-test */

void
cv_trace_test (bool verbose)
{
    (void) verbose;
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = cv_envelope_new (arena, "r-1", NULL, 4102444800000ULL, 1);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);

    /* a span: a child of the request's span, timed, its start in wall-clock time */
    int64_t started = zclock_usecs () - 2500;
    Conveyor__V1__Span *span =
        cv_trace_add (reply, arena, request->span_id, "tool fx_rate", started, started + 1500, "ok", false);
    assert (span && reply->n_spans == 1 && strcmp (span->parent_span_id, request->span_id) == 0);
    assert (strlen (span->span_id) == 16 && strcmp (span->span_id, request->span_id) != 0);
    assert (span->duration_us == 1500 && strcmp (span->name, "tool fx_rate") == 0 && !span->error);
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    uint64_t wall_now = (uint64_t) now.tv_sec * 1000000 + (uint64_t) now.tv_nsec / 1000;
    assert (span->start_unix_us <= wall_now - 2500 && span->start_unix_us > wall_now - 1000000);
    /* a finish before the start counts as no time; a long name is cut at a character */
    char name[300];
    memset (name, 'a', sizeof name);
    memcpy (name + CV_STEP_NAME_MAX_BYTES - 1, "\xc3\xa9", 2); /* é across the limit */
    name[sizeof name - 1] = '\0';
    span = cv_trace_add (reply, arena, request->span_id, name, started, started - 10, "failed", true);
    assert (span && span->duration_us == 0 && span->error && strlen (span->name) == CV_STEP_NAME_MAX_BYTES - 1);
    /* the reply with its spans passes validation and survives the wire */
    cv_error_t err;
    cv_envelope_set_reply (reply, arena)->text = "ok";
    cv_assert_that (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == 0, "%s",
                    err.message);
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    cv_envelope_t *copy = cv_envelope_unpack (packed, size, &err);
    assert (copy && copy->n_spans == 2 && strcmp (copy->spans[0]->name, "tool fx_rate") == 0);
    cv_envelope_destroy (&copy);
    free (packed);
    /* an LLM call's span: named after its model, failed when its outcome is */
    Conveyor__V1__Span *llm =
        cv_trace_add_llm (reply, arena, request->span_id, "small", started, started + 5, "failed");
    assert (llm && strcmp (llm->name, "llm small") == 0 && llm->error && strcmp (llm->status, "failed") == 0);
    /* at most CV_SPANS_MAX: the next is left out; no parent, no span */
    while (reply->n_spans < CV_SPANS_MAX)
        assert (cv_trace_add (reply, arena, request->span_id, "llm m", started, started + 1, "answered", false));
    assert (!cv_trace_add (reply, arena, request->span_id, "one more", started, started + 1, "ok", false));
    assert (reply->n_spans == CV_SPANS_MAX);
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == 0);
    cv_envelope_t *other = cv_envelope_reply_new (arena, request);
    assert (!cv_trace_add (other, arena, "", "tool x", started, started, "ok", false));
    /* a span with a bad id, too many spans: refused by validation, on their field */
    cv_envelope_set_reply (other, arena)->text = "ok";
    span = cv_trace_add (other, arena, request->span_id, "tool x", started, started, "ok", false);
    span->parent_span_id = "XYZ";
    assert (cv_envelope_validate (other, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == -1);
    assert (err.code == CV_ERR_INVALID && strcmp (err.field, "spans.parent_span_id") == 0);
    span->parent_span_id = request->span_id;
    span->status = "";
    assert (cv_envelope_validate (other, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == -1);
    assert (strcmp (err.field, "spans.status") == 0);
    reply->n_spans = CV_SPANS_MAX + 1;
    assert (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_REPLY), 0, &err) == -1);
    assert (strcmp (err.field, "spans") == 0);
    reply->n_spans = CV_SPANS_MAX;

    /* derived span ids: the same names, the same id; other names, another */
    char a[CV_SPAN_ID_BYTES], b[CV_SPAN_ID_BYTES], c[CV_SPAN_ID_BYTES];
    cv_trace_span_id_of ("r-1", "gather", a);
    cv_trace_span_id_of ("r-1", "gather", b);
    cv_trace_span_id_of ("r-1", "intent", c);
    assert (strlen (a) == 16 && strcmp (a, b) == 0 && strcmp (a, c) != 0);
    cv_trace_span_id_of ("r-1g", "ather", b); /* the separator keeps the two names apart */
    assert (strcmp (a, b) != 0);

    /* traceparent: the W3C examples, and what is not one */
    char trace[CV_TRACE_ID_BYTES], parent[CV_SPAN_ID_BYTES];
    assert (cv_trace_parent_parse ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", trace, parent) == 0);
    assert (strcmp (trace, "4bf92f3577b34da6a3ce929d0e0e4736") == 0 && strcmp (parent, "00f067aa0ba902b7") == 0);
    assert (cv_trace_parent_parse (" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", trace, parent) == 0);
    /* a later version: its first four fields, whatever follows a dash */
    assert (cv_trace_parent_parse ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", trace, parent)
            == 0);
    const char *bad[] = {
        NULL,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* trace id all zeros */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* parent all zeros */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 with a fifth field */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* later version, no dash */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",   /* flags not hex */
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   /* not dashes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cv_assert_that (cv_trace_parent_parse (bad[i], trace, parent) == -1, "took %s", bad[i] ? bad[i] : "NULL");
    char header[CV_TRACEPARENT_BYTES];
    cv_trace_parent_format ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", header);
    assert (strcmp (header, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == 0);
    assert (cv_trace_parent_parse (header, trace, parent) == 0);
    cv_arena_destroy (&arena);
}
