/* Hashed word and character n-gram features of a normalised text, counted per bucket. */
#include "intent_features.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u
/* Open addressing over twice the most buckets a text can have keeps probe chains short. */
#define TABLE_BITS 14
#define TABLE_SIZE (1u << TABLE_BITS)
_Static_assert(TABLE_SIZE >= 2 * INTENT_FEATURES_MAX, "the table has room for twice the most buckets");

struct _intent_features_t {
    intent_features_settings_t settings;
    uint32_t mask; /* 2^bits - 1 */
    intent_text_t *text;
    uint32_t buckets[INTENT_FEATURES_MAX];
    uint32_t counts[INTENT_FEATURES_MAX];
    uint16_t slots[INTENT_FEATURES_MAX]; /* where each bucket sits in table, to clear it */
    size_t count;
    uint32_t table[TABLE_SIZE];    /* bucket + 1 of a slot, 0 when free */
    uint16_t position[TABLE_SIZE]; /* index into buckets of a slot's bucket */
};

void
intent_features_settings_default (intent_features_settings_t *settings)
{
    assert (settings);
    *settings = (intent_features_settings_t){
        .text_flags = INTENT_TEXT_DEFAULT_FLAGS,
        .bits = 18,
        .word_max = 2,
        .char_min = 1,
        .char_max = 3,
    };
}

int
intent_features_settings_check (const intent_features_settings_t *settings, cv_error_t *err)
{
    assert (settings);
    if ((settings->text_flags & ~INTENT_TEXT_KNOWN_FLAGS)
        || (settings->text_flags & INTENT_TEXT_DIGITS_MASK) > INTENT_TEXT_DIGITS_SHAPE)
        return cv_error_set (err, CV_ERR_INVALID, "text_flags", "unknown normalisation options 0x%x",
                             settings->text_flags);
    if (settings->bits < INTENT_FEATURES_BITS_MIN || settings->bits > INTENT_FEATURES_BITS_MAX)
        return cv_error_set (err, CV_ERR_INVALID, "bits", "bucket bits %u outside %d..%d", settings->bits,
                             INTENT_FEATURES_BITS_MIN, INTENT_FEATURES_BITS_MAX);
    if (settings->word_max < 1 || settings->word_max > INTENT_FEATURES_WORD_MAX)
        return cv_error_set (err, CV_ERR_INVALID, "word_max", "word n-grams up to %u: must be 1..%d",
                             settings->word_max, INTENT_FEATURES_WORD_MAX);
    bool none = settings->char_min == 0 && settings->char_max == 0;
    if (!none
        && (settings->char_min < 1 || settings->char_min > settings->char_max
            || settings->char_max > INTENT_FEATURES_CHAR_MAX))
        return cv_error_set (err, CV_ERR_INVALID, "char", "character n-grams %u..%u: need 1 <= min <= max <= %d",
                             settings->char_min, settings->char_max, INTENT_FEATURES_CHAR_MAX);
    return 0;
}

intent_features_t *
intent_features_new (const intent_features_settings_t *settings)
{
    assert (settings);
    assert (intent_features_settings_check (settings, NULL) == 0);
    intent_features_t *self = cv_calloc (1, sizeof *self);
    self->settings = *settings;
    self->mask = (uint32_t) ((1ull << settings->bits) - 1);
    self->text = intent_text_new (settings->text_flags);
    return self;
}

void
intent_features_destroy (intent_features_t **self_p)
{
    assert (self_p);
    intent_features_t *self = *self_p;
    if (!self)
        return;
    intent_text_destroy (&self->text);
    free (self);
    *self_p = NULL;
}

const intent_features_settings_t *
intent_features_settings (const intent_features_t *self)
{
    assert (self);
    return &self->settings;
}

static inline uint32_t
s_fnv_start (intent_feature_kind_t kind)
{
    return (FNV_OFFSET ^ (uint32_t) kind) * FNV_PRIME;
}

static inline uint32_t
s_fnv_add (uint32_t hash, const char *bytes, size_t size)
{
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ (uint8_t) bytes[i]) * FNV_PRIME;
    return hash;
}

/* murmur3's finaliser: every input bit reaches every output bit, so low bits make good buckets. */
static inline uint32_t
s_finish (uint32_t hash)
{
    hash ^= hash >> 16;
    hash *= 0x85ebca6bu;
    hash ^= hash >> 13;
    hash *= 0xc2b2ae35u;
    hash ^= hash >> 16;
    return hash;
}

