/* Load on one HTTP endpoint: clients, the open loop's schedule, and the counts of what came back. */
#include "cli_load.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>

#include "cv_alloc.h"

#define LATENCY_HIGHEST_US (3600LL * 1000 * 1000) /* the histogram's range: up to an hour */
#define LATENCY_DIGITS 3
#define SECOND_US 1000000

/* One client: an easy handle kept from one request to the next, so its connection is reused. */
typedef struct {
    CURL *easy;
    int64_t due_us; /* when its request was due: its latency starts there */
    char error[CURL_ERROR_SIZE];
} client_t;

struct _cli_load_t {
    cli_load_options_t options; /* endpoint owned */
    char *const *bodies;        /* borrowed */
    size_t body_count, next_body;
    uint64_t limit; /* the most requests to send; 0: no limit */

    /* libcurl, and the sockets it asked us to watch. */
    CURLM *multi;
    struct curl_slist *headers;
    client_t *clients;
    size_t *idle; /* a stack of the free clients' indices */
    size_t idle_count;
    struct pollfd *watched; /* each socket's position + 1 is its socketp in libcurl */
    struct pollfd *ready;   /* scratch: the sockets ppoll found ready */
    size_t watched_count, watched_size;
    int64_t timer_us; /* when libcurl wants CURL_SOCKET_TIMEOUT; -1: not at all */

    /* The run. */
    bool ran;
    int64_t started_us, deadline_us;
    bool stopped;               /* no more requests are sent */
    uint64_t waited_upto;       /* open loop: requests before this one waited for a client */
    int64_t progress_us;        /* when the next progress line is due */
    uint64_t progress_finished; /* requests finished at the last progress line */

    cli_load_counts_t counts;
    cv_histogram_t *latency_us; /* of answered requests */
};

static int64_t
s_now_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * SECOND_US + now.tv_nsec / 1000;
}

/* libcurl's socket callback: keeps the set of sockets ppoll watches, with each one's position
   in it as the socket's socketp (position + 1; NULL for one not watched yet). */
