/* Runs one http tool (gatherer_http_spec.h) through its loop's HTTP client (cv_http, libcurl's
   multi interface): the URL built from the request's parameters, each percent-escaped; the
   headers; the body from its template; within the smaller of the tool's timeout_ms and the
   request's deadline.

   Every call gets a result, as an SQL tool's: OK with the kept fields of the answer as rows (a
   msgpack array of row objects, field name to text, null as nil; rows past max_rows dropped);
   FAILED with the reason on one line: the service out of reach or the connection broken, an
   HTTP status other than 2xx (with the answer's own error message when it gives one in JSON), a
   body over max_response_bytes, an answer that is not JSON; or TIMED_OUT. For the retry layer
   and the breaker (gatherer_call), the failure's kind and HTTP status are set, and a failing
   answer's Retry-After is read into retry_after_ms. A failure never fails the request. */
#ifndef GATHERER_HTTP_H
#define GATHERER_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_http.h"
#include "gatherer_result.h"
#include "gatherer_tools.h"

typedef struct _gatherer_http_call_t gatherer_http_call_t;

/* The tool's result is in (the caller's result, given to gatherer_http_start). The call is gone. */
typedef void (gatherer_http_done_fn) (void *arg);

/* Starts tool (kind http) on http over context and returns the call: fills *result and calls done
   with arg once, later, from a callback of http's loop. When the request cannot be made (a
   parameter whose value the request does not have), fills *result now, returns NULL and never
   calls done. context is read now only. deadline_us: the request's deadline on the zclock_usecs
   clock, 0 for none. */
gatherer_http_call_t *gatherer_http_start (cv_http_t *http, const gatherer_tool_t *tool, const json_t *context,
                                           int64_t deadline_us, gatherer_result_t *result, gatherer_http_done_fn *done,
                                           void *arg);

/* Whether tool's request can be made over context: false, with *result FAILED saying why (a
   parameter the request has no value for, a value that cannot be a URL segment), when it cannot,
   so that the caller fails it without asking the tool's breaker: nothing would be sent. */
bool gatherer_http_can_start (const gatherer_tool_t *tool, const json_t *context, gatherer_result_t *result);

/* Gives up on a call not done yet: done is never called, result is left as it is, the transfer is
   dropped, and the call is gone. */
void gatherer_http_forget (gatherer_http_call_t *call);

void gatherer_http_test (bool verbose);

#endif
