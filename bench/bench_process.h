/* A child process that a benchmark starts, watches and measures: its CPU time and peak memory
   read from /proc while it runs, a clean stop on SIGTERM at the end.

   The child's stdout goes to its stderr (the benchmark's stdout holds its report alone), and its
   stderr to a log file when one is named; it gets SIGTERM should the benchmark die first. */
#ifndef BENCH_PROCESS_H
#define BENCH_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cv_error.h"

typedef struct _bench_process_t bench_process_t;

/* Starts argv[0] (a path) with argv, its stderr appended to log_path (NULL or "": the caller's
   stderr). NULL with err when it cannot fork; a program that cannot run exits 127 (126 when the
   log cannot be opened), which bench_process_alive and bench_process_describe_exit then tell. */
bench_process_t *bench_process_start (char *const *argv, const char *log_path, cv_error_t *err);
/* Kills (SIGKILL) and reaps a child still running, and frees. */
void bench_process_destroy (bench_process_t **self_p);

pid_t bench_process_pid (const bench_process_t *self);

/* True while it runs; reaps it (keeping how it ended) once it has exited. */
bool bench_process_alive (bench_process_t *self);

/* SIGTERM, then waits up to timeout_ms for it to exit, and SIGKILLs it if it has not. 0 when it
   exited with status 0 within the time, -1 otherwise (or when it had already exited). */
int bench_process_stop (bench_process_t *self, int timeout_ms);

/* How it ended, for a message: "exit status 1", "signal 9", or "running". */
void bench_process_describe_exit (const bench_process_t *self, char *out, size_t size);

/* Its user + system CPU time so far in seconds (/proc/PID/stat), -1 when unreadable. */
double bench_process_cpu_s (const bench_process_t *self);
/* Its peak resident set in kB (VmHWM of /proc/PID/status), -1 when unreadable. */
long bench_process_peak_rss_kb (const bench_process_t *self);

/* The calling process's own user + system CPU time so far, in seconds. */
double bench_process_self_cpu_s (void);

#endif
