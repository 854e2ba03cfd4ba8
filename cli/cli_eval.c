/* `conveyor eval`: a labelled CSV file through the intent worker, with its figures. */
#include "cli_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "cli_command.h"
#include "cv_config.h"
#include "cv_context.h"
#include "cv_envelope.h"
#include "intent_classifier.h"
#include "learn_eval.h"
#include "learn_examples.h"

#define COMMAND "eval"

static const cv_setting_t s_settings[] = {
    {"data", CV_SETTING_STRING, NULL, 0, 0, "labelled queries: CSV (RFC 4180) with columns text, category"},
    {"model", CV_SETTING_STRING, NULL, 0, 0, "the model file, instead of the agent file's classifier.model"},
    {"agent-file", CV_SETTING_STRING, "deploy/config/bank-agent.yaml", 0, 0, "the agent file: rules and classifier"},
    {"endpoint", CV_SETTING_STRING, NULL, 0, 0,
     "a live intent worker's control endpoint (tcp://HOST:PORT) instead of the logic in process"},
    {"timeout-ms", CV_SETTING_INT, "5000", 1, 600000, "each query's deadline (the LLM's share of it included)"},
    {"confusions", CV_SETTING_INT, "10", 0, 1000, "how many of the costliest confusions to list"},
    {"json", CV_SETTING_BOOL, "false", 0, 0, "print one JSON object instead of the text report"},
};

static const char s_summary[] =
    "Classifies every text of a labelled file as the intent worker does (rules, the trained model,\n"
    "the LLM when one is configured) and reports accuracy, macro-F1, the confusions that cost most,\n"
    "the fast path (rules and the model above its threshold): its coverage and accuracy, and the\n"
    "latency per query in microseconds. With --endpoint the queries go to a running worker's\n"
    "control endpoint, one at a time, and the latency is the round trip. --json prints an object\n"
    "with n, accuracy, macro_f1, fast_path {coverage, accuracy}, latency_us {p50, p99, max},\n"
    "methods {name: {n, accuracy}} and confusions.";

static bool
s_fast_path (Conveyor__V1__Intent__Method method)
{
    return method == CONVEYOR__V1__INTENT__METHOD__RULE || method == CONVEYOR__V1__INTENT__METHOD__MODEL;
}

/* Every example through the classifier, in process. */
static int
s_eval_local (const learn_examples_t *data, cv_settings_t *settings, learn_eval_t *eval)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_load (cv_settings_string (settings, "agent-file"), &err);
    if (!agent) {
        cli_command_fail (COMMAND, "%s", err.message);
        return CLI_EXIT_FAILED;
    }
    intent_classifier_t *classifier = intent_classifier_new (agent, cv_settings_string (settings, "model"), NULL, &err);
    cv_config_destroy (&agent);
    if (!classifier) {
        cli_command_fail (COMMAND, "%s", err.message);
        return CLI_EXIT_FAILED;
    }
    time_t now = time (NULL);
    struct tm today;
    gmtime_r (&now, &today);
    long timeout = cv_settings_int (settings, "timeout-ms");
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < learn_examples_size (data) && rc == CLI_EXIT_OK; i++) {
        size_t size;
        const char *label;
        const char *text = learn_examples_example (data, i, &size, &label);
        intent_result_t result;
        int64_t started = zclock_usecs ();
        if (intent_classifier_classify (classifier, text, (uint64_t) zclock_time () + (uint64_t) timeout, NULL,
                                        today.tm_year + 1900, today.tm_mon + 1, today.tm_mday, &result, &err)) {
            cli_command_fail (COMMAND, "example %zu: %s", i + 1, err.message);
            rc = CLI_EXIT_FAILED;
            break;
        }
        int64_t elapsed = zclock_usecs () - started;
        learn_eval_add (eval, label, result.name, s_fast_path (result.method), cv_context_method_name (result.method),
                        elapsed);
        intent_result_reset (&result);
    }
    intent_classifier_destroy (&classifier);
    return rc;
}

