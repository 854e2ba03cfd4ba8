/* A stand-in for an OpenAI-compatible LLM server, for tests: it answers POST /v1/chat/completions
   the way the test scripts it — well, slowly, with an HTTP error, with a malformed body, never, or
   by dropping the connection — and records every request it gets, so a test can check what its
   client sent.

   In process: fake_llm_new (0) listens on 127.0.0.1, on a free port, with its own threads (one per
   connection, so a slow or hanging answer holds up no other); fake_llm_base_url gives
   "http://127.0.0.1:PORT/v1". Out of process: the fake-llm binary (fake_llm_main.c), scripted by
   its flags at start and over HTTP while it runs (the /_fake/ paths below).

   Each chat request takes the next step of a queue (fake_llm_push); with the queue empty it takes
   the default step (fake_llm_set_default; at first: ok, content "ok"). Modes:
     ok         200, a chat completion: content text (default "ok"), the requested model, usage
     slow       waits delay_ms, then answers as ok, or as status when a status is given
     slow_body  sends the status line and headers of an ok answer at once, then waits delay_ms
                before its body (a server that begins in time and is slow to finish)
     status     answers status (429, 500, 503, 400...) with body text (default: an OpenAI-style
                error), and the Retry-After / retry-after-ms headers when given
     malformed  200 with text as the body, verbatim (default: a body that is not JSON)
     hang       never answers: ends when the client goes away or the server stops
     close      drops the connection without answering
     intent     200, content {"intent": "LABEL"}: the label of the first keyword
                (fake_llm_add_intent, in order, case-insensitive) found in the last user message,
                or "unknown"
     stream_cut a streamed answer that stops part way: the first half of ok's events, then the end
                of the body, with no finish reason and no "data: [DONE]" (a proxy that cut the
                stream); to a request that did not ask for a stream, as close
   A request with "stream": true is answered (ok, slow, slow_body, intent) as OpenAI streams:
   text/event-stream, a chunk with the assistant's role, the content in chunks of a few bytes
   (never inside a UTF-8 character), a chunk with finish_reason "stop", a chunk with the usage
   when "stream_options": {"include_usage": true} asks (and the step has one), "data: [DONE]".
   A chat request whose body is not JSON with a messages list gets 400, as from a real server,
   and takes no step. POST /v1/traces is taken as an OpenTelemetry collector takes OTLP/HTTP
   traces (200, {}), so that a test can see what an exporter sent. Other paths get 404. Every
   request but the /_fake/ ones is recorded.

   Over HTTP (for shell tests of the binary), on the same port:
     POST /_fake/steps     a step or a list of steps, as JSON, queued
     PUT  /_fake/default   a step, the new default
     POST /_fake/intents   {"keyword": "label", ...}, added in order
     GET  /_fake/requests  the recorded requests, a JSON list
     POST /_fake/reset     empties the queue, the records and the intents; default back to ok
   A step as JSON: {"mode": "ok|slow|slow_body|status|malformed|hang|close|intent|stream_cut", "content" or "body":
   TEXT, "status": N, "delay_ms": N, "retry_after": "TEXT", "retry_after_ms": N, "prompt_tokens": N,
   "completion_tokens": N, "usage": false}.

   Stopping (fake_llm_destroy) wakes every waiting answer, hanging ones included, and returns
   once all connection threads have ended. Thread-safe. */
#ifndef FAKE_LLM_H
#define FAKE_LLM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_assert.h"

typedef enum {
    FAKE_LLM_OK,
    FAKE_LLM_SLOW,
    FAKE_LLM_STATUS,
    FAKE_LLM_MALFORMED,
    FAKE_LLM_HANG,
    FAKE_LLM_CLOSE,
    FAKE_LLM_INTENT,
    FAKE_LLM_SLOW_BODY,
    FAKE_LLM_STREAM_CUT
} fake_llm_mode_t;

/* One scripted answer; strings are copied by fake_llm_push. Zero fields take the defaults. */
typedef struct {
    fake_llm_mode_t mode;
    const char *text;        /* ok, slow, slow_body: the content; status, malformed: the body; NULL: default */
    unsigned status;         /* status (and slow, optionally): the HTTP status */
    unsigned delay_ms;       /* slow, slow_body */
    const char *retry_after; /* status: the Retry-After header, NULL for none */
    unsigned retry_after_ms; /* status: the retry-after-ms header, 0 for none */
    int prompt_tokens;       /* ok, slow, slow_body, intent: usage; both 0: estimated from the texts */
    int completion_tokens;
    bool no_usage; /* leave usage out */
} fake_llm_step_t;

typedef struct _fake_llm_t fake_llm_t;

/* Listens on 127.0.0.1:port (0: a free port); NULL when it cannot. verbose logs each request on
   stderr. */
fake_llm_t *fake_llm_new (int port, bool verbose);
/* Stops (promptly, even with requests hanging) and frees. */
void fake_llm_destroy (fake_llm_t **self_p);

int fake_llm_port (const fake_llm_t *self);
/* "http://127.0.0.1:PORT/v1", borrowed. */
const char *fake_llm_base_url (const fake_llm_t *self);

/* Queues a step for the next chat request that has none. */
void fake_llm_push (fake_llm_t *self, const fake_llm_step_t *step);
/* The step for requests that find the queue empty. */
void fake_llm_set_default (fake_llm_t *self, const fake_llm_step_t *step);
/* Queues the steps in text (a JSON step or list of steps); -1 with a reason in error otherwise. */
int fake_llm_push_json (fake_llm_t *self, const char *text, char *error, size_t size);
/* The default step from text (a JSON step); -1 with a reason in error otherwise. */
int fake_llm_set_default_json (fake_llm_t *self, const char *text, char *error, size_t size);
/* For the intent mode: a message containing keyword is answered label. */
void fake_llm_add_intent (fake_llm_t *self, const char *keyword, const char *label);

/* Steps still queued. */
size_t fake_llm_pending (fake_llm_t *self);
/* Requests recorded so far (all paths but /_fake/). */
size_t fake_llm_request_count (fake_llm_t *self);
/* Waits up to timeout_ms until at least count requests are recorded: a handshake for tests
   that must know a request has arrived (say, before stopping the fake under it). */
bool fake_llm_wait_requests (fake_llm_t *self, size_t count, int timeout_ms);
/* The index-th request (new reference, a copy), or NULL:
   {"method", "path", "authorization" (string or null), "body" (JSON, or the raw text when it is
   not JSON), "model" (string or null), "messages" (list or null), "step" (the mode it took, or
   null)}. */
json_t *fake_llm_request (fake_llm_t *self, size_t index);
/* Empties the queue, the records and the intents; the default goes back to ok. */
void fake_llm_reset (fake_llm_t *self);

void fake_llm_test (bool verbose);

#endif
