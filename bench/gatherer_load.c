/* Benchmark: one conveyor-gatherer process under a closed loop of GatherRequests, with this
   program as its broker.

     bench-gatherer-load [--in-flight 1,16,128] [--duration-s 10] [--users N] [--database-url URL] ...

   For each in-flight count K it starts a fresh conveyor-gatherer as a child process, pointed at
   a ROUTER bound here on a free loopback port, waits for its READY (the worker protocol of
   common/cv_mdp.h), runs an unmeasured warm-up, then keeps K GatherRequests in flight for the
   duration (closed loop: a new one as each reply arrives) for one intent (card_arrival: three SQL
   tools) over users drawn at random from cust-1..cust-N, and stops the gatherer. It reports the
   requests a second, the latency percentiles (cli_load's histogram and report), the errors by
   kind, and the gatherer's CPU time over the measured run and its peak RSS (bench_process:
   /proc/PID/stat, VmHWM) as one markdown table row or one JSON line per K. Not a test: nothing
   is asserted about the figures. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>
#include <jansson.h>

#include "bench_process.h"
#include "cli_load.h"
#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"
#include "cv_histogram.h"
#include "cv_mdp.h"
#include "cv_settings.h"
#include "gatherer_server.h"

#define PROGRAM "bench-gatherer-load"
#define SECOND_US 1000000LL
#define LATENCY_HIGHEST_US (3600LL * SECOND_US) /* as cli_load's histogram: up to an hour */
#define LATENCY_DIGITS 3
#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 10000
#define MAX_LEVELS 16

static const cv_setting_t s_settings[] = {
    {"in-flight", CV_SETTING_STRING, "1,16,128", 0, 0,
     "requests in flight: a list (1,16,128) or the option repeated; one run, one gatherer, each"},
    {"duration-s", CV_SETTING_INT, "10", 1, 86400, "seconds each run is measured for"},
    {"warmup-s", CV_SETTING_INT, "1", 0, 600, "seconds of unmeasured load before each run"},
    {"users", CV_SETTING_INT, "100000", 1, 100000000, "requests are for users drawn from cust-1..cust-N"},
    {"intent", CV_SETTING_STRING, "card_arrival", 0, 0, "the intent whose plan the gatherer runs"},
    {"text", CV_SETTING_STRING, "Where is my new card? It still hasn't arrived", 0, 0, "the customer's text"},
    {"database-url", CV_SETTING_STRING, GATHERER_DEFAULT_DATABASE_URL, 0, 0,
     "the demo bank, passed to the gatherer as --database-url"},
    {"connections", CV_SETTING_INT, GATHERER_DEFAULT_CONNECTIONS, 1, GATHERER_CONNECTIONS_MAX,
     "the gatherer's pool, passed as --database-connections"},
    {"capacity", CV_SETTING_INT, "0", 0, CV_MDP_MAX_CAPACITY,
     "passed to the gatherer as --capacity (0: its own default); must be at least each in-flight count"},
    {"gatherer", CV_SETTING_STRING, NULL, 0, 0, "the conveyor-gatherer to run (default: the one beside this program)"},
    {"agent-file", CV_SETTING_STRING, NULL, 0, 0, "passed to the gatherer as --agent-file (default: its own)"},
    {"gatherer-log", CV_SETTING_STRING, NULL, 0, 0, "append the gatherer's log to this file (default: stderr)"},
    {"heartbeat-ms", CV_SETTING_INT, "1000", 10, 60000,
     "heartbeats both ways, as the orchestrator's; passed to the gatherer as --heartbeat-ms"},
    {"timeout-ms", CV_SETTING_INT, "10000", 100, 600000, "each request's deadline; no reply by then is an error"},
    {"seed", CV_SETTING_INT, "42", 0, INT_MAX, "the seed of the users' draw"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "one JSON object a run instead of the table"},
};

