/* cv_llm against the stand-in LLM server: every way the server can answer, the breaker and the
   answer cache. */
#include "llm_client_test.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cv_llm.h"
#include "cv_llm_breakers.h"
#include "cv_llm_cache.h"
#include "cv_metrics.h"
#include "fake_llm.h"

#define KEY_VARIABLE "CV_LLM_CLIENT_TEST_KEY"
#define KEY "sk-test-0123456789"

typedef struct {
    fake_llm_t *fake;
    cv_log_t *log;
    bool verbose;
} s_test_t;

static uint64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
}

static uint64_t
s_manual_clock (void *arg)
{
    return *(uint64_t *) arg;
}

/* The configuration every scenario starts from: the fake, quick backoff, a breaker out of the way. */
static cv_llm_config_t
s_config (s_test_t *test)
{
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "%s", fake_llm_base_url (test->fake));
    snprintf (config.model, sizeof config.model, "small");
    snprintf (config.api_key_env, sizeof config.api_key_env, KEY_VARIABLE);
    config.backoff_base_ms = 1;
    config.backoff_max_ms = 10;
    config.breaker_threshold = 1000;
    config.price_prompt_per_1k = 0.5;
    config.price_completion_per_1k = 1.5;
    return config;
}

/* One scenario's client: the configuration it is made from (s_config's, which the scenario may
   change before it connects), and its last call's reply and error. */
typedef struct {
    cv_llm_config_t config;
    cv_llm_t *llm;
    cv_llm_reply_t reply;
    cv_error_t err;
} s_client_t;

typedef void (s_scenario_fn) (s_test_t *test, s_client_t *client);

/* A new client from client->config, in place of the one it had; the fake starts afresh. */
static void
s_connect (s_test_t *test, s_client_t *client)
{
    cv_llm_destroy (&client->llm);
    cv_error_t err;
    client->llm = cv_llm_new (&client->config, test->log, &err);
    if (!client->llm)
        fprintf (stderr, "llm_client_test: %s\n", err.message);
    assert (client->llm);
    cv_llm_set_seed (client->llm, 7);
    fake_llm_reset (test->fake);
}

/* A new client with no retries and a breaker that opens after threshold failures for a minute;
   its clock is *now (set to the time) unless now is NULL. */
static void
s_connect_breaking (s_test_t *test, s_client_t *client, long threshold, uint64_t *now)
{
    client->config.max_retries = 0;
    client->config.breaker_threshold = threshold;
    client->config.breaker_cooldown_ms = 60000;
    s_connect (test, client);
    if (now) {
        *now = s_now_ms ();
        cv_llm_set_clock (client->llm, s_manual_clock, now);
    }
}

/* Runs scenario with a client of its own, freed after. */
static void
s_run (s_test_t *test, s_scenario_fn *scenario)
{
    s_client_t client = {.config = s_config (test)};
    scenario (test, &client);
    cv_llm_reply_reset (&client.reply);
    cv_llm_destroy (&client.llm);
}

static const cv_llm_message_t s_messages[] = {
    {CV_LLM_SYSTEM, "Choose one intent: card_arrival, request_refund."},
    {CV_LLM_USER, "Where is my new card? \xf0\x9f\x92\xb3"},
};

/* One call with the usual messages, deadline_ms from now, into client's reply and error. */
static int
s_ask (s_test_t *test, s_client_t *client, uint64_t deadline_ms)
{
    cv_llm_reply_t *reply = &client->reply;
    int rc = cv_llm_chat (client->llm, s_messages, 2, s_now_ms () + deadline_ms, reply, &client->err);
    if (test->verbose)
        printf ("  -> %s (%u attempts, %llu ms)\n", rc ? client->err.message : reply->content, reply->attempts,
                (unsigned long long) reply->latency_ms);
    return rc;
}

static const char *
s_recorded (s_test_t *test, size_t index, const char *field, char *out, size_t size)
{
    json_t *record = fake_llm_request (test->fake, index);
    assert (record);
    const char *value = json_string_value (json_object_get (record, field));
    snprintf (out, size, "%s", value ? value : "");
    json_decref (record);
    return out;
}

static void
s_test_good_call (s_test_t *test, s_client_t *client)
{
    s_connect (test, client);
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){
                       .mode = FAKE_LLM_OK, .text = "card_arrival", .prompt_tokens = 1200, .completion_tokens = 300});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "card_arrival") == 0);
    assert (strcmp (client->reply.model, "small") == 0 && !client->reply.fallback && !*client->reply.main_failure
            && !client->reply.fallback_tried);
    assert (client->reply.attempts == 1 && client->reply.has_usage);
    assert (client->reply.prompt_tokens == 1200 && client->reply.completion_tokens == 300);
    /* 1,200 tokens at 0.5 units (500,000 micros) per 1,000, 300 at 1.5 */
    assert (client->reply.cost_micros == 600000 + 450000);
    assert (strcmp (client->reply.finish_reason, "stop") == 0);

    /* What reached the server: the path, the key from the environment, model, messages, settings. */
    assert (fake_llm_request_count (test->fake) == 1);
    json_t *record = fake_llm_request (test->fake, 0);
    assert (strcmp (json_string_value (json_object_get (record, "path")), "/v1/chat/completions") == 0);
    assert (strcmp (json_string_value (json_object_get (record, "method")), "POST") == 0);
    assert (strcmp (json_string_value (json_object_get (record, "authorization")), "Bearer " KEY) == 0);
    assert (strcmp (json_string_value (json_object_get (record, "model")), "small") == 0);
    json_t *expected = json_pack ("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", s_messages[0].content,
                                  "role", "user", "content", s_messages[1].content);
    assert (json_equal (json_object_get (record, "messages"), expected));
    json_decref (expected);
    json_t *body = json_object_get (record, "body");
    assert (json_integer_value (json_object_get (body, "max_tokens")) == 256);
    assert (json_real_value (json_object_get (body, "temperature")) == 0.0);
    assert (!json_object_get (body, "response_format"));
    json_decref (record);

    /* A second call reuses the client (and its connection); the counters add up. */
    fake_llm_push (test->fake, &(fake_llm_step_t){
                                   .mode = FAKE_LLM_OK, .text = "again", .prompt_tokens = 10, .completion_tokens = 2});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "again") == 0);
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.calls == 2 && stats.failures == 0 && stats.attempts == 2);
    assert (stats.prompt_tokens == 1210 && stats.completion_tokens == 302);
    assert (client->reply.cost_micros == 5000 + 3000 && stats.cost_micros == 1050000 + 8000);
    assert (stats.breaker == CV_BREAKER_CLOSED && stats.fallback_breaker == CV_BREAKER_CLOSED);
    /* ...over one connection, kept alive */
    assert (stats.connections == 1);
}

