/* The bank API's HTTP side: libmicrohttpd, one thread per connection, routes to bankapi_data,
   each answer first put through its route's fault; and the actor cv_launcher runs. */
#include "bankapi_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "bankapi_data.h"
#include "cv_actor.h"
#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_buffer.h"
#include "cv_mhd_stop.h"

#define MAX_UPLOAD (64 * 1024)
#define FX_PREFIX "/v1/fx/"
#define DELIVERIES_PREFIX "/v1/deliveries/"
#define CONTROL_PATH "/_test/faults"
#define MAX_ASKED_DELAY_MS 60000

struct _bankapi_server_t {
    const bankapi_config_t *config;
    struct MHD_Daemon *daemon;
    int port;
    bool fixed_day; /* deliveries as of config->as_of, not today */
    int64_t as_of_day;
    cv_mhd_stop_t *stop; /* raised at stop: wakes every waiting answer */
    bankapi_faults_t *faults;
    atomic_ulong requests;
};

/* A request's upload, as it arrives. */
typedef struct {
    cv_buffer_t body;
    bool too_large;
} s_upload_t;

/*  --------------------------------------------------------------------------
    Answers */

/* Sends size bytes of body (owned: freed by libmicrohttpd) with status. */
static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned status, char *body, size_t size, const char *retry_after)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", "application/json");
    if (retry_after && *retry_after)
        MHD_add_response_header (response, "Retry-After", retry_after);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_json (struct MHD_Connection *connection, unsigned status, json_t *document, const char *retry_after)
{
    char *text = json_dumps (document, JSON_COMPACT | JSON_REAL_PRECISION (10));
    json_decref (document);
    cv_assert_that (text, "json_dumps: out of memory");
    char *owned = cv_strdup (text); /* libmicrohttpd frees with free (); keep jansson's allocator apart */
    free (text);
    return s_send (connection, status, owned, strlen (owned), retry_after);
}

static enum MHD_Result
s_error (struct MHD_Connection *connection, unsigned status, const char *code, const char *message,
         const char *retry_after)
{
    return s_json (connection, status, json_pack ("{s:{s:s, s:s}}", "error", "code", code, "message", message),
                   retry_after);
}

/* The answer a failing request gets, in its fault's mode. */
static enum MHD_Result
s_fail (bankapi_server_t *self, struct MHD_Connection *connection, const bankapi_fault_t *fault)
{
    switch (fault->mode) {
    case BANKAPI_FAIL_STATUS:
        return s_error (connection, fault->status, "injected", "a failure asked for by the test", fault->retry_after);
    case BANKAPI_FAIL_HANG:
        cv_mhd_stop_wait (self->stop, connection, -1);
        return MHD_NO;
    case BANKAPI_FAIL_CLOSE:
        return MHD_NO;
    case BANKAPI_FAIL_MALFORMED: {
        const char *cut = "{\"rate\": 0.86, \"status\": \"in_tr";
        return s_send (connection, 200, cv_strdup (cut), strlen (cut), NULL);
    }
    case BANKAPI_FAIL_OVERSIZED: {
        size_t size = BANKAPI_OVERSIZED_BYTES;
        char *body = cv_malloc (size + 1);
        memset (body, 'x', size);
        memcpy (body, "{\"padding\":\"", 12);
        memcpy (body + size - 2, "\"}", 2);
        body[size] = '\0';
        return s_send (connection, 200, body, size, NULL);
    }
    }
    return MHD_NO;
}

static int64_t
s_today (const bankapi_server_t *self)
{
    return self->fixed_day ? self->as_of_day : (int64_t) time (NULL) / 86400;
}

static enum MHD_Result
s_fx (bankapi_server_t *self, struct MHD_Connection *connection, const char *rest)
{
    char base[8], quote[8];
    const char *slash = strchr (rest, '/');
    if (!slash || strchr (slash + 1, '/') || slash - rest >= (long) sizeof base || strlen (slash + 1) >= sizeof quote)
        return s_error (connection, 404, "not_found", "use /v1/fx/{base}/{quote}", NULL);
    snprintf (base, sizeof base, "%.*s", (int) (slash - rest), rest);
    snprintf (quote, sizeof quote, "%s", slash + 1);
    double rate = 0;
    if (strcmp (base, quote) == 0)
        return s_error (connection, 400, "invalid", "base and quote must differ", NULL);
    if (!bankapi_data_fx_rate (base, quote, &rate))
        return s_error (connection, 404, "not_found", "quoted currencies are " BANKAPI_CURRENCIES, NULL);
    char day[11];
    bankapi_data_format_day (s_today (self), day);
    return s_json (connection, 200,
                   json_pack ("{s:s, s:s, s:f, s:s, s:s}", "base", base, "quote", quote, "rate", rate, "as_of", day,
                              "source", "reference mid rate"),
                   NULL);
}

