/* cv_http against a raw HTTP server of the test's own on the same loop, which answers each request
    with the bytes it is told to send (or with nothing, or by closing the connection), so that
    every kind of answer, good and broken, is one line of the test. */

#include "http_client_test.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <czmq.h>

#include "cv_assert.h"
#include "cv_buffer.h"
#include "cv_http.h"

typedef enum {
    S_ANSWER, /* writes reply and keeps the connection open */
    S_SILENT, /* reads and never answers */
    S_CLOSE   /* writes reply (may be "") and closes */
} s_mode_t;

typedef struct {
    zloop_t *loop;
    int listener;
    int port;
    s_mode_t mode;
    const char *reply;
    int accepted; /* connections so far */
    int requests; /* requests read so far */
    char last[2048];
    zmq_pollitem_t clients[16];
    cv_buffer_t reads[16];
} s_server_t;

static void
s_server_drop (s_server_t *server, int i)
{
    zloop_poller_end (server->loop, &server->clients[i]);
    close (server->clients[i].fd);
    server->clients[i].fd = -1;
    cv_buffer_release (&server->reads[i]);
}

static int
s_server_read (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    s_server_t *server = arg;
    int i = 0;
    while (server->clients[i].fd != item->fd)
        i++;
    char bytes[4096];
    ssize_t got = read (item->fd, bytes, sizeof bytes);
    if (got <= 0) {
        s_server_drop (server, i);
        return 0;
    }
    assert (cv_buffer_append (&server->reads[i], bytes, (size_t) got, 1 << 20));
    char *data = server->reads[i].data;
    char *head_end = strstr (data, "\r\n\r\n");
    const char *length = strcasestr (data, "\r\nContent-Length:");
    size_t body = length ? strtoul (length + 17, NULL, 10) : 0;
    if (!head_end || server->reads[i].size < (size_t) (head_end + 4 - data) + body)
        return 0; /* not the whole request yet */
    server->requests++;
    snprintf (server->last, sizeof server->last, "%s", data);
    cv_buffer_clear (&server->reads[i]);
    if (server->mode != S_SILENT) {
        ssize_t written = write (item->fd, server->reply, strlen (server->reply));
        assert (written == (ssize_t) strlen (server->reply));
    }
    if (server->mode == S_CLOSE)
        s_server_drop (server, i);
    return 0;
}

static int
s_server_accept (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_server_t *server = arg;
    int fd = accept (server->listener, NULL, NULL);
    assert (fd >= 0);
    int i = 0;
    while (server->clients[i].fd >= 0)
        i++;
    assert (i < 16);
    server->accepted++;
    server->clients[i] = (zmq_pollitem_t){.fd = fd, .events = ZMQ_POLLIN};
    assert (zloop_poller (loop, &server->clients[i], s_server_read, server) == 0);
    return 0;
}

static int
s_listen (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &address, size) == 0 && listen (fd, 16) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    *port = ntohs (address.sin_port);
    return fd;
}

typedef struct {
    int done;
    bool inside_start; /* set around cv_http_start: no outcome may come then */
    cv_http_result_t result[4];
    int status[4];
    bool reused[4];
    char body[4][256];
    char header[4][64];
    char error[4][256];
} s_test_t;

typedef struct {
    s_test_t *test;
    int index;
} s_test_arg_t;

static void
s_test_done (void *arg, const cv_http_outcome_t *outcome)
{
    s_test_arg_t *which = arg;
    s_test_t *test = which->test;
    assert (!test->inside_start && outcome->finished_us >= outcome->started_us);
    int i = which->index;
    test->done++;
    test->result[i] = outcome->result;
    test->status[i] = outcome->status;
    test->reused[i] = outcome->reused;
    assert (strlen (outcome->body) == outcome->body_size);
    snprintf (test->body[i], sizeof test->body[i], "%s", outcome->body);
    const char *header = outcome->result == CV_HTTP_ANSWERED ? outcome->answer_headers[0] : NULL;
    snprintf (test->header[i], sizeof test->header[i], "%s", header ? header : "-");
    snprintf (test->error[i], sizeof test->error[i], "%s", outcome->error);
}

