/* A test harness that plays the orchestrator for one worker: a ROUTER bound on a free loopback
   port, the READY handshake, requests sent as REQUEST frames and their REPLY unpacked. Used by
   the isolation tests of every worker. Waits use poll timeouts, never sleeps. */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_log.h"
#include "cv_worker.h"

typedef struct _harness_t harness_t;

harness_t *harness_new (void);
void harness_destroy (harness_t **self_p);

/* The endpoint workers connect to, e.g. tcp://127.0.0.1:41234. */
const char *harness_endpoint (harness_t *self);

/* Waits for a worker's READY; true when it came from service within timeout_ms. */
bool harness_wait_ready (harness_t *self, const char *service, int timeout_ms);

/* The capacity the worker said READY with. */
uint32_t harness_capacity (harness_t *self);

/* Sends a packed request to the worker that said READY and returns its reply unpacked (the caller
   destroys it), or NULL when none came within timeout_ms. Heartbeats are answered meanwhile. */
cv_envelope_t *harness_request_raw (harness_t *self, const void *data, size_t size, int timeout_ms);
cv_envelope_t *harness_request (harness_t *self, const cv_envelope_t *request, int timeout_ms);

/* The same in two halves, for many requests in flight at once: sends a request without waiting,
   and returns the next reply to come (the caller destroys it), or NULL after timeout_ms. */
void harness_send (harness_t *self, const cv_envelope_t *request);
cv_envelope_t *harness_receive (harness_t *self, int timeout_ms);

/* Sends a HEARTBEAT or DISCONNECT to the worker that said READY. */
void harness_send_command (harness_t *self, cv_mdp_command_t command);

/* Sends a Probe to a control endpoint over REQ and returns the reply, or NULL on timeout. */
cv_envelope_t *harness_probe (const char *endpoint, int timeout_ms);

/* A new request envelope in arena, deadline deadline_in_ms from now (negative: already passed). */
cv_envelope_t *harness_envelope (cv_arena_t *arena, int64_t deadline_in_ms);

/* Asserts reply is an Error of code whose field is field (NULL: any) and message contains text. */
void harness_expect_error (const cv_envelope_t *reply, cv_error_code_t code, const char *field, const char *text);

/* Starts a worker with the common test settings (harness broker, control on a free port,
   capacity 1, 100 ms heartbeats, a liveness of HARNESS_LIVENESS beats unless config sets one) on
   top of config; returns the actor or aborts. The harness answers heartbeats only while it waits,
   and a test busy elsewhere (slowed down many times under valgrind on a loaded machine) must not
   make the worker reconnect under it: a test of that sets a liveness of its own. */
#define HARNESS_LIVENESS 50
zactor_t *harness_start_worker (harness_t *self, cv_worker_config_t *config);

/* Asks a started worker for its control endpoint, which must be on loopback; the caller frees it. */
char *harness_control_endpoint (zactor_t *worker);

/* Asserts that a worker of config does not start (pointed at a broker nobody runs, as instance
   test-2, 100 ms heartbeats) and that the error it gives contains text. */
void harness_expect_no_start (cv_worker_config_t *config, const char *text);

/* A loopback port nobody listens on: the kernel's choice, bound and closed again. */
int harness_closed_port (void);

/* The demo agent file's text with appended after it (another section, say `llm:` with prices);
   malloc'd, and it must outlive the configuration parsed from it. */
char *harness_agent_text (const char *appended);

/* The pg fixture's database URL (the caller frees it); aborts when the test runs without the
   fixture, a mistake in its registration. */
char *harness_pg_fixture_url (void);
/* The same database as the gatherer's read-only login role, conveyor_gatherer, which the fixture
   makes (deploy/sql/roles.sql): what a gatherer under test connects as. The caller frees it. */
char *harness_pg_fixture_gatherer_url (void);
/* The database of url (an owner's URL of the fixture's server) as the executor's login role,
   conveyor_executor, which the fixture makes: it may call the bank's actions and write no table.
   The caller frees it. */
char *harness_pg_fixture_executor_url (const char *url);

/* A database of the test's own, name ([a-z0-9_]), made afresh on the fixture's server as a copy
   of its migrated and generated one (conveyor_template, as pg_fixture.sh createdb does), for a
   test that changes the bank; returns its owner's URL (the caller frees it). Drop it after. */
char *harness_pg_database_new (const char *name);
void harness_pg_database_drop (const char *name);

#endif
