/* A blocking OpenAI-compatible chat-completions client: deadline, retries, fallback model,
   circuit breaker, strict parsing and cost accounting. */
#include "cv_llm.h"

#include "cv_settings.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define EXCERPT_BYTES 160 /* of a server's error text, in an error message */

/* What one attempt means for the rest of the call. */
typedef enum {
    S_OK,         /* answered */
    S_RETRY,      /* transient: the same model may answer next time */
    S_NEXT_MODEL, /* this model will not answer this request; the fallback may */
    S_STOP        /* nothing will answer in time, or at all */
} s_verdict_t;

struct _cv_llm_t {
    cv_llm_config_t config;
    cv_log_t *log;                        /* borrowed, may be NULL */
    CURL *curl;                           /* reused: keeps the connection alive between calls */
    struct curl_slist *headers;
    char endpoint[CV_LLM_URL_MAX + 32];
    char curl_error[CURL_ERROR_SIZE];
    cv_breaker_t *breaker;
    cv_llm_clock_fn *clock;
    void *clock_arg;
    uint64_t jitter;                      /* splitmix64 state */
    /* the answer being read */
    char *body;
    size_t body_size;
    size_t body_capacity;
    bool too_large;
    long retry_after_ms;                  /* from a retry-after-ms header, -1 when none */
    /* counters, written by the owning thread only, read by any */
    _Atomic uint64_t calls;
    _Atomic uint64_t failures;
    _Atomic uint64_t short_circuited;
    _Atomic uint64_t attempts;
    _Atomic uint64_t fallbacks;
    _Atomic uint64_t prompt_tokens;
    _Atomic uint64_t completion_tokens;
    _Atomic double cost;
    _Atomic int breaker_state;
};

/* libcurl's process-wide set-up, done once by the first client. */
static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_code = CURLE_FAILED_INIT;

static void
s_curl_init (void)
{
    s_curl_init_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

const char *
cv_llm_role_name (cv_llm_role_t role)
{
    switch (role) {
    case CV_LLM_SYSTEM:
        return "system";
    case CV_LLM_USER:
        return "user";
    case CV_LLM_ASSISTANT:
        return "assistant";
    }
    return "user";
}

void
cv_llm_reply_reset (cv_llm_reply_t *reply)
{
    assert (reply);
    free (reply->content);
    memset (reply, 0, sizeof *reply);
}

/* ---------------------------------------------------------------------------------------------
   The client */

static uint64_t
s_system_clock (void *arg)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
}

static uint64_t
s_now (const cv_llm_t *self)
{
    return self->clock (self->clock_arg);
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    cv_llm_t *self = arg;
    size_t bytes = size * count;
    if (self->body_size + bytes > (size_t) self->config.max_response_bytes) {
        self->too_large = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (self->body_size + bytes + 1 > self->body_capacity) {
        size_t capacity = self->body_capacity ? self->body_capacity : 4096;
        while (capacity < self->body_size + bytes + 1)
            capacity *= 2;
        char *body = realloc (self->body, capacity);
        if (!body)
            return 0;
        self->body = body;
        self->body_capacity = capacity;
    }
    memcpy (self->body + self->body_size, data, bytes);
    self->body_size += bytes;
    self->body[self->body_size] = '\0';
    return bytes;
}

/* Picks up retry-after-ms (OpenAI, Azure); curl parses the standard Retry-After itself. */
static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    cv_llm_t *self = arg;
    size_t bytes = size * count;
    static const char name[] = "retry-after-ms:";
    if (bytes > sizeof name - 1 && bytes < 64 && strncasecmp (data, name, sizeof name - 1) == 0) {
        char value[64];
        snprintf (value, sizeof value, "%.*s", (int) (bytes - (sizeof name - 1)), data + sizeof name - 1);
        char *end;
        errno = 0;
        double ms = strtod (value, &end);
        while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
            end++;
        if (!errno && end != value && !*end && ms >= 0 && ms < 86400000.0)
            self->retry_after_ms = (long) ms;
    }
    return bytes;
}