typedef struct {
    int *seen;
    int want;
} s_test_wait_t;

static int
s_test_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_test_wait_t *wait = arg;
    return *wait->seen >= wait->want ? -1 : 0;
}

static int
s_test_too_long (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    cv_assert_that (false, "http_client_test: the outcomes did not come within 10 s");
    return -1;
}

/* Runs the loop until *seen reaches want. */
static void
s_test_wait (zloop_t *loop, int *seen, int want)
{
    s_test_wait_t wait = {seen, want};
    int check = zloop_timer (loop, 2, 0, s_test_check, &wait);
    int guard = zloop_timer (loop, 10000, 1, s_test_too_long, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, check);
    zloop_timer_end (loop, guard);
    assert (*seen >= want);
}

static cv_http_call_t *
s_test_start (cv_http_t *http, s_test_arg_t *arg, const char *method, const char *url, const char *body,
              int64_t limit_ms, size_t max_body)
{
    const char *headers[] = {"X-Test: yes"};
    const char *wanted[] = {"Retry-After"};
    cv_http_request_t request = {.method = method,
                                 .url = url,
                                 .headers = headers,
                                 .header_count = 1,
                                 .body = body,
                                 .body_size = body ? strlen (body) : 0,
                                 .until_us = zclock_usecs () + limit_ms * 1000,
                                 .max_body = max_body,
                                 .answer_headers = wanted,
                                 .answer_header_count = 1};
    arg->test->inside_start = true;
    cv_http_call_t *call = cv_http_start (http, &request, s_test_done, arg);
    arg->test->inside_start = false;
    assert (call);
    return call;
}

/* One request to the server, answered as it is told; its outcome in test->...[0]. */
static void
s_test_one (cv_http_t *http, s_server_t *server, s_test_t *test, s_test_arg_t *arg, s_mode_t mode, const char *reply,
            int64_t limit_ms, size_t max_body)
{
    memset (test, 0, sizeof *test);
    server->mode = mode;
    server->reply = reply;
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/one", server->port);
    s_test_start (http, arg, "GET", url, NULL, limit_ms, max_body);
    assert (test->done == 0);
    s_test_wait (server->loop, &test->done, 1);
}