/* What a run counted. A request is ok when its reply is a valid Evidence with every tool OK. */
typedef struct {
    uint64_t requests;         /* finished: replied to or timed out */
    uint64_t ok;               /* ...of which ok */
    uint64_t tools;            /* tool results in the ok requests' Evidence */
    uint64_t error_replies[8]; /* an Error reply, by its code */
    uint64_t other_bodies;     /* a reply that is neither Evidence nor Error */
    uint64_t invalid;          /* an Evidence that fails the receiving edge's validation */
    uint64_t no_tools;         /* an Evidence without tools: the intent has no plan */
    uint64_t tools_failed;     /* an Evidence with a tool FAILED */
    uint64_t tools_timed_out;  /* an Evidence with a tool TIMED_OUT (and none FAILED) */
    uint64_t timeouts;         /* no reply within timeout-ms */
    uint64_t reconnects;       /* the gatherer said READY again: its requests were lost */
    uint64_t late;             /* a reply after its request timed out (not counted again) */
    char first_error[CV_DETAIL_MAX_BYTES];
} counts_t;

/* One request slot of the closed loop: its request in flight, or idle (seq 0). */
typedef struct {
    uint64_t seq;
    int64_t sent_us;
} slot_t;

/* One run: the gatherer it started, the broker side, the slots and what came back. */
typedef struct {
    cv_settings_t *settings; /* borrowed */
    size_t in_flight;
    zsock_t *router;
    char *endpoint;
    bench_process_t *gatherer;
    zframe_t *worker;  /* its routing id, from READY */
    uint32_t capacity; /* ...and the capacity it said */
    slot_t *slots;
    size_t busy;
    uint64_t next_seq;
    uint64_t draw; /* xorshift64 state of the users' draw */
    bool sending;
    int64_t heartbeat_us;
    counts_t counts;
    cv_histogram_t *latency_us; /* of ok requests, from send to reply */
} run_t;

/* A run's figures, for the report. */
typedef struct {
    size_t in_flight;
    uint32_t capacity;
    counts_t counts;
    double seconds;        /* from the first measured request to the last reply */
    double gatherer_cpu_s; /* the gatherer's user + system time over those seconds */
    double harness_cpu_s;  /* this program's, the same way */
    long peak_rss_kb;      /* the gatherer's VmHWM at the end; -1 when unreadable */
    cv_histogram_t *latency_us;
} figures_t;

static int64_t
s_now_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * SECOND_US + now.tv_nsec / 1000;
}

