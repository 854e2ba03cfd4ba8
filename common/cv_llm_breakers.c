/* The process's LLM breakers: a small list of refcounted cv_breakers keyed by endpoint, model and
   settings, under one mutex. A process talks to a handful of endpoints, so a list is enough. */
#include "cv_llm_breakers.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

typedef struct s_entry {
    struct s_entry *next;
    char *endpoint;
    char *model;
    unsigned threshold;
    uint64_t cooldown_ms;
    cv_breaker_t *breaker;
    size_t holders;
} s_entry_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_entry_t *s_entries; /* guarded by s_lock */

cv_breaker_t *
cv_llm_breakers_acquire (const char *endpoint, const char *model, unsigned threshold, uint64_t cooldown_ms)
{
    assert (endpoint && model && threshold >= 1 && cooldown_ms >= 1);
    pthread_mutex_lock (&s_lock);
    s_entry_t *entry = s_entries;
    while (entry
           && (strcmp (entry->endpoint, endpoint) != 0 || strcmp (entry->model, model) != 0
               || entry->threshold != threshold || entry->cooldown_ms != cooldown_ms))
        entry = entry->next;
    if (!entry) {
        entry = cv_calloc (1, sizeof *entry);
        entry->endpoint = cv_strdup (endpoint);
        entry->model = cv_strdup (model);
        entry->threshold = threshold;
        entry->cooldown_ms = cooldown_ms;
        entry->breaker = cv_breaker_new (threshold, cooldown_ms);
        entry->next = s_entries;
        s_entries = entry;
    }
    entry->holders++;
    cv_breaker_t *breaker = entry->breaker;
    pthread_mutex_unlock (&s_lock);
    return breaker;
}

void
cv_llm_breakers_release (cv_breaker_t **breaker_p)
{
    assert (breaker_p);
    if (!*breaker_p)
        return;
    pthread_mutex_lock (&s_lock);
    s_entry_t **link = &s_entries;
    while (*link && (*link)->breaker != *breaker_p)
        link = &(*link)->next;
    s_entry_t *entry = *link;
    assert (entry); /* a breaker this registry never gave out */
    if (--entry->holders == 0) {
        *link = entry->next;
        cv_breaker_destroy (&entry->breaker);
        free (entry->endpoint);
        free (entry->model);
        free (entry);
    }
    pthread_mutex_unlock (&s_lock);
    *breaker_p = NULL;
}

size_t
cv_llm_breakers_count (void)
{
    pthread_mutex_lock (&s_lock);
    size_t count = 0;
    for (s_entry_t *entry = s_entries; entry; entry = entry->next)
        count++;
    pthread_mutex_unlock (&s_lock);
    return count;
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

#define TEST_THREADS 4
#define TEST_ROUNDS 200

static void *
s_test_holder (void *arg)
{
    cv_breaker_t *shared = arg;
    for (int i = 0; i < TEST_ROUNDS; i++) {
        cv_breaker_t *breaker = cv_llm_breakers_acquire ("http://a/v1/chat/completions", "m", 5, 1000);
        assert (breaker == shared); /* the test's own hold keeps it alive: always the same one */
        cv_llm_breakers_release (&breaker);
        assert (!breaker);
    }
    return NULL;
}

void
cv_llm_breakers_test (bool verbose)
{
    size_t before = cv_llm_breakers_count ();
    const char *url = "http://a/v1/chat/completions";
    cv_breaker_t *one = cv_llm_breakers_acquire (url, "m", 5, 1000);
    cv_breaker_t *two = cv_llm_breakers_acquire (url, "m", 5, 1000);
    assert (one && one == two); /* same endpoint, model, settings: one breaker */
    cv_breaker_t *model = cv_llm_breakers_acquire (url, "other", 5, 1000);
    cv_breaker_t *endpoint = cv_llm_breakers_acquire ("http://b/v1/chat/completions", "m", 5, 1000);
    cv_breaker_t *settings = cv_llm_breakers_acquire (url, "m", 3, 1000);
    assert (model != one && endpoint != one && settings != one && model != endpoint);
    assert (cv_llm_breakers_count () == before + 4);

    /* Shared: what one holder reports, the other sees. */
    for (int i = 0; i < 5; i++) {
        assert (cv_breaker_allow (one, 1));
        cv_breaker_failure (one, 1);
    }
    assert (cv_breaker_state (two) == CV_BREAKER_OPEN && !cv_breaker_allow (two, 2));
    assert (cv_breaker_state (model) == CV_BREAKER_CLOSED);

    /* Holders on several threads come and go; the breaker stays while one holds it. */
    pthread_t threads[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++)
        assert (pthread_create (&threads[i], NULL, s_test_holder, one) == 0);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join (threads[i], NULL);
    assert (cv_breaker_state (one) == CV_BREAKER_OPEN);

    /* Released: the last holder frees it, and the next acquire starts a fresh, closed one. */
    cv_llm_breakers_release (&one);
    assert (!one && cv_llm_breakers_count () == before + 4);
    cv_llm_breakers_release (&two);
    assert (cv_llm_breakers_count () == before + 3);
    cv_breaker_t *fresh = cv_llm_breakers_acquire (url, "m", 5, 1000);
    assert (cv_breaker_state (fresh) == CV_BREAKER_CLOSED);
    cv_llm_breakers_release (&fresh);
    cv_llm_breakers_release (&model);
    cv_llm_breakers_release (&endpoint);
    cv_llm_breakers_release (&settings);
    cv_llm_breakers_release (&settings); /* NULL: nothing */
    assert (cv_llm_breakers_count () == before);
    if (verbose)
        printf ("cv_llm_breakers: ok\n");
}
