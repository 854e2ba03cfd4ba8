/* The start handshake of conveyor's actors. */
#include "cv_actor.h"

#include <assert.h>
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

void
cv_actor_wait_interrupt (zactor_t *actor)
{
    /* The signal may land on any thread, such as the actor's, and leave this one asleep in poll():
       wake up now and then to look at the flag. */
    zpoller_t *poller = zpoller_new (actor, NULL);
    while (!zsys_interrupted) {
        if (zpoller_wait (poller, 200) == actor) {
            char *unexpected = zstr_recv (actor);
            zstr_free (&unexpected);
        }
    }
    zpoller_destroy (&poller);
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
    if (verbose)
        printf ("cv_actor: ok\n");
}
