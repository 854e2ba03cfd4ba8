/* The chat-completions wire format of an OpenAI-compatible endpoint: messages, the request body,
   the answer parsed strictly into a reply (choices[0].message.content must be a string; usage's
   token counts, when present, whole numbers; cost from the configured prices), what a failed
   answer says, and a JSON object inside a reply's content. No I/O: cv_llm sends and receives. */
#ifndef CV_LLM_JSON_H
#define CV_LLM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_error.h"
#include "cv_llm_config.h"

typedef enum { CV_LLM_SYSTEM, CV_LLM_USER, CV_LLM_ASSISTANT } cv_llm_role_t;

/* "system", "user", "assistant". */
const char *cv_llm_role_name (cv_llm_role_t role);

typedef struct {
    cv_llm_role_t role;
    const char *content; /* UTF-8 */
} cv_llm_message_t;

/* The outcome of a call. Zero it before first use; cv_llm_chat frees what a previous call left
   in it, cv_llm_reply_reset frees it for good. */
typedef struct {
    char *content;               /* owned; NULL when the call failed */
    char model[CV_LLM_NAME_MAX]; /* the model that answered */
    bool fallback;               /* ...and it was the fallback model */
    unsigned attempts;           /* requests sent, both models, failed call included */
    bool has_usage;              /* the answer carried usage */
    long prompt_tokens;
    long completion_tokens;
    double cost;            /* from the configured prices */
    uint64_t latency_ms;    /* the whole call, retries and waits included */
    char finish_reason[32]; /* "" when not given */
} cv_llm_reply_t;

void cv_llm_reply_reset (cv_llm_reply_t *reply);

/* The request body (owned) asking model for a completion of count messages, with config's
   temperature, max_tokens and response format; NULL with err (INVALID) when a message is not
   valid UTF-8. */
char *cv_llm_json_request (const cv_llm_config_t *config, const char *model, const cv_llm_message_t *messages,
                           size_t count, cv_error_t *err) CV_MUST_CHECK;

/* Reads a 2xx body of size bytes into reply (content owned by it), strictly, with its cost from
   config's prices; -1 with err (MALFORMED, the field named) when it is no chat completion. */
int cv_llm_json_answer (const cv_llm_config_t *config, const char *body, size_t size, cv_llm_reply_t *reply,
                        cv_error_t *err) CV_MUST_CHECK;

/* What a failed answer's body says, log-safe, in out (out_size bytes): OpenAI's
   {"error": {"message": ...}} and its cousins, or the start of the raw body. */
void cv_llm_json_error_detail (const char *body, size_t size, char *out, size_t out_size);

/* The reply's content as a JSON object (new reference), tolerating a ```json fence around it
   and text outside the fence; NULL with err (MALFORMED) for anything else. */
json_t *cv_llm_json_content (const cv_llm_reply_t *reply, cv_error_t *err) CV_MUST_CHECK;

void cv_llm_json_test (bool verbose);

#endif
