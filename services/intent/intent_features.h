/* The intent model's features: a text normalised (intent_text), then its word n-grams (single
   words, pairs, triples) and character n-grams within words, each hashed with its kind as salt into one of
   2^bits buckets and counted per bucket.

   The hash is 32-bit FNV-1a over the kind's byte and the feature's UTF-8 bytes, finished by
   murmur3's fmix32; a bucket is its low bits. It reads bytes one at a time, so it is the same on
   every platform and in every run: a model's weights stay meaningful wherever it is loaded, and
   the self-test pins known hashes so that a change to it cannot pass unnoticed.

   A word's character n-grams are taken from the word padded with a space on each side (" card "
   gives " c", "ca", ..., "rd "), over characters, not bytes, from char_min to char_max
   characters; a padded word no longer than char_min gives itself once (as scikit-learn's
   char_wb analyser does). Weights are the caller's:
   intent_features_tf (sublinear) times intent_features_idf, then L2 normalisation.

   An instance holds its normaliser and buffers, sized once at creation: extracting allocates
   nothing. It serves one thread. */
#ifndef INTENT_FEATURES_H
#define INTENT_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "intent_text.h"

#define INTENT_FEATURES_BITS_MIN 8
#define INTENT_FEATURES_BITS_MAX 22 /* a model maps every bucket: 2^22 of them take 16 MB */
#define INTENT_FEATURES_WORD_MAX 3  /* the longest word n-gram there can be */
#define INTENT_FEATURES_CHAR_MAX 8  /* the longest character n-gram there can be */
#define INTENT_FEATURES_MAX 8192    /* distinct buckets per text; further ones are dropped */

/* What a feature is, hashed in as its first byte so that a word and a character n-gram with the
   same bytes land in different buckets. */
typedef enum {
    INTENT_FEATURE_WORD = 'w',
    INTENT_FEATURE_BIGRAM = 'b',  /* two words joined by a space */
    INTENT_FEATURE_TRIGRAM = 't', /* three words joined by spaces */
    INTENT_FEATURE_CHAR = 'c'     /* a character n-gram of a padded word */
} intent_feature_kind_t;

/* The feature settings, stored in the model file; plain data. */
typedef struct {
    unsigned text_flags; /* intent_text's options (INTENT_TEXT_*) */
    unsigned bits;       /* 2^bits buckets */
    unsigned word_max;   /* word n-grams from 1 to word_max: 1..INTENT_FEATURES_WORD_MAX */
    unsigned char_min;   /* character n-grams from char_min to char_max characters; */
    unsigned char_max;   /* both 0 for none */
} intent_features_settings_t;

/* Fills settings with the defaults chosen by cross-validation on Banking77. */
void intent_features_settings_default (intent_features_settings_t *settings);

/* Returns 0 when settings are usable, or -1 with err naming the setting that is not. */
int intent_features_settings_check (const intent_features_settings_t *settings, cv_error_t *err) CV_MUST_CHECK;

typedef struct _intent_features_t intent_features_t;

/* An extractor for settings, which must pass intent_features_settings_check (copied); never NULL. */
intent_features_t *intent_features_new (const intent_features_settings_t *settings);
void intent_features_destroy (intent_features_t **self_p);

/* The settings given at creation; borrowed. */
const intent_features_settings_t *intent_features_settings (const intent_features_t *self);

/* Extracts the features of the size bytes at text (any bytes, see intent_text_set), replacing
   the previous text's. Returns the number of distinct buckets, at most INTENT_FEATURES_MAX. */
size_t intent_features_extract (intent_features_t *self, const char *text, size_t size);

/* The buckets of the current text, distinct, in the order first seen, and how often each was
   hit; intent_features_extract's count of each, borrowed until the next extract. */
const uint32_t *intent_features_buckets (const intent_features_t *self);
const uint32_t *intent_features_counts (const intent_features_t *self);

/* The normalised text the current features came from; borrowed. */
const intent_text_t *intent_features_text (const intent_features_t *self);

/* The full 32-bit hash of a feature of kind made of size bytes; its bucket is the low bits. */
uint32_t intent_features_hash (intent_feature_kind_t kind, const char *bytes, size_t size);

/* Sublinear term frequency: 1 + ln(count), for count >= 1. */
float intent_features_tf (uint32_t count);

/* Smoothed inverse document frequency of a bucket found in df of documents texts:
   ln((1 + documents) / (1 + df)) + 1. A bucket never seen (df 0) gets the largest. */
float intent_features_idf (size_t documents, size_t df);

void intent_features_test (bool verbose);

#endif
