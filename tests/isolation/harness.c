/* A test harness that plays the orchestrator for one worker over real sockets. */
#include "harness.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_pg.h"

struct _harness_t {
    zsock_t *router;
    char *endpoint;
    zframe_t *worker;  /* routing id of the worker that said READY */
    uint32_t capacity; /* ...and the capacity it said */
};

harness_t *
harness_new (void)
{
    harness_t *self = cv_calloc (1, sizeof *self);
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self->router, 0);
    int port = zsock_bind (self->router, "tcp://127.0.0.1:*");
    assert (port > 0);
    self->endpoint = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    return self;
}

void
harness_destroy (harness_t **self_p)
{
    harness_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->router);
    zstr_free (&self->endpoint);
    zframe_destroy (&self->worker);
    free (self);
    *self_p = NULL;
}

const char *
harness_endpoint (harness_t *self)
{
    return self->endpoint;
}

/* Receives the next protocol message within the time left; NULL on timeout. */
static zmsg_t *
s_recv (harness_t *self, int64_t until, zframe_t **peer)
{
    while (true) {
        int64_t left = until - zclock_mono ();
        if (left <= 0)
            return NULL;
        zpoller_t *poller = zpoller_new (self->router, NULL);
        void *ready = zpoller_wait (poller, (int) left);
        zpoller_destroy (&poller);
        if (!ready)
            return NULL;
        zmsg_t *msg = zmsg_recv (self->router);
        if (!msg)
            return NULL;
        *peer = zmsg_pop (msg);
        return msg;
    }
}

bool
harness_wait_ready (harness_t *self, const char *service, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (true) {
        zframe_t *peer = NULL;
        zmsg_t *msg = s_recv (self, until, &peer);
        if (!msg)
            return false;
        cv_mdp_message_t message;
        cv_error_t err;
        bool ready = cv_mdp_decode (&msg, &message, &err) == 0 && message.command == CV_MDP_READY
                     && streq (message.service, service);
        uint32_t capacity = ready ? message.capacity : 0;
        cv_mdp_message_reset (&message);
        if (ready) {
            zframe_destroy (&self->worker);
            self->worker = peer;
            self->capacity = capacity;
            return true;
        }
        zframe_destroy (&peer);
    }
}

uint32_t
harness_capacity (harness_t *self)
{
    return self->capacity;
}

static void
s_send_raw (harness_t *self, const void *data, size_t size)
{
    assert (self->worker);
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, data, size);
    zframe_t *peer = zframe_dup (self->worker);
    zmsg_prepend (msg, &peer);
    zmsg_send (&msg, self->router);
}

void
harness_send (harness_t *self, const cv_envelope_t *request)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (request, &size);
    s_send_raw (self, packed, size);
    free (packed);
}

cv_envelope_t *
harness_request_raw (harness_t *self, const void *data, size_t size, int timeout_ms)
{
    s_send_raw (self, data, size);
    return harness_receive (self, timeout_ms);
}

cv_envelope_t *
harness_receive (harness_t *self, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (true) {
        zframe_t *from = NULL;
        zmsg_t *msg = s_recv (self, until, &from);
        if (!msg)
            return NULL;
        cv_mdp_message_t message;
        cv_error_t err;
        int rc = cv_mdp_decode (&msg, &message, &err);
        if (rc == 0 && message.command == CV_MDP_HEARTBEAT) {
            zmsg_t *beat = cv_mdp_command (CV_MDP_HEARTBEAT);
            zmsg_prepend (beat, &from);
            zmsg_send (&beat, self->router);
        }
        zframe_destroy (&from);
        if (rc == 0 && message.command == CV_MDP_REPLY) {
            cv_envelope_t *reply = cv_envelope_unpack (zframe_data (message.body), zframe_size (message.body), &err);
            cv_mdp_message_reset (&message);
            return reply;
        }
        cv_mdp_message_reset (&message);
    }
}

cv_envelope_t *
harness_request (harness_t *self, const cv_envelope_t *request, int timeout_ms)
{
    size_t size;
    uint8_t *packed = cv_envelope_pack (request, &size);
    cv_envelope_t *reply = harness_request_raw (self, packed, size, timeout_ms);
    free (packed);
    return reply;
}

void
harness_send_command (harness_t *self, cv_mdp_command_t command)
{
    assert (self->worker);
    zmsg_t *msg = cv_mdp_command (command);
    zframe_t *peer = zframe_dup (self->worker);
    zmsg_prepend (msg, &peer);
    zmsg_send (&msg, self->router);
}

cv_envelope_t *
harness_probe (const char *endpoint, int timeout_ms)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_set_linger (req, 0);
    zsock_set_rcvtimeo (req, timeout_ms);
    if (zsock_connect (req, "%s", endpoint)) {
        zsock_destroy (&req);
        return NULL;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *probe = cv_envelope_new (arena, "", "", 0, 1);
    cv_envelope_set_probe (probe, arena);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    zframe_t *frame = zframe_new (packed, size);
    free (packed);
    zframe_send (&frame, req, 0);
    zframe_t *answer = zframe_recv (req);
    cv_envelope_t *reply = NULL;
    if (answer) {
        cv_error_t err;
        reply = cv_envelope_unpack (zframe_data (answer), zframe_size (answer), &err);
        zframe_destroy (&answer);
    }
    cv_arena_destroy (&arena);
    zsock_destroy (&req);
    return reply;
}

