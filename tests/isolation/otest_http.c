/* otest's HTTP client: each exchange with the orchestrator is one libcurl call in an actor of its
   own, whose answer comes back as one message read by the test's loop. */
#include "otest.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cv_alloc.h"

/*  --------------------------------------------------------------------------
    HTTP: each exchange is one libcurl call in an actor, answered as one message */

typedef struct {
    char *data;
    size_t size;
} buffer_t;

static size_t
s_curl_body (char *data, size_t size, size_t count, void *arg)
{
    buffer_t *buffer = arg;
    buffer->data = cv_realloc (buffer->data, buffer->size + size * count + 1);
    memcpy (buffer->data + buffer->size, data, size * count);
    buffer->size += size * count;
    buffer->data[buffer->size] = '\0';
    return size * count;
}

static size_t
s_curl_header (char *data, size_t size, size_t count, void *arg)
{
    char *retry_after = arg;
    size_t length = size * count;
    const char *name = "Retry-After:";
    if (length > strlen (name) && strncasecmp (data, name, strlen (name)) == 0) {
        const char *value = data + strlen (name);
        size_t value_length = length - strlen (name);
        while (value_length && (*value == ' ' || *value == '\t'))
            value++, value_length--;
        while (value_length && (value[value_length - 1] == '\r' || value[value_length - 1] == '\n'))
            value_length--;
        snprintf (retry_after, 64, "+%.*s", (int) value_length, value); /* '+': the header was there */
    }
    return length;
}

/* The exchange's thread: sends [status, "+Retry-After" or "", body] and waits for $TERM. */
static void
s_http_actor (zsock_t *pipe, void *args)
{
    const otest_call_t *call = args;
    zsock_signal (pipe, 0);
    CURL *curl = curl_easy_init ();
    assert (curl);
    buffer_t body = {NULL, 0};
    char retry_after[64] = "";
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (curl, CURLOPT_URL, call->url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, call->method);
    curl_easy_setopt (curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) 2 * OTEST_WAIT_MS);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    if (call->body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_curl_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_curl_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, retry_after);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstrf (msg, "%ld", status);
    zmsg_addstr (msg, retry_after);
    zmsg_addstr (msg, rc == CURLE_OK ? (body.data ? body.data : "") : curl_easy_strerror (rc));
    zmsg_send (&msg, pipe);
    free (body.data);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
    }
}

static int
s_http_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    otest_call_t *call = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    char *status = zmsg_popstr (msg);
    char *retry_after = zmsg_popstr (msg);
    call->text = zmsg_popstr (msg);
    assert (status && retry_after && call->text);
    call->status = atol (status);
    if (*retry_after)
        call->retry_after = cv_strdup (retry_after + 1);
    json_error_t error;
    call->document = json_loads (call->text, 0, &error);
    zstr_free (&status);
    zstr_free (&retry_after);
    zmsg_destroy (&msg);
    call->answered = true;
    zloop_reader_end (loop, reader);
    return otest_waited (call->test) ? -1 : 0;
}

/* Starts an HTTP exchange with the orchestrator; body (JSON text) may be NULL. */
otest_call_t *
otest_http (otest_t *test, const char *method, const char *path, const char *body)
{
    otest_call_t *call = cv_calloc (1, sizeof *call);
    call->test = test;
    call->method = cv_strdup (method);
    call->url = zsys_sprintf ("http://127.0.0.1:%d%s", test->http_port, path);
    call->body = body ? cv_strdup (body) : NULL;
    call->actor = zactor_new (s_http_actor, call);
    int rc = zloop_reader (test->loop, zactor_sock (call->actor), s_http_readable, call);
    assert (rc == 0);
    return call;
}