cv_llm_t *
cv_llm_new (const cv_llm_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    assert (config->timeout_ms >= 1 && config->connect_timeout_ms >= 1 && config->max_retries >= 0);
    assert (config->backoff_base_ms >= 0 && config->backoff_max_ms >= config->backoff_base_ms);
    assert (config->breaker_threshold >= 1 && config->breaker_cooldown_ms >= 1 && config->max_tokens >= 1);
    assert (config->max_response_bytes >= 1024);
    if (!cv_llm_config_enabled (config)) {
        cv_error_set (err, CV_ERR_INVALID, "llm", "no LLM configured: a base URL and a model are needed");
        return NULL;
    }
    const char *problem = cv_llm_config_problem (config);
    if (problem) {
        cv_error_set (err, CV_ERR_INVALID, "llm", "llm configuration: a setting %s", problem);
        return NULL;
    }
    const char *key = NULL;
    if (config->api_key_env[0]) {
        key = cv_settings_secret (config->api_key_env);
        if (!key || !*key) {
            cv_error_set (err, CV_ERR_INVALID, "llm.api_key_env",
                          "the environment variable %s (llm.api_key_env) holds no API key", config->api_key_env);
            return NULL;
        }
        if (strpbrk (key, "\r\n")) {
            cv_error_set (err, CV_ERR_INVALID, "llm.api_key_env",
                          "the API key in %s contains a line break", config->api_key_env);
            return NULL;
        }
    }
    pthread_once (&s_curl_once, s_curl_init);
    if (s_curl_init_code != CURLE_OK) {
        cv_error_set (err, CV_ERR_INTERNAL, "llm", "libcurl failed to start: %s",
                      curl_easy_strerror (s_curl_init_code));
        return NULL;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        cv_error_set (err, CV_ERR_INTERNAL, "llm", "libcurl could not make a handle");
        return NULL;
    }

    cv_llm_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = *config;
    self->log = log;
    self->curl = curl;
    self->clock = s_system_clock;
    self->jitter = s_system_clock (NULL) ^ ((uint64_t) (uintptr_t) self << 16) ^ (uint64_t) getpid ();
    self->breaker = cv_breaker_new ((unsigned) config->breaker_threshold, (uint64_t) config->breaker_cooldown_ms);
    self->retry_after_ms = -1;
    size_t length = strlen (config->base_url);
    while (length && config->base_url[length - 1] == '/')
        length--;
    snprintf (self->endpoint, sizeof self->endpoint, "%.*s/chat/completions", (int) length, config->base_url);

    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    self->headers = curl_slist_append (self->headers, "Accept: application/json");
    self->headers = curl_slist_append (self->headers, "Expect:"); /* no 100-continue round trip */
    if (key) {
        size_t size = strlen (key) + 32;
        char *line = malloc (size);
        assert (line);
        snprintf (line, size, "Authorization: Bearer %s", key);
        self->headers = curl_slist_append (self->headers, line);
        explicit_bzero (line, size);
        free (line);
    }
    curl_easy_setopt (curl, CURLOPT_URL, self->endpoint);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (curl, CURLOPT_POST, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, self);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, self->curl_error);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "conveyor/" CONVEYOR_VERSION);
    return self;
}

void
cv_llm_destroy (cv_llm_t **self_p)
{
    assert (self_p);
    cv_llm_t *self = *self_p;
    if (!self)
        return;
    curl_easy_cleanup (self->curl);
    for (struct curl_slist *header = self->headers; header; header = header->next)
        explicit_bzero (header->data, strlen (header->data)); /* the API key */
    curl_slist_free_all (self->headers);
    cv_breaker_destroy (&self->breaker);
    free (self->body);
    free (self);
    *self_p = NULL;
}

void
cv_llm_set_clock (cv_llm_t *self, cv_llm_clock_fn *clock, void *arg)
{
    assert (self && clock);
    self->clock = clock;
    self->clock_arg = arg;
}

void
cv_llm_set_seed (cv_llm_t *self, uint64_t seed)
{
    assert (self);
    self->jitter = seed;
}

void
cv_llm_stats (const cv_llm_t *self, cv_llm_stats_t *stats)
{
    assert (self && stats);
    stats->calls = atomic_load_explicit (&self->calls, memory_order_relaxed);
    stats->failures = atomic_load_explicit (&self->failures, memory_order_relaxed);
    stats->short_circuited = atomic_load_explicit (&self->short_circuited, memory_order_relaxed);
    stats->attempts = atomic_load_explicit (&self->attempts, memory_order_relaxed);
    stats->fallbacks = atomic_load_explicit (&self->fallbacks, memory_order_relaxed);
    stats->prompt_tokens = atomic_load_explicit (&self->prompt_tokens, memory_order_relaxed);
    stats->completion_tokens = atomic_load_explicit (&self->completion_tokens, memory_order_relaxed);
    stats->cost = atomic_load_explicit (&self->cost, memory_order_relaxed);
    stats->breaker = (cv_breaker_state_t) atomic_load_explicit (&self->breaker_state, memory_order_relaxed);
}