cv_envelope_t *
harness_envelope (cv_arena_t *arena, int64_t deadline_in_ms)
{
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    char request_id[40];
    cv_envelope_random_hex (request_id, 17);
    return cv_envelope_new (arena, request_id, trace, (uint64_t) (zclock_time () + deadline_in_ms), 1);
}

void
harness_expect_error (const cv_envelope_t *reply, cv_error_code_t code, const char *field, const char *text)
{
    assert (reply);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR, "expected an Error, got %s",
                    cv_envelope_body_name (reply->body_case));
    cv_assert_that (!((int) reply->error->code != (int) code || (field && !streq (reply->error->field, field))
                      || (text && !strstr (reply->error->message, text))),
                    "expected Error %s field %s with '%s', got %s field %s: %s", cv_error_code_name (code),
                    field ? field : "*", text ? text : "", cv_error_code_name ((cv_error_code_t) reply->error->code),
                    reply->error->field, reply->error->message);
}

zactor_t *
harness_start_worker (harness_t *self, cv_worker_config_t *config)
{
    config->broker_endpoint = self->endpoint;
    if (!config->control_endpoint)
        config->control_endpoint = "tcp://127.0.0.1:*";
    if (!config->instance)
        config->instance = "test-1";
    if (!config->capacity)
        config->capacity = 1;
    config->heartbeat_ms = 100;
    if (!config->liveness)
        config->liveness = HARNESS_LIVENESS;
    cv_error_t err;
    zactor_t *worker = cv_worker_start (config, &err);
    cv_assert_that (worker, "worker did not start: %s", err.message);
    assert (harness_wait_ready (self, config->service, 5000));
    return worker;
}

char *
harness_control_endpoint (zactor_t *worker)
{
    zstr_send (worker, "CONTROL");
    char *control = zstr_recv (worker);
    assert (control && strncmp (control, "tcp://127.0.0.1:", 16) == 0);
    return control;
}

void
harness_expect_no_start (cv_worker_config_t *config, const char *text)
{
    config->broker_endpoint = "tcp://127.0.0.1:1";
    config->instance = "test-2";
    config->heartbeat_ms = 100;
    config->liveness = 3;
    cv_error_t err;
    assert (!cv_worker_start (config, &err));
    cv_assert_that (strstr (err.message, text), "expected the worker not to start with '%s', got: %s", text,
                    err.message);
}

int
harness_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    close (fd);
    return ntohs (address.sin_port);
}

char *
harness_pg_fixture_url (void)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    return url;
}

/* url (the owner's, as deploy/local/pg url prints it) with another user. */
static char *
s_as_role (const char *url, const char *role)
{
    const char *owner = "postgresql://conveyor@";
    cv_assert_that (strncmp (url, owner, strlen (owner)) == 0, "unexpected fixture URL %s", url);
    return cv_asprintf ("postgresql://%s@%s", role, url + strlen (owner));
}

char *
harness_pg_fixture_gatherer_url (void)
{
    char *url = harness_pg_fixture_url ();
    char *gatherer = s_as_role (url, "conveyor_gatherer");
    free (url);
    return gatherer;
}

char *
harness_pg_fixture_executor_url (const char *url)
{
    return s_as_role (url, "conveyor_executor");
}

/* The fixture's URL with database name instead of its own (which ends the URL). */
static char *
s_database_url (const char *name)
{
    char *url = harness_pg_fixture_url ();
    char *slash = strrchr (url, '/');
    cv_assert_that (slash && streq (slash, "/conveyor"), "unexpected fixture URL %s", url);
    *slash = '\0';
    char *other = cv_asprintf ("%s/%s", url, name);
    free (url);
    return other;
}

/* Runs sql on the fixture server's postgres database, as the owner. */
static void
s_admin (const char *sql)
{
    char *url = s_database_url ("postgres");
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "harness", &err);
    cv_assert_that (pg, "%s", err.message);
    cv_assert_that (cv_pg_run (pg, sql, 0, NULL, &err) == 0, "%s: %s", sql, err.message);
    cv_pg_destroy (&pg);
    free (url);
}

char *
harness_pg_database_new (const char *name)
{
    assert (name && strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen (name));
    char *sql = cv_asprintf ("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    s_admin (sql);
    free (sql);
    sql = cv_asprintf ("CREATE DATABASE %s TEMPLATE conveyor_template", name);
    s_admin (sql);
    free (sql);
    return s_database_url (name);
}

void
harness_pg_database_drop (const char *name)
{
    assert (name && strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen (name));
    char *sql = cv_asprintf ("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    s_admin (sql);
    free (sql);
}

char *
harness_agent_text (const char *appended)
{
    FILE *file = fopen (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", "r");
    assert (file);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    char chunk[4096];
    size_t read;
    while ((read = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, read, out);
    fclose (file);
    fputs (appended, out);
    fclose (out);
    return text;
}
