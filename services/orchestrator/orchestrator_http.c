/* The HTTP front door: libmicrohttpd driven from the orchestrator's zloop. */
#include "orchestrator_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "cv_alloc.h"

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
    MHD_add_response_header (exchange->response, "Content-Type", "application/json");
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
            /* A 503 of the API always says when to come back, as the overloaded and store ones do. */
            orchestrator_http_add_header (exchange, "Retry-After", "1");
            orchestrator_http_answer_error (exchange, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                                            "the orchestrator is stopping; retry");
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

void
orchestrator_http_answer (orchestrator_exchange_t *exchange, unsigned status, json_t *document)
{
    assert (exchange && !exchange->response);
    char *text = json_dumps (document, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (6));
    json_decref (document);
    size_t length = text ? strlen (text) : 0;
    char *line = cv_malloc (length + 2);
    memcpy (line, text ? text : "", length);
    line[length] = '\n';
    line[length + 1] = '\0';
    free (text);
    exchange->status = status;
    exchange->response = MHD_create_response_from_buffer (length + 1, line, MHD_RESPMEM_MUST_FREE);
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
orchestrator_http_answer_error (orchestrator_exchange_t *exchange, unsigned status, const char *code,
                                const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    json_t *text = json_string (message);
    if (!text)
        text = json_string ("(message not valid UTF-8)");
    orchestrator_http_answer (exchange, status, json_pack ("{s:{s:s, s:o}}", "error", "code", code, "message", text));
}
