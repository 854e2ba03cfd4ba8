/* `conveyor decisions --since WHEN [--intent X] [--outcome Y]`: the decision log, from the ended
   requests' records (requests.record): for each, the intent and how it was found, the tools and
   their outcomes, the rule that decided and why, the actions and what became of them, the reply's
   template and the cost. */
#ifndef CLI_DECISIONS_H
#define CLI_DECISIONS_H

#define CLI_DECISIONS_SUMMARY "decisions --since 1h [--intent X] [--outcome Y]: why each request went as it did"

/* cli_command_fn: `conveyor decisions --since WHEN [options]`. */
int cli_decisions_run (int argc, char **argv);

#endif
