/* otest's TCP proxy in front of PostgreSQL, which a case cuts, stalls and restores. */
#include "otest.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cv_alloc.h"

/*  --------------------------------------------------------------------------
    A TCP proxy in front of PostgreSQL, in an actor of its own, which the test cuts and restores.

    Pipe commands, each answered once done:
      PORT     the port it listens on
      CUT      closes every connection and, until RESTORE, each new one as soon as it comes; OK
      STALL    keeps every connection, old and new, but forwards nothing until RESTORE (a server
               that stopped answering): what comes is held; OK
      RESTORE  forwards what was held, and from then on everything; OK
      HELD     how many bytes clients have sent it while stalled, in all
      $TERM */

typedef struct {
    zloop_t *loop;
    int listener;
    int port;
    struct sockaddr_in upstream;
    bool cut;
    bool stalled;
    size_t held_bytes;
    zlistx_t *links;
} proxy_t;

/* One proxied connection: the client's socket and PostgreSQL's, and what each sent while the
   proxy was stalled. */
typedef struct {
    proxy_t *proxy;
    zmq_pollitem_t items[2];
    char *held[2];
    size_t held_size[2];
} link_t;

static void
s_link_close (link_t *link)
{
    proxy_t *self = link->proxy;
    for (int i = 0; i < 2; i++) {
        zloop_poller_end (self->loop, &link->items[i]);
        close (link->items[i].fd);
        free (link->held[i]);
    }
    void *handle = zlistx_find (self->links, link);
    assert (handle);
    zlistx_delete (self->links, handle);
    free (link);
}

static bool
s_send_all (int fd, const char *data, size_t size)
{
    size_t sent = 0;
    while (sent < size) {
        ssize_t rc = send (fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (rc <= 0)
            return false;
        sent += (size_t) rc;
    }
    return true;
}

static int
s_link_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    link_t *link = arg;
    int from = item->fd == link->items[0].fd ? 0 : 1;
    char buffer[65536];
    ssize_t got = recv (item->fd, buffer, sizeof buffer, 0);
    if (got <= 0) {
        s_link_close (link);
        return 0;
    }
    if (link->proxy->stalled) {
        link->held[from] = cv_realloc (link->held[from], link->held_size[from] + (size_t) got);
        memcpy (link->held[from] + link->held_size[from], buffer, (size_t) got);
        link->held_size[from] += (size_t) got;
        if (from == 0)
            link->proxy->held_bytes += (size_t) got;
    } else if (!s_send_all (link->items[1 - from].fd, buffer, (size_t) got))
        s_link_close (link);
    return 0;
}

static int
s_proxy_accept (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    proxy_t *self = arg;
    int client = accept (self->listener, NULL, NULL);
    if (client < 0)
        return 0;
    int server = self->cut ? -1 : socket (AF_INET, SOCK_STREAM, 0);
    if (server < 0 || connect (server, (struct sockaddr *) &self->upstream, sizeof self->upstream) != 0) {
        if (server >= 0)
            close (server);
        close (client);
        return 0;
    }
    link_t *link = cv_calloc (1, sizeof *link);
    link->proxy = self;
    link->items[0] = (zmq_pollitem_t){.fd = client, .events = ZMQ_POLLIN};
    link->items[1] = (zmq_pollitem_t){.fd = server, .events = ZMQ_POLLIN};
    zlistx_add_end (self->links, link);
    for (int i = 0; i < 2; i++)
        zloop_poller (loop, &link->items[i], s_link_readable, link);
    return 0;
}

/* Forwards what each link held; a link that cannot take it is closed. */
static void
s_proxy_flush (proxy_t *self)
{
    zlistx_t *failed = zlistx_new ();
    for (link_t *link = zlistx_first (self->links); link; link = zlistx_next (self->links))
        for (int from = 0; from < 2; from++) {
            int to = link->items[1 - from].fd;
            if (link->held_size[from] && !s_send_all (to, link->held[from], link->held_size[from]))
                zlistx_add_end (failed, link);
            free (link->held[from]);
            link->held[from] = NULL;
            link->held_size[from] = 0;
        }
    for (link_t *link = zlistx_first (failed); link; link = zlistx_next (failed))
        if (zlistx_find (self->links, link))
            s_link_close (link);
    zlistx_destroy (&failed);
}