otest_call_t *
otest_post (otest_t *test, const char *user_id, const char *text, const char *idempotency_key)
{
    json_t *body = json_pack ("{s:s, s:s}", "user_id", user_id, "text", text);
    if (idempotency_key)
        json_object_set_new (body, "idempotency_key", json_string (idempotency_key));
    char *json = json_dumps (body, JSON_COMPACT);
    otest_call_t *call = otest_http (test, "POST", "/v1/requests", json);
    free (json);
    json_decref (body);
    return call;
}

static bool
s_call_answered (void *test, const void *arg)
{
    return ((const otest_call_t *) arg)->answered;
}

/* Waits for the answer and checks it has status. A 503 of the API must say when to retry. */
void
otest_http_expect (otest_call_t *call, long status)
{
    cv_assert_that (otest_run_until (call->test, s_call_answered, call, OTEST_WAIT_MS), "%s %s: no answer in %d ms",
                    call->method, call->url, OTEST_WAIT_MS);
    cv_assert_that (call->status == status, "%s %s: expected %ld, got %ld: %s", call->method, call->url, status,
                    call->status, call->text);
    cv_assert_that (!(call->status == 503 && strstr (call->url, "/v1/") && !call->retry_after),
                    "%s %s: a 503 without Retry-After: %s", call->method, call->url, call->text);
}

void
otest_http_destroy (otest_call_t **call_p)
{
    otest_call_t *call = *call_p;
    if (!call)
        return;
    if (!call->answered)
        zloop_reader_end (call->test->loop, zactor_sock (call->actor));
    zactor_destroy (&call->actor);
    free (call->method);
    free (call->url);
    free (call->body);
    free (call->retry_after);
    free (call->text);
    json_decref (call->document);
    free (call);
    *call_p = NULL;
}

/* The answer's request_id (borrowed from its document). */
const char *
otest_request_id (const otest_call_t *call)
{
    const char *id = otest_text_at (call->document, "request_id");
    assert (id);
    return id;
}

/* Checks a 200 for a request the fakes answered well: done, with the responder's reply. */
void
otest_expect_done (const otest_call_t *call)
{
    const char *id = otest_request_id (call);
    otest_expect_streq ("status", otest_text_at (call->document, "status"), "done");
    char *reply = otest_reply_text (id);
    otest_expect_streq ("reply.text", otest_text_at (call->document, "reply.text"), reply);
    zstr_free (&reply);
}

void
otest_expect_stage_failed (const otest_call_t *call, int stage, const char *fragment)
{
    const char *id = otest_request_id (call);
    otest_expect_streq ("status", otest_text_at (call->document, "status"), "stage_failed");
    otest_expect_streq ("failed_stage", otest_text_at (call->document, "failed_stage"), otest_stages[stage]);
    otest_expect_contains ("error.message", otest_text_at (call->document, "error.message"), fragment);
    char *reply = otest_reply_text (id);
    otest_expect_streq ("reply.text", otest_text_at (call->document, "reply.text"), reply);
    zstr_free (&reply);
}

void
otest_expect_error (const otest_call_t *call, const char *code)
{
    otest_expect_streq ("error.code", otest_text_at (call->document, "error.code"), code);
}

/* The readiness check the wait runs, one exchange at a time: true once one answers 200. */
static bool
s_readyz_passes (void *test_arg, const void *arg)
{
    otest_t *test = test_arg;
    otest_call_t **call = (otest_call_t **) arg;
    if (*call && (*call)->answered && (*call)->status == 200)
        return true;
    if (*call && (*call)->answered)
        otest_http_destroy (call);
    if (!*call)
        *call = otest_http (test, "GET", "/readyz", NULL);
    return false;
}

/* Waits until /readyz says the orchestrator is ready (PostgreSQL up, every service connected), as
   a deployment's readiness probe does. */
void
otest_wait_ready (otest_t *test)
{
    otest_call_t *call = NULL;
    bool ready = otest_run_until (test, s_readyz_passes, &call, OTEST_WAIT_MS);
    assert (ready);
    otest_http_destroy (&call);
}
