/* Isolation test of the orchestrator actor (orchestrator_server): the whole actor, started with
   orchestrator_server_start on loopback ports the kernel picks, against a database of its own in
   the pg fixture's PostgreSQL (created for the run, migrated by the actor when it starts, dropped
   at the end), driven over its real sockets:
     - fake workers in this process, one DEALER per service speaking cv_mdp (READY, heartbeats
       answered, each request answered with a hand-made envelope, or held until the test answers
       it, or answered with garbage);
     - HTTP through libcurl, each exchange in an actor of its own that sends its answer back as one
       message;
     - probes over REQ to the control endpoint;
     - for a store that goes away mid-request, a TCP proxy in front of PostgreSQL that the test cuts
       and restores.
   It covers the happy path with the checkpoints as the workers' bytes, the three durability modes,
   idempotency keys (and two rows racing for one key), garbage from workers, back-pressure,
   PostgreSQL away at start, gone mid-request and too slow mid-request, probes through the
   orchestrator, and $TERM with requests open, then their recovery by a new orchestrator.

   One zloop in the test's thread runs the fake workers, the probe socket and the HTTP answers. Each
   wait runs it until a condition holds, bounded by a timeout so that a broken orchestrator fails
   the test instead of hanging it. Nothing sleeps. */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "cv_alloc.h"
#include "cv_envelope.h"
#include "cv_mdp.h"
#include "cv_msgpack.h"
#include "cv_pg.h"
#include "orchestrator_server.h"

#define HEARTBEAT_MS 50
#define LIVENESS 20  /* a fake stays registered through the test's own short blocking work */
#define WAIT_MS 5000 /* for what should happen soon: only a broken orchestrator makes a wait take this long */
#define CHECK_MS 5   /* how often a wait checks what no message announces (the database) */
#define CAPACITY 4
#define MAX_FAKES 8
#define MAX_REQUESTS 32
#define MAX_SCRIPT 8

static const char *s_services[] = {"intent", "gatherer", "decision", "responder"};
static const char *s_stages[] = {"intent", "gather", "decide", "respond"};
static const cv_body_t s_stage_bodies[] = {
    CONVEYOR__V1__ENVELOPE__BODY_INTENT_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
    CONVEYOR__V1__ENVELOPE__BODY_DECIDE_REQUEST, CONVEYOR__V1__ENVELOPE__BODY_RESPOND_REQUEST};

/* What the whole run shares: where PostgreSQL is, and the run's own database. */
typedef struct {
    bool verbose;
    char *fixture_url; /* the fixture's database, to create and drop ours */
    char host[64];
    char port[16];
    char user[64];
    char database[64]; /* ours: orchestrator_test_<pid> */
} run_t;

typedef struct _test_t test_t;
typedef bool (condition_fn) (test_t *test, const void *arg);

/* How a fake worker answers a request. */
typedef enum {
    ANSWER_HOLD,        /* not yet: the test answers it later */
    ANSWER_GOOD,        /* the body its stage expects, made from the request id */
    ANSWER_WRONG_BODY,  /* an Envelope of the wrong body (a Reply for intent, else an Intent) */
    ANSWER_INVALID,     /* the right body, breaking a rule (an Intent's confidence of 2) */
    ANSWER_ERROR,       /* an Error INVALID */
    ANSWER_UNAVAILABLE, /* an Error UNAVAILABLE, which the broker retries */
    ANSWER_MALFORMED    /* a REPLY whose body is not an Envelope */
} answer_t;

/* How a fake worker answers a Probe. */
typedef enum {
    PROBE_PASSES, /* a ProbeResult, ok */
    PROBE_FAILS,  /* a ProbeResult, not ok: its canned check failed, as a real worker says it */
    PROBE_REFUSED /* an Error INVALID */
} probe_answer_t;

/* A fake worker: a DEALER connected to the orchestrator's broker, playing one service. */
typedef struct {
    test_t *test;
    int stage; /* the service it plays, an index into s_services */
    char instance[32];
    zsock_t *dealer;
    answer_t answer;             /* how it answers when nothing is scripted */
    answer_t script[MAX_SCRIPT]; /* how it answers the next requests, first first */
    size_t script_size;
    probe_answer_t probe_answer;           /* how it answers a Probe */
    cv_envelope_t *requests[MAX_REQUESTS]; /* each stage request received, oldest first */
    size_t arrival[MAX_REQUESTS];          /* ...and its place among every fake's arrivals */
    uint8_t *sent[MAX_REQUESTS];           /* the bytes of a good answer to it, once sent */
    size_t sent_size[MAX_REQUESTS];
    size_t request_count;
    size_t probes;     /* Probes received */
    size_t heartbeats; /* HEARTBEATs received: the first says it is registered */
} fake_t;

/* One HTTP exchange, run by libcurl in an actor of its own. The request fields are set before the
   actor starts and only read by it; the answer fields are filled from the message it sends. */
typedef struct {
    test_t *test;
    char *method;
    char *url;
    char *body; /* NULL: none */
    zactor_t *actor;
    bool answered;
    long status;       /* 0 when libcurl failed */
    char *retry_after; /* the Retry-After header, NULL when there was none */
    char *text;        /* the answer's body */
    json_t *document;  /* ...parsed, NULL when it is not JSON */
} http_call_t;

struct _test_t {
    const run_t *run;
    zloop_t *loop;
    cv_log_t *log;
    char instance[64];
    char database_url[512];
    orchestrator_config_t config;
    zactor_t *server;
    int http_port;
    char *broker;
    char *control;
    zsock_t *prober;            /* REQ to the control endpoint */
    cv_envelope_t *probe_reply; /* the last answer it got */
    fake_t *fakes[MAX_FAKES];
    size_t fake_count;
    size_t arrivals;         /* stage requests received by all fakes */
    cv_pg_t *pg;             /* the test's own connection, to look at what was committed */
    zactor_t *proxy;         /* in front of PostgreSQL, when the case has one */
    condition_fn *condition; /* what the running loop waits for */
    const void *condition_arg;
    int64_t until; /* mono ms when that wait gives up */
};

/*  --------------------------------------------------------------------------
    Waiting: the loop runs until a condition holds or the wait times out */

static bool
s_waited_for (test_t *test)
{
    return test->condition && test->condition (test, test->condition_arg);
}

/* The check timer: ends the loop once the condition holds (for conditions no message announces)
   or the time is up. */
static int
s_check (zloop_t *loop, int timer_id, void *arg)
{
    test_t *test = arg;
    return s_waited_for (test) || zclock_mono () >= test->until ? -1 : 0;
}

/* Runs the loop until condition holds, at most timeout_ms; true when it held. */
static bool
s_run_until (test_t *test, condition_fn *condition, const void *arg, int timeout_ms)
{
    test->condition = condition;
    test->condition_arg = arg;
    test->until = zclock_mono () + timeout_ms;
    if (!s_waited_for (test)) {
        int timer = zloop_timer (test->loop, CHECK_MS, 0, s_check, test);
        zloop_start (test->loop);
        zloop_timer_end (test->loop, timer);
    }
    bool met = s_waited_for (test);
    test->condition = NULL;
    return met;
}

typedef struct {
    const size_t *counter;
    size_t target;
} count_t;

static bool
s_count_reached (test_t *test, const void *arg)
{
    const count_t *count = arg;
    return *count->counter >= count->target;
}

/* Waits until *counter reaches target; aborts when it does not in time. */
static void
s_wait_count (test_t *test, const size_t *counter, size_t target, const char *what)
{
    count_t count = {counter, target};
    cv_assert_that (s_run_until (test, s_count_reached, &count, WAIT_MS),
                    "timed out waiting for %s to reach %zu (it is %zu)", what, target, *counter);
}

/*  --------------------------------------------------------------------------
    Small helpers */

static void
s_expect_streq (const char *what, const char *got, const char *expected)
{
    cv_assert_that (!(!got || !streq (got, expected)), "%s: expected \"%s\", got \"%s\"", what, expected,
                    got ? got : "(null)");
}

static void
s_expect_contains (const char *what, const char *got, const char *fragment)
{
    cv_assert_that (!(!got || !strstr (got, fragment)), "%s: expected it to contain \"%s\", got \"%s\"", what, fragment,
                    got ? got : "(null)");
}

/* The value at a dotted path ("error.code") in document, or NULL. */
static json_t *
s_at (json_t *document, const char *path)
{
    char copy[128];
    snprintf (copy, sizeof copy, "%s", path);
    json_t *value = document;
    char *save;
    for (char *key = strtok_r (copy, ".", &save); key && value; key = strtok_r (NULL, ".", &save))
        value = json_object_get (value, key);
    return value;
}

static const char *
s_text_at (json_t *document, const char *path)
{
    return json_string_value (s_at (document, path));
}

/* A loopback port nobody listens on: the kernel's choice, bound and closed again. */
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    close (fd);
    return ntohs (address.sin_port);
}

/* A connection string for database on port of the fixture's host, as the fixture's user. */
static void
s_conninfo (const run_t *run, const char *port, const char *database, char *buffer, size_t size)
{
    snprintf (buffer, size, "host=%s port=%s user=%s dbname=%s connect_timeout=5", run->host, port, run->user,
              database);
}

static char *
s_hex (const uint8_t *data, size_t size)
{
    char *hex = cv_malloc (2 * size + 1);
    for (size_t i = 0; i < size; i++)
        snprintf (hex + 2 * i, 3, "%02x", data[i]);
    hex[2 * size] = '\0';
    return hex;
}

/* value (taken) as msgpack, in arena. */
static ProtobufCBinaryData
s_msgpack (cv_arena_t *arena, json_t *value)
{
    assert (value);
    cv_error_t err;
    size_t size;
    uint8_t *packed = cv_msgpack_pack (value, &size, &err);
    assert (packed);
    json_decref (value);
    ProtobufCBinaryData data = {.len = size, .data = cv_arena_memdup (arena, packed, size)};
    free (packed);
    return data;
}