static void s_fail (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
static void
s_fail (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, PROGRAM ": ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
}

/*  --------------------------------------------------------------------------
    The gatherer process. */

/* The conveyor-gatherer beside this program (build/bin), the caller's to free. */
static char *
s_default_gatherer (void)
{
    char self[PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0)
        return cv_strdup ("conveyor-gatherer");
    self[length] = '\0';
    char *slash = strrchr (self, '/');
    if (!slash)
        return cv_strdup ("conveyor-gatherer");
    *slash = '\0';
    return cv_asprintf ("%s/conveyor-gatherer", self);
}

/* Starts the gatherer for run (bench_process: its log to --gatherer-log or this program's
   stderr). 0, or -1 said. */
static int
s_spawn (run_t *self)
{
    cv_settings_t *settings = self->settings;
    const char *configured = cv_settings_string (settings, "gatherer");
    char *owned[5]; /* the words of argv made here */
    size_t owned_count = 0;
    char *program = owned[owned_count++] = configured && *configured ? cv_strdup (configured) : s_default_gatherer ();
    char *argv[24];
    size_t argc = 0;
    argv[argc++] = program;
    argv[argc++] = "--broker-endpoint";
    argv[argc++] = self->endpoint;
    argv[argc++] = "--control-endpoint";
    argv[argc++] = "tcp://127.0.0.1:*";
    argv[argc++] = "--instance";
    argv[argc++] = owned[owned_count++] = cv_asprintf ("gatherer-load-%zu", self->in_flight);
    argv[argc++] = "--heartbeat-ms";
    argv[argc++] = owned[owned_count++] = cv_asprintf ("%ld", cv_settings_int (settings, "heartbeat-ms"));
    argv[argc++] = "--database-url";
    argv[argc++] = (char *) cv_settings_string (settings, "database-url");
    argv[argc++] = "--database-connections";
    argv[argc++] = owned[owned_count++] = cv_asprintf ("%ld", cv_settings_int (settings, "connections"));
    if (cv_settings_int (settings, "capacity") > 0) {
        argv[argc++] = "--capacity";
        argv[argc++] = owned[owned_count++] = cv_asprintf ("%ld", cv_settings_int (settings, "capacity"));
    }
    const char *agent = cv_settings_string (settings, "agent-file");
    if (agent && *agent) {
        argv[argc++] = "--agent-file";
        argv[argc++] = (char *) agent;
    }
    argv[argc] = NULL;
    cv_error_t err;
    self->gatherer = bench_process_start (argv, cv_settings_string (settings, "gatherer-log"), &err);
    if (!self->gatherer)
        s_fail ("%s", err.message);
    for (size_t i = 0; i < owned_count; i++)
        free (owned[i]);
    return self->gatherer ? 0 : -1;
}

/*  --------------------------------------------------------------------------
    The broker side: READY, heartbeats, requests out, replies in. */

static void
s_send_to_worker (run_t *self, zmsg_t **msg_p)
{
    zframe_t *peer = zframe_dup (self->worker);
    zmsg_prepend (*msg_p, &peer);
    zmsg_send (msg_p, self->router);
}

/* The next user of the draw: uniform over cust-1..cust-N (xorshift64; modulo bias is negligible). */
static uint64_t
s_next_user (run_t *self)
{
    self->draw ^= self->draw << 13;
    self->draw ^= self->draw >> 7;
    self->draw ^= self->draw << 17;
    return 1 + self->draw % (uint64_t) cv_settings_int (self->settings, "users");
}

/* Sends a new GatherRequest from an idle slot; its request id names the slot and the request. */
static void
s_send (run_t *self, size_t index)
{
    slot_t *slot = &self->slots[index];
    assert (slot->seq == 0);
    slot->seq = ++self->next_seq;
    cv_arena_t *arena = cv_arena_new ();
    char trace[33], request_id[CV_NAME_MAX_BYTES + 1], user[32];
    cv_envelope_random_hex (trace, sizeof trace);
    snprintf (request_id, sizeof request_id, "load-%zu-%" PRIu64, index, slot->seq);
    snprintf (user, sizeof user, "cust-%" PRIu64, s_next_user (self));
    uint64_t deadline_ms = (uint64_t) zclock_time () + (uint64_t) cv_settings_int (self->settings, "timeout-ms");
    cv_envelope_t *request = cv_envelope_new (arena, request_id, trace, deadline_ms, 1);
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = (char *) cv_settings_string (self->settings, "intent");
    intent->confidence = 0.95f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__MODEL;
    Conveyor__V1__GatherRequest *body = cv_envelope_set_gather_request (request, arena);
    body->user_id = user;
    body->text = (char *) cv_settings_string (self->settings, "text");
    body->intent = intent;
    size_t size;
    uint8_t *packed = cv_envelope_pack (request, &size);
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, packed, size);
    free (packed);
    cv_arena_destroy (&arena);
    slot->sent_us = s_now_us ();
    s_send_to_worker (self, &msg);
    self->busy++;
}

