/* otest, the fixture of the orchestrator's isolation tests: the whole actor (orchestrator_server),
   started on loopback ports the kernel picks, against a database of the run's own in the pg
   fixture's PostgreSQL (created for the run, migrated by the actor when it starts, dropped at the
   end), driven over its real sockets:
     - fake workers in the test's process, one per service (fake_worker.h: READY, heartbeats
       answered), each request answered with a hand-made envelope, or held until the test answers
       it, or answered with garbage (otest_fakes.c);
     - HTTP through libcurl, each exchange in an actor of its own that sends its answer back as one
       message (otest_http.c);
     - probes over REQ to the control endpoint (otest.c);
     - for a store that goes away mid-request, a TCP proxy in front of PostgreSQL that the test cuts
       and restores (otest_proxy.c);
     - the test's own connection to the database, to see what was committed (otest_db.c).

   One zloop in the test's thread runs the fake workers, the probe socket and the HTTP answers. Each
   wait runs it until a condition holds (loop_wait.h), bounded by a timeout so that a broken
   orchestrator fails the test instead of hanging it. Nothing sleeps. The structs below are the
   fixture's plain data: the cases read them and set a fake's answers and the config before start.

   Each test binary (orchestrator_*_test.c) holds the cases of one concern and hands its table to
   otest_main. */
#ifndef OTEST_H
#define OTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cv_envelope.h"
#include "cv_log.h"
#include "cv_pg.h"
#include "fake_worker.h"
#include "loop_wait.h"
#include "orchestrator_server.h"

#define OTEST_HEARTBEAT_MS 50
#define OTEST_LIVENESS 20  /* a fake stays registered through the test's own short blocking work */
#define OTEST_WAIT_MS 5000 /* for what should happen soon: only a broken orchestrator makes a wait take this long */
#define OTEST_CHECK_MS 5   /* how often a wait checks what no message announces (the database) */
#define OTEST_CAPACITY 4
#define OTEST_MAX_FAKES 8
#define OTEST_MAX_SCRIPT 8

/* The services, in pipeline order: a fake's `stage`, an index into the names below. Every fake
   decision has an action, so every request the fakes answer well runs all five stages. */
enum { OTEST_INTENT, OTEST_GATHERER, OTEST_DECISION, OTEST_EXECUTOR, OTEST_RESPONDER, OTEST_STAGES };

/* The service of each stage, and the stage each serves (checkpoints are named so). */
extern const char *otest_services[OTEST_STAGES];
extern const char *otest_stages[OTEST_STAGES];

/* What the whole run shares: where PostgreSQL is, and the run's own database. */
typedef struct {
    bool verbose;
    char *fixture_url; /* the fixture's database, to create and drop ours */
    char host[64];
    char port[16];
    char user[64];
    char database[64]; /* ours: orchestrator_test_<pid> */
} otest_run_t;

typedef struct _otest_t otest_t;

/* How a fake worker answers a request. */
typedef enum {
    ANSWER_HOLD,        /* not yet: the test answers it later */
    ANSWER_GOOD,        /* the body its stage expects, made from the request id */
    ANSWER_WRONG_BODY,  /* an Envelope of the wrong body (a Reply for intent, else an Intent) */
    ANSWER_INVALID,     /* the right body, breaking a rule (an Intent's confidence of 2) */
    ANSWER_ERROR,       /* an Error INVALID */
    ANSWER_UNAVAILABLE, /* an Error UNAVAILABLE, which the broker retries */
    ANSWER_NO_PLAN,     /* the gatherer's Error INVALID for a diagnostic request: its intent has no plan */
    ANSWER_MALFORMED    /* a REPLY whose body is not an Envelope */
} otest_answer_t;

/* How a fake worker answers a Probe. */
typedef enum {
    PROBE_PASSES, /* a ProbeResult, ok */
    PROBE_FAILS,  /* a ProbeResult, not ok: its canned check failed, as a real worker says it */
    PROBE_REFUSED /* an Error INVALID */
} otest_probe_answer_t;

/* A fake worker playing one service: the shared fake (its requests are the stage requests it
   received, oldest first) and how this one answers. */
