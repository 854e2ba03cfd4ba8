/* The OpenAI-compatible front door: POST /v1/chat/completions and GET /v1/models, so that an
   OpenAI client or a chat UI talks to conveyor. The agent appears as one model (--chat-model).

   A chat completion is a conveyor request: the last message, which must be the user's, is its
   text; `user` (or, without it, the header --chat-user-header names) is its user id. The earlier
   user and assistant messages are the session's context (orchestrator_api_context: the latest
   that fit), kept with the request and given to the reply's writer as the conversation so far;
   system and developer messages are not taken as instructions (the agent file has its own), and
   tool messages are left out. The sampling fields (temperature, max_tokens, ...) are accepted and
   not used: conveyor's replies are not sampled. Its answer
   is a chat.completion whose assistant message is the reply, with conveyor's request id in `id`
   ("chatcmpl-" and the id) and in `conveyor.request_id`, and the request's tokens in `usage`;
   every error is in OpenAI's shape, {"error": {"message", "type", "param", "code"}}. With
   `stream: true` the answer is server-sent events ending in "data: [DONE]"; a body that is not
   JSON at all is refused by the front door (orchestrator_http) in conveyor's own error shape. */
#ifndef ORCHESTRATOR_CHAT_H
#define ORCHESTRATOR_CHAT_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_error.h"
#include "orchestrator_api.h"
#include "orchestrator_http.h"

/* The name the agent answers to unless --chat-model says another. */
#define ORCHESTRATOR_CHAT_MODEL "conveyor"

typedef struct {
    const char *model;       /* the name the agent answers to */
    const char *user_header; /* where the user id is when the body has no `user`; NULL: nowhere */
} orchestrator_chat_config_t;

/* Reads a chat completion request (body, borrowed; header_user the value of the user header, or
   NULL) into submission, whose strings are borrowed from body and header_user (its context is
   its own, the caller's to release). -1 with err
   (CV_ERR_INVALID) otherwise, its field the parameter at fault: model (a model other than the
   agent's, which the route answers 404), messages, messages[i].content, user, stream. *stream:
   whether the answer is to be streamed. */
int orchestrator_chat_parse (const orchestrator_chat_config_t *config, json_t *body, const char *header_user,
                             orchestrator_submission_t *submission, bool *stream, cv_error_t *err) CV_MUST_CHECK;

/* An error in OpenAI's shape: type invalid_request_error below 500, else server_error; param
   may be NULL. A new reference. */
json_t *orchestrator_chat_error (unsigned status, const char *message, const char *param, const char *code);

/* GET /v1/models: the list with the agent's model. A new reference. */
json_t *orchestrator_chat_models (const orchestrator_chat_config_t *config);

/* An answer of the HTTP API (status, document; taken) as the chat completion's: a 200 with a
   reply as a chat.completion, anything else in OpenAI's error shape (with conveyor.request_id
   when the document has one). A new reference. */
json_t *orchestrator_chat_completion (const orchestrator_chat_config_t *config, unsigned status, json_t *document);
/* A chat.completion (from the above) as server-sent events: a chunk with the whole reply (the
   pipeline writes it at once), a last chunk with finish_reason, usage and conveyor's fields, and
   "data: [DONE]". Malloc'd. */
char *orchestrator_chat_events (const json_t *completion);

/* orchestrator_http_shape_fn's (config an orchestrator_chat_config_t): the answer as a chat
   completion, or streamed as events; an error is JSON either way, as no event has gone yet. */
void orchestrator_chat_answer (void *config, orchestrator_exchange_t *exchange, unsigned status, json_t *document);
void orchestrator_chat_answer_stream (void *config, orchestrator_exchange_t *exchange, unsigned status,
                                      json_t *document);

void orchestrator_chat_test (bool verbose);

#endif