/* Asserts data is msgpack of expected (taken). */
static void
s_expect_msgpack (const char *what, ProtobufCBinaryData data, json_t *expected)
{
    cv_error_t err;
    json_t *got = cv_msgpack_unpack (data.data, data.len, what, &err);
    if (!got || !json_equal (got, expected)) {
        char *text = got ? json_dumps (got, JSON_COMPACT) : NULL;
        cv_assert_that (false, "%s: unexpected msgpack %s", what, text ? text : err.message);
    }
    json_decref (got);
    json_decref (expected);
}

/* The free-form values the fakes send: the request id in a map, and tool rows. */
static json_t *
s_request_map (const char *request_id)
{
    return json_pack ("{s:s}", "request", request_id);
}

static json_t *
s_tool_rows (const char *request_id)
{
    return json_pack ("[{s:s, s:s}]", "request", request_id, "last4", "9052");
}

/*  --------------------------------------------------------------------------
    What the fake workers answer: made from the request id, so that every later stage can be
    checked to carry it */

static char *
s_reply_text (const char *request_id)
{
    return zsys_sprintf ("Your card ending 9052 is on its way (%s).", request_id);
}

static void
s_build_intent (cv_arena_t *arena, cv_envelope_t *reply, float confidence)
{
    Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
    intent->name = "card_arrival";
    intent->confidence = confidence;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    intent->rule = "card_arrival:1";
    intent->slots = s_msgpack (arena, s_request_map (reply->request_id));
}

static void
s_build_evidence (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__ToolResult *result = cv_envelope_tool_result_new (arena);
    result->tool = "cards_in_delivery";
    result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
    result->data = s_msgpack (arena, s_tool_rows (reply->request_id));
    result->elapsed_us = 800;
    Conveyor__V1__Evidence *evidence = cv_envelope_set_evidence (reply, arena);
    evidence->n_results = 1;
    evidence->results = cv_arena_alloc (arena, sizeof *evidence->results);
    evidence->results[0] = result;
}

static void
s_build_decision (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__Action *action = cv_envelope_action_new (arena);
    action->id = "a-1";
    action->kind = "notify";
    action->params = s_msgpack (arena, s_request_map (reply->request_id));
    Conveyor__V1__Decision *decision = cv_envelope_set_decision (reply, arena);
    decision->outcome = "answer";
    decision->rule = "card_on_its_way";
    decision->reason = "the card is on its way";
    decision->n_actions = 1;
    decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
    decision->actions[0] = action;
}

static void
s_build_reply (cv_arena_t *arena, cv_envelope_t *reply)
{
    Conveyor__V1__Reply *body = cv_envelope_set_reply (reply, arena);
    char *text = s_reply_text (reply->request_id);
    body->text = cv_arena_strdup (arena, text);
    zstr_free (&text);
    body->template_ = "card_on_its_way";
}

/* The checks of what a later stage carries: what the fakes answer for request_id. */
static void
s_expect_intent (const Conveyor__V1__Intent *intent, const char *request_id)
{
    assert (intent);
    s_expect_streq ("intent.name", intent->name, "card_arrival");
    s_expect_streq ("intent.rule", intent->rule, "card_arrival:1");
    assert (intent->confidence == 0.875f && intent->method == CONVEYOR__V1__INTENT__METHOD__RULE);
    s_expect_msgpack ("intent.slots", intent->slots, s_request_map (request_id));
}

static void
s_expect_evidence (const Conveyor__V1__Evidence *evidence, const char *request_id)
{
    assert (evidence && evidence->n_results == 1);
    s_expect_streq ("evidence tool", evidence->results[0]->tool, "cards_in_delivery");
    assert (evidence->results[0]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
    s_expect_msgpack ("evidence data", evidence->results[0]->data, s_tool_rows (request_id));
}

static void
s_expect_decision (const Conveyor__V1__Decision *decision, const char *request_id)
{
    assert (decision && decision->n_actions == 1);
    s_expect_streq ("decision.outcome", decision->outcome, "answer");
    s_expect_streq ("decision.rule", decision->rule, "card_on_its_way");
    s_expect_streq ("action id", decision->actions[0]->id, "a-1");
    s_expect_msgpack ("action params", decision->actions[0]->params, s_request_map (request_id));
}

/* What a worker sends: the envelope packed, with its schema_version moved after the body. A
   decoder takes fields in any order, but protobuf-c writes them in field order, so bytes that the
   orchestrator re-encoded would differ from these: a checkpoint equal to them holds the worker's
   own bytes. */
static uint8_t *
s_worker_bytes (cv_envelope_t *reply, size_t *size)
{
    assert (reply->schema_version == CV_SCHEMA_VERSION);
    reply->schema_version = 0; /* proto3 leaves a zero out */
    size_t packed_size;
    uint8_t *packed = cv_envelope_pack (reply, &packed_size);
    reply->schema_version = CV_SCHEMA_VERSION;
    uint8_t *bytes = cv_malloc (packed_size + 2);
    memcpy (bytes, packed, packed_size);
    bytes[packed_size] = 7 << 3; /* field 7 (schema_version), varint */
    bytes[packed_size + 1] = CV_SCHEMA_VERSION;
    free (packed);
    *size = packed_size + 2;
    return bytes;
}

/*  --------------------------------------------------------------------------
    Fake workers */

static void
s_fake_send (fake_t *fake, zmsg_t **msg_p)
{
    int rc = zmsg_send (msg_p, fake->dealer);
    assert (rc == 0);
}

static void
s_fake_ready (fake_t *fake)
{
    zmsg_t *msg = cv_mdp_ready (s_services[fake->stage], fake->instance, CAPACITY);
    s_fake_send (fake, &msg);
}

/* Sends the given string frames, NULL-terminated, as one message: traffic off the protocol. */
static void
s_fake_send_strings (fake_t *fake, const char *frame, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, frame);
    for (; frame; frame = va_arg (args, const char *))
        zmsg_addstr (msg, frame);
    va_end (args);
    s_fake_send (fake, &msg);
}

/* Sends reply as a REPLY; its bytes are returned when keep is true (the caller frees them). */
static uint8_t *
s_fake_send_reply (fake_t *fake, cv_envelope_t *reply, bool keep, size_t *size)
{
    uint8_t *bytes = s_worker_bytes (reply, size);
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REPLY, bytes, *size);
    s_fake_send (fake, &msg);
    if (!keep)
        free (bytes);
    return keep ? bytes : NULL;
}

static void
s_fake_send_error (fake_t *fake, const cv_envelope_t *request, cv_error_code_t code, const char *message)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    cv_error_t err;
    cv_error_set (&err, code, NULL, "%s", message);
    cv_envelope_set_error (reply, arena, &err);
    size_t size;
    s_fake_send_reply (fake, reply, false, &size);
    cv_arena_destroy (&arena);
}

