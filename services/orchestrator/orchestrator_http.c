/* The HTTP front door: libmicrohttpd driven from the orchestrator's zloop. */
#include "orchestrator_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "orchestrator_metrics.h"

#define MAX_HEADERS 4

struct _orchestrator_exchange_t {
    orchestrator_http_t *http;
    struct MHD_Connection *connection;
    char *body; /* uploaded bytes */
    size_t body_size;
    bool too_large;
    bool handled; /* the handler has seen it */
    bool suspended;
    struct MHD_Response *response; /* the answer, once there is one */
    unsigned status;
    char *headers[MAX_HEADERS][2];
    orchestrator_http_shape_fn *shape; /* NULL: answers go as they are */
    void *shape_arg;
    const char *content_type;      /* of the answer: static text; NULL for JSON */
    orchestrator_exchange_t *next; /* in the http's list of open exchanges */
};

struct _orchestrator_http_t {
    zloop_t *loop;
    struct MHD_Daemon *daemon;
    zmq_pollitem_t item;
    int timer; /* the one-shot timer for MHD's next run, or -1 */
    size_t max_body;
    orchestrator_http_handler_fn *handler;
    void *arg;
    cv_log_t *log;
    orchestrator_exchange_t *open; /* exchanges not yet completed by MHD */
    int port;
    bool in_callback; /* inside MHD: running MHD again would re-enter it */
};

static void
s_mhd_log (void *arg, const char *format, va_list args)
{
    char message[512];
    vsnprintf (message, sizeof message, format, args);
    size_t length = strlen (message);
    while (length && message[length - 1] == '\n')
        message[--length] = '\0';
    cv_log_warn ((cv_log_t *) arg, "http: %s", message);
}

static void
s_unlink (orchestrator_http_t *self, orchestrator_exchange_t *exchange)
{
    for (orchestrator_exchange_t **link = &self->open; *link; link = &(*link)->next)
        if (*link == exchange) {
            *link = exchange->next;
            return;
        }
}

static void
s_exchange_destroy (orchestrator_exchange_t *exchange)
{
    if (exchange->response)
        MHD_destroy_response (exchange->response);
    for (int i = 0; i < MAX_HEADERS; i++) {
        free (exchange->headers[i][0]);
        free (exchange->headers[i][1]);
    }
    free (exchange->body);
    free (exchange);
}

/* MHD is done with a connection's request: answered, or the client went away. */
static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls, enum MHD_RequestTerminationCode code)
{
    orchestrator_http_t *self = cls;
    orchestrator_exchange_t *exchange = *con_cls;
    if (!exchange)
        return;
    if (!exchange->response && exchange->handled) {
        /* The client left before the answer; the handler still holds the exchange and will answer
           it, so keep it, detached from its connection. */
        exchange->connection = NULL;
        return;
    }
    s_unlink (self, exchange);
    s_exchange_destroy (exchange);
    *con_cls = NULL;
}

static enum MHD_Result
s_queue (orchestrator_exchange_t *exchange)
{
    for (int i = 0; i < MAX_HEADERS; i++)
        if (exchange->headers[i][0])
            MHD_add_response_header (exchange->response, exchange->headers[i][0], exchange->headers[i][1]);
    MHD_add_response_header (exchange->response, "Content-Type",
                             exchange->content_type ? exchange->content_type : "application/json");
    return MHD_queue_response (exchange->connection, exchange->status, exchange->response);
}

static int s_timer_expired (zloop_t *loop, int timer_id, void *arg);

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    orchestrator_http_t *self = cls;
    orchestrator_exchange_t *exchange = *con_cls;
    if (!exchange) {
        exchange = cv_calloc (1, sizeof *exchange);
        exchange->http = self;
        exchange->connection = connection;
        exchange->next = self->open;
        self->open = exchange;
        *con_cls = exchange;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (exchange->body_size + *upload_data_size > self->max_body)
            exchange->too_large = true;
        else {
            exchange->body = cv_realloc (exchange->body, exchange->body_size + *upload_data_size + 1);
            memcpy (exchange->body + exchange->body_size, upload_data, *upload_data_size);
            exchange->body_size += *upload_data_size;
            exchange->body[exchange->body_size] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (exchange->response) /* answered while suspended, now resumed */
        return s_queue (exchange);
    if (exchange->handled)
        return MHD_YES;

    exchange->handled = true;
    if (exchange->too_large)
        orchestrator_http_answer_error (exchange, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                        "the body is over the limit of %zu bytes", self->max_body);
    else {
        json_t *body = NULL;
        json_error_t error;
        if (exchange->body_size) {
            body = json_loadb (exchange->body, exchange->body_size, JSON_REJECT_DUPLICATES, &error);
            if (!body) {
                orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_json",
                                                "the body is not valid JSON: %s (at byte %d)", error.text,
                                                error.position);
            }
        }
        if (body || !exchange->body_size) {
            self->in_callback = true;
            self->handler (self->arg, exchange, method, url, body);
            self->in_callback = false;
        }
        json_decref (body);
    }
    if (exchange->response)
        return s_queue (exchange);
    MHD_suspend_connection (connection);
    exchange->suspended = true;
    return MHD_YES;
}

