/* A client for an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp's server,
   Ollama...) over libcurl: one blocking call at a time, for worker handler threads.

   A call never outlives the caller's absolute deadline: each attempt's timeout is the configured
   one or the time left, whichever is shorter. With first_byte_timeout_ms, an attempt whose server
   has not sent the first line of its final answer (its status line: an interim 1xx one does not
   count) that long after the request went out fails as a timeout too, however long the total would
   have let it run: a server that is slow to start is usually stuck (queued behind others, or
   wedged), and a retry, or the fallback, answers sooner. The limit runs from when libcurl has a
   connection and sends the request: resolving, connecting, TLS and a proxy's tunnel are
   connect_timeout_ms's.

   Connect errors, timeouts, dropped connections, 408, 429 and 5xx are retried on the main model
   (exponential backoff with full jitter, or the server's Retry-After / retry-after-ms when that
   still fits before the deadline); other 4xx and malformed 2xx answers are not. Then, if configured
   and there is time, the fallback gets one attempt: another model at the same endpoint, or a model
   at another endpoint (another provider, another server), except after 401/403 from the endpoint
   the fallback shares (no model fixes a rejected key). A circuit breaker per endpoint and model
   watches every attempt — a connection error, a timeout (the deadline's too), 408/429/5xx or a
   malformed answer counts as a failure; any other answer, 4xx included, shows the endpoint is up —
   and, while open, refuses at once, without a request being sent: the fallback answers alone while
   the main model's breaker is open. The breakers are the process's (cv_llm_breakers), shared by
   every client made for the same endpoint, model and breaker settings: when a provider goes down,
   the first thread to see it opens the circuit for all of them.

   Answers are parsed strictly (cv_llm_json): choices[0].message.content must be a string; usage's
   token counts, when present, must be whole numbers. Bodies over max_response_bytes are refused.
   Token counts and their cost are added to the client's counters.

   Cost is in micros (cv_budget.h): the prices, configured in units per 1,000 tokens, are
   converted once when the client is made, and a call costs its usage's tokens at them, each
   rounded up to a whole micro. Only the answer that comes back is billed: retries and the
   fallback model bill nothing of their own, so one answer's worst case (cv_llm_worst_cost) is
   the call's, and a caller reserves it from a budget before the call. An answer whose usage
   does not give both token counts is charged that worst case: its real cost is unknown, and a
   budget must never count less than was spent. The fallback model has the main one's prices.

   The answer cache (off by default): with cache_ttl_ms set, cv_llm_chat_for answers a request it
   has seen answered within the TTL from the cache, with no request sent and nothing billed. It is
   exact: the key is the SHA-256 of the request as it would be sent to the main model (the model,
   every message, max_tokens, temperature, response_format), so that no prompt's text is kept for
   the TTL and a long system prompt does not spend the byte budget, beside the scope the caller
   gives, in the clear, so that an answer to a prompt that holds one customer's data is never served
   to another. Only the main model's complete answers are stored: finish_reason "stop", content not
   empty, and in JSON mode content that parses as JSON. A truncated, filtered or empty answer would
   be one bad answer served for the whole TTL; the fallback's is a stand-in, which must not hide the
   main model for a TTL once it answers again. A caller whose own checks reject a stored answer (a
   label outside its list, a reply its guardrails refuse) drops it with cv_llm_forget. The cache is
   the process's (cv_llm_cache), shared by every client made for the same endpoint, API key (by its
   digest: another key is another account), cache settings and max_response_bytes, as the breakers
   are; an answer over its byte budget is returned, not stored. There is no single flight: identical
   requests that miss at once, on several threads, are each sent (and paid for). At a temperature
   above 0 the cache pins one sample of the model's answers for the TTL: leave it off where callers
   want the variety. cv_llm_chat is never cached: its callers have not said whose data their
   messages hold.

   Configuration (cv_llm_config.h) comes from the agent file's `llm:` section, then the LLM
   settings --llm-base-url and --llm-model (CONVEYOR_LLM_BASE_URL, CONVEYOR_LLM_MODEL):
     llm:
       base_url: http://127.0.0.1:8000/v1   # usually from CONVEYOR_LLM_BASE_URL instead
       model: qwen2.5-7b-instruct            # CONVEYOR_LLM_MODEL overrides
       api_key_env: OPENAI_API_KEY           # the NAME of the variable holding the key; default none
       fallback_model: qwen2.5-1.5b-instruct # default: the main model (with a fallback_base_url), else none
       fallback_base_url: http://10.0.0.9:8000/v1 # default: base_url
       fallback_api_key_env: BACKUP_KEY      # default: api_key_env at base_url, none at another endpoint
       timeout_ms: 10000                     # per attempt, 1..600000
       first_byte_timeout_ms: 0              # request sent to status line, 0..600000; 0: timeout_ms alone
       connect_timeout_ms: 2000              # 1..60000
       max_retries: 2                        # on the main model, 0..10
       backoff_base_ms: 100                  # 0..60000
       backoff_max_ms: 2000                  # 0..600000, not below backoff_base_ms
       breaker_threshold: 5                  # consecutive failed attempts that open it, 1..1000
       breaker_cooldown_ms: 30000            # 1..3600000
       max_tokens: 256                       # 1..1000000
       temperature: 0                        # 0..2
       response_format: text                 # or json_object
       stream: false                         # true: the answer as server-sent events (see below)
       price_prompt_per_1k: 0                # cost units per 1,000 prompt tokens, 0..1000000
       price_completion_per_1k: 0            # and per 1,000 completion tokens
       max_response_bytes: 1048576           # 1024..67108864
       cache_ttl_ms: 0                       # how long an answer is reused, 0..86400000; 0: no cache
       cache_max_entries: 1024               # answers kept at most, 1..1000000
       cache_max_bytes: 4194304              # their keys' and contents' bytes, 1024..1073741824
   With no base URL or no model there is no LLM (cv_llm_config_enabled is false), the default.

   Streaming (stream: true): the request asks for server-sent events ("stream": true, with
   "stream_options": {"include_usage": true} for the tokens), and the answer is read from them
   (cv_llm_json_stream_answer): the deltas' content in order, the finish reason and the usage of
   the last chunks, up to "data: [DONE]". A stream that ends before it (a proxy or a server that
   dropped the stream part way) is malformed, as is an error event inside it: what came before is
   not an answer. A server that ignores the request and sends one JSON completion is read as one.
   The whole stream is within max_response_bytes. The call still returns once, with the whole
   answer: what streaming buys is a first byte as soon as the model starts (which
   first_byte_timeout_ms then measures) and a connection that a proxy's idle timeout does not cut
   during a long answer.

   Connections: the client keeps one libcurl handle and runs it on a multi handle of its own, whose
   connections (one per endpoint) stay open between calls; the stats count the connections opened,
   so reuse shows as fewer than attempts. cv_http drives libcurl's multi interface too, on a zloop's
   sockets, for event-driven callers; this one blocks its thread, as its callers want.

   Threads: a client belongs to one thread (a worker creates one per handler thread, in its
   logic_new) and blocks it for a call, its breakers and its cache are shared with the process's
   other clients; its counters (cv_llm_stats) may be read from any thread. The first cv_llm_new in a
   process calls curl_global_init, once (pthread_once); libcurl's global state then lives until the
   process exits. The API key is read from the environment (cv_settings_secret) by cv_llm_new and is
   never logged. */