typedef struct {
    otest_t *test;
    fake_worker_t *worker;
    int stage;                               /* the service it plays, an index into otest_services */
    otest_answer_t answer;                   /* how it answers when nothing is scripted */
    otest_answer_t script[OTEST_MAX_SCRIPT]; /* how it answers the next requests, first first */
    size_t script_size;
    otest_probe_answer_t probe_answer;        /* how it answers a Probe */
    size_t arrival[FAKE_WORKER_MAX_REQUESTS]; /* each request's place among every fake's arrivals */
    uint8_t *sent[FAKE_WORKER_MAX_REQUESTS];  /* the bytes of a good answer to it, once sent */
    size_t sent_size[FAKE_WORKER_MAX_REQUESTS];
    size_t probes; /* Probes received */
} otest_fake_t;

/* One HTTP exchange, run by libcurl in an actor of its own. The request fields are set before the
   actor starts and only read by it; the answer fields are filled from the message it sends. */
typedef struct {
    otest_t *test;
    char *method;
    char *url;
    char *body; /* NULL: none */
    zactor_t *actor;
    bool answered;
    long status;       /* 0 when libcurl failed */
    char *retry_after; /* the Retry-After header, NULL when there was none */
    char *text;        /* the answer's body */
    json_t *document;  /* ...parsed, NULL when it is not JSON */
} otest_call_t;

struct _otest_t {
    const otest_run_t *run;
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
    otest_fake_t *fakes[OTEST_MAX_FAKES];
    size_t fake_count;
    size_t arrivals; /* stage requests received by all fakes */
    cv_pg_t *pg;     /* the test's own connection, to look at what was committed */
    zactor_t *proxy; /* in front of PostgreSQL, when the case has one */
    loop_wait_t wait;
};

/* One case of a test binary. */
typedef struct {
    const char *name;
    void (*run) (const otest_run_t *run);
    bool by_name; /* run only when named */
} otest_case_t;

/* The binary's main: `NAME [-v] [case]` runs every case (or the one named) against the run's own
   database, and prints "NAME: ok". */
int otest_main (int argc, char *argv[], const char *name, const otest_case_t *cases, size_t count);

/*  --------------------------------------------------------------------------
    The orchestrator under test (otest.c) */

/* A fixture for case name, with the default config: start it with otest_start. */
otest_t *otest_test_new (const otest_run_t *run, const char *name);
/* Starts the orchestrator with test->config and asks it for its endpoints. */
void otest_start (otest_t *test);
/* Stops the fakes and the orchestrator ($TERM: it answers open exchanges and returns). */
void otest_stop (otest_t *test);
/* Stops what runs, fails the requests a case left running, and frees the fixture. */
void otest_test_destroy (otest_t **test_p);

/* True while a wait runs and its condition holds: a reader's return value. */
bool otest_waited (otest_t *test);
/* Runs the loop until condition holds, at most timeout_ms; true when it held. */
bool otest_run_until (otest_t *test, loop_wait_fn *condition, const void *arg, int timeout_ms);
/* Waits until *counter reaches target; aborts when it does not in time. */
void otest_wait_count (otest_t *test, const size_t *counter, size_t target, const char *what);

/* Sends data to the control endpoint and waits for its answer (borrowed until the next probe). */
const cv_envelope_t *otest_control_send (otest_t *test, const void *data, size_t size);
/* A Probe for service ("" for the orchestrator itself); its answer must be a ProbeResult. */
const Conveyor__V1__ProbeResult *otest_probe (otest_t *test, const char *service);

/* Checks, aborting with what and both values when they differ. */
void otest_expect_streq (const char *what, const char *got, const char *expected);
void otest_expect_contains (const char *what, const char *got, const char *fragment);
/* The value at a dotted path ("error.code", "decision.actions.0.status": a number indexes an
   array) in document, or NULL; and its string. */
json_t *otest_at (json_t *document, const char *path);
const char *otest_text_at (json_t *document, const char *path);
/* A connection string for database on port of the fixture's host, as the fixture's user. */
void otest_conninfo (const otest_run_t *run, const char *port, const char *database, char *buffer, size_t size);
/* data as lower-case hex; the caller frees it. */
char *otest_hex (const uint8_t *data, size_t size);

/*  --------------------------------------------------------------------------
    Fake workers (otest_fakes.c) */

