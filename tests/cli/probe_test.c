/* `conveyor probe` run as a user runs it, a child process whose stdout and exit code are checked:
   against a real responder worker started in this process, a closed port, a TCP server that is not
   ZeroMQ, and scripted REP peers that answer garbage, the wrong body, an Error, a failed probe or nothing,
   or play the orchestrator for a probe by service name.
     probe_test PATH_TO_CONVEYOR */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv_config.h"
#include "harness.h"
#include "responder_server.h"

extern char **environ;

/* A child that outlives this is hung: the probe promises never to hang. Not a timing claim. */
#define HANG_MS 60000

static const char *s_conveyor;

typedef struct {
    int rc;
    char out[8192];
    char err[8192];
    json_t *line; /* stdout parsed, when it is one JSON object on one line */
} run_t;

/* Runs conveyor with args (NULL-terminated), collects stdout and stderr, waits for its exit. */
static void
s_run (run_t *run, const char *const *args)
{
    memset (run, 0, sizeof *run);
    const char *argv[16] = {s_conveyor};
    size_t count = 1;
    for (const char *const *arg = args; *arg; arg++) {
        assert (count + 1 < 16);
        argv[count++] = *arg;
    }
    int out[2], err[2];
    assert (pipe (out) == 0 && pipe (err) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2 (&actions, err[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose (&actions, out[0]);
    posix_spawn_file_actions_addclose (&actions, err[0]);
    pid_t pid;
    int spawned = posix_spawn (&pid, s_conveyor, &actions, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    assert (spawned == 0);
    close (out[1]);
    close (err[1]);

    struct pollfd fds[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    char *buffers[2] = {run->out, run->err};
    size_t used[2] = {0, 0};
    int open_count = 2;
    int64_t until = zclock_mono () + HANG_MS;
    while (open_count > 0) {
        int64_t left = until - zclock_mono ();
        if (left <= 0) {
            kill (pid, SIGKILL);
            cv_assert_that (false, "conveyor %s %s hung", args[0], args[1] ? args[1] : "");
        }
        assert (poll (fds, 2, (int) left) >= 0 || errno == EINTR);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            ssize_t got = read (fds[i].fd, buffers[i] + used[i], sizeof run->out - 1 - used[i]);
            if (got <= 0) {
                close (fds[i].fd);
                fds[i].fd = -1;
                open_count--;
            } else
                used[i] += (size_t) got;
        }
    }
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    assert (WIFEXITED (status));
    run->rc = WEXITSTATUS (status);
    /* exactly one line, and it is a JSON object */
    char *newline = strchr (run->out, '\n');
    if (newline && newline[1] == '\0')
        run->line = json_loads (run->out, 0, NULL);
    cv_assert_that (json_is_object (run->line), "conveyor %s: stdout is not one JSON line: '%s' (stderr '%s')", args[0],
                    run->out, run->err);
}

static const char *
s_text (const run_t *run, const char *key)
{
    return json_string_value (json_object_get (run->line, key));
}

/* Runs a probe that must fail: exit 1, ok false, a detail containing detail. */
static void
s_expect_failure (const char *const *args, const char *detail)
{
    run_t run;
    s_run (&run, args);
    cv_assert_that (!(run.rc != 1 || !json_is_false (json_object_get (run.line, "ok"))
                      || !strstr (s_text (&run, "detail"), detail)),
                    "expected exit 1, ok false and '%s'; got exit %d: %s", detail, run.rc, run.out);
    printf ("ok - conveyor probe %s: %s", args[1], run.out);
    json_decref (run.line);
}

/*  --------------------------------------------------------------------------
    Scripted peers: a REP control endpoint answering as told, and a TCP server that is not ZeroMQ. */

static void
s_peer_answer (zsock_t *rep, const char *mode, zframe_t *frame, char *last_service, size_t last_size)
{
    cv_error_t err;
    cv_envelope_t *request = cv_envelope_unpack (zframe_data (frame), zframe_size (frame), &err);
    assert (request && request->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE);
    assert (
        cv_envelope_validate (request, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_PROBE), (uint64_t) zclock_time (), &err)
        == 0);
    snprintf (last_service, last_size, "%s", request->probe->service);
    if (streq (mode, "silent")) {
        cv_envelope_destroy (&request);
        return;
    }
    if (streq (mode, "garbage")) {
        zstr_send (rep, "\xff\xfe not a protobuf message");
        cv_envelope_destroy (&request);
        return;
    }
    if (streq (mode, "two_frames")) {
        zstr_sendm (rep, "one");
        zstr_send (rep, "two");
        cv_envelope_destroy (&request);
        return;
    }
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *reply = cv_envelope_reply_new (arena, request);
    if (streq (mode, "wrong_body"))
        cv_envelope_set_reply (reply, arena)->text = "hello";
    else if (streq (mode, "error")) {
        cv_error_set (&err, CV_ERR_UNAVAILABLE, "", "no live responder worker is connected");
        cv_envelope_set_error (reply, arena, &err);
    } else {
        /* "orchestrator": answers for the service asked about; "wrong_service": for another one;
           "not_ok": a probe that ran and failed */
        Conveyor__V1__ProbeResult *result = cv_envelope_set_probe_result (reply, arena);
        result->version = "0.1.0";
        result->latency_us = 42;
        result->service = streq (mode, "wrong_service") ? "intent"
                          : *request->probe->service    ? request->probe->service
                                                        : "responder";
        result->instance = "responder-host-1";
        result->ok = !streq (mode, "not_ok");
        result->detail = result->ok ? "canned check passed" : "templates did not render";
    }
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    zframe_t *answer = zframe_new (packed, size);
    free (packed);
    zframe_send (&answer, rep, 0);
    cv_arena_destroy (&arena);
    cv_envelope_destroy (&request);
}

/* Pipe: sends its endpoint once; then "LAST" answers the service of the last probe received. */
static void
s_peer_actor (zsock_t *pipe, void *args)
{
    const char *mode = args;
    zsock_t *rep = zsock_new (ZMQ_REP);
    zsock_set_linger (rep, 0);
    int port = zsock_bind (rep, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
    char last[80] = "";
    zpoller_t *poller = zpoller_new (pipe, rep, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "LAST"))
                zstr_send (pipe, last);
            zstr_free (&command);
            if (stop)
                break;
        } else if (which == rep) {
            zframe_t *frame = zframe_recv (rep);
            if (frame)
                s_peer_answer (rep, mode, frame, last, sizeof last);
            zframe_destroy (&frame);
        } else
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&rep);
}

/* A TCP server that accepts and answers like a web server, then closes. */
static void
s_http_actor (zsock_t *pipe, void *args)
{
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    assert (bind (listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (listener, 8) == 0);
    assert (getsockname (listener, (struct sockaddr *) &address, &length) == 0);
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", ntohs (address.sin_port));
    zmq_pollitem_t items[] = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0}, {NULL, listener, ZMQ_POLLIN, 0}};
    while (zmq_poll (items, 2, -1) >= 0 && !(items[0].revents & ZMQ_POLLIN)) {
        if (items[1].revents & ZMQ_POLLIN) {
            int peer = accept (listener, NULL, NULL);
            if (peer >= 0) {
                const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
                ssize_t written = write (peer, answer, sizeof answer - 1);
                (void) written;
                close (peer);
            }
        }
    }
    char *command = zstr_recv (pipe); /* $TERM */
    zstr_free (&command);
    close (listener);
}

