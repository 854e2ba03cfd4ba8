/* The embedded intent classifier: a multiclass linear model over intent_features, with a
   calibrated confidence, saved to and loaded from a versioned, checksummed file.

   A text's features are weighted (sublinear tf times idf, then L2-normalised) and each label's
   score is its bias plus the dot product of those weights with the label's weights. The weights
   are kept for the buckets seen in training only, one row per bucket, so a feature costs one
   table look-up and one pass over one row. In memory a row holds only its non-zero weights, as
   (label, weight) pairs: a linear SVM's rows are mostly zeros (78% in the demo model), and the
   sums come out the same, bit for bit, as over the whole row. The confidence is
   the probability that the best label is right, read from the margin between the two best scores
   through a monotone map fitted on out-of-fold predictions at training time (intent_train).
   A model also carries the confidence threshold chosen to keep a share of traffic (its coverage)
   on the model, the "fast path".

   The file, every number little-endian, floats IEEE 754 single precision:
       magic "CVINTENT", u32 format version, u64 file size,
       u32 normalisation flags, u8 bucket bits, u8 word n-grams, u8 char n-gram min, u8 max,
       u32 labels, u32 rows, u32 calibration knots, f32 idf of a bucket without a row,
       f32 coverage, f32 threshold,
       each label: u8 length, its bytes;   f32 bias per label;
       f32 knot margins, f32 knot probabilities;
       u32 bucket of each row (increasing), f32 idf of each row, f32 weights [row][label],
       u32 CRC-32 (ISO-HDLC, as zlib's) of every byte before it.
   Loading checks the magic, the version, the size, the checksum, then every count, name and
   number, so a truncated, corrupted or foreign file is refused with a message saying which,
   never half-read. It reads the file a few kilobytes at a time, twice (the checksum first), so
   the process never holds a copy of the file beside the model it makes.

   A loaded model is read-only: threads may share it, each with its own intent_scratch_t. */
#ifndef INTENT_MODEL_H
#define INTENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_envelope.h"
#include "cv_error.h"
#include "intent_features.h"

#define INTENT_MODEL_MAGIC "CVINTENT"
#define INTENT_MODEL_VERSION 1
#define INTENT_MODEL_MAX_LABELS 1024
#define INTENT_MODEL_TOP_MAX CV_MAX_CANDIDATES      /* candidates a prediction can list */
#define INTENT_MODEL_MAX_KNOTS 4096                 /* points of the confidence map */
#define INTENT_MODEL_MAX_BYTES (1024u * 1024 * 1024) /* a larger file is refused unread */

typedef struct _intent_model_t intent_model_t;
typedef struct _intent_scratch_t intent_scratch_t;

/* One label of a prediction. */
typedef struct {
    size_t label;             /* index into the model's labels */
    const char *name;         /* borrowed from the model */
    float score;              /* the linear score */
} intent_candidate_t;

/* What the model makes of a text; plain data. */
typedef struct {
    intent_candidate_t top[INTENT_MODEL_TOP_MAX];   /* best first */
    size_t count;
    float margin;             /* the best score minus the second best */
    float confidence;         /* the calibrated probability that top[0] is right, 0..1 */
} intent_prediction_t;

/* True when the size bytes at name make a valid intent name (see intent_model_new). */
bool intent_model_label_valid (const char *name, size_t size);

/* An empty model for the given features and labels (label_count of them, 2 or more, distinct,
   each a valid intent name: [A-Za-z0-9_.:-], 1..CV_NAME_MAX_BYTES): no weights, confidence 0,
   threshold 1, until the intent_model_set_* calls fill it. All arguments are copied. NULL with
   err for bad settings or labels. */
intent_model_t *intent_model_new (const intent_features_settings_t *features, const char *const *labels,
                                  size_t label_count, cv_error_t *err) CV_MUST_CHECK;
void intent_model_destroy (intent_model_t **self_p);

/* Sets the weights: rows buckets (increasing, each below 2^bits), each with its idf and a weight
   per label at weights[row * labels + label]; bias per label; default_idf for buckets without a
   row. Copied. -1 with err for out-of-order buckets or numbers that are not finite. */
int intent_model_set_weights (intent_model_t *self, size_t rows, const uint32_t *buckets, const float *idf,
                              const float *weights, const float *bias, float default_idf, cv_error_t *err)
    CV_MUST_CHECK;

/* Sets the confidence map: count knots (1..INTENT_MODEL_MAX_KNOTS) of increasing margins with
   non-decreasing probabilities in 0..1; between knots the map is linear, beyond them flat.
   Copied. -1 with err when the knots are not so. */
int intent_model_set_calibration (intent_model_t *self, size_t count, const float *margins,
                                  const float *probabilities, cv_error_t *err) CV_MUST_CHECK;

/* Sets the share of traffic (0..1] the threshold was chosen for, and the threshold (0..1). */
int intent_model_set_threshold (intent_model_t *self, float coverage, float threshold, cv_error_t *err)
    CV_MUST_CHECK;

/* Reads and validates the model file at path; NULL with err (naming the file) when it cannot be
   read, is not a model, is of another version, is truncated or corrupted, or holds numbers that
   make no sense. */
intent_model_t *intent_model_load (const char *path, cv_error_t *err) CV_MUST_CHECK;

/* The same from size bytes in memory (borrowed). */
intent_model_t *intent_model_decode (const void *data, size_t size, cv_error_t *err) CV_MUST_CHECK;

/* The model in its file format, in a new buffer the caller frees, of *size bytes. */
uint8_t *intent_model_encode (const intent_model_t *self, size_t *size);

/* The size of the model's file, in bytes. */
size_t intent_model_file_size (const intent_model_t *self);

/* Writes the model to path atomically: a temporary file beside it, synced, then renamed over it,
   so a reader sees the old model or the new, never part of one. -1 with err on failure. */
int intent_model_save (const intent_model_t *self, const char *path, cv_error_t *err) CV_MUST_CHECK;

const intent_features_settings_t *intent_model_features (const intent_model_t *self);
size_t intent_model_label_count (const intent_model_t *self);
/* Label index's name (borrowed), or NULL past the end. */
const char *intent_model_label (const intent_model_t *self, size_t index);
/* True, with its index in *index, when name is one of the labels. */
bool intent_model_find (const intent_model_t *self, const char *name, size_t *index);
/* Buckets that have weights. */
size_t intent_model_rows (const intent_model_t *self);
float intent_model_coverage (const intent_model_t *self);
/* Predictions with a confidence at or above it take the fast path. */
float intent_model_threshold (const intent_model_t *self);
/* The confidence map applied to a margin. */
float intent_model_calibrate (const intent_model_t *self, float margin);

/* One thread's working memory for intent_model_predict, sized for model (borrowed; it must
   outlive the scratch). NULL only when memory runs out. */
intent_scratch_t *intent_scratch_new (const intent_model_t *model);
void intent_scratch_destroy (intent_scratch_t **self_p);

/* Classifies the size bytes at text (any bytes; see intent_text) into prediction with the k best
   labels (1..INTENT_MODEL_TOP_MAX, fewer if the model has fewer). scratch must have been made
   for this model. Allocates nothing. */
void intent_model_predict (const intent_model_t *self, intent_scratch_t *scratch, const char *text, size_t size,
                           size_t k, intent_prediction_t *prediction);

void intent_model_test (bool verbose);

#endif
