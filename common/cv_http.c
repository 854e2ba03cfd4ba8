/* An HTTP client on a zloop: libcurl's multi-socket interface mapped onto the loop's pollers and
   one timer. */
#include "cv_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_buffer.h"

/* A socket libcurl asked the loop to watch. */
typedef struct {
    zmq_pollitem_t item; /* as registered with the loop */
    void *handle;        /* its place in the client's sockets */
} s_socket_t;

struct _cv_http_call_t {
    cv_http_t *client;
    void *handle; /* its place in client->calls */
    CURL *easy;   /* NULL when it failed before reaching libcurl */
    bool added;   /* easy is in the multi handle */
    struct curl_slist *headers;
    size_t max_body;
    cv_buffer_t received;
    bool too_large;
    char **wanted; /* the answer headers asked for, and what came for each */
    char **values;
    size_t wanted_count;
    cv_http_done_fn *done;
    void *arg;
    cv_http_outcome_t outcome;
    int timer; /* delivers an outcome known inside cv_http_start; -1 */
    char error[CURL_ERROR_SIZE + 64];
    char curl_error[CURL_ERROR_SIZE];
};

struct _cv_http_t {
    zloop_t *loop;
    CURLM *multi;
    int timer;         /* libcurl's next timeout, or -1 */
    zlistx_t *calls;   /* every call started and not yet heard of or forgotten */
    zlistx_t *sockets; /* s_socket_t, every socket watched */
};

/* libcurl's process-wide set-up, done once (cv_http_global_init). */
static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_code = CURLE_FAILED_INIT;

static void
s_curl_global (void)
{
    s_curl_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static void s_collect (cv_http_t *self);

/*  --------------------------------------------------------------------------
    libcurl's sockets and timeout on the loop */

static int
s_on_ready (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    cv_http_t *self = arg;
    int mask = ((item->revents & ZMQ_POLLIN) ? CURL_CSELECT_IN : 0)
               | ((item->revents & ZMQ_POLLOUT) ? CURL_CSELECT_OUT : 0)
               | ((item->revents & ZMQ_POLLERR) ? CURL_CSELECT_ERR : 0);
    int running = 0;
    curl_multi_socket_action (self->multi, item->fd, mask, &running);
    s_collect (self);
    return 0;
}

static void
s_unwatch (cv_http_t *self, s_socket_t *watched)
{
    if (watched->item.events)
        zloop_poller_end (self->loop, &watched->item);
    zlistx_delete (self->sockets, watched->handle);
    free (watched);
}

/* CURLMOPT_SOCKETFUNCTION: what to watch on fd, or to stop watching it. */
static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void) easy;
    cv_http_t *self = userp;
    s_socket_t *watched = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (watched)
            s_unwatch (self, watched);
        return 0;
    }
    if (!watched) {
        watched = cv_calloc (1, sizeof *watched);
        watched->handle = zlistx_add_end (self->sockets, watched);
        curl_multi_assign (self->multi, fd, watched);
    } else if (watched->item.events)
        zloop_poller_end (self->loop, &watched->item);
    short events = (short) (((what & CURL_POLL_IN) ? ZMQ_POLLIN : 0) | ((what & CURL_POLL_OUT) ? ZMQ_POLLOUT : 0));
    watched->item = (zmq_pollitem_t){.socket = NULL, .fd = fd, .events = events};
    if (events) {
        int rc = zloop_poller (self->loop, &watched->item, s_on_ready, self);
        assert (rc == 0);
        zloop_poller_set_tolerant (self->loop, &watched->item); /* a broken socket is libcurl's to report */
    }
    return 0;
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    cv_http_t *self = arg;
    self->timer = -1; /* a one-off timer ends itself; libcurl may set the next one now */
    int running = 0;
    curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_collect (self);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl next wants to hear from the loop (-1: never). */