/* Answers the index-th request fake received. */
static void
s_fake_answer (fake_t *fake, size_t index, answer_t answer)
{
    assert (index < fake->request_count && answer != ANSWER_HOLD);
    const cv_envelope_t *request = fake->requests[index];
    char message[128];
    if (answer == ANSWER_MALFORMED) {
        static const char garbage[] = "\xff\xff\xff not an envelope";
        zmsg_t *msg = cv_mdp_with_body (CV_MDP_REPLY, garbage, sizeof garbage - 1);
        s_fake_send (fake, &msg);
        return;
    }
    if (answer == ANSWER_ERROR || answer == ANSWER_UNAVAILABLE) {
        snprintf (message, sizeof message, "the fake %s %s", s_services[fake->stage],
                  answer == ANSWER_ERROR ? "refuses this request" : "is busy");
        s_fake_send_error (fake, request, answer == ANSWER_ERROR ? CV_ERR_INVALID : CV_ERR_UNAVAILABLE, message);
        return;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    if (answer == ANSWER_WRONG_BODY) {
        if (fake->stage == 0)
            s_build_reply (arena, reply);
        else
            s_build_intent (arena, reply, 0.875f);
    } else if (answer == ANSWER_INVALID) {
        assert (fake->stage == 0);
        s_build_intent (arena, reply, 2.0f);
    } else {
        switch (fake->stage) {
        case 0:
            s_build_intent (arena, reply, 0.875f);
            break;
        case 1:
            s_build_evidence (arena, reply);
            break;
        case 2:
            s_build_decision (arena, reply);
            break;
        default:
            s_build_reply (arena, reply);
            break;
        }
    }
    bool good = answer == ANSWER_GOOD;
    size_t size;
    uint8_t *bytes = s_fake_send_reply (fake, reply, good, &size);
    if (good) {
        free (fake->sent[index]);
        fake->sent[index] = bytes;
        fake->sent_size[index] = size;
    }
    cv_arena_destroy (&arena);
}

/* Answers every request it holds. */
static void
s_fake_answer_held (fake_t *fake, answer_t answer)
{
    for (size_t i = 0; i < fake->request_count; i++)
        if (!fake->sent[i])
            s_fake_answer (fake, i, answer);
}

/* The last request fake received for request_id, or -1. */
static int
s_fake_find (const fake_t *fake, const char *request_id)
{
    for (size_t i = fake->request_count; i > 0; i--)
        if (streq (fake->requests[i - 1]->request_id, request_id))
            return (int) i - 1;
    return -1;
}

/* How many requests fake received for request_id. */
static size_t
s_fake_count (const fake_t *fake, const char *request_id)
{
    size_t count = 0;
    for (size_t i = 0; i < fake->request_count; i++)
        count += streq (fake->requests[i]->request_id, request_id);
    return count;
}

/* A stage request as the orchestrator must send it: the body this service takes, valid, with the
   message id "<request>.<stage>.<attempt>", carrying the earlier stages' results. */
static void
s_expect_stage (const fake_t *fake, const cv_envelope_t *request)
{
    cv_error_t err;
    cv_assert_that (!(request->body_case != s_stage_bodies[fake->stage]), "%s got a %s body", fake->instance,
                    cv_envelope_body_name (request->body_case));
    cv_assert_that (
        !(cv_envelope_validate (request, CV_BODY (s_stage_bodies[fake->stage]), (uint64_t) zclock_time (), &err)),
        "%s got an invalid request: %s", fake->instance, err.message);
    char message_id[CV_NAME_MAX_BYTES + 1];
    snprintf (message_id, sizeof message_id, "%s.%s.%u", request->request_id, s_stages[fake->stage], request->attempt);
    s_expect_streq ("message_id", request->message_id, message_id);
    const char *id = request->request_id;
    switch (fake->stage) {
    case 1:
        s_expect_intent (request->gather_request->intent, id);
        break;
    case 2:
        s_expect_intent (request->decide_request->intent, id);
        s_expect_evidence (request->decide_request->evidence, id);
        break;
    case 3:
        s_expect_intent (request->respond_request->intent, id);
        s_expect_evidence (request->respond_request->evidence, id);
        s_expect_decision (request->respond_request->decision, id);
        break;
    default:
        break;
    }
}

static void
s_fake_probe (fake_t *fake, const cv_envelope_t *request)
{
    s_expect_streq ("probe.service", request->probe->service, s_services[fake->stage]);
    if (fake->probe_answer == PROBE_REFUSED) {
        s_fake_send_error (fake, request, CV_ERR_INVALID, "the fake takes no probes today");
        return;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    Conveyor__V1__ProbeResult *result = cv_envelope_set_probe_result (reply, arena);
    result->service = (char *) s_services[fake->stage];
    result->instance = fake->instance;
    result->version = "test";
    result->ok = fake->probe_answer == PROBE_PASSES;
    result->latency_us = 7;
    result->detail = result->ok ? "the fake answers" : "the fake's canned check failed";
    size_t size;
    s_fake_send_reply (fake, reply, false, &size);
    cv_arena_destroy (&arena);
}

static void
s_fake_request (fake_t *fake, zframe_t *body)
{
    cv_error_t err;
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (body), zframe_size (body), &err);
    cv_assert_that (request, "%s: the orchestrator sent a REQUEST that is not an Envelope: %s", fake->instance,
                    err.message);
    if (request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE) {
        fake->probes++;
        s_fake_probe (fake, request);
        cv_envelope_destroy (&request);
        return;
    }
    s_expect_stage (fake, request);
    assert (fake->request_count < MAX_REQUESTS);
    size_t index = fake->request_count++;
    fake->requests[index] = request;
    fake->arrival[index] = ++fake->test->arrivals;
    answer_t answer = fake->answer;
    if (fake->script_size) {
        answer = fake->script[0];
        memmove (fake->script, fake->script + 1, --fake->script_size * sizeof *fake->script);
    }
    if (answer != ANSWER_HOLD)
        s_fake_answer (fake, index, answer);
}

static int
s_fake_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    fake_t *fake = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    cv_mdp_message_t message;
    cv_error_t err;
    cv_assert_that (!(cv_mdp_decode (&msg, &message, &err)), "%s: the orchestrator sent a malformed message: %s",
                    fake->instance, err.message);
    switch (message.command) {
    case CV_MDP_REQUEST:
        s_fake_request (fake, message.body);
        break;
    case CV_MDP_HEARTBEAT: {
        fake->heartbeats++;
        zmsg_t *beat = cv_mdp_command (CV_MDP_HEARTBEAT);
        s_fake_send (fake, &beat);
        break;
    }
    case CV_MDP_DISCONNECT:
        s_fake_ready (fake);
        break;
    default:
        cv_assert_that (false, "%s: the orchestrator sent %s", fake->instance, cv_mdp_command_name (message.command));
    }
    cv_mdp_message_reset (&message);
    return s_waited_for (fake->test) ? -1 : 0;
}

/* A fake worker of service stage, connected and READY (not yet known to be registered). */
static fake_t *
s_fake_new (test_t *test, int stage, answer_t answer)
{
    assert (test->fake_count < MAX_FAKES);
    fake_t *fake = cv_calloc (1, sizeof *fake);
    fake->test = test;
    fake->stage = stage;
    fake->answer = answer;
    snprintf (fake->instance, sizeof fake->instance, "fake-%s-%zu", s_services[stage], test->fake_count + 1);
    fake->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (fake->dealer, 0);
    int rc = zsock_connect (fake->dealer, "%s", test->broker);
    assert (rc == 0);
    rc = zloop_reader (test->loop, fake->dealer, s_fake_readable, fake);
    assert (rc == 0);
    s_fake_ready (fake);
    test->fakes[test->fake_count++] = fake;
    return fake;
}

static void
s_fake_destroy (test_t *test, fake_t **fake_p)
{
    fake_t *fake = *fake_p;
    zloop_reader_end (test->loop, fake->dealer);
    zsock_destroy (&fake->dealer);
    for (size_t i = 0; i < fake->request_count; i++) {
        cv_envelope_destroy (&fake->requests[i]);
        free (fake->sent[i]);
    }
    free (fake);
    *fake_p = NULL;
}

static void
s_fake_script (fake_t *fake, size_t count, ...)
{
    va_list args;
    va_start (args, count);
    for (size_t i = 0; i < count; i++) {
        assert (fake->script_size < MAX_SCRIPT);
        fake->script[fake->script_size++] = (answer_t) va_arg (args, int);
    }
    va_end (args);
}

/* The test's fake of service stage (the first one when there are several). */
static fake_t *
s_fake (test_t *test, int stage)
{
    for (size_t i = 0; i < test->fake_count; i++)
        if (test->fakes[i]->stage == stage)
            return test->fakes[i];
    assert (!"a fake worker serves every stage");
}

static bool
s_fakes_registered (test_t *test, const void *arg)
{
    for (size_t i = 0; i < test->fake_count; i++)
        if (test->fakes[i]->heartbeats == 0)
            return false;
    return true;
}

/* Waits until the broker knows every fake: it heartbeats registered workers only (an unknown
   peer's messages get a DISCONNECT), so a fake's first HEARTBEAT says it is registered. */
static void
s_wait_registered (test_t *test)
{
    bool registered = s_run_until (test, s_fakes_registered, NULL, WAIT_MS);
    assert (registered);
}

/* One fake per service, all answering as answer, registered when this returns. */
static void
s_fakes_start (test_t *test, answer_t answer)
{
    for (int stage = 0; stage < 4; stage++)
        s_fake_new (test, stage, answer);
    s_wait_registered (test);
}

static void
s_wait_requests (fake_t *fake, size_t count)
{
    char what[64];
    snprintf (what, sizeof what, "the requests %s received", fake->instance);
    s_wait_count (fake->test, &fake->request_count, count, what);
}

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
    const http_call_t *call = args;
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
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) 2 * WAIT_MS);
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
    http_call_t *call = arg;
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
    return s_waited_for (call->test) ? -1 : 0;
}

/* Starts an HTTP exchange with the orchestrator; body (JSON text) may be NULL. */
static http_call_t *
s_http (test_t *test, const char *method, const char *path, const char *body)
{
    http_call_t *call = cv_calloc (1, sizeof *call);
    call->test = test;
    call->method = cv_strdup (method);
    call->url = zsys_sprintf ("http://127.0.0.1:%d%s", test->http_port, path);
    call->body = body ? cv_strdup (body) : NULL;
    call->actor = zactor_new (s_http_actor, call);
    int rc = zloop_reader (test->loop, zactor_sock (call->actor), s_http_readable, call);
    assert (rc == 0);
    return call;
}

static http_call_t *
s_post (test_t *test, const char *user_id, const char *text, const char *idempotency_key)
{
    json_t *body = json_pack ("{s:s, s:s}", "user_id", user_id, "text", text);
    if (idempotency_key)
        json_object_set_new (body, "idempotency_key", json_string (idempotency_key));
    char *json = json_dumps (body, JSON_COMPACT);
    http_call_t *call = s_http (test, "POST", "/v1/requests", json);
    free (json);
    json_decref (body);
    return call;
}

static bool
s_call_answered (test_t *test, const void *arg)
{
    return ((const http_call_t *) arg)->answered;
}

/* Waits for the answer and checks it has status. A 503 of the API must say when to retry. */
static void
s_http_expect (http_call_t *call, long status)
{
    cv_assert_that (s_run_until (call->test, s_call_answered, call, WAIT_MS), "%s %s: no answer in %d ms", call->method,
                    call->url, WAIT_MS);
    cv_assert_that (call->status == status, "%s %s: expected %ld, got %ld: %s", call->method, call->url, status,
                    call->status, call->text);
    cv_assert_that (!(call->status == 503 && strstr (call->url, "/v1/") && !call->retry_after),
                    "%s %s: a 503 without Retry-After: %s", call->method, call->url, call->text);
}

static void
s_http_destroy (http_call_t **call_p)
{
    http_call_t *call = *call_p;
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
static const char *
s_request_id (const http_call_t *call)
{
    const char *id = s_text_at (call->document, "request_id");
    assert (id);
    return id;
}

/* Checks a 200 for a request the fakes answered well: done, with the responder's reply. */
static void
s_expect_done (const http_call_t *call)
{
    const char *id = s_request_id (call);
    s_expect_streq ("status", s_text_at (call->document, "status"), "done");
    char *reply = s_reply_text (id);
    s_expect_streq ("reply.text", s_text_at (call->document, "reply.text"), reply);
    zstr_free (&reply);
}

static void
s_expect_error (const http_call_t *call, const char *code)
{
    s_expect_streq ("error.code", s_text_at (call->document, "error.code"), code);
}

/* The readiness check the wait runs, one exchange at a time: true once one answers 200. */
static bool
s_readyz_passes (test_t *test, const void *arg)
{
    http_call_t **call = (http_call_t **) arg;
    if (*call && (*call)->answered && (*call)->status == 200)
        return true;
    if (*call && (*call)->answered)
        s_http_destroy (call);
    if (!*call)
        *call = s_http (test, "GET", "/readyz", NULL);
    return false;
}

/* Waits until /readyz says the orchestrator is ready (PostgreSQL up, every service connected), as
   a deployment's readiness probe does. */
static void
s_wait_ready (test_t *test)
{
    http_call_t *call = NULL;
    bool ready = s_run_until (test, s_readyz_passes, &call, WAIT_MS);
    assert (ready);
    s_http_destroy (&call);
}

/*  --------------------------------------------------------------------------
    Probes over REQ to the control endpoint */

static int
s_prober_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    test_t *test = arg;
    zframe_t *frame = zframe_recv (reader);
    if (!frame)
        return 0;
    cv_error_t err;
    cv_envelope_destroy (&test->probe_reply);
    test->probe_reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    assert (test->probe_reply);
    zframe_destroy (&frame);
    return s_waited_for (test) ? -1 : 0;
}

