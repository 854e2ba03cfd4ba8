/* `conveyor probe`: a Probe over REQ to a control endpoint, its ProbeResult as one JSON line. */
#include "cli_probe.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <jansson.h>

#include "cli_command.h"
#include "cv_alloc.h"
#include "cv_arena.h"
#include "cv_envelope.h"
#include "cv_probe.h"
#include "cv_utf8.h"

#define COMMAND "probe"

static const cv_setting_t s_settings[] = {
    {"timeout-ms", CV_SETTING_INT, "3000", 1, 600000, "how long to wait for the answer, in milliseconds"},
    {"orchestrator-control", CV_SETTING_STRING, "tcp://127.0.0.1:5556", 0, 0,
     "the orchestrator to ask about a SERVICE by name (alias --orchestrator)"},
};

static const char s_summary[] =
    "Asks a service whether it works: a Probe to its control endpoint (ENDPOINT, e.g.\n"
    "tcp://127.0.0.1:5564), or by name through the orchestrator (SERVICE: intent, gatherer,\n"
    "decision, executor, responder or orchestrator). The service runs a canned request through its own\n"
    "logic. Prints one JSON line:\n"
    "  {\"service\", \"instance\", \"version\", \"ok\", \"latency_us\" (the service's check),\n"
    "   \"detail\", \"endpoint\", \"round_trip_us\"}\n"
    "and exits 0 when ok, 1 when not ok, unreachable, silent past the timeout or answering\n"
    "with something other than a ProbeResult, 2 on a usage error.";

/* What the REQ socket's monitor saw while we waited. */
typedef struct {
    bool connected;        /* a TCP (or IPC) connection was made */
    bool retried;          /* a connection attempt failed and is being retried */
    bool handshake_failed; /* the peer does not speak ZMTP (or refused our security) */
    bool disconnected;     /* the peer closed the connection */
} seen_t;

/* A copy of argv with the --orchestrator alias spelled as its setting; the caller frees the array
   and the strings in owned (NULL where argv's own is used). */
static char **
s_unalias (int argc, char **argv, char ***owned)
{
    char **out = cv_calloc ((size_t) argc + 1, sizeof (char *));
    *owned = cv_calloc ((size_t) argc + 1, sizeof (char *));
    for (int i = 0; i < argc; i++) {
        out[i] = argv[i];
        if (strcmp (argv[i], "--orchestrator") == 0)
            out[i] = (*owned)[i] = cv_strdup ("--orchestrator-control");
        else if (strncmp (argv[i], "--orchestrator=", 15) == 0)
            out[i] = (*owned)[i] = zsys_sprintf ("--orchestrator-control=%s", argv[i] + 15);
    }
    return out;
}

/* Sets line[key] to text, shortened to its longest valid UTF-8 prefix (a detail cut by snprintf
   may end inside a character). */
static void
s_set_text (json_t *line, const char *key, const char *text)
{
    size_t size = strlen (text);
    while (size > 0 && !cv_utf8_valid (text, size))
        size--;
    json_object_set_new (line, key, json_stringn (text, size));
}

static bool
s_known_service (const char *name)
{
    for (const char *const *service = cv_worker_services; *service; service++)
        if (strcmp (*service, name) == 0)
            return true;
    return strcmp (name, "orchestrator") == 0;
}

static void
s_read_monitor (zsock_t *monitor, seen_t *seen)
{
    zmsg_t *event = zmsg_recv (monitor);
    zframe_t *first = event ? zmsg_first (event) : NULL;
    if (first && zframe_size (first) >= 2) {
        uint16_t kind;
        memcpy (&kind, zframe_data (first), sizeof kind);
        if (kind == ZMQ_EVENT_CONNECTED)
            seen->connected = true;
        else if (kind == ZMQ_EVENT_CONNECT_RETRIED)
            seen->retried = true;
        else if (kind == ZMQ_EVENT_DISCONNECTED)
            seen->disconnected = true;
        else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                 || kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            seen->handshake_failed = true;
    }
    zmsg_destroy (&event);
}