static int
s_on_timeout (CURLM *multi, long timeout_ms, void *userp)
{
    (void) multi;
    cv_http_t *self = userp;
    if (self->timer >= 0)
        zloop_timer_end (self->loop, self->timer);
    self->timer = -1;
    if (timeout_ms >= 0) {
        self->timer = zloop_timer (self->loop, (size_t) timeout_ms, 1, s_on_timer, self);
        assert (self->timer >= 0);
    }
    return 0;
}

/*  --------------------------------------------------------------------------
    Calls */

static void
s_end_timer (cv_http_t *self, int *timer)
{
    if (*timer >= 0)
        zloop_timer_end (self->loop, *timer);
    *timer = -1;
}

static void
s_call_destroy (cv_http_call_t **call_p)
{
    cv_http_call_t *call = *call_p;
    cv_http_t *self = call->client;
    s_end_timer (self, &call->timer);
    if (call->added)
        curl_multi_remove_handle (self->multi, call->easy);
    if (call->easy)
        curl_easy_cleanup (call->easy);
    curl_slist_free_all (call->headers);
    cv_buffer_release (&call->received);
    for (size_t i = 0; i < call->wanted_count; i++) {
        free (call->wanted[i]);
        free (call->values[i]);
    }
    free (call->wanted);
    free (call->values);
    zlistx_delete (self->calls, call->handle);
    free (call);
    *call_p = NULL;
}

/* Tells the caller and forgets the call. */
static void
s_deliver (cv_http_call_t *call)
{
    s_end_timer (call->client, &call->timer);
    call->outcome.finished_us = zclock_usecs ();
    if (call->outcome.result == CV_HTTP_ANSWERED) {
        call->outcome.body = call->received.data ? call->received.data : "";
        call->outcome.body_size = call->received.size;
        call->outcome.answer_headers = (const char *const *) call->values;
        call->outcome.error = "";
    } else {
        call->outcome.body = "";
        call->outcome.error = call->error;
    }
    call->done (call->arg, &call->outcome);
    s_call_destroy (&call);
}

static int
s_deliver_later (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    cv_http_call_t *call = arg;
    call->timer = -1;
    s_deliver (call);
    return 0;
}

/* An outcome known inside cv_http_start: delivered from the loop, at once. */
static void
s_fail_later (cv_http_call_t *call, cv_http_result_t result, const char *why)
{
    call->outcome.result = result;
    snprintf (call->error, sizeof call->error, "%s", why);
    call->timer = zloop_timer (call->client->loop, 0, 1, s_deliver_later, call);
    assert (call->timer >= 0);
}

/* How a transfer that libcurl finished with code ended, as the caller sees it. */
static cv_http_result_t
s_result (cv_http_call_t *call, CURLcode code)
{
    if (code == CURLE_OK)
        return CV_HTTP_ANSWERED;
    if (call->too_large || code == CURLE_FILESIZE_EXCEEDED)
        return CV_HTTP_TOO_LARGE;
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return CV_HTTP_REFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return CV_HTTP_TIMEOUT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return CV_HTTP_CLOSED;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return CV_HTTP_MALFORMED;
    case CURLE_UNSUPPORTED_PROTOCOL: {
        /* also what an answer that is not HTTP at all gives (HTTP/0.9 is refused): malformed
           once the request went out, a scheme libcurl will not speak otherwise */
        long sent = 0;
        curl_easy_getinfo (call->easy, CURLINFO_REQUEST_SIZE, &sent);
        return sent > 0 ? CV_HTTP_MALFORMED : CV_HTTP_FAILED;
    }
    default:
        return CV_HTTP_FAILED;
    }
}

