/* A cache of byte values under byte-string keys, each with a time to live, bounded by an entry
   count and a byte budget: what does not fit pushes out the least recently used entries.

   The key is the caller's (cv_cache_key builds one from a tool's name, the user it is for and
   its parameters); the cache compares keys byte for byte, embedded NULs included. An entry
   lives from its put until now_ms reaches put's now_ms + ttl_ms; an expired entry is never
   returned, and is dropped when a get finds it, when the space is needed, or by cv_cache_purge.
   The byte budget counts the bytes of keys and values; the bookkeeping of an entry (about 100
   bytes more) is bounded by the entry count.

   cv_cache_get returns a borrowed pointer into the cache, not a copy: it stays valid until the
   next call on this cache of any kind, so copy what must outlive that. Counters say what the
   cache did: hits, misses, expirations and evictions.

   The caller passes the time (now_ms) to every method, so tests move it by hand. Not thread-safe:
   one cache belongs to one thread or event loop. */
#ifndef CV_CACHE_H
#define CV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_assert.h"

/* What the cache holds and has done (plain data). */
typedef struct {
    size_t entries;       /* stored now, expired ones not yet dropped included */
    size_t bytes;         /* their keys' and values' bytes */
    uint64_t hits;        /* gets that returned a value */
    uint64_t misses;      /* gets that did not: no entry, or an expired one */
    uint64_t expirations; /* entries dropped because their time had passed */
    uint64_t evictions;   /* live entries dropped to make room */
} cv_cache_stats_t;

/* One part of a key (plain data): size bytes at bytes (NULL when size is 0). */
typedef struct {
    const void *bytes;
    size_t size;
} cv_cache_part_t;

typedef struct _cv_cache_t cv_cache_t;

/* An empty cache of at most max_entries (>= 1) entries and max_bytes (>= 1) of keys and values. */
cv_cache_t *cv_cache_new (size_t max_entries, size_t max_bytes);
void cv_cache_destroy (cv_cache_t **self_p);

/* Stores a copy of value (value_size bytes; value may be NULL when 0) under a copy of key
   (key_size >= 1 bytes) until now_ms + ttl_ms (ttl_ms >= 1), in place of any entry under key, and
   makes it the most recently used; drops expired then least recently used entries until it
   fits. Returns 0, or -1 when key and value alone exceed the byte budget: then nothing is stored,
   and an older entry under key is dropped too (it is not the newest value any more). */
int cv_cache_put (cv_cache_t *self, const void *key, size_t key_size, const void *value, size_t value_size,
                  uint64_t ttl_ms, uint64_t now_ms);

/* The live value under key, made the most recently used, and its size in *value_size; NULL when
   there is none (an expired entry is dropped, counted as an expiration, and the get as a miss).
   The pointer is borrowed: valid until the next call on this cache. */
const void *cv_cache_get (cv_cache_t *self, const void *key, size_t key_size, uint64_t now_ms, size_t *value_size);

/* Drops the entry under key, live or not (not counted). Returns whether there was one. */
bool cv_cache_remove (cv_cache_t *self, const void *key, size_t key_size);

/* Drops every expired entry (counted as expirations), for a timer. Returns how many. */
size_t cv_cache_purge (cv_cache_t *self, uint64_t now_ms);

void cv_cache_stats (const cv_cache_t *self, cv_cache_stats_t *stats);

/* A key for a tool's result: the tool's name, the user it is for, and its parameters (count
   parts at params, NULL when count is 0), each length-prefixed so that no two different lists of
   parts give the same key (("ab", "c") and ("a", "bc") differ). user NULL makes a shared key,
   for data that is not personal: every user's request builds the same one. A user's key (user
   "" included) never equals a shared key or another user's: that is what keeps one customer's
   data from being served to another. Returns the key, the caller's to free, and its size in
   *key_size. */
uint8_t *cv_cache_key (const char *tool, const char *user, const cv_cache_part_t *params, size_t count,
                       size_t *key_size);

/* cv_cache_key with the parameters replaced by their SHA-256 (libcrypto): over the parts, each
   length-prefixed as cv_cache_key lays them out, so no two lists of parts share a digest but by a
   collision. The key is small whatever the parameters' size (a chat request of 20 KB, say), so
   the byte budget goes to values, and the parameters' text is not kept in the cache; the tool and
   the user stay outside the digest, in the clear, so that the scope's separation does not rest on
   the hash. Returns the key, the caller's to free, and its size in *key_size. */
#define CV_CACHE_DIGEST_BYTES 32
/* The SHA-256 of count parts at params, each length-prefixed as cv_cache_key lays them out, in
   digest: cv_cache_key_digest's, for a caller that keys something else by it. */
void cv_cache_digest (const cv_cache_part_t *params, size_t count, uint8_t digest[CV_CACHE_DIGEST_BYTES]);
uint8_t *cv_cache_key_digest (const char *tool, const char *user, const cv_cache_part_t *params, size_t count,
                              size_t *key_size);

void cv_cache_test (bool verbose);

#endif
