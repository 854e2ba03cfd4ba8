/* What every command of the conveyor CLI shares: exit codes, options, failures, database. */
#include "cli_command.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

cv_settings_t *
cli_command_settings (const char *command, const char *usage, const char *summary, const cv_setting_t *table,
                      size_t count, int argc, char **argv, int *exit_code)
{
    assert (command && usage && summary && exit_code);
    cv_settings_t *settings = cv_settings_new (usage, summary, table, count);
    cv_error_t err;
    int loaded = cv_settings_load (settings, argc, argv, &err);
    if (loaded == 0)
        return settings;
    if (loaded == 1)
        *exit_code = CLI_EXIT_OK;
    else {
        cli_command_fail (command, "%s", err.message);
        *exit_code = CLI_EXIT_USAGE;
    }
    cv_settings_destroy (&settings);
    return NULL;
}

void
cli_command_fail (const char *command, const char *format, ...)
{
    char message[1200];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    /* One line, whatever the message: libpq's, for one, spans lines and indents with tabs. */
    char line[sizeof message];
    size_t used = 0;
    for (const char *c = message; *c; c++) {
        bool space = isspace ((unsigned char) *c);
        if (space && (used == 0 || line[used - 1] == ' '))
            continue;
        line[used++] = space ? ' ' : *c;
    }
    while (used > 0 && line[used - 1] == ' ')
        used--;
    line[used] = '\0';
    fprintf (stderr, "conveyor %s: %s\n", command, line);
}

cv_pg_t *
cli_command_connect (const char *command, const char *url)
{
    assert (command);
    if (!url || !*url) {
        cli_command_fail (command, "no database URL: set --database-url or CONVEYOR_DATABASE_URL");
        return NULL;
    }
    char application[64];
    snprintf (application, sizeof application, "conveyor-%s", command);
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, application, &err);
    if (!pg)
        cli_command_fail (command, "cannot reach the database: %s", err.message);
    return pg;
}

double
cli_command_seconds_since (int64_t started_us)
{
    return (double) (zclock_usecs () - started_us) / 1e6;
}

int
cli_command_since (const char *command, cv_pg_t *pg, const char *since, char *out, size_t size, bool *usage)
{
    *usage = true;
    if (!since || !*since) {
        cli_command_fail (command, "--since is required: a duration back from now (30m, 24h, 7d) or a date and time");
        return -1;
    }
    /* a number and a unit: a duration back from now */
    char *end = NULL;
    unsigned long long amount = strtoull (since, &end, 10);
    static const struct {
        char unit;
        const char *name;
    } units[] = {{'s', "seconds"}, {'m', "minutes"}, {'h', "hours"}, {'d', "days"}};
    char interval[64] = "";
    if (end != since && end && end[0] && !end[1] && since[0] >= '0' && since[0] <= '9')
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (*end == units[i].unit)
                snprintf (interval, sizeof interval, "%llu %s", amount, units[i].name);
    cv_error_t err;
    const char *params[] = {*interval ? interval : since};
    cv_pg_result_t *result = cv_pg_exec (
        pg, *interval ? "SELECT (now() - $1::interval)::text" : "SELECT $1::timestamptz::text", 1, params, &err);
    if (!result) {
        if (err.code == CV_ERR_UNAVAILABLE) {
            *usage = false;
            cli_command_fail (command, "%s", err.message);
        } else
            cli_command_fail (
                command, "--since '%s' is neither a duration (30m, 24h, 7d) nor a date and time (2026-12-01T08:00Z)",
                since);
        return -1;
    }
    snprintf (out, size, "%s", cv_pg_result_text (result, 0, 0));
    cv_pg_result_destroy (&result);
    return 0;
}

cv_pg_t *
cli_command_connect_since (const char *command, const cv_settings_t *settings, char *since, size_t size, int *exit_code)
{
    cv_pg_t *pg = cli_command_connect (command, cv_settings_string (settings, "database-url"));
    bool usage;
    if (!pg)
        *exit_code = CLI_EXIT_FAILED;
    else if (cli_command_since (command, pg, cv_settings_string (settings, "since"), since, size, &usage)) {
        *exit_code = usage ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
        cv_pg_destroy (&pg);
    }
    return pg;
}