/* Runs MHD, then arms the one timer for when MHD must run again. MHD's epoll set is edge-triggered:
   a connection with data already read into its buffers (the next request on a kept-alive
   connection, a resumed one) makes no fd readable, and MHD_get_timeout's answer (0 then) is the
   only signal that it has work. */
static void
s_run (orchestrator_http_t *self)
{
    MHD_run (self->daemon);
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    self->timer = -1;
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout (self->daemon, &timeout) == MHD_YES)
        self->timer = zloop_timer (self->loop, (size_t) timeout, 1, s_timer_expired, self);
}

/* MHD runs at the end of this loop iteration: every answer given in it goes out in one run. */
static void
s_run_soon (orchestrator_http_t *self)
{
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    self->timer = zloop_timer (self->loop, 0, 1, s_timer_expired, self);
}

static int
s_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_run ((orchestrator_http_t *) arg);
    return 0;
}

static int
s_timer_expired (zloop_t *loop, int timer_id, void *arg)
{
    orchestrator_http_t *self = arg;
    self->timer = -1; /* a one-shot timer is gone once it fires */
    s_run (self);
    return 0;
}

orchestrator_http_t *
orchestrator_http_new (zloop_t *loop, const char *address, int port, size_t max_body,
                       orchestrator_http_handler_fn *handler, void *arg, cv_log_t *log, cv_error_t *err)
{
    struct sockaddr_in bind_address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    if (inet_pton (AF_INET, address, &bind_address.sin_addr) != 1) {
        cv_error_set (err, CV_ERR_INVALID, "http_address", "%s is not an IPv4 address", address);
        return NULL;
    }
    orchestrator_http_t *self = cv_calloc (1, sizeof *self);
    self->loop = loop;
    self->max_body = max_body;
    self->handler = handler;
    self->arg = arg;
    self->log = log;
    self->daemon =
        MHD_start_daemon (MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_access, self,
                          MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, log, MHD_OPTION_SOCK_ADDR, &bind_address,
                          MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1000, MHD_OPTION_END);
    if (!self->daemon) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, "http_port", "cannot listen on %s:%d (in use?)", address, port);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->item.fd = info->epoll_fd;
    self->item.events = ZMQ_POLLIN;
    zloop_poller (loop, &self->item, s_readable, self);
    self->timer = -1;
    s_run (self);
    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    return self;
}

void
orchestrator_http_destroy (orchestrator_http_t **self_p)
{
    assert (self_p);
    orchestrator_http_t *self = *self_p;
    if (!self)
        return;
    /* MHD cannot stop with suspended connections: answer what is still open first (the owner
       answers its own exchanges before, with what it knows of them). Answering an exchange whose
       client has left frees it: take the next one first. */
    orchestrator_exchange_t *next;
    for (orchestrator_exchange_t *exchange = self->open; exchange; exchange = next) {
        next = exchange->next;
        if (!exchange->response && exchange->handled) {
            orchestrator_http_answer_unavailable (exchange, "shutting_down", "the orchestrator is stopping; retry");
        }
    }
    MHD_run (self->daemon);
    zloop_poller_end (self->loop, &self->item);
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    MHD_stop_daemon (self->daemon);
    while (self->open) {
        next = self->open->next;
        s_exchange_destroy (self->open);
        self->open = next;
    }
    free (self);
    *self_p = NULL;
}

int
orchestrator_http_port (const orchestrator_http_t *self)
{
    return self->port;
}

const char *
orchestrator_http_header (orchestrator_exchange_t *exchange, const char *name)
{
    return exchange->connection ? MHD_lookup_connection_value (exchange->connection, MHD_HEADER_KIND, name) : NULL;
}