/* Every example to a live worker's control endpoint, one request at a time. */
static int
s_eval_remote (const learn_examples_t *data, cv_settings_t *settings, learn_eval_t *eval)
{
    const char *endpoint = cv_settings_string (settings, "endpoint");
    long timeout = cv_settings_int (settings, "timeout-ms");
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_set_linger (req, 0);
    zsock_set_rcvtimeo (req, (int) timeout + 1000);
    if (zsock_connect (req, "%s", endpoint)) {
        zsock_destroy (&req);
        cli_command_fail (COMMAND, "cannot connect to %s", endpoint);
        return CLI_EXIT_USAGE;
    }
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < learn_examples_size (data) && rc == CLI_EXIT_OK; i++) {
        size_t size;
        const char *label;
        const char *text = learn_examples_example (data, i, &size, &label);
        cv_arena_t *arena = cv_arena_new ();
        char request_id[24];
        snprintf (request_id, sizeof request_id, "eval-%zu", i + 1);
        cv_envelope_t *request =
            cv_envelope_new (arena, request_id, "", (uint64_t) zclock_time () + (uint64_t) timeout, 1);
        Conveyor__V1__IntentRequest *body = cv_envelope_set_intent_request (request, arena);
        body->user_id = "eval";
        body->text = (char *) text;
        size_t packed_size;
        uint8_t *packed = cv_envelope_pack (request, &packed_size);
        zframe_t *frame = zframe_new (packed, packed_size);
        free (packed);
        int64_t started = zclock_usecs ();
        zframe_send (&frame, req, 0);
        zframe_t *answer = zframe_recv (req);
        int64_t elapsed = zclock_usecs () - started;
        cv_error_t err;
        cv_envelope_t *reply = answer ? cv_envelope_unpack (zframe_data (answer), zframe_size (answer), &err) : NULL;
        if (!answer)
            cli_command_fail (COMMAND, "%s did not answer example %zu within %ld ms", endpoint, i + 1, timeout + 1000);
        else if (!reply
                 || cv_envelope_validate (reply,
                                          CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_INTENT)
                                              | CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_ERROR),
                                          0, &err))
            cli_command_fail (COMMAND, "example %zu: the answer is not a valid Intent: %s", i + 1, err.message);
        else if (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR)
            cli_command_fail (COMMAND, "example %zu: the worker answered an error: %s", i + 1, reply->error->message);
        else
            learn_eval_add (eval, label, reply->intent->name, s_fast_path (reply->intent->method),
                            cv_context_method_name (reply->intent->method), elapsed);
        if (!reply || reply->body_case != CONVEYOR__V1__ENVELOPE__BODY_INTENT)
            rc = CLI_EXIT_FAILED;
        cv_envelope_destroy (&reply);
        zframe_destroy (&answer);
        cv_arena_destroy (&arena);
    }
    zsock_destroy (&req);
    return rc;
}

int
cli_eval_run (int argc, char **argv)
{
    int rc = CLI_EXIT_OK;
    cv_settings_t *settings =
        cli_command_settings (COMMAND, "conveyor eval --data FILE.csv [options]", s_summary, s_settings,
                              sizeof s_settings / sizeof s_settings[0], argc, argv, &rc);
    if (!settings)
        return rc;
    const char *path = cv_settings_string (settings, "data");
    if (cv_settings_positional_count (settings) > 0 || !path || !*path) {
        cli_command_fail (COMMAND, "%s (see --help)", path && *path ? "takes no arguments" : "--data is required");
        cv_settings_destroy (&settings);
        return CLI_EXIT_USAGE;
    }
    cv_error_t err;
    learn_examples_t *data = learn_examples_new ();
    if (learn_examples_load (data, path, &err)) {
        cli_command_fail (COMMAND, "%s", err.message);
        rc = CLI_EXIT_FAILED;
    } else if (learn_examples_size (data) == 0) {
        cli_command_fail (COMMAND, "%s has no examples", path);
        rc = CLI_EXIT_FAILED;
    } else {
        learn_eval_t *eval = learn_eval_new ();
        const char *endpoint = cv_settings_string (settings, "endpoint");
        rc = endpoint && *endpoint ? s_eval_remote (data, settings, eval) : s_eval_local (data, settings, eval);
        size_t confusions = (size_t) cv_settings_int (settings, "confusions");
        if (rc == CLI_EXIT_OK && cv_settings_bool (settings, "json")) {
            json_t *report = learn_eval_json (eval, confusions);
            char *line = json_dumps (report, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (6));
            printf ("%s\n", line);
            free (line);
            json_decref (report);
        } else if (rc == CLI_EXIT_OK)
            learn_eval_print (eval, confusions, stdout);
        learn_eval_destroy (&eval);
    }
    learn_examples_destroy (&data);
    cv_settings_destroy (&settings);
    return rc;
}
