/* The examples' features as a sparse tf-idf matrix, and the vocabulary of a set of its rows. */
#include "learn_matrix.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

void
learn_matrix_destroy (learn_matrix_t **self_p)
{
    assert (self_p);
    learn_matrix_t *self = *self_p;
    if (!self)
        return;
    free (self->offsets);
    free (self->buckets);
    free (self->tf);
    free (self->values);
    free (self->xx);
    free (self);
    *self_p = NULL;
}

learn_matrix_t *
learn_matrix_new (const learn_examples_t *examples, const intent_features_settings_t *settings)
{
    assert (examples && settings);
    size_t rows = learn_examples_size (examples);
    learn_matrix_t *matrix = cv_calloc (1, sizeof *matrix);
    intent_features_t *features = intent_features_new (settings);
    size_t capacity = 64 * rows + INTENT_FEATURES_MAX;
    matrix->rows = rows;
    matrix->offsets = cv_malloc ((rows + 1) * sizeof *matrix->offsets);
    matrix->buckets = cv_malloc (capacity * sizeof *matrix->buckets);
    matrix->tf = cv_malloc (capacity * sizeof *matrix->tf);
    matrix->xx = cv_malloc ((rows ? rows : 1) * sizeof *matrix->xx);
    size_t used = 0;
    for (size_t row = 0; row < rows; row++) {
        matrix->offsets[row] = used;
        size_t size;
        const char *label;
        const char *text = learn_examples_example (examples, row, &size, &label);
        size_t count = intent_features_extract (features, text, size);
        if (used + count > capacity) {
            capacity = 2 * capacity + count;
            matrix->buckets = cv_realloc (matrix->buckets, capacity * sizeof *matrix->buckets);
            matrix->tf = cv_realloc (matrix->tf, capacity * sizeof *matrix->tf);
        }
        const uint32_t *buckets = intent_features_buckets (features);
        const uint32_t *counts = intent_features_counts (features);
        for (size_t i = 0; i < count; i++) {
            matrix->buckets[used + i] = buckets[i];
            matrix->tf[used + i] = intent_features_tf (counts[i]);
        }
        used += count;
    }
    matrix->offsets[rows] = used;
    matrix->values = cv_malloc ((used ? used : 1) * sizeof *matrix->values);
    intent_features_destroy (&features);
    return matrix;
}

void
learn_vocabulary_reset (learn_vocabulary_t *vocabulary)
{
    assert (vocabulary);
    free (vocabulary->df);
    free (vocabulary->idf);
    free (vocabulary->seen);
    memset (vocabulary, 0, sizeof *vocabulary);
}

/* Buckets are distinct within a row, so a bucket's count is its df. */
void
learn_matrix_vocabulary (const learn_matrix_t *self, const uint32_t *train, size_t count, size_t buckets,
                         learn_vocabulary_t *vocabulary)
{
    assert (self && vocabulary);
    assert (train || count == 0);
    vocabulary->df = cv_calloc (buckets, sizeof *vocabulary->df);
    vocabulary->idf = cv_malloc (buckets * sizeof *vocabulary->idf);
    for (size_t t = 0; t < count; t++) {
        uint32_t row = train[t];
        for (size_t i = self->offsets[row]; i < self->offsets[row + 1]; i++)
            vocabulary->df[self->buckets[i]]++;
    }
    size_t seen = 0;
    for (size_t bucket = 0; bucket < buckets; bucket++)
        seen += vocabulary->df[bucket] > 0;
    vocabulary->seen = cv_malloc ((seen ? seen : 1) * sizeof *vocabulary->seen);
    vocabulary->seen_count = 0;
    for (size_t bucket = 0; bucket < buckets; bucket++) {
        vocabulary->idf[bucket] = intent_features_idf (count, vocabulary->df[bucket]);
        if (vocabulary->df[bucket])
            vocabulary->seen[vocabulary->seen_count++] = (uint32_t) bucket;
    }
}

