/* `conveyor bench`: its options, the requests it sends, and its report. */
#include "cli_bench.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>

#include "cli_command.h"
#include "cli_load.h"
#include "cli_plot.h"
#include "cv_alloc.h"

#define COMMAND "bench"

static const cv_setting_t s_settings[] = {
    {"url", CV_SETTING_STRING, "http://127.0.0.1:8080", 0, 0,
     "the orchestrator's HTTP API: requests go to URL/v1/requests"},
    {"clients", CV_SETTING_INT, "1", 1, 10000,
     "-c: clients at once, one connection each (open loop: the most requests at once)"},
    {"duration", CV_SETTING_INT, "10", 1, 86400, "-d: seconds to send requests for"},
    {"count", CV_SETTING_INT, "0", 0, 1000000000, "-n: send at most this many requests (0: no limit)"},
    {"rate", CV_SETTING_INT, "0", 0, 1000000, "open loop: requests a second, due at fixed times (0: closed loop)"},
    {"requests", CV_SETTING_STRING, NULL, 0, 0, "a JSON lines file of {\"user_id\", \"text\"} instead of the demo mix"},
    {"new-connection", CV_SETTING_BOOL, "false", 0, 0, "open a connection for every request instead of keeping them"},
    {"timeout-ms", CV_SETTING_INT, "30000", 1, 600000, "each request's limit, from sending it to its answer"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print one JSON object instead of the text report"},
    {"plot", CV_SETTING_STRING, NULL, 0, 0, "also draw the latency percentile distribution in this SVG file"},
    {"progress", CV_SETTING_BOOL, "false", 0, 0, "a progress line a second on stderr even when it is not a terminal"},
};

static const char s_summary[] =
    "Sends POST /v1/requests with {\"user_id\", \"text\"} to a running orchestrator and measures\n"
    "the answers. Closed loop (the default): each of -c clients sends its next request when the\n"
    "previous one is answered. Open loop (--rate RPS): a request is due every 1/RPS s and is sent\n"
    "then on a free connection (at most -c at once; it waits for one when all are busy); its\n"
    "latency runs from the time it was due, so a stall cannot hide the requests it held back.\n"
    "Connections are kept alive and reused unless --new-connection. Requests are taken in turn\n"
    "from --requests FILE (JSON lines, blank lines skipped; bench/pipeline-4.jsonl is the\n"
    "pipeline-4 workload) or from a built-in mix of demo questions for cust-1..cust-20. Sending\n"
    "stops after -d seconds or -n requests, whichever comes first; the answers still due are\n"
    "awaited (at most --timeout-ms). Short options: -c CLIENTS, -d SECONDS, -n COUNT.\n"
    "\n"
    "A request is answered when its status is 2xx. Throughput is answered requests a second;\n"
    "latency percentiles (3 significant digits) are of answered requests. Errors are counted by\n"
    "kind: the HTTP status (\"503\"), \"timeout\" (no answer within --timeout-ms), \"connection\"\n"
    "(refused, reset, closed without an answer) or \"other\". --json prints one object:\n"
    "  {\"url\" (POSTed to), \"mode\" (\"closed\" or \"open\"), \"clients\", \"rate_rps\" (null when\n"
    "   closed), \"new_connection\", \"duration_s\" (from the first request to the last answer),\n"
    "   \"requests\" (finished: answered or failed), \"answered\", \"unsent\" (open loop: due, but\n"
    "   no connection was free before the end), \"queued\" (open loop: sent late, after waiting\n"
    "   for a connection), \"connections\" (opened), \"throughput_rps\",\n"
    "   \"errors\": {\"total\", \"by_kind\": {KIND: COUNT}},\n"
    "   \"latency_ms\": {\"p50\", \"p90\", \"p99\", \"p999\", \"max\", \"mean\"} (null when none was\n"
    "   answered), \"interrupted\" (Ctrl-C ended the run)}\n"
    "A progress line goes to stderr every second when stderr is a terminal, or with --progress.\n"
    "Exit status: 0 when at least one request was answered; 1 when none was (the URL unreachable,\n"
    "every request failed) or the --plot file cannot be written; 2 on a usage error, a --requests\n"
    "file included (unreadable, empty, or a line that is not {\"user_id\": \"...\", \"text\": \"...\"}:\n"
    "its file:line is named).";

/* The built-in mix: every demo question for every one of the first customers of the demo bank. */
static const char *const s_demo_texts[] = {
    "Where is my new card? It still hasn't arrived",
    "I lost my card",
    "Why is my transfer still pending?",
    "My top-up failed, what happened?",
    "What is the exchange rate for USD?",
    "I want a refund for my last purchase",
    "There is a payment I don't recognise on my card",
    "I was charged twice for the same thing",
};
#define DEMO_TEXTS (sizeof s_demo_texts / sizeof s_demo_texts[0])
#define DEMO_USERS 20

/* Short options and the settings they spell. */
static const struct {
    char letter;
    const char *setting;
} s_short[] = {{'c', "clients"}, {'d', "duration"}, {'n', "count"}};

/* The requests to send: JSON bodies, owned. */
typedef struct {
    char **bodies;
    size_t count, size;
} mix_t;

/* A copy of argv with the short options spelled as their settings (-c 4 or -c4 as --clients 4);
   the caller frees the array and the strings in owned (NULL where argv's own is used). A word
   that is the value of the option before it is left alone. */
static char **
s_unalias (int argc, char **argv, char ***owned)
{
    char **out = cv_calloc ((size_t) argc + 1, sizeof (char *));
    *owned = cv_calloc ((size_t) argc + 1, sizeof (char *));
    bool value_next = false;
    for (int i = 0; i < argc; i++) {
        out[i] = argv[i];
        if (i == 0 || value_next) {
            value_next = false;
            continue;
        }
        const char *word = argv[i];
        for (size_t s = 0; s < sizeof s_short / sizeof s_short[0]; s++)
            if (word[0] == '-' && word[1] == s_short[s].letter) {
                if (word[2])
                    out[i] = (*owned)[i] = zsys_sprintf ("--%s=%s", s_short[s].setting, word + 2);
                else
                    out[i] = (*owned)[i] = zsys_sprintf ("--%s", s_short[s].setting);
            }
        /* --name VALUE: the next word is a value, whatever it looks like. */
        if (strncmp (out[i], "--", 2) == 0 && !strchr (out[i], '='))
            for (size_t s = 0; s < sizeof s_settings / sizeof s_settings[0]; s++)
                if (strcmp (out[i] + 2, s_settings[s].name) == 0 && s_settings[s].type != CV_SETTING_BOOL)
                    value_next = true;
    }
    return out;
}

static void
s_mix_add (mix_t *mix, char *body)
{
    assert (body);
    if (mix->count == mix->size) {
        mix->size = mix->size ? 2 * mix->size : 64;
        mix->bodies = cv_realloc (mix->bodies, mix->size * sizeof (char *));
    }
    mix->bodies[mix->count++] = body;
}

static void
s_mix_reset (mix_t *mix)
{
    for (size_t i = 0; i < mix->count; i++)
        free (mix->bodies[i]);
    free (mix->bodies);
    *mix = (mix_t){0};
}

/* Every demo question for every one of DEMO_USERS customers, interleaved so that consecutive
   requests differ in both. */
static void
s_mix_demo (mix_t *mix)
{
    for (size_t k = 0; k < DEMO_USERS * DEMO_TEXTS; k++) {
        char user[16];
        snprintf (user, sizeof user, "cust-%zu", k % DEMO_USERS + 1);
        json_t *request = json_pack ("{s:s, s:s}", "user_id", user, "text",
                                     s_demo_texts[(k % DEMO_USERS + k / DEMO_USERS) % DEMO_TEXTS]);
        s_mix_add (mix, json_dumps (request, JSON_COMPACT));
        json_decref (request);
    }
}

static bool
s_blank (const char *line)
{
    for (; *line; line++)
        if (!isspace ((unsigned char) *line))
            return false;
    return true;
}

/* The requests of a JSON lines file, each an object with string fields user_id and text, sent
   as it is (other fields too). -1 after saying which line is wrong, or why the file is. */
static int
s_mix_load (mix_t *mix, const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        cli_command_fail (COMMAND, "cannot read %s: %s", path, strerror (errno));
        return -1;
    }
    char *line = NULL;
    size_t size = 0, number = 0;
    ssize_t length;
    int rc = 0;
    while (rc == 0 && (length = getline (&line, &size, file)) >= 0) {
        number++;
        if (s_blank (line))
            continue;
        json_error_t error;
        json_t *request = json_loadb (line, (size_t) length, JSON_REJECT_DUPLICATES, &error);
        if (!request) {
            cli_command_fail (COMMAND, "%s:%zu: not JSON: %s", path, number, error.text);
            rc = -1;
        } else if (!json_is_object (request) || !json_is_string (json_object_get (request, "user_id"))
                   || !json_is_string (json_object_get (request, "text"))) {
            cli_command_fail (COMMAND, "%s:%zu: not an object with string fields user_id and text", path, number);
            rc = -1;
        } else
            s_mix_add (mix, json_dumps (request, JSON_COMPACT));
        json_decref (request);
    }
    if (rc == 0 && ferror (file)) {
        cli_command_fail (COMMAND, "cannot read %s: %s", path, strerror (errno));
        rc = -1;
    } else if (rc == 0 && mix->count == 0) {
        cli_command_fail (COMMAND, "%s holds no requests", path);
        rc = -1;
    }
    free (line);
    fclose (file);
    return rc;
}

