/* Runs one http tool through the loop's HTTP client. */
#include "gatherer_http.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_http_url.h"
#include "cv_msgpack.h"
#include "cv_template.h"

#define MAX_HEADERS (GATHERER_HTTP_MAX_HEADERS + 2) /* the tool's, Accept and Content-Type */
#define ERROR_EXCERPT_BYTES 200                     /* of an answer's own error message */

struct _gatherer_http_call_t {
    cv_http_t *http;
    cv_http_call_t *transfer;
    const gatherer_tool_t *tool;
    int64_t limit_ms; /* how long it was given */
    bool by_deadline; /* the deadline, not the tool's timeout, limits it */
    gatherer_result_t *result;
    gatherer_http_done_fn *done;
    void *arg;
};

static const char *const s_answer_headers[] = {"Retry-After"};

/* Fails result with a reason, and how the failure counts (gatherer_call). */
static void __attribute__ ((format (printf, 5, 6)))
s_fail (gatherer_result_t *result, bool dependency, cv_backoff_failure_t failure, int http_status, const char *format,
        ...)
{
    result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
    result->dependency = dependency;
    result->failure = failure;
    result->http_status = http_status;
    va_list args;
    va_start (args, format);
    vsnprintf (result->error, sizeof result->error, format, args);
    va_end (args);
}

/* One row of item: each kept field's text, or null. New reference. */
static json_t *
s_row (const gatherer_http_spec_t *spec, const json_t *item)
{
    json_t *row = json_object ();
    for (size_t i = 0; i < spec->keep_count; i++) {
        char *text = cv_params_text (item, spec->keep_paths[i]);
        json_object_set_new (row, spec->keep_names[i], text ? json_string (text) : json_null ());
        free (text);
    }
    return row;
}

/* The rows tool keeps of an answer's body, into result: OK, or FAILED when it is not JSON or has
   no array where rows says. Neither is worth another try: the same request gets the same body. */
static void
s_read_answer (const gatherer_tool_t *tool, const char *body, size_t size, gatherer_result_t *result)
{
    const gatherer_http_spec_t *spec = tool->http;
    json_error_t error;
    json_t *answer = json_loadb (body, size, JSON_DECODE_ANY, &error);
    if (!answer) {
        s_fail (result, true, CV_BACKOFF_HTTP, 0, "the answer is not JSON (%s at byte %d)", error.text, error.position);
        return;
    }
    json_t *items = spec->rows ? cv_template_lookup (answer, spec->rows) : NULL;
    if (spec->rows && !json_is_array (items)) {
        s_fail (result, true, CV_BACKOFF_HTTP, 0, "the answer has no array at %s", spec->rows);
        json_decref (answer);
        return;
    }
    json_t *rows = json_array ();
    size_t count = spec->rows ? json_array_size (items) : 1;
    for (size_t i = 0; i < count && json_array_size (rows) < (size_t) tool->max_rows; i++)
        json_array_append_new (rows, s_row (spec, spec->rows ? json_array_get (items, i) : answer));
    json_decref (answer);
    cv_error_t err;
    result->data = cv_msgpack_pack (rows, &result->size, &err);
    if (result->data) {
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
        result->rows = json_array_size (rows);
        result->dropped = count - result->rows;
    } else
        s_fail (result, false, CV_BACKOFF_HTTP, 0, "rows cannot be sent: %s", err.message);
    json_decref (rows);
}

/* An answer's own error message, when its body is JSON that gives one ({"error": {"message"}},
   {"error": "..."} or {"message": "..."}), on one line and cut short; else "". */
