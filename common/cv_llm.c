/* A blocking OpenAI-compatible chat-completions client: deadline, retries, a fallback model or
   endpoint, the process's shared circuit breakers and answer cache, strict parsing and cost
   accounting. */
#include "cv_llm.h"

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
#include <czmq.h>

#include "cv_alloc.h"
#include "cv_budget.h"
#include "cv_buffer.h"
#include "cv_http.h"
#include "cv_json_schema.h"
#include "cv_llm_breakers.h"
#include "cv_llm_cache.h"
#include "cv_metrics.h"
#include "cv_settings.h"

#define EXCERPT_BYTES 160 /* of a server's error text, in an error message */
/* what OpenAI allows in a response_format's schema name */
#define SCHEMA_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* What one attempt means for the rest of the call. */
typedef enum {
    S_OK,          /* answered */
    S_RETRY,       /* transient: the same model may answer next time */
    S_NEXT_MODEL,  /* this model will not answer this request; the fallback may */
    S_KEY_REFUSED, /* the endpoint refused the key: only another endpoint may answer */
    S_STOP         /* nothing will answer in time, or at all */
} s_verdict_t;

/* Where one model answers: the main one, or the fallback. */
typedef struct {
    char model[CV_LLM_NAME_MAX];
    char label[CV_LLM_NAME_MAX + CV_LLM_URL_MAX + 8]; /* the model, and where when not the main endpoint */
    char endpoint[CV_LLM_URL_MAX + 32];               /* .../chat/completions */
    char shown[CV_LLM_URL_MAX + 32];                  /* the endpoint, any password in it masked: for metrics */
    struct curl_slist *headers;                       /* the key's among them */
    cv_breaker_t *breaker;                            /* the process's for endpoint and model */
} s_route_t;

struct _cv_llm_t {
    cv_llm_config_t config;
    cv_llm_prices_t prices; /* config's, in micros */
    cv_log_t *log;          /* borrowed, may be NULL */
    CURL *curl;             /* reused for every attempt */
    CURLM *multi;           /* runs curl's transfers, and keeps their connections alive between calls */
    s_route_t routes[2];    /* the main model's, then the fallback's */
    int route_count;
    cv_llm_cache_t *cache;   /* the process's for the main endpoint; NULL when cache_ttl_ms is 0 */
    json_t *response_format; /* cv_llm_set_json_schema's, with the schema answers must match; NULL: config's */
    const json_t *schema;    /* ...inside it */
    char schema_name[CV_LLM_NAME_MAX];
    char curl_error[CURL_ERROR_SIZE];
    cv_llm_clock_fn *clock; /* deadlines and breakers: the epoch's */
    void *clock_arg;
    cv_llm_clock_fn *cache_clock; /* the cache's TTL: the monotonic one's */
    void *cache_clock_arg;
    uint64_t jitter; /* splitmix64 state */
    /* the answer being read */
    cv_buffer_t body;
    bool too_large;
    bool request_sent;   /* libcurl has a connection and begins to send the request... */
    uint64_t sent_at_ms; /* ...at this monotonic time: the first-byte limit runs from here */
    bool status_seen;    /* the final answer's status line has arrived (not a 1xx one's) */
    long retry_after_ms; /* from a retry-after-ms header, -1 when none */
    /* counters, written by the owning thread only, read by any */
    _Atomic uint64_t calls;
    _Atomic uint64_t failures;
    _Atomic uint64_t short_circuited;
    _Atomic uint64_t attempts;
    _Atomic uint64_t fallbacks;
    _Atomic uint64_t prompt_tokens;
    _Atomic uint64_t completion_tokens;
    _Atomic uint64_t cost_micros;
    _Atomic uint64_t connections;
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;
};

/* ---------------------------------------------------------------------------------------------
   Metrics, the process's (cv_metrics): every client's calls, tokens, cost, cache and breakers */

static struct {
    cv_metric_family_t *calls;    /* conveyor_llm_calls_total{model, outcome} */
    cv_metric_family_t *tokens;   /* conveyor_llm_tokens_total{model, kind} */
    cv_metric_family_t *cost;     /* conveyor_llm_cost_total{model} */
    cv_metric_family_t *cache;    /* conveyor_cache_lookups_total{tier, result} */
    cv_metric_family_t *breakers; /* conveyor_llm_breaker_state{endpoint, model} */
} s_metrics;
static pthread_once_t s_metrics_once = PTHREAD_ONCE_INIT;

static void
s_metrics_make (void)
{
    cv_metrics_t *registry = cv_metrics_process ();
    s_metrics.calls = cv_metrics_counter (registry, "conveyor_llm_calls_total",
                                          "LLM calls, by the model that answered (the main one for a call that "
                                          "failed or came from the cache) and outcome: answered, cached, failed.",
                                          "model,outcome");
    s_metrics.tokens =
        cv_metrics_counter (registry, "conveyor_llm_tokens_total",
                            "Tokens the LLM answers used, by model and kind: prompt, completion.", "model,kind");
    s_metrics.cost = cv_metrics_counter (registry, "conveyor_llm_cost_total",
                                         "What the LLM answers cost, in the agent's cost units, by model.", "model");
    s_metrics.cache = cv_metrics_cache_lookups (registry);
    s_metrics.breakers =
        cv_metrics_gauge (registry, "conveyor_llm_breaker_state",
                          "An LLM endpoint and model's circuit: 0 closed, 1 half-open, 2 open.", "endpoint,model");
}