/* What the run measured, as the --json object (the text report is read from it too). */
static json_t *
s_report (const cli_load_options_t *options, cli_load_t *load)
{
    const cli_load_counts_t *counts = cli_load_counts (load);
    const cv_histogram_t *latency_us = cli_load_latency_us (load);
    json_t *kinds = json_object ();
    for (size_t status = 0; status < CLI_LOAD_STATUS_CODES; status++)
        if (counts->by_status[status]) {
            char key[8];
            snprintf (key, sizeof key, "%zu", status);
            json_object_set_new (kinds, key, json_integer ((json_int_t) counts->by_status[status]));
        }
    if (counts->timeouts)
        json_object_set_new (kinds, "timeout", json_integer ((json_int_t) counts->timeouts));
    if (counts->connection_errors)
        json_object_set_new (kinds, "connection", json_integer ((json_int_t) counts->connection_errors));
    if (counts->other_errors)
        json_object_set_new (kinds, "other", json_integer ((json_int_t) counts->other_errors));
    json_t *latency = cli_load_latency_json (latency_us);
    double throughput = counts->seconds > 0 ? (double) counts->answered / counts->seconds : 0;
    return json_pack (
        "{s:s, s:s, s:I, s:o, s:b, s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:{s:I, s:o}, s:o, s:b}", "url",
        options->endpoint, "mode", options->rate ? "open" : "closed", "clients", (json_int_t) options->clients,
        "rate_rps", options->rate ? json_integer (options->rate) : json_null (), "new_connection",
        options->new_connection, "duration_s", round (counts->seconds * 1000) / 1000, "requests",
        (json_int_t) (counts->answered + counts->failed), "answered", (json_int_t) counts->answered, "unsent",
        (json_int_t) counts->unsent, "queued", (json_int_t) counts->queued, "connections",
        (json_int_t) counts->connections, "throughput_rps", round (throughput * 10) / 10, "errors", "total",
        (json_int_t) counts->failed, "by_kind", kinds, "latency_ms", latency, "interrupted", counts->interrupted);
}

