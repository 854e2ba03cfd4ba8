/* An HTTP client on a zloop, through libcurl's multi interface, so that one thread has many
   requests in flight without ever blocking on the network.

   libcurl's sockets are watched by the loop's pollers and its timeouts by one loop timer
   (curl_multi_socket_action); all requests share one multi handle, hence its connection cache:
   a request to a host already talked to reuses the idle connection.

   Each request is started with its method, URL, headers, body, total time limit and the most
   body it accepts, and its caller hears of it exactly once, through its done callback, from a
   callback of the loop: never from inside cv_http_start, so a caller may start several requests
   in a row and read their outcomes later. A caller that no longer wants an outcome forgets the
   request: done is then never called, and its transfer is dropped.

   An answer over the body limit is an error ("response over N bytes"), never a truncated body.
   Transport failures come in kinds (refused, timed out, closed, malformed) that map onto
   cv_backoff's failures, so that a caller asks cv_backoff_retryable whether to try again.

   Not thread-safe: a client belongs to its loop's thread. */
#ifndef CV_HTTP_H
#define CV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "cv_backoff.h"
#include "cv_error.h"

typedef struct _cv_http_t cv_http_t;
typedef struct _cv_http_call_t cv_http_call_t;

/* How a request ended. */
typedef enum {
    CV_HTTP_ANSWERED,  /* an answer came, whatever its status: status, body and headers are set */
    CV_HTTP_REFUSED,   /* no connection: refused, unreachable, or the host name did not resolve */
    CV_HTTP_TIMEOUT,   /* the time limit came first (connecting, sending or reading) */
    CV_HTTP_CLOSED,    /* the connection ended (or broke) before a whole answer came */
    CV_HTTP_MALFORMED, /* what came back is not HTTP */
    CV_HTTP_TOO_LARGE, /* the body was over the request's max_body bytes */
    CV_HTTP_FAILED     /* anything else: a bad URL, an unsupported scheme, TLS... */
} cv_http_result_t;

/* A request (plain data; everything is copied by cv_http_start). */
typedef struct {
    const char *method;                /* "GET" when NULL */
    const char *url;                   /* http:// or https:// only */
    const char *const *headers;        /* header_count lines "Name: value" */
    size_t header_count;               /* */
    const char *body;                  /* body_size bytes sent as the body, or NULL for none */
    size_t body_size;                  /* */
    int64_t until_us;                  /* the whole request's limit, on the zclock_usecs clock */
    size_t max_body;                   /* the largest body accepted (bytes) */
    const char *const *answer_headers; /* answer_header_count names of answer headers to keep */
    size_t answer_header_count;        /* (Retry-After, say), matched without regard to case */
} cv_http_request_t;

/* A request's outcome; everything borrowed, valid during the done callback only. */
typedef struct {
    cv_http_result_t result;
    int status;                        /* ANSWERED and TOO_LARGE: the HTTP status; otherwise 0 */
    const char *body;                  /* ANSWERED: body_size bytes and a NUL; otherwise "" */
    size_t body_size;                  /* */
    const char *const *answer_headers; /* ANSWERED: the value of each asked-for header, in the */
                                       /* request's order, NULL for one that did not come */
    const char *error;                 /* not ANSWERED: why, fit for a log line; otherwise "" */
    bool reused;                       /* the request went over a connection opened earlier */
    int64_t started_us;                /* when cv_http_start was called, on the zclock_usecs clock ... */
    int64_t finished_us;               /* ... and when its outcome was known */
} cv_http_outcome_t;

/* A request's outcome (borrowed, valid during the call). The call is gone once this returns. */
typedef void (cv_http_done_fn) (void *arg, const cv_http_outcome_t *outcome);

/* Sets libcurl up for the process (curl_global_init), once, whoever calls first. Call it from the
   main thread before other threads start: OpenSSL, which libcurl starts, keeps state for the
   thread that started it, and its clean-up at exit runs on the main thread and frees only that
   one's. cv_http_new and cv_llm_new call it too, for a program that did not. -1 with err when
   libcurl cannot start. */
int cv_http_global_init (cv_error_t *err) CV_MUST_CHECK;

/* A client on loop (borrowed; it outlives the client). NULL with err when libcurl cannot start. */
cv_http_t *cv_http_new (zloop_t *loop, cv_error_t *err) CV_MUST_CHECK;
/* Drops every request in flight, without calling any done, and closes the connections. Not from
   inside a done callback. */
void cv_http_destroy (cv_http_t **self_p);

/* Starts request; done is called once, later, from the loop, with arg. A limit already passed,
   or a request libcurl refuses at once, is still heard of that way. The call is valid until
   then, or until forgotten. */
cv_http_call_t *cv_http_start (cv_http_t *self, const cv_http_request_t *request, cv_http_done_fn *done, void *arg);

/* The caller no longer wants call's outcome: done is never called, and call is gone. */
void cv_http_forget (cv_http_t *self, cv_http_call_t *call);

/* Requests started and not yet heard of or forgotten. */
size_t cv_http_in_flight (const cv_http_t *self);

/* Whether outcome is a failure and which, as cv_backoff sees it: refused and closed are
   CV_BACKOFF_CONNECT (a malformed answer too: the exchange broke, as a connection that broke
   mid-answer does), a timeout CV_BACKOFF_TIMEOUT, an answer with a status other than 2xx
   CV_BACKOFF_HTTP with that status. An answer over the limit is CV_BACKOFF_HTTP with its status
   when that is not 2xx (a long 503 page is a 503), else with status 0, as a request that cannot
   be made is: cv_backoff_retryable never retries those, the same request gets the same result. Returns false (and
   leaves the outputs alone) for a 2xx answer. */
bool cv_http_failure (const cv_http_outcome_t *outcome, cv_backoff_failure_t *failure, int *http_status);

/* "answered", "refused", "timeout", "closed", "malformed", "too_large" or "failed", for logs. */
const char *cv_http_result_name (cv_http_result_t result);

void cv_http_test (bool verbose);

#endif
