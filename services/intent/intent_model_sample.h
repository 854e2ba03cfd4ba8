/* The small model that the self-tests of the intent model and of its file build by hand: nine
   labels and one row for each of three words, kept both ways — "alpha" as pairs (2 at label 3
   and a -0 at label 5), "beta" whole (1 at label 7, -0.25 at every other), "gamma" with no weight
   at all — given in bucket order, as a model takes them. Features: 12 bucket bits, words only.

   intent_model_file's self-test holds the size and checksum of this model's file as the format
   has always written it: what this builds must not change. */
#ifndef INTENT_MODEL_SAMPLE_H
#define INTENT_MODEL_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "intent_model.h"

#define INTENT_MODEL_SAMPLE_LABELS 9
#define INTENT_MODEL_SAMPLE_ROWS 3

/* The sample model (the caller's) with labels (INTENT_MODEL_SAMPLE_LABELS names), idf[r] for the
   r-th row in bucket order, bias per label and default_idf; no calibration or threshold set. The
   rows' buckets go into buckets and their weights into weights[r * INTENT_MODEL_SAMPLE_LABELS +
   label], each when not NULL. For self-tests: asserts that the model is made. */
intent_model_t *intent_model_sample_new (const char *const *labels, const float *idf, const float *bias,
                                         float default_idf, uint32_t *buckets, float *weights);

void intent_model_sample_test (bool verbose);

#endif