/* Why no answer came, for the detail. */
static void
s_silence (json_t *line, const char *endpoint, int timeout_ms, const seen_t *seen)
{
    char detail[512];
    if (seen->handshake_failed)
        snprintf (detail, sizeof detail, "%s accepted the connection but does not speak ZeroMQ (handshake failed)",
                  endpoint);
    else if (seen->connected && seen->disconnected)
        snprintf (detail, sizeof detail, "%s closed the connection without answering", endpoint);
    else if (seen->connected)
        snprintf (detail, sizeof detail, "no answer from %s within %d ms", endpoint, timeout_ms);
    else if (seen->retried)
        snprintf (detail, sizeof detail,
                  "cannot connect to %s: connection refused (nothing listening?), retried for %d ms", endpoint,
                  timeout_ms);
    else
        snprintf (detail, sizeof detail, "cannot connect to %s within %d ms", endpoint, timeout_ms);
    s_set_text (line, "detail", detail);
}

/* Reads the answer into line: a ProbeResult's fields, or why the answer is not one. */
static void
s_answer (json_t *line, zmsg_t *answer, const char *endpoint, const char *service)
{
    char detail[CV_DETAIL_MAX_BYTES + 256];
    cv_error_t err;
    if (zmsg_size (answer) != 1) {
        snprintf (detail, sizeof detail, "the answer from %s has %zu frames, not one Envelope", endpoint,
                  zmsg_size (answer));
        s_set_text (line, "detail", detail);
        return;
    }
    zframe_t *frame = zmsg_first (answer);
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    uint32_t accepted =
        CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT) | CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_ERROR);
    if (!reply)
        snprintf (detail, sizeof detail, "the answer from %s is not a probe result: %s", endpoint, err.message);
    else if (reply->body_case != CONVEYOR__V1__ENVELOPE__BODY__NOT_SET && !(accepted & CV_BODY (reply->body_case)))
        snprintf (detail, sizeof detail, "the answer from %s is a %s, not a probe result", endpoint,
                  cv_envelope_body_name (reply->body_case));
    else if (cv_envelope_validate (reply, accepted, (uint64_t) zclock_time (), &err))
        snprintf (detail, sizeof detail, "the answer from %s is not a valid probe result: %s", endpoint, err.message);
    else if (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR)
        snprintf (detail, sizeof detail, "%s answered with an error: %s%s%s: %s", endpoint,
                  cv_error_code_name ((cv_error_code_t) reply->error->code), *reply->error->field ? " in " : "",
                  reply->error->field, reply->error->message);
    else {
        const Conveyor__V1__ProbeResult *result = reply->probe_result;
        /* an empty field is unknown, as when there is no answer at all */
        json_object_set_new (line, "service", *result->service ? json_string (result->service) : json_null ());
        json_object_set_new (line, "instance", *result->instance ? json_string (result->instance) : json_null ());
        json_object_set_new (line, "version", *result->version ? json_string (result->version) : json_null ());
        json_object_set_new (line, "latency_us", json_integer (result->latency_us));
        if (service && strcmp (result->service, service) != 0)
            snprintf (detail, sizeof detail, "asked about %s, the answer is about %s: %s", service, result->service,
                      result->detail);
        else {
            json_object_set_new (line, "ok", json_boolean (result->ok));
            snprintf (detail, sizeof detail, "%s", result->detail);
        }
    }
    s_set_text (line, "detail", detail);
    cv_envelope_destroy (&reply);
}