static void
s_test_retries (s_test_t *test, s_client_t *client)
{
    s_connect (test, client);
    char path[64];

    /* 500 then 200: answered on the second attempt. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "second"});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "second") == 0 && client->reply.attempts == 2);
    assert (fake_llm_request_count (test->fake) == 2);

    /* 503 on every attempt: 1 + max_retries requests, then UNAVAILABLE naming the status. */
    fake_llm_reset (test->fake);
    fake_llm_set_default (
        test->fake,
        &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503, .text = "{\"error\":{\"message\":\"overloaded\"}}"});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_UNAVAILABLE && strstr (client->err.message, "HTTP 503: overloaded"));
    assert (client->reply.attempts == 3 && !client->reply.content);
    assert (fake_llm_request_count (test->fake) == 3);

    /* 429 with Retry-After that fits before the deadline: waited for, then answered. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 429, .retry_after = "1"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "after the wait"});
    assert (s_ask (test, client, 10000) == 0);
    assert (strcmp (client->reply.content, "after the wait") == 0 && client->reply.attempts == 2);

    /* ... and in OpenAI's retry-after-ms. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 429, .retry_after_ms = 20});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "ms"});
    assert (s_ask (test, client, 10000) == 0);
    assert (strcmp (client->reply.content, "ms") == 0 && client->reply.attempts == 2);

    /* A Retry-After past the deadline: no retry, the reason says so. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 429, .retry_after = "30"});
    assert (s_ask (test, client, 3000) == -1);
    assert (client->err.code == CV_ERR_UNAVAILABLE && strstr (client->err.message, "past the deadline")
            && strstr (client->err.message, "429"));
    assert (client->reply.attempts == 1 && fake_llm_request_count (test->fake) == 1);

    /* 400: our request is wrong; no retry. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS,
                                                  .status = 400,
                                                  .text = "{\"error\":{\"message\":\"max_tokens is too large\"}}"});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_INVALID && strstr (client->err.message, "HTTP 400: max_tokens is too large"));
    assert (client->reply.attempts == 1 && fake_llm_request_count (test->fake) == 1);

    /* A malformed 200 is not retried on the same model. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_MALFORMED && strcmp (client->err.field, "body") == 0);
    assert (client->reply.attempts == 1 && fake_llm_request_count (test->fake) == 1);
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = "{\"object\":\"chat.completion\"}"});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_MALFORMED && strcmp (client->err.field, "choices") == 0);

    /* A connection dropped without an answer is retried. A fresh client, so that libcurl has no
       kept-alive connection to silently retry on itself. */
    s_connect (test, client);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_CLOSE});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "reconnected"});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "reconnected") == 0 && client->reply.attempts == 2);
    assert (strcmp (s_recorded (test, 0, "step", path, sizeof path), "close") == 0);
    assert (fake_llm_request_count (test->fake) == 2);

    /* An answer over max_response_bytes is refused, not retried. */
    client->config.max_response_bytes = 1024;
    s_connect (test, client);
    char big[4000];
    memset (big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = big});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_MALFORMED && strstr (client->err.message, "over 1024 bytes"));
    assert (fake_llm_request_count (test->fake) == 1);
}

static void
s_test_deadlines (s_test_t *test, s_client_t *client)
{
    s_connect (test, client);

    /* Slower than the deadline: DEADLINE_EXCEEDED, no second attempt. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_SLOW, .delay_ms = 5000});
    assert (s_ask (test, client, 300) == -1);
    assert (client->err.code == CV_ERR_DEADLINE_EXCEEDED);
    assert (client->reply.attempts == 1 && fake_llm_request_count (test->fake) <= 1);

    /* Hanging: the same, by the deadline. */
    fake_llm_reset (test->fake);
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});
    assert (s_ask (test, client, 300) == -1);
    assert (client->err.code == CV_ERR_DEADLINE_EXCEEDED);
    assert (client->reply.attempts == 1 && fake_llm_request_count (test->fake) <= 1);

    /* A deadline already passed: nothing is sent. */
    fake_llm_reset (test->fake);
    assert (cv_llm_chat (client->llm, s_messages, 2, s_now_ms () - 1, &client->reply, &client->err) == -1);
    assert (client->err.code == CV_ERR_DEADLINE_EXCEEDED && client->reply.attempts == 0);
    assert (fake_llm_request_count (test->fake) == 0);

    /* Slower than the per-attempt timeout but within the deadline: a timeout is retried. */
    client->config.timeout_ms = 200;
    s_connect (test, client);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_SLOW, .delay_ms = 5000});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "third time"});
    assert (s_ask (test, client, 20000) == 0);
    assert (strcmp (client->reply.content, "third time") == 0 && client->reply.attempts == 3);
}

static void
s_test_fallback (s_test_t *test, s_client_t *client)
{
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    s_connect (test, client);
    char model[64];

    /* The main model fails on every attempt: the fallback answers. */
    for (int i = 0; i < 3; i++)
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from big"});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "from big") == 0 && strcmp (client->reply.model, "big") == 0
            && client->reply.fallback);
    assert (client->reply.attempts == 4);
    assert (strstr (client->reply.main_failure, "model small") && strstr (client->reply.main_failure, "HTTP 503"));
    assert (client->reply.fallback_tried);
    assert (strcmp (s_recorded (test, 2, "model", model, sizeof model), "small") == 0);
    assert (strcmp (s_recorded (test, 3, "model", model, sizeof model), "big") == 0);

    /* A malformed answer goes straight to the fallback. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "well formed"});
    assert (s_ask (test, client, 5000) == 0);
    assert (client->reply.fallback && client->reply.attempts == 2);

    /* Both fail: the fallback gets one attempt only, and the error tells both stories. */
    fake_llm_reset (test->fake);
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 502});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->reply.attempts == 4 && fake_llm_request_count (test->fake) == 4);
    assert (client->err.code == CV_ERR_UNAVAILABLE && strstr (client->err.message, "model big")
            && strstr (client->err.message, "model small"));
    assert (client->reply.fallback_tried && strstr (client->reply.main_failure, "model small: "));
    assert (strncmp (client->reply.fallback_failure, "model big: ", 11) == 0
            && !strstr (client->reply.fallback_failure, "model small"));

    /* A refused key: no model will do better, so no fallback. */
    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 401});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->err.code == CV_ERR_INVALID && strstr (client->err.message, "API key"));
    assert (fake_llm_request_count (test->fake) == 1);

    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.calls == 4 && stats.failures == 2 && stats.fallbacks == 3);
}

/* What calls cost: their usage at the prices; without usage, the worst case; only the answer
   that comes back, whatever failed before it; nothing for a call that fails. */
static void
s_test_cost (s_test_t *test, s_client_t *client)
{
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    s_connect (test, client);
    /* 74 bytes of messages at 500 micros a token, 256 tokens at 1,500 */
    uint64_t worst = cv_llm_worst_cost (client->llm, s_messages, 2);
    assert (worst == 37000 + 384000);

    /* No usage: the answer is charged the worst case, and counts no tokens. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "untold", .no_usage = true});
    assert (s_ask (test, client, 5000) == 0);
    assert (!client->reply.has_usage && client->reply.prompt_tokens == 0 && client->reply.completion_tokens == 0);
    assert (client->reply.cost_micros == worst);

    /* Usage with one count only: the other could be anything, so the worst case again. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED,
                                                  .text = "{\"choices\":[{\"message\":{\"content\":\"half\"}}],"
                                                          "\"usage\":{\"prompt_tokens\":12}}"});
    assert (s_ask (test, client, 5000) == 0);
    assert (!client->reply.has_usage && client->reply.prompt_tokens == 12 && client->reply.cost_micros == worst);

    /* A retried call, and one the fallback answered: only the answer is billed. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    fake_llm_push (test->fake, &(fake_llm_step_t){
                                   .mode = FAKE_LLM_OK, .text = "late", .prompt_tokens = 40, .completion_tokens = 4});
    assert (s_ask (test, client, 5000) == 0);
    assert (client->reply.attempts == 2 && client->reply.cost_micros == 20000 + 6000);
    /* The main model's answer is malformed after a count it gave: nothing of it is billed or kept. */
    const char *faulty = "{\"choices\":[{\"message\":{\"content\":\"x\"}}],"
                         "\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":-1}}";
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = faulty});
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "big", .prompt_tokens = 2, .completion_tokens = 1});
    assert (s_ask (test, client, 5000) == 0);
    assert (client->reply.fallback && client->reply.prompt_tokens == 2 && client->reply.completion_tokens == 1);
    assert (client->reply.cost_micros == 1000 + 1500);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = faulty});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "big", .no_usage = true});
    assert (s_ask (test, client, 5000) == 0);
    assert (client->reply.fallback && client->reply.prompt_tokens == 0 && client->reply.cost_micros == worst);

    /* A call that fails costs nothing, and leaves the counters' tokens and cost alone. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    assert (s_ask (test, client, 5000) == -1);
    assert (client->reply.cost_micros == 0 && client->reply.prompt_tokens == 0);
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.calls == 6 && stats.failures == 1);
    assert (stats.prompt_tokens == 12 + 40 + 2 && stats.completion_tokens == 4 + 1);
    assert (stats.cost_micros == worst + worst + 26000 + 2500 + worst);
}

static void
s_test_breaker (s_test_t *test, s_client_t *client)
{
    uint64_t now;
    s_connect_breaking (test, client, 3, &now);
    cv_llm_stats_t stats;

    /* Three failures open it. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    for (int i = 0; i < 3; i++)
        assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN);
    assert (fake_llm_request_count (test->fake) == 3);

    /* Open: refused at once, nothing reaches the server. */
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (client->err.code == CV_ERR_UNAVAILABLE && strstr (client->err.message, "circuit open"));
    assert (client->reply.attempts == 0 && fake_llm_request_count (test->fake) == 3);
    now += 59999;
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (fake_llm_request_count (test->fake) == 3);

    /* After the cool-down, half-open: the trial fails and it opens again. */
    now += 1;
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (strstr (client->err.message, "HTTP 500"));
    assert (fake_llm_request_count (test->fake) == 4);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (strstr (client->err.message, "circuit open") && fake_llm_request_count (test->fake) == 4);

    /* Another cool-down; the trial succeeds and closes it. */
    now += 60000;
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "back"});
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
    assert (strcmp (client->reply.content, "back") == 0);
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_CLOSED);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
    assert (fake_llm_request_count (test->fake) == 6);
    cv_llm_stats (client->llm, &stats);
    assert (stats.short_circuited == 3 && stats.calls == 9 && stats.failures == 7);
}

