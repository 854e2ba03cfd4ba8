/* The start handshake of conveyor's actors. */
#include "cv_actor.h"

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#define FAILED_PREFIX "ERROR "

zactor_t *
cv_actor_start (zactor_fn *task, void *args, cv_error_t *err)
{
    zactor_t *actor = zactor_new (task, args);
    char *status = zstr_recv (actor);
    if (status && streq (status, "OK")) {
        zstr_free (&status);
        return actor;
    }
    bool prefixed = status && strncmp (status, FAILED_PREFIX, strlen (FAILED_PREFIX)) == 0;
    cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "%s",
                  prefixed ? status + strlen (FAILED_PREFIX) : "the actor ended without saying why");
    zstr_free (&status);
    zactor_destroy (&actor);
    return NULL;
}

void
cv_actor_ready (zsock_t *pipe)
{
    zstr_send (pipe, "OK");
}

void
cv_actor_failed (zsock_t *pipe, const cv_error_t *err)
{
    zstr_sendf (pipe, FAILED_PREFIX "%s", err->message);
}

void
cv_actor_wait_term (zsock_t *pipe)
{
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            return;
    }
}

static void
s_signal_set (sigset_t *set)
{
    sigemptyset (set);
    sigaddset (set, SIGINT);
    sigaddset (set, SIGTERM);
}

/* Never runs while the signals are held; it only makes them deliverable. */
static void
s_no_handler (int signal_number)
{
}

void
cv_actor_hold_signals (void)
{
    zsys_handler_set (NULL);
    /* A background job of a shell starts with SIGINT ignored, and an ignored signal is dropped
       even while held: give both signals a handler so that they stay pending for sigwait. */
    struct sigaction action = {.sa_handler = s_no_handler};
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigset_t set;
    s_signal_set (&set);
    int rc = pthread_sigmask (SIG_BLOCK, &set, NULL);
    assert (rc == 0);
}

int
cv_actor_wait_signal (void)
{
    sigset_t set;
    s_signal_set (&set);
    int signal_number = 0;
    while (sigwait (&set, &signal_number) != 0)
        ;
    return signal_number;
}

/*  --------------------------------------------------------------------------
    Self-test: an actor that serves, and one that cannot start. */

static void
s_test_actor (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    cv_error_t err;
    if (streq ((const char *) args, "fail")) {
        cv_error_set (&err, CV_ERR_INVALID, NULL, "cannot bind tcp://x:1");
        cv_actor_failed (pipe, &err);
    } else
        cv_actor_ready (pipe);
    cv_actor_wait_term (pipe);
}

void
cv_actor_test (bool verbose)
{
    cv_error_t err;
    zactor_t *actor = cv_actor_start (s_test_actor, "serve", &err);
    assert (actor);
    zactor_destroy (&actor);
    actor = cv_actor_start (s_test_actor, "fail", &err);
    assert (!actor);
    assert (strcmp (err.message, "cannot bind tcp://x:1") == 0);

    /* A held signal waits for cv_actor_wait_signal, even one that was ignored before; threads
       started afterwards hold it too. */
    sigset_t before;
    pthread_sigmask (SIG_SETMASK, NULL, &before);
    signal (SIGINT, SIG_IGN);
    cv_actor_hold_signals ();
    actor = cv_actor_start (s_test_actor, "serve", &err);
    assert (actor);
    pthread_kill (pthread_self (), SIGINT);
    assert (cv_actor_wait_signal () == SIGINT);
    pthread_kill (pthread_self (), SIGTERM);
    assert (cv_actor_wait_signal () == SIGTERM);
    zactor_destroy (&actor);
    pthread_sigmask (SIG_SETMASK, &before, NULL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    if (verbose)
        printf ("cv_actor: ok\n");
}
