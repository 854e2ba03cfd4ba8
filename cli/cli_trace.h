/* `conveyor trace REQUEST_ID`: a request's trace from the orchestrator's GET
   /v1/requests/{id}/trace, drawn in the terminal as a waterfall: the request, each stage, each
   tool and LLM call, with when it started and how long it took, and the orchestrator's own time
   (the total less its stages), so that the lines add up. */
#ifndef CLI_TRACE_H
#define CLI_TRACE_H

#define CLI_TRACE_SUMMARY "trace REQUEST_ID: a request's stages, tool and LLM calls as a waterfall"

/* cli_command_fn: `conveyor trace REQUEST_ID [--url URL] [--json] [--width N]`. */
int cli_trace_run (int argc, char **argv);

#endif