void
http_client_test (bool verbose)
{
    zloop_t *loop = zloop_new ();
    s_server_t server = {.loop = loop};
    for (int i = 0; i < 16; i++)
        server.clients[i].fd = -1;
    server.listener = s_listen (&server.port);
    zmq_pollitem_t listening = {.fd = server.listener, .events = ZMQ_POLLIN};
    assert (zloop_poller (loop, &listening, s_server_accept, &server) == 0);
    cv_error_t err = {0};
    cv_http_t *http = cv_http_new (loop, &err);
    cv_assert_that (http, "%s", err.message);
    s_test_t test = {0};
    s_test_arg_t args[4];
    for (int i = 0; i < 4; i++)
        args[i] = (s_test_arg_t){&test, i};
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/v1/things?x=1", server.port);
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\": true}";

    /* method, headers and body go out as given; the answer's status, body and asked-for headers
       come back, from the loop; a second request reuses the connection */
    server.reply = ok;
    s_test_start (http, &args[0], "PUT", url, "{\"k\":1}", 5000, 1024);
    assert (test.done == 0 && cv_http_in_flight (http) == 1);
    s_test_wait (loop, &test.done, 1);
    assert (test.result[0] == CV_HTTP_ANSWERED && test.status[0] == 200 && !test.reused[0]);
    assert (streq (test.body[0], "{\"a\": true}") && streq (test.header[0], "-") && streq (test.error[0], ""));
    assert (strstr (server.last, "PUT /v1/things?x=1 HTTP/1.1\r\n") && strstr (server.last, "X-Test: yes\r\n"));
    assert (strstr (server.last, "\r\n\r\n{\"k\":1}") && !strstr (server.last, "Expect:"));
    assert (cv_http_in_flight (http) == 0);
    s_test_one (http, &server, &test, &args[0], S_ANSWER, ok, 5000, 1024);
    assert (test.result[0] == CV_HTTP_ANSWERED && test.reused[0] && server.accepted == 1);
    cv_backoff_failure_t failure = CV_BACKOFF_HTTP;
    int status = -1;
    const cv_http_outcome_t answered = {.result = CV_HTTP_ANSWERED, .status = 204};
    assert (!cv_http_failure (&answered, &failure, &status) && status == -1);

    /* three at once, on connections of their own */
    memset (&test, 0, sizeof test);
    for (int i = 0; i < 3; i++)
        s_test_start (http, &args[i], "GET", url, NULL, 5000, 1024);
    assert (cv_http_in_flight (http) == 3);
    s_test_wait (loop, &test.done, 3);
    for (int i = 0; i < 3; i++)
        assert (test.result[i] == CV_HTTP_ANSWERED && streq (test.body[i], "{\"a\": true}"));

    /* a 429 with Retry-After: a failure worth retrying, after the wait it asks for */
    s_test_one (http, &server, &test, &args[0], S_ANSWER,
                "HTTP/1.1 429 Too Many Requests\r\nretry-after:  7 \r\nContent-Length: 4\r\n\r\nslow", 5000, 1024);
    assert (test.result[0] == CV_HTTP_ANSWERED && test.status[0] == 429 && streq (test.header[0], "7"));
    assert (streq (test.body[0], "slow"));
    s_test_one (http, &server, &test, &args[0], S_ANSWER, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 5000,
                1024);
    assert (test.status[0] == 404 && streq (test.body[0], ""));
    const cv_http_outcome_t refused_answer = {.result = CV_HTTP_ANSWERED, .status = 404};
    assert (cv_http_failure (&refused_answer, &failure, &status) && failure == CV_BACKOFF_HTTP && status == 404);
    assert (!cv_backoff_retryable (failure, status));

    /* a body over the limit is an error, whether its length is announced or only seen */
    s_test_one (http, &server, &test, &args[0], S_ANSWER, ok, 5000, 10);
    assert (test.result[0] == CV_HTTP_TOO_LARGE && streq (test.error[0], "HTTP 200 with a response over 10 bytes"));
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "HTTP/1.1 200 OK\r\n\r\n0123456789abcdef", 5000, 10);
    assert (test.result[0] == CV_HTTP_TOO_LARGE && streq (test.error[0], "HTTP 200 with a response over 10 bytes"));
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "HTTP/1.1 200 OK\r\n\r\n0123456789", 5000, 10);
    assert (test.result[0] == CV_HTTP_ANSWERED && streq (test.body[0], "0123456789"));
    /* ... and a long error page is still its status: a 503 worth another try */
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "HTTP/1.1 503 Busy\r\n\r\n0123456789abcdef", 5000, 10);
    assert (test.result[0] == CV_HTTP_TOO_LARGE && test.status[0] == 503);
    assert (streq (test.error[0], "HTTP 503 with a response over 10 bytes"));
    const cv_http_outcome_t long_page = {.result = CV_HTTP_TOO_LARGE, .status = 503};
    assert (cv_http_failure (&long_page, &failure, &status) && failure == CV_BACKOFF_HTTP && status == 503);
    assert (cv_backoff_retryable (failure, status));

    /* the transport's failures, each of its kind */
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "", 5000, 1024);
    cv_assert_that (test.result[0] == CV_HTTP_CLOSED, "closed: %s", test.error[0]);
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", 5000,
                1024);
    cv_assert_that (test.result[0] == CV_HTTP_CLOSED, "cut short: %s", test.error[0]);
    s_test_one (http, &server, &test, &args[0], S_CLOSE, "this is not HTTP at all\r\n\r\n", 5000, 1024);
    cv_assert_that (test.result[0] == CV_HTTP_MALFORMED, "malformed: %s", test.error[0]);
    const cv_http_outcome_t malformed = {.result = CV_HTTP_MALFORMED};
    assert (cv_http_failure (&malformed, &failure, &status) && failure == CV_BACKOFF_CONNECT);
    assert (cv_backoff_retryable (failure, status));
    s_test_one (http, &server, &test, &args[0], S_SILENT, "", 100, 1024);
    cv_assert_that (test.result[0] == CV_HTTP_TIMEOUT, "timeout: %s", test.error[0]);
    assert (strstr (test.error[0], "timeout: "));
    const cv_http_outcome_t timed_out = {.result = CV_HTTP_TIMEOUT};
    assert (cv_http_failure (&timed_out, &failure, &status) && failure == CV_BACKOFF_TIMEOUT);
    int closed_port = 0;
    close (s_listen (&closed_port));
    char refused_url[64];
    snprintf (refused_url, sizeof refused_url, "http://127.0.0.1:%d/", closed_port);
    memset (&test, 0, sizeof test);
    s_test_start (http, &args[0], "GET", refused_url, NULL, 5000, 1024);
    s_test_wait (loop, &test.done, 1);
    cv_assert_that (test.result[0] == CV_HTTP_REFUSED, "refused: %s", test.error[0]);
    const cv_http_outcome_t refused = {.result = CV_HTTP_REFUSED};
    assert (cv_http_failure (&refused, &failure, &status) && failure == CV_BACKOFF_CONNECT);
    const cv_http_outcome_t too_large = {.result = CV_HTTP_TOO_LARGE};
    assert (cv_http_failure (&too_large, &failure, &status) && !cv_backoff_retryable (failure, status));

    /* a limit already passed, and a scheme libcurl will not speak: heard of from the loop */
    memset (&test, 0, sizeof test);
    s_test_start (http, &args[0], "GET", url, NULL, -1, 1024);
    s_test_start (http, &args[1], "GET", "ftp://127.0.0.1/x", NULL, 5000, 1024);
    assert (test.done == 0);
    s_test_wait (loop, &test.done, 2);
    assert (test.result[0] == CV_HTTP_TIMEOUT && test.result[1] == CV_HTTP_FAILED);

    /* a forgotten request is never heard of; the client serves on */
    memset (&test, 0, sizeof test);
    server.mode = S_SILENT;
    cv_http_forget (http, s_test_start (http, &args[0], "GET", url, NULL, 5000, 1024));
    int requests = server.requests;
    cv_http_call_t *sent = s_test_start (http, &args[1], "GET", url, NULL, 5000, 1024);
    s_test_wait (loop, &server.requests, requests + 1);
    cv_http_forget (http, sent);
    server.mode = S_ANSWER;
    server.reply = ok;
    s_test_start (http, &args[2], "GET", url, NULL, 5000, 1024);
    s_test_wait (loop, &test.done, 1);
    cv_assert_that (test.done == 1 && test.result[2] == CV_HTTP_ANSWERED, "%d %s: %s", test.done,
                    cv_http_result_name (test.result[2]), test.error[2]);

    /* destroyed with requests in flight: nothing is heard, nothing leaks */
    memset (&test, 0, sizeof test);
    server.mode = S_SILENT;
    requests = server.requests;
    s_test_start (http, &args[0], "GET", url, NULL, 5000, 1024);
    s_test_start (http, &args[1], "POST", url, "x", 5000, 1024);
    s_test_wait (loop, &server.requests, requests + 2);
    cv_http_destroy (&http);
    assert (!http && test.done == 0);
    cv_http_destroy (&http);

    for (int i = 0; i < 16; i++)
        if (server.clients[i].fd >= 0)
            s_server_drop (&server, i);
    zloop_poller_end (loop, &listening);
    close (server.listener);
    zloop_destroy (&loop);
    if (verbose)
        printf ("cv_http against a raw server: ok\n");
}