uint32_t
intent_features_hash (intent_feature_kind_t kind, const char *bytes, size_t size)
{
    assert (bytes || size == 0);
    return s_finish (s_fnv_add (s_fnv_start (kind), bytes, size));
}

/* Counts one hit of the feature with full hash. */
static void
s_count (intent_features_t *self, uint32_t hash)
{
    uint32_t bucket = hash & self->mask;
    /* by the bucket alone (hashes that differ can share it); Fibonacci hashing spreads it */
    uint32_t slot = (bucket * 0x9E3779B1u) >> (32 - TABLE_BITS);
    while (self->table[slot]) {
        if (self->table[slot] == bucket + 1) {
            self->counts[self->position[slot]]++;
            return;
        }
        slot = (slot + 1) & (TABLE_SIZE - 1);
    }
    if (self->count == INTENT_FEATURES_MAX)
        return;
    self->table[slot] = bucket + 1;
    self->position[slot] = (uint16_t) self->count;
    self->slots[self->count] = (uint16_t) slot;
    self->buckets[self->count] = bucket;
    self->counts[self->count] = 1;
    self->count++;
}

/* Counts the character n-grams of word (size bytes) padded with a space each side. */
static void
s_char_grams (intent_features_t *self, const char *word, size_t size)
{
    /* start offsets of the padded word's characters, and one past its end */
    char padded[INTENT_TEXT_WORD_MAX_BYTES + 2];
    size_t starts[INTENT_TEXT_WORD_MAX_BYTES + 3];
    padded[0] = ' ';
    memcpy (padded + 1, word, size);
    padded[size + 1] = ' ';
    size_t padded_size = size + 2, characters = 0;
    for (size_t i = 0; i < padded_size; i++)
        if (((uint8_t) padded[i] & 0xC0) != 0x80)
            starts[characters++] = i;
    starts[characters] = padded_size;

    unsigned min = self->settings.char_min, max = self->settings.char_max;
    if (characters <= min) {
        s_count (self, intent_features_hash (INTENT_FEATURE_CHAR, padded, padded_size));
        return;
    }
    /* From each start, extend the hash a character at a time: n-grams of every length at once,
       as far as the padded word goes. */
    for (size_t first = 0; first + min <= characters; first++) {
        uint32_t hash = s_fnv_start (INTENT_FEATURE_CHAR);
        for (size_t n = 1; n <= max && first + n <= characters; n++) {
            hash = s_fnv_add (hash, padded + starts[first + n - 1], starts[first + n] - starts[first + n - 1]);
            if (n >= min)
                s_count (self, s_finish (hash));
        }
    }
}

size_t
intent_features_extract (intent_features_t *self, const char *text, size_t size)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        self->table[self->slots[i]] = 0;
    self->count = 0;

    size_t words = intent_text_set (self->text, text, size);
    bool chars = self->settings.char_max > 0;
    for (size_t i = 0; i < words; i++) {
        size_t length;
        const char *word = intent_text_word (self->text, i, &length);
        s_count (self, intent_features_hash (INTENT_FEATURE_WORD, word, length));
        /* pairs and triples: the words joined by single spaces */
        uint32_t hash[2] = {s_fnv_add (s_fnv_start (INTENT_FEATURE_BIGRAM), word, length),
                            s_fnv_add (s_fnv_start (INTENT_FEATURE_TRIGRAM), word, length)};
        for (size_t n = 2; n <= self->settings.word_max && i + n <= words; n++) {
            size_t next_length;
            const char *next = intent_text_word (self->text, i + n - 1, &next_length);
            for (size_t k = n - 2; k < 2; k++)
                hash[k] = s_fnv_add (s_fnv_add (hash[k], " ", 1), next, next_length);
            s_count (self, s_finish (hash[n - 2]));
        }
        if (chars)
            s_char_grams (self, word, length);
    }
    return self->count;
}

const uint32_t *
intent_features_buckets (const intent_features_t *self)
{
    assert (self);
    return self->buckets;
}

const uint32_t *
intent_features_counts (const intent_features_t *self)
{
    assert (self);
    return self->counts;
}

const intent_text_t *
intent_features_text (const intent_features_t *self)
{
    assert (self);
    return self->text;
}

