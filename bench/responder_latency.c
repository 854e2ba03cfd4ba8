/* Benchmark: what the responder's reply costs, and what the LLM client adds to a call.

     bench-responder AGENT.yaml [ROUNDS]

   1. Template replies: the demo agent's ladder (responder_templates_render: the rung chosen, the
      placeholders filled, the output guardrails), on four contexts as the responder builds them
      (a card on its way, a help-page answer, an exchange rate, and one whose template cannot
      render, which goes down to the intent's static text), one after another on this thread.
   2. The LLM client against the stand-in LLM server (tests/fakes) on loopback: a call to a
      stand-in that answers at once, whose whole time is the client's overhead and the loopback's;
      the same with the stand-in taking 20 ms, less those 20 ms; and a call answered from the
      answer cache.

   Prints p50, p90, p99 and max in microseconds for each. Not a test: nothing is asserted. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "cv_config.h"
#include "cv_histogram.h"
#include "cv_llm.h"
#include "fake_llm.h"
#include "responder_templates.h"

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

/* One line: the histogram's percentiles, in µs, less offset_ns from each. */
static void
s_report (const char *what, const cv_histogram_t *ns, int64_t offset_ns)
{
#define AT(q) ((double) (cv_histogram_value_at (ns, (q)) - offset_ns) / 1000.0)
    printf ("%-44s n=%llu  p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  max %8.1f us\n", what,
            (unsigned long long) cv_histogram_count (ns), AT (50.0), AT (90.0), AT (99.0),
            (double) (cv_histogram_max (ns) - offset_ns) / 1000.0);
#undef AT
}

static const char *const s_contexts[] = {
    "{\"user_id\": \"cust-1\", \"intent\": {\"name\": \"card_arrival\"},"
    " \"evidence\": {\"cards_in_delivery\": [{\"last4\": \"9052\", \"expected_arrival\": \"Sunday 18 January\","
    " \"delivery_tracking\": \"CP482913374IE\"}]},"
    " \"decision\": {\"rule\": \"card_on_its_way\", \"outcome\": \"answer\", \"actions\": []}}",
    "{\"user_id\": \"cust-1\", \"intent\": {\"name\": \"card_linking\"},"
    " \"evidence\": {\"kb_answers\": [{\"title\": \"Linking a card\", \"snippet\": \"tap Cards, then Link\"}]},"
    " \"decision\": {\"rule\": \"kb_answer\", \"outcome\": \"answer\", \"actions\": []}}",
    "{\"user_id\": \"cust-1\", \"intent\": {\"name\": \"exchange_rate\"},"
    " \"evidence\": {\"exchange_rates\": [{\"base\": \"EUR\", \"quote\": \"GBP\", \"rate\": \"0.8600\","
    " \"as_of\": \"15 Jan 2026 11:00\"}]},"
    " \"decision\": {\"rule\": \"exchange_rates\", \"outcome\": \"answer\", \"actions\": []}}",
    "{\"user_id\": \"cust-1\", \"intent\": {\"name\": \"card_arrival\"}, \"evidence\": {\"cards_in_delivery\": []},"
    " \"decision\": {\"rule\": \"card_on_its_way\", \"outcome\": \"answer\", \"actions\": []}}",
};

static void
s_templates (const char *agent_path, size_t rounds)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_load (agent_path, &err);
    if (!agent) {
        fprintf (stderr, "bench-responder: %s\n", err.message);
        exit (1);
    }
    responder_templates_t *templates = responder_templates_new (agent, &err);
    if (!templates) {
        fprintf (stderr, "bench-responder: %s\n", err.message);
        exit (1);
    }
    size_t count = sizeof s_contexts / sizeof *s_contexts;
    json_t *contexts[sizeof s_contexts / sizeof *s_contexts];
    for (size_t i = 0; i < count; i++)
        assert ((contexts[i] = json_loads (s_contexts[i], 0, NULL)));
    cv_histogram_t *ns = cv_histogram_new (1000000000, 3);
    for (size_t round = 0; round < rounds; round++)
        for (size_t i = 0; i < count; i++) {
            const char *used;
            responder_steps_t steps = {0};
            int64_t started = s_now_ns ();
            char *reply = responder_templates_render (templates, contexts[i], &used, &steps, NULL, NULL, NULL);
            cv_histogram_record (ns, s_now_ns () - started);
            assert (reply);
            if (round == 0)
                printf ("  context %zu: %s\n", i + 1, used);
            free (reply);
        }
    s_report ("template reply (ladder, render, guardrails)", ns, 0);
    cv_histogram_destroy (&ns);
    for (size_t i = 0; i < count; i++)
        json_decref (contexts[i]);
    responder_templates_destroy (&templates);
    cv_config_destroy (&agent);
}