static enum MHD_Result
s_delivery (bankapi_server_t *self, struct MHD_Connection *connection, const char *tracking)
{
    bankapi_delivery_t parcel;
    if (!bankapi_data_delivery (tracking, s_today (self), &parcel))
        return s_error (connection, 404, "not_found", "no parcel has that tracking number", NULL);
    char expected[11];
    bankapi_data_format_day (parcel.expected_day, expected);
    return s_json (connection, 200,
                   json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "tracking", tracking, "status", parcel.status,
                              "expected_date", expected, "carrier", parcel.carrier, "country", parcel.country,
                              "last_event", parcel.last_event),
                   NULL);
}

static bool
s_from_loopback (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *address = info ? info->client_addr : NULL;
    if (address && address->sa_family == AF_INET)
        return (ntohl (((const struct sockaddr_in *) address)->sin_addr.s_addr) >> 24) == 127;
    if (address && address->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK (&((const struct sockaddr_in6 *) address)->sin6_addr);
    return false;
}

static enum MHD_Result
s_control (bankapi_server_t *self, struct MHD_Connection *connection, const char *method, const s_upload_t *upload)
{
    if (!s_from_loopback (connection))
        return s_error (connection, 403, "forbidden", "the test control answers on loopback only", NULL);
    if (strcmp (method, "DELETE") == 0)
        bankapi_faults_reset (self->faults);
    else if (strcmp (method, "POST") == 0) {
        if (upload->too_large)
            return s_error (connection, 413, "too_large", "the fault is too large", NULL);
        cv_error_t err = {0};
        if (bankapi_faults_set_json (self->faults, upload->body.data ? upload->body.data : "", &err))
            return s_error (connection, 400, "invalid", err.message, NULL);
        cv_log_info (self->config->log, "fault set: %s", upload->body.data);
    } else if (strcmp (method, "GET") != 0)
        return s_error (connection, 405, "method_not_allowed", "use GET, POST or DELETE", NULL);
    return s_json (connection, 200, bankapi_faults_json (self->faults), NULL);
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    bankapi_server_t *self = cls;
    s_upload_t *upload = *con_cls;
    if (!upload) {
        *con_cls = cv_calloc (1, sizeof *upload);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cv_buffer_append (&upload->body, upload_data, *upload_data_size, MAX_UPLOAD))
            upload->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add (&self->requests, 1);
    cv_log_debug (self->config->log, "%s %s", method, url);
    if (strcmp (url, "/healthz") == 0)
        return s_json (connection, 200, json_pack ("{s:b}", "ok", 1), NULL);
    if (self->config->test_control && strcmp (url, CONTROL_PATH) == 0)
        return s_control (self, connection, method, upload);
    bankapi_route_t route;
    const char *rest;
    if (strncmp (url, FX_PREFIX, strlen (FX_PREFIX)) == 0)
        route = BANKAPI_ROUTE_FX, rest = url + strlen (FX_PREFIX);
    else if (strncmp (url, DELIVERIES_PREFIX, strlen (DELIVERIES_PREFIX)) == 0)
        route = BANKAPI_ROUTE_DELIVERIES, rest = url + strlen (DELIVERIES_PREFIX);
    else
        return s_error (connection, 404, "not_found", "no such path", NULL);
    if (strcmp (method, "GET") != 0)
        return s_error (connection, 405, "method_not_allowed", "use GET", NULL);
    bankapi_verdict_t verdict = bankapi_faults_decide (self->faults, route);
    /* a request's own delay, for benchmarks that need tools of different speeds on one route */
    const char *asked = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "delay_ms");
    if (asked && self->config->test_control && s_from_loopback (connection)) {
        char *end;
        long delay_ms = strtol (asked, &end, 10);
        if (end == asked || *end || delay_ms < 0 || delay_ms > MAX_ASKED_DELAY_MS)
            return s_error (connection, 400, "bad_delay", "delay_ms is a whole number of ms, 0..60000", NULL);
        verdict.delay_ms += (unsigned) delay_ms;
    }
    if (verdict.delay_ms && !cv_mhd_stop_wait (self->stop, connection, verdict.delay_ms))
        return MHD_NO;
    if (verdict.fail)
        return s_fail (self, connection, &verdict.fault);
    return route == BANKAPI_ROUTE_FX ? s_fx (self, connection, rest) : s_delivery (self, connection, rest);
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void) cls, (void) connection, (void) code;
    s_upload_t *upload = *con_cls;
    if (!upload)
        return;
    cv_buffer_release (&upload->body);
    free (upload);
    *con_cls = NULL;
}