/* Sends the Probe and waits for its answer; fills line. */
static void
s_exchange (json_t *line, const char *endpoint, const char *service, int timeout_ms)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    if (!req) {
        s_set_text (line, "detail", "cannot create a ZeroMQ socket");
        return;
    }
    zsock_set_linger (req, 0);
    zsock_set_sndtimeo (req, timeout_ms);
    /* The monitor tells "nothing listens there" from "it listens and does not answer". */
    char *monitor_endpoint = zsys_sprintf ("inproc://conveyor-probe-monitor-%p", (void *) req);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED
                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    zsock_t *monitor = NULL;
    if (zmq_socket_monitor (zsock_resolve (req), monitor_endpoint, events) == 0) {
        monitor = zsock_new (ZMQ_PAIR);
        if (monitor && zsock_connect (monitor, "%s", monitor_endpoint) != 0)
            zsock_destroy (&monitor);
    }
    zstr_free (&monitor_endpoint);

    cv_arena_t *arena = cv_arena_new ();
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    cv_envelope_t *probe = cv_envelope_new (arena, "", trace, (uint64_t) (zclock_time () + timeout_ms), 1);
    cv_envelope_set_probe (probe, arena)->service = (char *) (service ? service : "");
    size_t size;
    uint8_t *packed = cv_envelope_pack (probe, &size);
    cv_arena_destroy (&arena);

    char detail[512];
    int64_t started = zclock_usecs ();
    if (zsock_connect (req, "%s", endpoint) != 0) {
        snprintf (detail, sizeof detail, "cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        s_set_text (line, "detail", detail);
    } else {
        zframe_t *frame = zframe_new (packed, size);
        if (zframe_send (&frame, req, 0) != 0) {
            zframe_destroy (&frame);
            snprintf (detail, sizeof detail, "cannot send to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
            s_set_text (line, "detail", detail);
        } else {
            seen_t seen = {false, false, false, false};
            zpoller_t *poller = zpoller_new (req, monitor, NULL);
            int64_t deadline = zclock_mono () + timeout_ms;
            zmsg_t *answer = NULL;
            while (!answer) {
                int64_t left = deadline - zclock_mono ();
                if (left <= 0)
                    break;
                void *which = zpoller_wait (poller, (int) left);
                if (which == req)
                    answer = zmsg_recv (req);
                else if (monitor && which == monitor)
                    s_read_monitor (monitor, &seen);
                else if (zpoller_terminated (poller))
                    break;
            }
            zpoller_destroy (&poller);
            json_object_set_new (line, "round_trip_us", json_integer (zclock_usecs () - started));
            if (answer)
                s_answer (line, answer, endpoint, service);
            else if (zsys_interrupted)
                s_set_text (line, "detail", "interrupted");
            else
                s_silence (line, endpoint, timeout_ms, &seen);
            zmsg_destroy (&answer);
        }
    }
    free (packed);
    zsock_destroy (&req);
    zsock_destroy (&monitor);
}

int
cli_probe_run (int argc, char **argv)
{
    char **owned;
    char **args = s_unalias (argc, argv, &owned);
    int rc = CLI_EXIT_OK;
    cv_settings_t *settings = cli_command_settings (COMMAND, "conveyor probe SERVICE|ENDPOINT", s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, args, &rc);
    for (int i = 0; i < argc; i++)
        free (owned[i]);
    free (owned);
    free (args);
    if (!settings)
        return rc;

    const char *target = cv_settings_positional (settings, 0);
    const char *endpoint = NULL, *service = NULL;
    if (cv_settings_positional_count (settings) != 1)
        cli_command_fail (COMMAND, "expects one SERVICE or ENDPOINT, e.g. `conveyor probe responder` or "
                                   "`conveyor probe tcp://127.0.0.1:5564` (see --help)");
    else if (!cv_utf8_valid (target, strlen (target)))
        cli_command_fail (COMMAND, "the target is not valid UTF-8");
    else if (strstr (target, "://"))
        endpoint = target;
    else if (s_known_service (target)) {
        service = target;
        endpoint = cv_settings_string (settings, "orchestrator-control");
    } else
        cli_command_fail (
            COMMAND,
            "no service named '%s': expected intent, gatherer, decision, executor, responder, orchestrator "
            "or an endpoint such as tcp://127.0.0.1:5564",
            target);
    if (!endpoint) {
        cv_settings_destroy (&settings);
        return CLI_EXIT_USAGE;
    }

    json_t *line = json_object ();
    json_object_set_new (line, "service", service ? json_string (service) : json_null ());
    json_object_set_new (line, "instance", json_null ());
    json_object_set_new (line, "version", json_null ());
    json_object_set_new (line, "ok", json_false ());
    json_object_set_new (line, "latency_us", json_integer (0));
    json_object_set_new (line, "detail", json_string (""));
    s_set_text (line, "endpoint", endpoint);
    json_object_set_new (line, "round_trip_us", json_integer (0));
    s_exchange (line, endpoint, service, (int) cv_settings_int (settings, "timeout-ms"));

    char *text = json_dumps (line, JSON_COMPACT);
    printf ("%s\n", text ? text : "{\"ok\":false,\"detail\":\"out of memory\"}");
    fflush (stdout);
    rc = json_is_true (json_object_get (line, "ok")) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    free (text);
    json_decref (line);
    cv_settings_destroy (&settings);
    return rc;
}
