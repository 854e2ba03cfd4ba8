/* `conveyor tools test`: one intent's plan through POST /v1/tools/test, as a table or as JSON. */
#include "cli_tools.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>

#include "cli_command.h"
#include "cli_http.h"
#include "cv_alloc.h"

#define COMMAND "tools test"

static const cv_setting_t s_settings[] = {
    {"url", CV_SETTING_STRING, "http://127.0.0.1:8080", 0, 0,
     "the orchestrator's HTTP API: the test goes to URL/v1/tools/test"},
    {"user", CV_SETTING_STRING, NULL, 0, 0, "the customer whose data the tools read (required)"},
    {"text", CV_SETTING_STRING, NULL, 0, 0, "the customer's text the tools see (default: the intent's name)"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print the orchestrator's JSON answer instead of the table"},
    {"timeout-ms", CV_SETTING_INT, "30000", 1, 600000, "how long to wait for the answer, in milliseconds"},
};

static const char s_summary[] =
    "Runs the tools of INTENT's plan for the customer --user, against the live stack: the\n"
    "orchestrator at --url sends one diagnostic request to a gatherer (nothing is recorded, no\n"
    "decision or reply follows) and answers every tool's result. --slot NAME=VALUE (repeatable)\n"
    "gives the intent a slot, as the intent worker would have read it (the value as a string).\n"
    "Prints a table (tool, status, ms, attempts, cached, breaker, rows, error), then each tool's\n"
    "rows as compact JSON, one a line; --json prints the answer as one JSON line instead:\n"
    "  {\"user_id\", \"intent\", \"duration_ms\", \"tools\": [{\"name\", \"status\", \"duration_ms\",\n"
    "   \"attempts\", \"cached\", \"breaker_open\", \"rows\", \"error\"}]}\n"
    "Exit status: 0 when every tool is ok; 1 when one is not, or the orchestrator could not run\n"
    "the test (no gatherer connected, the gatherer failed); 2 on a usage error, an intent the\n"
    "agent file plans no tools for, or an orchestrator that cannot be reached.";

static const char s_usage[] = "conveyor tools test INTENT --user USER [--slot NAME=VALUE ...]";

/* The --slot options, taken out of argv (cv_settings holds one value per option). */
typedef struct {
    char **words; /* argv without them, NULL-terminated */
    int count;
    json_t *slots; /* name -> value */
} words_t;

static int
s_slot (words_t *words, const char *pair)
{
    const char *equals = strchr (pair, '=');
    if (!equals || equals == pair) {
        cli_command_fail (COMMAND, "--slot takes NAME=VALUE, not '%s'", pair);
        return -1;
    }
    char *name = cv_strndup (pair, (size_t) (equals - pair));
    json_object_set_new (words->slots, name, json_string (equals + 1));
    free (name);
    return 0;
}

static int
s_words (words_t *words, int argc, char **argv)
{
    words->words = cv_calloc ((size_t) argc + 1, sizeof (char *));
    words->slots = json_object ();
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv[i], "--slot") == 0) {
            if (i + 1 == argc) {
                cli_command_fail (COMMAND, "--slot needs NAME=VALUE");
                return -1;
            }
            if (s_slot (words, argv[++i]))
                return -1;
        } else if (strncmp (argv[i], "--slot=", 7) == 0) {
            if (s_slot (words, argv[i] + 7))
                return -1;
        } else
            words->words[words->count++] = argv[i];
    }
    return 0;
}

static const char *
s_text (json_t *tool, const char *key)
{
    const char *text = json_string_value (json_object_get (tool, key));
    return text ? text : "";
}

static int
s_width (json_t *tools, const char *key, int least)
{
    size_t index;
    json_t *tool;
    int width = least;
    json_array_foreach (tools, index, tool) {
        int length = (int) strlen (s_text (tool, key));
        if (length > width)
            width = length;
    }
    return width;
}