/*  --------------------------------------------------------------------------
    The server */

bankapi_server_t *
bankapi_server_new (const bankapi_config_t *config, cv_error_t *err)
{
    assert (config && config->http_address && config->as_of && config->log);
    assert (config->http_port >= 0 && config->http_port <= 65535);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) config->http_port)};
    if (inet_pton (AF_INET, config->http_address, &address.sin_addr) != 1) {
        cv_error_set (err, CV_ERR_INVALID, "bankapi-address", "not an IPv4 address: %s", config->http_address);
        return NULL;
    }
    bankapi_server_t *self = cv_calloc (1, sizeof *self);
    self->config = config;
    if (*config->as_of && !bankapi_data_parse_day (config->as_of, &self->as_of_day)) {
        cv_error_set (err, CV_ERR_INVALID, "as-of", "--as-of must be a date YYYY-MM-DD, not '%s'", config->as_of);
        free (self);
        return NULL;
    }
    self->fixed_day = *config->as_of;
    self->stop = cv_mhd_stop_new ();
    if (!self->stop) {
        cv_error_set (err, CV_ERR_INTERNAL, "", "pipe: %s", strerror (errno));
        free (self);
        return NULL;
    }
    self->faults = bankapi_faults_new ((uint64_t) config->seed);
    if (config->fault.fail_rate || config->fault.delay_ms)
        bankapi_faults_set (self->faults, (bankapi_route_t) config->fault_route, &config->fault);
    atomic_init (&self->requests, 0);
    self->daemon = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL,
                                     s_access, self, MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_NOTIFY_COMPLETED,
                                     s_completed, self, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 512, MHD_OPTION_END);
    if (!self->daemon) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, "bankapi-port", "cannot listen on %s:%d", config->http_address,
                      config->http_port);
        bankapi_server_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : config->http_port;
    return self;
}

void
bankapi_server_destroy (bankapi_server_t **self_p)
{
    assert (self_p);
    bankapi_server_t *self = *self_p;
    if (!self)
        return;
    /* Wake every waiting answer first: libmicrohttpd then joins the connection threads. */
    cv_mhd_stop_raise (self->stop);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    cv_mhd_stop_destroy (&self->stop);
    bankapi_faults_destroy (&self->faults);
    free (self);
    *self_p = NULL;
}

int
bankapi_server_port (const bankapi_server_t *self)
{
    assert (self);
    return self->port;
}

bankapi_faults_t *
bankapi_server_faults (bankapi_server_t *self)
{
    assert (self);
    return self->faults;
}

uint64_t
bankapi_server_requests (bankapi_server_t *self)
{
    assert (self);
    return atomic_load (&self->requests);
}

/*  --------------------------------------------------------------------------
    The actor */

static void
s_actor (zsock_t *pipe, void *args)
{
    const bankapi_config_t *config = args;
    zsock_signal (pipe, 0);
    cv_error_t err;
    cv_error_clear (&err);
    bankapi_server_t *server = bankapi_server_new (config, &err);
    if (!server) {
        cv_actor_failed (pipe, &err);
        cv_actor_wait_term (pipe);
        return;
    }
    cv_actor_ready (pipe);
    cv_log_info (config->log, "serving HTTP on %s:%d%s", config->http_address, bankapi_server_port (server),
                 config->test_control ? ", with the test control on loopback" : "");
    cv_actor_wait_term (pipe);
    bankapi_server_destroy (&server);
}

