/* The training examples as a tf-idf matrix: one sparse row of hashed features per example, and the
   vocabulary (document frequencies and idf) of a set of its rows.

   The features of every example are extracted once per feature setting (the slow part); each
   cross-validation fold then counts its own training rows' vocabulary and weighs every row with
   that idf, as intent_model_predict would weigh a text with the model trained on those rows.
   Plain data, read directly by the solver's inner loop. */
#ifndef LEARN_MATRIX_H
#define LEARN_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "intent_features.h"
#include "learn_examples.h"

#define LEARN_MATRIX_BIAS 1.0 /* the value of the constant feature that carries the bias */

typedef struct {
    size_t rows;
    size_t *offsets; /* rows + 1: row r is [offsets[r], offsets[r + 1]) */
    uint32_t *buckets;
    float *tf;     /* sublinear term frequency */
    float *values; /* tf times idf, each row L2-normalised: set by learn_matrix_weigh */
    double *xx;    /* each row's squared norm, bias included: set by learn_matrix_weigh */
} learn_matrix_t;

/* The buckets of a set of training rows and their idf. */
typedef struct {
    uint32_t *df;   /* 2^bits: in how many training rows each bucket is */
    float *idf;     /* 2^bits */
    uint32_t *seen; /* the buckets with df > 0, increasing */
    size_t seen_count;
} learn_vocabulary_t;

/* The features of every example under settings, not yet weighed; the caller's to destroy. */
learn_matrix_t *learn_matrix_new (const learn_examples_t *examples, const intent_features_settings_t *settings);
void learn_matrix_destroy (learn_matrix_t **self_p);

/* Counts the buckets (of 2^bits, buckets of them) of the rows listed in train (count of them) into
   vocabulary, which the caller frees with learn_vocabulary_reset. */
void learn_matrix_vocabulary (const learn_matrix_t *self, const uint32_t *train, size_t count, size_t buckets,
                              learn_vocabulary_t *vocabulary);

/* Weighs every row with vocabulary's idf: tf times idf, L2-normalised, exactly as
   intent_model_predict does; sets values and xx. */
void learn_matrix_weigh (learn_matrix_t *self, const learn_vocabulary_t *vocabulary);

/* Frees what learn_matrix_vocabulary allocated and zeroes vocabulary; safe to call again. */
void learn_vocabulary_reset (learn_vocabulary_t *vocabulary);

void learn_matrix_test (bool verbose);

#endif