/* libcurl finished call's transfer with code: the caller hears of it. */
static void
s_finish (cv_http_call_t *call, CURLcode code)
{
    cv_http_outcome_t *outcome = &call->outcome;
    outcome->result = s_result (call, code);
    long connects = 0, sent = 0;
    curl_easy_getinfo (call->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo (call->easy, CURLINFO_REQUEST_SIZE, &sent);
    outcome->reused = connects == 0 && sent > 0; /* sent, over no connection of its own */
    if (outcome->result == CV_HTTP_ANSWERED || outcome->result == CV_HTTP_TOO_LARGE) {
        long status = 0;
        curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
        outcome->status = (int) status;
    }
    if (outcome->result == CV_HTTP_TOO_LARGE)
        snprintf (call->error, sizeof call->error, "HTTP %d with a response over %zu bytes", outcome->status,
                  call->max_body);
    else if (outcome->result != CV_HTTP_ANSWERED)
        snprintf (call->error, sizeof call->error, "%s: %s", cv_http_result_name (outcome->result),
                  call->curl_error[0] ? call->curl_error : curl_easy_strerror (code));
    curl_multi_remove_handle (call->client->multi, call->easy);
    call->added = false;
    s_deliver (call);
}

/* Hands every finished transfer's outcome to its caller. */
static void
s_collect (cv_http_t *self)
{
    CURLMsg *message;
    int left = 0;
    while ((message = curl_multi_info_read (self->multi, &left))) {
        if (message->msg != CURLMSG_DONE)
            continue;
        CURLcode code = message->data.result; /* message is gone once its handle is removed */
        cv_http_call_t *call = NULL;
        curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, (char **) &call);
        assert (call && call->easy == message->easy_handle);
        s_finish (call, code);
    }
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    cv_http_call_t *call = arg;
    size_t bytes = size * count;
    if (!cv_buffer_append (&call->received, data, bytes, call->max_body)) {
        call->too_large = true;
        return 0; /* ends the transfer: an oversized body is an error, never a truncation */
    }
    return bytes;
}

static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    cv_http_call_t *call = arg;
    size_t bytes = size * count;
    if (bytes >= 5 && memcmp (data, "HTTP/", 5) == 0) {
        /* a new answer's head (after a 100 Continue): only the last one's headers count */
        for (size_t i = 0; i < call->wanted_count; i++) {
            free (call->values[i]);
            call->values[i] = NULL;
        }
        return bytes;
    }
    const char *colon = memchr (data, ':', bytes);
    if (!colon)
        return bytes;
    size_t name_size = (size_t) (colon - data);
    for (size_t i = 0; i < call->wanted_count; i++) {
        if (strlen (call->wanted[i]) != name_size || strncasecmp (call->wanted[i], data, name_size) != 0)
            continue;
        const char *value = colon + 1;
        const char *end = data + bytes;
        while (value < end && (*value == ' ' || *value == '\t'))
            value++;
        while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        free (call->values[i]);
        call->values[i] = cv_strndup (value, (size_t) (end - value));
    }
    return bytes;
}

/* The easy handle for request, or NULL when libcurl refused one of its settings. */
static CURL *
s_easy (cv_http_call_t *call, const cv_http_request_t *request, int64_t now_us)
{
    CURL *easy = curl_easy_init ();
    if (!easy)
        return NULL;
    const char *method = request->method ? request->method : "GET";
    call->headers = curl_slist_append (NULL, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < request->header_count; i++)
        call->headers = curl_slist_append (call->headers, request->headers[i]);
    /* the whole request's limit in whole milliseconds, rounded up so it is never early */
    long limit_ms = (long) ((request->until_us - now_us + 999) / 1000);
    CURLcode code = CURLE_OK;
    code |= curl_easy_setopt (easy, CURLOPT_URL, request->url);
    code |= curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    code |= curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers);
    code |= curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    code |= curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
    code |= curl_easy_setopt (easy, CURLOPT_USERAGENT, "conveyor/" CONVEYOR_VERSION);
    code |= curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, limit_ms > 0 ? limit_ms : 1L);
    code |= curl_easy_setopt (easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) call->max_body);
    code |= curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_body);
    code |= curl_easy_setopt (easy, CURLOPT_WRITEDATA, call);
    code |= curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
    code |= curl_easy_setopt (easy, CURLOPT_HEADERDATA, call);
    code |= curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, call->curl_error);
    code |= curl_easy_setopt (easy, CURLOPT_PRIVATE, call);
    if (request->body) {
        code |= curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->body_size);
        code |= curl_easy_setopt (easy, CURLOPT_COPYPOSTFIELDS, request->body);
    }
    if (strcmp (method, "HEAD") == 0)
        code |= curl_easy_setopt (easy, CURLOPT_NOBODY, 1L);
    else if (strcmp (method, "GET") != 0 || request->body)
        code |= curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, method);
    if (code != CURLE_OK) {
        curl_easy_cleanup (easy);
        return NULL;
    }
    return easy;
}

