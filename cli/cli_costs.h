/* `conveyor costs --since WHEN [--by user|intent|stage|request]`: what the requests that arrived
   since WHEN cost, from their decision records (requests.record): requests, LLM tokens, LLM and
   tool cost, in the agent's cost unit, in all or grouped. */
#ifndef CLI_COSTS_H
#define CLI_COSTS_H

#define CLI_COSTS_SUMMARY "costs --since 24h [--by user|intent|stage|request]: what the requests cost"

/* cli_command_fn: `conveyor costs --since WHEN [--by KEY] [options]`. */
int cli_costs_run (int argc, char **argv);

#endif