static json_int_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static double
s_real (json_t *object, const char *key)
{
    return json_real_value (json_object_get (object, key));
}

/* The report for a person, from the JSON one. */
static void
s_print (json_t *report, FILE *out)
{
    json_t *latency = json_object_get (report, "latency_ms");
    json_t *errors = json_object_get (report, "errors");
    bool open = json_is_integer (json_object_get (report, "rate_rps"));
    fprintf (out, "conveyor bench: %s, %s loop", json_string_value (json_object_get (report, "url")),
             open ? "open" : "closed");
    if (open)
        fprintf (out, " at %lld requests/s", (long long) s_int (report, "rate_rps"));
    fprintf (out, ", %lld clients, %s connections%s\n", (long long) s_int (report, "clients"),
             json_is_true (json_object_get (report, "new_connection")) ? "new" : "kept-alive",
             json_is_true (json_object_get (report, "interrupted")) ? " (interrupted)" : "");
    fprintf (out, "  requests    %lld in %.3f s: %lld answered, %lld failed; %lld connections opened\n",
             (long long) s_int (report, "requests"), s_real (report, "duration_s"),
             (long long) s_int (report, "answered"), (long long) s_int (errors, "total"),
             (long long) s_int (report, "connections"));
    if (s_int (report, "queued") || s_int (report, "unsent"))
        fprintf (out, "  late        %lld waited for a free connection, %lld were due but never sent (all -c busy)\n",
                 (long long) s_int (report, "queued"), (long long) s_int (report, "unsent"));
    fprintf (out, "  throughput  %.1f requests/s answered\n", s_real (report, "throughput_rps"));
    fprintf (out, "  errors      %s", s_int (errors, "total") ? "" : "none");
    const char *kind;
    json_t *count;
    const char *separator = "";
    json_object_foreach (json_object_get (errors, "by_kind"), kind, count) {
        fprintf (out, "%s%s: %lld", separator, kind, (long long) json_integer_value (count));
        separator = ", ";
    }
    if (json_is_null (json_object_get (latency, "max")))
        fprintf (out, "\n  latency     none answered\n");
    else
        fprintf (out, "\n  latency     p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms%s\n",
                 s_real (latency, "p50"), s_real (latency, "p90"), s_real (latency, "p99"), s_real (latency, "p999"),
                 s_real (latency, "max"), open ? " (from each request's due time)" : "");
}