static void
s_count (_Atomic uint64_t *counter, uint64_t amount)
{
    atomic_fetch_add_explicit (counter, amount, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
   One call */

static uint64_t
s_random (cv_llm_t *self)
{
    /* splitmix64: small, fast, and good enough to spread retries apart */
    uint64_t z = (self->jitter += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Full jitter: uniform in [0, min(max, base * 2^retry)]. */
static uint64_t
s_backoff_ms (cv_llm_t *self, long retry)
{
    uint64_t ceiling = (uint64_t) self->config.backoff_base_ms;
    for (long i = 0; i < retry && ceiling < (uint64_t) self->config.backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > (uint64_t) self->config.backoff_max_ms)
        ceiling = (uint64_t) self->config.backoff_max_ms;
    return ceiling ? s_random (self) % (ceiling + 1) : 0;
}

static void
s_sleep_ms (uint64_t ms)
{
    struct timespec wait = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000};
    while (nanosleep (&wait, &wait) == -1 && errno == EINTR)
        ;
}

/* The request body for model, or NULL with err when a message is not valid UTF-8. */
static char *
s_request_body (cv_llm_t *self, const char *model, const cv_llm_message_t *messages, size_t count,
                cv_error_t *err)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++) {
        assert (messages[i].content);
        json_t *content = json_string (messages[i].content);
        if (!content) {
            json_decref (list);
            cv_error_set (err, CV_ERR_INVALID, "messages", "llm: message %zu is not valid UTF-8", i + 1);
            return NULL;
        }
        const char *role = cv_llm_role_name (messages[i].role);
        json_array_append_new (list, json_pack ("{s:s, s:o}", "role", role, "content", content));
    }
    json_t *request = json_pack ("{s:s, s:o, s:f, s:I}", "model", model, "messages", list, "temperature",
                                 self->config.temperature, "max_tokens", (json_int_t) self->config.max_tokens);
    assert (request);
    if (self->config.json_object)
        json_object_set_new (request, "response_format", json_pack ("{s:s}", "type", "json_object"));
    char *text = json_dumps (request, JSON_COMPACT | JSON_REAL_PRECISION (6));
    json_decref (request);
    assert (text);
    return text;
}

/* A short, log-safe excerpt of text: printable ASCII, others as '?'. */
static void
s_excerpt (const char *text, size_t size, char *out, size_t out_size)
{
    size_t used = 0, i = 0;
    for (; i < size && used + 4 < out_size; i++) {
        unsigned char c = (unsigned char) text[i];
        out[used++] = c >= ' ' && c < 0x7f ? (char) c : c == '\n' || c == '\t' ? ' ' : '?';
    }
    if (i < size) /* cut short: say so */
        memcpy (out + used, "...", 4);
    else
        out[used] = '\0';
}

/* What a failed answer's body says: OpenAI's {"error": {"message": ...}} and its cousins, or the
   start of the raw body. */
static void
s_error_detail (const char *body, size_t size, char *out, size_t out_size)
{
    out[0] = '\0';
    if (!size)
        return;
    json_t *root = json_loadb (body, size, 0, NULL);
    json_t *error = json_object_get (root, "error");
    const char *message = NULL;
    if (json_is_string (error))
        message = json_string_value (error);
    else if (json_is_string (json_object_get (error, "message")))
        message = json_string_value (json_object_get (error, "message"));
    else if (json_is_string (json_object_get (root, "message")))
        message = json_string_value (json_object_get (root, "message"));
    else if (json_is_string (json_object_get (root, "detail")))
        message = json_string_value (json_object_get (root, "detail"));
    if (message)
        s_excerpt (message, strlen (message), out, out_size);
    else
        s_excerpt (body, size, out, out_size);
    json_decref (root);
}

static int
s_token_count (json_t *usage, const char *name, long *out, cv_error_t *err)
{
    json_t *value = json_object_get (usage, name);
    if (!value)
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < 0)
        return cv_error_set (err, CV_ERR_MALFORMED, name, "usage.%s is not a whole number", name);
    *out = (long) json_integer_value (value);
    return 0;
}