#ifndef CV_LLM_H
#define CV_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_breaker.h"
#include "cv_config.h"
#include "cv_error.h"
#include "cv_llm_config.h"
#include "cv_llm_json.h"
#include "cv_log.h"

/* Counters since the client was made; safe to read from any thread. */
typedef struct {
    uint64_t calls;           /* cv_llm_chat and cv_llm_chat_for calls */
    uint64_t failures;        /* calls that returned -1 */
    uint64_t short_circuited; /* a model skipped by its open breaker, no request sent to it (a
                                 call may count one for each model) */
    uint64_t attempts;        /* HTTP requests sent */
    uint64_t connections;     /* connections opened for them */
    uint64_t fallbacks;       /* calls that tried the fallback */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cost_micros;                /* the replies' cost_micros */
    uint64_t cache_hits;                 /* calls answered from the cache, nothing sent */
    uint64_t cache_misses;               /* cacheable calls it had no answer for */
    cv_breaker_state_t breaker;          /* the main model's breaker, as the process's clients left it */
    cv_breaker_state_t fallback_breaker; /* the fallback's; CLOSED when there is none */
} cv_llm_stats_t;

typedef struct _cv_llm_t cv_llm_t;

/* A client for config (copied), or NULL with err: no LLM configured, a bad base URL, a fallback
   that is the main model, or an API key variable that is named but not set. log is borrowed, may be NULL; it gets
   breaker moves at warn and each attempt at debug. */
cv_llm_t *cv_llm_new (const cv_llm_config_t *config, cv_log_t *log, cv_error_t *err) CV_MUST_CHECK;
void cv_llm_destroy (cv_llm_t **self_p);