static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    cli_load_t *self = userp;
    size_t position = (size_t) (uintptr_t) socketp;
    if (what == CURL_POLL_REMOVE) {
        if (position) {
            /* The last one fills the hole, and libcurl learns its new position. */
            size_t last = --self->watched_count;
            if (position - 1 != last) {
                self->watched[position - 1] = self->watched[last];
                curl_multi_assign (self->multi, self->watched[position - 1].fd, (void *) (uintptr_t) position);
            }
        }
        return 0;
    }
    if (!position) {
        if (self->watched_count == self->watched_size) {
            self->watched_size = self->watched_size ? 2 * self->watched_size : 16;
            self->watched = cv_realloc (self->watched, self->watched_size * sizeof *self->watched);
            self->ready = cv_realloc (self->ready, self->watched_size * sizeof *self->ready);
        }
        position = ++self->watched_count;
        self->watched[position - 1].fd = fd;
        curl_multi_assign (self->multi, fd, (void *) (uintptr_t) position);
    }
    self->watched[position - 1].events =
        (short) ((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    self->watched[position - 1].revents = 0;
    return 0;
}

/* libcurl's timer callback: when to call socket_action with CURL_SOCKET_TIMEOUT. */
static int
s_on_timer (CURLM *multi, long timeout_ms, void *userp)
{
    cli_load_t *self = userp;
    self->timer_us = timeout_ms < 0 ? -1 : s_now_us () + (int64_t) timeout_ms * 1000;
    return 0;
}

/* An answer's body is not kept: only its status counts. */
static size_t
s_discard (char *data, size_t size, size_t count, void *userp)
{
    return size * count;
}

cli_load_t *
cli_load_new (const cli_load_options_t *options, char *const *bodies, size_t body_count)
{
    assert (options && options->endpoint && options->clients >= 1 && options->duration_us > 0);
    assert (options->rate >= 0 && bodies && body_count >= 1);
    cli_load_t *self = cv_calloc (1, sizeof *self);
    self->options = *options;
    self->options.endpoint = cv_strdup (options->endpoint);
    self->bodies = bodies;
    self->body_count = body_count;
    self->limit = options->count;
    if (options->rate > 0) {
        /* The open loop's schedule: the requests due in [0, duration). */
        uint64_t due = (uint64_t) ceil ((double) options->duration_us * (double) options->rate / SECOND_US);
        self->limit = self->limit && self->limit < due ? self->limit : due;
    }
    self->timer_us = -1;
    self->latency_us = cv_histogram_new (LATENCY_HIGHEST_US, LATENCY_DIGITS);
    self->multi = curl_multi_init ();
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    self->headers = curl_slist_append (self->headers, "Expect:"); /* no 100-continue round trip */
    self->clients = cv_calloc (options->clients, sizeof (client_t));
    self->idle = cv_calloc (options->clients, sizeof (size_t));
    assert (self->latency_us && self->multi && self->headers);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    /* One idle connection kept per client, however few transfers are running at a moment. */
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, (long) options->clients);
    for (size_t i = 0; i < options->clients; i++) {
        client_t *client = &self->clients[i];
        client->easy = curl_easy_init ();
        assert (client->easy);
        curl_easy_setopt (client->easy, CURLOPT_URL, self->options.endpoint);
        curl_easy_setopt (client->easy, CURLOPT_POST, 1L);
        curl_easy_setopt (client->easy, CURLOPT_HTTPHEADER, self->headers);
        curl_easy_setopt (client->easy, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt (client->easy, CURLOPT_PRIVATE, client);
        curl_easy_setopt (client->easy, CURLOPT_ERRORBUFFER, client->error);
        curl_easy_setopt (client->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (client->easy, CURLOPT_TIMEOUT_MS, options->timeout_ms);
        curl_easy_setopt (client->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt (client->easy, CURLOPT_USERAGENT, "conveyor-bench/" CONVEYOR_VERSION);
        if (options->new_connection) {
            curl_easy_setopt (client->easy, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt (client->easy, CURLOPT_FORBID_REUSE, 1L);
        }
        self->idle[self->idle_count++] = options->clients - 1 - i; /* client 0 on top */
    }
    return self;
}

void
cli_load_destroy (cli_load_t **self_p)
{
    assert (self_p);
    cli_load_t *self = *self_p;
    if (!self)
        return;
    /* Transfers still running (after a signal) are dropped; then the connections close, and
       libcurl calls s_on_socket as they do, so self stays whole until the multi is gone. */
    for (size_t i = 0; i < self->options.clients; i++)
        curl_multi_remove_handle (self->multi, self->clients[i].easy);
    curl_multi_cleanup (self->multi);
    for (size_t i = 0; i < self->options.clients; i++)
        curl_easy_cleanup (self->clients[i].easy);
    curl_slist_free_all (self->headers);
    free (self->clients);
    free (self->idle);
    free (self->watched);
    free (self->ready);
    free ((char *) self->options.endpoint);
    cv_histogram_destroy (&self->latency_us);
    free (self);
    *self_p = NULL;
}

/* Open loop: when request index is due. */
static int64_t
s_due_us (const cli_load_t *self, uint64_t index)
{
    return self->started_us + (int64_t) ((double) index * SECOND_US / (double) self->options.rate);
}

/* Open loop: how many requests are due at now, at most the schedule's length. */
static uint64_t
s_due_count (const cli_load_t *self, int64_t now)
{
    uint64_t due = (uint64_t) floor ((double) (now - self->started_us) * (double) self->options.rate / SECOND_US) + 1;
    return due < self->limit ? due : self->limit;
}

/* Sends the next body on a free client; its latency will count from due_us. */
static void
s_send (cli_load_t *self, int64_t due_us)
{
    assert (self->idle_count > 0);
    client_t *client = &self->clients[self->idle[--self->idle_count]];
    const char *body = self->bodies[self->next_body];
    self->next_body = (self->next_body + 1) % self->body_count;
    curl_easy_setopt (client->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (client->easy, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    client->error[0] = '\0';
    client->due_us = due_us;
    CURLMcode added = curl_multi_add_handle (self->multi, client->easy);
    assert (added == CURLM_OK); /* a free client's handle is never in the multi */
    self->counts.sent++;
}

/* Whether to go on sending. When it stops, the open loop counts the requests due but unsent. */
static bool
s_sending (cli_load_t *self, int64_t now)
{
    if (self->stopped)
        return false;
    if (now < self->deadline_us && !(self->limit && self->counts.sent >= self->limit) && !self->counts.interrupted)
        return true;
    self->stopped = true;
    if (self->options.rate > 0) {
        uint64_t due = s_due_count (self, now);
        self->counts.unsent = due > self->counts.sent ? due - self->counts.sent : 0;
    }
    return false;
}

/* Sends what is due: closed loop, a request on every free client; open loop, every request whose
   time has come, while a client is free. */
static void
s_send_due (cli_load_t *self, int64_t now)
{
    if (self->options.rate == 0) {
        while (self->idle_count > 0 && !(self->limit && self->counts.sent >= self->limit))
            s_send (self, now);
        return;
    }
    while (self->counts.sent < self->limit && s_due_us (self, self->counts.sent) <= now) {
        if (self->idle_count == 0) {
            /* Every client is busy: what is due waits for one, the wait in its latency. */
            uint64_t due = s_due_count (self, now);
            self->waited_upto = due > self->waited_upto ? due : self->waited_upto;
            return;
        }
        if (self->counts.sent < self->waited_upto)
            self->counts.queued++;
        s_send (self, s_due_us (self, self->counts.sent));
    }
}

/* A request is over: answered (2xx) with its latency, or an error of its kind. */
static void
s_finish (cli_load_t *self, client_t *client, CURLcode result)
{
    int64_t now = s_now_us ();
    long status = 0, connects = 0;
    curl_easy_getinfo (client->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo (client->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle (self->multi, client->easy);
    cli_load_counts_t *counts = &self->counts;
    counts->connections += (uint64_t) connects;
    if (result == CURLE_OK && status >= 200 && status < 300) {
        counts->answered++;
        cv_histogram_record (self->latency_us, now - client->due_us);
    } else {
        counts->failed++;
        if (result == CURLE_OK && status > 0 && status < CLI_LOAD_STATUS_CODES)
            counts->by_status[status]++;
        else if (result == CURLE_OPERATION_TIMEDOUT)
            counts->timeouts++;
        else if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST
                 || result == CURLE_COULDNT_RESOLVE_PROXY || result == CURLE_SEND_ERROR || result == CURLE_RECV_ERROR
                 || result == CURLE_GOT_NOTHING || result == CURLE_PARTIAL_FILE || result == CURLE_SSL_CONNECT_ERROR)
            counts->connection_errors++;
        else
            counts->other_errors++;
        if (result != CURLE_OK && !counts->first_error[0])
            snprintf (counts->first_error, sizeof counts->first_error, "%s",
                      client->error[0] ? client->error : curl_easy_strerror (result));
    }
    self->idle[self->idle_count++] = (size_t) (client - self->clients);
}

/* Every transfer libcurl has finished. */
static void
s_collect (cli_load_t *self)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read (self->multi, &left)))
        if (message->msg == CURLMSG_DONE) {
            char *client = NULL;
            CURLcode result = message->data.result; /* read before the handle leaves the multi */
            curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, &client);
            assert (client);
            s_finish (self, (client_t *) client, result);
        }
}

/* Waits for a ready socket, libcurl's timer, the next request's due time, the end or the next
   progress line, whichever comes first, and lets libcurl act on what happened. */
static void
s_wait (cli_load_t *self, int64_t now)
{
    int64_t wake = self->progress_us;
    if (self->timer_us >= 0 && self->timer_us < wake)
        wake = self->timer_us;
    if (!self->stopped) {
        if (self->deadline_us < wake)
            wake = self->deadline_us;
        if (self->options.rate > 0 && self->idle_count > 0 && self->counts.sent < self->limit
            && s_due_us (self, self->counts.sent) < wake)
            wake = s_due_us (self, self->counts.sent);
    }
    int64_t wait_us = wake > now ? wake - now : 0;
    struct timespec timeout = {(time_t) (wait_us / SECOND_US), (long) (wait_us % SECOND_US) * 1000};
    int ready = ppoll (self->watched, (nfds_t) self->watched_count, &timeout, NULL);
    if (ready < 0 && errno != EINTR) {
        snprintf (self->counts.first_error, sizeof self->counts.first_error, "ppoll: %s", strerror (errno));
        self->counts.interrupted = true;
        return;
    }
    int running;
    if (ready > 0) {
        /* socket_action changes the watched set: act on a copy of what was ready. */
        size_t count = 0;
        for (size_t i = 0; i < self->watched_count; i++)
            if (self->watched[i].revents)
                self->ready[count++] = self->watched[i];
        for (size_t i = 0; i < count; i++) {
            short revents = self->ready[i].revents;
            int mask = (revents & POLLIN ? CURL_CSELECT_IN : 0) | (revents & POLLOUT ? CURL_CSELECT_OUT : 0)
                       | (revents & (POLLERR | POLLHUP | POLLNVAL) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action (self->multi, self->ready[i].fd, mask, &running);
        }
    }
    if (self->timer_us >= 0 && s_now_us () >= self->timer_us) {
        self->timer_us = -1;
        curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

/* A line on stderr when one is due: elapsed seconds, requests finished, their rate since the
   last line, errors. */
static void
s_progress (cli_load_t *self, int64_t now)
{
    if (now < self->progress_us)
        return;
    uint64_t finished = self->counts.answered + self->counts.failed;
    int64_t since_us = now - self->progress_us + SECOND_US;
    if (self->options.progress)
        fprintf (stderr, "conveyor bench: %.0f s, %llu requests, %.0f requests/s, %llu errors\n",
                 (double) (now - self->started_us) / SECOND_US, (unsigned long long) finished,
                 (double) (finished - self->progress_finished) * SECOND_US / (double) since_us,
                 (unsigned long long) self->counts.failed);
    self->progress_finished = finished;
    self->progress_us = now + SECOND_US;
}

void
cli_load_run (cli_load_t *self)
{
    assert (self && !self->ran);
    self->ran = true;
    zsys_catch_interrupts ();
    self->started_us = s_now_us ();
    self->deadline_us = self->started_us + self->options.duration_us;
    self->progress_us = self->started_us + SECOND_US;
    while (true) {
        int64_t now = s_now_us ();
        if (zsys_interrupted)
            self->counts.interrupted = true;
        if (s_sending (self, now))
            s_send_due (self, now);
        if (self->stopped && (self->idle_count == self->options.clients || self->counts.interrupted))
            break;
        s_progress (self, now);
        s_wait (self, now);
        s_collect (self);
    }
    self->counts.seconds = (double) (s_now_us () - self->started_us) / SECOND_US;
}

const cli_load_counts_t *
cli_load_counts (const cli_load_t *self)
{
    assert (self);
    return &self->counts;
}

const cv_histogram_t *
cli_load_latency_us (const cli_load_t *self)
{
    assert (self);
    return self->latency_us;
}

/* Milliseconds with microseconds' precision. */
static json_t *
s_ms (int64_t us)
{
    return json_real ((double) us / 1000.0);
}

json_t *
cli_load_latency_json (const cv_histogram_t *latency_us)
{
    assert (latency_us);
    static const struct {
        const char *key;
        double percentile;
    } s_percentiles[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}};
    bool any = cv_histogram_count (latency_us) > 0;
    json_t *latency = json_object ();
    for (size_t i = 0; i < sizeof s_percentiles / sizeof s_percentiles[0]; i++)
        json_object_set_new (latency, s_percentiles[i].key,
                             any ? s_ms (cv_histogram_value_at (latency_us, s_percentiles[i].percentile))
                                 : json_null ());
    json_object_set_new (latency, "max", any ? s_ms (cv_histogram_max (latency_us)) : json_null ());
    json_object_set_new (latency, "mean",
                         any ? s_ms ((int64_t) llround (cv_histogram_mean (latency_us))) : json_null ());
    return latency;
}