/* Reads a 2xx body into reply, strictly; -1 with err (MALFORMED) when it is no chat completion. */
static int
s_parse_answer (cv_llm_t *self, const char *body, size_t size, cv_llm_reply_t *reply, cv_error_t *err)
{
    json_error_t error;
    json_t *root = json_loadb (body ? body : "", size, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (root)) {
        char excerpt[64];
        s_excerpt (body ? body : "", size, excerpt, sizeof excerpt);
        cv_error_set (err, CV_ERR_MALFORMED, "body", "the answer is not a JSON object (%s): \"%s\"",
                      root ? "another JSON value" : error.text, excerpt);
        json_decref (root);
        return -1;
    }
    json_t *choices = json_object_get (root, "choices");
    json_t *message = json_object_get (json_array_get (choices, 0), "message");
    json_t *content = json_object_get (message, "content");
    json_t *finish = json_object_get (json_array_get (choices, 0), "finish_reason");
    json_t *usage = json_object_get (root, "usage");
    int rc = 0;
    if (!json_is_array (choices) || json_array_size (choices) == 0)
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices", "the answer has no choices");
    else if (!json_is_object (message))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices[0].message", "the answer's first choice has no message");
    else if (!json_is_string (content))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices[0].message.content",
                          "the answer's content is %s, not a string", content ? "another JSON value" : "missing");
    else if (usage && !json_is_null (usage) && !json_is_object (usage))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "usage", "the answer's usage is not an object");
    if (rc == 0 && json_is_object (usage))
        rc = s_token_count (usage, "prompt_tokens", &reply->prompt_tokens, err)
             || s_token_count (usage, "completion_tokens", &reply->completion_tokens, err) ? -1 : 0;
    if (rc == 0) {
        size_t length = json_string_length (content);
        reply->content = malloc (length + 1);
        assert (reply->content);
        memcpy (reply->content, json_string_value (content), length + 1);
        reply->has_usage = json_is_object (usage);
        reply->cost = (double) reply->prompt_tokens / 1000.0 * self->config.price_prompt_per_1k
                      + (double) reply->completion_tokens / 1000.0 * self->config.price_completion_per_1k;
        if (json_is_string (finish))
            snprintf (reply->finish_reason, sizeof reply->finish_reason, "%s", json_string_value (finish));
    }
    json_decref (root);
    return rc;
}

/* Tells the breaker how an attempt went, and the log when that moved it. */
static void
s_record (cv_llm_t *self, bool healthy)
{
    cv_breaker_state_t before = cv_breaker_state (self->breaker);
    uint64_t now = s_now (self);
    if (healthy)
        cv_breaker_success (self->breaker, now);
    else
        cv_breaker_failure (self->breaker, now);
    cv_breaker_state_t after = cv_breaker_state (self->breaker);
    atomic_store_explicit (&self->breaker_state, (int) after, memory_order_relaxed);
    if (before == after || !self->log)
        return;
    if (after == CV_BREAKER_OPEN)
        cv_log_warn (self->log, "llm: circuit %s -> open after %u consecutive failures, for %ld ms",
                     cv_breaker_state_name (before), cv_breaker_failures (self->breaker),
                     self->config.breaker_cooldown_ms);
    else
        cv_log_warn (self->log, "llm: circuit %s -> %s, the endpoint answers again", cv_breaker_state_name (before),
                     cv_breaker_state_name (after));
}

static bool
s_allow (cv_llm_t *self)
{
    bool allowed = cv_breaker_allow (self->breaker, s_now (self));
    cv_breaker_state_t state = cv_breaker_state (self->breaker);
    if (allowed && state == CV_BREAKER_HALF_OPEN && self->log)
        cv_log_warn (self->log, "llm: circuit half-open, sending a trial request");
    atomic_store_explicit (&self->breaker_state, (int) state, memory_order_relaxed);
    return allowed;
}

/* Sends body once, with left ms to go before the deadline. Fills reply on S_OK, else err;
   *wait_ms is the wait the server asked for before a retry, or -1. Tells the breaker the outcome. */