void
learn_matrix_weigh (learn_matrix_t *self, const learn_vocabulary_t *vocabulary)
{
    assert (self && vocabulary);
    for (size_t row = 0; row < self->rows; row++) {
        size_t start = self->offsets[row], end = self->offsets[row + 1];
        double norm = 0;
        for (size_t i = start; i < end; i++) {
            float value = self->tf[i] * vocabulary->idf[self->buckets[i]];
            self->values[i] = value;
            norm += (double) value * value;
        }
        float scale = norm > 0 ? (float) (1.0 / sqrt (norm)) : 0;
        double xx = LEARN_MATRIX_BIAS * LEARN_MATRIX_BIAS;
        for (size_t i = start; i < end; i++) {
            self->values[i] *= scale;
            xx += (double) self->values[i] * self->values[i];
        }
        self->xx[row] = xx;
    }
}

void
learn_matrix_test (bool verbose)
{
    cv_error_t err;
    learn_examples_t *examples = learn_examples_new ();
    static const char *const texts[][2] = {{"where is my card", "card_arrival"},
                                           {"my card is lost", "lost"},
                                           {"where is it", "card_arrival"},
                                           {"", "lost"}};
    for (size_t i = 0; i < 4; i++)
        assert (learn_examples_add (examples, texts[i][0], strlen (texts[i][0]), texts[i][1], &err) == 0);
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    learn_matrix_t *matrix = learn_matrix_new (examples, &settings);
    assert (matrix && matrix->rows == 4);
    /* each row holds what the extractor finds in its text, an empty text nothing */
    intent_features_t *features = intent_features_new (&settings);
    for (size_t row = 0; row < 4; row++) {
        size_t count = intent_features_extract (features, texts[row][0], strlen (texts[row][0]));
        assert (matrix->offsets[row + 1] - matrix->offsets[row] == count);
        assert (count == 0
                || memcmp (matrix->buckets + matrix->offsets[row], intent_features_buckets (features),
                           count * sizeof (uint32_t))
                       == 0);
    }
    assert (matrix->offsets[3] == matrix->offsets[4]);
    intent_features_destroy (&features);

    /* the vocabulary of rows 0 and 1: df counts those rows only, seen lists them in order */
    size_t buckets = (size_t) 1 << settings.bits;
    uint32_t train[] = {0, 1};
    learn_vocabulary_t vocabulary = {0};
    learn_matrix_vocabulary (matrix, train, 2, buckets, &vocabulary);
    size_t seen = 0;
    for (size_t bucket = 0; bucket < buckets; bucket++) {
        assert (vocabulary.idf[bucket] == intent_features_idf (2, vocabulary.df[bucket]));
        assert (vocabulary.df[bucket] <= 2);
        if (vocabulary.df[bucket])
            assert (vocabulary.seen[seen++] == bucket);
    }
    assert (seen == vocabulary.seen_count && seen > 0);
    bool unseen = false; /* row 2's word "it" is in neither */
    for (size_t i = matrix->offsets[2]; i < matrix->offsets[3]; i++)
        unseen |= vocabulary.df[matrix->buckets[i]] == 0;
    assert (unseen);

    /* weighed: every row with a known bucket has unit norm, plus the bias */
    learn_matrix_weigh (matrix, &vocabulary);
    for (size_t row = 0; row < 2; row++)
        assert (fabs (matrix->xx[row] - (LEARN_MATRIX_BIAS * LEARN_MATRIX_BIAS + 1.0)) < 1e-5);
    assert (matrix->xx[3] == LEARN_MATRIX_BIAS * LEARN_MATRIX_BIAS);
    if (verbose)
        printf ("  %zu buckets seen in 2 rows; row 0 has %zu features\n", vocabulary.seen_count,
                matrix->offsets[1] - matrix->offsets[0]);
    learn_vocabulary_reset (&vocabulary);
    learn_vocabulary_reset (&vocabulary);
    assert (!vocabulary.df && vocabulary.seen_count == 0);
    learn_matrix_destroy (&matrix);
    assert (!matrix);
    learn_matrix_destroy (&matrix);
    learn_examples_destroy (&examples);
    if (verbose)
        printf ("learn_matrix: ok\n");
}
