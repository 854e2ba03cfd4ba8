/* What protects one tool, read from its entry in the agent file's `tools`: retries, a circuit
   breaker and a result cache. Pure parsing, no I/O; gatherer_call applies them.

     tools:
       fx_rates:
         kind: sql
         query: ...
         retries:                     -- default: none (one attempt)
           max_attempts: 3            -- 1..10, attempts in all, the first included; default 3
           base_ms: 50                -- 0..60000, the first retry's wait ceiling; default 50
           cap_ms: 1000               -- base_ms..60000, no wait above it; default 1000
         breaker:                     -- every tool has one; these are the defaults
           failures: 5                -- 1..1000 consecutive failures open it
           rate: {min_calls: 20, window_ms: 10000, percent: 50}
                                      -- or this share of the calls in the window failed
                                      -- (min_calls 1..100000, window_ms 10..3600000,
                                      -- percent 1..100)
           cooldown_ms: 5000          -- 1..3600000, open this long before one trial call
         cache: {ttl_ms: 60000}       -- default: none; 1..86400000, OK results only
         personal: true               -- default true: a cached result is for its user only;
                                      -- false for data that is the same for everyone

   Only failures of what a tool calls count for the breaker and are retried: a connection that
   could not open or broke, a timeout, an HTTP 5xx or 429. A tool's own mistake (an SQL error, an
   HTTP 4xx) is neither: the dependency answered, and the same request gets the same answer. */
#ifndef GATHERER_RESILIENCE_H
#define GATHERER_RESILIENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_backoff.h"
#include "cv_config.h"
#include "cv_error.h"

#define GATHERER_RETRIES_ATTEMPTS_DEFAULT 3
#define GATHERER_RETRIES_BASE_MS_DEFAULT 50
#define GATHERER_RETRIES_CAP_MS_DEFAULT 1000
#define GATHERER_BREAKER_FAILURES_DEFAULT 5
#define GATHERER_BREAKER_MIN_CALLS_DEFAULT 20
#define GATHERER_BREAKER_WINDOW_MS_DEFAULT 10000
#define GATHERER_BREAKER_PERCENT_DEFAULT 50
#define GATHERER_BREAKER_COOLDOWN_MS_DEFAULT 5000
#define GATHERER_CACHE_TTL_MS_MAX 86400000

/* One tool's protections (plain data). All zero (a tool made by hand) is one attempt, no
   breaker, no cache. */
typedef struct {
    cv_backoff_t retries;       /* max_attempts 1 (or 0): no retry */
    unsigned breaker_failures;  /* 0: no breaker */
    unsigned breaker_min_calls; /* the rate rule */
    uint64_t breaker_window_ms;
    unsigned breaker_percent;
    uint64_t breaker_cooldown_ms;
    uint64_t cache_ttl_ms; /* 0: not cached */
    bool personal;         /* cached results are keyed by the user too */
} gatherer_resilience_t;

/* The keys a tool's map may hold for these, NULL-terminated. */
extern const char *const gatherer_resilience_keys[];

/* Reads retries, breaker, cache and personal from tool (the map of tools.NAME, at path) into
   *out, with the defaults above for what is not there. -1 with err (file:line:key) on a wrong
   value or an unknown key. */
int gatherer_resilience_parse (const cv_config_t *agent, cv_node_t *tool, const char *path, gatherer_resilience_t *out,
                               cv_error_t *err) CV_MUST_CHECK;

void gatherer_resilience_test (bool verbose);

#endif