static s_verdict_t
s_attempt (cv_llm_t *self, const char *body, uint64_t left, cv_llm_reply_t *reply, long *wait_ms, cv_error_t *err)
{
    assert (left > 0);
    *wait_ms = -1;
    bool capped = left <= (uint64_t) self->config.timeout_ms;
    long timeout = capped ? (long) left : self->config.timeout_ms;
    long connect_timeout = self->config.connect_timeout_ms < timeout ? self->config.connect_timeout_ms : timeout;
    curl_easy_setopt (self->curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    self->body_size = 0;
    if (self->body)
        self->body[0] = '\0';
    self->too_large = false;
    self->retry_after_ms = -1;
    self->curl_error[0] = '\0';

    CURLcode code = curl_easy_perform (self->curl);
    reply->attempts++;
    s_count (&self->attempts, 1);

    if (code != CURLE_OK) {
        if (code == CURLE_WRITE_ERROR && self->too_large) {
            s_record (self, false);
            cv_error_set (err, CV_ERR_MALFORMED, "body", "the answer is over %ld bytes",
                          self->config.max_response_bytes);
            return S_NEXT_MODEL;
        }
        s_record (self, false);
        if (code == CURLE_OPERATION_TIMEDOUT) {
            curl_off_t spent_us = 0;
            curl_easy_getinfo (self->curl, CURLINFO_TOTAL_TIME_T, &spent_us);
            if (capped && spent_us / 1000 + 1 >= timeout) {
                cv_error_set (err, CV_ERR_DEADLINE_EXCEEDED, "llm", "no answer before the deadline (%ld ms left)",
                              timeout);
                return S_STOP;
            }
            cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "no answer in %ld ms",
                          (long) (spent_us / 1000));
            return S_RETRY;
        }
        const char *why = self->curl_error[0] ? self->curl_error : curl_easy_strerror (code);
        if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
            cv_error_set (err, CV_ERR_INVALID, "llm.base_url", "%s", why);
            return S_STOP;
        }
        cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "%s", why);
        return S_RETRY;
    }

    long status = 0;
    curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        int rc = s_parse_answer (self, self->body, self->body_size, reply, err);
        s_record (self, rc == 0);
        return rc == 0 ? S_OK : S_NEXT_MODEL;
    }
    char detail[EXCERPT_BYTES];
    s_error_detail (self->body, self->body_size, detail, sizeof detail);
    if (status == 408 || status == 429 || status >= 500) {
        s_record (self, false);
        curl_off_t retry_after_s = 0;
        curl_easy_getinfo (self->curl, CURLINFO_RETRY_AFTER, &retry_after_s);
        if (self->retry_after_ms >= 0)
            *wait_ms = self->retry_after_ms;
        else if (retry_after_s > 0)
            *wait_ms = retry_after_s > 86400 ? 86400000L : (long) retry_after_s * 1000;
        cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "HTTP %ld%s%s", status, *detail ? ": " : "", detail);
        return S_RETRY;
    }
    /* The server is up and refused this request: nothing for the breaker to count. */
    s_record (self, true);
    if (status == 401 || status == 403) {
        cv_error_set (err, CV_ERR_INVALID, "llm.api_key_env", "HTTP %ld, the API key was refused%s%s", status,
                      *detail ? ": " : "", detail);
        return S_STOP;
    }
    cv_error_set (err, CV_ERR_INVALID, "llm", "HTTP %ld%s%s", status, *detail ? ": " : "", detail);
    return S_NEXT_MODEL;
}

/* The attempts of one model: 1 + max_retries for the main one, 1 for the fallback. */
static s_verdict_t
s_ask_model (cv_llm_t *self, const char *model, long tries, const char *body, uint64_t deadline_ms,
             cv_llm_reply_t *reply, cv_error_t *err)
{
    s_verdict_t verdict = S_RETRY;
    for (long attempt = 0; attempt < tries; attempt++) {
        /* The deadline first: a trial the breaker lets through must be reported. */
        uint64_t now = s_now (self);
        if (now >= deadline_ms) {
            cv_error_set (err, CV_ERR_DEADLINE_EXCEEDED, "llm", "the deadline passed before attempt %u",
                          reply->attempts + 1);
            return S_STOP;
        }
        if (!s_allow (self)) {
            if (reply->attempts == 0) {
                s_count (&self->short_circuited, 1);
                uint64_t retry_at = cv_breaker_retry_at (self->breaker);
                cv_error_set (err, CV_ERR_UNAVAILABLE, "llm",
                              "circuit open after %u consecutive failures; next trial in %llu ms",
                              cv_breaker_failures (self->breaker),
                              (unsigned long long) (retry_at > now ? retry_at - now : 0));
            } else {
                cv_error_t last = *err;
                cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "circuit now open; last attempt: %s", last.message);
            }
            return S_STOP;
        }
        long wait_ms;
        verdict = s_attempt (self, body, deadline_ms - now, reply, &wait_ms, err);
        if (self->log && cv_log_verbose (self->log))
            cv_log_debug (self->log, "llm: %s attempt %u: %s", model, reply->attempts,
                          verdict == S_OK ? "answered" : err->message);
        if (verdict != S_RETRY || attempt + 1 == tries)
            return verdict;
        uint64_t wait = wait_ms >= 0 ? (uint64_t) wait_ms : s_backoff_ms (self, attempt);
        now = s_now (self);
        if (now + wait >= deadline_ms) {
            if (wait_ms >= 0)
                cv_error_prefix (err, "the server asks to wait %ld ms, past the deadline", wait_ms);
            return S_NEXT_MODEL; /* a retry cannot finish in time; the fallback may still */
        }
        s_sleep_ms (wait);
    }
    return verdict;
}