/* One breaker per endpoint and model for the process: what one client's failures open, another
   client of the same endpoint and model finds open, without sending anything; a client of
   another model has its own; the trial after the cool-down, sent by either, closes it for both. */
static void
s_test_shared_breaker (s_test_t *test, s_client_t *client)
{
    uint64_t now;
    s_connect_breaking (test, client, 2, &now);
    cv_error_t err;
    cv_llm_t *twin = cv_llm_new (&client->config, test->log, &err);
    cv_llm_config_t other_config = client->config;
    snprintf (other_config.model, sizeof other_config.model, "other");
    cv_llm_t *other = cv_llm_new (&other_config, test->log, &err);
    assert (twin && other);
    cv_llm_set_clock (twin, s_manual_clock, &now);
    cv_llm_set_clock (other, s_manual_clock, &now);
    cv_llm_reply_t reply = {0};
    cv_llm_stats_t stats;

    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (fake_llm_request_count (test->fake) == 2);

    /* The twin never failed, and is refused at once. */
    assert (cv_llm_chat (twin, s_messages, 2, now + 5000, &reply, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE && strstr (err.message, "circuit open") && reply.attempts == 0);
    assert (fake_llm_request_count (test->fake) == 2);
    cv_llm_stats (twin, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN && stats.short_circuited == 1 && stats.attempts == 0);

    /* Another model at the same endpoint is another breaker. */
    assert (cv_llm_chat (other, s_messages, 2, now + 5000, &reply, &err) == 0);
    assert (fake_llm_request_count (test->fake) == 3);

    /* After the cool-down the twin's trial closes it for the first client too. */
    now += 60000;
    assert (cv_llm_chat (twin, s_messages, 2, now + 5000, &reply, &err) == 0);
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_CLOSED);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
    assert (fake_llm_request_count (test->fake) == 5);

    cv_llm_reply_reset (&reply);
    cv_llm_destroy (&twin);
    cv_llm_destroy (&other);
}

/* Threads, each with its client, as a worker's handler threads: the outage opens one breaker for
   all of them after threshold failures (and the few already in flight), not threshold each. */
#define SHARED_THREADS 4
#define SHARED_CALLS 10

typedef struct {
    cv_llm_config_t config;
    cv_log_t *log;
    unsigned failures;
} s_thread_t;

static void *
s_thread_calls (void *arg)
{
    s_thread_t *thread = arg;
    cv_error_t err;
    cv_llm_t *llm = cv_llm_new (&thread->config, thread->log, &err);
    assert (llm);
    cv_llm_reply_t reply = {0};
    for (int i = 0; i < SHARED_CALLS; i++)
        if (cv_llm_chat (llm, s_messages, 2, s_now_ms () + 5000, &reply, &err) == -1)
            thread->failures++;
    cv_llm_reply_reset (&reply);
    cv_llm_destroy (&llm);
    return NULL;
}

static void
s_test_threads_share (s_test_t *test, s_client_t *client)
{
    s_connect_breaking (test, client, 3, NULL); /* holds the breaker, so the threads' clients share it */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    pthread_t threads[SHARED_THREADS];
    s_thread_t state[SHARED_THREADS];
    for (int i = 0; i < SHARED_THREADS; i++) {
        state[i] = (s_thread_t){.config = client->config, .log = test->log};
        assert (pthread_create (&threads[i], NULL, s_thread_calls, &state[i]) == 0);
    }
    for (int i = 0; i < SHARED_THREADS; i++) {
        pthread_join (threads[i], NULL);
        assert (state[i].failures == SHARED_CALLS);
    }
    size_t sent = fake_llm_request_count (test->fake);
    if (test->verbose)
        printf ("  %d threads, %d calls each: %zu requests reached the server\n", SHARED_THREADS, SHARED_CALLS, sent);
    assert (sent >= 3 && sent <= 3 + SHARED_THREADS - 1);
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN);
}

/* While the main model's breaker is open, the fallback answers alone: the main one is not asked. */
static void
s_test_fallback_while_open (s_test_t *test, s_client_t *client)
{
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    uint64_t now;
    s_connect_breaking (test, client, 2, &now);
    char model[64];

    for (int i = 0; i < 2; i++) {
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from big"});
        assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
        assert (client->reply.fallback && client->reply.attempts == 2);
    }
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN && stats.fallback_breaker == CV_BREAKER_CLOSED);

    fake_llm_reset (test->fake);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "big alone"});
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
    assert (strcmp (client->reply.content, "big alone") == 0 && strcmp (client->reply.model, "big") == 0);
    assert (client->reply.fallback && client->reply.attempts == 1);
    assert (fake_llm_request_count (test->fake) == 1);
    assert (strcmp (s_recorded (test, 0, "model", model, sizeof model), "big") == 0);

    /* Both open: refused at once, the error names both. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    for (int i = 0; i < 2; i++)
        assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    size_t sent = fake_llm_request_count (test->fake);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == -1);
    assert (client->reply.attempts == 0 && fake_llm_request_count (test->fake) == sent);
    assert (strstr (client->err.message, "model big: circuit open") && strstr (client->err.message, "model small"));
    cv_llm_stats (client->llm, &stats);
    assert (stats.fallback_breaker == CV_BREAKER_OPEN && stats.short_circuited == 3 + 2);

    /* The main model's cool-down ends: its trial goes first, and, answered, closes it. */
    now += 60000;
    fake_llm_reset (test->fake);
    assert (cv_llm_chat (client->llm, s_messages, 2, now + 5000, &client->reply, &client->err) == 0);
    assert (!client->reply.fallback && strcmp (s_recorded (test, 0, "model", model, sizeof model), "small") == 0);
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_CLOSED);
}

/* A fallback at another endpoint: a second stand-in, its own key (the main key never goes
   there), its own breaker; a key the main endpoint refuses does not stop it. */
