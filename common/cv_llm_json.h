/* The chat-completions wire format of an OpenAI-compatible endpoint: messages, the request body,
   the answer parsed strictly into a reply (choices[0].message.content must be a string; usage's
   token counts, when present, whole numbers; cost in micros from the configured prices), what a
   failed answer says, and a JSON object inside a reply's content. No I/O: cv_llm sends and
   receives. */
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

/* The configured prices (units per 1,000 tokens) in micros per 1,000 tokens: converted once,
   with cv_budget_micros, so that every cost is whole micros (cv_budget_token_cost). */
typedef struct {
    uint64_t prompt_per_1k;
    uint64_t completion_per_1k;
} cv_llm_prices_t;

/* config's prices in micros. */
cv_llm_prices_t cv_llm_prices_of (const cv_llm_config_t *config);
/* What prompt_tokens and completion_tokens cost at prices, each rounded up to a whole micro;
   saturates at UINT64_MAX. */
uint64_t cv_llm_prices_cost (const cv_llm_prices_t *prices, uint64_t prompt_tokens, uint64_t completion_tokens);

/* The outcome of a call. Zero it before first use; cv_llm_chat frees what a previous call left
   in it, cv_llm_reply_reset frees it for good. */
typedef struct {
    char *content;               /* owned; NULL when the call failed */
    char model[CV_LLM_NAME_MAX]; /* the model that answered */
    bool fallback;               /* ...and it was the fallback model */
    bool fallback_tried;         /* the fallback model was asked (or skipped for its open breaker) */
    char main_failure[256];      /* why the main model did not answer; "" when it did */
    char fallback_failure[256];  /* why the fallback did not, when it was asked and failed */
    bool cached;                 /* the answer came from the answer cache (cv_llm_chat_for): none was sent */
    unsigned attempts;           /* requests sent, both models, failed call included; 0 when cached */
    bool has_usage;              /* the answer's usage gave both token counts */
    long prompt_tokens;          /* as usage gave them; 0 when it did not */
    long completion_tokens;
    /* What the answer cost at the configured prices. Without both counts its real cost is
       unknown: cv_llm_chat then charges the call's worst case (cv_llm_worst_cost). A failed
       call costs 0: a provider bills the answers it gives. A cached one costs 0 too, with 0
       tokens and has_usage false: nothing was spent on it. */
    uint64_t cost_micros;
    uint64_t latency_ms;    /* the whole call, retries and waits included */
    char finish_reason[32]; /* "" when not given */
} cv_llm_reply_t;

void cv_llm_reply_reset (cv_llm_reply_t *reply);

/* The request body (owned) asking model for a completion of count messages, with config's
   temperature and max_tokens, and response_format (borrowed) as the request's when given, else
   config's ({"type": "json_object"} in JSON mode, none for text); NULL with err (INVALID) when a
   message is not valid UTF-8. */
char *cv_llm_json_request (const cv_llm_config_t *config, const char *model, const cv_llm_message_t *messages,
                           size_t count, const json_t *response_format, cv_error_t *err) CV_MUST_CHECK;

/* The response_format asking for content that matches schema (borrowed, cv_json_schema_check'ed):
   {"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}. A new reference. */
json_t *cv_llm_json_schema_format (const char *name, const json_t *schema);

/* Reads a 2xx body of size bytes into reply (content owned by it), strictly, with its cost at
   prices when usage gives both token counts (else 0, has_usage false: the caller knows the
   worst case); -1 with err (MALFORMED, the field named) and reply untouched when it is no chat
   completion. */
int cv_llm_json_answer (const cv_llm_prices_t *prices, const char *body, size_t size, cv_llm_reply_t *reply,
                        cv_error_t *err) CV_MUST_CHECK;

/* Reads a 2xx body of server-sent events (a streamed chat completion, size bytes) into reply, as
   cv_llm_json_answer reads one JSON completion: the content is the first choice's delta contents
   in order ("" when none came), the finish reason the last one given, the tokens the usage of
   the chunk that has one. -1 with err (MALFORMED) and reply untouched when an event's data is not
   a JSON object, an event is an error ({"error": ...}, its message said), a chunk's content or
   usage is not of its type, or the stream ends before "data: [DONE]". Lines are ended by LF, CRLF
   or CR; comments (":...") and fields other than data are skipped; an event's data lines are
   joined by LF, as the format says. */
int cv_llm_json_stream_answer (const cv_llm_prices_t *prices, const char *body, size_t size, cv_llm_reply_t *reply,
                               cv_error_t *err) CV_MUST_CHECK;

/* What a failed answer's body says, log-safe, in out (out_size bytes): OpenAI's
   {"error": {"message": ...}} and its cousins, or the start of the raw body. */
void cv_llm_json_error_detail (const char *body, size_t size, char *out, size_t out_size);

/* The reply's content as a JSON object (new reference), tolerating a ```json fence around it
   and text outside the fence; NULL with err (MALFORMED) for anything else. */
json_t *cv_llm_json_content (const cv_llm_reply_t *reply, cv_error_t *err) CV_MUST_CHECK;

void cv_llm_json_test (bool verbose);

#endif