/* The table, then each tool's rows; true when every tool is ok. */
static bool
s_print_table (json_t *document)
{
    json_t *tools = json_object_get (document, "tools");
    int name_width = s_width (tools, "name", 4), status_width = s_width (tools, "status", 6);
    printf ("intent %s for %s: %zu tools in %.1f ms\n", s_text (document, "intent"), s_text (document, "user_id"),
            json_array_size (tools), json_number_value (json_object_get (document, "duration_ms")));
    printf ("%-*s  %-*s  %8s  %8s  %6s  %7s  %5s  %s\n", name_width, "tool", status_width, "status", "ms", "attempts",
            "cached", "breaker", "rows", "error");
    bool all_ok = true;
    size_t index;
    json_t *tool;
    json_array_foreach (tools, index, tool) {
        json_t *rows = json_object_get (tool, "rows");
        all_ok &= strcmp (s_text (tool, "status"), "ok") == 0;
        printf ("%-*s  %-*s  %8.2f  %8lld  %6s  %7s  %5zu  %s\n", name_width, s_text (tool, "name"), status_width,
                s_text (tool, "status"), json_number_value (json_object_get (tool, "duration_ms")),
                (long long) json_integer_value (json_object_get (tool, "attempts")),
                json_is_true (json_object_get (tool, "cached")) ? "yes" : "no",
                json_is_true (json_object_get (tool, "breaker_open")) ? "open" : "closed",
                json_is_array (rows) ? json_array_size (rows) : 0, s_text (tool, "error"));
    }
    json_array_foreach (tools, index, tool) {
        json_t *rows = json_object_get (tool, "rows");
        printf ("\n%s rows:\n", s_text (tool, "name"));
        size_t row_index;
        json_t *row;
        json_array_foreach (rows, row_index, row) {
            char *text = json_dumps (row, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
            printf ("  %s\n", text ? text : "?");
            free (text);
        }
        if (json_array_size (rows) == 0)
            printf ("  (none)\n");
    }
    return all_ok;
}

static bool
s_all_ok (json_t *document)
{
    size_t index;
    json_t *tool;
    json_array_foreach (json_object_get (document, "tools"), index, tool)
        if (strcmp (s_text (tool, "status"), "ok") != 0)
            return false;
    return true;
}

/* Runs the test the checked options ask for. */
static int
s_test (cv_settings_t *settings, const char *intent, json_t *slots)
{
    const char *url = cv_settings_string (settings, "url");
    const char *text = cv_settings_string (settings, "text");
    json_t *request = json_pack ("{s:s, s:s, s:O}", "user_id", cv_settings_string (settings, "user"), "intent", intent,
                                 "slots", slots);
    if (text && *text)
        json_object_set_new (request, "text", json_string (text));
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    char *endpoint = cli_http_endpoint (url, "/v1/tools/test");
    long status = 0;
    json_t *document = cli_http_json (COMMAND, endpoint, body, cv_settings_int (settings, "timeout-ms"), &status);
    free (body);
    int rc = status ? CLI_EXIT_FAILED : CLI_EXIT_USAGE; /* an answer that is not JSON, or none */
    if (document && status != 200) {
        json_t *error = json_object_get (document, "error");
        cli_command_fail (COMMAND, "%s answered %ld: %s (%s)", endpoint, status, s_text (error, "message"),
                          s_text (error, "code"));
        rc = status == 400 ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
    } else if (document) {
        bool all_ok;
        if (cv_settings_bool (settings, "json")) {
            char *line = json_dumps (document, JSON_COMPACT);
            printf ("%s\n", line);
            free (line);
            all_ok = s_all_ok (document);
        } else
            all_ok = s_print_table (document);
        rc = all_ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    }
    json_decref (document);
    zstr_free (&endpoint);
    return rc;
}

int
cli_tools_run (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf (out, "usage: %s [options]\n(see conveyor tools test --help)\n", s_usage);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp (argv[1], "test") != 0) {
        cli_command_fail ("tools", "unknown subcommand '%s' (the one there is: test)", argv[1]);
        return CLI_EXIT_USAGE;
    }
    words_t words = {0};
    int rc = CLI_EXIT_USAGE;
    cv_settings_t *settings = NULL;
    if (s_words (&words, argc - 1, argv + 1) == 0)
        settings = cli_command_settings (COMMAND, s_usage, s_summary, s_settings,
                                         sizeof s_settings / sizeof s_settings[0], words.count, words.words, &rc);
    if (settings) {
        const char *user = cv_settings_string (settings, "user");
        const char *url = cv_settings_string (settings, "url");
        if (cv_settings_positional_count (settings) != 1)
            cli_command_fail (COMMAND, "expects one INTENT (see --help)");
        else if (!user || !*user)
            cli_command_fail (COMMAND, "--user is required (see --help)");
        else if (!url || (strncasecmp (url, "http://", 7) != 0 && strncasecmp (url, "https://", 8) != 0))
            cli_command_fail (COMMAND, "--url must be an http:// or https:// URL, not '%s'", url ? url : "");
        else if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            cli_command_fail (COMMAND, "cannot initialise libcurl");
            rc = CLI_EXIT_FAILED;
        } else {
            rc = s_test (settings, cv_settings_positional (settings, 0), words.slots);
            curl_global_cleanup ();
        }
    }
    cv_settings_destroy (&settings);
    json_decref (words.slots);
    free (words.words);
    return rc;
}
