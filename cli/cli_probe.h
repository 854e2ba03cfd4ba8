/* `conveyor probe`: asks a service whether it works, at its own control endpoint or by name
   through the orchestrator, and prints the answer as one JSON line; the exit code says ok. */
#ifndef CLI_PROBE_H
#define CLI_PROBE_H

#define CLI_PROBE_SUMMARY "asks a service whether it works; prints one JSON line, exit 0 when ok"

/* cli_command_fn: `conveyor probe SERVICE|ENDPOINT [options]`. */
int cli_probe_run (int argc, char **argv);

#endif