void
orchestrator_http_add_header (orchestrator_exchange_t *exchange, const char *name, const char *value)
{
    for (int i = 0; i < MAX_HEADERS; i++)
        if (!exchange->headers[i][0]) {
            exchange->headers[i][0] = cv_strdup (name);
            exchange->headers[i][1] = cv_strdup (value);
            return;
        }
}

static void s_respond (orchestrator_exchange_t *exchange, unsigned status, char *body, size_t size);

void
orchestrator_http_answer (orchestrator_exchange_t *exchange, unsigned status, json_t *document)
{
    assert (exchange && !exchange->response);
    orchestrator_http_shape_fn *shape = exchange->shape;
    if (shape) {
        exchange->shape = NULL; /* the shape answers through here */
        shape (exchange->shape_arg, exchange, status, document);
        return;
    }
    if (status >= 400)
        orchestrator_metrics_api_error (
            status, json_string_value (json_object_get (json_object_get (document, "error"), "code")));
    char *text = json_dumps (document, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (6));
    json_decref (document);
    size_t length = text ? strlen (text) : 0;
    char *line = cv_malloc (length + 2);
    memcpy (line, text ? text : "", length);
    line[length] = '\n';
    line[length + 1] = '\0';
    free (text);
    s_respond (exchange, status, line, length + 1);
}

void
orchestrator_http_answer_text (orchestrator_exchange_t *exchange, unsigned status, const char *content_type, char *text)
{
    assert (exchange && !exchange->response && content_type && text);
    exchange->shape = NULL;
    exchange->content_type = content_type;
    s_respond (exchange, status, text, strlen (text));
}

/* Answers with the size bytes at body (taken, malloc'd). */
static void
s_respond (orchestrator_exchange_t *exchange, unsigned status, char *body, size_t size)
{
    exchange->status = status;
    exchange->response = MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    orchestrator_http_t *self = exchange->http;
    if (!exchange->connection) {
        /* The client is gone: nothing to send, nothing left to keep. */
        s_unlink (self, exchange);
        s_exchange_destroy (exchange);
        return;
    }
    if (exchange->suspended) {
        exchange->suspended = false;
        MHD_resume_connection (exchange->connection);
        if (!self->in_callback) /* else the MHD_run under way arms the timer when it returns */
            s_run_soon (self);
    }
}

void
orchestrator_http_set_shape (orchestrator_exchange_t *exchange, orchestrator_http_shape_fn *shape, void *arg)
{
    exchange->shape = shape;
    exchange->shape_arg = arg;
}

static void
s_answer_error (orchestrator_exchange_t *exchange, unsigned status, const char *code, const char *format, va_list args)
{
    char message[1024];
    vsnprintf (message, sizeof message, format, args);
    json_t *text = json_string (message);
    if (!text)
        text = json_string ("(message not valid UTF-8)");
    orchestrator_http_answer (exchange, status, json_pack ("{s:{s:s, s:o}}", "error", "code", code, "message", text));
}

void
orchestrator_http_answer_error (orchestrator_exchange_t *exchange, unsigned status, const char *code,
                                const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_answer_error (exchange, status, code, format, args);
    va_end (args);
}

void
orchestrator_http_answer_unavailable (orchestrator_exchange_t *exchange, const char *code, const char *format, ...)
{
    orchestrator_http_add_header (exchange, "Retry-After", "1");
    va_list args;
    va_start (args, format);
    s_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, code, format, args);
    va_end (args);
}

/*  --------------------------------------------------------------------------
    Self-test: the front door in a zloop, spoken to over a raw TCP socket on the same loop: a GET
    and a POST on one kept-alive connection, an answer given later from a timer with a header, a
    body that is not JSON, one too large, a malformed request, and a pending answer on destroy. */

typedef struct {
    zloop_t *loop;
    orchestrator_exchange_t *pending; /* a /later exchange waiting for its timer, or for destroy */
    int handled;
} s_test_server_t;

static int
s_test_answer_later (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_test_server_t *server = arg;
    assert (server->pending);
    orchestrator_http_add_header (server->pending, "Retry-After", "7");
    orchestrator_http_answer (server->pending, 202, json_pack ("{s:s}", "answered", "later"));
    server->pending = NULL;
    return 0;
}