static int
s_chat (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, uint64_t deadline_ms, cv_llm_reply_t *reply,
        cv_error_t *err)
{
    const char *models[2] = {self->config.model, self->config.fallback_model[0] ? self->config.fallback_model : NULL};
    s_verdict_t verdict = S_STOP;
    for (int index = 0; index < 2 && models[index]; index++) {
        char *body = s_request_body (self, models[index], messages, count, err);
        if (!body)
            return -1;
        if (index == 1)
            s_count (&self->fallbacks, 1);
        cv_error_t attempt_err;
        cv_error_clear (&attempt_err);
        verdict = s_ask_model (self, models[index], index == 0 ? 1 + self->config.max_retries : 1, body,
                               deadline_ms, reply, &attempt_err);
        free (body);
        if (verdict == S_OK) {
            snprintf (reply->model, sizeof reply->model, "%s", models[index]);
            reply->fallback = index == 1;
            return 0;
        }
        if (index == 0) {
            *err = attempt_err;
            cv_error_prefix (err, "model %s", models[index]);
        } else {
            /* Both models failed: the fallback's error decides, the main one's is kept for the log. */
            cv_error_t main_err = *err;
            *err = attempt_err;
            cv_error_prefix (err, "model %s", models[index]);
            size_t used = strlen (err->message);
            snprintf (err->message + used, sizeof err->message - used, "; %s", main_err.message);
        }
        if (verdict == S_STOP)
            break;
    }
    cv_error_prefix (err, "llm call failed after %u attempt%s", reply->attempts, reply->attempts == 1 ? "" : "s");
    return -1;
}

int
cv_llm_chat (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, uint64_t deadline_ms,
             cv_llm_reply_t *reply, cv_error_t *err)
{
    assert (self && reply);
    assert (messages && count > 0);
    cv_error_t ignored;
    if (!err)
        err = &ignored;
    cv_llm_reply_reset (reply);
    uint64_t started = s_now (self);
    s_count (&self->calls, 1);
    int rc = s_chat (self, messages, count, deadline_ms, reply, err);
    uint64_t now = s_now (self);
    reply->latency_ms = now > started ? now - started : 0;
    if (rc) {
        s_count (&self->failures, 1);
        return -1;
    }
    s_count (&self->prompt_tokens, (uint64_t) reply->prompt_tokens);
    s_count (&self->completion_tokens, (uint64_t) reply->completion_tokens);
    atomic_store_explicit (&self->cost, atomic_load_explicit (&self->cost, memory_order_relaxed) + reply->cost,
                           memory_order_relaxed);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   JSON answers */

json_t *
cv_llm_json_content (const cv_llm_reply_t *reply, cv_error_t *err)
{
    assert (reply);
    const char *content = reply->content ? reply->content : "";
    const char *start = content;
    const char *end = content + strlen (content);
    /* Models asked for JSON often wrap it in a Markdown fence, sometimes with words around it. */
    const char *fence = strstr (content, "```");
    if (fence) {
        const char *inside = strchr (fence, '\n');
        const char *closing = inside ? strstr (inside, "```") : NULL;
        if (inside && closing) {
            start = inside + 1;
            end = closing;
        }
    }
    while (start < end && isspace ((unsigned char) *start))
        start++;
    while (end > start && isspace ((unsigned char) end[-1]))
        end--;
    json_error_t error;
    json_t *value = json_loadb (start, (size_t) (end - start), JSON_REJECT_DUPLICATES, &error);
    if (json_is_object (value))
        return value;
    char excerpt[64];
    s_excerpt (content, strlen (content), excerpt, sizeof excerpt);
    if (value)
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM answered JSON that is not an object: \"%s\"", excerpt);
    else if (start == end)
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM answered no JSON (empty content)");
    else
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM's answer is not JSON (%s): \"%s\"", error.text,
                      excerpt);
    json_decref (value);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
   Self-test: everything that needs no HTTP server. The behaviour against a server that answers,
   fails, stalls and lies is tested with the stand-in LLM server (tests/fakes, llm_client_test). */

static uint64_t
s_test_clock (void *arg)
{
    return *(uint64_t *) arg;
}

static void
s_test_config (bool verbose)
{
    cv_error_t err;
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "http://127.0.0.1:8000/v1");
    snprintf (config.model, sizeof config.model, "small");
    snprintf (config.api_key_env, sizeof config.api_key_env, "CV_LLM_TEST_KEY");
    /* A key variable that is named but empty is a start-up error; a set one is never logged. */
    unsetenv ("CV_LLM_TEST_KEY");
    assert (!cv_llm_new (&config, NULL, &err));
    assert (strstr (err.message, "CV_LLM_TEST_KEY") && err.code == CV_ERR_INVALID);
    cv_llm_config_t none;
    cv_llm_config_defaults (&none);
    assert (!cv_llm_new (&none, NULL, &err));
    assert (strstr (err.message, "no LLM configured"));
}

