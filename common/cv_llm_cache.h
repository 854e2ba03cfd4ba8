/* The LLM client's answer caches, one per endpoint and cache settings for the whole process: every
   cv_llm made for the same endpoint, TTL and bounds shares one cv_cache behind a mutex, so an
   answer one handler thread paid for is found by the others, instead of each thread keeping (and
   paying to fill) a cache of its own.

   A cache lives while a client holds it, as the breakers do (cv_llm_breakers):
   cv_llm_cache_acquire makes it on the first call for its key and counts the later ones;
   cv_llm_cache_release gives one back and frees the cache with the last. The key is all that
   may make one client's answers wrong for another (cv_llm_cache_settings_t): the endpoint's URL;
   the account, as the digest of the API key, so that a tenant is never served what another
   tenant's key paid for (one endpoint, two accounts); the TTL, since a client configured for a
   short TTL must never be served an answer stored for a longer one; the bounds; and the longest
   answer the clients accept, since one that refuses answers over 64 KB must not be served a
   megabyte another stored. Two configurations that disagree get caches of their own. What the entries are keyed by (the
   model, the messages, the settings, the user) is the client's business (cv_llm.c); this holds bytes.

   Thread-safe: one mutex guards the registry (taken when a client is made or destroyed), and each
   cache has its own, held for one look-up or store. A look-up returns a copy, because cv_cache's
   borrowed pointer is only good until the next call on the cache, which another thread may make
   the moment the lock is let go. */
#ifndef CV_LLM_CACHE_H
#define CV_LLM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_cache.h"
#include "cv_error.h"

typedef struct _cv_llm_cache_t cv_llm_cache_t;

/* What a cache is shared by (plain data): clients that agree on all of it share one. */
typedef struct {
    const char *endpoint;                   /* the main endpoint's URL (borrowed; the cache copies it) */
    uint8_t account[CV_CACHE_DIGEST_BYTES]; /* the SHA-256 of the API key (of "" for none) */
    uint64_t ttl_ms;                        /* >= 1 */
    size_t max_entries;                     /* >= 1 */
    size_t max_bytes;                       /* >= 1, keys and values */
    size_t max_answer_bytes;                /* the clients' max_response_bytes */
} cv_llm_cache_settings_t;

/* The process's cache for settings; never NULL. Give it back with cv_llm_cache_release. */
cv_llm_cache_t *cv_llm_cache_acquire (const cv_llm_cache_settings_t *settings);
/* Gives back *cache_p (NULL is allowed) and sets it to NULL; the last holder frees it. */
void cv_llm_cache_release (cv_llm_cache_t **cache_p);

/* A copy of the live value under key (key_size >= 1 bytes), the caller's to free, followed by a
   NUL that *value_size does not count (so a text value reads as a string); NULL when there is
   none, or it has expired at now_ms. */
uint8_t *cv_llm_cache_lookup (cv_llm_cache_t *self, const void *key, size_t key_size, uint64_t now_ms,
                              size_t *value_size) CV_MUST_CHECK;

/* Stores a copy of value under key until now_ms + the cache's TTL, as cv_cache_put does: 0, or -1
   when key and value alone are over the byte budget (nothing is stored). */
int cv_llm_cache_store (cv_llm_cache_t *self, const void *key, size_t key_size, const void *value, size_t value_size,
                        uint64_t now_ms);

/* Drops the value under key, live or not: true when there was one. */
bool cv_llm_cache_forget (cv_llm_cache_t *self, const void *key, size_t key_size);

/* What the cache holds and has done, every holder's look-ups together. */
void cv_llm_cache_stats (cv_llm_cache_t *self, cv_cache_stats_t *stats);

/* Caches held now, for tests. */
size_t cv_llm_cache_count (void);

void cv_llm_cache_test (bool verbose);

#endif
