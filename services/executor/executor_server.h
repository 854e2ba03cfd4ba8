/* The executor's logic as a cv_worker service on an event loop: an ExecuteRequest in, its actions
   performed in order by executor_perform, an ActionResults out with one ActionResult per action.
   The agent file's `actions` (executor_actions.h) are read once, at start, into the worker's
   shared part (read-only). Each event-loop thread has a pool of database-connections writable
   PostgreSQL connections (cv_pgpool), opened when first used, shared by the requests in flight
   on it.

   It connects as the executor's own role (conveyor_executor, a member of conveyor_bank_writer):
   it may call the bank's action functions and write no table, and nobody else may call them.

   Capacity: EXECUTOR_CAPACITY_PER_CPU requests in flight per CPU by default, at most
   EXECUTOR_CAPACITY_MAX, on EXECUTOR_HANDLERS thread: a request mostly waits on PostgreSQL.

   Settings of its own (besides the launcher's standard ones):
     --database-url          CONVEYOR_DATABASE_URL          postgresql://conveyor_executor@127.0.0.1:55432/conveyor
     --database-connections  CONVEYOR_DATABASE_CONNECTIONS  4

   The probe's canned check runs `SELECT 1` through the same pool, so it fails while PostgreSQL
   is out of reach. */
#ifndef EXECUTOR_SERVER_H
#define EXECUTOR_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_launcher.h"

#define EXECUTOR_SERVICE "executor"
#define EXECUTOR_DEFAULT_CONTROL_ENDPOINT "tcp://127.0.0.1:5565"
#define EXECUTOR_DEFAULT_DATABASE_URL "postgresql://conveyor_executor@127.0.0.1:55432/conveyor"
#define EXECUTOR_CHECK_TIMEOUT_MS 1000
#define EXECUTOR_CAPACITY_PER_CPU 32
#define EXECUTOR_CAPACITY_MAX 256
#define EXECUTOR_HANDLERS 1
#define EXECUTOR_DEFAULT_CONNECTIONS "4"
#define EXECUTOR_CONNECTIONS_MAX 64

/* The settings table the executor adds to the launcher's. */
extern const cv_setting_t executor_server_settings[];
extern const size_t executor_server_settings_count;

/* cv_worker_shared_new_fn: shared_args is a cv_launcher_args_t (agent file and settings, which
   must hold the executor's settings). NULL with err when the agent file's actions are wrong or
   the database URL is empty. */
void *executor_server_shared_new (void *shared_args, cv_log_t *log, cv_error_t *err);
/* cv_worker_shared_destroy_fn */
void executor_server_shared_destroy (void **shared_p);

/* cv_worker_loop_logic_new_fn: an event-loop thread's logic over shared (borrowed), with a
   writable connection pool on loop that opens nothing yet. */
void *executor_server_logic_new (const void *shared, zloop_t *loop, cv_log_t *log, cv_error_t *err);
/* cv_worker_logic_destroy_fn: gives up on the requests in flight. */
void executor_server_logic_destroy (void **logic_p);

/* cv_worker_begin_fn: an ExecuteRequest's actions started; its ActionResults finishes the call. */
void executor_server_begin (void *logic, cv_worker_call_t *call);

/* cv_worker_begin_fn for the probe: passes when `SELECT 1` answers through the pool. */
void executor_server_check_begin (void *logic, cv_worker_call_t *call);

void executor_server_test (bool verbose);

/* The worker as cv_launcher_run and the tests start it (cv_launcher_worker_config). */
extern const cv_launcher_spec_t executor_server_spec;

#endif
