/* `conveyor tools test`: runs one intent's tool plan against the live stack, through the
   orchestrator's POST /v1/tools/test (a gatherer runs it; nothing is recorded), and prints each
   tool's status, time, attempts, cache and breaker state, and its rows. */
#ifndef CLI_TOOLS_H
#define CLI_TOOLS_H

#define CLI_TOOLS_SUMMARY "tools test INTENT --user U: runs an intent's tools live; prints each one's result and rows"

/* cli_command_fn: `conveyor tools test INTENT --user USER [--slot NAME=VALUE ...] [options]`. */
int cli_tools_run (int argc, char **argv);

#endif
