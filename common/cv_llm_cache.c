/* The process's LLM answer caches: a small list of refcounted cv_caches, each behind its own
   mutex, keyed by endpoint and settings under one registry mutex. A process talks to a handful of
   endpoints, so a list is enough. */
#include "cv_llm_cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

struct _cv_llm_cache_t {
    struct _cv_llm_cache_t *next;     /* in the registry, guarded by s_lock */
    cv_llm_cache_settings_t settings; /* its endpoint this cache's copy */
    size_t holders;                   /* guarded by s_lock */
    pthread_mutex_t lock;             /* around cache, which is not thread-safe itself */
    cv_cache_t *cache;
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static cv_llm_cache_t *s_caches; /* guarded by s_lock */

static bool
s_same_settings (const cv_llm_cache_settings_t *a, const cv_llm_cache_settings_t *b)
{
    return strcmp (a->endpoint, b->endpoint) == 0 && memcmp (a->account, b->account, sizeof a->account) == 0
           && a->ttl_ms == b->ttl_ms && a->max_entries == b->max_entries && a->max_bytes == b->max_bytes
           && a->max_answer_bytes == b->max_answer_bytes;
}

cv_llm_cache_t *
cv_llm_cache_acquire (const cv_llm_cache_settings_t *settings)
{
    assert (settings && settings->endpoint);
    assert (settings->ttl_ms >= 1 && settings->max_entries >= 1 && settings->max_bytes >= 1);
    pthread_mutex_lock (&s_lock);
    cv_llm_cache_t *self = s_caches;
    while (self && !s_same_settings (&self->settings, settings))
        self = self->next;
    if (!self) {
        self = cv_calloc (1, sizeof *self);
        self->settings = *settings;
        self->settings.endpoint = cv_strdup (settings->endpoint);
        int rc = pthread_mutex_init (&self->lock, NULL);
        assert (rc == 0); /* a default mutex: nothing to fail on Linux */
        (void) rc;
        self->cache = cv_cache_new (settings->max_entries, settings->max_bytes);
        self->next = s_caches;
        s_caches = self;
    }
    self->holders++;
    pthread_mutex_unlock (&s_lock);
    return self;
}

void
cv_llm_cache_release (cv_llm_cache_t **cache_p)
{
    assert (cache_p);
    cv_llm_cache_t *self = *cache_p;
    if (!self)
        return;
    pthread_mutex_lock (&s_lock);
    cv_llm_cache_t **link = &s_caches;
    while (*link && *link != self)
        link = &(*link)->next;
    assert (*link); /* a cache this registry never gave out */
    bool last = --self->holders == 0;
    if (last)
        *link = self->next;
    pthread_mutex_unlock (&s_lock);
    /* Unlinked, it is this thread's alone: freeing up to a million entries holds up no other
       client's cv_llm_new or cv_llm_destroy. */
    if (last) {
        cv_cache_destroy (&self->cache);
        pthread_mutex_destroy (&self->lock);
        free ((char *) self->settings.endpoint);
        free (self);
    }
    *cache_p = NULL;
}

uint8_t *
cv_llm_cache_lookup (cv_llm_cache_t *self, const void *key, size_t key_size, uint64_t now_ms, size_t *value_size)
{
    assert (self && key && key_size >= 1 && value_size);
    pthread_mutex_lock (&self->lock);
    size_t size = 0;
    const void *found = cv_cache_get (self->cache, key, key_size, now_ms, &size);
    uint8_t *copy = NULL;
    if (found) {
        copy = cv_malloc (size + 1);
        memcpy (copy, found, size);
        copy[size] = '\0';
    }
    pthread_mutex_unlock (&self->lock);
    *value_size = copy ? size : 0;
    return copy;
}

int
cv_llm_cache_store (cv_llm_cache_t *self, const void *key, size_t key_size, const void *value, size_t value_size,
                    uint64_t now_ms)
{
    assert (self && key && key_size >= 1);
    pthread_mutex_lock (&self->lock);
    int rc = cv_cache_put (self->cache, key, key_size, value, value_size, self->settings.ttl_ms, now_ms);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

bool
cv_llm_cache_forget (cv_llm_cache_t *self, const void *key, size_t key_size)
{
    assert (self && key && key_size >= 1);
    pthread_mutex_lock (&self->lock);
    bool removed = cv_cache_remove (self->cache, key, key_size);
    pthread_mutex_unlock (&self->lock);
    return removed;
}

void
cv_llm_cache_stats (cv_llm_cache_t *self, cv_cache_stats_t *stats)
{
    assert (self && stats);
    pthread_mutex_lock (&self->lock);
    cv_cache_stats (self->cache, stats);
    pthread_mutex_unlock (&self->lock);
}

size_t
cv_llm_cache_count (void)
{
    pthread_mutex_lock (&s_lock);
    size_t count = 0;
    for (cv_llm_cache_t *self = s_caches; self; self = self->next)
        count++;
    pthread_mutex_unlock (&s_lock);
    return count;
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

#define TEST_THREADS 4
#define TEST_ROUNDS 500
#define TEST_URL "http://a/v1/chat/completions"

/* The settings the self-test's caches differ by, from one the threads share. */
static cv_llm_cache_settings_t
s_test_settings (const char *endpoint, uint64_t ttl_ms, size_t max_entries, size_t max_bytes)
{
    return (cv_llm_cache_settings_t){.endpoint = endpoint,
                                     .ttl_ms = ttl_ms,
                                     .max_entries = max_entries,
                                     .max_bytes = max_bytes,
                                     .max_answer_bytes = 1048576};
}

/* A holder on its own thread: acquires the shared cache, stores and reads its own keys and the
   common one, and gives it back; the values it reads must be whole, never another's half-written. */
static void *
s_test_holder (void *arg)
{
    cv_llm_cache_t *shared = arg;
    cv_llm_cache_settings_t settings = s_test_settings (TEST_URL, 1000, 64, 4096);
    cv_llm_cache_t *cache = cv_llm_cache_acquire (&settings);
    assert (cache == shared); /* the test's own hold keeps it alive: always the same one */
    char key[32], value[32];
    for (int i = 0; i < TEST_ROUNDS; i++) {
        snprintf (key, sizeof key, "k%d", i % 80); /* more keys than entries: evictions too */
        snprintf (value, sizeof value, "v%d", i % 80);
        assert (cv_llm_cache_store (cache, key, strlen (key), value, strlen (value), 1) == 0);
        size_t size;
        uint8_t *got = cv_llm_cache_lookup (cache, key, strlen (key), 1, &size);
        if (got) /* another thread may have pushed it out already, but never changed it */
            cv_assert_that (size == strlen (value) && strcmp ((char *) got, value) == 0, "%s: %s", key, got);
        free (got);
    }
    cv_llm_cache_release (&cache);
    return NULL;
}

void
cv_llm_cache_test (bool verbose)
{
    size_t before = cv_llm_cache_count ();
    cv_llm_cache_settings_t settings = s_test_settings (TEST_URL, 1000, 64, 4096);
    cv_llm_cache_t *one = cv_llm_cache_acquire (&settings);
    char same_url[] = TEST_URL; /* compared by value, not by address */
    settings.endpoint = same_url;
    cv_llm_cache_t *two = cv_llm_cache_acquire (&settings);
    assert (one && one == two); /* same endpoint and settings: one cache */
    settings = s_test_settings ("http://b/v1/chat/completions", 1000, 64, 4096);
    cv_llm_cache_t *endpoint = cv_llm_cache_acquire (&settings);
    settings = s_test_settings (TEST_URL, 500, 64, 4096);
    cv_llm_cache_t *ttl = cv_llm_cache_acquire (&settings);
    settings = s_test_settings (TEST_URL, 1000, 32, 4096);
    cv_llm_cache_t *entries = cv_llm_cache_acquire (&settings);
    settings = s_test_settings (TEST_URL, 1000, 64, 2048);
    cv_llm_cache_t *bytes = cv_llm_cache_acquire (&settings);
    /* Another account at the endpoint, or clients that refuse longer answers: caches of their own. */
    settings = s_test_settings (TEST_URL, 1000, 64, 4096);
    settings.account[0] = 1;
    cv_llm_cache_t *account = cv_llm_cache_acquire (&settings);
    settings = s_test_settings (TEST_URL, 1000, 64, 4096);
    settings.max_answer_bytes = 65536;
    cv_llm_cache_t *answers = cv_llm_cache_acquire (&settings);
    cv_llm_cache_t *others[] = {endpoint, ttl, entries, bytes, account, answers};
    size_t other_count = sizeof others / sizeof others[0];
    for (size_t i = 0; i < other_count; i++) {
        assert (others[i] != one);
        for (size_t j = i + 1; j < other_count; j++)
            assert (others[i] != others[j]);
    }
    assert (cv_llm_cache_count () == before + 7);

    /* Shared: what one holder stores, the other finds, as a copy with a NUL after it. */
    size_t size = 99;
    assert (!cv_llm_cache_lookup (two, "q", 1, 0, &size) && size == 0);
    assert (cv_llm_cache_store (one, "q", 1, "answer", 6, 0) == 0);
    uint8_t *got = cv_llm_cache_lookup (two, "q", 1, 999, &size);
    assert (got && size == 6 && strcmp ((char *) got, "answer") == 0);
    got[0] = 'X'; /* the copy is the caller's: the cache's value is untouched */
    free (got);
    got = cv_llm_cache_lookup (one, "q", 1, 999, &size);
    assert (got && memcmp (got, "answer", 6) == 0);
    free (got);
    /* ...not another endpoint's or settings' cache, */
    assert (!cv_llm_cache_lookup (endpoint, "q", 1, 0, &size) && !cv_llm_cache_lookup (ttl, "q", 1, 0, &size));
    /* ...for the cache's TTL: gone at put's now + 1000. */
    assert (!cv_llm_cache_lookup (one, "q", 1, 1000, &size));
    /* Forgotten: gone for every holder; forgetting it again finds nothing. */
    assert (cv_llm_cache_store (one, "f", 1, "x", 1, 0) == 0);
    assert (cv_llm_cache_forget (two, "f", 1) && !cv_llm_cache_forget (one, "f", 1));
    assert (!cv_llm_cache_lookup (one, "f", 1, 0, &size));
    /* An empty value is a value. */
    assert (cv_llm_cache_store (one, "e", 1, NULL, 0, 0) == 0);
    got = cv_llm_cache_lookup (one, "e", 1, 0, &size);
    assert (got && size == 0 && got[0] == '\0');
    free (got);

    /* Over the byte budget: refused, nothing stored. */
    char big[3000];
    memset (big, 'x', sizeof big);
    assert (cv_llm_cache_store (bytes, "big", 3, big, sizeof big, 0) == -1);
    assert (!cv_llm_cache_lookup (bytes, "big", 3, 0, &size));
    cv_cache_stats_t stats;
    cv_llm_cache_stats (one, &stats);
    assert (stats.entries == 1 && stats.hits == 3 && stats.misses == 3 && stats.expirations == 1);

    /* Holders on several threads come and go, storing and reading at once; the cache stays while
       one holds it. */
    pthread_t threads[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++)
        assert (pthread_create (&threads[i], NULL, s_test_holder, one) == 0);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join (threads[i], NULL);
    cv_llm_cache_stats (one, &stats);
    assert (stats.entries == 64 && stats.evictions > 0);
    if (verbose)
        printf ("  %d threads: %zu entries, %llu hits, %llu evictions\n", TEST_THREADS, stats.entries,
                (unsigned long long) stats.hits, (unsigned long long) stats.evictions);

    /* Released: the last holder frees it, and the next acquire starts an empty one. */
    cv_llm_cache_release (&one);
    assert (!one && cv_llm_cache_count () == before + 7);
    cv_llm_cache_release (&two);
    assert (cv_llm_cache_count () == before + 6);
    settings = s_test_settings (TEST_URL, 1000, 64, 4096);
    cv_llm_cache_t *fresh = cv_llm_cache_acquire (&settings);
    cv_llm_cache_stats (fresh, &stats);
    assert (stats.entries == 0 && stats.hits == 0);
    cv_llm_cache_release (&fresh);
    cv_llm_cache_release (&endpoint);
    cv_llm_cache_release (&ttl);
    cv_llm_cache_release (&entries);
    cv_llm_cache_release (&bytes);
    cv_llm_cache_release (&account);
    cv_llm_cache_release (&answers);
    cv_llm_cache_release (&bytes); /* NULL: nothing */
    assert (cv_llm_cache_count () == before);
    if (verbose)
        printf ("cv_llm_cache: ok\n");
}