/* Says in one line that nothing was answered, with the errors by kind and libcurl's first. */
static void
s_fail_unanswered (json_t *report, const cli_load_counts_t *counts)
{
    char kinds[256] = "";
    size_t used = 0;
    const char *kind;
    json_t *count;
    json_object_foreach (json_object_get (json_object_get (report, "errors"), "by_kind"), kind, count)
        if (used < sizeof kinds)
            used += (size_t) snprintf (kinds + used, sizeof kinds - used, "%s%s: %lld", used ? ", " : "", kind,
                                       (long long) json_integer_value (count));
    cli_command_fail (COMMAND, "no request was answered: %llu failed (%s)%s%s", (unsigned long long) counts->failed,
                      used ? kinds : "none sent", counts->first_error[0] ? "; the first: " : "", counts->first_error);
}

/* Draws the latency distribution into plot (opened before the run) and closes it; -1 after
   saying why it could not. */
static int
s_plot (const cli_load_options_t *options, cli_load_t *load, FILE *plot, const char *path)
{
    char *title = zsys_sprintf ("conveyor bench: %s, %s loop, %zu clients", options->endpoint,
                                options->rate ? "open" : "closed", options->clients);
    int rc = cli_plot_percentiles (plot, cli_load_latency_us (load), title);
    zstr_free (&title);
    if (fclose (plot) || rc) {
        cli_command_fail (COMMAND, "cannot write %s", path);
        return -1;
    }
    return 0;
}