static bool
s_probe_answered (test_t *test, const void *arg)
{
    return test->probe_reply != NULL;
}

/* Sends data to the control endpoint and waits for its answer (borrowed until the next probe). */
static const cv_envelope_t *
s_control_send (test_t *test, const void *data, size_t size)
{
    cv_envelope_destroy (&test->probe_reply);
    zframe_t *frame = zframe_new (data, size);
    int rc = zframe_send (&frame, test->prober, 0);
    assert (rc == 0);
    bool answered = s_run_until (test, s_probe_answered, NULL, WAIT_MS);
    assert (answered);
    return test->probe_reply;
}

/* A Probe for service ("" for the orchestrator itself); its answer must be a ProbeResult. */
static const Conveyor__V1__ProbeResult *
s_probe (test_t *test, const char *service)
{
    cv_arena_t *arena = cv_arena_new ();
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    cv_envelope_t *probe = cv_envelope_new (arena, "", trace, (uint64_t) zclock_time () + WAIT_MS, 1);
    Conveyor__V1__Probe *body = cv_envelope_set_probe (probe, arena);
    body->service = cv_arena_strdup (arena, service);
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    const cv_envelope_t *reply = s_control_send (test, packed, size);
    free (packed);
    cv_error_t err;
    cv_assert_that (!(cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT), 0, &err)),
                    "probe %s: not a valid ProbeResult: %s", service, err.message);
    s_expect_streq ("probe answer trace_id", reply->trace_id, trace);
    cv_arena_destroy (&arena);
    return reply->probe_result;
}

/*  --------------------------------------------------------------------------
    A TCP proxy in front of PostgreSQL, in an actor of its own, which the test cuts and restores.

    Pipe commands, each answered once done:
      PORT     the port it listens on
      CUT      closes every connection and, until RESTORE, each new one as soon as it comes; OK
      STALL    keeps every connection, old and new, but forwards nothing until RESTORE (a server
               that stopped answering): what comes is held; OK
      RESTORE  forwards what was held, and from then on everything; OK
      HELD     how many bytes clients have sent it while stalled, in all
      $TERM */

typedef struct {
    zloop_t *loop;
    int listener;
    int port;
    struct sockaddr_in upstream;
    bool cut;
    bool stalled;
    size_t held_bytes;
    zlistx_t *links;
} proxy_t;

/* One proxied connection: the client's socket and PostgreSQL's, and what each sent while the
   proxy was stalled. */
typedef struct {
    proxy_t *proxy;
    zmq_pollitem_t items[2];
    char *held[2];
    size_t held_size[2];
} link_t;

static void
s_link_close (link_t *link)
{
    proxy_t *self = link->proxy;
    for (int i = 0; i < 2; i++) {
        zloop_poller_end (self->loop, &link->items[i]);
        close (link->items[i].fd);
        free (link->held[i]);
    }
    void *handle = zlistx_find (self->links, link);
    assert (handle);
    zlistx_delete (self->links, handle);
    free (link);
}

static bool
s_send_all (int fd, const char *data, size_t size)
{
    size_t sent = 0;
    while (sent < size) {
        ssize_t rc = send (fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (rc <= 0)
            return false;
        sent += (size_t) rc;
    }
    return true;
}

static int
s_link_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    link_t *link = arg;
    int from = item->fd == link->items[0].fd ? 0 : 1;
    char buffer[65536];
    ssize_t got = recv (item->fd, buffer, sizeof buffer, 0);
    if (got <= 0) {
        s_link_close (link);
        return 0;
    }
    if (link->proxy->stalled) {
        link->held[from] = cv_realloc (link->held[from], link->held_size[from] + (size_t) got);
        memcpy (link->held[from] + link->held_size[from], buffer, (size_t) got);
        link->held_size[from] += (size_t) got;
        if (from == 0)
            link->proxy->held_bytes += (size_t) got;
    } else if (!s_send_all (link->items[1 - from].fd, buffer, (size_t) got))
        s_link_close (link);
    return 0;
}

static int
s_proxy_accept (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    proxy_t *self = arg;
    int client = accept (self->listener, NULL, NULL);
    if (client < 0)
        return 0;
    int server = self->cut ? -1 : socket (AF_INET, SOCK_STREAM, 0);
    if (server < 0 || connect (server, (struct sockaddr *) &self->upstream, sizeof self->upstream) != 0) {
        if (server >= 0)
            close (server);
        close (client);
        return 0;
    }
    link_t *link = cv_calloc (1, sizeof *link);
    link->proxy = self;
    link->items[0] = (zmq_pollitem_t){.fd = client, .events = ZMQ_POLLIN};
    link->items[1] = (zmq_pollitem_t){.fd = server, .events = ZMQ_POLLIN};
    zlistx_add_end (self->links, link);
    for (int i = 0; i < 2; i++)
        zloop_poller (loop, &link->items[i], s_link_readable, link);
    return 0;
}

/* Forwards what each link held; a link that cannot take it is closed. */
static void
s_proxy_flush (proxy_t *self)
{
    zlistx_t *failed = zlistx_new ();
    for (link_t *link = zlistx_first (self->links); link; link = zlistx_next (self->links))
        for (int from = 0; from < 2; from++) {
            int to = link->items[1 - from].fd;
            if (link->held_size[from] && !s_send_all (to, link->held[from], link->held_size[from]))
                zlistx_add_end (failed, link);
            free (link->held[from]);
            link->held[from] = NULL;
            link->held_size[from] = 0;
        }
    for (link_t *link = zlistx_first (failed); link; link = zlistx_next (failed))
        if (zlistx_find (self->links, link))
            s_link_close (link);
    zlistx_destroy (&failed);
}

static int
s_proxy_command (zloop_t *loop, zsock_t *reader, void *arg)
{
    proxy_t *self = arg;
    char *command = zstr_recv (reader);
    if (!command || streq (command, "$TERM")) {
        zstr_free (&command);
        return -1;
    }
    if (streq (command, "PORT"))
        zstr_sendf (reader, "%d", self->port);
    else if (streq (command, "HELD"))
        zstr_sendf (reader, "%zu", self->held_bytes);
    else {
        if (streq (command, "CUT")) {
            self->cut = true;
            while (zlistx_first (self->links))
                s_link_close (zlistx_first (self->links));
        } else if (streq (command, "STALL"))
            self->stalled = true;
        else if (streq (command, "RESTORE")) {
            self->cut = self->stalled = false;
            s_proxy_flush (self);
        } else
            assert (!"the proxy knows CUT, STALL and RESTORE only");
        zstr_send (reader, "OK");
    }
    zstr_free (&command);
    return 0;
}

static void
s_proxy_actor (zsock_t *pipe, void *args)
{
    const run_t *run = args;
    proxy_t *self = cv_calloc (1, sizeof *self);
    self->upstream = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons ((uint16_t) atoi (run->port))};
    int rc = inet_pton (AF_INET, run->host, &self->upstream.sin_addr);
    assert (rc == 1);
    self->listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (self->listener >= 0 && bind (self->listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (self->listener, 16) == 0);
    assert (getsockname (self->listener, (struct sockaddr *) &address, &size) == 0);
    self->port = ntohs (address.sin_port);
    self->links = zlistx_new ();
    self->loop = zloop_new ();
    zmq_pollitem_t listening = {.fd = self->listener, .events = ZMQ_POLLIN};
    zloop_poller (self->loop, &listening, s_proxy_accept, self);
    zloop_reader (self->loop, pipe, s_proxy_command, self);
    zsock_signal (pipe, 0);
    zloop_start (self->loop);
    while (zlistx_first (self->links))
        s_link_close (zlistx_first (self->links));
    zloop_destroy (&self->loop);
    zlistx_destroy (&self->links);
    close (self->listener);
    free (self);
}

/* Starts the proxy and points the orchestrator's database URL at it. */
static void
s_proxy_start (test_t *test)
{
    test->proxy = zactor_new (s_proxy_actor, (void *) test->run);
    zstr_send (test->proxy, "PORT");
    char *port = zstr_recv (test->proxy);
    s_conninfo (test->run, port, test->run->database, test->database_url, sizeof test->database_url);
    zstr_free (&port);
}

static size_t
s_proxy_held (test_t *test)
{
    zstr_send (test->proxy, "HELD");
    char *held = zstr_recv (test->proxy);
    size_t bytes = (size_t) atol (held);
    zstr_free (&held);
    return bytes;
}

static bool
s_proxy_holds_more (test_t *test, const void *arg)
{
    return s_proxy_held (test) > *(const size_t *) arg;
}

/* Waits until the stalled proxy holds more than it did: an operation has been sent to the store. */
static void
s_wait_held (test_t *test, size_t before)
{
    bool held = s_run_until (test, s_proxy_holds_more, &before, WAIT_MS);
    assert (held);
}

static void
s_proxy_command_ok (test_t *test, const char *command)
{
    zstr_send (test->proxy, command);
    char *answer = zstr_recv (test->proxy);
    s_expect_streq (command, answer, "OK");
    zstr_free (&answer);
}

/*  --------------------------------------------------------------------------
    The database, as the test's own connection sees it */

/* Runs sql with one text parameter; the caller clears the result. */
static PGresult *
s_query (test_t *test, const char *sql, const char *param)
{
    cv_error_t err;
    const char *params[] = {param};
    PGresult *result = cv_pg_exec (test->pg, sql, param ? 1 : 0, params, &err);
    cv_assert_that (result, "%s: %s", sql, err.message);
    return result;
}

