/* The embedded intent classifier: a multiclass linear model over intent_features, with a
   calibrated confidence.

   A text's features are weighted (sublinear tf times idf, then L2-normalised) and each label's
   score is its bias plus the dot product of those weights with the label's weights. The weights
   are kept for the buckets seen in training only, one row per bucket, so a feature costs one
   table look-up and one pass over one row (intent_weights keeps them). The confidence is the
   probability that the best label is right, read from the margin between the two best scores
   through a monotone map fitted on out-of-fold predictions at training time (learn_calibration).
   A model also carries the confidence threshold chosen to keep a share of traffic (its coverage)
   on the model, the "fast path".

   Its file, and how a model is loaded and saved, are intent_model_file's.

   A loaded model is read-only: threads may share it, each with its own intent_scratch_t. */
#ifndef INTENT_MODEL_H
#define INTENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_envelope.h"
#include "cv_error.h"
#include "intent_features.h"
#include "intent_weights.h"

#define INTENT_MODEL_MAX_LABELS 1024
#define INTENT_MODEL_TOP_MAX CV_MAX_CANDIDATES /* candidates a prediction can list */
#define INTENT_MODEL_MAX_KNOTS 4096            /* points of the confidence map */

typedef struct _intent_model_t intent_model_t;
typedef struct _intent_scratch_t intent_scratch_t;

/* One label of a prediction. */
typedef struct {
    size_t label;     /* index into the model's labels */
    const char *name; /* borrowed from the model */
    float score;      /* the linear score */
} intent_candidate_t;

/* What the model makes of a text; plain data. */
typedef struct {
    intent_candidate_t top[INTENT_MODEL_TOP_MAX]; /* best first */
    size_t count;
    float margin;     /* the best score minus the second best */
    float confidence; /* the calibrated probability that top[0] is right, 0..1 */
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
                              const float *weights, const float *bias, float default_idf,
                              cv_error_t *err) CV_MUST_CHECK;

/* Sets the confidence map: count knots (1..INTENT_MODEL_MAX_KNOTS) of increasing margins with
   non-decreasing probabilities in 0..1; between knots the map is linear, beyond them flat.
   Copied. -1 with err when the knots are not so. */
int intent_model_set_calibration (intent_model_t *self, size_t count, const float *margins, const float *probabilities,
                                  cv_error_t *err) CV_MUST_CHECK;

/* Sets the share of traffic (0..1] the threshold was chosen for, and the threshold (0..1). */
int intent_model_set_threshold (intent_model_t *self, float coverage, float threshold, cv_error_t *err) CV_MUST_CHECK;

/* Sets the model's weights to *weights_p (made for this model's bits and labels; see
   intent_weights for making them a row at a time), taken and nulled even on failure, and its
   bias (a number per label, copied). -1 with err, the model unchanged, when rows are missing or
   a bias is not finite. */
int intent_model_take_weights (intent_model_t *self, intent_weights_t **weights_p, const float *bias,
                               cv_error_t *err) CV_MUST_CHECK;

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
/* Label's bias (one per label, borrowed), and the idf of a bucket without a row. */
const float *intent_model_bias (const intent_model_t *self);
float intent_model_default_idf (const intent_model_t *self);
/* The bucket of row (below intent_model_rows); its idf into *idf and its weights, one per label,
   into weights (+0 where the model keeps none), each when not NULL. */
uint32_t intent_model_row (const intent_model_t *self, size_t row, float *idf, float *weights);
/* The confidence map's knots (1 or more): margins and probabilities, borrowed. */
size_t intent_model_knots (const intent_model_t *self, const float **margins, const float **probabilities);
/* The confidence map applied to a margin. */
float intent_model_calibrate (const intent_model_t *self, float margin);

/* One thread's working memory for intent_model_predict, sized for model (borrowed; it must
   outlive the scratch); never NULL. */
intent_scratch_t *intent_scratch_new (const intent_model_t *model);
void intent_scratch_destroy (intent_scratch_t **self_p);

/* Classifies the size bytes at text (any bytes; see intent_text) into prediction with the k best
   labels (1..INTENT_MODEL_TOP_MAX, fewer if the model has fewer). scratch must have been made
   for this model. Allocates nothing. */
void intent_model_predict (const intent_model_t *self, intent_scratch_t *scratch, const char *text, size_t size,
                           size_t k, intent_prediction_t *prediction);

void intent_model_test (bool verbose);

#endif
