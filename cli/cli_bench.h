/* `conveyor bench`: a load generator for the HTTP API. POSTs requests to URL/v1/requests from
   many connections in one thread (libcurl's multi interface), closed loop (each client sends its
   next request when its answer arrives) or open loop (requests due at fixed times, latency counted
   from the time each was due), and reports throughput, errors by kind and latency percentiles. */
#ifndef CLI_BENCH_H
#define CLI_BENCH_H

#define CLI_BENCH_SUMMARY "loads the HTTP API; prints throughput, errors by kind and latency percentiles"

/* cli_command_fn: `conveyor bench [options]`. */
int cli_bench_run (int argc, char **argv);

#endif