/* The request's status, "" when it has no row. */
static char *
s_db_status (test_t *test, const char *id)
{
    PGresult *result = s_query (test, "SELECT status FROM requests WHERE id = $1", id);
    char *status = cv_strdup (PQntuples (result) ? PQgetvalue (result, 0, 0) : "");
    PQclear (result);
    return status;
}

static void
s_expect_db_status (test_t *test, const char *id, const char *expected)
{
    char *status = s_db_status (test, id);
    char what[96];
    snprintf (what, sizeof what, "the row of %s", id);
    s_expect_streq (what, status, expected);
    free (status);
}

static size_t
s_db_count (test_t *test, const char *sql, const char *param)
{
    PGresult *result = s_query (test, sql, param);
    size_t count = (size_t) atol (PQgetvalue (result, 0, 0));
    PQclear (result);
    return count;
}

static size_t
s_db_checkpoints (test_t *test, const char *id)
{
    return s_db_count (test, "SELECT count(*) FROM checkpoints WHERE request_id = $1", id);
}

/* The request has exactly count checkpoints committed, in order, each holding the very bytes its
   stage's fake sent. */
static void
s_expect_checkpoints (test_t *test, const char *id, size_t count)
{
    PGresult *result = s_query (test,
                                "SELECT seq, stage, encode(body, 'hex') FROM checkpoints"
                                " WHERE request_id = $1 ORDER BY seq",
                                id);
    cv_assert_that (!((size_t) PQntuples (result) != count), "request %s: expected %zu checkpoints, found %d", id,
                    count, PQntuples (result));
    for (size_t i = 0; i < count; i++) {
        assert (atoi (PQgetvalue (result, (int) i, 0)) == (int) i + 1);
        s_expect_streq ("checkpoint stage", PQgetvalue (result, (int) i, 1), s_stages[i]);
        fake_t *fake = s_fake (test, (int) i);
        int index = s_fake_find (fake, id);
        assert (index >= 0 && fake->sent[index]);
        char *hex = s_hex (fake->sent[index], fake->sent_size[index]);
        char what[96];
        snprintf (what, sizeof what, "checkpoint %zu of %s", i + 1, id);
        s_expect_streq (what, PQgetvalue (result, (int) i, 2), hex);
        free (hex);
    }
    PQclear (result);
}

typedef struct {
    const char *id;
    const char *status;
} row_wait_t;

static bool
s_row_reached (test_t *test, const void *arg)
{
    const row_wait_t *wait = arg;
    char *status = s_db_status (test, wait->id);
    bool reached = streq (status, wait->status);
    free (status);
    return reached;
}

/* Waits until the request's row says status: for requests that finish with no client waiting. */
static void
s_wait_db_status (test_t *test, const char *id, const char *status)
{
    row_wait_t wait = {id, status};
    cv_assert_that (s_run_until (test, s_row_reached, &wait, WAIT_MS), "request %s did not become %s in the database",
                    id, status);
}

/*  --------------------------------------------------------------------------
    The orchestrator under test */

static test_t *
s_test_new (const run_t *run, const char *name)
{
    test_t *test = cv_calloc (1, sizeof *test);
    test->run = run;
    test->loop = zloop_new ();
    snprintf (test->instance, sizeof test->instance, "orch-%s-%d", name, (int) getpid ());
    test->log = cv_log_new ("orchestrator", test->instance, run->verbose);
    s_conninfo (run, run->port, run->database, test->database_url, sizeof test->database_url);
    cv_error_t err;
    test->pg = cv_pg_new (test->database_url, "isolation-orchestrator", &err);
    cv_assert_that (test->pg, "%s", err.message);
    test->config = (orchestrator_config_t){
        .http_address = "127.0.0.1",
        .http_port = 0,
        .broker_endpoint = "tcp://127.0.0.1:*",
        .control_endpoint = "tcp://127.0.0.1:*",
        .database_url = test->database_url,
        .instance = test->instance,
        .request_timeout_ms = 10000,
        .attempt_timeout_ms = 3000,
        .max_attempts = 3,
        .heartbeat_ms = HEARTBEAT_MS,
        .liveness = LIVENESS,
        .max_in_flight = 64,
        .max_queued = 64,
        .durability = ORCHESTRATOR_DURABILITY_SYNC,
        .store_connections = 2,
        .store_timeout_ms = 3000,
        .recovery_interval_ms = 3600000, /* one round at start, none during a case */
        .log = test->log,
    };
    return test;
}

/* Starts the orchestrator with test->config and asks it for its endpoints. */
static void
s_start (test_t *test)
{
    cv_error_t err;
    test->server = orchestrator_server_start (&test->config, &err);
    cv_assert_that (test->server, "the orchestrator did not start: %s", err.message);
    zstr_send (test->server, "HTTP");
    char *port = zstr_recv (test->server);
    test->http_port = atoi (port);
    zstr_free (&port);
    assert (test->http_port > 0);
    zstr_send (test->server, "BROKER");
    test->broker = zstr_recv (test->server);
    zstr_send (test->server, "CONTROL");
    test->control = zstr_recv (test->server);
    assert (test->broker && strncmp (test->broker, "tcp://127.0.0.1:", 16) == 0);
    assert (test->control && strncmp (test->control, "tcp://127.0.0.1:", 16) == 0);
    assert (!streq (test->broker, "tcp://127.0.0.1:*"));
    test->prober = zsock_new (ZMQ_REQ);
    zsock_set_linger (test->prober, 0);
    int rc = zsock_connect (test->prober, "%s", test->control);
    assert (rc == 0);
    zloop_reader (test->loop, test->prober, s_prober_readable, test);
}

/* Stops the fakes and the orchestrator ($TERM: it answers open exchanges and returns). */
static void
s_stop (test_t *test)
{
    for (size_t i = 0; i < test->fake_count; i++)
        s_fake_destroy (test, &test->fakes[i]);
    test->fake_count = 0;
    if (test->prober) {
        zloop_reader_end (test->loop, test->prober);
        zsock_destroy (&test->prober);
    }
    cv_envelope_destroy (&test->probe_reply);
    zactor_destroy (&test->server);
    zstr_free (&test->broker);
    zstr_free (&test->control);
}

static void
s_test_destroy (test_t **test_p)
{
    test_t *test = *test_p;
    s_stop (test);
    zactor_destroy (&test->proxy);
    /* Whatever a case left running must not be resumed by the next case's orchestrator. */
    PGresult *result = s_query (test,
                                "DO $$ BEGIN IF to_regclass ('requests') IS NOT NULL THEN"
                                " UPDATE requests SET status = 'failed', error = 'left by its test case'"
                                " WHERE status = 'running'; END IF; END $$",
                                NULL);
    PQclear (result);
    cv_pg_destroy (&test->pg);
    zloop_destroy (&test->loop);
    cv_log_destroy (&test->log);
    free (test);
    *test_p = NULL;
}

/*  --------------------------------------------------------------------------
    The cases */

/* 1. The happy path. Each stage goes to its worker in order, carrying the earlier results (the
   fakes check), the answer is 200 with the responder's text, the request row is done, and its four
   checkpoints hold the very bytes each worker sent. The decision's action is recorded. GET gives
   the same document with its checkpoints; /healthz and /readyz say it serves. */
static void
s_test_happy_path (const run_t *run)
{
    test_t *test = s_test_new (run, "happy");
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);

    http_call_t *call = s_http (test, "GET", "/healthz", NULL);
    s_http_expect (call, 200);
    s_http_destroy (&call);
    call = s_http (test, "GET", "/readyz", NULL);
    s_http_expect (call, 200);
    s_expect_streq ("readyz", s_text_at (call->document, "checks.postgresql"), "ok");
    for (int stage = 0; stage < 4; stage++) {
        char path[64];
        snprintf (path, sizeof path, "checks.%s", s_services[stage]);
        assert (json_integer_value (s_at (call->document, path)) == 1);
    }
    s_http_destroy (&call);

    call = s_post (test, "cust-1", "Where is my new card?", NULL);
    s_http_expect (call, 200);
    s_expect_done (call);
    const char *id = s_request_id (call);
    s_expect_streq ("intent.name", s_text_at (call->document, "intent.name"), "card_arrival");
    s_expect_streq ("decision.outcome", s_text_at (call->document, "decision.outcome"), "answer");
    assert (json_array_size (s_at (call->document, "evidence.tools")) == 1);
    size_t last_arrival = 0;
    for (int stage = 0; stage < 4; stage++) {
        fake_t *fake = s_fake (test, stage);
        assert (fake->request_count == 1 && streq (fake->requests[0]->request_id, id));
        assert (fake->requests[0]->attempt == 1);
        assert (fake->arrival[0] > last_arrival); /* in stage order */
        last_arrival = fake->arrival[0];
    }
    const Conveyor__V1__IntentRequest *asked = s_fake (test, 0)->requests[0]->intent_request;
    s_expect_streq ("intent_request.user_id", asked->user_id, "cust-1");
    s_expect_streq ("intent_request.text", asked->text, "Where is my new card?");
    s_expect_streq ("respond_request.text", s_fake (test, 3)->requests[0]->respond_request->text,
                    "Where is my new card?");

    s_expect_checkpoints (test, id, 4);
    s_expect_db_status (test, id, "done");
    assert (s_db_count (test,
                        "SELECT count(*) FROM requests WHERE id = $1 AND finished_at IS NOT NULL"
                        " AND error IS NULL",
                        id)
            == 1);
    assert (s_db_count (test,
                        "SELECT count(*) FROM actions WHERE request_id = $1 AND action_id = 'a-1'"
                        " AND kind = 'notify' AND params = jsonb_build_object('request', $1::text)",
                        id)
            == 1);

    char path[96];
    snprintf (path, sizeof path, "/v1/requests/%s", id);
    http_call_t *get = s_http (test, "GET", path, NULL);
    s_http_expect (get, 200);
    s_expect_done (get);
    json_t *checkpoints = s_at (get->document, "checkpoints");
    assert (json_array_size (checkpoints) == 4);
    for (size_t i = 0; i < 4; i++)
        s_expect_streq ("checkpoint", json_string_value (json_object_get (json_array_get (checkpoints, i), "stage")),
                        s_stages[i]);
    s_http_destroy (&get);
    s_http_destroy (&call);

    call = s_http (test, "GET", "/v1/requests/r-nosuch", NULL);
    s_http_expect (call, 404);
    s_expect_error (call, "not_found");
    s_http_destroy (&call);
    call = s_http (test, "POST", "/v1/requests", "{\"user_id\": \"cust-1\"");
    s_http_expect (call, 400);
    s_expect_error (call, "invalid_json");
    s_http_destroy (&call);
    s_test_destroy (&test);
}

