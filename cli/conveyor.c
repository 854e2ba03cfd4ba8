/* conveyor: the operator's command line. `conveyor COMMAND [options]`, one file per command. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli_bench.h"
#include "cli_command.h"
#include "cli_costs.h"
#include "cli_decisions.h"
#include "cli_migrate.h"
#include "cli_probe.h"
#include "cli_seed.h"
#include "cli_tools.h"
#include "cli_trace.h"
#include "cli_eval.h"
#include "cli_train.h"

static const cli_command_t s_commands[] = {
    {"probe", CLI_PROBE_SUMMARY, cli_probe_run}, {"migrate", CLI_MIGRATE_SUMMARY, cli_migrate_run},
    {"seed", CLI_SEED_SUMMARY, cli_seed_run},    {"train", CLI_TRAIN_SUMMARY, cli_train_run},
    {"eval", CLI_EVAL_SUMMARY, cli_eval_run},    {"bench", CLI_BENCH_SUMMARY, cli_bench_run},
    {"tools", CLI_TOOLS_SUMMARY, cli_tools_run}, {"trace", CLI_TRACE_SUMMARY, cli_trace_run},
    {"costs", CLI_COSTS_SUMMARY, cli_costs_run}, {"decisions", CLI_DECISIONS_SUMMARY, cli_decisions_run},
};
#define COMMAND_COUNT (sizeof s_commands / sizeof s_commands[0])

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: conveyor COMMAND [options]\n"
                  "Operates a conveyor deployment: probes its services, migrates and seeds its database,\n"
                  "trains its intent model, loads its HTTP API, tests an intent's tools, draws a request's trace,\n"
                  "adds up what requests cost and shows why each went as it did.\n\n"
                  "commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf (out, "  %-9s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf (out, "\n"
                  "`conveyor COMMAND --help` shows a command's options. Each option can also be set by its\n"
                  "environment variable, CONVEYOR_ and the option's name in capitals with - as _ (e.g.\n"
                  "--database-url: CONVEYOR_DATABASE_URL); an option on the command line wins.\n\n"
                  "exit status:\n"
                  "  0  done (probe: the service answered ok; bench: at least one request was answered;\n"
                  "     tools test: every tool ok)\n"
                  "  1  the command failed: a probe not ok, unreachable, unanswered in time or answered\n"
                  "     with garbage; the database unreachable or a statement failed; training data\n"
                  "     unreadable or malformed, or the model not written; bench: no request answered;\n"
                  "     tools test: a tool not ok\n"
                  "  2  usage error: unknown command or option, missing or extra argument, bad value\n"
                  "     (bench: a --requests file unreadable or malformed; tools test: an unknown intent\n"
                  "     or an orchestrator that cannot be reached)\n");
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0 || (strcmp (name, "help") == 0 && argc == 2)) {
        s_usage (stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp (name, "--version") == 0) {
        printf ("conveyor %s\n", CONVEYOR_VERSION);
        return CLI_EXIT_OK;
    }
    /* `conveyor help COMMAND` is `conveyor COMMAND --help` */
    char *help_argv[] = {argv[argc > 2 ? 2 : 1], "--help", NULL};
    bool help = strcmp (name, "help") == 0;
    if (help)
        name = argv[2];
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp (name, s_commands[i].name) == 0)
            return help ? s_commands[i].run (2, help_argv) : s_commands[i].run (argc - 1, argv + 1);
    fprintf (stderr, "conveyor: unknown command '%s' (see conveyor --help)\n", name);
    return CLI_EXIT_USAGE;
}