static void
s_test_parsing (void)
{
    cv_error_t err;
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "http://127.0.0.1:1/v1/");
    snprintf (config.model, sizeof config.model, "m");
    config.price_prompt_per_1k = 2.0;
    config.price_completion_per_1k = 4.0;
    config.json_object = true;
    cv_llm_t *llm = cv_llm_new (&config, NULL, &err);
    assert (llm);
    assert (strcmp (llm->endpoint, "http://127.0.0.1:1/v1/chat/completions") == 0);

    /* The request body. */
    cv_llm_message_t messages[] = {{CV_LLM_SYSTEM, "Answer in JSON."}, {CV_LLM_USER, "caf\xc3\xa9?"}};
    char *body = s_request_body (llm, "m", messages, 2, &err);
    json_t *sent = json_loads (body, 0, NULL);
    free (body);
    json_t *expected = json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:f, s:i, s:{s:s}}", "model", "m", "messages",
                                  "role", "system", "content", "Answer in JSON.", "role", "user", "content",
                                  "caf\xc3\xa9?", "temperature", 0.0, "max_tokens", 256, "response_format", "type",
                                  "json_object");
    assert (json_equal (sent, expected));
    json_decref (sent);
    json_decref (expected);
    cv_llm_message_t broken[] = {{CV_LLM_USER, "\xff\xfe"}};
    assert (!s_request_body (llm, "m", broken, 1, &err));
    assert (err.code == CV_ERR_INVALID && strstr (err.message, "UTF-8"));

    /* Answers, good and malformed. */
    cv_llm_reply_t reply = {0};
    const char *good = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
                       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500}}";
    assert (s_parse_answer (llm, good, strlen (good), &reply, &err) == 0);
    assert (strcmp (reply.content, "hi") == 0 && strcmp (reply.finish_reason, "stop") == 0);
    assert (reply.has_usage && reply.prompt_tokens == 1000 && reply.completion_tokens == 500);
    assert (reply.cost == 2.0 + 2.0);
    cv_llm_reply_reset (&reply);
    const char *no_usage = "{\"choices\":[{\"message\":{\"content\":\"\"}}],\"usage\":null}";
    assert (s_parse_answer (llm, no_usage, strlen (no_usage), &reply, &err) == 0);
    assert (!reply.has_usage && reply.cost == 0 && strcmp (reply.content, "") == 0);
    cv_llm_reply_reset (&reply);
    struct {
        const char *body;
        const char *field;
    } malformed[] = {
        {"", "body"},
        {"<html>502 Bad Gateway</html>", "body"},
        {"[1, 2]", "body"},
        {"{\"id\":\"x\",\"object\":\"chat.completion\"}", "choices"},
        {"{\"choices\":[]}", "choices"},
        {"{\"choices\":[{\"text\":\"legacy\"}]}", "choices[0].message"},
        {"{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}", "choices[0].message.content"},
        {"{\"choices\":[{\"message\":{\"content\":42}}]}", "choices[0].message.content"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":\"7\"}}", "prompt_tokens"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"completion_tokens\":-1}}", "completion_tokens"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":7}", "usage"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}]} trailing", "body"},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert (s_parse_answer (llm, malformed[i].body, strlen (malformed[i].body), &reply, &err) == -1);
        assert (err.code == CV_ERR_MALFORMED);
        assert (strcmp (err.field, malformed[i].field) == 0);
        assert (!reply.content);
        cv_llm_reply_reset (&reply);
    }

    /* What a failed answer says. */
    char detail[EXCERPT_BYTES];
    const char *openai = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}";
    s_error_detail (openai, strlen (openai), detail, sizeof detail);
    assert (strcmp (detail, "Rate limit reached") == 0);
    s_error_detail ("upstream\nreset\x01", 15, detail, sizeof detail);
    assert (strcmp (detail, "upstream reset?") == 0);
    char long_text[1000];
    memset (long_text, 'x', sizeof long_text);
    s_error_detail (long_text, sizeof long_text, detail, sizeof detail);
    assert (strlen (detail) < sizeof detail && strcmp (detail + strlen (detail) - 3, "...") == 0);

    /* Backoff: full jitter under a doubling ceiling, repeatable for a seed. */
    cv_llm_set_seed (llm, 42);
    uint64_t first[8];
    for (long retry = 0; retry < 8; retry++) {
        first[retry] = s_backoff_ms (llm, retry);
        uint64_t ceiling = 100ULL << retry;
        assert (first[retry] <= (ceiling < 2000 ? ceiling : 2000));
    }
    cv_llm_set_seed (llm, 42);
    for (long retry = 0; retry < 8; retry++)
        assert (s_backoff_ms (llm, retry) == first[retry]);
    cv_llm_destroy (&llm);
    cv_llm_destroy (&llm);
    assert (!llm);
}

