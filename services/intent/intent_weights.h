/* The weights of the intent model: a row of a weight per label for each hashed feature bucket
   seen in training, and the product of a text's features with them.

   Most rows are mostly zeros (78% of the demo model's weights): such a row keeps its other
   weights as (label, weight) pairs. A row with more than a quarter of its weights non-zero (a
   frequent feature's, most often) is kept whole, padded to a multiple of INTENT_WEIGHTS_LANES
   labels, and summed with vector instructions. A weight of -0 is kept, so the rows given back
   are the rows given, bit for bit, and the scores are those of the whole product.

   Made a row at a time, so that a reader streaming them from a file never holds them twice:
   measure every row with intent_weights_measure, make the room with intent_weights_new, add the
   rows in order with intent_weights_add. Read-only once complete: threads may share them. */
#ifndef INTENT_WEIGHTS_H
#define INTENT_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"

/* Scores of a whole row are summed this many labels at a time: a fixed-size inner loop the
   compiler turns into vector instructions at -O2. */
#define INTENT_WEIGHTS_LANES 8
#define INTENT_WEIGHTS_MAX_LABELS 65536 /* a row's labels are kept in 16 bits */

typedef struct _intent_weights_t intent_weights_t;

/* The memory rows of weights take: weights kept as (label, weight) pairs, and rows kept whole. */
typedef struct {
    size_t pairs;
    size_t whole_rows;
} intent_weights_room_t;

/* Adds what one row of label_count weights takes to room. */
void intent_weights_measure (intent_weights_room_t *room, const float *row, size_t label_count);

/* 0 when each of count values is a finite number; else -1 with err (on "weights"), the one message
   every check of a model's numbers gives, whether weight, bias or idf. */
int intent_weights_check_finite (const float *values, size_t count, cv_error_t *err) CV_MUST_CHECK;

/* Room for rows rows of label_count weights (1..INTENT_WEIGHTS_MAX_LABELS) over 2^bits buckets,
   taking room: the buckets (increasing, each below 2^bits) and idf of each row, and default_idf
   for buckets without a row, are copied. NULL with err for out-of-order buckets, an idf that is
   not a positive number, or no memory. */
intent_weights_t *intent_weights_new (unsigned bits, size_t label_count, size_t rows, const uint32_t *buckets,
                                      const float *idf, float default_idf, const intent_weights_room_t *room,
                                      cv_error_t *err) CV_MUST_CHECK;
void intent_weights_destroy (intent_weights_t **self_p);

/* Appends the next row: a weight per label, copied. -1 with err when one is not finite, or the
   row does not fit the room measured (the rows are not those measured), or all rows are in. */
int intent_weights_add (intent_weights_t *self, const float *row, cv_error_t *err) CV_MUST_CHECK;

/* True once every row is in. */
bool intent_weights_complete (const intent_weights_t *self);
unsigned intent_weights_bits (const intent_weights_t *self);
size_t intent_weights_labels (const intent_weights_t *self);
/* Rows added so far. */
size_t intent_weights_rows (const intent_weights_t *self);
float intent_weights_default_idf (const intent_weights_t *self);
/* The bucket of row (below intent_weights_rows); its idf into *idf and its weights, one per
   label, into weights (+0 where the row keeps none), each when not NULL. */
uint32_t intent_weights_row (const intent_weights_t *self, size_t row, float *idf, float *weights);

/* Adds to scores (labels rounded up to INTENT_WEIGHTS_LANES of them) the product of the text's
   count features (bucket and count each) with the rows: each feature weighs its sublinear tf
   times its idf, L2-normalised over all of them (a bucket without a row counts in the norm, as
   default_idf says). rows and values are scratch room for count entries. Allocates nothing. */
void intent_weights_score (const intent_weights_t *self, const uint32_t *buckets, const uint32_t *counts, size_t count,
                           uint32_t *rows, float *values, float *scores);

void intent_weights_test (bool verbose);

#endif
