/* The stand-in LLM server's answers as an OpenAI-compatible server words them: a chat completion
   with its usage, an error document, a scripted body, each queued on a libmicrohttpd connection
   with the headers a client looks at (Content-Type, Retry-After, retry-after-ms). */
#ifndef FAKE_LLM_REPLY_H
#define FAKE_LLM_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cv_assert.h"
#include "fake_llm.h"

/* The body an answer that fails carries unless the step gives one: an OpenAI-style error. */
#define FAKE_LLM_FAILURE_BODY "{\"error\":{\"message\":\"fake failure\",\"type\":\"server_error\"}}"

/* Queues status with body (copied) as application/json, and Retry-After (NULL: none) and
   retry-after-ms (0: none). */
enum MHD_Result fake_llm_reply_send (struct MHD_Connection *connection, unsigned status, const char *body,
                                     const char *retry_after, unsigned retry_after_ms);
/* Queues status with document (taken) as compact JSON. */
enum MHD_Result fake_llm_reply_json (struct MHD_Connection *connection, unsigned status, json_t *document);
/* Queues status with {"error": {"message", "type", "code": null}}. */
enum MHD_Result fake_llm_reply_error (struct MHD_Connection *connection, unsigned status, const char *type,
                                      const char *message);

/* A chat completion (new reference) answering request (a chat request's JSON) with content: the
   model it asked for, id chatcmpl-fake-SERIAL, and usage as step says (its token counts, or
   estimated from the texts when both are 0; none with no_usage). */
json_t *fake_llm_reply_completion (json_t *request, const fake_llm_step_t *step, const char *content,
                                   unsigned long serial);

/* Whether request (a chat request's JSON) asks for a streamed answer ("stream": true). */
bool fake_llm_reply_wants_stream (const json_t *request);

/* completion (a fake_llm_reply_completion's, borrowed) as server-sent events (malloc'd): a chunk
   with the role, the content in chunks of a few bytes, one with the finish reason, one with the
   usage when request's stream_options ask for it, and "data: [DONE]"; with complete false only
   the first half of the content's chunks, and nothing after them. */
char *fake_llm_reply_events (const json_t *request, const json_t *completion, bool complete);

#endif