static void
s_test_fallback_endpoint (s_test_t *test, s_client_t *client)
{
    fake_llm_t *backup = fake_llm_new (0, test->verbose);
    assert (backup);
    snprintf (client->config.fallback_base_url, sizeof client->config.fallback_base_url, "%s",
              fake_llm_base_url (backup));
    client->config.max_retries = 0;
    s_connect (test, client);
    char text[128];

    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    fake_llm_push (backup, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from the backup"});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, "from the backup") == 0 && client->reply.fallback);
    assert (strcmp (client->reply.model, "small") == 0); /* the same model, elsewhere */
    assert (fake_llm_request_count (test->fake) == 1 && fake_llm_request_count (backup) == 1);
    json_t *record = fake_llm_request (backup, 0);
    assert (json_is_null (json_object_get (record, "authorization")));
    json_decref (record);

    /* A key of its own, from its own variable; a refused main key does not stop it. */
    snprintf (client->config.fallback_api_key_env, sizeof client->config.fallback_api_key_env,
              "CV_LLM_CLIENT_TEST_BACKUP_KEY");
    setenv ("CV_LLM_CLIENT_TEST_BACKUP_KEY", "sk-backup", 1);
    s_connect (test, client);
    fake_llm_reset (backup);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 401});
    assert (s_ask (test, client, 5000) == 0);
    assert (client->reply.fallback);
    assert (strcmp (s_recorded (test, 0, "authorization", text, sizeof text), "Bearer " KEY) == 0);
    record = fake_llm_request (backup, 0);
    assert (strcmp (json_string_value (json_object_get (record, "authorization")), "Bearer sk-backup") == 0);
    json_decref (record);

    /* Both down: the error names where the fallback was. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 502});
    fake_llm_set_default (backup, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    assert (s_ask (test, client, 5000) == -1);
    snprintf (text, sizeof text, "model small at %s", fake_llm_base_url (backup));
    assert (strstr (client->err.message, text) && strstr (client->err.message, "HTTP 502"));
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.connections == 2); /* one to each endpoint, each kept */

    /* The fallback may not be the main endpoint and model again, however its URL ends. */
    cv_llm_config_t same = client->config;
    snprintf (same.fallback_base_url, sizeof same.fallback_base_url, "%s/", same.base_url);
    cv_error_t err;
    assert (!cv_llm_new (&same, NULL, &err) && strstr (err.message, "fallback the main endpoint and model"));

    /* A key variable of its own that holds none is the fallback's setting at fault. */
    setenv ("CV_LLM_CLIENT_TEST_BACKUP_KEY", "", 1);
    assert (!cv_llm_new (&client->config, NULL, &err) && strcmp (err.field, "llm.fallback_api_key_env") == 0);
    assert (strstr (err.message, "CV_LLM_CLIENT_TEST_BACKUP_KEY holds no API key"));

    /* The main URL with a slash at its end is the main endpoint: the main key goes with the
       fallback model there, and a refused key stops the call, as no model fixes it. */
    snprintf (same.fallback_model, sizeof same.fallback_model, "big");
    same.fallback_api_key_env[0] = '\0';
    cv_llm_destroy (&client->llm);
    client->llm = cv_llm_new (&same, test->log, &err);
    assert (client->llm);
    fake_llm_reset (test->fake);
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "ok"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    assert (s_ask (test, client, 5000) == 0 && client->reply.fallback);
    assert (strcmp (s_recorded (test, 1, "authorization", text, sizeof text), "Bearer " KEY) == 0);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 401});
    assert (s_ask (test, client, 5000) == -1 && fake_llm_request_count (test->fake) == 3);
    assert (strstr (client->err.message, "model small: ") && !strstr (client->err.message, " at "));

    unsetenv ("CV_LLM_CLIENT_TEST_BACKUP_KEY");
    cv_llm_destroy (&client->llm);
    fake_llm_destroy (&backup);
}

static void
s_test_json (s_test_t *test, s_client_t *client)
{
    client->config.json_object = true;
    s_connect (test, client);

    /* The intent chooser answers JSON; response_format was asked for. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_INTENT});
    fake_llm_add_intent (test->fake, "refund", "request_refund");
    fake_llm_add_intent (test->fake, "card", "card_arrival");
    assert (s_ask (test, client, 5000) == 0);
    json_t *answer = cv_llm_json_content (&client->reply, &client->err);
    assert (answer);
    assert (strcmp (json_string_value (json_object_get (answer, "intent")), "card_arrival") == 0);
    json_decref (answer);
    json_t *record = fake_llm_request (test->fake, 0);
    json_t *format = json_object_get (json_object_get (record, "body"), "response_format");
    assert (strcmp (json_string_value (json_object_get (format, "type")), "json_object") == 0);
    json_decref (record);

    /* Fenced JSON is accepted; prose is not. */
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "```json\n{\"intent\": \"request_refund\"}\n```"});
    assert (s_ask (test, client, 5000) == 0);
    answer = cv_llm_json_content (&client->reply, &client->err);
    assert (answer && strcmp (json_string_value (json_object_get (answer, "intent")), "request_refund") == 0);
    json_decref (answer);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "It is probably card_arrival."});
    assert (s_ask (test, client, 5000) == 0);
    assert (!cv_llm_json_content (&client->reply, &client->err));
    assert (client->err.code == CV_ERR_MALFORMED && strstr (client->err.message, "not JSON"));
}

/* The process's value of one of the LLM client's series (cv_metrics). */
static double
s_metric (const char *name, bool gauge, const char *labels, const char *first, const char *second)
{
    cv_metrics_t *registry = cv_metrics_process ();
    cv_metric_family_t *family =
        gauge ? cv_metrics_gauge (registry, name, "-", labels) : cv_metrics_counter (registry, name, "-", labels);
    return cv_metric_value (cv_metric_with (family, first, second));
}

static int s_ask_for (s_test_t *test, s_client_t *client, cv_llm_t *llm, const cv_llm_message_t *messages, size_t count,
                      const char *scope, uint64_t now);

/* The calls counted in the process's metrics: answered with their tokens and cost, failed, from
   the cache; the breaker's state as a gauge, open after its failures. */
static void
s_test_metrics (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    uint64_t now;
    s_connect_breaking (test, client, 2, &now);
    const char *calls = "conveyor_llm_calls_total", *tokens = "conveyor_llm_tokens_total";
    double answered = s_metric (calls, false, "model,outcome", "small", "answered"),
           failed = s_metric (calls, false, "model,outcome", "small", "failed"),
           cached = s_metric (calls, false, "model,outcome", "small", "cached"),
           prompt = s_metric (tokens, false, "model,kind", "small", "prompt"),
           cost = cv_metric_value (cv_metric_with (
               cv_metrics_counter (cv_metrics_process (), "conveyor_llm_cost_total", "-", "model"), "small")),
           hits = s_metric ("conveyor_cache_lookups_total", false, "tier,result", "llm", "hit");
    fake_llm_push (test->fake, &(fake_llm_step_t){
                                   .mode = FAKE_LLM_OK, .text = "ok", .prompt_tokens = 1000, .completion_tokens = 0});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "cust-1", now) == 0);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "cust-1", now) == 0 && client->reply.cached);
    assert (s_metric (calls, false, "model,outcome", "small", "answered") == answered + 1);
    assert (s_metric (calls, false, "model,outcome", "small", "cached") == cached + 1);
    assert (s_metric (tokens, false, "model,kind", "small", "prompt") == prompt + 1000);
    double cost_now = cv_metric_value (
        cv_metric_with (cv_metrics_counter (cv_metrics_process (), "conveyor_llm_cost_total", "-", "model"), "small"));
    assert (cost_now > cost + 0.49 && cost_now < cost + 0.51); /* 1,000 prompt tokens at 0.5 a thousand */
    assert (s_metric ("conveyor_cache_lookups_total", false, "tier,result", "llm", "hit") == hits + 1);

    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    char endpoint[CV_LLM_URL_MAX + 32];
    snprintf (endpoint, sizeof endpoint, "%s/chat/completions", client->config.base_url);
    assert (s_ask (test, client, 5000) == -1 && s_ask (test, client, 5000) == -1);
    assert (s_metric (calls, false, "model,outcome", "small", "failed") == failed + 2);
    cv_assert_that (s_metric ("conveyor_llm_breaker_state", true, "endpoint,model", endpoint, "small") == 2,
                    "the breaker of %s is not open in the metrics", endpoint);
}

/* Structured output: a JSON schema in the request (response_format json_schema, strict), and an
   answer that does not match it is malformed: not returned, counted against the breaker, the
   fallback asked; one that matches is the answer, fenced or not. A schema the validator cannot
   enforce, or a bad name, is refused when set. */
