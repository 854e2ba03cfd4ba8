/* Waiting in a libmicrohttpd connection thread, woken by the server's stop. */
#include "cv_mhd_stop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_assert.h"

struct _cv_mhd_stop_t {
    int pipe[2]; /* written once, when raised: readable from then on, for every waiter */
};

cv_mhd_stop_t *
cv_mhd_stop_new (void)
{
    cv_mhd_stop_t *self = cv_calloc (1, sizeof *self);
    if (pipe2 (self->pipe, O_CLOEXEC | O_NONBLOCK)) {
        free (self);
        return NULL;
    }
    return self;
}

void
cv_mhd_stop_destroy (cv_mhd_stop_t **self_p)
{
    assert (self_p);
    cv_mhd_stop_t *self = *self_p;
    if (!self)
        return;
    close (self->pipe[0]);
    close (self->pipe[1]);
    free (self);
    *self_p = NULL;
}

void
cv_mhd_stop_raise (cv_mhd_stop_t *self)
{
    assert (self);
    ssize_t written = write (self->pipe[1], "x", 1);
    (void) written; /* a full pipe is already readable */
}

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

bool
cv_mhd_stop_wait (cv_mhd_stop_t *self, struct MHD_Connection *connection, long ms)
{
    assert (self);
    const union MHD_ConnectionInfo *info =
        connection ? MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    struct pollfd fds[2] = {{.fd = self->pipe[0], .events = POLLIN},
                            {.fd = info ? info->connect_fd : -1, .events = POLLRDHUP}};
    int64_t until = s_now_ms () + ms;
    while (true) {
        int timeout = -1;
        if (ms >= 0) {
            int64_t left = until - s_now_ms ();
            if (left <= 0)
                return true;
            timeout = (int) left;
        }
        int ready = poll (fds, 2, timeout);
        if (ready < 0 && errno != EINTR)
            return false;
        if (ready > 0 && (fds[0].revents || (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))))
            return false;
    }
}

/*  --------------------------------------------------------------------------
    Self-test: without a connection (fake_llm and bankapi_server test it with clients). */

#include <pthread.h>

static void *
s_waiter (void *arg)
{
    cv_mhd_stop_t *stop = arg;
    return cv_mhd_stop_wait (stop, NULL, -1) ? stop : NULL;
}

void
cv_mhd_stop_test (bool verbose)
{
    cv_mhd_stop_t *stop = cv_mhd_stop_new ();
    assert (stop);
    assert (cv_mhd_stop_wait (stop, NULL, 5));
    assert (cv_mhd_stop_wait (stop, NULL, 0));
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert (pthread_create (&threads[i], NULL, s_waiter, stop) == 0);
    cv_mhd_stop_raise (stop);
    for (int i = 0; i < 3; i++) {
        void *woken = stop;
        pthread_join (threads[i], &woken);
        assert (woken == NULL); /* woken by the signal, not by time */
    }
    assert (!cv_mhd_stop_wait (stop, NULL, 10000)); /* raised: at once */
    cv_mhd_stop_raise (stop);
    cv_mhd_stop_destroy (&stop);
    assert (!stop);
    cv_mhd_stop_destroy (&stop);
    if (verbose)
        printf ("cv_mhd_stop: ok\n");
}
