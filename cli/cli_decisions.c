/* `conveyor decisions` (cli_decisions.h). */
#include "cli_decisions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_command.h"

#define COMMAND "decisions"

static const cv_setting_t s_settings[] = {
    {"database-url", CV_SETTING_STRING, "postgresql://conveyor@127.0.0.1:55432/conveyor", 0, 0,
     "the PostgreSQL database (a libpq URL or key=value string)"},
    {"since", CV_SETTING_STRING, "", 0, 0,
     "the requests that arrived since: a duration back from now (90s, 30m, 24h, 7d) or a date and time (required)"},
    {"intent", CV_SETTING_STRING, "", 0, 0, "only the requests of this intent"},
    {"outcome", CV_SETTING_STRING, "", 0, 0, "only the requests whose decision had this outcome"},
    {"limit", CV_SETTING_INT, "50", 1, 100000, "the most requests, the latest first"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print one JSON record a line instead"},
};

static const char s_summary[] =
    "Prints the decision log of the requests that arrived since --since, the latest first: for\n"
    "each, its intent and how it was found (rule, model, llm, fallback) with its confidence, its\n"
    "tools and their outcomes, the decision's outcome, the rule that took it and why, its actions\n"
    "and what became of them (and, for a follow-up, the person's decision), the reply's template\n"
    "and what it cost.\n"
    "--intent and --outcome keep only the requests of that intent or decision outcome. --json\n"
    "prints each record as one JSON line: {\"request_id\", \"created_at\", \"user_id\", \"status\",\n"
    "\"intent\", \"tools\", \"decision\" (with the policies tried and the values read, \"log\"), \"reply\",\n"
    "\"cost\", ...}. Requests still running, and those that ended before migration 0014, have no\n"
    "record. Exit status: 0 when printed (even nothing); 1 when the database cannot be reached, the\n"
    "query fails or a record cannot be read (the others are still printed); 2 on a usage error.";

static const char *
s_text (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

static void
s_print (const char *id, const char *at, const char *user, const json_t *record)
{
    printf ("%s  %s  %s  %s\n", id, at, user, s_text (record, "status"));
    const json_t *intent = json_object_get (record, "intent");
    if (intent) {
        printf ("  intent    %s (%s, confidence %.2f)", s_text (intent, "name"), s_text (intent, "method"),
                json_number_value (json_object_get (intent, "confidence")));
        if (*s_text (intent, "rule"))
            printf (", rule %s", s_text (intent, "rule"));
        printf ("\n");
    }
    size_t index;
    json_t *item;
    const json_t *tools = json_object_get (record, "tools");
    if (json_array_size (tools)) {
        printf ("  tools    ");
        json_array_foreach ((json_t *) tools, index, item)
            printf ("%s %s %s %.1f ms%s", index ? "," : "", s_text (item, "name"), s_text (item, "status"),
                    json_number_value (json_object_get (item, "duration_ms")),
                    json_is_true (json_object_get (item, "cached")) ? " (cached)" : "");
        printf ("\n");
    }
    const json_t *decision = json_object_get (record, "decision");
    if (decision) {
        printf ("  decision  %s", s_text (decision, "outcome"));
        if (*s_text (decision, "rule"))
            printf (" by %s", s_text (decision, "rule"));
        if (*s_text (decision, "reason"))
            printf (": %s", s_text (decision, "reason"));
        printf ("\n");
        const json_t *actions = json_object_get (decision, "actions");
        if (json_array_size (actions)) {
            printf ("  actions  ");
            json_array_foreach ((json_t *) actions, index, item)
                printf ("%s %s %s", index ? "," : "", s_text (item, "kind"),
                        *s_text (item, "status") ? s_text (item, "status") : "recorded");
            printf ("\n");
        }
    }
    const json_t *approval = json_object_get (record, "approval"); /* a follow-up's: a person decided */
    if (approval)
        printf ("  approval  %s by %s, after request %s\n", s_text (approval, "decision"),
                s_text (approval, "approver"), s_text (record, "parent_id"));
    const json_t *reply = json_object_get (record, "reply");
    if (reply)
        printf ("  reply     %s%s\n", s_text (reply, "template"),
                json_is_true (json_object_get (reply, "escalated")) ? " (escalated)" : "");
    const json_t *cost = json_object_get (record, "cost");
    if (cost)
        printf ("  cost      %.6f (llm %.6f, tools %.6f)\n", json_number_value (json_object_get (cost, "total")),
                json_number_value (json_object_get (cost, "llm")), json_number_value (json_object_get (cost, "tools")));
    const json_t *error = json_object_get (record, "error");
    if (error)
        printf ("  error     %s\n", s_text (error, "message"));
}

static int
s_decisions (cv_pg_t *pg, const char *since, const char *intent, const char *outcome, long limit, bool as_json)
{
    char limit_text[24];
    snprintf (limit_text, sizeof limit_text, "%ld", limit);
    const char *params[] = {since, intent, outcome, limit_text};
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (
        pg,
        "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), user_id, record::text"
        " FROM requests WHERE created_at >= $1::timestamptz AND record IS NOT NULL"
        " AND ($2 = '' OR record->'intent'->>'name' = $2) AND ($3 = '' OR record->'decision'->>'outcome' = $3)"
        " ORDER BY created_at DESC, id LIMIT $4::bigint",
        4, params, &err);
    if (!result) {
        cli_command_fail (COMMAND, "%s", err.message);
        return CLI_EXIT_FAILED;
    }
    int rc = CLI_EXIT_OK;
    for (int row = 0; row < cv_pg_result_rows (result); row++) {
        json_error_t parse;
        json_t *record = json_loads (cv_pg_result_text (result, row, 3), 0, &parse);
        if (!json_is_object (record)) {
            cli_command_fail (COMMAND, "request %s: its record is not a JSON object: %s",
                              cv_pg_result_text (result, row, 0), parse.text);
            json_decref (record);
            rc = CLI_EXIT_FAILED; /* the others are still listed */
            continue;
        }
        if (as_json) {
            json_t *line =
                json_pack ("{s:s, s:s, s:s}", "request_id", cv_pg_result_text (result, row, 0), "created_at",
                           cv_pg_result_text (result, row, 1), "user_id", cv_pg_result_text (result, row, 2));
            json_object_update (line, record);
            char *text = json_dumps (line, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf ("%s\n", text);
            free (text);
            json_decref (line);
        } else
            s_print (cv_pg_result_text (result, row, 0), cv_pg_result_text (result, row, 1),
                     cv_pg_result_text (result, row, 2), record);
        json_decref (record);
    }
    cv_pg_result_destroy (&result);
    return rc;
}

int
cli_decisions_run (int argc, char **argv)
{
    int rc;
    cv_settings_t *settings = cli_command_settings (COMMAND, "conveyor decisions --since WHEN", s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, argv, &rc);
    if (!settings)
        return rc;
    rc = CLI_EXIT_USAGE;
    if (cv_settings_positional_count (settings) > 0)
        cli_command_fail (COMMAND, "takes no arguments, got '%s' (see --help)", cv_settings_positional (settings, 0));
    else {
        char since[64];
        cv_pg_t *pg = cli_command_connect_since (COMMAND, settings, since, sizeof since, &rc);
        if (pg) {
            const char *intent = cv_settings_string (settings, "intent"),
                       *outcome = cv_settings_string (settings, "outcome");
            rc = s_decisions (pg, since, intent ? intent : "", outcome ? outcome : "",
                              cv_settings_int (settings, "limit"), cv_settings_bool (settings, "json"));
        }
        cv_pg_destroy (&pg);
    }
    cv_settings_destroy (&settings);
    return rc;
}