static void
s_test_handler (void *arg, orchestrator_exchange_t *exchange, const char *method, const char *path, json_t *body)
{
    s_test_server_t *server = arg;
    server->handled++;
    if (streq (path, "/later") || streq (path, "/never")) {
        assert (!server->pending);
        server->pending = exchange;
        if (streq (path, "/later"))
            zloop_timer (server->loop, 1, 1, s_test_answer_later, server);
        return;
    }
    if (streq (path, "/missing")) {
        orchestrator_http_answer_error (exchange, 404, "not_found", "no route for %s %s", method, path);
        return;
    }
    orchestrator_http_answer (exchange, 200,
                              json_pack ("{s:s, s:s, s:O?}", "method", method, "path", path, "body", body));
}

/* The client's side: one TCP connection and what came back on it. */
typedef struct {
    int fd;
    char buffer[8192];
    size_t length;
    bool closed;
} s_test_client_t;

static void
s_test_connect (s_test_client_t *client, int port)
{
    memset (client, 0, sizeof *client);
    client->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (client->fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cv_assert_that (connect (client->fd, (struct sockaddr *) &address, sizeof address) == 0, "connect to port %d",
                    port);
}

/* The length of the complete response at the start of the buffer, 0 while it is not all there. */
static size_t
s_test_complete (const s_test_client_t *client)
{
    const char *end = memmem (client->buffer, client->length, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t) (end - client->buffer) + 4;
    size_t content = 0;
    for (const char *line = client->buffer; line < end; line = strstr (line, "\r\n") + 2)
        if (strncasecmp (line, "Content-Length:", 15) == 0)
            content = (size_t) strtoul (line + 15, NULL, 10);
    return client->length >= head + content ? head + content : 0;
}

static int
s_test_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop, (void) item;
    s_test_client_t *client = arg;
    assert (client->length < sizeof client->buffer - 1);
    ssize_t got = recv (client->fd, client->buffer + client->length, sizeof client->buffer - 1 - client->length, 0);
    if (got <= 0) {
        client->closed = true;
        return -1;
    }
    client->length += (size_t) got;
    client->buffer[client->length] = '\0';
    return s_test_complete (client) ? -1 : 0;
}

static int
s_test_expired (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    cv_assert_that (false, "no answer within 10 seconds");
    return -1;
}

static int
s_test_until_pending (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return ((s_test_server_t *) arg)->pending ? -1 : 0;
}

/* Sends request on the client's connection and runs the loop until a whole response (or the
   connection's end) came; returns its status, the response in client->buffer. */
static int
s_test_exchange (zloop_t *loop, s_test_client_t *client, const char *request)
{
    client->length = 0;
    client->buffer[0] = '\0';
    size_t size = strlen (request);
    assert (send (client->fd, request, size, MSG_NOSIGNAL) == (ssize_t) size);
    zmq_pollitem_t item = {NULL, client->fd, ZMQ_POLLIN, 0};
    assert (zloop_poller (loop, &item, s_test_readable, client) == 0);
    int deadline = zloop_timer (loop, 10000, 1, s_test_expired, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, deadline);
    zloop_poller_end (loop, &item);
    int status = 0;
    if (client->length)
        cv_assert_that (sscanf (client->buffer, "HTTP/1.%*d %d", &status) == 1, "not a status line: %.80s",
                        client->buffer);
    return status;
}

/* The JSON document after the response's head (the caller decrefs it). */
static json_t *
s_test_document (const s_test_client_t *client)
{
    const char *body = strstr (client->buffer, "\r\n\r\n");
    assert (body);
    json_error_t error;
    json_t *document = json_loads (body + 4, JSON_DISABLE_EOF_CHECK, &error);
    cv_assert_that (document, "not JSON (%s): %s", error.text, body + 4);
    return document;
}

static const char *
s_test_string (json_t *document, const char *key)
{
    return json_string_value (json_object_get (document, key));
}