/* The run and its report, once the options are known good. */
static int
s_bench (cv_settings_t *settings, const char *endpoint, const mix_t *mix, FILE *plot)
{
    cli_load_options_t options = {
        .endpoint = endpoint,
        .clients = (size_t) cv_settings_int (settings, "clients"),
        .rate = cv_settings_int (settings, "rate"),
        .duration_us = cv_settings_int (settings, "duration") * 1000000LL,
        .count = (uint64_t) cv_settings_int (settings, "count"),
        .timeout_ms = cv_settings_int (settings, "timeout-ms"),
        .new_connection = cv_settings_bool (settings, "new-connection"),
        .progress = cv_settings_bool (settings, "progress") || isatty (STDERR_FILENO),
    };
    cli_load_t *load = cli_load_new (&options, mix->bodies, mix->count);
    cli_load_run (load);
    json_t *report = s_report (&options, load);
    if (cv_settings_bool (settings, "json")) {
        char *line = json_dumps (report, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (12));
        printf ("%s\n", line);
        free (line);
    } else
        s_print (report, stdout);
    fflush (stdout);
    int rc = CLI_EXIT_OK;
    if (cli_load_counts (load)->answered == 0) {
        s_fail_unanswered (report, cli_load_counts (load));
        rc = CLI_EXIT_FAILED;
    }
    if (plot && s_plot (&options, load, plot, cv_settings_string (settings, "plot")))
        rc = CLI_EXIT_FAILED;
    json_decref (report);
    cli_load_destroy (&load);
    return rc;
}

int
cli_bench_run (int argc, char **argv)
{
    char **owned;
    char **words = s_unalias (argc, argv, &owned);
    int rc = CLI_EXIT_OK;
    cv_settings_t *settings = cli_command_settings (COMMAND, "conveyor bench", s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, words, &rc);
    for (int i = 0; i < argc; i++)
        zstr_free (&owned[i]);
    free (owned);
    free (words);
    if (!settings)
        return rc;
    const char *url = cv_settings_string (settings, "url");
    const char *requests = cv_settings_string (settings, "requests");
    const char *plot_path = cv_settings_string (settings, "plot");
    mix_t mix = {0};
    FILE *plot = NULL;
    if (cv_settings_positional_count (settings) > 0) {
        cli_command_fail (COMMAND, "takes no arguments, got '%s' (see --help)", cv_settings_positional (settings, 0));
        rc = CLI_EXIT_USAGE;
    } else if (!url || (strncasecmp (url, "http://", 7) != 0 && strncasecmp (url, "https://", 8) != 0)) {
        cli_command_fail (COMMAND, "--url must be an http:// or https:// URL, not '%s'", url ? url : "");
        rc = CLI_EXIT_USAGE;
    } else if (requests && *requests && s_mix_load (&mix, requests))
        rc = CLI_EXIT_USAGE;
    else if (plot_path && *plot_path && !(plot = fopen (plot_path, "w"))) {
        /* Said before the run rather than after it. */
        cli_command_fail (COMMAND, "cannot write %s: %s", plot_path, strerror (errno));
        rc = CLI_EXIT_FAILED;
    } else if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_command_fail (COMMAND, "cannot initialise libcurl");
        rc = CLI_EXIT_FAILED;
    } else {
        if (mix.count == 0)
            s_mix_demo (&mix);
        size_t length = strlen (url);
        while (length > 0 && url[length - 1] == '/')
            length--;
        char *endpoint = zsys_sprintf ("%.*s/v1/requests", (int) length, url);
        rc = s_bench (settings, endpoint, &mix, plot);
        plot = NULL; /* closed by the report */
        zstr_free (&endpoint);
        curl_global_cleanup ();
    }
    if (plot)
        fclose (plot);
    s_mix_reset (&mix);
    cv_settings_destroy (&settings);
    return rc;
}