static void
s_answer_error (const cv_http_outcome_t *outcome, char *out, size_t size)
{
    out[0] = '\0';
    json_t *answer = json_loadb (outcome->body, outcome->body_size, 0, NULL);
    json_t *error = json_object_get (answer, "error");
    const char *message = json_string_value (json_object_get (error, "message"));
    if (!message)
        message = json_string_value (error);
    if (!message)
        message = json_string_value (json_object_get (answer, "message"));
    if (message) {
        snprintf (out, size, ": %.*s", ERROR_EXCERPT_BYTES, message);
        for (char *c = out; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    }
    json_decref (answer);
}

static void
s_record (gatherer_http_call_t *self, const cv_http_outcome_t *outcome)
{
    gatherer_result_t *result = self->result;
    result->started_us = outcome->started_us;
    result->finished_us = outcome->finished_us;
    result->attempts = 1;
    result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    cv_backoff_failure_t failure = CV_BACKOFF_CONNECT;
    int status = 0;
    switch (outcome->result) {
    case CV_HTTP_ANSWERED: {
        if (!cv_http_failure (outcome, &failure, &status)) {
            s_read_answer (self->tool, outcome->body, outcome->body_size, result);
            break;
        }
        uint64_t delay_ms;
        const char *retry_after = outcome->answer_headers[0];
        if (retry_after && cv_backoff_retry_after (retry_after, (uint64_t) zclock_time (), &delay_ms) == 0)
            result->retry_after_ms = (int64_t) delay_ms;
        char message[ERROR_EXCERPT_BYTES + 8];
        s_answer_error (outcome, message, sizeof message);
        s_fail (result, true, failure, status, "answered HTTP %d%s", outcome->status, message);
        break;
    }
    case CV_HTTP_TIMEOUT:
        result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
        result->dependency = true;
        result->failure = CV_BACKOFF_TIMEOUT;
        result->by_deadline = self->by_deadline;
        snprintf (result->error, sizeof result->error, "%s after %lld ms",
                  self->by_deadline ? "the request's deadline came" : "timed out", (long long) self->limit_ms);
        break;
    case CV_HTTP_REFUSED:
    case CV_HTTP_CLOSED:
    case CV_HTTP_MALFORMED:
    case CV_HTTP_TOO_LARGE:
    case CV_HTTP_FAILED:
        (void) cv_http_failure (outcome, &failure, &status);
        s_fail (result, true, failure, status, "%s", outcome->error);
        break;
    }
}

static void
s_transfer_done (void *arg, const cv_http_outcome_t *outcome)
{
    gatherer_http_call_t *self = arg;
    s_record (self, outcome);
    gatherer_http_done_fn *done = self->done;
    void *done_arg = self->arg;
    free (self);
    done (done_arg);
}

/* The body template with each "{name}" string replaced by that parameter's value (its JSON type
   kept); NULL when the request has no such value. New reference. */
static json_t *
s_fill_body (const json_t *template, const gatherer_tool_t *tool, const json_t *context)
{
    if (json_is_string (template)) {
        size_t size;
        const char *wanted = gatherer_http_spec_placeholder (json_string_value (template), &size);
        for (size_t i = 0; wanted && i < tool->param_count; i++) {
            const char *name = tool->http->names[i];
            if (strlen (name) == size && memcmp (name, wanted, size) == 0) {
                json_t *value = context ? cv_template_lookup (context, tool->params[i]) : NULL;
                return value && !json_is_null (value) ? json_deep_copy (value) : NULL;
            }
        }
        return json_incref ((json_t *) template);
    }
    json_t *copy = NULL, *item;
    const char *key;
    size_t index;
    if (json_is_object (template)) {
        copy = json_object ();
        json_object_foreach ((json_t *) template, key, item) {
            json_t *filled = s_fill_body (item, tool, context);
            if (!filled) {
                json_decref (copy);
                return NULL;
            }
            json_object_set_new (copy, key, filled);
        }
        return copy;
    }
    if (json_is_array (template)) {
        copy = json_array ();
        json_array_foreach (template, index, item) {
            json_t *filled = s_fill_body (item, tool, context);
            if (!filled) {
                json_decref (copy);
                return NULL;
            }
            json_array_append_new (copy, filled);
        }
        return copy;
    }
    return json_incref ((json_t *) template);
}

/* The request's URL and body: NULL url, with result FAILED, when a parameter has no value. */
static void
s_build (const gatherer_tool_t *tool, const json_t *context, char **url, char **body, gatherer_result_t *result)
{
    const gatherer_http_spec_t *spec = tool->http;
    char *texts[CV_PARAMS_MAX];
    size_t filled = 0;
    *url = *body = NULL;
    for (; filled < tool->param_count; filled++) {
        texts[filled] = cv_params_text (context, tool->params[filled]);
        if (!texts[filled]) {
            s_fail (result, false, CV_BACKOFF_HTTP, 0, "no value for {%s}: the request has no %s", spec->names[filled],
                    tool->params[filled]);
            goto done;
        }
    }
    cv_error_t err;
    *url = cv_http_url_build (spec->url, tool->param_count, (const char *const *) spec->names,
                              (const char *const *) texts, &err);
    if (!*url) {
        s_fail (result, false, CV_BACKOFF_HTTP, 0, "the URL cannot be built: %s", err.message);
        goto done;
    }
    if (spec->body) {
        json_t *document = s_fill_body (spec->body, tool, context);
        assert (document); /* every placeholder is a parameter (gatherer_http_spec), and each has its text above */
        *body = json_dumps (document, JSON_COMPACT);
        json_decref (document);
        cv_assert_that (*body, "json_dumps: out of memory");
    }
done:
    for (size_t i = 0; i < filled; i++)
        free (texts[i]);
}

bool
gatherer_http_can_start (const gatherer_tool_t *tool, const json_t *context, gatherer_result_t *result)
{
    assert (tool && tool->kind == GATHERER_TOOL_HTTP && result);
    char *url, *body;
    s_build (tool, context, &url, &body, result);
    if (!url) {
        result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
        result->started_us = result->finished_us = zclock_usecs ();
        return false;
    }
    free (url);
    free (body);
    return true;
}

gatherer_http_call_t *
gatherer_http_start (cv_http_t *http, const gatherer_tool_t *tool, const json_t *context, int64_t deadline_us,
                     gatherer_result_t *result, gatherer_http_done_fn *done, void *arg)
{
    assert (http && tool && tool->kind == GATHERER_TOOL_HTTP && tool->http && result && done);
    const gatherer_http_spec_t *spec = tool->http;
    int64_t now = zclock_usecs ();
    result->retry_after_ms = CV_BACKOFF_NO_RETRY_AFTER;
    result->started_us = result->finished_us = now;
    char *url, *body;
    s_build (tool, context, &url, &body, result);
    if (!url)
        return NULL;

    const char *headers[MAX_HEADERS];
    size_t header_count = 0;
    bool typed = false, accepting = false;
    for (size_t i = 0; i < spec->header_count; i++) {
        headers[header_count++] = spec->headers[i];
        typed = typed || strncasecmp (spec->headers[i], "Content-Type:", strlen ("Content-Type:")) == 0;
        accepting = accepting || strncasecmp (spec->headers[i], "Accept:", strlen ("Accept:")) == 0;
    }
    if (!accepting)
        headers[header_count++] = "Accept: application/json";
    if (body && !typed)
        headers[header_count++] = "Content-Type: application/json";

    gatherer_http_call_t *self = cv_calloc (1, sizeof *self);
    self->http = http;
    self->tool = tool;
    self->result = result;
    self->done = done;
    self->arg = arg;
    int64_t until_us = now + (int64_t) tool->timeout_ms * 1000;
    if (deadline_us && deadline_us < until_us) {
        until_us = deadline_us;
        self->by_deadline = true;
    }
    self->limit_ms = (until_us - now) / 1000;
    cv_http_request_t request = {.method = spec->method,
                                 .url = url,
                                 .headers = headers,
                                 .header_count = header_count,
                                 .body = body,
                                 .body_size = body ? strlen (body) : 0,
                                 .until_us = until_us,
                                 .max_body = spec->max_response_bytes,
                                 .answer_headers = s_answer_headers,
                                 .answer_header_count = 1};
    self->transfer = cv_http_start (http, &request, s_transfer_done, self);
    free (url);
    free (body);
    return self;
}

void
gatherer_http_forget (gatherer_http_call_t *call)
{
    assert (call);
    cv_http_forget (call->http, call->transfer);
    free (call);
}

/*  --------------------------------------------------------------------------
    Self-test (calls against the demo bank's HTTP service, in each of its fault modes, run in the
    gatherer's isolation test) */

/* An http tool made from the YAML of tools.t; its owner, to destroy. */
static gatherer_tools_t *
s_tool (const char *yaml, const gatherer_tool_t **tool)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", yaml, &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    cv_config_destroy (&agent);
    *tool = gatherer_tools_find (tools, "t");
    assert (*tool && (*tool)->kind == GATHERER_TOOL_HTTP);
    return tools;
}