/*  --------------------------------------------------------------------------
    The client */

int
cv_http_global_init (cv_error_t *err)
{
    pthread_once (&s_curl_once, s_curl_global);
    if (s_curl_code != CURLE_OK)
        return cv_error_set (err, CV_ERR_INTERNAL, "", "libcurl failed to start: curl_global_init: %s",
                             curl_easy_strerror (s_curl_code));
    return 0;
}

cv_http_t *
cv_http_new (zloop_t *loop, cv_error_t *err)
{
    assert (loop);
    if (cv_http_global_init (err))
        return NULL;
    CURLM *multi = curl_multi_init ();
    if (!multi) {
        cv_error_set (err, CV_ERR_INTERNAL, "", "curl_multi_init failed");
        return NULL;
    }
    cv_http_t *self = cv_calloc (1, sizeof *self);
    self->loop = loop;
    self->multi = multi;
    self->timer = -1;
    self->calls = zlistx_new ();
    self->sockets = zlistx_new ();
    curl_multi_setopt (multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt (multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (multi, CURLMOPT_TIMERFUNCTION, s_on_timeout);
    curl_multi_setopt (multi, CURLMOPT_TIMERDATA, self);
    return self;
}

void
cv_http_destroy (cv_http_t **self_p)
{
    assert (self_p);
    cv_http_t *self = *self_p;
    if (!self)
        return;
    cv_http_call_t *call;
    while ((call = zlistx_first (self->calls)))
        s_call_destroy (&call);
    curl_multi_cleanup (self->multi); /* closes the cached connections, unwatching their sockets */
    s_socket_t *watched;
    while ((watched = zlistx_first (self->sockets)))
        s_unwatch (self, watched);
    s_end_timer (self, &self->timer);
    zlistx_destroy (&self->calls);
    zlistx_destroy (&self->sockets);
    free (self);
    *self_p = NULL;
}

cv_http_call_t *
cv_http_start (cv_http_t *self, const cv_http_request_t *request, cv_http_done_fn *done, void *arg)
{
    assert (self && request && request->url && done);
    assert (request->header_count == 0 || request->headers);
    assert (request->answer_header_count == 0 || request->answer_headers);
    cv_http_call_t *call = cv_calloc (1, sizeof *call);
    call->client = self;
    call->done = done;
    call->arg = arg;
    call->timer = -1;
    call->max_body = request->max_body;
    call->wanted_count = request->answer_header_count;
    call->wanted = cv_calloc (call->wanted_count ? call->wanted_count : 1, sizeof *call->wanted);
    call->values = cv_calloc (call->wanted_count ? call->wanted_count : 1, sizeof *call->values);
    for (size_t i = 0; i < call->wanted_count; i++)
        call->wanted[i] = cv_strdup (request->answer_headers[i]);
    call->handle = zlistx_add_end (self->calls, call);
    int64_t now = zclock_usecs ();
    call->outcome.started_us = now;
    if (request->until_us <= now) {
        s_fail_later (call, CV_HTTP_TIMEOUT, "timeout: the time limit had passed before the request started");
        return call;
    }
    call->easy = s_easy (call, request, now);
    if (!call->easy) {
        s_fail_later (call, CV_HTTP_FAILED, "failed: libcurl refused the request's settings");
        return call;
    }
    CURLMcode code = curl_multi_add_handle (self->multi, call->easy);
    if (code != CURLM_OK) {
        char why[256];
        snprintf (why, sizeof why, "failed: %s", curl_multi_strerror (code));
        s_fail_later (call, CV_HTTP_FAILED, why);
        return call;
    }
    call->added = true; /* libcurl now sets its timer: the transfer starts from the loop */
    return call;
}

void
cv_http_forget (cv_http_t *self, cv_http_call_t *call)
{
    assert (self && call && call->client == self);
    s_call_destroy (&call);
}

size_t
cv_http_in_flight (const cv_http_t *self)
{
    assert (self);
    return zlistx_size (self->calls);
}

bool
cv_http_failure (const cv_http_outcome_t *outcome, cv_backoff_failure_t *failure, int *http_status)
{
    assert (outcome && failure && http_status);
    switch (outcome->result) {
    case CV_HTTP_ANSWERED:
        if (outcome->status >= 200 && outcome->status <= 299)
            return false;
        *failure = CV_BACKOFF_HTTP;
        *http_status = outcome->status;
        return true;
    case CV_HTTP_REFUSED:
    case CV_HTTP_CLOSED:
    case CV_HTTP_MALFORMED:
        *failure = CV_BACKOFF_CONNECT;
        *http_status = 0;
        return true;
    case CV_HTTP_TIMEOUT:
        *failure = CV_BACKOFF_TIMEOUT;
        *http_status = 0;
        return true;
    case CV_HTTP_TOO_LARGE:
        /* a failing status says more than the size: a proxy's long 503 page is still a 503 */
        *failure = CV_BACKOFF_HTTP;
        *http_status = outcome->status >= 300 ? outcome->status : 0;
        return true;
    case CV_HTTP_FAILED:
        *failure = CV_BACKOFF_HTTP;
        *http_status = 0;
        return true;
    }
    assert (false);
    return true;
}

const char *
cv_http_result_name (cv_http_result_t result)
{
    switch (result) {
    case CV_HTTP_ANSWERED:
        return "answered";
    case CV_HTTP_REFUSED:
        return "refused";
    case CV_HTTP_TIMEOUT:
        return "timeout";
    case CV_HTTP_CLOSED:
        return "closed";
    case CV_HTTP_MALFORMED:
        return "malformed";
    case CV_HTTP_TOO_LARGE:
        return "too_large";
    case CV_HTTP_FAILED:
        return "failed";
    }
    return "unknown";
}

/*  --------------------------------------------------------------------------
    Self-test: what needs no server (tests/fakes/http_client_test.c has cv_http against one). */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int done;
    bool inside_start;
    cv_http_result_t result;
    char error[256];
} s_test_t;

static void
s_test_done (void *arg, const cv_http_outcome_t *outcome)
{
    s_test_t *test = arg;
    assert (!test->inside_start && outcome->status == 0 && streq (outcome->body, ""));
    test->done++;
    test->result = outcome->result;
    snprintf (test->error, sizeof test->error, "%s", outcome->error);
}

static int
s_test_heard (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return ((s_test_t *) arg)->done ? -1 : 0;
}

/* Starts a GET of url with limit_ms, and runs the loop until its outcome (wait) or not. */
static void
s_test_get (cv_http_t *http, zloop_t *loop, s_test_t *test, const char *url, int64_t limit_ms, bool wait)
{
    memset (test, 0, sizeof *test);
    cv_http_request_t request = {.url = url, .until_us = zclock_usecs () + limit_ms * 1000, .max_body = 64};
    test->inside_start = true;
    assert (cv_http_start (http, &request, s_test_done, test));
    test->inside_start = false;
    assert (test->done == 0);
    if (!wait)
        return;
    int check = zloop_timer (loop, 2, 0, s_test_heard, test);
    zloop_start (loop);
    zloop_timer_end (loop, check);
    assert (test->done == 1);
}

/* A listening socket on a free loopback port; listening false closes it again (a refused port). */
static int
s_test_socket (int *port, bool listening)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &address, size) == 0 && listen (fd, 4) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    *port = ntohs (address.sin_port);
    if (!listening) {
        close (fd);
        return -1;
    }
    return fd;
}