/* 2a. Durability sync (the default). Whenever a stage reaches its worker, the checkpoints of all
   the stages before it are committed (the test looks from its own connection while the fake holds
   the stage), and the decision's actions with the decide checkpoint. With an idempotency key the
   row is committed before the first stage leaves. */
static void
s_test_sync (const run_t *run)
{
    test_t *test = s_test_new (run, "sync");
    s_start (test);
    s_fakes_start (test, ANSWER_HOLD);

    http_call_t *call = s_post (test, "cust-2", "My card has not arrived", NULL);
    s_wait_requests (s_fake (test, 0), 1);
    char *id = cv_strdup (s_fake (test, 0)->requests[0]->request_id);
    for (int stage = 0; stage < 4; stage++) {
        fake_t *fake = s_fake (test, stage);
        s_wait_requests (fake, 1);
        assert (streq (fake->requests[0]->request_id, id));
        s_expect_checkpoints (test, id, (size_t) stage);
        if (stage > 0)
            s_expect_db_status (test, id, "running");
        if (stage == 3)
            assert (s_db_count (test, "SELECT count(*) FROM actions WHERE request_id = $1", id) == 1);
        s_fake_answer (fake, 0, ANSWER_GOOD);
    }
    const cv_envelope_t *gather = s_fake (test, 1)->requests[0];
    s_expect_streq ("gather_request.user_id", gather->gather_request->user_id, "cust-2");
    s_expect_streq ("gather_request.text", gather->gather_request->text, "My card has not arrived");
    s_http_expect (call, 200);
    s_expect_done (call);
    assert (streq (s_request_id (call), id));
    s_expect_checkpoints (test, id, 4);
    s_expect_db_status (test, id, "done");
    s_http_destroy (&call);
    free (id);

    call = s_post (test, "cust-2", "My card has not arrived", "sync-key");
    s_wait_requests (s_fake (test, 0), 2);
    id = cv_strdup (s_fake (test, 0)->requests[1]->request_id);
    s_expect_db_status (test, id, "running");
    s_expect_checkpoints (test, id, 0);
    for (int stage = 0; stage < 4; stage++)
        s_fake (test, stage)->answer = ANSWER_GOOD;
    s_fake_answer_held (s_fake (test, 0), ANSWER_GOOD);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&call);
    free (id);
    s_test_destroy (&test);
}

/* 2b. Durability async. Checkpoints are written while the next stage runs, but the answer waits for
   them all: right after each 200, the row is done and the four checkpoints are there. With an
   idempotency key the row is committed before the first stage leaves, as in sync. */
static void
s_test_async (const run_t *run)
{
    test_t *test = s_test_new (run, "async");
    test->config.durability = ORCHESTRATOR_DURABILITY_ASYNC;
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);

    http_call_t *calls[3];
    for (size_t i = 0; i < 3; i++)
        calls[i] = s_post (test, "cust-3", "Where is my card?", NULL);
    for (size_t i = 0; i < 3; i++) {
        s_http_expect (calls[i], 200);
        s_expect_done (calls[i]);
        s_expect_db_status (test, s_request_id (calls[i]), "done");
        s_expect_checkpoints (test, s_request_id (calls[i]), 4);
        s_http_destroy (&calls[i]);
    }

    fake_t *intent = s_fake (test, 0);
    intent->answer = ANSWER_HOLD;
    http_call_t *call = s_post (test, "cust-3", "Where is my card?", "async-key");
    s_wait_requests (intent, 4);
    const char *id = intent->requests[3]->request_id;
    s_expect_db_status (test, id, "running");
    s_fake_answer (intent, 3, ANSWER_GOOD);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&call);
    s_test_destroy (&test);
}

/* 2c. Durability exit. Nothing is written until the request finishes: while it is at the
   responder, it has no row; after the 200 it has its row, done, and its four checkpoints. With an
   idempotency key the row is committed first, and only the row. */
static void
s_test_exit (const run_t *run)
{
    test_t *test = s_test_new (run, "exit");
    test->config.durability = ORCHESTRATOR_DURABILITY_EXIT;
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    fake_t *intent = s_fake (test, 0), *responder = s_fake (test, 3);
    responder->answer = ANSWER_HOLD;

    http_call_t *call = s_post (test, "cust-4", "Where is my card?", NULL);
    s_wait_requests (responder, 1);
    const char *id = responder->requests[0]->request_id;
    s_expect_db_status (test, id, "");
    assert (s_db_checkpoints (test, id) == 0);
    s_fake_answer (responder, 0, ANSWER_GOOD);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_expect_db_status (test, id, "done");
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&call);

    intent->answer = ANSWER_HOLD;
    call = s_post (test, "cust-4", "Where is my card?", "exit-key");
    s_wait_requests (intent, 2);
    id = intent->requests[1]->request_id;
    s_expect_db_status (test, id, "running");
    s_fake_answer (intent, 1, ANSWER_GOOD);
    s_wait_requests (responder, 2);
    s_expect_db_status (test, id, "running");
    assert (s_db_checkpoints (test, id) == 0);
    s_fake_answer (responder, 1, ANSWER_GOOD);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_expect_db_status (test, id, "done");
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&call);
    s_test_destroy (&test);
}

/* 3. Idempotency keys. A second POST with the same user and key while the first runs, and a third
   after it has finished, get the first request's answer: one run, one request id, one row. The
   same key for another user is another request. */
static void
s_test_idempotency (const run_t *run)
{
    test_t *test = s_test_new (run, "idempotency");
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    fake_t *intent = s_fake (test, 0);
    intent->answer = ANSWER_HOLD;

    http_call_t *first = s_post (test, "cust-5", "Where is my card?", "idem-1");
    s_wait_requests (intent, 1);
    /* The second one's row conflicts with the first's, committed before its intent stage left:
       it joins the first (or, if that has finished by then, reads its answer). */
    http_call_t *second = s_post (test, "cust-5", "Where is my card?", "idem-1");
    intent->answer = ANSWER_GOOD;
    s_fake_answer (intent, 0, ANSWER_GOOD);
    s_http_expect (first, 200);
    s_http_expect (second, 200);
    s_expect_done (first);
    s_expect_done (second);
    const char *id = s_request_id (first);
    s_expect_streq ("the second POST's request_id", s_request_id (second), id);

    http_call_t *third = s_post (test, "cust-5", "Where is my card, again?", "idem-1");
    s_http_expect (third, 200);
    s_expect_done (third);
    s_expect_streq ("the third POST's request_id", s_request_id (third), id);
    assert (intent->request_count == 1);
    for (int stage = 0; stage < 4; stage++)
        assert (s_fake_count (s_fake (test, stage), id) == 1);

    http_call_t *other = s_post (test, "cust-6", "Where is my card?", "idem-1");
    s_http_expect (other, 200);
    s_expect_done (other);
    assert (!streq (s_request_id (other), id));
    assert (intent->request_count == 2);
    assert (s_db_count (test, "SELECT count(*) FROM requests WHERE idempotency_key = $1", "idem-1") == 2);
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&first);
    s_http_destroy (&second);
    s_http_destroy (&third);
    s_http_destroy (&other);
    s_test_destroy (&test);
}

static bool
s_insert_waits (test_t *test, const void *arg)
{
    return s_db_count (test,
                       "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1"
                       " AND wait_event_type = 'Lock'",
                       arg)
           > 0;
}

/* 3b. Two requests with the same user and key recorded at the same moment: the one whose row
   loses the race is told to retry (503 with Retry-After, nothing recorded, no stage sent), and its
   retry gets the winner's answer. The race is made certain by a row with the same key that the
   test inserts and keeps uncommitted until the orchestrator's insert waits for it. */
static void
s_test_idempotency_race (const run_t *run)
{
    test_t *test = s_test_new (run, "race");
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    cv_error_t err;
    cv_pg_t *winner = cv_pg_new (test->database_url, "isolation-orchestrator-winner", &err);
    assert (winner);
    assert (cv_pg_run (winner, "BEGIN", 0, NULL, &err) == 0);
    assert (cv_pg_run (winner,
                       "INSERT INTO requests (id, user_id, text, status, idempotency_key, deadline_ms,"
                       " trace_id) VALUES ('r-race-winner', 'cust-15', 'Where is my card?', 'running',"
                       " 'race-1', 0, '0123456789abcdef0123456789abcdef')",
                       0, NULL, &err)
            == 0);

    http_call_t *loser = s_post (test, "cust-15", "Where is my card?", "race-1");
    char backends[80];
    snprintf (backends, sizeof backends, "%s-%%", test->instance);
    bool waiting = s_run_until (test, s_insert_waits, backends, WAIT_MS);
    assert (waiting);
    assert (cv_pg_run (winner, "COMMIT", 0, NULL, &err) == 0);
    cv_pg_destroy (&winner);
    s_http_expect (loser, 503);
    assert (!s_at (loser->document, "request_id"));
    assert (s_db_count (test, "SELECT count(*) FROM requests WHERE user_id = $1", "cust-15") == 1);
    s_http_destroy (&loser);

    http_call_t *retry = s_post (test, "cust-15", "Where is my card?", "race-1");
    s_http_expect (retry, 202);
    s_expect_streq ("the retry's request_id", s_request_id (retry), "r-race-winner");
    s_expect_streq ("the retry's status", s_text_at (retry->document, "status"), "running");
    s_http_destroy (&retry);
    assert (s_fake (test, 0)->request_count == 0);
    s_test_destroy (&test);
}

