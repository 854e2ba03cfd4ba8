/* A TTL cache of byte values under byte keys, bounded by entries and bytes, least recently used
   out first; its table is czmq's zhashx with a hasher and comparator for byte keys. */
#include "cv_cache.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <openssl/evp.h>

#include "cv_alloc.h"

/* A key as the table sees it: the first member of its entry, or a probe on the stack. */
typedef struct {
    const uint8_t *bytes;
    size_t size;
} s_key_t;

/* One entry, in one block: this, then the key's bytes, then the value's. */
typedef struct s_entry {
    s_key_t key; /* points into data */
    size_t value_size;
    uint64_t expires_at;
    struct s_entry *newer; /* the recency list: towards the most recently used */
    struct s_entry *older;
    uint8_t data[];
} s_entry_t;

struct _cv_cache_t {
    size_t max_entries;
    size_t max_bytes;
    zhashx_t *table;   /* s_key_t * -> s_entry_t *, both the entry's */
    s_entry_t *newest; /* the most recently used */
    s_entry_t *oldest; /* the next to go */
    cv_cache_stats_t stats;
};

/* FNV-1a over the key's bytes. */
static size_t
s_hash (const void *item)
{
    const s_key_t *key = item;
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < key->size; i++)
        hash = (hash ^ key->bytes[i]) * 0x100000001b3ULL;
    return (size_t) hash;
}

static int
s_compare (const void *item1, const void *item2)
{
    const s_key_t *one = item1, *two = item2;
    if (one->size != two->size)
        return one->size < two->size ? -1 : 1;
    return memcmp (one->bytes, two->bytes, one->size);
}

cv_cache_t *
cv_cache_new (size_t max_entries, size_t max_bytes)
{
    assert (max_entries >= 1 && max_bytes >= 1);
    cv_cache_t *self = cv_calloc (1, sizeof *self);
    self->max_entries = max_entries;
    self->max_bytes = max_bytes;
    self->table = zhashx_new ();
    /* Keys are the entries' own: neither copied nor freed by the table. */
    zhashx_set_key_duplicator (self->table, NULL);
    zhashx_set_key_destructor (self->table, NULL);
    zhashx_set_key_hasher (self->table, s_hash);
    zhashx_set_key_comparator (self->table, s_compare);
    return self;
}