zactor_t *
bankapi_server_start (const bankapi_config_t *config, cv_error_t *err)
{
    assert (config && config->log);
    return cv_actor_start (s_actor, (void *) config, err);
}

/*  --------------------------------------------------------------------------
    Self-test: the service in process, through cv_http on a loop of the test's own. */

#include "cv_backoff.h"
#include "cv_http.h"

typedef struct {
    bool heard;
    cv_http_result_t result;
    int status;
    char *body;
    char retry_after[64];
    char error[256];
} s_answer_t;

static void
s_test_done (void *arg, const cv_http_outcome_t *outcome)
{
    s_answer_t *answer = arg;
    answer->heard = true;
    answer->result = outcome->result;
    answer->status = outcome->status;
    answer->body = cv_strndup (outcome->body, outcome->body_size);
    const char *retry_after = outcome->result == CV_HTTP_ANSWERED ? outcome->answer_headers[0] : NULL;
    snprintf (answer->retry_after, sizeof answer->retry_after, "%s", retry_after ? retry_after : "");
    snprintf (answer->error, sizeof answer->error, "%s", outcome->error);
}

static int
s_test_heard (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return ((s_answer_t *) arg)->heard ? -1 : 0;
}

typedef struct {
    zloop_t *loop;
    cv_http_t *http;
    int port;
    s_answer_t answer;
} s_client_t;