static void
s_metrics_call (const char *model, const char *outcome, const cv_llm_reply_t *reply)
{
    pthread_once (&s_metrics_once, s_metrics_make);
    cv_metric_add (cv_metric_with (s_metrics.calls, model, outcome), 1);
    if (reply) {
        cv_metric_add (cv_metric_with (s_metrics.tokens, model, "prompt"), (double) reply->prompt_tokens);
        cv_metric_add (cv_metric_with (s_metrics.tokens, model, "completion"), (double) reply->completion_tokens);
        cv_metric_add (cv_metric_with (s_metrics.cost, model), (double) reply->cost_micros / 1e6);
    }
}

static void
s_metrics_cache (bool hit)
{
    pthread_once (&s_metrics_once, s_metrics_make);
    cv_metric_add (cv_metric_with (s_metrics.cache, "llm", hit ? "hit" : "miss"), 1);
}

static void
s_metrics_breaker (const s_route_t *route, cv_breaker_state_t state)
{
    pthread_once (&s_metrics_once, s_metrics_make);
    cv_metric_set (cv_metric_with (s_metrics.breakers, route->shown, route->model), cv_breaker_state_number (state));
}

/* ---------------------------------------------------------------------------------------------
   The client */

static uint64_t
s_system_clock (void *arg)
{
    return (uint64_t) zclock_time ();
}

static uint64_t
s_monotonic_clock (void *arg)
{
    return (uint64_t) zclock_mono ();
}

static uint64_t
s_now (const cv_llm_t *self)
{
    return self->clock (self->clock_arg);
}