void
cv_cache_destroy (cv_cache_t **self_p)
{
    assert (self_p);
    cv_cache_t *self = *self_p;
    if (!self)
        return;
    for (s_entry_t *entry = self->newest, *next; entry; entry = next) {
        next = entry->older;
        free (entry);
    }
    zhashx_destroy (&self->table);
    free (self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------------------------------------
   The recency list */

static void
s_unlink (cv_cache_t *self, s_entry_t *entry)
{
    if (entry->newer)
        entry->newer->older = entry->older;
    else
        self->newest = entry->older;
    if (entry->older)
        entry->older->newer = entry->newer;
    else
        self->oldest = entry->newer;
    entry->newer = entry->older = NULL;
}

static void
s_push_newest (cv_cache_t *self, s_entry_t *entry)
{
    entry->older = self->newest;
    entry->newer = NULL;
    if (self->newest)
        self->newest->newer = entry;
    else
        self->oldest = entry;
    self->newest = entry;
}

/* Takes entry out of the table and the list, and frees it. */
static void
s_drop (cv_cache_t *self, s_entry_t *entry)
{
    zhashx_delete (self->table, &entry->key);
    s_unlink (self, entry);
    self->stats.entries--;
    self->stats.bytes -= entry->key.size + entry->value_size;
    free (entry);
}

static bool
s_expired (const s_entry_t *entry, uint64_t now_ms)
{
    return now_ms >= entry->expires_at;
}

static s_entry_t *
s_find (cv_cache_t *self, const void *key, size_t key_size)
{
    assert (key && key_size >= 1);
    s_key_t probe = {key, key_size};
    return zhashx_lookup (self->table, &probe);
}

/* ---------------------------------------------------------------------------------------------
   Methods */

int
cv_cache_put (cv_cache_t *self, const void *key, size_t key_size, const void *value, size_t value_size, uint64_t ttl_ms,
              uint64_t now_ms)
{
    assert (self);
    assert (value || value_size == 0);
    assert (ttl_ms >= 1);
    s_entry_t *old = s_find (self, key, key_size);
    if (old)
        s_drop (self, old);
    if (key_size > self->max_bytes || value_size > self->max_bytes - key_size)
        return -1;

    size_t size = key_size + value_size;
    while (self->stats.entries >= self->max_entries || self->stats.bytes + size > self->max_bytes) {
        /* The oldest goes first; when it had expired anyway it is not an eviction. */
        s_entry_t *oldest = self->oldest;
        assert (oldest);
        if (s_expired (oldest, now_ms))
            self->stats.expirations++;
        else
            self->stats.evictions++;
        s_drop (self, oldest);
    }

    s_entry_t *entry = cv_malloc (sizeof *entry + size);
    memcpy (entry->data, key, key_size);
    if (value_size)
        memcpy (entry->data + key_size, value, value_size);
    entry->key = (s_key_t){entry->data, key_size};
    entry->value_size = value_size;
    entry->expires_at = ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
    int rc = zhashx_insert (self->table, &entry->key, entry);
    assert (rc == 0);
    s_push_newest (self, entry);
    self->stats.entries++;
    self->stats.bytes += size;
    return 0;
}

const void *
cv_cache_get (cv_cache_t *self, const void *key, size_t key_size, uint64_t now_ms, size_t *value_size)
{
    assert (self && value_size);
    s_entry_t *entry = s_find (self, key, key_size);
    if (entry && s_expired (entry, now_ms)) {
        s_drop (self, entry);
        self->stats.expirations++;
        entry = NULL;
    }
    if (!entry) {
        self->stats.misses++;
        *value_size = 0;
        return NULL;
    }
    self->stats.hits++;
    s_unlink (self, entry);
    s_push_newest (self, entry);
    *value_size = entry->value_size;
    return entry->data + entry->key.size;
}

bool
cv_cache_remove (cv_cache_t *self, const void *key, size_t key_size)
{
    assert (self);
    s_entry_t *entry = s_find (self, key, key_size);
    if (entry)
        s_drop (self, entry);
    return entry != NULL;
}

size_t
cv_cache_purge (cv_cache_t *self, uint64_t now_ms)
{
    assert (self);
    size_t dropped = 0;
    for (s_entry_t *entry = self->oldest, *next; entry; entry = next) {
        next = entry->newer;
        if (s_expired (entry, now_ms)) {
            s_drop (self, entry);
            dropped++;
        }
    }
    self->stats.expirations += dropped;
    return dropped;
}

void
cv_cache_stats (const cv_cache_t *self, cv_cache_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

/* ---------------------------------------------------------------------------------------------
   Keys */

/* Appends a part as its length, 4 bytes big-endian, then its bytes. */
static uint8_t *
s_put_part (uint8_t *cursor, const void *bytes, size_t size)
{
    assert (size <= UINT32_MAX);
    assert (bytes || size == 0);
    for (int shift = 24; shift >= 0; shift -= 8)
        *cursor++ = (uint8_t) (size >> shift);
    if (size)
        memcpy (cursor, bytes, size);
    return cursor + size;
}

uint8_t *
cv_cache_key (const char *tool, const char *user, const cv_cache_part_t *params, size_t count, size_t *key_size)
{
    assert (tool && key_size);
    assert (params || count == 0);
    /* tool, then a scope byte ('s' shared, 'u' a user's, then the user), then the parameters */
    size_t size = 4 + strlen (tool) + 1 + (user ? 4 + strlen (user) : 0);
    for (size_t i = 0; i < count; i++)
        size += 4 + params[i].size;
    uint8_t *key = cv_malloc (size);
    uint8_t *cursor = s_put_part (key, tool, strlen (tool));
    *cursor++ = user ? 'u' : 's';
    if (user)
        cursor = s_put_part (cursor, user, strlen (user));
    for (size_t i = 0; i < count; i++)
        cursor = s_put_part (cursor, params[i].bytes, params[i].size);
    assert (cursor == key + size);
    *key_size = size;
    return key;
}

void
cv_cache_digest (const cv_cache_part_t *params, size_t count, uint8_t digest[CV_CACHE_DIGEST_BYTES])
{
    assert (params || count == 0);
    assert (digest);
    unsigned digest_size = 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new ();
    bool ok = context && EVP_DigestInit_ex (context, EVP_sha256 (), NULL);
    for (size_t i = 0; ok && i < count; i++) {
        assert (params[i].size <= UINT32_MAX);
        uint8_t prefix[4]; /* as s_put_part writes it */
        for (int byte = 0; byte < 4; byte++)
            prefix[byte] = (uint8_t) (params[i].size >> (24 - 8 * byte));
        ok = EVP_DigestUpdate (context, prefix, sizeof prefix)
             && (params[i].size == 0 || EVP_DigestUpdate (context, params[i].bytes, params[i].size));
    }
    ok = ok && EVP_DigestFinal_ex (context, digest, &digest_size) && digest_size == CV_CACHE_DIGEST_BYTES;
    EVP_MD_CTX_free (context);
    /* Only out of memory fails SHA-256 here, and that aborts, as cv_alloc's policy has it. */
    cv_assert_that (ok, "libcrypto could not compute a SHA-256");
}

uint8_t *
cv_cache_key_digest (const char *tool, const char *user, const cv_cache_part_t *params, size_t count, size_t *key_size)
{
    assert (tool && key_size);
    uint8_t digest[CV_CACHE_DIGEST_BYTES];
    cv_cache_digest (params, count, digest);
    cv_cache_part_t part = {digest, sizeof digest};
    return cv_cache_key (tool, user, &part, 1, key_size);
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

static void
s_assert_stats (const cv_cache_t *cache, size_t entries, size_t bytes, uint64_t hits, uint64_t misses,
                uint64_t expirations, uint64_t evictions)
{
    cv_cache_stats_t s;
    cv_cache_stats (cache, &s);
    cv_assert_that (s.entries == entries && s.bytes == bytes && s.hits == hits && s.misses == misses
                        && s.expirations == expirations && s.evictions == evictions,
                    "entries %zu bytes %zu hits %llu misses %llu expirations %llu evictions %llu; expected %zu %zu "
                    "%llu %llu %llu %llu",
                    s.entries, s.bytes, (unsigned long long) s.hits, (unsigned long long) s.misses,
                    (unsigned long long) s.expirations, (unsigned long long) s.evictions, entries, bytes,
                    (unsigned long long) hits, (unsigned long long) misses, (unsigned long long) expirations,
                    (unsigned long long) evictions);
}

/* Whether a string key is in the cache with value, at now_ms (a get: it moves the counters). */
static bool
s_has (cv_cache_t *cache, const char *key, const char *value, uint64_t now_ms)
{
    size_t size;
    const char *got = cv_cache_get (cache, key, strlen (key), now_ms, &size);
    if (!got)
        return false;
    cv_assert_that (size == strlen (value) && memcmp (got, value, size) == 0, "%s: '%.*s', expected '%s'", key,
                    (int) size, got, value);
    return true;
}

static void
s_put (cv_cache_t *cache, const char *key, const char *value, uint64_t ttl_ms, uint64_t now_ms)
{
    int rc = cv_cache_put (cache, key, strlen (key), value, strlen (value), ttl_ms, now_ms);
    cv_assert_that (rc == 0, "put %s refused", key);
}

/* Put, get, replace, remove; the borrowed value; the TTL. */
static void
s_test_basics (void)
{
    uint64_t now = 1000;
    cv_cache_t *cache = cv_cache_new (10, 1000);
    s_assert_stats (cache, 0, 0, 0, 0, 0, 0);
    assert (!s_has (cache, "card", "", now));
    s_assert_stats (cache, 0, 0, 0, 1, 0, 0);

    s_put (cache, "card", "4417", 100, now);
    assert (s_has (cache, "card", "4417", now));
    s_assert_stats (cache, 1, 8, 1, 1, 0, 0);
    /* Replacing takes the new value and the new TTL, in the same place. */
    s_put (cache, "card", "frozen", 500, now);
    s_assert_stats (cache, 1, 10, 1, 1, 0, 0);
    assert (s_has (cache, "card", "frozen", now + 499));
    /* An empty value is a value. */
    assert (cv_cache_put (cache, "none", 4, NULL, 0, 100, now) == 0);
    size_t size = 99;
    const void *empty = cv_cache_get (cache, "none", 4, now, &size);
    assert (empty && size == 0);

    /* The TTL: live up to the last ms, gone at it, counted once. */
    s_put (cache, "rate", "1.08", 100, now);
    assert (s_has (cache, "rate", "1.08", now + 99));
    assert (!s_has (cache, "rate", "1.08", now + 100));
    cv_cache_stats_t stats;
    cv_cache_stats (cache, &stats);
    assert (stats.expirations == 1 && stats.entries == 2);
    assert (!s_has (cache, "rate", "1.08", now + 100));
    cv_cache_stats (cache, &stats);
    assert (stats.expirations == 1 && stats.misses == 3);
    /* A TTL past the end of the clock does not wrap around. */
    s_put (cache, "forever", "x", UINT64_MAX, now);
    assert (s_has (cache, "forever", "x", UINT64_MAX - 1));

    /* remove, live or not */
    assert (cv_cache_remove (cache, "card", 4));
    assert (!cv_cache_remove (cache, "card", 4));
    assert (!s_has (cache, "card", "frozen", now));

    /* Keys are bytes: embedded NULs, and a prefix, are other keys. */
    assert (cv_cache_put (cache, "a\0b", 3, "1", 1, 100, now) == 0);
    assert (cv_cache_put (cache, "a\0c", 3, "2", 1, 100, now) == 0);
    assert (cv_cache_put (cache, "a", 1, "3", 1, 100, now) == 0);
    const char *got = cv_cache_get (cache, "a\0b", 3, now, &size);
    assert (got && size == 1 && *got == '1');
    got = cv_cache_get (cache, "a\0c", 3, now, &size);
    assert (got && size == 1 && *got == '2');
    got = cv_cache_get (cache, "a", 1, now, &size);
    assert (got && size == 1 && *got == '3');
    assert (!cv_cache_get (cache, "a\0", 2, now, &size) && size == 0);
    cv_cache_destroy (&cache);
    cv_cache_destroy (&cache);
    assert (!cache);
}

/* The bounds: least recently used out first, by count and by bytes; expired ones before them. */
static void
s_test_bounds (void)
{
    uint64_t now = 5000;
    cv_cache_t *cache = cv_cache_new (3, 1000);
    s_put (cache, "a", "1", 1000, now);
    s_put (cache, "b", "2", 1000, now);
    s_put (cache, "c", "3", 1000, now);
    assert (s_has (cache, "a", "1", now)); /* a is now the most recent: b is the oldest */
    s_put (cache, "d", "4", 1000, now);
    s_assert_stats (cache, 3, 6, 1, 0, 0, 1);
    assert (!s_has (cache, "b", "2", now));
    assert (s_has (cache, "a", "1", now) && s_has (cache, "c", "3", now) && s_has (cache, "d", "4", now));
    /* Replacing an entry makes no room: nothing is evicted. */
    s_put (cache, "c", "33", 1000, now);
    s_assert_stats (cache, 3, 7, 4, 1, 0, 1);
    cv_cache_destroy (&cache);

    /* The byte budget: 10 + 10 + 10 fit in 32; a 20 pushes out the two oldest. */
    cache = cv_cache_new (100, 32);
    s_put (cache, "k1", "vvvvvvvv", 1000, now);
    s_put (cache, "k2", "vvvvvvvv", 1000, now);
    s_put (cache, "k3", "vvvvvvvv", 1000, now);
    s_assert_stats (cache, 3, 30, 0, 0, 0, 0);
    s_put (cache, "k4", "vvvvvvvvvvvvvvvvvv", 1000, now);
    s_assert_stats (cache, 2, 30, 0, 0, 0, 2);
    assert (s_has (cache, "k3", "vvvvvvvv", now) && !s_has (cache, "k1", "", now) && !s_has (cache, "k2", "", now));
    /* Exactly the budget fits; one byte more does not, and takes the older value with it. */
    s_put (cache, "k5", "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", 1000, now);
    s_assert_stats (cache, 1, 32, 1, 2, 0, 4);
    assert (cv_cache_put (cache, "k5", 2, "123456789012345678901234567890x", 31, 1000, now) == -1);
    s_assert_stats (cache, 0, 0, 1, 2, 0, 4);
    assert (cv_cache_put (cache, "0123456789012345678901234567890123", 34, NULL, 0, 1000, now) == -1);
    cv_cache_destroy (&cache);

    /* An expired oldest entry, dropped for room, is an expiration and not an eviction. */
    cache = cv_cache_new (2, 1000);
    s_put (cache, "old", "1", 10, now);
    s_put (cache, "new", "2", 1000, now);
    s_put (cache, "newer", "3", 1000, now + 10);
    s_assert_stats (cache, 2, 10, 0, 0, 1, 0);
    /* purge drops the expired ones only. */
    s_put (cache, "short", "4", 5, now + 10);
    s_assert_stats (cache, 2, 12, 0, 0, 1, 1);
    assert (cv_cache_purge (cache, now + 14) == 0);
    assert (cv_cache_purge (cache, now + 15) == 1);
    s_assert_stats (cache, 1, 6, 0, 0, 2, 1);
    assert (s_has (cache, "newer", "3", now + 15));
    assert (cv_cache_purge (cache, UINT64_MAX) == 1);
    s_assert_stats (cache, 0, 0, 1, 0, 3, 1);
    cv_cache_destroy (&cache);

    /* Many entries: the table grows, every one is found, the oldest went. */
    cache = cv_cache_new (5000, 1 << 20);
    char key[32], value[32];
    for (int i = 0; i < 6000; i++) {
        snprintf (key, sizeof key, "key-%d", i);
        snprintf (value, sizeof value, "value-%d", i);
        s_put (cache, key, value, 1000, now);
    }
    for (int i = 0; i < 6000; i++) {
        snprintf (key, sizeof key, "key-%d", i);
        snprintf (value, sizeof value, "value-%d", i);
        cv_assert_that (s_has (cache, key, value, now) == (i >= 1000), "%s", key);
    }
    cv_cache_stats_t stats;
    cv_cache_stats (cache, &stats);
    assert (stats.entries == 5000 && stats.evictions == 1000 && stats.hits == 5000 && stats.misses == 1000);
    cv_cache_destroy (&cache);
}

/* Whether two lists of parts make the same key. */
static bool
s_same_key (const char *tool1, const char *user1, const cv_cache_part_t *params1, size_t count1, const char *tool2,
            const char *user2, const cv_cache_part_t *params2, size_t count2)
{
    size_t size1, size2;
    uint8_t *key1 = cv_cache_key (tool1, user1, params1, count1, &size1);
    uint8_t *key2 = cv_cache_key (tool2, user2, params2, count2, &size2);
    bool same = size1 == size2 && memcmp (key1, key2, size1) == 0;
    free (key1);
    free (key2);
    return same;
}

/* Keys from parts: unambiguous, and one user's never another's or the shared one. */
static void
s_test_keys (void)
{
    const cv_cache_part_t x[] = {{"x", 1}}, u[] = {{"u", 1}}, b[] = {{"b", 1}};
    const cv_cache_part_t empty[] = {{"", 0}}, two_empty[] = {{"", 0}, {NULL, 0}};
    /* The same parts, the same key. */
    assert (s_same_key ("balance", "u1", x, 1, "balance", "u1", x, 1));
    assert (s_same_key ("fx", NULL, NULL, 0, "fx", NULL, NULL, 0));
    /* Where one part ends and the next begins is part of the key. */
    assert (!s_same_key ("t", NULL, (cv_cache_part_t[]){{"ab", 2}, {"c", 1}}, 2, "t", NULL,
                         (cv_cache_part_t[]){{"a", 1}, {"bc", 2}}, 2));
    assert (!s_same_key ("ab", NULL, (cv_cache_part_t[]){{"c", 1}}, 1, "a", NULL, (cv_cache_part_t[]){{"bc", 2}}, 1));
    assert (!s_same_key ("t", NULL, NULL, 0, "t", NULL, empty, 1));
    assert (!s_same_key ("t", NULL, empty, 1, "t", NULL, two_empty, 2));
    assert (
        !s_same_key ("t", NULL, (cv_cache_part_t[]){{"a\0b", 3}}, 1, "t", NULL, (cv_cache_part_t[]){{"a\0c", 3}}, 1));
    /* The scope: users apart, a user apart from the shared key, the empty user a user too. */
    assert (!s_same_key ("t", "alice", x, 1, "t", "bob", x, 1));
    assert (!s_same_key ("t", "alice", x, 1, "t", NULL, x, 1));
    assert (!s_same_key ("t", "", NULL, 0, "t", NULL, NULL, 0));
    assert (!s_same_key ("t", "ab", NULL, 0, "t", "a", b, 1));
    /* No parameter can pass for a scope: the scope byte is always right after the tool's name. */
    assert (!s_same_key ("t", "u", NULL, 0, "t", NULL, u, 1));

    /* Digest keys: the parameters' SHA-256 over their length-prefixed parts, the tool and the
       user in the clear; the same separations hold. */
    size_t digest_size, plain_size;
    cv_cache_part_t request[] = {{"{\"model\":\"m\"}", 13}, {"", 0}};
    uint8_t *digest = cv_cache_key_digest ("chat", "alice", request, 2, &digest_size);
    static const uint8_t expected[CV_CACHE_DIGEST_BYTES] = {
        0x1a, 0x49, 0xdf, 0x15, 0xd5, 0xb1, 0x52, 0xc7, 0x54, 0xcc, 0xbb, 0xc6, 0xa1, 0x97, 0x37, 0x4e,
        0xb0, 0xd7, 0x91, 0x9b, 0x02, 0xdf, 0x28, 0xa6, 0x62, 0x1f, 0x8f, 0xa9, 0xa8, 0xdf, 0x79, 0x97};
    uint8_t *plain = cv_cache_key ("chat", "alice", (cv_cache_part_t[]){{expected, sizeof expected}}, 1, &plain_size);
    assert (digest_size == plain_size && memcmp (digest, plain, plain_size) == 0);
    uint8_t raw[CV_CACHE_DIGEST_BYTES];
    cv_cache_digest (request, 2, raw);
    assert (memcmp (raw, expected, sizeof raw) == 0);
    free (digest);
    free (plain);
    static const char prompt[20000]; /* a long system prompt's size */
    uint8_t *big_key =
        cv_cache_key_digest ("chat", NULL, (cv_cache_part_t[]){{prompt, sizeof prompt}}, 1, &digest_size);
    assert (digest_size == 4 + 4 + 1 + 4 + CV_CACHE_DIGEST_BYTES); /* whatever the parameters' size */
    free (big_key);
    struct {
        const char *user;
        cv_cache_part_t parts[2];
        size_t count;
    } keys[] = {{NULL, {{"ab", 2}, {"c", 1}}, 2},
                {NULL, {{"a", 1}, {"bc", 2}}, 2},
                {NULL, {{"abc", 3}}, 1},
                {"", {{"ab", 2}, {"c", 1}}, 2},
                {"u", {{"ab", 2}, {"c", 1}}, 2},
                {NULL, {{"", 0}}, 1},
                {NULL, {{NULL, 0}}, 0}};
    size_t key_count = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < key_count; i++)
        for (size_t j = 0; j < key_count; j++) {
            size_t size_i, size_j;
            uint8_t *key_i = cv_cache_key_digest ("t", keys[i].user, keys[i].parts, keys[i].count, &size_i);
            uint8_t *key_j = cv_cache_key_digest ("t", keys[j].user, keys[j].parts, keys[j].count, &size_j);
            bool same = size_i == size_j && memcmp (key_i, key_j, size_i) == 0;
            cv_assert_that (same == (i == j), "digest keys %zu and %zu", i, j);
            free (key_i);
            free (key_j);
        }

    /* Through a cache: two users asking the same personal question never share an entry; a
       shared tool's answer serves everyone. */
    uint64_t now = 77;
    cv_cache_t *cache = cv_cache_new (100, 10000);
    cv_cache_part_t card[] = {{"card", 4}, {"4417", 4}};
    size_t alice_size, bob_size, shared_size, other_shared_size;
    uint8_t *alice = cv_cache_key ("card_status", "alice", card, 2, &alice_size);
    uint8_t *bob = cv_cache_key ("card_status", "bob", card, 2, &bob_size);
    assert (cv_cache_put (cache, alice, alice_size, "alice's card: active", 20, 1000, now) == 0);
    size_t size;
    assert (!cv_cache_get (cache, bob, bob_size, now, &size));
    const char *got = cv_cache_get (cache, alice, alice_size, now, &size);
    assert (got && size == 20 && memcmp (got, "alice's card: active", 20) == 0);
    assert (cv_cache_put (cache, bob, bob_size, "bob's card: frozen", 18, 1000, now) == 0);
    got = cv_cache_get (cache, alice, alice_size, now, &size);
    assert (got && size == 20 && memcmp (got, "alice's card: active", 20) == 0);
    got = cv_cache_get (cache, bob, bob_size, now, &size);
    assert (got && size == 18 && memcmp (got, "bob's card: frozen", 18) == 0);

    cv_cache_part_t pair[] = {{"EUR", 3}, {"GBP", 3}};
    uint8_t *shared = cv_cache_key ("exchange_rate", NULL, pair, 2, &shared_size); /* alice's request */
    assert (cv_cache_put (cache, shared, shared_size, "0.86", 4, 1000, now) == 0);
    uint8_t *other_shared = cv_cache_key ("exchange_rate", NULL, pair, 2, &other_shared_size); /* bob's */
    got = cv_cache_get (cache, other_shared, other_shared_size, now, &size);
    assert (got && size == 4 && memcmp (got, "0.86", 4) == 0);
    s_assert_stats (cache, 3, alice_size + 20 + bob_size + 18 + shared_size + 4, 4, 1, 0, 0);
    free (alice);
    free (bob);
    free (shared);
    free (other_shared);
    cv_cache_destroy (&cache);
}

void
cv_cache_test (bool verbose)
{
    s_test_basics ();
    s_test_bounds ();
    s_test_keys ();
    if (verbose)
        printf ("cv_cache: ok\n");
}
