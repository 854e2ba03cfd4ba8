/* The stand-in LLM server: libmicrohttpd, one thread per connection, answers scripted by the test.
   The script (fake_llm_script.c) says what to answer, the answers are worded in fake_llm_reply.c and
   what arrives is kept in fake_llm_journal.c; this file listens, reads each request, carries out
   its step's behaviour (waiting, hanging, dropping the connection) and serves the /_fake/ paths. */
#include "fake_llm.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_buffer.h"
#include "cv_mhd_stop.h"
#include "fake_llm_journal.h"
#include "fake_llm_reply.h"
#include "fake_llm_script.h"

#define MAX_BODY (4 * 1024 * 1024)
#define CHAT_PATH "/v1/chat/completions"
#define TRACES_PATH "/v1/traces" /* an OTLP/HTTP collector's: the stand-in takes traces too */
#define CONTROL_PREFIX "/_fake/"

/* A request's body, as it arrives. */
typedef struct {
    cv_buffer_t body;
    bool too_large;
} s_upload_t;

struct _fake_llm_t {
    struct MHD_Daemon *daemon;
    int port;
    char base_url[64];
    bool verbose;
    cv_mhd_stop_t *stop; /* raised at stop: wakes every waiting answer */
    fake_llm_script_t *script;
    fake_llm_journal_t *journal;
    atomic_ulong served; /* chat completions answered, for their ids */
};

/* ---------------------------------------------------------------------------------------------
   Answering a request */

static void
s_record (fake_llm_t *self, struct MHD_Connection *connection, const char *method, const char *url,
          const s_upload_t *upload, json_t *body, const fake_llm_step_t *step)
{
    const char *authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Authorization");
    json_t *raw =
        body ? json_deep_copy (body) : json_stringn (upload->body.data ? upload->body.data : "", upload->body.size);
    json_t *model = json_object_get (body, "model");
    json_t *messages = json_object_get (body, "messages");
    const char *mode = step ? fake_llm_mode_name (step->mode) : NULL;
    json_t *record = json_pack ("{s:s, s:s, s:o?, s:o?, s:O?, s:O?, s:s?}", "method", method, "path", url,
                                "authorization", authorization ? json_string (authorization) : NULL, "body", raw,
                                "model", json_is_string (model) ? model : NULL, "messages",
                                json_is_array (messages) ? messages : NULL, "step", mode);
    assert (record);
    fake_llm_journal_add (self->journal, record);
    if (self->verbose)
        fprintf (stderr, "fake-llm: %s %s -> %s\n", method, url, mode ? mode : "-");
}

/* The body of an answer with content, as the request wants it (malloc'd): one JSON completion, or
   server-sent events (complete false: cut off part way); *type its Content-Type. */
static char *
s_answer_text (fake_llm_t *self, json_t *request, const fake_llm_step_t *step, const char *content, bool complete,
               const char **type)
{
    unsigned long serial = atomic_fetch_add (&self->served, 1) + 1;
    json_t *completion = fake_llm_reply_completion (request, step, content, serial);
    bool stream = fake_llm_reply_wants_stream (request);
    char *text = stream ? fake_llm_reply_events (request, completion, complete) : json_dumps (completion, JSON_COMPACT);
    json_decref (completion);
    assert (text);
    *type = stream ? "text/event-stream" : "application/json";
    return text;
}

static enum MHD_Result
s_completion (fake_llm_t *self, struct MHD_Connection *connection, json_t *request, const fake_llm_step_t *step,
              const char *content, bool complete)
{
    const char *type;
    char *text = s_answer_text (self, request, step, content, complete, &type);
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result result = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return result;
}

/* A slow_body answer's body, held back: the status line and headers go at once, and the first
   call for the body waits delay_ms (in the connection's thread, as the slow mode's wait). */
typedef struct {
    cv_mhd_stop_t *stop;
    struct MHD_Connection *connection;
    long delay_ms;
    bool waited;
    size_t size;
    char text[];
} s_late_body_t;