static void s_note_error (run_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_note_error (run_t *self, const char *format, ...)
{
    if (self->counts.first_error[0])
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (self->counts.first_error, sizeof self->counts.first_error, format, args);
    va_end (args);
}

/* A request is over (its reply, or its time ran out): the slot is free, and sends again while
   the run is sending. */
static void
s_finish (run_t *self, size_t index)
{
    self->slots[index].seq = 0;
    self->busy--;
    self->counts.requests++;
    if (self->sending)
        s_send (self, index);
}

/* Counts a reply against its request: ok (with its latency) or an error of its kind. */
static void
s_on_reply (run_t *self, const cv_envelope_t *reply, int64_t now)
{
    size_t index;
    uint64_t seq;
    int used = 0;
    if (sscanf (reply->request_id, "load-%zu-%" SCNu64 "%n", &index, &seq, &used) != 2
        || reply->request_id[used] != '\0' || index >= self->in_flight || self->slots[index].seq != seq) {
        self->counts.late++;
        return;
    }
    counts_t *counts = &self->counts;
    cv_error_t err;
    if (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR) {
        counts->error_replies[(unsigned) reply->error->code < 8 ? (unsigned) reply->error->code : 0]++;
        s_note_error (self, "an Error reply: %s", reply->error->message);
    } else if (reply->body_case != CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE) {
        counts->other_bodies++;
        s_note_error (self, "a reply of body %s", cv_envelope_body_name (reply->body_case));
    } else if (cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE), (uint64_t) zclock_time (),
                                     &err)) {
        counts->invalid++;
        s_note_error (self, "an invalid Evidence: %s", err.message);
    } else {
        const Conveyor__V1__Evidence *evidence = reply->evidence;
        bool failed = false, timed_out = false;
        for (size_t i = 0; i < evidence->n_results; i++) {
            const Conveyor__V1__ToolResult *result = evidence->results[i];
            if (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
                continue;
            failed |= result->status != CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
            timed_out |= result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
            s_note_error (self, "tool %s: %s", result->tool, result->error);
        }
        if (failed)
            counts->tools_failed++;
        else if (timed_out)
            counts->tools_timed_out++;
        else if (evidence->n_results == 0) {
            counts->no_tools++;
            s_note_error (self, "an Evidence without tools: is %s an intent with a plan?",
                          cv_settings_string (self->settings, "intent"));
        } else {
            counts->ok++;
            counts->tools += evidence->n_results;
            cv_histogram_record (self->latency_us, now - self->slots[index].sent_us);
        }
    }
    s_finish (self, index);
}

/* Reads every message waiting on the ROUTER. */
static void
s_receive (run_t *self)
{
    while (zsock_events (self->router) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (self->router);
        if (!msg)
            return;
        int64_t now = s_now_us ();
        zframe_t *peer = zmsg_pop (msg);
        cv_mdp_message_t message;
        cv_error_t err;
        if (cv_mdp_decode (&msg, &message, &err) == 0) {
            if (message.command == CV_MDP_READY) {
                /* Only the gatherer this run started connects here. A second READY is a
                   reconnection: what it had in flight is gone and will time out. */
                if (self->worker) {
                    self->counts.reconnects++;
                    s_note_error (self, "the gatherer reconnected (said READY again)");
                }
                zframe_destroy (&self->worker);
                self->worker = zframe_dup (peer);
                self->capacity = message.capacity;
            } else if (message.command == CV_MDP_REPLY && message.body) {
                cv_envelope_t *reply =
                    cv_envelope_unpack (zframe_data (message.body), zframe_size (message.body), &err);
                if (reply)
                    s_on_reply (self, reply, now);
                else
                    self->counts.late++; /* unreadable: its request will time out */
                cv_envelope_destroy (&reply);
            }
        }
        cv_mdp_message_reset (&message);
        zframe_destroy (&peer);
    }
}

/* Waits for messages until wake_us (at most), and acts on them, on heartbeats due and on
   requests whose time ran out. -1 when the gatherer exited or a signal came. */