static const cv_llm_message_t s_messages[] = {
    {CV_LLM_SYSTEM, "You are the support desk of a bank. Answer in at most three sentences."},
    {CV_LLM_SYSTEM, "Facts (JSON): {\"intent\":\"card_linking\",\"evidence.kb_answers.0.title\":\"Linking a card\"}"},
    {CV_LLM_USER, "How do I link my new card?"},
};

/* calls calls of llm, the stand-in answering as step, cached in scope (NULL: not cached). */
static void
s_calls (const char *what, fake_llm_t *fake, cv_llm_t *llm, const fake_llm_step_t *step, const char *scope,
         size_t calls, int64_t offset_ns)
{
    fake_llm_set_default (fake, step);
    cv_histogram_t *ns = cv_histogram_new (10000000000, 3);
    cv_llm_reply_t reply = {0};
    for (size_t i = 0; i < calls; i++) {
        cv_error_t err;
        int64_t started = s_now_ns ();
        int rc = cv_llm_chat_for (llm, s_messages, 3, scope, (uint64_t) zclock_time () + 10000, &reply, &err);
        cv_histogram_record (ns, s_now_ns () - started);
        if (rc) {
            fprintf (stderr, "bench-responder: %s\n", err.message);
            exit (1);
        }
        fake_llm_reset (fake); /* its journal would grow */
        fake_llm_set_default (fake, step);
    }
    cv_llm_reply_reset (&reply);
    s_report (what, ns, offset_ns);
    cv_histogram_destroy (&ns);
}

static void
s_llm (size_t calls)
{
    fake_llm_t *fake = fake_llm_new (0, false);
    assert (fake);
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "%s", fake_llm_base_url (fake));
    snprintf (config.model, sizeof config.model, "stand-in");
    config.cache_ttl_ms = 600000;
    cv_error_t err;
    cv_llm_t *llm = cv_llm_new (&config, NULL, &err);
    if (!llm) {
        fprintf (stderr, "bench-responder: %s\n", err.message);
        exit (1);
    }
    fake_llm_step_t at_once = {.mode = FAKE_LLM_OK, .text = "Tap Cards, then Link."};
    fake_llm_step_t slow = {.mode = FAKE_LLM_SLOW, .delay_ms = 20, .text = "Tap Cards, then Link."};
    s_calls ("LLM call, stand-in answering at once", fake, llm, &at_once, NULL, calls, 0);
    s_calls ("LLM call, stand-in taking 20 ms, less 20 ms", fake, llm, &slow, NULL, calls / 10 + 1, 20000000);
    s_calls ("LLM call answered from the cache", fake, llm, &at_once, CV_LLM_SCOPE_SHARED, calls, 0);
    cv_llm_stats_t stats;
    cv_llm_stats (llm, &stats);
    printf ("  connections opened: %llu; cache hits %llu, misses %llu\n", (unsigned long long) stats.connections,
            (unsigned long long) stats.cache_hits, (unsigned long long) stats.cache_misses);
    cv_llm_destroy (&llm);
    fake_llm_destroy (&fake);
}

int
main (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv[1], "--help") == 0) {
        fprintf (argc < 2 ? stderr : stdout, "usage: bench-responder AGENT.yaml [ROUNDS]\n");
        return argc < 2 ? 2 : 0;
    }
    size_t rounds = argc > 2 ? (size_t) atoi (argv[2]) : 20000;
    s_templates (argv[1], rounds);
    s_llm (rounds / 4 + 1);
    return 0;
}