static void
s_test_json_schema (s_test_t *test, s_client_t *client)
{
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    client->config.max_retries = 0;
    s_connect (test, client);
    json_t *schema = json_loads ("{\"type\": \"object\", \"required\": [\"intent\"], \"additionalProperties\": false,"
                                 " \"properties\": {\"intent\": {\"enum\": [\"card_arrival\", \"request_refund\"]}}}",
                                 0, NULL);
    assert (cv_llm_set_json_schema (client->llm, "intent", schema, &client->err) == 0);

    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}"});
    assert (s_ask (test, client, 5000) == 0 && !client->reply.fallback);
    json_t *record = fake_llm_request (test->fake, 0);
    json_t *format = json_object_get (json_object_get (record, "body"), "response_format");
    assert (strcmp (json_string_value (json_object_get (format, "type")), "json_schema") == 0);
    json_t *asked = json_object_get (format, "json_schema");
    assert (strcmp (json_string_value (json_object_get (asked, "name")), "intent") == 0);
    assert (json_equal (json_object_get (asked, "schema"), schema) && json_is_true (json_object_get (asked, "strict")));
    json_decref (record);

    /* off the schema: the fallback is asked, and its answer, fenced, matches */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"buy_bitcoin\"}"});
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "```json\n{\"intent\": \"request_refund\"}\n```"});
    assert (s_ask (test, client, 5000) == 0 && client->reply.fallback);
    cv_assert_that (strstr (client->reply.main_failure, "does not match the schema intent")
                        && strstr (client->reply.main_failure, "$.intent: \"buy_bitcoin\" is not one of the 2"),
                    "main failure: %s", client->reply.main_failure);

    /* neither matches: MALFORMED, no content, both stories told */
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\", \"x\": 1}"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "card_arrival"});
    assert (s_ask (test, client, 5000) == -1);
    cv_assert_that (client->err.code == CV_ERR_MALFORMED && !client->reply.content, "%s", client->err.message);
    assert (strstr (client->reply.main_failure, "$: x is not one of its properties"));
    assert (strstr (client->reply.fallback_failure, "not JSON"));

    /* mismatches count against the breaker: three in a row opened it */
    cv_llm_destroy (&client->llm);
    uint64_t now;
    client->config.fallback_model[0] = '\0';
    s_connect_breaking (test, client, 2, &now);
    assert (cv_llm_set_json_schema (client->llm, "intent", schema, &client->err) == 0);
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{}"});
    assert (s_ask (test, client, 5000) == -1 && s_ask (test, client, 5000) == -1);
    assert (s_ask (test, client, 5000) == -1 && strstr (client->err.message, "circuit open"));
    assert (fake_llm_request_count (test->fake) == 2);

    /* refused when set */
    json_t *pattern = json_loads ("{\"type\": \"string\", \"pattern\": \"^a\"}", 0, NULL);
    assert (cv_llm_set_json_schema (client->llm, "intent", pattern, &client->err) == -1);
    assert (client->err.code == CV_ERR_INVALID && strstr (client->err.message, "pattern is not supported"));
    assert (cv_llm_set_json_schema (client->llm, "the intent", schema, &client->err) == -1);
    assert (strstr (client->err.message, "schema's name"));
    json_decref (pattern);
    json_decref (schema);
}

/* Streaming (stream: true): the request asks for events with the usage, and the answer is put
   together from them, tokens and cost included; a stream cut short is malformed and the fallback
   answers; a server that ignores "stream" is read as one completion; a schema still holds. */
static void
s_test_stream (s_test_t *test, s_client_t *client)
{
    client->config.stream = true;
    client->config.max_retries = 0;
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    s_connect (test, client);
    const char *long_text = "Your new card is on its way: it should arrive by Friday \xe2\x80\x94 \xf0\x9f\x92\xb3.";
    fake_llm_push (
        test->fake,
        &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = long_text, .prompt_tokens = 1000, .completion_tokens = 2000});
    assert (s_ask (test, client, 5000) == 0);
    assert (strcmp (client->reply.content, long_text) == 0 && strcmp (client->reply.finish_reason, "stop") == 0);
    assert (client->reply.has_usage && client->reply.prompt_tokens == 1000 && client->reply.completion_tokens == 2000);
    assert (client->reply.cost_micros == 3500000); /* 1,000 at 0.5 and 2,000 at 1.5 a thousand */
    json_t *record = fake_llm_request (test->fake, 0);
    json_t *body = json_object_get (record, "body");
    assert (json_is_true (json_object_get (body, "stream")));
    assert (json_is_true (json_object_get (json_object_get (body, "stream_options"), "include_usage")));
    json_decref (record);

    /* cut short: not an answer; the fallback's is */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STREAM_CUT, .text = long_text});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from big"});
    assert (s_ask (test, client, 5000) == 0 && client->reply.fallback
            && strcmp (client->reply.content, "from big") == 0);
    cv_assert_that (strstr (client->reply.main_failure, "before data: [DONE]"), "%s", client->reply.main_failure);

    /* a server that answers one JSON completion all the same */
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED,
                                      .text = "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": "
                                              "\"whole\"}, \"finish_reason\": \"stop\"}]}"});
    assert (s_ask (test, client, 5000) == 0 && !client->reply.fallback && strcmp (client->reply.content, "whole") == 0);

    /* streamed, and held to a schema */
    json_t *schema = json_loads ("{\"type\": \"object\", \"required\": [\"intent\"]}", 0, NULL);
    assert (cv_llm_set_json_schema (client->llm, "intent", schema, &client->err) == 0);
    json_decref (schema);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}"});
    assert (s_ask (test, client, 5000) == 0 && strcmp (client->reply.content, "{\"intent\": \"card_arrival\"}") == 0);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{}"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{}"});
    assert (s_ask (test, client, 5000) == -1 && strstr (client->err.message, "the required intent is missing"));
}

/* One cacheable call with messages (count of them) for scope at now, deadline 5 s on, into
   client's reply and error. */
static int
s_ask_for (s_test_t *test, s_client_t *client, cv_llm_t *llm, const cv_llm_message_t *messages, size_t count,
           const char *scope, uint64_t now)
{
    int rc = cv_llm_chat_for (llm, messages, count, scope, now + 5000, &client->reply, &client->err);
    if (test->verbose)
        printf ("  %s -> %s%s (%u attempts)\n",
                scope == CV_LLM_SCOPE_SHARED ? "(shared)"
                : scope                      ? scope
                                             : "(no scope)",
                rc ? client->err.message : client->reply.content, client->reply.cached ? ", cached" : "",
                client->reply.attempts);
    return rc;
}

/* The answer cache: the same request for the same scope, within the TTL, is answered with no
   request sent and nothing billed; another message, model, setting or user is another request;
   a call without a scope is never cached. */