static int
s_pump (run_t *self, int64_t wake_us)
{
    int64_t now = s_now_us ();
    if (self->worker && now >= self->heartbeat_us) {
        zmsg_t *beat = cv_mdp_command (CV_MDP_HEARTBEAT);
        s_send_to_worker (self, &beat);
        self->heartbeat_us = now + cv_settings_int (self->settings, "heartbeat-ms") * 1000LL;
        if (!bench_process_alive (self->gatherer))
            return -1;
    }
    if (wake_us > self->heartbeat_us)
        wake_us = self->heartbeat_us;
    int64_t wait_us = wake_us > now ? wake_us - now : 0;
    zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
    int ready = zmq_poll (&item, 1, (long) ((wait_us + 999) / 1000));
    if (zsys_interrupted)
        return -1;
    if (ready > 0)
        s_receive (self);
    now = s_now_us ();
    int64_t timeout_us = cv_settings_int (self->settings, "timeout-ms") * 1000LL;
    for (size_t i = 0; i < self->in_flight; i++)
        if (self->slots[i].seq && now - self->slots[i].sent_us > timeout_us) {
            self->counts.timeouts++;
            s_note_error (self, "no reply within %ld ms", cv_settings_int (self->settings, "timeout-ms"));
            s_finish (self, i);
        }
    return 0;
}

/* Waits for the gatherer's READY. 0, or -1 said. */
static int
s_wait_ready (run_t *self)
{
    int64_t until = s_now_us () + READY_TIMEOUT_MS * 1000LL;
    while (!self->worker) {
        if (s_now_us () >= until) {
            s_fail ("no READY from the gatherer within %d ms", READY_TIMEOUT_MS);
            return -1;
        }
        if (s_pump (self, s_now_us () + 100 * 1000) || !bench_process_alive (self->gatherer)) {
            if (!zsys_interrupted) {
                char how[80];
                bench_process_describe_exit (self->gatherer, how, sizeof how);
                s_fail ("the gatherer exited before READY: %s", how);
            }
            return -1;
        }
    }
    if (self->capacity < self->in_flight) {
        s_fail ("the gatherer said capacity %u, below %zu in flight: pass --capacity %zu", self->capacity,
                self->in_flight, self->in_flight);
        return -1;
    }
    return 0;
}

/* Keeps every slot busy for duration_us, then lets the requests in flight finish. Returns the
   seconds from the first request to the last reply, or -1 when the run was cut short. */
static double
s_load (run_t *self, int64_t duration_us)
{
    int64_t started = s_now_us ();
    int64_t until = started + duration_us;
    self->sending = true;
    for (size_t i = 0; i < self->in_flight; i++)
        s_send (self, i);
    while (self->sending || self->busy > 0) {
        if (self->sending && s_now_us () >= until)
            self->sending = false;
        if (s_pump (self, self->sending ? until : s_now_us () + SECOND_US)) {
            self->sending = false;
            return -1;
        }
    }
    return (double) (s_now_us () - started) / SECOND_US;
}

static run_t *
s_run_new (cv_settings_t *settings, size_t in_flight)
{
    run_t *self = cv_calloc (1, sizeof *self);
    self->settings = settings;
    self->in_flight = in_flight;
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    zsock_set_linger (self->router, 0);
    zsock_set_sndhwm (self->router, 0);
    zsock_set_rcvhwm (self->router, 0);
    int port = zsock_bind (self->router, "tcp://127.0.0.1:*");
    assert (port > 0);
    self->endpoint = cv_asprintf ("tcp://127.0.0.1:%d", port);
    self->slots = cv_calloc (in_flight, sizeof (slot_t));
    self->draw = 0x9E3779B97F4A7C15ull ^ (uint64_t) cv_settings_int (settings, "seed");
    self->latency_us = cv_histogram_new (LATENCY_HIGHEST_US, LATENCY_DIGITS);
    return self;
}

static void
s_run_destroy (run_t **self_p)
{
    run_t *self = *self_p;
    if (!self)
        return;
    bench_process_destroy (&self->gatherer);
    zsock_destroy (&self->router);
    zframe_destroy (&self->worker);
    free (self->endpoint);
    free (self->slots);
    cv_histogram_destroy (&self->latency_us);
    free (self);
    *self_p = NULL;
}

/* One run at in_flight: the gatherer started, warmed up, measured and stopped. 0 with figures
   filled (their histogram the caller's), or -1 said. */