void
cv_http_test (bool verbose)
{
    zloop_t *loop = zloop_new ();
    cv_error_t err = {0};
    cv_http_t *http = cv_http_new (loop, &err);
    cv_assert_that (http, "%s", err.message);
    s_test_t test;
    char url[64];

    /* nothing listens: refused, from the loop */
    int port = 0;
    s_test_socket (&port, false);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/x", port);
    s_test_get (http, loop, &test, url, 5000, true);
    cv_assert_that (test.result == CV_HTTP_REFUSED, "%s", test.error);
    assert (strncmp (test.error, "refused: ", 9) == 0);

    /* a peer that takes the connection and never answers: the limit ends it */
    int silent = s_test_socket (&port, true);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/x", port);
    s_test_get (http, loop, &test, url, 50, true);
    cv_assert_that (test.result == CV_HTTP_TIMEOUT, "%s", test.error);

    /* a limit already passed, a scheme not spoken, a URL that is none: all heard of later */
    s_test_get (http, loop, &test, url, -1, true);
    assert (test.result == CV_HTTP_TIMEOUT && strstr (test.error, "had passed"));
    s_test_get (http, loop, &test, "ftp://127.0.0.1/x", 5000, true);
    assert (test.result == CV_HTTP_FAILED);
    s_test_get (http, loop, &test, "http://[nope/x", 5000, true);
    assert (test.result == CV_HTTP_FAILED);

    /* forgotten, or in flight at destroy: never heard of */
    s_test_get (http, loop, &test, url, 5000, false);
    assert (cv_http_in_flight (http) == 1);
    s_test_get (http, loop, &test, url, -1, false);
    assert (cv_http_in_flight (http) == 2);
    cv_http_destroy (&http);
    assert (!http && test.done == 0);
    cv_http_destroy (&http);
    close (silent);

    /* how each outcome reads to cv_backoff */
    cv_backoff_failure_t failure = CV_BACKOFF_CONNECT;
    int status = -1;
    struct {
        cv_http_result_t result;
        int status;
        bool failed;
        cv_backoff_failure_t failure;
        bool retryable;
    } cases[] = {
        {CV_HTTP_ANSWERED, 200, false, 0, false},
        {CV_HTTP_ANSWERED, 204, false, 0, false},
        {CV_HTTP_ANSWERED, 429, true, CV_BACKOFF_HTTP, true},
        {CV_HTTP_ANSWERED, 503, true, CV_BACKOFF_HTTP, true},
        {CV_HTTP_ANSWERED, 404, true, CV_BACKOFF_HTTP, false},
        {CV_HTTP_ANSWERED, 301, true, CV_BACKOFF_HTTP, false},
        {CV_HTTP_REFUSED, 0, true, CV_BACKOFF_CONNECT, true},
        {CV_HTTP_CLOSED, 0, true, CV_BACKOFF_CONNECT, true},
        {CV_HTTP_MALFORMED, 0, true, CV_BACKOFF_CONNECT, true},
        {CV_HTTP_TIMEOUT, 0, true, CV_BACKOFF_TIMEOUT, true},
        {CV_HTTP_TOO_LARGE, 0, true, CV_BACKOFF_HTTP, false},
        {CV_HTTP_TOO_LARGE, 200, true, CV_BACKOFF_HTTP, false},
        {CV_HTTP_TOO_LARGE, 503, true, CV_BACKOFF_HTTP, true},
        {CV_HTTP_FAILED, 0, true, CV_BACKOFF_HTTP, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cv_http_outcome_t outcome = {.result = cases[i].result, .status = cases[i].status};
        status = -1;
        bool failed = cv_http_failure (&outcome, &failure, &status);
        cv_assert_that (failed == cases[i].failed, "case %zu", i);
        if (failed)
            cv_assert_that (failure == cases[i].failure && cv_backoff_retryable (failure, status) == cases[i].retryable,
                            "case %zu: %s %d", i, cv_backoff_failure_name (failure), status);
        else
            assert (status == -1);
    }
    assert (streq (cv_http_result_name (CV_HTTP_TOO_LARGE), "too_large"));
    assert (streq (cv_http_result_name (CV_HTTP_MALFORMED), "malformed"));
    zloop_destroy (&loop);
    if (verbose)
        printf ("cv_http: ok\n");
}