static uint64_t
s_cache_now (const cv_llm_t *self)
{
    return self->cache_clock (self->cache_clock_arg);
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    cv_llm_t *self = arg;
    size_t bytes = size * count;
    if (!cv_buffer_append (&self->body, data, bytes, (size_t) self->config.max_response_bytes)) {
        self->too_large = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return bytes;
}

/* Notes when the request begins to go out, for first_byte_timeout_ms: libcurl calls this once it
   has a connection (new, with its TLS handshake and any proxy tunnel, or reused), just before it
   sends the request, the moment its pretransfer time measures. */
static int
s_on_prereq (void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    cv_llm_t *self = arg;
    self->sent_at_ms = (uint64_t) zclock_mono ();
    self->request_sent = true;
    return CURL_PREREQFUNC_OK;
}

/* Whether a header line is the status line of a final answer ("HTTP/1.1 200 OK", "HTTP/2 503"):
   an interim one (100 Continue, 103 Early Hints) does not begin the answer, and a server may send
   one at once and then stall. */
static bool
s_final_status_line (const char *data, size_t bytes)
{
    if (bytes < 5 || strncmp (data, "HTTP/", 5) != 0)
        return false;
    const char *space = memchr (data, ' ', bytes);
    if (!space || (size_t) (space - data) + 4 > bytes)
        return false;
    return isdigit ((unsigned char) space[1]) && isdigit ((unsigned char) space[2])
           && isdigit ((unsigned char) space[3]) && space[1] >= '2';
}

/* Notes that the server has begun to answer (for first_byte_timeout_ms), and picks up
   retry-after-ms (OpenAI, Azure); curl parses the standard Retry-After itself. */
static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    cv_llm_t *self = arg;
    size_t bytes = size * count;
    if (!self->status_seen && s_final_status_line (data, bytes))
        self->status_seen = true;
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

/* The next route: model at base_url, with the key in the variable key_env ("" for none; key_field
   names the setting that chose it), and the process's breaker for them. -1 with err when the key
   is named but unusable. */
static int
s_route_init (cv_llm_t *self, const char *base_url, const char *model, const char *key_env, const char *key_field,
              cv_error_t *err)
{
    assert (self->route_count < 2);
    const char *key = NULL;
    if (key_env[0]) {
        key = cv_settings_secret (key_env);
        if (!key || !*key)
            return cv_error_set (err, CV_ERR_INVALID, key_field, "the environment variable %s holds no API key",
                                 key_env);
        if (strpbrk (key, "\r\n"))
            return cv_error_set (err, CV_ERR_INVALID, key_field, "the API key in %s contains a line break", key_env);
    }
    s_route_t *route = &self->routes[self->route_count++];
    size_t length = strlen (base_url);
    while (length && base_url[length - 1] == '/')
        length--;
    snprintf (route->endpoint, sizeof route->endpoint, "%.*s/chat/completions", (int) length, base_url);
    cv_settings_mask (route->endpoint, route->shown, sizeof route->shown);
    snprintf (route->model, sizeof route->model, "%s", model);
    if (cv_llm_config_same_url (base_url, self->config.base_url))
        snprintf (route->label, sizeof route->label, "%s", model);
    else {
        char masked[CV_LLM_URL_MAX];
        cv_settings_mask (base_url, masked, sizeof masked);
        snprintf (route->label, sizeof route->label, "%s at %s", model, masked);
    }
    route->headers = curl_slist_append (NULL, "Content-Type: application/json");
    route->headers = curl_slist_append (route->headers, "Accept: application/json");
    route->headers = curl_slist_append (route->headers, "Expect:"); /* no 100-continue round trip */
    if (key) {
        size_t size = strlen (key) + 32;
        char *line = cv_malloc (size);
        snprintf (line, size, "Authorization: Bearer %s", key);
        route->headers = curl_slist_append (route->headers, line);
        explicit_bzero (line, size);
        free (line);
    }
    route->breaker = cv_llm_breakers_acquire (route->endpoint, model, (unsigned) self->config.breaker_threshold,
                                              (uint64_t) self->config.breaker_cooldown_ms);
    return 0;
}

cv_llm_t *
cv_llm_new (const cv_llm_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    assert (config->timeout_ms >= 1 && config->connect_timeout_ms >= 1 && config->max_retries >= 0);
    assert (config->backoff_base_ms >= 0 && config->backoff_max_ms >= config->backoff_base_ms);
    assert (config->breaker_threshold >= 1 && config->breaker_cooldown_ms >= 1 && config->max_tokens >= 1);
    assert (config->cache_ttl_ms >= 0 && config->cache_max_entries >= 1 && config->cache_max_bytes >= 1);
    assert (config->max_response_bytes >= 1024 && config->first_byte_timeout_ms >= 0);
    assert (config->price_prompt_per_1k >= 0 && config->price_prompt_per_1k <= CV_BUDGET_MAX_UNITS);
    assert (config->price_completion_per_1k >= 0 && config->price_completion_per_1k <= CV_BUDGET_MAX_UNITS);
    if (!cv_llm_config_enabled (config)) {
        cv_error_set (err, CV_ERR_INVALID, "llm", "no LLM configured: a base URL and a model are needed");
        return NULL;
    }
    const char *problem = cv_llm_config_problem (config);
    if (problem) {
        cv_error_set (err, CV_ERR_INVALID, "llm", "llm configuration: a setting %s", problem);
        return NULL;
    }
    if (cv_http_global_init (err))
        return NULL;
    CURL *curl = curl_easy_init ();
    CURLM *multi = curl_multi_init ();
    if (!curl || !multi) {
        curl_easy_cleanup (curl);
        curl_multi_cleanup (multi);
        cv_error_set (err, CV_ERR_INTERNAL, "llm", "libcurl could not make a handle");
        return NULL;
    }

    pthread_once (&s_metrics_once, s_metrics_make); /* the families show from the start */
    cv_llm_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    self->prices = cv_llm_prices_of (config);
    self->log = log;
    self->curl = curl;
    self->multi = multi;
    self->clock = s_system_clock;
    self->cache_clock = s_monotonic_clock;
    self->jitter = s_system_clock (NULL) ^ ((uint64_t) (uintptr_t) self << 16) ^ (uint64_t) getpid ();
    self->retry_after_ms = -1;
    if (s_route_init (self, config->base_url, config->model, config->api_key_env, "llm.api_key_env", err)) {
        cv_llm_destroy (&self);
        return NULL;
    }
    if (cv_llm_config_has_fallback (config)) {
        bool elsewhere = cv_llm_config_fallback_elsewhere (config);
        /* The main key goes to the main endpoint only: another provider gets its own, or none. */
        bool own_key = config->fallback_api_key_env[0];
        if (s_route_init (self, elsewhere ? config->fallback_base_url : config->base_url,
                          config->fallback_model[0] ? config->fallback_model : config->model,
                          own_key     ? config->fallback_api_key_env
                          : elsewhere ? ""
                                      : config->api_key_env,
                          own_key ? "llm.fallback_api_key_env" : "llm.api_key_env", err)) {
            cv_llm_destroy (&self);
            return NULL;
        }
    }
    if (config->cache_ttl_ms > 0) {
        /* The account is the key's digest: clients of one endpoint with other keys (tenants) share
           no answers, and two variables that hold the same key share them. */
        const char *key = config->api_key_env[0] ? cv_settings_secret (config->api_key_env) : "";
        assert (key); /* s_route_init has checked it */
        cv_llm_cache_settings_t settings = {.endpoint = self->routes[0].endpoint,
                                            .ttl_ms = (uint64_t) config->cache_ttl_ms,
                                            .max_entries = (size_t) config->cache_max_entries,
                                            .max_bytes = (size_t) config->cache_max_bytes,
                                            .max_answer_bytes = (size_t) config->max_response_bytes};
        cv_cache_digest (&(cv_cache_part_t){key, strlen (key)}, 1, settings.account);
        self->cache = cv_llm_cache_acquire (&settings);
    }
    curl_easy_setopt (curl, CURLOPT_POST, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, self);
    curl_easy_setopt (curl, CURLOPT_PREREQFUNCTION, s_on_prereq);
    curl_easy_setopt (curl, CURLOPT_PREREQDATA, self);
    /* A proxy's "200 Connection established" is not the server's answer: not to s_on_header. */
    curl_easy_setopt (curl, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
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
    curl_multi_cleanup (self->multi); /* no transfer is left in it: s_perform takes each out */
    curl_easy_cleanup (self->curl);
    for (int i = 0; i < self->route_count; i++) {
        s_route_t *route = &self->routes[i];
        for (struct curl_slist *header = route->headers; header; header = header->next)
            explicit_bzero (header->data, strlen (header->data)); /* the API key */
        curl_slist_free_all (route->headers);
        cv_llm_breakers_release (&route->breaker);
    }
    cv_llm_cache_release (&self->cache);
    cv_buffer_release (&self->body);
    json_decref (self->response_format);
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
cv_llm_set_cache_clock (cv_llm_t *self, cv_llm_clock_fn *clock, void *arg)
{
    assert (self && clock);
    self->cache_clock = clock;
    self->cache_clock_arg = arg;
}

int
cv_llm_set_json_schema (cv_llm_t *self, const char *name, const json_t *schema, cv_error_t *err)
{
    assert (self && name && schema);
    size_t length = strlen (name);
    if (length == 0 || length >= sizeof self->schema_name || strspn (name, SCHEMA_NAME_CHARS) != length)
        return cv_error_set (err, CV_ERR_INVALID, "name", "llm: the schema's name must be 1..%zu characters of %s",
                             sizeof self->schema_name - 1, SCHEMA_NAME_CHARS);
    if (cv_json_schema_check (schema, err))
        return -1;
    json_decref (self->response_format);
    self->response_format = cv_llm_json_schema_format (name, schema);
    self->schema = json_object_get (json_object_get (self->response_format, "json_schema"), "schema");
    snprintf (self->schema_name, sizeof self->schema_name, "%s", name);
    return 0;
}

/* Whether the answer just read is server-sent events: asked for (stream: true), and sent as such;
   a server that ignores "stream" answers one JSON completion instead. */
static bool
s_streamed (const cv_llm_t *self)
{
    char *type = NULL;
    curl_easy_getinfo (self->curl, CURLINFO_CONTENT_TYPE, &type);
    return self->config.stream && type && strncasecmp (type, "text/event-stream", 17) == 0;
}

/* Whether reply's content is JSON that matches the client's schema, when it has one: 0, or -1
   with err (MALFORMED) saying where it does not. */
static int
s_check_schema (const cv_llm_t *self, const cv_llm_reply_t *reply, cv_error_t *err)
{
    if (!self->schema)
        return 0;
    json_t *content = cv_llm_json_content (reply, err);
    int rc = content ? cv_json_schema_validate (self->schema, content, err) : -1;
    json_decref (content);
    if (rc)
        cv_error_prefix (err, "the answer does not match the schema %s", self->schema_name);
    return rc;
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
    stats->cost_micros = atomic_load_explicit (&self->cost_micros, memory_order_relaxed);
    stats->connections = atomic_load_explicit (&self->connections, memory_order_relaxed);
    stats->cache_hits = atomic_load_explicit (&self->cache_hits, memory_order_relaxed);
    stats->cache_misses = atomic_load_explicit (&self->cache_misses, memory_order_relaxed);
    stats->breaker = cv_breaker_state (self->routes[0].breaker);
    stats->fallback_breaker = self->route_count > 1 ? cv_breaker_state (self->routes[1].breaker) : CV_BREAKER_CLOSED;
}

static void
s_count (_Atomic uint64_t *counter, uint64_t amount)
{
    atomic_fetch_add_explicit (counter, amount, memory_order_relaxed);
}

uint64_t
cv_llm_worst_cost (const cv_llm_t *self, const cv_llm_message_t *messages, size_t count)
{
    assert (self && (messages || count == 0));
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        assert (messages[i].content);
        bytes = cv_budget_add (bytes, strlen (messages[i].content));
    }
    /* The fallback model answers at the same prices: one answer's worst case is the call's. */
    return cv_llm_prices_cost (&self->prices, bytes, (uint64_t) self->config.max_tokens);
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

/* Tells route's breaker how an attempt went, and the log when that moved it. */
static void
s_record (cv_llm_t *self, s_route_t *route, bool healthy)
{
    cv_breaker_stats_t stats;
    cv_breaker_state_t before = cv_breaker_report (route->breaker, !healthy, s_now (self), &stats);
    cv_breaker_state_t after = stats.state;
    s_metrics_breaker (route, after);
    if (before == after || !self->log)
        return;
    if (after == CV_BREAKER_OPEN)
        cv_log_warn (self->log, "llm: circuit of %s %s -> open after %u consecutive failures, for %ld ms", route->label,
                     cv_breaker_state_name (before), stats.failures, self->config.breaker_cooldown_ms);
    else
        cv_log_warn (self->log, "llm: circuit of %s %s -> %s, the endpoint answers again", route->label,
                     cv_breaker_state_name (before), cv_breaker_state_name (after));
}

static bool
s_allow (cv_llm_t *self, s_route_t *route)
{
    bool allowed = cv_breaker_allow (route->breaker, s_now (self));
    if (allowed && cv_breaker_state (route->breaker) == CV_BREAKER_HALF_OPEN && self->log)
        cv_log_warn (self->log, "llm: circuit of %s half-open, sending a trial request", route->label);
    return allowed;
}

/* Runs the transfer set up on self->curl to its end, and returns its outcome; with first_byte_ms
   (> 0), ends it early, *first_byte_late set (the caller looks at that before the code), when the
   answer has not begun that long after the request began to go out (s_on_prereq). Resolving the
   name, connecting, the TLS handshake and a proxy's tunnel do not count: connect_timeout_ms
   governs those, and a cold connection to a distant provider must not fail as a server that does
   not answer. curl hands the header callback whole lines, so "begun" is the final status line
   arriving, a few bytes after the first: an interim 1xx one, or a proxy's answer to CONNECT
   (suppressed), does not count.

   Why the multi interface rather than curl_easy_perform with a check in a callback: libcurl has
   no first-byte timeout for HTTP (CURLOPT_SERVER_RESPONSE_TIMEOUT is for FTP and the mail
   protocols), CURLOPT_LOW_SPEED_TIME counts whole seconds and watches the whole transfer, not its
   start, and CURLOPT_XFERINFOFUNCTION is called about once a second while nothing moves, so a
   limit of 200 ms would be noticed a second late. Here the loop waits in curl_multi_poll no longer
   than the time left before the limit (curl shortens the wait for timers of its own: the total
   and connect timeouts still fire on time), then looks at the flag s_on_header sets. The multi
   handle is the client's, so its connection cache keeps the connections between calls as
   curl_easy_perform's hidden one did. The time is the monotonic clock's: a timeout measures time
   spent, which an injected clock does not. */
static CURLcode
s_perform (cv_llm_t *self, long first_byte_ms, bool *first_byte_late)
{
    *first_byte_late = false;
    self->request_sent = false;
    self->status_seen = false;
    CURLcode code = CURLE_OK;
    CURLMcode failed = curl_multi_add_handle (self->multi, self->curl);
    bool done = false;
    while (!failed && !done) {
        int running;
        failed = curl_multi_perform (self->multi, &running);
        CURLMsg *message;
        int queued;
        while (!failed && (message = curl_multi_info_read (self->multi, &queued)))
            if (message->msg == CURLMSG_DONE && message->easy_handle == self->curl) {
                code = message->data.result;
                done = true;
            }
        if (failed || done)
            break;
        int wait_ms = 1000;
        if (first_byte_ms > 0 && self->request_sent && !self->status_seen) {
            uint64_t now = (uint64_t) zclock_mono ();
            uint64_t waited = now > self->sent_at_ms ? now - self->sent_at_ms : 0;
            if (waited >= (uint64_t) first_byte_ms) {
                *first_byte_late = true; /* taking the handle out below drops the connection */
                break;
            }
            if ((uint64_t) first_byte_ms - waited < (uint64_t) wait_ms)
                wait_ms = (int) ((uint64_t) first_byte_ms - waited);
        }
        failed = curl_multi_poll (self->multi, NULL, 0, wait_ms, NULL);
    }
    curl_multi_remove_handle (self->multi, self->curl);
    if (failed) {
        /* libcurl itself failed (out of memory, say): the attempt failed, the next may not. */
        snprintf (self->curl_error, sizeof self->curl_error, "libcurl: %s", curl_multi_strerror (failed));
        return CURLE_FAILED_INIT;
    }
    return code;
}

/* Sends body to route once, with left ms to go before the deadline. Fills reply on S_OK, else
   err; *wait_ms is the wait the server asked for before a retry, or -1. Tells the breaker the
   outcome. */
static s_verdict_t
s_attempt (cv_llm_t *self, s_route_t *route, const char *body, uint64_t left, cv_llm_reply_t *reply, long *wait_ms,
           cv_error_t *err)
{
    assert (left > 0);
    *wait_ms = -1;
    bool capped = left <= (uint64_t) self->config.timeout_ms;
    long timeout = capped ? (long) left : self->config.timeout_ms;
    long connect_timeout = self->config.connect_timeout_ms < timeout ? self->config.connect_timeout_ms : timeout;
    curl_easy_setopt (self->curl, CURLOPT_URL, route->endpoint);
    curl_easy_setopt (self->curl, CURLOPT_HTTPHEADER, route->headers);
    curl_easy_setopt (self->curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    cv_buffer_clear (&self->body);
    self->too_large = false;
    self->retry_after_ms = -1;
    self->curl_error[0] = '\0';

    /* A first-byte limit matters only when it ends before the attempt's own timeout. */
    long first_byte_ms = self->config.first_byte_timeout_ms < timeout ? self->config.first_byte_timeout_ms : 0;
    bool first_byte_late;
    CURLcode code = s_perform (self, first_byte_ms, &first_byte_late);
    reply->attempts++;
    s_count (&self->attempts, 1);
    long connects = 0;
    curl_easy_getinfo (self->curl, CURLINFO_NUM_CONNECTS, &connects);
    s_count (&self->connections, (uint64_t) connects);

    if (first_byte_late) {
        /* A server that has not begun to answer is as down as one that does not answer at all:
           for the breaker, and for a retry, which may reach a livelier replica. */
        s_record (self, route, false);
        cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "no first byte of an answer in %ld ms", first_byte_ms);
        return S_RETRY;
    }

    if (code != CURLE_OK) {
        if (code == CURLE_WRITE_ERROR && self->too_large) {
            s_record (self, route, false);
            cv_error_set (err, CV_ERR_MALFORMED, "body", "the answer is over %ld bytes",
                          self->config.max_response_bytes);
            return S_NEXT_MODEL;
        }
        s_record (self, route, false);
        if (code == CURLE_OPERATION_TIMEDOUT) {
            curl_off_t spent_us = 0;
            curl_easy_getinfo (self->curl, CURLINFO_TOTAL_TIME_T, &spent_us);
            if (capped && spent_us / 1000 + 1 >= timeout) {
                cv_error_set (err, CV_ERR_DEADLINE_EXCEEDED, "llm", "no answer before the deadline (%ld ms left)",
                              timeout);
                return S_STOP;
            }
            cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "no answer in %ld ms", (long) (spent_us / 1000));
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
        int rc = s_streamed (self)
                     ? cv_llm_json_stream_answer (&self->prices, self->body.data, self->body.size, reply, err)
                     : cv_llm_json_answer (&self->prices, self->body.data, self->body.size, reply, err);
        if (rc == 0 && s_check_schema (self, reply, err)) {
            free (reply->content); /* an answer the caller asked for in another shape is no answer */
            reply->content = NULL;
            rc = -1;
        }
        s_record (self, route, rc == 0);
        return rc == 0 ? S_OK : S_NEXT_MODEL;
    }
    char detail[EXCERPT_BYTES];
    cv_llm_json_error_detail (self->body.data, self->body.size, detail, sizeof detail);
    if (status == 408 || status == 429 || status >= 500) {
        s_record (self, route, false);
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
    s_record (self, route, true);
    if (status == 401 || status == 403) {
        cv_error_set (err, CV_ERR_INVALID, "llm.api_key_env", "HTTP %ld, the API key was refused%s%s", status,
                      *detail ? ": " : "", detail);
        return S_KEY_REFUSED;
    }
    cv_error_set (err, CV_ERR_INVALID, "llm", "HTTP %ld%s%s", status, *detail ? ": " : "", detail);
    return S_NEXT_MODEL;
}

/* The attempts on one route: 1 + max_retries for the main one, 1 for the fallback. Its breaker
   open, none: the fallback may answer instead. */
static s_verdict_t
s_ask_model (cv_llm_t *self, s_route_t *route, long tries, const char *body, uint64_t deadline_ms,
             cv_llm_reply_t *reply, cv_error_t *err)
{
    s_verdict_t verdict = S_RETRY;
    unsigned attempts_before = reply->attempts;
    for (long attempt = 0; attempt < tries; attempt++) {
        /* The deadline first: a trial the breaker lets through must be reported. */
        uint64_t now = s_now (self);
        if (now >= deadline_ms) {
            cv_error_set (err, CV_ERR_DEADLINE_EXCEEDED, "llm", "the deadline passed before attempt %u",
                          reply->attempts + 1);
            return S_STOP;
        }
        if (!s_allow (self, route)) {
            if (reply->attempts == attempts_before) {
                s_count (&self->short_circuited, 1);
                uint64_t retry_at = cv_breaker_retry_at (route->breaker);
                cv_error_set (
                    err, CV_ERR_UNAVAILABLE, "llm", "circuit open after %u consecutive failures; next trial in %llu ms",
                    cv_breaker_failures (route->breaker), (unsigned long long) (retry_at > now ? retry_at - now : 0));
            } else {
                cv_error_t last = *err;
                cv_error_set (err, CV_ERR_UNAVAILABLE, "llm", "circuit now open; last attempt: %s", last.message);
            }
            return S_NEXT_MODEL;
        }
        long wait_ms;
        verdict = s_attempt (self, route, body, deadline_ms - now, reply, &wait_ms, err);
        if (self->log && cv_log_verbose (self->log))
            cv_log_debug (self->log, "llm: %s attempt %u: %s", route->label, reply->attempts,
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

/* The call's attempts, main model then fallback. main_body is the request for the main model
   (borrowed); the fallback sends it too when it is the same model elsewhere, else a body of its
   own. */
static int
s_chat (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, const char *main_body, uint64_t deadline_ms,
        cv_llm_reply_t *reply, cv_error_t *err)
{
    for (int index = 0; index < self->route_count; index++) {
        s_route_t *route = &self->routes[index];
        char *own = NULL;
        if (index > 0 && strcmp (route->model, self->routes[0].model) != 0) {
            own = cv_llm_json_request (&self->config, route->model, messages, count, self->response_format, err);
            if (!own)
                return -1;
        }
        const char *body = own ? own : main_body;
        if (index == 1) {
            s_count (&self->fallbacks, 1);
            reply->fallback_tried = true;
        }
        cv_error_t attempt_err;
        cv_error_clear (&attempt_err);
        s_verdict_t verdict = s_ask_model (self, route, index == 0 ? 1 + self->config.max_retries : 1, body,
                                           deadline_ms, reply, &attempt_err);
        free (own);
        if (verdict == S_OK) {
            snprintf (reply->model, sizeof reply->model, "%s", route->model);
            reply->fallback = index == 1;
            return 0;
        }
        if (index == 0) {
            *err = attempt_err;
            cv_error_prefix (err, "model %s", route->label);
            snprintf (reply->main_failure, sizeof reply->main_failure, "%s", err->message);
        } else {
            /* Both failed: the fallback's error decides, the main one's is kept for the log. */
            cv_error_t main_err = *err;
            *err = attempt_err;
            cv_error_prefix (err, "model %s", route->label);
            snprintf (reply->fallback_failure, sizeof reply->fallback_failure, "%s", err->message);
            size_t used = strlen (err->message);
            snprintf (err->message + used, sizeof err->message - used, "; %s", main_err.message);
        }
        /* No model fixes a refused key; another endpoint, with a key of its own, may. */
        bool other_endpoint =
            index + 1 < self->route_count && strcmp (self->routes[index + 1].endpoint, route->endpoint) != 0;
        if (verdict == S_STOP || (verdict == S_KEY_REFUSED && !other_endpoint))
            break;
    }
    cv_error_prefix (err, "llm call failed after %u attempt%s", reply->attempts, reply->attempts == 1 ? "" : "s");
    return -1;
}

/* ---------------------------------------------------------------------------------------------
   The answer cache */

const char cv_llm_scope_shared[] = "(shared)";

/* Whether answers for scope are cached at all: the shared scope, or a user's (not NULL, not ""). */
static bool
s_scoped (const char *scope)
{
    return scope == CV_LLM_SCOPE_SHARED || (scope && *scope);
}

/* The cache key of body, the request for the main model, from scope (CV_LLM_SCOPE_SHARED, else a
   user's): the body holds everything that changes the answer (model, messages, max_tokens,
   temperature, response_format) exactly as it goes, and the key holds its SHA-256, not its text
   (cv_cache_key_digest), so that a long system prompt does not spend the byte budget, and no
   prompt's text is kept for the TTL. The scope stays in the clear: a user's key never equals the
   shared one or another user's, however the hash falls. */
static uint8_t *
s_cache_key (const char *body, const char *scope, size_t *key_size)
{
    cv_cache_part_t part = {body, strlen (body)};
    return cv_cache_key_digest ("chat", scope == CV_LLM_SCOPE_SHARED ? NULL : scope, &part, 1, key_size);
}

/* A stored answer: its finish reason, a NUL, then its content. The model is the main one: the
   only one whose answers are stored. */
static void
s_cache_store (cv_llm_t *self, const uint8_t *key, size_t key_size, const cv_llm_reply_t *reply)
{
    size_t reason = strlen (reply->finish_reason);
    size_t content = strlen (reply->content);
    size_t size = reason + 1 + content;
    char *value = cv_malloc (size);
    memcpy (value, reply->finish_reason, reason + 1);
    memcpy (value + reason + 1, reply->content, content);
    /* Over the byte budget it is not stored, and the caller has its answer all the same. */
    (void) cv_llm_cache_store (self->cache, key, key_size, value, size, s_cache_now (self));
    free (value);
}

/* Whether reply is an answer to keep for the TTL: complete (finish_reason "stop": not cut off at
   max_tokens, not stopped by a content filter, not silent about why it ended), with content, and
   in JSON mode content that parses as JSON (cv_llm_json_content). Anything else may be a failure
   to the caller, and stored it would be served to every caller of the scope until it expires,
   with no way past it but another prompt. The fallback's answers are not kept either: they are
   a stand-in, which must not hide the main model for a TTL once it answers again. */
static bool
s_cacheable (const cv_llm_t *self, const cv_llm_reply_t *reply)
{
    if (reply->fallback || strcmp (reply->finish_reason, "stop") != 0 || !reply->content || !reply->content[0])
        return false;
    if (!self->config.json_object && !self->schema)
        return true;
    cv_error_t ignored;
    json_t *object = cv_llm_json_content (reply, &ignored);
    bool parsed = object != NULL;
    json_decref (object);
    return parsed;
}

/* Fills reply from the cache when it holds an answer under key: true, or false for a miss. */
static bool
s_cache_lookup_reply (cv_llm_t *self, const uint8_t *key, size_t key_size, cv_llm_reply_t *reply)
{
    size_t size;
    uint8_t *value = cv_llm_cache_lookup (self->cache, key, key_size, s_cache_now (self), &size);
    if (!value)
        return false;
    const char *reason = (const char *) value;
    size_t reason_size = strlen (reason);
    assert (reason_size < size); /* as s_cache_store wrote it */
    reply->content = cv_strndup (reason + reason_size + 1, size - reason_size - 1);
    snprintf (reply->finish_reason, sizeof reply->finish_reason, "%s", reason);
    snprintf (reply->model, sizeof reply->model, "%s", self->routes[0].model);
    reply->cached = true;
    free (value);
    return true;
}

int
cv_llm_chat_for (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, const char *cache_scope,
                 uint64_t deadline_ms, cv_llm_reply_t *reply, cv_error_t *err)
{
    assert (self && reply);
    assert (messages && count > 0);
    cv_error_t ignored;
    if (!err)
        err = &ignored;
    cv_llm_reply_reset (reply);
    uint64_t started = s_now (self);
    s_count (&self->calls, 1);
    /* The main model's request, built once: the cache's key and the first attempts' body. */
    char *body =
        cv_llm_json_request (&self->config, self->routes[0].model, messages, count, self->response_format, err);
    if (!body) {
        s_count (&self->failures, 1);
        s_metrics_call (self->routes[0].model, "failed", NULL);
        return -1;
    }
    uint8_t *key = NULL;
    size_t key_size = 0;
    if (self->cache && s_scoped (cache_scope) && started < deadline_ms)
        key = s_cache_key (body, cache_scope, &key_size);
    if (key && s_cache_lookup_reply (self, key, key_size, reply)) {
        /* Nothing was sent, so nothing was spent: no tokens, no cost, no attempt. */
        s_count (&self->cache_hits, 1);
        s_metrics_cache (true);
        s_metrics_call (self->routes[0].model, "cached", NULL);
        free (key);
        free (body);
        uint64_t now = s_now (self);
        reply->latency_ms = now > started ? now - started : 0;
        return 0;
    }
    if (key) {
        s_count (&self->cache_misses, 1);
        s_metrics_cache (false);
    }
    int rc = s_chat (self, messages, count, body, deadline_ms, reply, err);
    free (body);
    uint64_t now = s_now (self);
    reply->latency_ms = now > started ? now - started : 0;
    if (rc) {
        free (key);
        s_count (&self->failures, 1);
        s_metrics_call (self->routes[0].model, "failed", NULL);
        return -1;
    }
    if (key && s_cacheable (self, reply))
        s_cache_store (self, key, key_size, reply);
    free (key);
    if (!reply->has_usage) /* its real cost is unknown: charged the most it could have been */
        reply->cost_micros = cv_llm_worst_cost (self, messages, count);
    s_count (&self->prompt_tokens, (uint64_t) reply->prompt_tokens);
    s_count (&self->completion_tokens, (uint64_t) reply->completion_tokens);
    s_count (&self->cost_micros, reply->cost_micros);
    s_metrics_call (reply->model, "answered", reply);
    return 0;
}

bool
cv_llm_forget (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, const char *cache_scope)
{
    assert (self);
    assert (messages && count > 0);
    if (!self->cache || !s_scoped (cache_scope))
        return false;
    cv_error_t ignored;
    char *body =
        cv_llm_json_request (&self->config, self->routes[0].model, messages, count, self->response_format, &ignored);
    if (!body)
        return false; /* never sent, so never stored */
    size_t key_size;
    uint8_t *key = s_cache_key (body, cache_scope, &key_size);
    free (body);
    bool forgotten = cv_llm_cache_forget (self->cache, key, key_size);
    free (key);
    return forgotten;
}

int
cv_llm_chat (cv_llm_t *self, const cv_llm_message_t *messages, size_t count, uint64_t deadline_ms,
             cv_llm_reply_t *reply, cv_error_t *err)
{
    return cv_llm_chat_for (self, messages, count, NULL, deadline_ms, reply, err);
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
    config.price_prompt_per_1k = 0.0005;     /* 500 micros per 1,000 tokens: half a micro each */
    config.price_completion_per_1k = 0.0015; /* 1,500 */
    config.max_tokens = 100;
    cv_llm_t *llm = cv_llm_new (&config, NULL, &err);
    assert (llm);
    assert (strcmp (llm->routes[0].endpoint, "http://127.0.0.1:1/v1/chat/completions") == 0);
    assert (llm->route_count == 1);

    /* The worst case: every content byte a prompt token, max_tokens answered, each part rounded up. */
    cv_llm_message_t messages[] = {{CV_LLM_SYSTEM, "hello"}, {CV_LLM_USER, "caf\xc3\xa9"}}; /* 5 + 5 bytes */
    assert (cv_llm_worst_cost (llm, messages, 2) == 5 + 150);
    assert (cv_llm_worst_cost (llm, messages, 1) == 3 + 150); /* 2.5 micros of prompt: 3 */
    assert (cv_llm_worst_cost (llm, messages, 0) == 150);
    cv_llm_destroy (&llm);
    config.price_prompt_per_1k = 0;
    config.price_completion_per_1k = 0;
    llm = cv_llm_new (&config, NULL, &err);
    assert (llm && cv_llm_worst_cost (llm, messages, 2) == 0); /* free: fits any budget */

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
    s_test_refused (verbose);
    if (verbose)
        printf ("cv_llm: ok\n");
}
