/* What every command of the `conveyor` CLI shares: its exit codes, how it reads its options
   (cv_settings, with usage errors and --help turned into exit codes), how it reports a failure,
   and how it reaches the database.

   Exit codes, the same for every command (and documented in `conveyor --help`):
     0  done (probe: the service is ok; bench: at least one request was answered)
     1  the command ran and failed: a probe not ok, unreachable, unanswered or answered with
        garbage; a database unreachable or a statement failed; bench: no request answered
     2  usage error: unknown command or option, missing or extra argument, value out of range
        (bench: a --requests file unreadable or malformed) */
#ifndef CLI_COMMAND_H
#define CLI_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "cv_pg.h"
#include "cv_settings.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2

/* A command's entry point: argv[0] is the command's name, its options and arguments follow.
   Returns the process exit code. */
typedef int (cli_command_fn) (int argc, char **argv);

typedef struct {
    const char *name;    /* e.g. "probe" */
    const char *summary; /* one line for `conveyor --help` */
    cli_command_fn *run;
} cli_command_t;

/* Reads a command's options from argv and the environment into new settings the caller destroys.
   usage is the usage line after "usage: ", e.g. "conveyor probe SERVICE|ENDPOINT"; table is
   borrowed and must outlive the settings. Returns NULL with *exit_code set when the command is
   to stop: CLI_EXIT_OK after --help printed the usage to stdout, CLI_EXIT_USAGE after a usage
   error was printed to stderr. */
cv_settings_t *cli_command_settings (const char *command, const char *usage, const char *summary,
                                     const cv_setting_t *table, size_t count, int argc, char **argv,
                                     int *exit_code) CV_MUST_CHECK;

/* Prints "conveyor COMMAND: message" to stderr as one line (newlines and runs of space collapsed). */
void cli_command_fail (const char *command, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

/* Connects to the database at url for command; NULL after printing why not (one line). */
cv_pg_t *cli_command_connect (const char *command, const char *url) CV_MUST_CHECK;

/* A --since value read by the database into a timestamp (text, into out): a duration back from
   now (90s, 30m, 24h, 7d) or a date and time PostgreSQL reads (2026-12-01, 2026-12-01T08:00Z).
   -1 after saying why (a usage error) or the database failed (*usage false). */
int cli_command_since (const char *command, cv_pg_t *pg, const char *since, char *out, size_t size,
                       bool *usage) CV_MUST_CHECK;

/* For the commands that read the requests since a time: connects to the database-url setting's
   database and reads the since setting (cli_command_since) into since. NULL with *exit_code
   CLI_EXIT_FAILED (the database) or CLI_EXIT_USAGE (--since) after saying why. */
cv_pg_t *cli_command_connect_since (const char *command, const cv_settings_t *settings, char *since, size_t size,
                                    int *exit_code) CV_MUST_CHECK;

/* Seconds elapsed since started_us (zclock_usecs), for "took 0.42 s". */
double cli_command_seconds_since (int64_t started_us);

#endif
