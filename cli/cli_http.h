/* What the commands that speak to the orchestrator's HTTP API share: one JSON request, blocking,
   with libcurl. */
#ifndef CLI_HTTP_H
#define CLI_HTTP_H

#include <jansson.h>

#define CLI_HTTP_MAX_ANSWER_BYTES (16 * 1024 * 1024)

/* The endpoint path under the API at url (whose trailing slashes are dropped): a new string. */
char *cli_http_endpoint (const char *url, const char *path);

/* GETs url (body NULL) or POSTs body to it as JSON, waiting at most timeout_ms; returns the
   answer's JSON with its HTTP status in *status, or NULL after saying why (as command) with
   *status 0 when the API could not be reached and the status when it answered with something
   that is not JSON. */
json_t *cli_http_json (const char *command, const char *url, const char *body, long timeout_ms, long *status);

#endif
