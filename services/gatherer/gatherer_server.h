/* The gatherer's logic as a cv_worker service on an event loop: a GatherRequest in, the intent's
   plan run by gatherer_run, an Evidence out with one ToolResult per tool of the plan. The agent
   file's tools and plans are read once, at start, into the worker's shared part (read-only).
   Each event-loop thread has a pool of database-connections PostgreSQL connections (cv_pgpool),
   opened when first used, which the tools of all the requests in flight on it share: a worker
   holds that many connections per thread, whatever its capacity.

   Each tool has one circuit breaker per process, in the shared part, which the calls of every
   event-loop thread go through (cv_breaker is thread-safe), so a failing dependency is seen as
   one; each event-loop thread has its own results cache (cv_cache is not thread-safe: at most
   GATHERER_CACHE_ENTRIES results and GATHERER_CACHE_BYTES), and its own retry randomness.

   Capacity: GATHERER_CAPACITY_PER_CPU requests in flight per CPU by default, at most
   GATHERER_CAPACITY_MAX, on GATHERER_HANDLERS thread(s): a request costs the gatherer little CPU
   and mostly waits on PostgreSQL, so one loop keeps many in flight.

   Settings of its own (besides the launcher's standard ones):
     --database-url          CONVEYOR_DATABASE_URL          postgresql://conveyor@127.0.0.1:55432/conveyor
     --database-connections  CONVEYOR_DATABASE_CONNECTIONS  8

   The probe's canned check runs the agent's first kb_search tool for GATHERER_CHECK_TEXT, through
   the same pool, role and path as the tools, and wants it OK (any number of rows): it fails while
   PostgreSQL is unreachable, and when the knowledge base's tables or the gatherer's grants on
   them are not what the tool reads. An agent without a knowledge base gets `SELECT 1`. */
#ifndef GATHERER_SERVER_H
#define GATHERER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_launcher.h"

#define GATHERER_SERVICE "gatherer"
#define GATHERER_DEFAULT_CONTROL_ENDPOINT "tcp://127.0.0.1:5562"
#define GATHERER_DEFAULT_DATABASE_URL "postgresql://conveyor@127.0.0.1:55432/conveyor"
#define GATHERER_CHECK_TIMEOUT_MS 1000
#define GATHERER_CHECK_TEXT "card"
#define GATHERER_CAPACITY_PER_CPU 64
#define GATHERER_CAPACITY_MAX 512
#define GATHERER_HANDLERS 1
#define GATHERER_DEFAULT_CONNECTIONS "8"
#define GATHERER_CONNECTIONS_MAX 256
#define GATHERER_CACHE_ENTRIES 4096
#define GATHERER_CACHE_BYTES (16u * 1024 * 1024)

/* The settings table the gatherer adds to the launcher's. */
extern const cv_setting_t gatherer_server_settings[];
extern const size_t gatherer_server_settings_count;

/* cv_worker_shared_new_fn: shared_args is a cv_launcher_args_t (agent file and settings, which
   must hold the gatherer's settings). NULL with err when the agent file's tools are wrong or the
   database URL is empty. */
void *gatherer_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn */
void gatherer_server_shared_destroy (void **shared_p);

/* cv_worker_loop_logic_new_fn: an event-loop thread's logic over shared (borrowed), with a
   connection pool on loop that opens nothing yet. */
void *gatherer_server_logic_new (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn: gives up on the requests in flight. */
void gatherer_server_logic_destroy (void **logic_p);

/* cv_worker_begin_fn: a GatherRequest's plan started; its Evidence finishes the call (none for an
   intent marked low_confidence). Fails the call on a request whose intent slots do not decode
   (never, once validated), and with INVALID on a diagnostic request (`conveyor tools test`) for
   an intent the agent file plans no tools for, where a pipeline request gets empty Evidence. */
void gatherer_server_begin (void *logic, cv_worker_call_t *call);

/* cv_worker_begin_fn for the probe: passes when `SELECT 1` answers through the pool. */
void gatherer_server_check_begin (void *logic, cv_worker_call_t *call);

void gatherer_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t gatherer_server_spec;

#endif