static ssize_t
s_late_body_read (void *cls, uint64_t position, char *buffer, size_t max)
{
    s_late_body_t *late = cls;
    if (!late->waited) {
        if (!cv_mhd_stop_wait (late->stop, late->connection, late->delay_ms))
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the client went away, or the server stops */
        late->waited = true;
    }
    if (position >= late->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t bytes = late->size - (size_t) position < max ? late->size - (size_t) position : max;
    memcpy (buffer, late->text + position, bytes);
    return (ssize_t) bytes;
}

static enum MHD_Result
s_late_completion (fake_llm_t *self, struct MHD_Connection *connection, json_t *request, const fake_llm_step_t *step)
{
    const char *type;
    char *text = s_answer_text (self, request, step, step->text ? step->text : "ok", true, &type);
    size_t size = strlen (text);
    s_late_body_t *late = cv_malloc (sizeof *late + size);
    *late = (s_late_body_t){.stop = self->stop, .connection = connection, .delay_ms = step->delay_ms, .size = size};
    memcpy (late->text, text, size);
    free (text);
    /* The size is known, so MHD sends Content-Length with the headers, before it asks for the body. */
    struct MHD_Response *response = MHD_create_response_from_callback (size, 4096, s_late_body_read, late, free);
    MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result result = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return result;
}

/* Carries out the step's behaviour for a well-formed chat request. */
static enum MHD_Result
s_chat (fake_llm_t *self, struct MHD_Connection *connection, json_t *request, const fake_llm_step_t *step)
{
    switch (step->mode) {
    case FAKE_LLM_SLOW:
        if (!cv_mhd_stop_wait (self->stop, connection, step->delay_ms))
            return MHD_NO;
        if (step->status && step->status != 200)
            return fake_llm_reply_send (connection, step->status, step->text ? step->text : FAKE_LLM_FAILURE_BODY,
                                        step->retry_after, step->retry_after_ms);
        return s_completion (self, connection, request, step, step->text ? step->text : "ok", true);
    case FAKE_LLM_OK:
        return s_completion (self, connection, request, step, step->text ? step->text : "ok", true);
    case FAKE_LLM_STREAM_CUT:
        if (!fake_llm_reply_wants_stream (request))
            return MHD_NO;
        return s_completion (self, connection, request, step, step->text ? step->text : "ok", false);
    case FAKE_LLM_SLOW_BODY:
        return s_late_completion (self, connection, request, step);
    case FAKE_LLM_STATUS:
        return fake_llm_reply_send (connection, step->status ? step->status : 500,
                                    step->text ? step->text : FAKE_LLM_FAILURE_BODY, step->retry_after,
                                    step->retry_after_ms);
    case FAKE_LLM_MALFORMED:
        return fake_llm_reply_send (connection, 200, step->text ? step->text : "this is not JSON", NULL, 0);
    case FAKE_LLM_HANG:
        cv_mhd_stop_wait (self->stop, connection, -1);
        return MHD_NO;
    case FAKE_LLM_CLOSE:
        return MHD_NO;
    case FAKE_LLM_INTENT: {
        char *content = fake_llm_script_intent (self->script, json_object_get (request, "messages"));
        enum MHD_Result result = s_completion (self, connection, request, step, content, true);
        free (content);
        return result;
    }
    }
    return MHD_NO;
}

/* The /_fake/ paths: scripting over HTTP, for the binary. */
static enum MHD_Result
s_control (fake_llm_t *self, struct MHD_Connection *connection, const char *url, const char *method,
           const s_upload_t *upload)
{
    char error[256] = "";
    const char *path = url + strlen (CONTROL_PREFIX);
    char *text = cv_strndup (upload->body.data ? upload->body.data : "", upload->body.size);
    int rc = 0;
    if (strcmp (path, "steps") == 0 && strcmp (method, "POST") == 0)
        rc = fake_llm_push_json (self, text, error, sizeof error);
    else if (strcmp (path, "default") == 0 && strcmp (method, "PUT") == 0)
        rc = fake_llm_set_default_json (self, text, error, sizeof error);
    else if (strcmp (path, "intents") == 0 && strcmp (method, "POST") == 0) {
        json_t *map = json_loads (text, 0, NULL);
        const char *keyword;
        json_t *label;
        json_object_foreach (map, keyword, label) {
            if (!json_is_string (label)) {
                snprintf (error, sizeof error, "intent labels must be strings");
                rc = -1;
                break;
            }
        }
        if (!json_is_object (map)) {
            snprintf (error, sizeof error, "intents must be a JSON object of keyword: label");
            rc = -1;
        }
        if (rc == 0)
            json_object_foreach (map, keyword, label)
                fake_llm_add_intent (self, keyword, json_string_value (label));
        json_decref (map);
    } else if (strcmp (path, "requests") == 0 && strcmp (method, "GET") == 0) {
        free (text);
        return fake_llm_reply_json (connection, 200, fake_llm_journal_all (self->journal));
    } else if (strcmp (path, "reset") == 0 && strcmp (method, "POST") == 0)
        fake_llm_reset (self);
    else {
        free (text);
        return fake_llm_reply_error (connection, 404, "not_found", "no such control path");
    }
    free (text);
    if (rc)
        return fake_llm_reply_error (connection, 400, "invalid_request_error", error);
    json_int_t pending = (json_int_t) fake_llm_pending (self);
    return fake_llm_reply_json (connection, 200, json_pack ("{s:b, s:I}", "ok", 1, "pending", pending));
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    fake_llm_t *self = cls;
    s_upload_t *upload = *con_cls;
    if (!upload) {
        upload = cv_calloc (1, sizeof *upload);
        *con_cls = upload;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cv_buffer_append (&upload->body, upload_data, *upload_data_size, MAX_BODY))
            upload->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strncmp (url, CONTROL_PREFIX, strlen (CONTROL_PREFIX)) == 0)
        return s_control (self, connection, url, method, upload);

    json_t *request = upload->body.size ? json_loadb (upload->body.data, upload->body.size, 0, NULL) : NULL;
    bool is_chat = strcmp (url, CHAT_PATH) == 0 && strcmp (method, "POST") == 0;
    bool well_formed = json_is_object (request) && json_is_array (json_object_get (request, "messages"));
    fake_llm_taken_t *taken = is_chat && well_formed && !upload->too_large ? fake_llm_script_take (self->script) : NULL;
    const fake_llm_step_t *step = taken ? fake_llm_taken_step (taken) : NULL;
    s_record (self, connection, method, url, upload, request, step);
    enum MHD_Result result;
    if (strcmp (url, TRACES_PATH) == 0 && strcmp (method, "POST") == 0) /* the collector's: recorded, taken */
        result = fake_llm_reply_json (connection, 200, json_object ()); /* OTLP: {} is a full success */
    else if (strcmp (url, CHAT_PATH) != 0)
        result = fake_llm_reply_error (connection, 404, "not_found", "no such path");
    else if (!is_chat)
        result = fake_llm_reply_error (connection, 405, "invalid_request_error", "use POST");
    else if (upload->too_large)
        result = fake_llm_reply_error (connection, 413, "invalid_request_error", "the body is too large");
    else if (!well_formed)
        result = fake_llm_reply_error (connection, 400, "invalid_request_error",
                                       "the body must be a JSON object with a messages list");
    else
        result = s_chat (self, connection, request, step);
    fake_llm_taken_destroy (&taken);
    json_decref (request);
    return result;
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls, enum MHD_RequestTerminationCode code)
{
    s_upload_t *upload = *con_cls;
    if (!upload)
        return;
    cv_buffer_release (&upload->body);
    free (upload);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------------------------------------
   The server */

fake_llm_t *
fake_llm_new (int port, bool verbose)
{
    assert (port >= 0 && port <= 65535);
    fake_llm_t *self = cv_calloc (1, sizeof *self);
    self->verbose = verbose;
    self->stop = cv_mhd_stop_new ();
    if (!self->stop) {
        free (self);
        return NULL;
    }
    self->script = fake_llm_script_new ();
    self->journal = fake_llm_journal_new ();
    atomic_init (&self->served, 0);
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons ((uint16_t) port), .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    self->daemon = MHD_start_daemon (
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | (verbose ? MHD_USE_ERROR_LOG : 0), 0, NULL, NULL,
        s_access, self, MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 256, MHD_OPTION_END);
    if (!self->daemon) {
        fake_llm_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    snprintf (self->base_url, sizeof self->base_url, "http://127.0.0.1:%d/v1", self->port);
    return self;
}

void
fake_llm_destroy (fake_llm_t **self_p)
{
    assert (self_p);
    fake_llm_t *self = *self_p;
    if (!self)
        return;
    /* Wake every waiting answer first: MHD then joins the connection threads. */
    cv_mhd_stop_raise (self->stop);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    cv_mhd_stop_destroy (&self->stop);
    fake_llm_script_destroy (&self->script);
    fake_llm_journal_destroy (&self->journal);
    free (self);
    *self_p = NULL;
}

int
fake_llm_port (const fake_llm_t *self)
{
    assert (self);
    return self->port;
}

const char *
fake_llm_base_url (const fake_llm_t *self)
{
    assert (self);
    return self->base_url;
}

void
fake_llm_push (fake_llm_t *self, const fake_llm_step_t *step)
{
    assert (self && step);
    fake_llm_script_push (self->script, step);
}

void
fake_llm_set_default (fake_llm_t *self, const fake_llm_step_t *step)
{
    assert (self && step);
    fake_llm_script_set_default (self->script, step);
}

int
fake_llm_push_json (fake_llm_t *self, const char *text, char *error, size_t size)
{
    assert (self && text);
    return fake_llm_script_load (self->script, text, false, error, size);
}

int
fake_llm_set_default_json (fake_llm_t *self, const char *text, char *error, size_t size)
{
    assert (self && text);
    return fake_llm_script_load (self->script, text, true, error, size);
}

void
fake_llm_add_intent (fake_llm_t *self, const char *keyword, const char *label)
{
    assert (self);
    fake_llm_script_add_intent (self->script, keyword, label);
}

size_t
fake_llm_pending (fake_llm_t *self)
{
    assert (self);
    return fake_llm_script_pending (self->script);
}

size_t
fake_llm_request_count (fake_llm_t *self)
{
    assert (self);
    return fake_llm_journal_count (self->journal);
}

bool
fake_llm_wait_requests (fake_llm_t *self, size_t count, int timeout_ms)
{
    assert (self);
    return fake_llm_journal_wait (self->journal, count, timeout_ms);
}

json_t *
fake_llm_request (fake_llm_t *self, size_t index)
{
    assert (self);
    return fake_llm_journal_get (self->journal, index);
}

void
fake_llm_reset (fake_llm_t *self)
{
    assert (self);
    fake_llm_script_reset (self->script);
    fake_llm_journal_clear (self->journal);
}

/* ---------------------------------------------------------------------------------------------
   Self-test: the fake as a raw HTTP client sees it (libcurl directly, on purpose: cv_llm's own
   behaviour against the fake is tested in llm_client_test.c). */

typedef struct {
    CURLcode code;
    long status;
    cv_buffer_t received;
    const char *body; /* received's text, "" when nothing came */
    char retry_after[32];
    char retry_after_ms[32];
    curl_off_t first_byte_us; /* when the answer's first byte came, from the start */
    curl_off_t total_us;      /* and its last */
} s_http_t;

static size_t
s_http_body (char *data, size_t size, size_t count, void *arg)
{
    s_http_t *http = arg;
    size_t bytes = size * count;
    return cv_buffer_append (&http->received, data, bytes, MAX_BODY) ? bytes : 0;
}

static size_t
s_http_header (char *data, size_t size, size_t count, void *arg)
{
    s_http_t *http = arg;
    size_t bytes = size * count;
    if (bytes > 13 && strncasecmp (data, "Retry-After: ", 13) == 0)
        snprintf (http->retry_after, sizeof http->retry_after, "%.*s", (int) strcspn (data + 13, "\r\n"), data + 13);
    if (bytes > 16 && strncasecmp (data, "retry-after-ms: ", 16) == 0)
        snprintf (http->retry_after_ms, sizeof http->retry_after_ms, "%.*s", (int) strcspn (data + 16, "\r\n"),
                  data + 16);
    return bytes;
}

/* One request on a fresh connection; http's last answer is freed first. */
static void
s_http (const fake_llm_t *fake, const char *method, const char *path, const char *body, long timeout_ms, s_http_t *http)
{
    cv_buffer_release (&http->received);
    memset (http, 0, sizeof *http);
    char url[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", fake->port, path);
    CURL *curl = curl_easy_init ();
    assert (curl);
    struct curl_slist *headers = curl_slist_append (NULL, "Authorization: Bearer test-key");
    headers = curl_slist_append (headers, "Content-Type: application/json");
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_http_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, http);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_http_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, http);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    http->code = curl_easy_perform (curl);
    http->body = http->received.data ? http->received.data : "";
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &http->status);
    curl_easy_getinfo (curl, CURLINFO_STARTTRANSFER_TIME_T, &http->first_byte_us);
    curl_easy_getinfo (curl, CURLINFO_TOTAL_TIME_T, &http->total_us);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
}

