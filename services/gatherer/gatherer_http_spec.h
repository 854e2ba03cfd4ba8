/* What an http tool sends and what it keeps of the answer, read from its entry in the agent
   file's `tools`. Pure parsing, no I/O (the environment is read once, here, at start);
   gatherer_http runs it.

     tools:
       delivery_status:
         kind: http
         method: GET                      -- GET (default), POST, PUT, PATCH or DELETE
         url: '${CONVEYOR_BANKAPI_URL:-http://127.0.0.1:8090}/v1/deliveries/{tracking}'
         params: {tracking: evidence.cards_in_delivery.0.delivery_tracking}
         headers: {Authorization: 'Bearer ${BANKAPI_TOKEN}'}   -- optional
         body: {tracking: '{tracking}', source: support}          -- optional, a JSON template
         keep: {status: status, expected: expected_date, carrier: carrier.name}
         rows: items                      -- optional: the answer's array whose items are rows
         max_rows: 1                      -- 1..1000, default 50, with rows
         max_response_bytes: 65536        -- 1..16 MiB, default 64 KiB
         timeout_ms: 500                  -- as every kind; retries, breaker, cache, personal too

   `${NAME}` and `${NAME:-default}` in the URL and the headers are the operator's: the
   environment's value, read at start, so that secrets stay out of the agent file (in the URL it
   is text: its braces are no placeholders); a variable that is not set and has no default stops
   the start, naming file, line and key, and an error never quotes a resolved value. `{name}` in
   the URL is a parameter (cv_params.h: a named map of context paths), filled per request
   and percent-escaped (cv_http_url.h): what a customer typed is only ever one path segment or
   query value. In the body, a string that is exactly "{name}" becomes that parameter's value,
   its JSON type kept; every other value goes as written: a customer's text is never spliced
   into a string. Every placeholder must be a parameter, and every parameter is required: a
   value the request does not have fails the tool with the parameter named.

   The answer must be JSON. Each `keep` field is a path into it (object keys and array indices,
   dot-separated), its value kept as text, as an SQL tool's columns are (objects and arrays as
   JSON text, a missing or null value as null). Without `rows` the answer is one row; with it,
   each item of that array is a row and the paths are the item's. */
#ifndef GATHERER_HTTP_SPEC_H
#define GATHERER_HTTP_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"
#include "cv_params.h"

#define GATHERER_HTTP_MAX_RESPONSE_DEFAULT (64 * 1024)
#define GATHERER_HTTP_MAX_RESPONSE_MAX (16 * 1024 * 1024)
#define GATHERER_HTTP_MAX_HEADERS 32
#define GATHERER_HTTP_MAX_KEEP 64

/* An http tool's request and answer (plain data; gatherer_http_spec_destroy frees it). */
typedef struct {
    char *method;
    char *url;      /* the template: ${...} resolved, {name} left for each request */
    char **names;   /* per tool parameter: its placeholder name */
    char **headers; /* header_count "Name: value" lines, ${...} resolved */
    size_t header_count;
    json_t *body;      /* the body template, or NULL for none */
    char **keep_names; /* keep_count fields of each row ... */
    char **keep_paths; /* ... and where each is in the answer (or in an item of rows) */
    size_t keep_count;
    char *rows; /* the path of the answer's array of rows, or NULL: one row */
    size_t max_response_bytes;
} gatherer_http_spec_t;

/* Reads the http keys of tool node (at path "tools.NAME", for errors) whose parameters, already
   parsed, are params (their names are copied). NULL with err at the offending key's line. */
gatherer_http_spec_t *gatherer_http_spec_parse (const cv_config_t *agent, cv_node_t *node, const char *path,
                                                const cv_params_t *params, cv_error_t *err) CV_MUST_CHECK;
void gatherer_http_spec_destroy (gatherer_http_spec_t **self_p);

/* The parameter name a body string stands for when it is exactly "{name}" (size bytes at the
   returned pointer, within text), or NULL for a string that is sent as written. */
const char *gatherer_http_spec_placeholder (const char *text, size_t *size);

void gatherer_http_spec_test (bool verbose);

#endif