/* Starts method path on the server, without waiting. */
static void
s_test_start (s_client_t *client, const char *method, const char *path, const char *body, int64_t limit_ms,
              size_t max_body)
{
    free (client->answer.body);
    memset (&client->answer, 0, sizeof client->answer);
    char url[256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", client->port, path);
    const char *wanted[] = {"Retry-After"};
    cv_http_request_t request = {.method = method,
                                 .url = url,
                                 .body = body,
                                 .body_size = body ? strlen (body) : 0,
                                 .until_us = zclock_usecs () + limit_ms * 1000,
                                 .max_body = max_body,
                                 .answer_headers = wanted,
                                 .answer_header_count = 1};
    assert (cv_http_start (client->http, &request, s_test_done, &client->answer));
}

/* Runs the loop until the request started last is heard of. */
static void
s_test_wait (s_client_t *client)
{
    int check = zloop_timer (client->loop, 2, 0, s_test_heard, &client->answer);
    zloop_start (client->loop);
    zloop_timer_end (client->loop, check);
    assert (client->answer.heard);
}

/* One request, answered (or not) before this returns; the answer is in client->answer. */
static void
s_test (s_client_t *client, const char *method, const char *path, const char *body, int64_t limit_ms, size_t max_body)
{
    s_test_start (client, method, path, body, limit_ms, max_body);
    s_test_wait (client);
}

typedef struct {
    bankapi_server_t *server;
    uint64_t before;
} s_test_arrived_t;

static int
s_test_arrived (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_test_arrived_t *arrived = arg;
    return bankapi_server_requests (arrived->server) > arrived->before ? -1 : 0;
}

/* A 200 JSON answer's document (new reference), asserted. */
static json_t *
s_test_json (s_client_t *client, const char *path)
{
    s_test (client, "GET", path, NULL, 5000, 65536);
    cv_assert_that (client->answer.result == CV_HTTP_ANSWERED && client->answer.status == 200, "%s: %d %s", path,
                    client->answer.status, client->answer.error);
    json_t *document = json_loads (client->answer.body, 0, NULL);
    assert (json_is_object (document));
    return document;
}

static void
s_test_fault (s_client_t *client, const char *fault)
{
    s_test (client, "POST", CONTROL_PATH, fault, 5000, 65536);
    cv_assert_that (client->answer.status == 200, "%s: %s", fault, client->answer.body);
}

void
bankapi_server_test (bool verbose)
{
    cv_log_t *log = cv_log_new ("bankapi", "test", verbose);
    bankapi_config_t config = {
        .http_address = "127.0.0.1", .as_of = "2026-11-21", .seed = 7, .test_control = true, .log = log};
    cv_error_t err = {0};
    bankapi_server_t *server = bankapi_server_new (&config, &err);
    cv_assert_that (server, "%s", err.message);
    s_client_t client = {.loop = zloop_new (), .port = bankapi_server_port (server)};
    client.http = cv_http_new (client.loop, &err);
    assert (client.http && client.port > 0);

    /* health, rates and parcels */
    json_t *document = s_test_json (&client, "/healthz");
    json_decref (document);
    /* a request may ask for its own delay, with the test control on */
    int64_t asked_at = zclock_mono ();
    document = s_test_json (&client, "/v1/fx/EUR/GBP?delay_ms=40");
    assert (zclock_mono () - asked_at >= 40);
    json_decref (document);
    s_test (&client, "GET", "/v1/fx/EUR/GBP?delay_ms=soon", NULL, 5000, 65536);
    assert (client.answer.status == 400 && strstr (client.answer.body, "bad_delay"));
    document = s_test_json (&client, "/healthz");
    assert (json_is_true (json_object_get (document, "ok")));
    json_decref (document);
    document = s_test_json (&client, "/v1/fx/EUR/GBP");
    assert (json_real_value (json_object_get (document, "rate")) == 0.86);
    assert (streq (json_string_value (json_object_get (document, "as_of")), "2026-11-21"));
    assert (strstr (client.answer.body, "\"rate\":0.86,"));
    json_decref (document);
    document = s_test_json (&client, "/v1/deliveries/CP482913374IE");
    bankapi_delivery_t parcel;
    int64_t today = 0;
    assert (bankapi_data_parse_day ("2026-11-21", &today) && bankapi_data_delivery ("CP482913374IE", today, &parcel));
    char expected[11];
    bankapi_data_format_day (parcel.expected_day, expected);
    assert (streq (json_string_value (json_object_get (document, "status")), parcel.status));
    assert (streq (json_string_value (json_object_get (document, "expected_date")), expected));
    assert (streq (json_string_value (json_object_get (document, "carrier")), "An Post"));
    json_decref (document);
    const struct {
        const char *method, *path;
        int status;
    } refused[] = {
        {"GET", "/v1/fx/EUR/JPY", 404},         {"GET", "/v1/fx/EUR/EUR", 400},  {"GET", "/v1/fx/EUR", 404},
        {"GET", "/v1/fx/EUR/GBP/USD", 404},     {"POST", "/v1/fx/EUR/GBP", 405}, {"GET", "/v1/deliveries/CP1IE", 404},
        {"GET", "/v1/deliveries/CP%2F..", 404}, {"GET", "/nowhere", 404}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        s_test (&client, refused[i].method, refused[i].path, NULL, 5000, 65536);
        cv_assert_that (client.answer.status == refused[i].status && strstr (client.answer.body, "\"error\""),
                        "%s %s: %d", refused[i].method, refused[i].path, client.answer.status);
    }

    /* a 429 with Retry-After on one route, which a caller reads as worth retrying later; the
       other route answers as usual */
    s_test_fault (&client, "{\"route\":\"fx\",\"mode\":\"status\",\"status\":429,\"retry_after\":\"2\"}");
    s_test (&client, "GET", "/v1/fx/EUR/GBP", NULL, 5000, 65536);
    assert (client.answer.status == 429 && streq (client.answer.retry_after, "2"));
    uint64_t wait_ms = 0;
    assert (cv_backoff_retry_after (client.answer.retry_after, 0, &wait_ms) == 0 && wait_ms == 2000);
    assert (cv_backoff_retryable (CV_BACKOFF_HTTP, client.answer.status));
    document = s_test_json (&client, "/v1/deliveries/CP482913374IE");
    json_decref (document);

    /* each way of failing, as the client sees it */
    s_test_fault (&client, "{\"route\":\"deliveries\",\"mode\":\"status\"}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 65536);
    assert (client.answer.status == 500 && streq (client.answer.retry_after, ""));
    s_test_fault (&client, "{\"route\":\"deliveries\",\"mode\":\"malformed\"}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 65536);
    assert (client.answer.status == 200);
    json_t *broken = json_loads (client.answer.body, 0, NULL);
    assert (!broken);
    s_test_fault (&client, "{\"route\":\"deliveries\",\"mode\":\"oversized\"}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 65536);
    assert (client.answer.result == CV_HTTP_TOO_LARGE && strstr (client.answer.error, "response over 65536 bytes"));
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 2 * BANKAPI_OVERSIZED_BYTES);
    assert (client.answer.status == 200 && strlen (client.answer.body) == BANKAPI_OVERSIZED_BYTES);
    document = json_loads (client.answer.body, 0, NULL);
    assert (json_is_object (document));
    json_decref (document);
    s_test_fault (&client, "{\"route\":\"deliveries\",\"mode\":\"close\"}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 65536);
    cv_assert_that (client.answer.result == CV_HTTP_CLOSED, "%s", client.answer.error);
    s_test_fault (&client, "{\"route\":\"deliveries\",\"mode\":\"hang\"}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 100, 65536);
    cv_assert_that (client.answer.result == CV_HTTP_TIMEOUT, "%s", client.answer.error);
    s_test_fault (&client, "{\"route\":\"deliveries\",\"delay_ms\":20}");
    s_test (&client, "GET", "/v1/deliveries/CP482913374IE", NULL, 5000, 65536);
    assert (client.answer.status == 200);

    /* the control: what is set, mistakes refused, and back to well behaved */
    s_test (&client, "GET", CONTROL_PATH, NULL, 5000, 65536);
    document = json_loads (client.answer.body, 0, NULL);
    assert (json_integer_value (json_object_get (json_object_get (document, "deliveries"), "delay_ms")) == 20);
    assert (json_integer_value (json_object_get (json_object_get (document, "fx"), "status")) == 429);
    json_decref (document);
    s_test (&client, "POST", CONTROL_PATH, "{\"route\":\"fx\",\"mode\":\"explode\"}", 5000, 65536);
    assert (client.answer.status == 400 && strstr (client.answer.body, "mode must be"));
    s_test (&client, "PUT", CONTROL_PATH, "{}", 5000, 65536);
    assert (client.answer.status == 405);
    s_test (&client, "DELETE", CONTROL_PATH, NULL, 5000, 65536);
    assert (client.answer.status == 200);
    document = s_test_json (&client, "/v1/fx/GBP/EUR");
    json_decref (document);

    /* stopping with an answer hanging: it returns, and the client sees the connection end */
    s_test_fault (&client, "{\"route\":\"fx\",\"mode\":\"hang\"}");
    uint64_t before = bankapi_server_requests (server);
    s_test_start (&client, "GET", "/v1/fx/EUR/GBP", NULL, 10000, 65536);
    s_test_arrived_t arrived = {server, before};
    int check = zloop_timer (client.loop, 2, 0, s_test_arrived, &arrived);
    zloop_start (client.loop); /* the request goes out and reaches the server */
    zloop_timer_end (client.loop, check);
    bankapi_server_destroy (&server);
    s_test_wait (&client);
    /* closed; or refused, when libcurl had reused a kept-alive connection and, as it does when
       one dies before any answer, tried once more on a new one */
    cv_assert_that (client.answer.result == CV_HTTP_CLOSED || client.answer.result == CV_HTTP_REFUSED, "%s",
                    client.answer.error);

    /* without the control, and with a fault from the flags on one route */
    config.test_control = false;
    config.fault = (bankapi_fault_t){.fail_rate = 100, .mode = BANKAPI_FAIL_STATUS, .status = 503};
    config.fault_route = BANKAPI_ROUTE_FX;
    server = bankapi_server_new (&config, &err);
    assert (server);
    client.port = bankapi_server_port (server);
    s_test (&client, "GET", CONTROL_PATH, NULL, 5000, 65536);
    assert (client.answer.status == 404);
    s_test (&client, "GET", "/v1/fx/EUR/GBP", NULL, 5000, 65536);
    assert (client.answer.status == 503);
    document = s_test_json (&client, "/v1/deliveries/CP482913374IE");
    json_decref (document);
    bankapi_server_destroy (&server);

    /* what cannot start */
    config.as_of = "21/11/2026";
    assert (!bankapi_server_new (&config, &err) && strstr (err.message, "--as-of must be a date"));
    config.as_of = "";
    config.http_address = "localhost";
    assert (!bankapi_server_new (&config, &err) && strstr (err.message, "not an IPv4 address"));

    free (client.answer.body);
    cv_http_destroy (&client.http);
    zloop_destroy (&client.loop);
    cv_log_destroy (&log);
    if (verbose)
        printf ("bankapi_server: ok\n");
}