/* 4. Garbage from workers. A REPLY that is not an Envelope is dropped and the stage is sent again
   when its attempt times out; an UNAVAILABLE Error is retried at once; an Intent that breaks a
   rule, the wrong body, or an INVALID Error fail the request with 502 and the reason (recorded as
   failed); junk off the protocol is dropped; a worker that only sends garbage makes the stage give
   up after its attempts. Through it all the orchestrator keeps serving: the next request is fine. */
static void
s_test_worker_garbage (const run_t *run)
{
    test_t *test = s_test_new (run, "garbage");
    test->config.attempt_timeout_ms = 200;
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    fake_t *intent = s_fake (test, 0), *gatherer = s_fake (test, 1);
    fake_t *decision = s_fake (test, 2), *responder = s_fake (test, 3);

    /* malformed, then good: the second attempt succeeds */
    s_fake_script (intent, 2, ANSWER_MALFORMED, ANSWER_GOOD);
    http_call_t *call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 200);
    s_expect_done (call);
    const char *id = s_request_id (call);
    assert (s_fake_count (intent, id) == 2);
    assert (intent->requests[0]->attempt == 1 && intent->requests[1]->attempt == 2);
    s_expect_checkpoints (test, id, 4);
    s_http_destroy (&call);

    /* junk off the protocol, from a registered worker */
    s_fake_send_strings (intent, "HELLO", "\x04", NULL);
    s_fake_send_strings (intent, CV_MDP_PROTOCOL, "\x2a", NULL);
    s_fake_send_strings (intent, CV_MDP_PROTOCOL, "\x03", "no envelope", "and an extra frame", NULL);

    /* an Intent that breaks a rule */
    s_fake_script (intent, 1, ANSWER_INVALID);
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 502);
    id = s_request_id (call);
    s_expect_streq ("status", s_text_at (call->document, "status"), "failed");
    s_expect_contains ("error.message", s_text_at (call->document, "error.message"), "confidence");
    s_expect_db_status (test, id, "failed");
    assert (s_db_checkpoints (test, id) == 0);
    s_http_destroy (&call);

    /* the wrong body from the gatherer */
    s_fake_script (gatherer, 1, ANSWER_WRONG_BODY);
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 502);
    id = s_request_id (call);
    s_expect_contains ("error.message", s_text_at (call->document, "error.message"), "intent");
    s_expect_db_status (test, id, "failed");
    s_expect_checkpoints (test, id, 1);
    s_http_destroy (&call);

    /* an Error from the decision worker */
    s_fake_script (decision, 1, ANSWER_ERROR);
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 502);
    id = s_request_id (call);
    s_expect_contains ("error.message", s_text_at (call->document, "error.message"),
                       "decision worker: the fake decision refuses this request");
    s_expect_db_status (test, id, "failed");
    assert (s_db_count (test, "SELECT count(*) FROM requests WHERE id = $1 AND error LIKE '%refuses%'", id) == 1);
    s_expect_checkpoints (test, id, 2);
    assert (s_fake_count (decision, id) == 1);
    s_http_destroy (&call);

    /* UNAVAILABLE from the responder: retried */
    s_fake_script (responder, 1, ANSWER_UNAVAILABLE);
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 200);
    s_expect_done (call);
    assert (s_fake_count (responder, s_request_id (call)) == 2);
    s_http_destroy (&call);

    /* nothing but garbage: the stage gives up after its attempts */
    s_fake_script (intent, 3, ANSWER_MALFORMED, ANSWER_MALFORMED, ANSWER_MALFORMED);
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 502);
    s_expect_contains ("error.message", s_text_at (call->document, "error.message"), "gave up after 3 attempts");
    assert (s_fake_count (intent, s_request_id (call)) == 3);
    s_http_destroy (&call);

    /* and it still serves, with every worker registered */
    call = s_post (test, "cust-7", "Where is my card?", NULL);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_http_destroy (&call);
    call = s_http (test, "GET", "/readyz", NULL);
    s_http_expect (call, 200);
    s_http_destroy (&call);
    s_test_destroy (&test);
}

/* 5. Back-pressure. With max_in_flight 2 and the intent worker holding both requests, a third POST
   gets 503 overloaded with Retry-After, before anything is recorded; once the two finish, a new
   POST is served. */
static void
s_test_back_pressure (const run_t *run)
{
    test_t *test = s_test_new (run, "pressure");
    test->config.max_in_flight = 2;
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    fake_t *intent = s_fake (test, 0);
    intent->answer = ANSWER_HOLD;

    http_call_t *held[2];
    for (size_t i = 0; i < 2; i++)
        held[i] = s_post (test, "cust-8", "Where is my card?", NULL);
    s_wait_requests (intent, 2);
    http_call_t *refused = s_post (test, "cust-8", "Where is my card?", NULL);
    s_http_expect (refused, 503);
    s_expect_error (refused, "overloaded");
    s_expect_streq ("Retry-After", refused->retry_after, "1");
    assert (!s_at (refused->document, "request_id"));
    s_http_destroy (&refused);

    intent->answer = ANSWER_GOOD;
    s_fake_answer_held (intent, ANSWER_GOOD);
    for (size_t i = 0; i < 2; i++) {
        s_http_expect (held[i], 200);
        s_expect_done (held[i]);
        s_http_destroy (&held[i]);
    }
    http_call_t *call = s_post (test, "cust-8", "Where is my card?", NULL);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_http_destroy (&call);
    assert (intent->request_count == 3);
    s_test_destroy (&test);
}

/* 6a. PostgreSQL out of reach from the start (a closed port). The actor starts anyway; a POST gets
   503 store_unavailable with Retry-After, so does a GET of a request; /readyz is 503 naming
   postgresql; the orchestrator's own probe says ok=false. It stops cleanly. */
static void
s_test_store_down (const run_t *run)
{
    test_t *test = s_test_new (run, "down");
    char port[16];
    snprintf (port, sizeof port, "%d", s_closed_port ());
    s_conninfo (run, port, run->database, test->database_url, sizeof test->database_url);
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);

    http_call_t *call = s_post (test, "cust-9", "Where is my card?", NULL);
    s_http_expect (call, 503);
    s_expect_error (call, "store_unavailable");
    s_http_destroy (&call);
    call = s_http (test, "GET", "/v1/requests/r-0123", NULL);
    s_http_expect (call, 503);
    s_expect_error (call, "store_unavailable");
    s_http_destroy (&call);
    call = s_http (test, "GET", "/readyz", NULL);
    s_http_expect (call, 503);
    s_expect_streq ("readyz status", s_text_at (call->document, "status"), "not_ready");
    s_expect_contains ("readyz checks.postgresql", s_text_at (call->document, "checks.postgresql"), "postgresql");
    s_http_destroy (&call);

    const Conveyor__V1__ProbeResult *result = s_probe (test, "");
    assert (!result->ok);
    s_expect_streq ("probe service", result->service, "orchestrator");
    s_expect_contains ("probe detail", result->detail, "postgresql");
    result = s_probe (test, "orchestrator");
    assert (!result->ok);
    s_test_destroy (&test);
}

/* 6b. PostgreSQL goes away mid-request (a proxy in front of it is cut while the gather stage is at
   its worker). The gatherer's answer cannot be checkpointed: the request is parked and its client
   gets 503 with the request id and Retry-After; a new POST and a GET get 503 too. When the proxy
   is restored the request resumes where it was: the decision worker gets its stage, and a retry
   with the same idempotency key joins it and gets the answer. Its checkpoints are all there. */
static void
s_test_store_cut (const run_t *run)
{
    test_t *test = s_test_new (run, "cut");
    s_proxy_start (test);
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    fake_t *gatherer = s_fake (test, 1), *decision = s_fake (test, 2);
    gatherer->answer = decision->answer = ANSWER_HOLD;

    http_call_t *call = s_post (test, "cust-10", "Where is my card?", "cut-1");
    s_wait_requests (gatherer, 1);
    char *id = cv_strdup (gatherer->requests[0]->request_id);
    s_expect_checkpoints (test, id, 1);

    s_proxy_command_ok (test, "CUT");
    s_fake_answer (gatherer, 0, ANSWER_GOOD);
    s_http_expect (call, 503);
    s_expect_error (call, "store_unavailable");
    s_expect_streq ("the parked request's id", s_text_at (call->document, "request_id"), id);
    s_expect_streq ("the parked request's status", s_text_at (call->document, "status"), "running");
    s_http_destroy (&call);
    call = s_post (test, "cust-11", "Where is my card?", NULL);
    s_http_expect (call, 503);
    s_expect_error (call, "store_unavailable");
    s_http_destroy (&call);
    char path[96];
    snprintf (path, sizeof path, "/v1/requests/%s", id);
    call = s_http (test, "GET", path, NULL);
    s_http_expect (call, 503);
    s_http_destroy (&call);
    assert (decision->request_count == 0);
    s_expect_checkpoints (test, id, 1);

    s_proxy_command_ok (test, "RESTORE");
    s_wait_requests (decision, 1);
    assert (streq (decision->requests[0]->request_id, id));
    s_expect_checkpoints (test, id, 2);
    call = s_post (test, "cust-10", "Where is my card?", "cut-1");
    s_fake_answer (decision, 0, ANSWER_GOOD);
    s_http_expect (call, 200);
    s_expect_done (call);
    s_expect_streq ("the retry's request_id", s_request_id (call), id);
    s_expect_checkpoints (test, id, 4);
    s_expect_db_status (test, id, "done");
    s_http_destroy (&call);
    free (id);
    s_test_destroy (&test);
}

/* 6c. A store that stops answering (the proxy keeps the connections but forwards nothing). A write
   slower than store_timeout_ms fails as if PostgreSQL were away: the request is parked (503 with its
   id) and resumes once the store answers again. */