/* A loopback port nothing listens on: bound, read and closed again. */
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    assert (bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &length) == 0);
    close (fd);
    return ntohs (address.sin_port);
}

static zactor_t *
s_peer (const char *mode, char **endpoint)
{
    zactor_t *peer = zactor_new (s_peer_actor, (void *) mode);
    *endpoint = zstr_recv (peer);
    return peer;
}

int
main (int argc, char **argv)
{
    assert (argc == 2);
    s_conveyor = argv[1];
    unsetenv ("CONVEYOR_TIMEOUT_MS");
    unsetenv ("CONVEYOR_ORCHESTRATOR_CONTROL");

    /* a real responder worker, probed at its control endpoint */
    cv_error_t err;
    cv_log_t *log = cv_log_new (RESPONDER_SERVICE, "test-1", false);
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    cv_launcher_args_t args = {.agent = agent, .settings = NULL};
    cv_worker_config_t config = cv_launcher_worker_config (&responder_server_spec, &args, log);
    harness_t *harness = harness_new ();
    zactor_t *worker = harness_start_worker (harness, &config);
    zstr_send (worker, "CONTROL");
    char *control = zstr_recv (worker);
    assert (control);

    run_t run;
    s_run (&run, (const char *[]){"probe", control, NULL});
    cv_assert_that (run.rc == 0, "probe of a live responder exited %d: %s %s", run.rc, run.out, run.err);
    assert (json_is_true (json_object_get (run.line, "ok")));
    assert (streq (s_text (&run, "service"), "responder"));
    assert (streq (s_text (&run, "instance"), "test-1"));
    assert (streq (s_text (&run, "version"), CONVEYOR_VERSION));
    assert (streq (s_text (&run, "detail"), "canned check passed"));
    assert (streq (s_text (&run, "endpoint"), control));
    assert (json_is_integer (json_object_get (run.line, "latency_us")));
    assert (json_integer_value (json_object_get (run.line, "round_trip_us")) > 0);
    printf ("ok - conveyor probe %s: %s", control, run.out);
    json_decref (run.line);

    /* the worker is still there for the next one, and the timeout can be set */
    s_run (&run, (const char *[]){"probe", "--timeout-ms", "5000", control, NULL});
    assert (run.rc == 0);
    json_decref (run.line);
    zactor_destroy (&worker);
    zstr_free (&control);
    harness_destroy (&harness);
    cv_config_destroy (&agent);
    cv_log_destroy (&log);

    /* nothing listens: exit 1 once the timeout has passed, and it says so */
    char *closed = zsys_sprintf ("tcp://127.0.0.1:%d", s_closed_port ());
    s_expect_failure ((const char *[]){"probe", closed, "--timeout-ms", "300", NULL}, "connection refused");
    zstr_free (&closed);
    /* an endpoint ZeroMQ cannot use */
    s_expect_failure ((const char *[]){"probe", "tcp://127.0.0.1:notaport", NULL}, "cannot connect to");

    /* something listens, but is not ZeroMQ */
    zactor_t *http = zactor_new (s_http_actor, NULL);
    char *endpoint = zstr_recv (http);
    s_expect_failure ((const char *[]){"probe", endpoint, "--timeout-ms", "300", NULL}, endpoint);
    zstr_free (&endpoint);
    zactor_destroy (&http);

    /* a control endpoint that answers, but not a ProbeResult, or not in time */
    static const struct {
        const char *mode, *detail;
    } failures[] = {
        {"garbage", "is not a probe result: frame of"},
        {"two_frames", "has 2 frames"},
        {"wrong_body", "is a reply, not a probe result"},
        {"error", "answered with an error: UNAVAILABLE: no live responder worker is connected"},
        {"not_ok", "templates did not render"},
        {"silent", "no answer from"},
    };
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        zactor_t *peer = s_peer (failures[i].mode, &endpoint);
        s_expect_failure ((const char *[]){"probe", endpoint, "--timeout-ms", "300", NULL}, failures[i].detail);
        zstr_free (&endpoint);
        zactor_destroy (&peer);
    }

    /* by service name, through the orchestrator: --orchestrator, its long name, the environment */
    zactor_t *orchestrator = s_peer ("orchestrator", &endpoint);
    s_run (&run, (const char *[]){"probe", "responder", "--orchestrator", endpoint, NULL});
    assert (run.rc == 0 && json_is_true (json_object_get (run.line, "ok")));
    assert (streq (s_text (&run, "service"), "responder"));
    assert (streq (s_text (&run, "instance"), "responder-host-1"));
    assert (json_integer_value (json_object_get (run.line, "latency_us")) == 42);
    json_decref (run.line);
    zstr_send (orchestrator, "LAST");
    char *asked = zstr_recv (orchestrator);
    assert (asked && streq (asked, "responder"));
    zstr_free (&asked);

    s_run (&run, (const char *[]){"probe", "--orchestrator-control", endpoint, "gatherer", NULL});
    assert (run.rc == 0 && streq (s_text (&run, "service"), "gatherer"));
    json_decref (run.line);

    setenv ("CONVEYOR_ORCHESTRATOR_CONTROL", endpoint, 1);
    s_run (&run, (const char *[]){"probe", "decision", NULL});
    assert (run.rc == 0 && streq (s_text (&run, "service"), "decision"));
    assert (streq (s_text (&run, "endpoint"), endpoint));
    json_decref (run.line);
    unsetenv ("CONVEYOR_ORCHESTRATOR_CONTROL");
    zstr_send (orchestrator, "LAST");
    asked = zstr_recv (orchestrator);
    assert (asked && streq (asked, "decision"));
    zstr_free (&asked);
    printf ("ok - conveyor probe SERVICE through the orchestrator\n");
    zstr_free (&endpoint);
    zactor_destroy (&orchestrator);

    /* the orchestrator answers about another service than the one asked about */
    zactor_t *confused = s_peer ("wrong_service", &endpoint);
    char *flag = zsys_sprintf ("--orchestrator=%s", endpoint);
    s_expect_failure ((const char *[]){"probe", "responder", flag, NULL},
                      "asked about responder, the answer is about intent");
    zstr_free (&flag);
    zstr_free (&endpoint);
    zactor_destroy (&confused);

    printf ("cli probe: ok\n");
    return 0;
}