static void
s_test_cache (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    s_connect (test, client);
    uint64_t now = s_now_ms ();
    cv_llm_set_clock (client->llm, s_manual_clock, &now);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &now);
    cv_llm_reply_t *reply = &client->reply;
    cv_llm_stats_t stats;

    /* A miss: sent, billed, stored. */
    fake_llm_push (test->fake,
                   &(fake_llm_step_t){
                       .mode = FAKE_LLM_OK, .text = "card_arrival", .prompt_tokens = 1200, .completion_tokens = 300});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && reply->attempts == 1 && reply->cost_micros == 1050000);
    assert (fake_llm_request_count (test->fake) == 1);

    /* A hit: nothing sent, nothing spent, the same answer. */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && strcmp (reply->content, "card_arrival") == 0);
    assert (reply->attempts == 0 && reply->cost_micros == 0 && !reply->has_usage);
    assert (reply->prompt_tokens == 0 && reply->completion_tokens == 0);
    assert (strcmp (reply->model, "small") == 0 && !reply->fallback && strcmp (reply->finish_reason, "stop") == 0);
    assert (fake_llm_request_count (test->fake) == 1);
    cv_llm_stats (client->llm, &stats);
    assert (stats.cache_hits == 1 && stats.cache_misses == 1);
    assert (stats.calls == 2 && stats.attempts == 1 && stats.failures == 0);
    assert (stats.cost_micros == 1050000 && stats.prompt_tokens == 1200 && stats.completion_tokens == 300);

    /* Another message is another request. */
    cv_llm_message_t other[] = {s_messages[0], {CV_LLM_USER, "I want my money back"}};
    assert (s_ask_for (test, client, client->llm, other, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 2);
    /* One message fewer, too: the system prompt alone. */
    assert (s_ask_for (test, client, client->llm, s_messages, 1, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 3);

    /* A user's answer is that user's: neither the shared one nor another user's. */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "alice", now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 4);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "alice", now) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == 4);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "bob", now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 5);

    /* No scope: never looked up, never stored, whether through cv_llm_chat or not. Messages never
       asked before, so that an answer stored under another scope's key by mistake would show:
       asked with the shared scope or a user's afterwards, each is a miss, sent and answered anew. */
    const cv_llm_message_t personal[] = {{CV_LLM_USER, "My IBAN is DE89 3704 0044 0532 0130 00; is it blocked?"}};
    cv_llm_stats (client->llm, &stats);
    uint64_t hits = stats.cache_hits, misses = stats.cache_misses;
    size_t before = fake_llm_request_count (test->fake);
    for (int i = 0; i < 2; i++) {
        char text[32];
        snprintf (text, sizeof text, "private %d", 2 * i);
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = text});
        assert (s_ask_for (test, client, client->llm, personal, 1, NULL, now) == 0);
        assert (!reply->cached && strcmp (reply->content, text) == 0);
        snprintf (text, sizeof text, "private %d", 2 * i + 1);
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = text});
        assert (cv_llm_chat (client->llm, personal, 1, now + 5000, reply, &client->err) == 0);
        assert (!reply->cached && strcmp (reply->content, text) == 0);
    }
    assert (fake_llm_request_count (test->fake) == before + 4);
    cv_llm_stats (client->llm, &stats);
    assert (stats.cache_hits == hits && stats.cache_misses == misses);
    /* An empty user id is no user: as NULL, never the shared scope. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "empty user 1"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "empty user 2"});
    assert (s_ask_for (test, client, client->llm, personal, 1, "", now) == 0);
    assert (!reply->cached && strcmp (reply->content, "empty user 1") == 0);
    assert (s_ask_for (test, client, client->llm, personal, 1, "", now) == 0);
    assert (!reply->cached && strcmp (reply->content, "empty user 2") == 0);
    assert (fake_llm_request_count (test->fake) == before + 6);
    cv_llm_stats (client->llm, &stats);
    assert (stats.cache_hits == hits && stats.cache_misses == misses);
    assert (!cv_llm_forget (client->llm, personal, 1, ""));
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "asked shared"});
    assert (s_ask_for (test, client, client->llm, personal, 1, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && strcmp (reply->content, "asked shared") == 0);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "asked by alice"});
    assert (s_ask_for (test, client, client->llm, personal, 1, "alice", now) == 0);
    assert (!reply->cached && strcmp (reply->content, "asked by alice") == 0);
    assert (fake_llm_request_count (test->fake) == before + 8);
    /* The shared scope is the constant, not its spelling: a user id that spells it is a user's. */
    char spelled[64];
    snprintf (spelled, sizeof spelled, "%s", CV_LLM_SCOPE_SHARED);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "asked by a user"});
    assert (s_ask_for (test, client, client->llm, personal, 1, spelled, now) == 0);
    assert (!reply->cached && strcmp (reply->content, "asked by a user") == 0);
    assert (s_ask_for (test, client, client->llm, personal, 1, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && strcmp (reply->content, "asked shared") == 0);
    assert (fake_llm_request_count (test->fake) == before + 9);

    /* The TTL: still there a millisecond before it ends, gone when it does. */
    size_t sent = fake_llm_request_count (test->fake);
    now += 59999;
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == sent);
    now += 1;
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == sent + 1);
    /* ...and the answer just sent is stored afresh. */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == sent + 1);

    /* A deadline already passed is not met from the cache either. */
    assert (cv_llm_chat_for (client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now - 1, reply, &client->err) == -1);
    assert (client->err.code == CV_ERR_DEADLINE_EXCEEDED && !reply->cached && !reply->content);
}

/* Only a complete answer of the main model is stored: not an HTTP error, not a malformed answer,
   not the fallback's, not one cut off, filtered, empty or silent about why it ended, and in JSON
   mode not one that is no JSON; cv_llm_forget drops one the caller rejected. */
static void
s_test_cache_failures (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    client->config.max_retries = 0;
    snprintf (client->config.fallback_model, sizeof client->config.fallback_model, "big");
    s_connect (test, client);
    uint64_t now = s_now_ms ();
    cv_llm_set_clock (client->llm, s_manual_clock, &now);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &now);
    cv_llm_reply_t *reply = &client->reply;

    /* Both models fail: nothing stored, the next call is sent. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 500});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == -1);
    /* A malformed answer from both. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = "{\"choices\": []}"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = "not json"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == -1);
    assert (client->err.code == CV_ERR_MALFORMED);
    assert (fake_llm_request_count (test->fake) == 4);

    /* The fallback answers: returned, not stored; the main model is asked again next time. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_STATUS, .status = 503});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from big"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->fallback && !reply->cached && strcmp (reply->content, "from big") == 0);
    assert (fake_llm_request_count (test->fake) == 6);

    /* The main model answers: stored, and the next call is a hit. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "from small"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->fallback && !reply->cached && fake_llm_request_count (test->fake) == 7);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && strcmp (reply->content, "from small") == 0 && fake_llm_request_count (test->fake) == 7);
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.cache_hits == 1 && stats.cache_misses == 4 && stats.failures == 2);

    /* Answers that came back but are none to keep: cut off at max_tokens, filtered to nothing,
       empty, silent about why they ended. Each is the caller's, and the next identical call is
       sent, and stores its complete answer. */
    const char *incomplete[] = {
        "{\"choices\":[{\"message\":{\"content\":\"{\\\"intent\\\": \\\"card_arr\"},"
        "\"finish_reason\":\"length\"}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"content_filter\"}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[{\"message\":{\"content\":\"no reason given\"}}]}",
    };
    for (size_t i = 0; i < sizeof incomplete / sizeof incomplete[0]; i++) {
        char text[64];
        snprintf (text, sizeof text, "Question %zu", i);
        cv_llm_message_t question[] = {{CV_LLM_USER, text}};
        size_t sent = fake_llm_request_count (test->fake);
        fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_MALFORMED, .text = incomplete[i]});
        assert (s_ask_for (test, client, client->llm, question, 1, CV_LLM_SCOPE_SHARED, now) == 0);
        assert (!reply->cached && !reply->fallback && fake_llm_request_count (test->fake) == sent + 1);
        assert (s_ask_for (test, client, client->llm, question, 1, CV_LLM_SCOPE_SHARED, now) == 0);
        assert (!reply->cached && strcmp (reply->content, "ok") == 0);
        assert (fake_llm_request_count (test->fake) == sent + 2);
        assert (s_ask_for (test, client, client->llm, question, 1, CV_LLM_SCOPE_SHARED, now) == 0);
        assert (reply->cached && fake_llm_request_count (test->fake) == sent + 2);
    }

    /* In JSON mode, content that is no JSON is a failure to every caller that asked for JSON: not
       kept; JSON content is. */
    client->config.json_object = true;
    s_connect (test, client);
    cv_llm_set_clock (client->llm, s_manual_clock, &now);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &now);
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "sure! here it is"});
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"card_arrival\"}"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (strcmp (reply->content, "sure! here it is") == 0);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 2);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && strcmp (reply->content, "{\"intent\": \"card_arrival\"}") == 0);
    assert (fake_llm_request_count (test->fake) == 2);

    /* A stored answer the caller rejects is forgotten: the next identical call is sent. Only the
       scope's: forgetting another scope's, or one never stored, drops nothing. */
    assert (!cv_llm_forget (client->llm, s_messages, 2, "alice"));
    assert (!cv_llm_forget (client->llm, s_messages, 1, CV_LLM_SCOPE_SHARED));
    assert (!cv_llm_forget (client->llm, s_messages, 2, NULL));
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == 2);
    assert (cv_llm_forget (client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED));
    assert (!cv_llm_forget (client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED));
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"intent\": \"request_refund\"}"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (!reply->cached && strstr (reply->content, "request_refund") && fake_llm_request_count (test->fake) == 3);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, now) == 0);
    assert (reply->cached && strstr (reply->content, "request_refund"));
}

/* The cache is the process's: a client made for the same endpoint, account and cache settings
   finds what another stored (a client whose key is the same under another variable's name too); a
   client whose request differs (model, max_tokens, temperature, response format) shares the cache
   but not the answer; another TTL, another account at the endpoint (another key) or a smaller
   limit on answers is another cache. */