/* The rows of an OK result, as JSON (new reference). */
static json_t *
s_rows (const gatherer_result_t *result)
{
    cv_error_t err;
    json_t *rows = cv_msgpack_unpack (result->data, result->size, "rows", &err);
    assert (json_is_array (rows));
    return rows;
}

static int
s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    return -1;
}

static void
s_heard (void *arg)
{
    *(int *) arg += 1;
}

/* Ends the loop once the call was heard of (arg: the count s_heard moves). */
static int
s_until_heard (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return *(int *) arg > 0 ? -1 : 0;
}

void
gatherer_http_test (bool verbose)
{
    const gatherer_tool_t *tool;
    gatherer_tools_t *tools =
        s_tool ("tools:\n  t:\n    kind: http\n    url: 'http://127.0.0.1:1/v1/parcels/{id}?q={q}'\n"
                "    params: {id: user_id, q: intent.slots.q}\n"
                "    keep: {status: status, carrier: carrier.name, first: events.0, all: events}\n"
                "    max_rows: 2\n",
                &tool);

    /* one row from the answer, each field as text */
    gatherer_result_t result = {0};
    const char *answer = "{\"status\": \"in_transit\", \"carrier\": {\"name\": \"An Post\"}, \"events\": [1, 2]}";
    s_read_answer (tool, answer, strlen (answer), &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result.rows == 1 && result.dropped == 0);
    json_t *rows = s_rows (&result);
    json_t *row = json_array_get (rows, 0);
    assert (streq (json_string_value (json_object_get (row, "status")), "in_transit"));
    assert (streq (json_string_value (json_object_get (row, "carrier")), "An Post"));
    assert (streq (json_string_value (json_object_get (row, "first")), "1"));
    assert (streq (json_string_value (json_object_get (row, "all")), "[1,2]"));
    json_decref (rows);
    gatherer_result_reset (&result);
    /* a field the answer lacks is null */
    s_read_answer (tool, "{\"status\": null}", 16, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    rows = s_rows (&result);
    assert (json_is_null (json_object_get (json_array_get (rows, 0), "status")));
    assert (json_is_null (json_object_get (json_array_get (rows, 0), "carrier")));
    json_decref (rows);
    gatherer_result_reset (&result);
    /* not JSON: failed, counted against the service, and never retried */
    s_read_answer (tool, "{\"status\": \"in_tr", 17, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result.dependency);
    assert (strstr (result.error, "the answer is not JSON")
            && !cv_backoff_retryable (result.failure, result.http_status));
    gatherer_result_reset (&result);

    /* the URL's values are escaped; a missing one fails the tool, naming it */
    json_t *context =
        json_pack ("{s:s, s:{s:{s:s}}}", "user_id", "../admin?x=1", "intent", "slots", "q", "' OR 1=1 --");
    char *url, *body;
    s_build (tool, context, &url, &body, &result);
    assert (streq (url, "http://127.0.0.1:1/v1/parcels/..%2Fadmin%3Fx%3D1?q=%27%20OR%201%3D1%20--") && !body);
    free (url);
    json_t *partial = json_pack ("{s:s}", "user_id", "cust-1");
    s_build (tool, partial, &url, &body, &result);
    assert (!url && result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && !result.dependency);
    assert (streq (result.error, "no value for {q}: the request has no intent.slots.q"));
    gatherer_result_reset (&result);
    assert (!gatherer_http_can_start (tool, partial, &result) && result.attempts == 0);
    assert (strstr (result.error, "no value for {q}"));
    gatherer_result_reset (&result);
    assert (gatherer_http_can_start (tool, context, &result) && result.status == 0);
    /* a dot segment would climb the path: refused, not sent */
    json_t *dots = json_pack ("{s:s, s:{s:{s:s}}}", "user_id", "..", "intent", "slots", "q", "x");
    assert (!gatherer_http_can_start (tool, dots, &result) && strstr (result.error, "{id} cannot be '..'"));
    gatherer_result_reset (&result);
    json_decref (dots);
    /* ... and gatherer_http_start says so at once */
    zloop_t *loop = zloop_new ();
    cv_error_t err;
    cv_http_t *http = cv_http_new (loop, &err);
    assert (http);
    int heard = 0;
    assert (!gatherer_http_start (http, tool, partial, 0, &result, s_heard, &heard));
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && heard == 0);
    gatherer_result_reset (&result);

    /* a service out of reach: failed on the connection, heard from the loop */
    gatherer_http_call_t *call = gatherer_http_start (http, tool, context, 0, &result, s_heard, &heard);
    assert (call && heard == 0);
    int stop = zloop_timer (loop, 5000, 1, s_stop_loop, NULL), poll = zloop_timer (loop, 2, 0, s_until_heard, &heard);
    zloop_start (loop);
    zloop_timer_end (loop, stop);
    zloop_timer_end (loop, poll);
    assert (heard == 1 && result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result.attempts == 1);
    assert (result.dependency && result.failure == CV_BACKOFF_CONNECT && *result.error);
    gatherer_result_reset (&result);
    /* a forgotten call is never heard of */
    call = gatherer_http_start (http, tool, context, 0, &result, s_heard, &heard);
    gatherer_http_forget (call);
    assert (cv_http_in_flight (http) == 0);
    cv_http_destroy (&http);
    zloop_destroy (&loop);
    json_decref (partial);
    gatherer_tools_destroy (&tools);

    /* rows from an array, past max_rows dropped; a body's placeholders keep their JSON type */
    tools = s_tool ("tools:\n  t:\n    kind: http\n    method: POST\n    url: 'http://h/x'\n"
                    "    params: {q: intent.slots.q, n: intent.slots.n}\n"
                    "    body: {q: '{q}', n: ['{n}', '{n} as text', '{nX'], fixed: 2}\n"
                    "    keep: {id: id}\n    rows: data.items\n    max_rows: 2\n",
                    &tool);
    answer = "{\"data\": {\"items\": [{\"id\": 1}, {\"id\": 2}, {\"id\": 3}]}}";
    /* a body string that only starts like a placeholder is sent as written */
    s_read_answer (tool, answer, strlen (answer), &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result.rows == 2 && result.dropped == 1);
    gatherer_result_reset (&result);
    s_read_answer (tool, "{\"data\": {}}", 12, &result);
    assert (result.status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (streq (result.error, "the answer has no array at data.items"));
    gatherer_result_reset (&result);
    json_t *numbers = json_pack ("{s:{s:{s:s, s:i}}}", "intent", "slots", "q", "\"quoted\"", "n", 7);
    s_build (tool, numbers, &url, &body, &result);
    assert (streq (url, "http://h/x"));
    assert (streq (body, "{\"q\":\"\\\"quoted\\\"\",\"n\":[7,\"{n} as text\",\"{nX\"],\"fixed\":2}"));
    free (url);
    free (body);
    json_decref (numbers);
    json_decref (context);
    gatherer_tools_destroy (&tools);
    if (verbose)
        printf ("gatherer_http: ok\n");
}