static int
s_proxy_command (zloop_t *loop, zsock_t *reader, void *arg)
{
    proxy_t *self = arg;
    char *command = zstr_recv (reader);
    if (!command || streq (command, "$TERM")) {
        zstr_free (&command);
        return -1;
    }
    if (streq (command, "PORT"))
        zstr_sendf (reader, "%d", self->port);
    else if (streq (command, "HELD"))
        zstr_sendf (reader, "%zu", self->held_bytes);
    else {
        if (streq (command, "CUT")) {
            self->cut = true;
            while (zlistx_first (self->links))
                s_link_close (zlistx_first (self->links));
        } else if (streq (command, "STALL"))
            self->stalled = true;
        else if (streq (command, "RESTORE")) {
            self->cut = self->stalled = false;
            s_proxy_flush (self);
        } else
            assert (!"the proxy knows CUT, STALL and RESTORE only");
        zstr_send (reader, "OK");
    }
    zstr_free (&command);
    return 0;
}

static void
s_proxy_actor (zsock_t *pipe, void *args)
{
    const otest_run_t *run = args;
    proxy_t *self = cv_calloc (1, sizeof *self);
    self->upstream = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons ((uint16_t) atoi (run->port))};
    int rc = inet_pton (AF_INET, run->host, &self->upstream.sin_addr);
    assert (rc == 1);
    self->listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    assert (self->listener >= 0 && bind (self->listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (self->listener, 16) == 0);
    assert (getsockname (self->listener, (struct sockaddr *) &address, &size) == 0);
    self->port = ntohs (address.sin_port);
    self->links = zlistx_new ();
    self->loop = zloop_new ();
    zmq_pollitem_t listening = {.fd = self->listener, .events = ZMQ_POLLIN};
    zloop_poller (self->loop, &listening, s_proxy_accept, self);
    zloop_reader (self->loop, pipe, s_proxy_command, self);
    zsock_signal (pipe, 0);
    zloop_start (self->loop);
    while (zlistx_first (self->links))
        s_link_close (zlistx_first (self->links));
    zloop_destroy (&self->loop);
    zlistx_destroy (&self->links);
    close (self->listener);
    free (self);
}

/* Starts the proxy and points the orchestrator's database URL at it. */
void
otest_proxy_start (otest_t *test)
{
    test->proxy = zactor_new (s_proxy_actor, (void *) test->run);
    zstr_send (test->proxy, "PORT");
    char *port = zstr_recv (test->proxy);
    otest_conninfo (test->run, port, test->run->database, test->database_url, sizeof test->database_url);
    zstr_free (&port);
}

size_t
otest_proxy_held (otest_t *test)
{
    zstr_send (test->proxy, "HELD");
    char *held = zstr_recv (test->proxy);
    size_t bytes = (size_t) atol (held);
    zstr_free (&held);
    return bytes;
}

static bool
s_proxy_holds_more (void *test_arg, const void *arg)
{
    otest_t *test = test_arg;
    return otest_proxy_held (test) > *(const size_t *) arg;
}

/* Waits until the stalled proxy holds more than it did: an operation has been sent to the store. */
void
otest_wait_held (otest_t *test, size_t before)
{
    bool held = otest_run_until (test, s_proxy_holds_more, &before, OTEST_WAIT_MS);
    assert (held);
}

void
otest_proxy_command_ok (otest_t *test, const char *command)
{
    zstr_send (test->proxy, command);
    char *answer = zstr_recv (test->proxy);
    otest_expect_streq (command, answer, "OK");
    zstr_free (&answer);
}
