/* Load on one HTTP endpoint, for `conveyor bench`: JSON bodies POSTed from many clients in one
   thread over libcurl's multi interface (curl_multi_socket_action, the sockets watched with
   ppoll), and what came back counted: answers with their latency, errors by kind.

   Closed loop (rate 0): each client sends its next request as soon as the previous one is over.
   Open loop (rate > 0): request k is due at start + k/rate and is sent then, on a free client;
   when every client is busy it waits for one, and its latency still runs from its due time, so
   a stall is charged to every request it held back (no coordinated omission). Each client keeps
   its easy handle, so its connection is reused, unless new_connection asks for one a request.
   Sending stops at the duration or the count, whichever comes first, or at SIGINT/SIGTERM;
   the requests still running are then awaited (each at most timeout_ms), except after a signal. */
#ifndef CLI_LOAD_H
#define CLI_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_histogram.h"

#define CLI_LOAD_STATUS_CODES 600

typedef struct {
    const char *endpoint; /* the URL every request is POSTed to */
    size_t clients;       /* clients at once (>= 1), each with its connection */
    long rate;            /* open loop: requests a second; 0: closed loop */
    int64_t duration_us;  /* how long to send for (> 0) */
    uint64_t count;       /* the most requests to send; 0: no limit */
    long timeout_ms;      /* each request's limit, from sending to its answer */
    bool new_connection;  /* a new connection for every request */
    bool progress;        /* a progress line on stderr every second */
} cli_load_options_t;

/* What a run measured; the latencies are in the histogram beside (cli_load_latency_us). */
typedef struct {
    uint64_t sent;
    uint64_t answered;                         /* a 2xx status */
    uint64_t failed;                           /* everything else, counted below by kind */
    uint64_t by_status[CLI_LOAD_STATUS_CODES]; /* answered with that non-2xx status */
    uint64_t timeouts;                         /* no answer within timeout_ms */
    uint64_t connection_errors;                /* refused, reset, closed without an answer, unresolved */
    uint64_t other_errors;                     /* any other libcurl error */
    uint64_t connections;                      /* connections opened */
    uint64_t queued;                           /* open loop: sent late, after waiting for a free client */
    uint64_t unsent;                           /* open loop: due before the end, but no client was free */
    double seconds;                            /* from the first request to the last answer */
    bool interrupted;                          /* a signal (or a failed ppoll) ended the run early */
    char first_error[256];                     /* the first libcurl error's message, "" when none */
} cli_load_counts_t;

typedef struct _cli_load_t cli_load_t;

/* A load of options (copied; endpoint too) that sends bodies (body_count >= 1, borrowed: they
   must outlive the load) in turn. Call curl_global_init first. */
cli_load_t *cli_load_new (const cli_load_options_t *options, char *const *bodies, size_t body_count);
void cli_load_destroy (cli_load_t **self_p);

/* Runs the load to its end. Once only. */
void cli_load_run (cli_load_t *self);

/* What the run measured (borrowed from the load). */
const cli_load_counts_t *cli_load_counts (const cli_load_t *self);
/* The latency of every answered request in microseconds (borrowed from the load). */
const cv_histogram_t *cli_load_latency_us (const cli_load_t *self);

/* A report's latency object from a histogram of microseconds (any load's, this one's or another
   generator's): {"p50", "p90", "p99", "p999", "max", "mean"} in milliseconds, each null when
   nothing was recorded. A new reference, the caller's. */
json_t *cli_load_latency_json (const cv_histogram_t *latency_us);

#endif