static void
s_test_cache_shared (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    s_connect (test, client);
    setenv ("CV_LLM_CLIENT_TEST_SAME_KEY", KEY, 1);
    setenv ("CV_LLM_CLIENT_TEST_OTHER_KEY", "sk-another-tenant", 1);
    enum { TWIN, SAME_KEY, MODEL, MAX_TOKENS, TEMPERATURE, JSON, TTL, ACCOUNT, ANSWER_BYTES, VARIANTS };
    cv_llm_config_t configs[VARIANTS];
    for (int i = 0; i < VARIANTS; i++)
        configs[i] = client->config;
    snprintf (configs[SAME_KEY].api_key_env, sizeof configs[SAME_KEY].api_key_env, "CV_LLM_CLIENT_TEST_SAME_KEY");
    snprintf (configs[MODEL].model, sizeof configs[MODEL].model, "other");
    configs[MAX_TOKENS].max_tokens = 16;
    configs[TEMPERATURE].temperature = 0.7;
    configs[JSON].json_object = true;
    configs[TTL].cache_ttl_ms = 1000;
    snprintf (configs[ACCOUNT].api_key_env, sizeof configs[ACCOUNT].api_key_env, "CV_LLM_CLIENT_TEST_OTHER_KEY");
    configs[ANSWER_BYTES].max_response_bytes = 65536;
    cv_llm_t *variants[VARIANTS];
    uint64_t now = s_now_ms ();
    cv_llm_set_clock (client->llm, s_manual_clock, &now);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &now);
    for (int i = 0; i < VARIANTS; i++) {
        cv_error_t err;
        variants[i] = cv_llm_new (&configs[i], test->log, &err);
        assert (variants[i]);
        cv_llm_set_clock (variants[i], s_manual_clock, &now);
        cv_llm_set_cache_clock (variants[i], s_manual_clock, &now);
    }
    assert (cv_llm_cache_count () == 4); /* the first client's, and TTL's, ACCOUNT's, ANSWER_BYTES' */
    cv_llm_reply_t *reply = &client->reply;
    /* JSON, so that the client in JSON mode stores it too. */
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "{\"answer\": \"paid once\"}"});

    assert (s_ask_for (test, client, client->llm, s_messages, 2, "carol", now) == 0);
    assert (s_ask_for (test, client, variants[TWIN], s_messages, 2, "carol", now) == 0);
    assert (reply->cached && strstr (reply->content, "paid once"));
    assert (s_ask_for (test, client, variants[SAME_KEY], s_messages, 2, "carol", now) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == 1);
    cv_llm_stats_t stats;
    cv_llm_stats (variants[TWIN], &stats);
    assert (stats.cache_hits == 1 && stats.cache_misses == 0 && stats.attempts == 0);

    /* Each of the others is sent its own request, ... */
    size_t sent = 1;
    for (int i = MODEL; i < VARIANTS; i++) {
        assert (s_ask_for (test, client, variants[i], s_messages, 2, "carol", now) == 0);
        cv_assert_that (!reply->cached && fake_llm_request_count (test->fake) == ++sent, "variant %d", i);
    }
    /* ...and stored its own: all hits now. */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "carol", now) == 0);
    assert (reply->cached);
    for (int i = 0; i < VARIANTS; i++) {
        assert (s_ask_for (test, client, variants[i], s_messages, 2, "carol", now) == 0);
        cv_assert_that (reply->cached, "variant %d", i);
    }
    assert (fake_llm_request_count (test->fake) == sent);

    /* The last holder gone, the cache goes; one made afresh is empty. */
    for (int i = 0; i < VARIANTS; i++)
        cv_llm_destroy (&variants[i]);
    assert (cv_llm_cache_count () == 1);
    unsetenv ("CV_LLM_CLIENT_TEST_SAME_KEY");
    unsetenv ("CV_LLM_CLIENT_TEST_OTHER_KEY");
    cv_llm_destroy (&client->llm);
    assert (cv_llm_cache_count () == 0);
    s_connect (test, client);
    cv_llm_set_clock (client->llm, s_manual_clock, &now);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &now);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, "carol", now) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 1);

    /* No cache configured: a scope changes nothing. */
    client->config.cache_ttl_ms = 0;
    s_connect (test, client);
    for (int i = 0; i < 2; i++) {
        assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
        assert (!reply->cached);
    }
    assert (fake_llm_request_count (test->fake) == 2 && cv_llm_cache_count () == 0);
    cv_llm_stats (client->llm, &stats);
    assert (stats.cache_hits == 0 && stats.cache_misses == 0);
    assert (!cv_llm_forget (client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED));
}

/* The TTL runs on the cache's clock (the monotonic one's), not the wall clock: a step of the wall
   clock, forwards or back, leaves a stored answer alone; the cache's clock passing the TTL ends
   it. */
static void
s_test_cache_clock (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    s_connect (test, client);
    uint64_t wall = s_now_ms (), steady = 1000;
    cv_llm_set_clock (client->llm, s_manual_clock, &wall);
    cv_llm_set_cache_clock (client->llm, s_manual_clock, &steady);
    cv_llm_reply_t *reply = &client->reply;
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, wall) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 1);
    wall += 3600000; /* the wall clock stepped an hour on */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, wall) == 0);
    assert (reply->cached);
    wall -= 2 * 3600000; /* and an hour back */
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, wall) == 0);
    assert (reply->cached && fake_llm_request_count (test->fake) == 1);
    steady += 60000;
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, wall) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 2);
}

/* An answer over the cache's byte budget is returned whole and not stored; one that fits is, however
   long its prompt. */