static json_t *
s_content (const s_http_t *http)
{
    json_t *answer = json_loads (http->body, 0, NULL);
    json_t *choice = json_array_get (json_object_get (answer, "choices"), 0);
    json_t *content = json_object_get (json_object_get (choice, "message"), "content");
    json_t *result = json_is_string (content) ? json_incref (content) : NULL;
    json_decref (answer);
    return result;
}

typedef struct {
    fake_llm_t *fake;
    s_http_t http;
} s_client_t;

static void *
s_hanging_client (void *arg)
{
    s_client_t *client = arg;
    s_http (client->fake, "POST", CHAT_PATH, "{\"model\":\"m\",\"messages\":[]}", 60000, &client->http);
    return NULL;
}

void
fake_llm_test (bool verbose)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    fake_llm_t *fake = fake_llm_new (0, verbose);
    assert (fake);
    assert (fake_llm_port (fake) > 0);
    char expected_url[64];
    snprintf (expected_url, sizeof expected_url, "http://127.0.0.1:%d/v1", fake_llm_port (fake));
    assert (strcmp (fake_llm_base_url (fake), expected_url) == 0);
    const char *chat = "{\"model\":\"small\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"Where is my CARD?\"}]}";
    s_http_t http = {0};

    /* The default: ok, with the requested model and estimated usage; the request is recorded. */
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.code == CURLE_OK && http.status == 200);
    json_t *content = s_content (&http);
    assert (content && strcmp (json_string_value (content), "ok") == 0);
    json_decref (content);
    json_t *answer = json_loads (http.body, 0, NULL);
    assert (strcmp (json_string_value (json_object_get (answer, "model")), "small") == 0);
    assert (json_integer_value (json_object_get (json_object_get (answer, "usage"), "prompt_tokens")) > 0);
    json_decref (answer);
    assert (fake_llm_request_count (fake) == 1);
    json_t *record = fake_llm_request (fake, 0);
    assert (strcmp (json_string_value (json_object_get (record, "path")), CHAT_PATH) == 0);
    assert (strcmp (json_string_value (json_object_get (record, "authorization")), "Bearer test-key") == 0);
    assert (strcmp (json_string_value (json_object_get (record, "model")), "small") == 0);
    assert (json_array_size (json_object_get (record, "messages")) == 2);
    assert (strcmp (json_string_value (json_object_get (record, "step")), "ok") == 0);
    json_decref (record);
    assert (!fake_llm_request (fake, 1));

    /* Steps in order: ok with exact usage, status with Retry-After, malformed, slow. */
    fake_llm_push (
        fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "hello", .prompt_tokens = 7, .completion_tokens = 3});
    fake_llm_push (
        fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 429, .retry_after = "2", .retry_after_ms = 150});
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED});
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = "{\"object\":\"chat.completion\"}"});
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_SLOW, .delay_ms = 20, .text = "late"});
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .no_usage = true});
    assert (fake_llm_pending (fake) == 6);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    answer = json_loads (http.body, 0, NULL);
    assert (json_integer_value (json_object_get (json_object_get (answer, "usage"), "prompt_tokens")) == 7);
    assert (json_integer_value (json_object_get (json_object_get (answer, "usage"), "total_tokens")) == 10);
    json_decref (answer);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 429 && strcmp (http.retry_after, "2") == 0 && strcmp (http.retry_after_ms, "150") == 0);
    assert (strstr (http.body, "\"error\""));
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 200 && strcmp (http.body, "this is not JSON") == 0);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 200 && strcmp (http.body, "{\"object\":\"chat.completion\"}") == 0);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    content = s_content (&http);
    assert (content && strcmp (json_string_value (content), "late") == 0);
    json_decref (content);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 200 && !strstr (http.body, "usage"));
    assert (fake_llm_pending (fake) == 0);

    /* slow_body: the status line and headers at once, the body delay_ms later. The gap between
       the first byte and the last is the fake's wait, whatever the scheduler did before it. */
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_SLOW_BODY, .delay_ms = 800, .text = "late body"});
    s_http (fake, "POST", CHAT_PATH, chat, 10000, &http);
    assert (http.code == CURLE_OK && http.status == 200);
    content = s_content (&http);
    assert (content && strcmp (json_string_value (content), "late body") == 0);
    json_decref (content);
    if (verbose)
        printf ("  slow_body: first byte at %lld us, last at %lld us\n", (long long) http.first_byte_us,
                (long long) http.total_us);
    assert (http.total_us >= 800000 && http.total_us - http.first_byte_us >= 400000);

    /* close drops the connection; hang holds it until the client gives up; the fake serves on. */
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_CLOSE});
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.code == CURLE_GOT_NOTHING);
    s_http (fake, "POST", CHAT_PATH, chat, 200, &http);
    assert (http.code == CURLE_OPERATION_TIMEDOUT);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.code == CURLE_OK && http.status == 200);

    /* Bad requests take no step; other paths are 404, and recorded. */
    fake_llm_push (fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    s_http (fake, "POST", CHAT_PATH, "{\"model\":\"m\"}", 5000, &http);
    assert (http.status == 400);
    s_http (fake, "POST", CHAT_PATH, "not json", 5000, &http);
    assert (http.status == 400);
    s_http (fake, "GET", "/v1/models", NULL, 5000, &http);
    assert (http.status == 404);
    assert (fake_llm_pending (fake) == 1);
    size_t count = fake_llm_request_count (fake);
    record = fake_llm_request (fake, count - 2);
    assert (strcmp (json_string_value (json_object_get (record, "body")), "not json") == 0);
    assert (json_is_null (json_object_get (record, "step")));
    json_decref (record);

    /* The intent chooser: the first keyword found in the last user message. */
    fake_llm_reset (fake);
    assert (fake_llm_request_count (fake) == 0 && fake_llm_pending (fake) == 0);
    fake_llm_set_default (fake, &(fake_llm_step_t){.mode = FAKE_LLM_INTENT});
    fake_llm_add_intent (fake, "card", "card_arrival");
    fake_llm_add_intent (fake, "refund", "request_refund");
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    content = s_content (&http);
    assert (content && strcmp (json_string_value (content), "{\"intent\":\"card_arrival\"}") == 0);
    json_decref (content);
    s_http (fake, "POST", CHAT_PATH, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", 5000, &http);
    content = s_content (&http);
    assert (content && strcmp (json_string_value (content), "{\"intent\":\"unknown\"}") == 0);
    json_decref (content);

    /* Scripting over HTTP, as the binary is scripted. */
    fake_llm_reset (fake);
    s_http (fake, "POST", "/_fake/steps", "[{\"mode\":\"status\",\"status\":503},{\"mode\":\"ok\",\"content\":\"x\"}]",
            5000, &http);
    assert (http.status == 200 && fake_llm_pending (fake) == 2);
    s_http (fake, "POST", "/_fake/steps", "{\"mode\":\"teleport\"}", 5000, &http);
    assert (http.status == 400 && strstr (http.body, "mode must be"));
    s_http (fake, "POST", "/_fake/steps", "{\"mode\":\"ok\",\"colour\":\"red\"}", 5000, &http);
    assert (http.status == 400 && strstr (http.body, "unknown step key colour"));
    s_http (fake, "PUT", "/_fake/default", "{\"mode\":\"intent\"}", 5000, &http);
    assert (http.status == 200);
    s_http (fake, "POST", "/_fake/intents", "{\"refund\":\"request_refund\"}", 5000, &http);
    assert (http.status == 200);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 503);
    s_http (fake, "POST", CHAT_PATH, chat, 5000, &http);
    assert (http.status == 200);
    s_http (fake, "POST", CHAT_PATH, "{\"messages\":[{\"role\":\"user\",\"content\":\"a REFUND please\"}]}", 5000,
            &http);
    assert (strstr (http.body, "request_refund"));
    s_http (fake, "GET", "/_fake/requests", NULL, 5000, &http);
    json_t *records = json_loads (http.body, 0, NULL);
    assert (json_array_size (records) == 3 && fake_llm_request_count (fake) == 3);
    json_decref (records);
    s_http (fake, "POST", "/_fake/reset", "", 5000, &http);
    assert (http.status == 200 && fake_llm_request_count (fake) == 0);

    /* Stopping while a request hangs returns, and the client sees the connection end. */
    fake_llm_set_default (fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});
    s_client_t client = {.fake = fake};
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_hanging_client, &client) == 0);
    assert (fake_llm_wait_requests (fake, 1, 10000));
    fake_llm_destroy (&fake);
    assert (!fake);
    pthread_join (thread, NULL);
    assert (client.http.code != CURLE_OK && client.http.code != CURLE_OPERATION_TIMEDOUT);
    cv_buffer_release (&client.http.received);
    cv_buffer_release (&http.received);
    fake_llm_destroy (&fake);
    curl_global_cleanup ();
    if (verbose)
        printf ("fake_llm: ok\n");
}