/* A fake worker of service stage, connected and READY (not yet known to be registered). */
otest_fake_t *otest_fake_new (otest_t *test, int stage, otest_answer_t answer);
void otest_fake_destroy (otest_fake_t **fake_p);
/* How it answers its next count requests: count otest_answer_t after count. */
void otest_fake_script (otest_fake_t *fake, size_t count, ...);
/* Answers the index-th request fake received; a good answer's bytes are kept in fake->sent. */
void otest_fake_answer (otest_fake_t *fake, size_t index, otest_answer_t answer);
/* Answers every request it holds. */
void otest_fake_answer_held (otest_fake_t *fake, otest_answer_t answer);
/* The last request fake received for request_id, or -1; and how many it received. */
int otest_fake_find (const otest_fake_t *fake, const char *request_id);
size_t otest_fake_count (const otest_fake_t *fake, const char *request_id);
/* The test's fake of service stage (the first one when there are several). */
otest_fake_t *otest_fake (otest_t *test, int stage);
/* Waits until the broker knows every fake (its first HEARTBEAT says so). */
void otest_wait_registered (otest_t *test);
/* One fake per service, all answering as answer, registered when this returns. */
void otest_fakes_start (otest_t *test, otest_answer_t answer);
/* Waits until fake has received count stage requests. */
void otest_wait_requests (otest_fake_t *fake, size_t count);
/* The text the fake responder replies for request_id; the caller frees it. */
char *otest_reply_text (const char *request_id);

/*  --------------------------------------------------------------------------
    HTTP (otest_http.c) */

/* Starts an HTTP exchange with the orchestrator; body (JSON text) may be NULL. */
otest_call_t *otest_http (otest_t *test, const char *method, const char *path, const char *body);
/* POST /v1/requests for user_id with text, and an idempotency key unless NULL. */
otest_call_t *otest_post (otest_t *test, const char *user_id, const char *text, const char *idempotency_key);
/* Waits for the answer and checks it has status. A 503 of the API must say when to retry. */
void otest_http_expect (otest_call_t *call, long status);
void otest_http_destroy (otest_call_t **call_p);
/* The answer's request_id (borrowed from its document). */
const char *otest_request_id (const otest_call_t *call);
/* Checks a 200 for a request the fakes answered well: done, with the responder's reply. */
void otest_expect_done (const otest_call_t *call);
/* Checks a 200 for a request whose stage (an OTEST_ stage before the reply) failed with an error
   that says fragment: stage_failed, naming the stage, with the responder's reply all the same. */
void otest_expect_stage_failed (const otest_call_t *call, int stage, const char *fragment);
void otest_expect_error (const otest_call_t *call, const char *code);
/* Waits until /readyz says the orchestrator is ready, as a deployment's readiness probe does. */
void otest_wait_ready (otest_t *test);

/*  --------------------------------------------------------------------------
    A TCP proxy in front of PostgreSQL (otest_proxy.c) */

/* Starts the proxy and points the orchestrator's database URL at it. */
void otest_proxy_start (otest_t *test);
/* Sends CUT, STALL or RESTORE and checks it was done. */
void otest_proxy_command_ok (otest_t *test, const char *command);
/* How many bytes clients have sent the proxy while stalled, in all. */
size_t otest_proxy_held (otest_t *test);
/* Waits until the stalled proxy holds more than before: an operation has been sent to the store. */
void otest_wait_held (otest_t *test, size_t before);

/*  --------------------------------------------------------------------------
    The database, as the test's own connection sees it (otest_db.c) */

/* Runs sql with one text parameter (NULL: none); the caller clears the result. */
PGresult *otest_query (otest_t *test, const char *sql, const char *param);
/* The count sql selects, with one text parameter. */
size_t otest_db_count (otest_t *test, const char *sql, const char *param);
size_t otest_db_checkpoints (otest_t *test, const char *id);
/* The request's row says status ("": it has no row). */
void otest_expect_db_status (otest_t *test, const char *id, const char *expected);
/* The request has exactly count checkpoints committed, in order, each holding the very bytes its
   stage's fake sent. */
void otest_expect_checkpoints (otest_t *test, const char *id, size_t count);
/* The request whose stage failed (an OTEST_ stage before the reply) has the checkpoints of the
   stages before it, then the reply's, each as above. */
void otest_expect_checkpoints_past_failure (otest_t *test, const char *id, int failed);
/* Waits until the request's row says status: for requests that finish with no client waiting. */
void otest_wait_db_status (otest_t *test, const char *id, const char *status);

#endif
