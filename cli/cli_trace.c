/* `conveyor trace REQUEST_ID` (cli_trace.h). */
#include "cli_trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>

#include "cli_command.h"
#include "cli_http.h"
#include "cv_envelope.h"

#define COMMAND "trace"
#define NAME_COLUMN 30

static const cv_setting_t s_settings[] = {
    {"url", CV_SETTING_STRING, "http://127.0.0.1:8080", 0, 0,
     "the orchestrator's HTTP API: the trace comes from URL/v1/requests/REQUEST_ID/trace"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print the orchestrator's JSON document instead of the waterfall"},
    {"width", CV_SETTING_INT, "40", 10, 400, "the waterfall's bars' width, in characters"},
    {"timeout-ms", CV_SETTING_INT, "10000", 1, 600000, "how long to wait for the answer, in milliseconds"},
};

static const char s_summary[] =
    "Prints REQUEST_ID's trace, as the orchestrator at --url keeps it: one line per span, the\n"
    "request's own first, then each stage and, under it, its worker's tool and LLM calls; each\n"
    "with when it started (ms after the request arrived), how long it took, its outcome and a bar\n"
    "on the request's time line. The last line splits the total into the stages' time and the\n"
    "orchestrator's own (checkpoints, queueing, dispatch): they add up to the total.\n"
    "--json prints the document as one JSON line instead: {\"request_id\", \"trace_id\", \"status\",\n"
    " \"spans\": [{\"span_id\", \"parent_span_id\", \"name\", \"kind\", \"start_unix_us\", \"duration_us\",\n"
    " \"status\", \"error\"}], \"untimed_stages\"}.\n"
    "Exit status: 0 when the trace was printed; 1 when there is no such request or the API\n"
    "could not answer; 2 on a usage error or an API that cannot be reached.";

static const char s_usage[] = "conveyor trace REQUEST_ID";

static double
s_ms (json_t *span, const char *key)
{
    return (double) json_integer_value (json_object_get (span, key)) / 1000.0;
}

static const char *
s_text (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* The waterfall; the spans come root first, each stage followed by its worker's. */
static void
s_print (json_t *document, int width)
{
    json_t *spans = json_object_get (document, "spans");
    json_t *root = json_array_get (spans, 0);
    double origin = s_ms (root, "start_unix_us"), total = s_ms (root, "duration_us");
    printf ("request %s  trace %s  %s  %.3f ms\n", s_text (document, "request_id"), s_text (document, "trace_id"),
            s_text (document, "status"), total);
    printf ("%-*s %10s %10s  %-12s %s\n", NAME_COLUMN, "span", "start ms", "took ms", "outcome", "timeline");
    double stages = 0;
    size_t index;
    json_t *span;
    json_array_foreach (spans, index, span) {
        const char *kind = s_text (span, "kind");
        int depth = strcmp (kind, "request") == 0 ? 0 : strcmp (kind, "stage") == 0 ? 1 : 2;
        double start = s_ms (span, "start_unix_us") - origin, took = s_ms (span, "duration_us");
        if (depth == 1)
            stages += took;
        char name[NAME_COLUMN + 1];
        snprintf (name, sizeof name, "%*s%s", depth * 2, "", s_text (span, "name"));
        char outcome[16];
        snprintf (outcome, sizeof outcome, "%s%s", s_text (span, "status"),
                  json_is_true (json_object_get (span, "error")) ? "!" : "");
        /* the bar: from the span's start to its end, on the request's time line */
        char bar[401];
        int from = total > 0 ? (int) floor (start / total * width) : 0;
        int to = total > 0 ? (int) ceil ((start + took) / total * width) : width;
        from = from < 0 ? 0 : from > width - 1 ? width - 1 : from;
        to = to <= from ? from + 1 : to > width ? width : to;
        for (int i = 0; i < width; i++)
            bar[i] = i >= from && i < to ? '#' : '.';
        bar[width] = '\0';
        printf ("%-*s %10.3f %10.3f  %-12s |%s|\n", NAME_COLUMN, name, start, took, outcome, bar);
    }
    json_t *untimed = json_object_get (document, "untimed_stages");
    if (json_array_size (untimed) > 0) {
        printf ("not timed here:");
        json_array_foreach (untimed, index, span)
            printf (" %s", json_string_value (span));
        printf (" (copied from the parent request, whose trace shows them, or from before migration 0013)\n");
    }
    printf ("total %.3f ms = stages %.3f ms + orchestrator %.3f ms\n", total, stages, total - stages);
}

static int
s_trace (cv_settings_t *settings, const char *id)
{
    char *path = zsys_sprintf ("/v1/requests/%s/trace", id);
    char *endpoint = cli_http_endpoint (cv_settings_string (settings, "url"), path);
    long status = 0;
    json_t *document = cli_http_json (COMMAND, endpoint, NULL, cv_settings_int (settings, "timeout-ms"), &status);
    int rc = status ? CLI_EXIT_FAILED : CLI_EXIT_USAGE; /* an answer that is not JSON, or none */
    if (document && status != 200) {
        json_t *error = json_object_get (document, "error");
        cli_command_fail (COMMAND, "%s answered %ld: %s (%s)", endpoint, status, s_text (error, "message"),
                          s_text (error, "code"));
    } else if (document && json_array_size (json_object_get (document, "spans")) == 0)
        cli_command_fail (COMMAND, "%s answered a trace without spans", endpoint);
    else if (document) {
        if (cv_settings_bool (settings, "json")) {
            char *line = json_dumps (document, JSON_COMPACT);
            printf ("%s\n", line);
            free (line);
        } else
            s_print (document, (int) cv_settings_int (settings, "width"));
        rc = CLI_EXIT_OK;
    }
    json_decref (document);
    zstr_free (&endpoint);
    zstr_free (&path);
    return rc;
}

int
cli_trace_run (int argc, char **argv)
{
    int rc;
    cv_settings_t *settings = cli_command_settings (COMMAND, s_usage, s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, argv, &rc);
    if (!settings)
        return rc;
    rc = CLI_EXIT_USAGE;
    const char *url = cv_settings_string (settings, "url");
    if (cv_settings_positional_count (settings) != 1)
        cli_command_fail (COMMAND, "expects one REQUEST_ID (see --help)");
    else if (!cv_name_valid (cv_settings_positional (settings, 0)))
        cli_command_fail (COMMAND, "'%s' is not a request id (1..%d of %s)", cv_settings_positional (settings, 0),
                          CV_NAME_MAX_BYTES, CV_NAME_CHARS);
    else if (!url || (strncasecmp (url, "http://", 7) != 0 && strncasecmp (url, "https://", 8) != 0))
        cli_command_fail (COMMAND, "--url must be an http:// or https:// URL, not '%s'", url ? url : "");
    else if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_command_fail (COMMAND, "cannot initialise libcurl");
        rc = CLI_EXIT_FAILED;
    } else {
        rc = s_trace (settings, cv_settings_positional (settings, 0));
        curl_global_cleanup ();
    }
    cv_settings_destroy (&settings);
    return rc;
}