static void
s_test_store_stall (const run_t *run)
{
    test_t *test = s_test_new (run, "stall");
    test->config.store_timeout_ms = 300;
    s_proxy_start (test);
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    /* The store's connections may have timed out while the actor migrated at start (the migration
       blocks its loop, and 300 ms is short): wait until they are up again. */
    s_wait_ready (test);
    fake_t *gatherer = s_fake (test, 1), *decision = s_fake (test, 2);
    gatherer->answer = decision->answer = ANSWER_HOLD;

    http_call_t *call = s_post (test, "cust-16", "Where is my card?", "stall-1");
    s_wait_requests (gatherer, 1);
    char *id = cv_strdup (gatherer->requests[0]->request_id);
    s_proxy_command_ok (test, "STALL");
    int64_t answered_at = zclock_mono ();
    s_fake_answer (gatherer, 0, ANSWER_GOOD);
    s_http_expect (call, 503);
    assert (zclock_mono () - answered_at >= test->config.store_timeout_ms - 50);
    s_expect_error (call, "store_unavailable");
    s_expect_streq ("the parked request's id", s_text_at (call->document, "request_id"), id);
    s_http_destroy (&call);

    s_proxy_command_ok (test, "RESTORE");
    s_wait_requests (decision, 1);
    assert (streq (decision->requests[0]->request_id, id));
    s_fake_answer (decision, 0, ANSWER_GOOD);
    s_wait_db_status (test, id, "done");
    s_expect_checkpoints (test, id, 4);
    free (id);
    s_test_destroy (&test);
}

/* 6d. $TERM while a store operation is still unanswered (a readiness check, seen leaving by the
   stalled proxy): its exchange gets 503 and the actor stops. The store fails what it holds at the
   stop, so each owner hears and frees its state (AddressSanitizer reports a leak otherwise). */
static void
s_test_stop_with_store_pending (const run_t *run)
{
    test_t *test = s_test_new (run, "pending");
    s_proxy_start (test);
    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    s_wait_ready (test);
    s_proxy_command_ok (test, "STALL");
    size_t held = s_proxy_held (test);
    http_call_t *ready = s_http (test, "GET", "/readyz", NULL);
    s_wait_held (test, held);
    s_stop (test);
    s_http_expect (ready, 503);
    s_http_destroy (&ready);
    s_proxy_command_ok (test, "RESTORE");
    s_test_destroy (&test);
}

/* 7. Probes through the control endpoint. The orchestrator's own ("" or "orchestrator") checks its
   store; a probe for gatherer goes to the fake gatherer and its ProbeResult comes back; an unknown
   service, a service with no worker, and a worker whose check fails answer ok=false with why; a
   frame that is not an Envelope gets an Error, and the endpoint keeps serving. */
static void
s_test_probes (const run_t *run)
{
    test_t *test = s_test_new (run, "probes");
    s_start (test);
    fake_t *gatherer = s_fake_new (test, 1, ANSWER_GOOD);
    s_wait_registered (test);

    const Conveyor__V1__ProbeResult *result = s_probe (test, "");
    assert (result->ok);
    s_expect_streq ("probe service", result->service, "orchestrator");
    s_expect_streq ("probe instance", result->instance, test->instance);
    result = s_probe (test, "orchestrator");
    assert (result->ok);

    result = s_probe (test, "gatherer");
    assert (result->ok && gatherer->probes == 1);
    s_expect_streq ("probe instance", result->instance, gatherer->instance);
    s_expect_streq ("probe detail", result->detail, "the fake answers");
    assert (result->latency_us == 7);

    result = s_probe (test, "nosuch");
    assert (!result->ok);
    s_expect_contains ("probe detail", result->detail, "no service named nosuch");
    result = s_probe (test, "decision");
    assert (!result->ok);
    s_expect_contains ("probe detail", result->detail, "no live decision worker");

    gatherer->probe_answer = PROBE_FAILS;
    result = s_probe (test, "gatherer");
    assert (!result->ok && gatherer->probes == 2);
    s_expect_streq ("probe instance", result->instance, gatherer->instance);
    s_expect_contains ("probe detail", result->detail, "canned check failed");
    gatherer->probe_answer = PROBE_REFUSED;
    result = s_probe (test, "gatherer");
    assert (!result->ok && gatherer->probes == 3);
    s_expect_streq ("probe service", result->service, "gatherer");
    s_expect_contains ("probe detail", result->detail, "the fake takes no probes today");

    static const char garbage[] = "\xff\xff not a probe";
    const cv_envelope_t *reply = s_control_send (test, garbage, sizeof garbage - 1);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR);
    assert (reply->error->code == CONVEYOR__V1__ERROR__CODE__MALFORMED);
    result = s_probe (test, "");
    assert (result->ok);
    s_test_destroy (&test);
}

/* 8. $TERM with requests open. The open HTTP exchanges (requests at the intent worker, with and
   without an idempotency key, and one at the gatherer) get 503 and the actor stops. A new
   orchestrator on the same database resumes the recorded requests from their checkpoints and
   finishes them. */
static void
s_test_terminate (const run_t *run)
{
    test_t *test = s_test_new (run, "term");
    s_start (test);
    s_fakes_start (test, ANSWER_HOLD);
    fake_t *intent = s_fake (test, 0);

    http_call_t *keyed = s_post (test, "cust-12", "Where is my card?", "term-1");
    s_wait_requests (intent, 1);
    char *keyed_id = cv_strdup (intent->requests[0]->request_id);
    http_call_t *gathering = s_post (test, "cust-13", "Where is my card?", NULL);
    s_wait_requests (intent, 2);
    char *gathering_id = cv_strdup (intent->requests[1]->request_id);
    s_fake_answer (intent, 1, ANSWER_GOOD);
    s_wait_requests (s_fake (test, 1), 1);
    s_expect_checkpoints (test, gathering_id, 1);

    s_stop (test);
    s_http_expect (keyed, 503);
    s_expect_error (keyed, "shutting_down");
    s_http_expect (gathering, 503);
    s_expect_error (gathering, "shutting_down");
    s_http_destroy (&keyed);
    s_http_destroy (&gathering);
    s_expect_db_status (test, keyed_id, "running");
    s_expect_db_status (test, gathering_id, "running");

    s_start (test);
    s_fakes_start (test, ANSWER_GOOD);
    s_wait_db_status (test, keyed_id, "done");
    s_wait_db_status (test, gathering_id, "done");
    assert (s_fake_count (s_fake (test, 0), gathering_id) == 0); /* resumed at its gather stage */
    assert (s_fake_count (s_fake (test, 1), gathering_id) == 1);
    assert (s_fake_count (s_fake (test, 0), keyed_id) == 1);
    free (keyed_id);
    free (gathering_id);
    s_test_destroy (&test);
}

typedef struct {
    const char *name;
    void (*run) (const run_t *run);
    bool by_name; /* run only when named */
} orchestrator_case_t;

static const orchestrator_case_t s_cases[] = {
    {"happy_path", s_test_happy_path, false},
    {"sync", s_test_sync, false},
    {"async", s_test_async, false},
    {"exit", s_test_exit, false},
    {"idempotency", s_test_idempotency, false},
    {"idempotency_race", s_test_idempotency_race, false},
    {"worker_garbage", s_test_worker_garbage, false},
    {"back_pressure", s_test_back_pressure, false},
    {"store_down", s_test_store_down, false},
    {"store_cut", s_test_store_cut, false},
    {"store_stall", s_test_store_stall, false},
    {"stop_with_store_pending", s_test_stop_with_store_pending, false},
    {"probes", s_test_probes, false},
    {"terminate", s_test_terminate, false},
};

/*  --------------------------------------------------------------------------
    The run's database: created empty in the fixture's cluster, migrated by the orchestrator */

static void
s_run_sql (const char *url, const char *sql)
{
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "isolation-orchestrator", &err);
    cv_assert_that (!(!pg || cv_pg_run (pg, "SET client_min_messages = warning", 0, NULL, &err)
                      || cv_pg_run (pg, sql, 0, NULL, &err)),
                    "%s: %s", sql, err.message);
    cv_pg_destroy (&pg);
}

static void
s_run_init (run_t *run)
{
    run->fixture_url = cv_pg_fixture_url ();
    cv_assert_that (run->fixture_url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse (run->fixture_url, &error);
    assert (options);
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (!option->val)
            continue;
        if (streq (option->keyword, "host"))
            snprintf (run->host, sizeof run->host, "%s", option->val);
        else if (streq (option->keyword, "port"))
            snprintf (run->port, sizeof run->port, "%s", option->val);
        else if (streq (option->keyword, "user"))
            snprintf (run->user, sizeof run->user, "%s", option->val);
    }
    PQconninfoFree (options);
    assert (*run->host && *run->port && *run->user);
    snprintf (run->database, sizeof run->database, "orchestrator_test_%d", (int) getpid ());
    char sql[128];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", run->database);
    s_run_sql (run->fixture_url, sql);
    snprintf (sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", run->database);
    s_run_sql (run->fixture_url, sql);
}

static void
s_run_end (run_t *run)
{
    char sql[128];
    snprintf (sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", run->database);
    s_run_sql (run->fixture_url, sql);
    free (run->fixture_url);
}

/* isolation-orchestrator [-v] [case]: every case, or the one named. */
int
main (int argc, char *argv[])
{
    run_t run = {.verbose = false};
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (streq (argv[i], "-v"))
            run.verbose = true;
        else
            only = argv[i];
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_run_init (&run);
    size_t ran = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof *s_cases; i++)
        if (only ? streq (only, s_cases[i].name) : !s_cases[i].by_name) {
            printf (" * %s\n", s_cases[i].name);
            fflush (stdout);
            s_cases[i].run (&run);
            ran++;
        }
    s_run_end (&run);
    curl_global_cleanup ();
    if (ran == 0) {
        fprintf (stderr, "no case named %s\n", only);
        return 1;
    }
    printf ("orchestrator isolation: ok\n");
    return 0;
}