static int
s_measure (cv_settings_t *settings, size_t in_flight, figures_t *figures)
{
    run_t *self = s_run_new (settings, in_flight);
    int rc = s_spawn (self) || s_wait_ready (self) ? -1 : 0;
    long warmup_s = cv_settings_int (settings, "warmup-s");
    if (rc == 0 && warmup_s > 0 && s_load (self, warmup_s * SECOND_US) < 0)
        rc = -1;
    if (rc == 0) {
        if (self->counts.requests > 0 && self->counts.ok == 0)
            s_fail ("%zu in flight: no request of the warm-up was ok; the first error: %s", in_flight,
                    self->counts.first_error);
        self->counts = (counts_t){0};
        cv_histogram_reset (self->latency_us);
        double cpu = bench_process_cpu_s (self->gatherer);
        double own = bench_process_self_cpu_s ();
        double seconds = s_load (self, cv_settings_int (settings, "duration-s") * SECOND_US);
        double cpu_after = bench_process_cpu_s (self->gatherer);
        *figures = (figures_t){
            .in_flight = in_flight,
            .capacity = self->capacity,
            .counts = self->counts,
            .seconds = seconds,
            .gatherer_cpu_s = cpu >= 0 && cpu_after >= cpu ? cpu_after - cpu : -1,
            .harness_cpu_s = bench_process_self_cpu_s () - own,
            .peak_rss_kb = bench_process_peak_rss_kb (self->gatherer),
        };
        if (seconds < 0)
            rc = -1;
        else {
            figures->latency_us = self->latency_us;
            self->latency_us = NULL;
        }
    }
    if (self->gatherer && !zsys_interrupted) {
        bool exited = !bench_process_alive (self->gatherer);
        char how[80];
        if (exited) {
            bench_process_describe_exit (self->gatherer, how, sizeof how);
            if (self->worker)
                s_fail ("%zu in flight: the gatherer exited during the run: %s", in_flight, how);
        } else if (bench_process_stop (self->gatherer, STOP_TIMEOUT_MS)) {
            bench_process_describe_exit (self->gatherer, how, sizeof how);
            s_fail ("%zu in flight: the gatherer did not stop cleanly on SIGTERM: %s", in_flight, how);
        }
    }
    s_run_destroy (&self);
    return rc;
}

/*  --------------------------------------------------------------------------
    The report. */

static double
s_round (double value, double unit)
{
    return round (value / unit) * unit;
}

static uint64_t
s_errors (const counts_t *counts)
{
    return counts->requests - counts->ok;
}