float
intent_features_tf (uint32_t count)
{
    assert (count > 0);
    return count == 1 ? 1.0f : 1.0f + logf ((float) count); /* most features occur once */
}

float
intent_features_idf (size_t documents, size_t df)
{
    assert (df <= documents);
    return (float) (log ((1.0 + (double) documents) / (1.0 + (double) df)) + 1.0);
}

/* The count of the feature of kind and bytes in self's current text, 0 when absent. */
static uint32_t
s_count_of (const intent_features_t *self, intent_feature_kind_t kind, const char *bytes)
{
    uint32_t bucket = intent_features_hash (kind, bytes, strlen (bytes)) & self->mask;
    for (size_t i = 0; i < self->count; i++)
        if (self->buckets[i] == bucket)
            return self->counts[i];
    return 0;
}

void
intent_features_test (bool verbose)
{
    /* The hash is part of the model format: these values must never change. Each is FNV-1a
       over the kind byte and the bytes, then fmix32, computed independently of this code. */
    static const struct {
        intent_feature_kind_t kind;
        const char *bytes;
        uint32_t hash;
    } pinned[] = {
        {INTENT_FEATURE_WORD, "", 0x6568ba02},
        {INTENT_FEATURE_WORD, "card", 0x6ade5f0b},
        {INTENT_FEATURE_BIGRAM, "lost card", 0x670a37a2},
        {INTENT_FEATURE_CHAR, " ca", 0xe41602a8},
        {INTENT_FEATURE_CHAR, "café", 0xaffdbf06},
        {INTENT_FEATURE_WORD, "👍", 0x1e8550d8},
        {INTENT_FEATURE_TRIGRAM, "lost my card", 0x193c5622},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        uint32_t hash = intent_features_hash (pinned[i].kind, pinned[i].bytes, strlen (pinned[i].bytes));
        if (verbose || hash != pinned[i].hash)
            printf ("  %c [%s] 0x%08x\n", pinned[i].kind, pinned[i].bytes, hash);
        assert (hash == pinned[i].hash);
    }
    /* the kind is a salt */
    assert (intent_features_hash (INTENT_FEATURE_WORD, "ab", 2) != intent_features_hash (INTENT_FEATURE_CHAR, "ab", 2));

    cv_error_t err;
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    assert (intent_features_settings_check (&settings, &err) == 0);
    intent_features_settings_t bad = settings;
    bad.bits = INTENT_FEATURES_BITS_MAX + 1;
    assert (intent_features_settings_check (&bad, &err) == -1 && strcmp (err.field, "bits") == 0);
    bad = settings, bad.char_min = 4, bad.char_max = 3;
    assert (intent_features_settings_check (&bad, &err) == -1 && strcmp (err.field, "char") == 0);
    bad = settings, bad.char_max = 9;
    assert (intent_features_settings_check (&bad, &err) == -1);
    bad = settings, bad.word_max = 4;
    assert (intent_features_settings_check (&bad, &err) == -1 && strcmp (err.field, "word_max") == 0);
    bad = settings, bad.text_flags = 0x80;
    assert (intent_features_settings_check (&bad, &err) == -1 && strcmp (err.field, "text_flags") == 0);
    bad = settings, bad.char_min = 0, bad.char_max = 0;
    assert (intent_features_settings_check (&bad, &err) == 0);

    /* counts of "lost card card": 3 words, 2 bigrams, char 2..3-grams of " lost ", " card " */
    settings.bits = 20;
    settings.char_min = 2;
    settings.char_max = 3;
    intent_features_t *features = intent_features_new (&settings);
    assert (features);
    assert (intent_features_settings (features)->bits == 20);
    size_t count = intent_features_extract (features, "Lost CARD card!", 15);
    assert (strcmp (intent_text_normal (intent_features_text (features)), "lost card card") == 0);
    assert (s_count_of (features, INTENT_FEATURE_WORD, "lost") == 1);
    assert (s_count_of (features, INTENT_FEATURE_WORD, "card") == 2);
    assert (s_count_of (features, INTENT_FEATURE_BIGRAM, "lost card") == 1);
    assert (s_count_of (features, INTENT_FEATURE_BIGRAM, "card card") == 1);
    assert (s_count_of (features, INTENT_FEATURE_BIGRAM, "card lost") == 0);
    assert (s_count_of (features, INTENT_FEATURE_TRIGRAM, "lost card card") == 0); /* word_max 2 */
    assert (s_count_of (features, INTENT_FEATURE_CHAR, " c") == 2);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, "ard") == 2);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, "rd ") == 2);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, " lo") == 1);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, "card") == 0); /* longer than char_max */
    /* " lost " has 5 + 4 grams of 2 and 3 characters, " card " twice the same: 9 distinct
       char grams each, 2 words, 2 bigrams (barring a collision in 2^20 buckets) */
    assert (count == 9 + 9 + 2 + 2);
    uint32_t total = 0;
    for (size_t i = 0; i < count; i++) {
        assert (intent_features_buckets (features)[i] < (1u << 20));
        total += intent_features_counts (features)[i];
    }
    assert (total == 3 + 2 + 3 * 9);

    /* word triples with word_max 3 */
    settings.word_max = 3;
    intent_features_t *triples = intent_features_new (&settings);
    assert (intent_features_extract (triples, "Lost CARD card!", 15) == count + 1);
    assert (s_count_of (triples, INTENT_FEATURE_TRIGRAM, "lost card card") == 1);
    assert (s_count_of (triples, INTENT_FEATURE_BIGRAM, "lost card") == 1);
    intent_features_extract (triples, "a b", 3);
    assert (s_count_of (triples, INTENT_FEATURE_BIGRAM, "a b") == 1);
    intent_features_destroy (&triples);
    settings.word_max = 2;

    /* characters, not bytes: " é " is three characters, a 3-gram of itself */
    intent_features_extract (features, "É", 2);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, " é ") == 1);
    assert (s_count_of (features, INTENT_FEATURE_CHAR, " é") == 1);
    /* a padded word no longer than char_min gives itself once */
    settings.char_min = 4;
    settings.char_max = 5;
    intent_features_t *long_grams = intent_features_new (&settings);
    intent_features_extract (long_grams, "a", 1);
    assert (s_count_of (long_grams, INTENT_FEATURE_CHAR, " a ") == 1);
    assert (s_count_of (long_grams, INTENT_FEATURE_WORD, "a") == 1);
    assert (intent_features_extract (long_grams, "", 0) == 0);
    intent_features_destroy (&long_grams);

    /* deterministic, and the table is clean between texts */
    uint32_t first[64], first_counts[64];
    size_t first_count = intent_features_extract (features, "I was charged twice", 19);
    assert (first_count <= 64);
    memcpy (first, intent_features_buckets (features), first_count * sizeof *first);
    memcpy (first_counts, intent_features_counts (features), first_count * sizeof *first_counts);
    intent_features_extract (features, "something else entirely, with other words", 42);
    assert (intent_features_extract (features, "I was charged twice", 19) == first_count);
    assert (memcmp (first, intent_features_buckets (features), first_count * sizeof *first) == 0);
    assert (memcmp (first_counts, intent_features_counts (features), first_count * sizeof *first_counts) == 0);

    /* a text with more distinct features than there is room for is cut at INTENT_FEATURES_MAX */
    char *many = cv_malloc (INTENT_TEXT_MAX_BYTES);
    uint32_t random = 1;
    for (size_t i = 0; i < INTENT_TEXT_MAX_BYTES; i++) {
        random = random * 1103515245u + 12345u;
        many[i] = i % 9 == 8 ? ' ' : (char) ('a' + (random >> 16) % 26);
    }
    settings.char_min = 1;
    settings.char_max = INTENT_FEATURES_CHAR_MAX;
    intent_features_t *wide = intent_features_new (&settings);
    assert (intent_features_extract (wide, many, INTENT_TEXT_MAX_BYTES) == INTENT_FEATURES_MAX);
    assert (intent_features_extract (wide, "card", 4) == 1 + 5 + 5 + 4 + 3 + 2 + 1); /* " " twice among the 1-grams */
    intent_features_destroy (&wide);
    free (many);

    /* weights */
    assert (intent_features_tf (1) == 1.0f);
    assert (fabsf (intent_features_tf (3) - (1.0f + logf (3.0f))) < 1e-6f);
    assert (intent_features_idf (9, 9) == 1.0f);
    assert (intent_features_idf (9, 0) > intent_features_idf (9, 1));
    assert (fabsf (intent_features_idf (9, 4) - (float) (log (10.0 / 5.0) + 1.0)) < 1e-6f);

    intent_features_destroy (&features);
    intent_features_destroy (&features);
    if (verbose)
        printf ("intent_features: ok\n");
}
