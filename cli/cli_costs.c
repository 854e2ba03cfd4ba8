/* `conveyor costs` (cli_costs.h). */
#include "cli_costs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_command.h"
#include "cv_alloc.h"

#define COMMAND "costs"

static const cv_setting_t s_settings[] = {
    {"database-url", CV_SETTING_STRING, "postgresql://conveyor@127.0.0.1:55432/conveyor", 0, 0,
     "the PostgreSQL database (a libpq URL or key=value string)"},
    {"since", CV_SETTING_STRING, "", 0, 0,
     "the requests that arrived since: a duration back from now (90s, 30m, 24h, 7d) or a date and time (required)"},
    {"by", CV_SETTING_STRING, "", 0, 0, "group by user, intent, stage or request (default: all in one line)"},
    {"limit", CV_SETTING_INT, "20", 1, 100000, "the most lines, the costliest first"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print one JSON object a line instead of the table"},
};

static const char s_summary[] =
    "Adds up what the requests that arrived since --since cost, from each ended request's decision\n"
    "record: how many, their LLM tokens (prompt and completion), their LLM cost, their tools' cost\n"
    "and the total, in the agent's cost unit (the one its LLM prices and tools' costs are written\n"
    "in). --by groups them by user, intent, stage (intent and respond: their LLM calls; gather: its\n"
    "tools) or request, the costliest first, at most --limit lines; without it, one line for all.\n"
    "Requests still running, and those that ended before migration 0014, have no record and are\n"
    "not counted. --json prints {\"key\", \"requests\", \"prompt_tokens\", \"completion_tokens\", \"llm\",\n"
    "\"tools\", \"total\"} a line. Exit status: 0 when printed (even nothing); 1 when the database\n"
    "cannot be reached or the query fails; 2 on a usage error.";

/* The key each way of grouping groups by, over `ended` (the requests' records) or its stages. */
static const struct {
    const char *by;
    const char *key;
    const char *from;
} s_groups[] = {
    {"", "'all'", "ended"},
    {"user", "user_id", "ended"},
    {"intent", "coalesce(record->'intent'->>'name', 'none')", "ended"},
    {"request", "id", "ended"},
    {"stage", "stage.key", "ended, jsonb_each(record->'cost'->'stages') stage"},
};

static int
s_costs (cv_pg_t *pg, const char *since, size_t group, long limit, bool as_json)
{
    /* a stage's figures are its own; a request's are its cost's */
    const char *cost = strcmp (s_groups[group].by, "stage") == 0 ? "stage.value" : "record->'cost'";
    char *sql =
        cv_asprintf ("WITH ended AS (SELECT id, user_id, record FROM requests WHERE created_at >= $1::timestamptz"
                     " AND record IS NOT NULL)"
                     " SELECT %s AS key, count(*)::text,"
                     " coalesce(sum((%s->>'prompt_tokens')::bigint), 0)::text,"
                     " coalesce(sum((%s->>'completion_tokens')::bigint), 0)::text,"
                     " round(coalesce(sum((%s->>'llm')::numeric), 0), 6)::text,"
                     " round(coalesce(sum((%s->>'tools')::numeric), 0), 6)::text,"
                     " round(coalesce(sum((%s->>'total')::numeric), 0), 6) AS total"
                     " FROM %s GROUP BY 1 HAVING count(*) > 0 ORDER BY total DESC, key LIMIT $2::bigint",
                     s_groups[group].key, cost, cost, cost, cost, cost, s_groups[group].from);
    char limit_text[24];
    snprintf (limit_text, sizeof limit_text, "%ld", limit);
    const char *params[] = {since, limit_text};
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (pg, sql, 2, params, &err);
    free (sql);
    if (!result) {
        cli_command_fail (COMMAND, "%s", err.message);
        return CLI_EXIT_FAILED;
    }
    const char *by = *s_groups[group].by ? s_groups[group].by : "all";
    if (!as_json)
        printf ("costs of the requests since %s, by %s\n%-32s %9s %12s %12s %14s %14s %14s\n", since, by, by,
                "requests", "prompt tok", "compl tok", "llm", "tools", "total");
    for (int row = 0; row < cv_pg_result_rows (result); row++) {
        const char *key = cv_pg_result_text (result, row, 0);
        if (as_json) {
            json_t *line =
                json_pack ("{s:s, s:I, s:I, s:I, s:f, s:f, s:f}", "key", key, "requests",
                           (json_int_t) cv_pg_result_int (result, row, 1), "prompt_tokens",
                           (json_int_t) cv_pg_result_int (result, row, 2), "completion_tokens",
                           (json_int_t) cv_pg_result_int (result, row, 3), "llm", cv_pg_result_real (result, row, 4),
                           "tools", cv_pg_result_real (result, row, 5), "total", cv_pg_result_real (result, row, 6));
            char *text = json_dumps (line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (12));
            printf ("%s\n", text);
            free (text);
            json_decref (line);
        } else
            printf ("%-32s %9s %12s %12s %14s %14s %14s\n", key, cv_pg_result_text (result, row, 1),
                    cv_pg_result_text (result, row, 2), cv_pg_result_text (result, row, 3),
                    cv_pg_result_text (result, row, 4), cv_pg_result_text (result, row, 5),
                    cv_pg_result_text (result, row, 6));
    }
    cv_pg_result_destroy (&result);
    return CLI_EXIT_OK;
}

int
cli_costs_run (int argc, char **argv)
{
    int rc;
    cv_settings_t *settings = cli_command_settings (COMMAND, "conveyor costs --since WHEN", s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, argv, &rc);
    if (!settings)
        return rc;
    rc = CLI_EXIT_USAGE;
    const char *by = cv_settings_string (settings, "by");
    size_t group = 0;
    while (group < sizeof s_groups / sizeof *s_groups && strcmp (s_groups[group].by, by ? by : "") != 0)
        group++;
    if (cv_settings_positional_count (settings) > 0)
        cli_command_fail (COMMAND, "takes no arguments, got '%s' (see --help)", cv_settings_positional (settings, 0));
    else if (group == sizeof s_groups / sizeof *s_groups)
        cli_command_fail (COMMAND, "--by must be user, intent, stage or request, not '%s'", by);
    else {
        char since[64];
        cv_pg_t *pg = cli_command_connect_since (COMMAND, settings, since, sizeof since, &rc);
        if (pg)
            rc = s_costs (pg, since, group, cv_settings_int (settings, "limit"), cv_settings_bool (settings, "json"));
        cv_pg_destroy (&pg);
    }
    cv_settings_destroy (&settings);
    return rc;
}