static void
s_test_json_content (void)
{
    cv_error_t err;
    cv_llm_reply_t reply = {0};
    struct {
        const char *content;
        const char *intent; /* NULL: must fail */
    } cases[] = {
        {"{\"intent\": \"card_arrival\"}", "card_arrival"},
        {"  \n{\"intent\":\"a\"}\n", "a"},
        {"```json\n{\"intent\": \"b\"}\n```", "b"},
        {"```\n{\"intent\": \"c\"}\n```\n", "c"},
        {"Here you are:\n```json\n{\"intent\": \"d\"}\n```\nAnything else?", "d"},
        {"", NULL},
        {"I think it is card_arrival.", NULL},
        {"[\"card_arrival\"]", NULL},
        {"{\"intent\": \"x\"} and more", NULL},
        {"{\"intent\": \"x\", \"intent\": \"y\"}", NULL},
        {"```json\n{\"intent\": \n```", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply.content = strdup (cases[i].content);
        json_t *value = cv_llm_json_content (&reply, &err);
        if (cases[i].intent) {
            assert (value);
            assert (strcmp (json_string_value (json_object_get (value, "intent")), cases[i].intent) == 0);
        } else {
            assert (!value);
            assert (err.code == CV_ERR_MALFORMED && strcmp (err.field, "content") == 0);
        }
        json_decref (value);
        cv_llm_reply_reset (&reply);
    }
    /* No content at all, as after a failed call. */
    assert (!cv_llm_json_content (&reply, &err));
}

/* A real socket that refuses connections: bound, never listening. */
static void
s_test_refused (bool verbose)
{
    int sock = socket (AF_INET, SOCK_STREAM, 0);
    assert (sock >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert (bind (sock, (struct sockaddr *) &address, sizeof address) == 0);
    socklen_t size = sizeof address;
    assert (getsockname (sock, (struct sockaddr *) &address, &size) == 0);

    cv_error_t err;
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "http://127.0.0.1:%d/v1", ntohs (address.sin_port));
    snprintf (config.model, sizeof config.model, "m");
    config.max_retries = 1;
    config.backoff_base_ms = 1;
    config.backoff_max_ms = 5;
    config.breaker_threshold = 3;
    config.breaker_cooldown_ms = 1000;
    cv_log_t *log = cv_log_new ("cv_llm_test", "selftest", verbose);
    cv_llm_t *llm = cv_llm_new (&config, verbose ? log : NULL, &err);
    assert (llm);
    uint64_t now = s_system_clock (NULL);
    cv_llm_set_clock (llm, s_test_clock, &now);
    cv_llm_message_t hello = {CV_LLM_USER, "hello"};
    cv_llm_reply_t reply = {0};

    /* A refused connection is retried, then reported. */
    assert (cv_llm_chat (llm, &hello, 1, now + 5000, &reply, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE);
    assert (reply.attempts == 2 && !reply.content);
    if (verbose)
        printf ("  %s\n", err.message);

    /* The third failure opens the breaker, mid-call. */
    assert (cv_llm_chat (llm, &hello, 1, now + 5000, &reply, &err) == -1);
    assert (reply.attempts == 1 && strstr (err.message, "circuit now open"));
    cv_llm_stats_t stats;
    cv_llm_stats (llm, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN && stats.attempts == 3);

    /* Open: refused at once, nothing sent. */
    assert (cv_llm_chat (llm, &hello, 1, now + 5000, &reply, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE && strstr (err.message, "circuit open") && reply.attempts == 0);

    /* A deadline already passed: nothing sent either. */
    now += 1000; /* the cool-down is over, too */
    assert (cv_llm_chat (llm, &hello, 1, now - 1, &reply, &err) == -1);
    assert (err.code == CV_ERR_DEADLINE_EXCEEDED && reply.attempts == 0);

    cv_llm_stats (llm, &stats);
    assert (stats.calls == 4 && stats.failures == 4 && stats.short_circuited == 1 && stats.attempts == 3);
    cv_llm_reply_reset (&reply);
    cv_llm_destroy (&llm);
    cv_log_destroy (&log);
    close (sock);
}

void
cv_llm_test (bool verbose)
{
    s_test_config (verbose);
    s_test_parsing ();
    s_test_json_content ();
    s_test_refused (verbose);
    if (verbose)
        printf ("cv_llm: ok\n");
}