/* A run's figures as a JSON object (the table row is read from it too). */
static json_t *
s_report (cv_settings_t *settings, const figures_t *figures)
{
    const counts_t *counts = &figures->counts;
    json_t *kinds = json_object ();
    for (size_t code = 0; code < sizeof counts->error_replies / sizeof counts->error_replies[0]; code++)
        if (counts->error_replies[code]) {
            char key[48];
            snprintf (key, sizeof key, "error_%s", cv_error_code_name ((cv_error_code_t) code));
            json_object_set_new (kinds, key, json_integer ((json_int_t) counts->error_replies[code]));
        }
    const struct {
        const char *kind;
        uint64_t count;
    } kind_counts[] = {{"other_body", counts->other_bodies},
                       {"invalid", counts->invalid},
                       {"no_tools", counts->no_tools},
                       {"tool_failed", counts->tools_failed},
                       {"tool_timed_out", counts->tools_timed_out},
                       {"timeout", counts->timeouts},
                       {"reconnect", counts->reconnects}};
    for (size_t i = 0; i < sizeof kind_counts / sizeof kind_counts[0]; i++)
        if (kind_counts[i].count)
            json_object_set_new (kinds, kind_counts[i].kind, json_integer ((json_int_t) kind_counts[i].count));
    double throughput = figures->seconds > 0 ? (double) counts->ok / figures->seconds : 0;
    json_t *cpu_ms = figures->gatherer_cpu_s >= 0 && counts->ok
                         ? json_real (s_round (figures->gatherer_cpu_s * 1000 / (double) counts->ok, 0.001))
                         : json_null ();
    json_t *cpu_percent = figures->gatherer_cpu_s >= 0 && figures->seconds > 0
                              ? json_real (s_round (figures->gatherer_cpu_s * 100 / figures->seconds, 0.1))
                              : json_null ();
    json_t *cpu_s = figures->gatherer_cpu_s >= 0 ? json_real (s_round (figures->gatherer_cpu_s, 0.01)) : json_null ();
    return json_pack ("{s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:f, s:f, s:{s:I, s:o, s:s}, s:o, s:{s:I, s:o, "
                      "s:o, s:o, s:I}, s:f}",
                      "intent", cv_settings_string (settings, "intent"), "in_flight", (json_int_t) figures->in_flight,
                      "capacity", (json_int_t) figures->capacity, "users",
                      (json_int_t) cv_settings_int (settings, "users"), "duration_s", s_round (figures->seconds, 0.001),
                      "requests", (json_int_t) counts->requests, "ok", (json_int_t) counts->ok, "late",
                      (json_int_t) counts->late, "throughput_rps", s_round (throughput, 0.1), "tools_per_request",
                      counts->ok ? s_round ((double) counts->tools / (double) counts->ok, 0.01) : 0.0, "errors",
                      "total", (json_int_t) s_errors (counts), "by_kind", kinds, "first", counts->first_error,
                      "latency_ms", cli_load_latency_json (figures->latency_us), "gatherer", "connections",
                      (json_int_t) cv_settings_int (settings, "connections"), "cpu_s", cpu_s, "cpu_ms_per_request",
                      cpu_ms, "cpu_percent", cpu_percent, "peak_rss_kb", (json_int_t) figures->peak_rss_kb,
                      "harness_cpu_s", s_round (figures->harness_cpu_s, 0.01));
}

static void
s_print_header (void)
{
    printf ("| in flight | requests | req/s | p50 ms | p90 ms | p99 ms | errors | tools/request | gatherer CPU "
            "ms/request | gatherer CPU %% | gatherer peak RSS MB |\n");
    printf ("|---|---|---|---|---|---|---|---|---|---|---|\n");
}

/* A number of the report as a table cell: "-" for a null (nothing to measure it on). */
static void
s_cell (json_t *object, const char *key, const char *format, double scale)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_number (value) || (json_is_integer (value) && json_integer_value (value) < 0)) {
        printf (" - |");
        return;
    }
    printf (" ");
    printf (format, json_number_value (value) * scale);
    printf (" |");
}

/* One table row, from the JSON report. */
static void
s_print_row (json_t *report)
{
    json_t *latency = json_object_get (report, "latency_ms");
    json_t *gatherer = json_object_get (report, "gatherer");
    printf ("|");
    s_cell (report, "in_flight", "%.0f", 1);
    s_cell (report, "requests", "%.0f", 1);
    s_cell (report, "throughput_rps", "%.0f", 1);
    s_cell (latency, "p50", "%.2f", 1);
    s_cell (latency, "p90", "%.2f", 1);
    s_cell (latency, "p99", "%.2f", 1);
    s_cell (json_object_get (report, "errors"), "total", "%.0f", 1);
    s_cell (report, "tools_per_request", "%.2f", 1);
    s_cell (gatherer, "cpu_ms_per_request", "%.3f", 1);
    s_cell (gatherer, "cpu_percent", "%.0f", 1);
    s_cell (gatherer, "peak_rss_kb", "%.1f", 0.001);
    printf ("\n");
}

/*  --------------------------------------------------------------------------
    Options and the runs. */

/* The in-flight counts: every --in-flight given (each a comma-separated list), else the
   setting's value. -1 said on a count out of 1..CV_MDP_MAX_CAPACITY or too many. */