static void
s_test_cache_budget (s_test_t *test, s_client_t *client)
{
    client->config.cache_ttl_ms = 60000;
    client->config.cache_max_bytes = 1024;
    s_connect (test, client);
    cv_llm_reply_t *reply = &client->reply;
    char big[2001];
    memset (big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = big});
    for (int i = 0; i < 2; i++) {
        assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
        assert (!reply->cached && strcmp (reply->content, big) == 0);
    }
    assert (fake_llm_request_count (test->fake) == 2);

    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_OK, .text = "small enough"});
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 3);
    assert (s_ask_for (test, client, client->llm, s_messages, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
    assert (reply->cached && strcmp (reply->content, "small enough") == 0);
    assert (fake_llm_request_count (test->fake) == 3);

    /* The key is the request's digest, not its text: a system prompt twice the budget leaves room
       for its short answer. */
    const cv_llm_message_t long_prompt[] = {{CV_LLM_SYSTEM, big}, {CV_LLM_USER, "Where is my card?"}};
    assert (s_ask_for (test, client, client->llm, long_prompt, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
    assert (!reply->cached && fake_llm_request_count (test->fake) == 4);
    assert (s_ask_for (test, client, client->llm, long_prompt, 2, CV_LLM_SCOPE_SHARED, s_now_ms ()) == 0);
    assert (reply->cached && strcmp (reply->content, "small enough") == 0);
    assert (fake_llm_request_count (test->fake) == 4);
}

/* The first-byte timeout: a server that has begun to answer within it is left to finish, however
   long its body takes (up to timeout_ms); one that has not fails the attempt as a timeout,
   retried and counted by the breaker, long before the total timeout would; a deadline shorter
   than the limit still decides. The limits are far from what the stand-in takes to begin (a few
   ms, a few tens under valgrind), and the checks are on the client's own counts and errors, not
   on tight time bounds. */
static void
s_test_first_byte (s_test_t *test, s_client_t *client)
{
    client->config.first_byte_timeout_ms = 1000;
    client->config.timeout_ms = 10000;
    client->config.max_retries = 1;
    s_connect (test, client);

    /* Fast: unaffected. */
    assert (s_ask (test, client, 20000) == 0);
    assert (strcmp (client->reply.content, "ok") == 0 && client->reply.attempts == 1);
    /* Begun at once, finished twice the limit later: the limit is on the start, not the whole. */
    fake_llm_push (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_SLOW_BODY, .delay_ms = 2000, .text = "in time"});
    assert (s_ask (test, client, 20000) == 0);
    assert (strcmp (client->reply.content, "in time") == 0 && client->reply.attempts == 1);
    assert (client->reply.latency_ms >= 2000);

    /* A server that never begins, to a client with a short limit and a breaker that opens after
       three failures. */
    client->config.first_byte_timeout_ms = 200;
    client->config.breaker_threshold = 3;
    client->config.breaker_cooldown_ms = 60000;
    s_connect (test, client);
    fake_llm_set_default (test->fake, &(fake_llm_step_t){.mode = FAKE_LLM_HANG});

    /* A deadline that ends before the limit: the deadline's error, as before. */
    assert (s_ask (test, client, 150) == -1);
    assert (client->err.code == CV_ERR_DEADLINE_EXCEEDED && client->reply.attempts == 1);
    assert (!strstr (client->err.message, "first byte"));

    /* 10 s allowed in all: each attempt gives up at the limit, and the call fails after its
       retry, naming the first byte (the total timeout's error says "no answer in"). */
    uint64_t started = s_now_ms ();
    assert (s_ask (test, client, 20000) == -1);
    uint64_t spent = s_now_ms () - started;
    if (test->verbose)
        printf ("  two attempts without a first byte: %llu ms\n", (unsigned long long) spent);
    assert (client->err.code == CV_ERR_UNAVAILABLE);
    assert (strstr (client->err.message, "no first byte of an answer in 200 ms"));
    assert (client->reply.attempts == 2);
    assert (spent < (uint64_t) client->config.timeout_ms / 2);

    /* Each counted as a failure: with the deadline's, three in a row open the breaker. */
    cv_llm_stats_t stats;
    cv_llm_stats (client->llm, &stats);
    assert (stats.breaker == CV_BREAKER_OPEN && stats.attempts == 3 && stats.failures == 2);
}

/* A raw HTTP server, for what the stand-in cannot do: a connection that waits to be accepted (the
   listen queue full, so the kernel drops the client's SYN and the client sends it again a second
   later), or an interim 1xx status line and then silence. It serves one connection: reads one
   request, writes answer, and holds the connection until the client hangs up or the test ends. */
typedef struct {
    int listener;
    int filler; /* a connection that fills the listen queue for hold_ms, or -1 */
    long hold_ms;
    const char *answer;
    int wake[2]; /* written to at the end: the server stops waiting */
    char base_url[64];
    pthread_t thread;
} s_raw_t;

/* Waits ms (forever when negative) for fd (-1: none) to be readable: true when it is, false at
   the end of the time or the test. */
static bool
s_raw_wait (s_raw_t *raw, int fd, long ms)
{
    struct pollfd fds[2] = {{.fd = raw->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int ready;
    while ((ready = poll (fds, 2, (int) ms)) == -1 && errno == EINTR)
        ;
    return ready > 0 && !fds[0].revents && fds[1].revents;
}

static void *
s_raw_serve (void *arg)
{
    s_raw_t *raw = arg;
    if (raw->filler >= 0) {
        (void) s_raw_wait (raw, -1, raw->hold_ms);
        int queued = accept (raw->listener, NULL, NULL); /* the filler: room for the client now */
        if (queued >= 0)
            close (queued);
    }
    if (!s_raw_wait (raw, raw->listener, -1))
        return NULL;
    int connection = accept (raw->listener, NULL, NULL);
    if (connection < 0)
        return NULL;
    /* The request: its headers, then Content-Length bytes of body (curl's spelling). */
    char request[16384];
    size_t got = 0;
    while (got < sizeof request - 1 && s_raw_wait (raw, connection, -1)) {
        ssize_t bytes = read (connection, request + got, sizeof request - 1 - got);
        if (bytes <= 0)
            break;
        got += (size_t) bytes;
        request[got] = '\0';
        const char *end = strstr (request, "\r\n\r\n");
        const char *length = strstr (request, "Content-Length: ");
        if (end && (!length || got >= (size_t) (end + 4 - request) + strtoul (length + 16, NULL, 10)))
            break;
    }
    size_t size = strlen (raw->answer), sent = 0;
    while (sent < size) {
        ssize_t bytes = write (connection, raw->answer + sent, size - sent);
        if (bytes <= 0)
            break;
        sent += (size_t) bytes;
    }
    while (s_raw_wait (raw, connection, -1) && read (connection, request, sizeof request) > 0)
        ;
    close (connection);
    return NULL;
}

/* Starts raw on a free port, with its listen queue full for hold_ms when hold_ms > 0. */
static void
s_raw_start (s_raw_t *raw, long hold_ms, const char *answer)
{
    *raw = (s_raw_t){.filler = -1, .hold_ms = hold_ms, .answer = answer};
    raw->listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (raw->listener >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert (bind (raw->listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (raw->listener, 0) == 0); /* room for one connection waiting to be accepted */
    socklen_t size = sizeof address;
    assert (getsockname (raw->listener, (struct sockaddr *) &address, &size) == 0);
    snprintf (raw->base_url, sizeof raw->base_url, "http://127.0.0.1:%d/v1", ntohs (address.sin_port));
    if (hold_ms > 0) {
        raw->filler = socket (AF_INET, SOCK_STREAM, 0);
        assert (raw->filler >= 0);
        assert (connect (raw->filler, (struct sockaddr *) &address, sizeof address) == 0);
    }
    assert (pipe (raw->wake) == 0);
    assert (pthread_create (&raw->thread, NULL, s_raw_serve, raw) == 0);
}

static void
s_raw_stop (s_raw_t *raw)
{
    assert (write (raw->wake[1], "", 1) == 1);
    pthread_join (raw->thread, NULL);
    if (raw->filler >= 0)
        close (raw->filler);
    close (raw->listener);
    close (raw->wake[0]);
    close (raw->wake[1]);
}

/* The first-byte limit runs from the request, not from before the connection: a connection that
   takes longer than the limit to be made (the listen queue full: a second until the client's SYN
   is sent again) is connect_timeout_ms's business, and the answer that then begins at once is
   taken. An interim status line (103 Early Hints) does not begin the answer: a server that sends
   one and then stalls fails on the limit, not on the total timeout. */
static void
s_test_first_byte_start (s_test_t *test, s_client_t *client)
{
    const char *body =
        "{\"choices\":[{\"message\":{\"content\":\"after a slow connect\"},\"finish_reason\":\"stop\"}]}";
    char answer[256];
    snprintf (answer, sizeof answer,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen (body),
              body);
    s_raw_t raw;
    s_raw_start (&raw, 500, answer);
    snprintf (client->config.base_url, sizeof client->config.base_url, "%s", raw.base_url);
    client->config.first_byte_timeout_ms = 300;
    client->config.connect_timeout_ms = 5000;
    client->config.timeout_ms = 10000;
    client->config.max_retries = 0;
    s_connect (test, client);
    assert (s_ask (test, client, 20000) == 0);
    assert (strcmp (client->reply.content, "after a slow connect") == 0 && client->reply.attempts == 1);
    /* The connection did take longer than the limit: what the call is about. */
    assert (client->reply.latency_ms > (uint64_t) client->config.first_byte_timeout_ms);
    cv_llm_destroy (&client->llm);
    s_raw_stop (&raw);

    s_raw_start (&raw, 0, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
    snprintf (client->config.base_url, sizeof client->config.base_url, "%s", raw.base_url);
    client->config.timeout_ms = 5000;
    s_connect (test, client);
    assert (s_ask (test, client, 20000) == -1);
    assert (client->err.code == CV_ERR_UNAVAILABLE
            && strstr (client->err.message, "no first byte of an answer in 300 ms"));
    assert (client->reply.attempts == 1);
    cv_llm_destroy (&client->llm);
    s_raw_stop (&raw);
}

void
llm_client_test (bool verbose)
{
    setenv (KEY_VARIABLE, KEY, 1);
    s_test_t test = {.verbose = verbose};
    test.fake = fake_llm_new (0, verbose);
    assert (test.fake);
    test.log = cv_log_new ("llm_client_test", "selftest", verbose);
    s_run (&test, s_test_good_call);
    s_run (&test, s_test_retries);
    s_run (&test, s_test_deadlines);
    s_run (&test, s_test_fallback);
    s_run (&test, s_test_cost);
    s_run (&test, s_test_breaker);
    s_run (&test, s_test_shared_breaker);
    s_run (&test, s_test_threads_share);
    s_run (&test, s_test_fallback_while_open);
    s_run (&test, s_test_fallback_endpoint);
    s_run (&test, s_test_json);
    s_run (&test, s_test_json_schema);
    s_run (&test, s_test_stream);
    s_run (&test, s_test_metrics);
    s_run (&test, s_test_cache);
    s_run (&test, s_test_cache_failures);
    s_run (&test, s_test_cache_shared);
    s_run (&test, s_test_cache_budget);
    s_run (&test, s_test_cache_clock);
    s_run (&test, s_test_first_byte);
    s_run (&test, s_test_first_byte_start);
    assert (cv_llm_breakers_count () == 0); /* every client gave its breakers back */
    assert (cv_llm_cache_count () == 0);    /* and its cache */
    cv_log_destroy (&test.log);
    fake_llm_destroy (&test.fake);
    unsetenv (KEY_VARIABLE);
    if (verbose)
        printf ("llm_client_test: ok\n");
}