void
orchestrator_http_test (bool verbose)
{
    zloop_t *loop = zloop_new ();
    cv_log_t *log = cv_log_new ("orchestrator", "http-test", verbose);
    s_test_server_t server = {.loop = loop};
    cv_error_t err;
    orchestrator_http_t *http = orchestrator_http_new (loop, "127.0.0.1", 0, 64, s_test_handler, &server, log, &err);
    cv_assert_that (http, "cannot listen: %s", err.message);
    int port = orchestrator_http_port (http);
    assert (port > 0);

    /* a GET and a POST with a JSON body on one kept-alive connection */
    s_test_client_t client;
    s_test_connect (&client, port);
    int status = s_test_exchange (loop, &client, "GET /v1/health HTTP/1.1\r\nHost: test\r\n\r\n");
    cv_assert_that (status == 200, "GET: %s", client.buffer);
    assert (strcasestr (client.buffer, "Content-Type: application/json"));
    json_t *document = s_test_document (&client);
    assert (streq (s_test_string (document, "method"), "GET")
            && streq (s_test_string (document, "path"), "/v1/health"));
    assert (json_is_null (json_object_get (document, "body"))); /* the handler got no body */
    json_decref (document);
    status = s_test_exchange (loop, &client,
                              "POST /v1/requests HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                              "Content-Length: 13\r\n\r\n{\"text\":\"hi\"}");
    cv_assert_that (status == 200 && !client.closed, "POST on the kept-alive connection: %s", client.buffer);
    document = s_test_document (&client);
    assert (streq (s_test_string (document, "method"), "POST"));
    assert (streq (json_string_value (json_object_get (json_object_get (document, "body"), "text")), "hi"));
    json_decref (document);

    /* an answer given later, from the loop, with a header */
    status = s_test_exchange (loop, &client, "GET /later HTTP/1.1\r\nHost: test\r\n\r\n");
    cv_assert_that (status == 202, "later: %s", client.buffer);
    assert (strcasestr (client.buffer, "Retry-After: 7"));
    document = s_test_document (&client);
    assert (streq (s_test_string (document, "answered"), "later"));
    json_decref (document);
    status = s_test_exchange (loop, &client, "GET /missing HTTP/1.1\r\nHost: test\r\n\r\n");
    cv_assert_that (status == 404, "missing: %s", client.buffer);
    document = s_test_document (&client);
    assert (streq (s_test_string (json_object_get (document, "error"), "code"), "not_found"));
    json_decref (document);

    /* a body that is not JSON, and one over max_body, are answered here without the handler */
    int handled = server.handled;
    status = s_test_exchange (loop, &client,
                              "POST /v1/requests HTTP/1.1\r\nHost: test\r\nContent-Length: 9\r\n\r\nnot json!");
    cv_assert_that (status == 400, "not JSON: %s", client.buffer);
    document = s_test_document (&client);
    assert (streq (s_test_string (json_object_get (document, "error"), "code"), "invalid_json"));
    json_decref (document);
    char large[256];
    snprintf (large, sizeof large,
              "POST /v1/requests HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{\"text\":\"%089d\"}", 0);
    status = s_test_exchange (loop, &client, large);
    cv_assert_that (status == 413, "too large: %s", client.buffer);
    document = s_test_document (&client);
    assert (streq (s_test_string (json_object_get (document, "error"), "code"), "too_large"));
    json_decref (document);
    assert (server.handled == handled);
    close (client.fd);

    /* a malformed request gets a 400 from libmicrohttpd, never the handler; the server goes on
       serving (below) */
    s_test_connect (&client, port);
    status = s_test_exchange (loop, &client, "GET / HTTP/1.1\r\nthis line is no header\r\n\r\n");
    cv_assert_that (status == 400, "malformed: %s", client.buffer);
    assert (server.handled == handled);
    close (client.fd);

    /* on destroy, an exchange still open is answered 503 */
    s_test_connect (&client, port);
    const char *never = "GET /never HTTP/1.1\r\nHost: test\r\n\r\n";
    assert (send (client.fd, never, strlen (never), MSG_NOSIGNAL) == (ssize_t) strlen (never));
    /* the loop runs until the handler holds the exchange */
    int waiting = zloop_timer (loop, 1, 0, s_test_until_pending, &server);
    int deadline = zloop_timer (loop, 10000, 1, s_test_expired, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, waiting);
    zloop_timer_end (loop, deadline);
    assert (server.pending);
    orchestrator_http_destroy (&http);
    assert (!http);
    client.length = 0;
    while (!s_test_complete (&client) && !client.closed) {
        struct pollfd pollfd = {.fd = client.fd, .events = POLLIN};
        assert (poll (&pollfd, 1, 10000) == 1);
        s_test_readable (NULL, NULL, &client);
    }
    cv_assert_that (strstr (client.buffer, " 503 ") && strstr (client.buffer, "shutting_down"), "on destroy: %s",
                    client.buffer);
    close (client.fd);

    cv_log_destroy (&log);
    zloop_destroy (&loop);
    if (verbose)
        printf ("orchestrator_http: ok\n");
}