static int
s_in_flight_counts (int argc, char **argv, cv_settings_t *settings, size_t *counts, size_t *count)
{
    char *lists = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (strcmp (argv[i], "--in-flight") == 0 && i + 1 < argc)
            value = argv[++i];
        else if (strncmp (argv[i], "--in-flight=", 12) == 0)
            value = argv[i] + 12;
        if (value) {
            char *joined = cv_asprintf ("%s%s%s", lists ? lists : "", lists ? "," : "", value);
            free (lists);
            lists = joined;
        }
    }
    if (!lists)
        lists = cv_strdup (cv_settings_string (settings, "in-flight"));
    int rc = 0;
    *count = 0;
    char *rest = lists, *word;
    while (rc == 0 && (word = strsep (&rest, ","))) {
        char *end;
        errno = 0;
        long value = strtol (word, &end, 10);
        if (errno || end == word || *end || value < 1 || value > CV_MDP_MAX_CAPACITY) {
            s_fail ("--in-flight takes counts of 1..%d, not '%s'", CV_MDP_MAX_CAPACITY, word);
            rc = -1;
        } else if (*count == MAX_LEVELS) {
            s_fail ("--in-flight takes at most %d counts", MAX_LEVELS);
            rc = -1;
        } else
            counts[(*count)++] = (size_t) value;
    }
    free (lists);
    return rc;
}

int
main (int argc, char **argv)
{
    cv_settings_t *settings = cv_settings_new (
        PROGRAM,
        "Plays the orchestrator's broker for one conveyor-gatherer process it starts, and keeps a number of\n"
        "GatherRequests in flight for the duration (closed loop), for each --in-flight count in turn, each\n"
        "time with a fresh gatherer. Reports requests/s (requests whose Evidence came back with every tool\n"
        "OK), latency percentiles of those (from send to reply), errors by kind (an Error reply by its code,\n"
        "another body, an invalid Evidence, a tool failed or timed out, no reply within timeout-ms, the\n"
        "gatherer reconnecting), and the gatherer's CPU over the measured run and peak RSS. Options also\n"
        "come from the environment (CONVEYOR_DATABASE_URL, ...), which the gatherer inherits as well.\n"
        "Exit status: 0 when every run finished and had ok requests, 1 otherwise, 2 on a usage error.",
        s_settings, sizeof s_settings / sizeof s_settings[0]);
    cv_error_t err;
    int loaded = cv_settings_load (settings, argc, argv, &err);
    size_t levels[MAX_LEVELS], level_count = 0;
    if (loaded == 0 && cv_settings_positional_count (settings) > 0) {
        s_fail ("takes no arguments, got '%s' (see --help)", cv_settings_positional (settings, 0));
        loaded = -1;
    } else if (loaded < 0)
        s_fail ("%s", err.message);
    if (loaded == 0 && s_in_flight_counts (argc, argv, settings, levels, &level_count))
        loaded = -1;
    if (loaded != 0) {
        cv_settings_destroy (&settings);
        return loaded > 0 ? 0 : 2;
    }
    bool json = cv_settings_bool (settings, "json");
    int rc = 0;
    if (!json)
        s_print_header ();
    for (size_t i = 0; i < level_count && !zsys_interrupted; i++) {
        figures_t figures;
        if (s_measure (settings, levels[i], &figures)) {
            rc = 1;
            continue;
        }
        json_t *report = s_report (settings, &figures);
        if (json) {
            char *line = json_dumps (report, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (12));
            printf ("%s\n", line);
            free (line);
        } else
            s_print_row (report);
        fflush (stdout);
        if (figures.counts.ok == 0)
            rc = 1;
        if (s_errors (&figures.counts))
            s_fail ("%zu in flight: %" PRIu64 " of %" PRIu64 " requests not ok; the first: %s", levels[i],
                    s_errors (&figures.counts), figures.counts.requests, figures.counts.first_error);
        json_decref (report);
        cv_histogram_destroy (&figures.latency_us);
    }
    cv_settings_destroy (&settings);
    if (zsys_interrupted) {
        s_fail ("interrupted");
        rc = 1;
    }
    return rc;
}
