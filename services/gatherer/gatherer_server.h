/* The gatherer's logic as a cv_worker service: a GatherRequest in, the intent's plan run by
   gatherer_sql, an Evidence out with one ToolResult per tool of the plan. The agent file's tools
   and plans are read once, at start, into the worker's shared part (read-only); each handler
   thread has its own connection pool, of one connection per tool of the largest plan, opened
   when first used.

   Capacity: GATHERER_CAPACITY_PER_CPU handlers per CPU by default, at most GATHERER_CAPACITY_MAX,
   as a handler spends most of a request waiting on PostgreSQL. Each handler may hold a pool's
   connections, so a worker holds up to capacity times the largest plan's tools (8 x 3 on two
   CPUs with the demo agent): mind PostgreSQL's max_connections when starting many copies.

   Settings of its own (besides the launcher's standard ones):
     --database-url  CONVEYOR_DATABASE_URL  postgresql://conveyor@127.0.0.1:55432/conveyor

   The probe's canned check runs `SELECT 1` through the same pool and path as the tools, so it
   fails while PostgreSQL is unreachable. */
#ifndef GATHERER_SERVER_H
#define GATHERER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_launcher.h"

#define GATHERER_SERVICE "gatherer"
#define GATHERER_DEFAULT_CONTROL_ENDPOINT "tcp://127.0.0.1:5562"
#define GATHERER_DEFAULT_DATABASE_URL "postgresql://conveyor@127.0.0.1:55432/conveyor"
#define GATHERER_CHECK_TIMEOUT_MS 1000
#define GATHERER_CAPACITY_PER_CPU 4
#define GATHERER_CAPACITY_MAX 16

/* The settings table the gatherer adds to the launcher's. */
extern const cv_setting_t gatherer_server_settings[];
extern const size_t gatherer_server_settings_count;

/* cv_worker_shared_new_fn: shared_args is a cv_launcher_args_t (agent file and settings, which
   must hold the gatherer's settings). NULL with err when the agent file's tools are wrong or the
   database URL is empty. */
void *gatherer_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn */
void gatherer_server_shared_destroy (void **shared_p);

/* cv_worker_logic_new_fn: a handler's logic over shared (borrowed), with a connection pool of
   its own that opens nothing yet. */
void *gatherer_server_logic_new (const void *shared, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn */
void gatherer_server_logic_destroy (void **logic_p);

/* cv_worker_handle_fn: GatherRequest -> Evidence, built in arena, with one ToolResult per tool of
   the intent's plan (none for an intent marked low_confidence). Tools stop 20 ms before the request's deadline, to
   leave time for the reply. Rows that would take the Evidence near CV_ENVELOPE_MAX_BYTES turn their tool FAILED. Fails
   only on a request whose intent slots do not decode (never, once validated). */
int gatherer_server_handle (void *logic, const cv_envelope_t *request, cv_arena_t *arena, cv_envelope_t *reply,
                            cv_error_t *err);

/* cv_worker_check_fn: 0 when `SELECT 1` answers through the pool, else -1 with the reason. */
int gatherer_server_check (void *logic, cv_arena_t *arena, cv_error_t *err);

void gatherer_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t gatherer_server_spec;

#endif