/* Asks for a chat completion of count messages (borrowed), giving up at deadline_ms (absolute,
   ms since the epoch, as an Envelope's deadline). Returns 0 with reply filled, or -1 with err:
     DEADLINE_EXCEEDED  the deadline passed (or was past) before an answer
     UNAVAILABLE        the provider failed (connection, timeout, 429, 5xx), or "circuit open"
     MALFORMED          the answer was not a chat completion (not JSON, no content, too large)
     INVALID            the request was refused (4xx), or a message is not valid UTF-8
   On failure reply still tells the attempts and the latency. Never answered from the cache: as
   cv_llm_chat_for with cache_scope NULL. */
int cv_llm_chat (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, uint64_t deadline_ms,
                 cv_llm_reply_t *reply, cv_error_t *err) CV_MUST_CHECK;

/* The cache scope of messages that hold no personal data (a help-page question, say), whose
   answer every caller may share. Only this constant means it, compared by address: no user id,
   whatever it spells, and not "", which a missing user id often is. */
extern const char cv_llm_scope_shared[];
#define CV_LLM_SCOPE_SHARED cv_llm_scope_shared

/* cv_llm_chat, answered from the answer cache when the client has one and has seen the request
   answered within the TTL; cache_scope (borrowed) says who may share the answer:
     NULL or ""           nobody: not looked up, not stored (a prompt whose data the caller cannot
                          vouch for). Pass NULL when there is no user id; "" is taken as NULL, so
                          that an empty user id (an anonymous session, a field left out) never
                          shares a customer's answer with everyone
     CV_LLM_SCOPE_SHARED  everyone: the messages hold no personal data
     a user id            that user only: the messages hold that user's data; the key includes it
   A cached reply has cached true, attempts 0, tokens 0 and costs 0; its model is the main one.
   A complete answer of the main model (see the cache paragraph above) is stored for the next
   call (unless it is over the cache's byte budget). A call whose deadline has passed is not
   answered from the cache either: it fails with DEADLINE_EXCEEDED, as ever. */
int cv_llm_chat_for (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, const char *cache_scope,
                     uint64_t deadline_ms, cv_llm_reply_t *reply, cv_error_t *err) CV_MUST_CHECK;

/* Drops the stored answer to count messages (borrowed) for cache_scope, as cv_llm_chat_for would
   have found it, for a caller that rejected the answer it was given: the next identical call is
   sent again instead of being served it for the TTL. True when an answer was dropped; false when
   none was stored (or there is no cache, or no scope). */
bool cv_llm_forget (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, const char *cache_scope);

void cv_llm_stats (const cv_llm_t *self, cv_llm_stats_t *stats);

/* The most one cv_llm_chat of count messages (borrowed) can cost, in micros, at the configured
   prices: every byte of the messages' contents a prompt token (a byte-level tokenizer never
   makes more tokens than bytes) and max_tokens completion tokens. Saturates at UINT64_MAX. */
uint64_t cv_llm_worst_cost (const cv_llm_t *self, const cv_llm_message_t *messages, size_t count);

/* The clock for deadlines and the breaker: ms since the epoch, as a deadline is. Default: the
   system's real-time clock. Tests inject one to move the breaker's cool-down without sleeping. */
typedef uint64_t (cv_llm_clock_fn) (void *arg);
void cv_llm_set_clock (cv_llm_t *self, cv_llm_clock_fn *clock, void *arg);

/* The clock for the cache's TTL: ms on a clock that only goes forward, so that a step of the wall
   clock (NTP, an operator) neither keeps answers past their TTL nor drops them all. Default: the
   system's monotonic clock. Every client of one cache must use the same (the process's default,
   or a test's, which moves entries past their TTL without sleeping). */
void cv_llm_set_cache_clock (cv_llm_t *self, cv_llm_clock_fn *clock, void *arg);

/* Structured output: from now on every request asks for content that matches schema (borrowed,
   copied; JSON Schema's structured-output subset, cv_json_schema.h), under name (1..63 of
   [A-Za-z0-9_-]), as OpenAI's response_format {"type": "json_schema", ..., "strict": true},
   instead of the configured format; and an answer whose content is not JSON matching it is
   malformed (MALFORMED, saying where it does not match): counted against the model's breaker, not
   returned, not cached, the fallback asked when there is one, as for any malformed answer. A
   server that ignores response_format therefore cannot hand the caller a shape it did not ask
   for. -1 with err (INVALID) for a bad name or a schema the validator cannot enforce in full. */
int cv_llm_set_json_schema (cv_llm_t *self, const char *name, const json_t *schema, cv_error_t *err) CV_MUST_CHECK;

/* Seeds the backoff's jitter (default: from the time and the address), for repeatable tests. */
void cv_llm_set_seed (cv_llm_t *self, uint64_t seed);

void cv_llm_test (bool verbose);

#endif
