/* The intent classifier: a linear model over hashed features, its confidence map and its file. */
#include "intent_model.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC_SIZE 8
/* magic, version, file size, flags, 4 setting bytes, labels, rows, knots, default idf, coverage,
   threshold */
#define HEADER_SIZE (MAGIC_SIZE + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4)
#define CRC_SIZE 4
/* The most bytes read from a model in one piece: a row of weights, the biases, a label. */
#define PIECE_MAX (4 * INTENT_MODEL_MAX_LABELS)
/* Scores of a whole row are summed LANES labels at a time: a fixed-size inner loop the compiler
   turns into vector instructions at -O2; whole rows and the scores are padded with zeros to a
   multiple of it. */
#define LANES 8
_Static_assert (INTENT_MODEL_MAX_LABELS <= UINT16_MAX + 1, "a row's labels are kept in 16 bits");

struct _intent_model_t {
    intent_features_settings_t features;
    char **labels;
    size_t label_count;
    float *bias;                 /* per label */
    /* 2^bits entries: row + 1 of a bucket, 0 when it has none; in 16 bits while the rows fit
       (half the memory: 512 kB for the demo model's 2^18 buckets), else in 32 */
    uint16_t *map16;
    uint32_t *map32;
    uint32_t *buckets;           /* per row, increasing */
    float *idf;                  /* per row */
    size_t rows;
    /* The weights. Most rows are mostly zeros: such a row keeps its other weights as (label,
       weight) pairs, at row_start[r] .. row_start[r + 1] - 1 by increasing label. A row with
       more than a quarter of its weights non-zero (a frequent feature's, most often) is kept
       whole, padded to stride, and summed with vector instructions: whole[r] is 1 + its index
       among those, 0 for a row of pairs. A weight of -0 is kept, so the file written from a
       model is the file it was read from. */
    uint32_t *row_start;         /* rows + 1 */
    uint16_t *pair_labels;
    float *pair_weights;
    uint32_t *whole;             /* per row */
    float *whole_weights;        /* [whole row][stride] */
    size_t stride;               /* labels rounded up to a whole number of LANES */
    float default_idf;           /* of a bucket without a row */
    float *knot_margins;         /* the confidence map */
    float *knot_probabilities;
    size_t knots;
    float coverage;
    float threshold;
};

struct _intent_scratch_t {
    const intent_model_t *model;
    intent_features_t *features;
    float *scores;                       /* per label */
    uint32_t rows[INTENT_FEATURES_MAX];  /* of the text's features that have one */
    float values[INTENT_FEATURES_MAX];   /* their weights */
};

/* Intent names travel in Intent.name and in rule ids: the wire's name rule. */
bool
intent_model_label_valid (const char *name, size_t size)
{
    assert (name || size == 0);
    return cv_name_valid_bytes (name, size);
}

/* Checks the labels: valid, distinct. */
static int
s_check_labels (const char *const *labels, const size_t *sizes, size_t count, cv_error_t *err)
{
    if (count < 2 || count > INTENT_MODEL_MAX_LABELS)
        return cv_error_set (err, CV_ERR_INVALID, "labels", "%zu labels: a model needs 2..%d", count,
                             INTENT_MODEL_MAX_LABELS);
    for (size_t i = 0; i < count; i++) {
        if (!intent_model_label_valid (labels[i], sizes[i]))
            return cv_error_set (err, CV_ERR_INVALID, "labels", "label '%.*s' is not a valid intent name (1..%d of "
                                 "A-Z a-z 0-9 _ . : -)", (int) (sizes[i] > 80 ? 80 : sizes[i]), labels[i],
                                 CV_NAME_MAX_BYTES);
        /* quadratic, but once per model and over at most INTENT_MODEL_MAX_LABELS short names */
        for (size_t j = 0; j < i; j++)
            if (sizes[i] == sizes[j] && memcmp (labels[i], labels[j], sizes[i]) == 0)
                return cv_error_set (err, CV_ERR_INVALID, "labels", "label '%.*s' appears twice", (int) sizes[i],
                                     labels[i]);
    }
    return 0;
}

/* A model with labels (count of them, sizes[i] bytes each, not NUL-terminated), no weights. */
static intent_model_t *
s_new (const intent_features_settings_t *features, const char *const *labels, const size_t *sizes, size_t count,
       cv_error_t *err)
{
    if (intent_features_settings_check (features, err) || s_check_labels (labels, sizes, count, err))
        return NULL;
    intent_model_t *self = calloc (1, sizeof *self);
    if (!self) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    self->features = *features;
    self->label_count = count;
    self->stride = (count + LANES - 1) / LANES * LANES;
    self->labels = calloc (count, sizeof *self->labels);
    self->bias = calloc (self->stride, sizeof *self->bias);
    self->map16 = calloc ((size_t) 1 << features->bits, sizeof *self->map16);
    self->row_start = calloc (1, sizeof *self->row_start);
    self->knot_margins = calloc (1, sizeof (float));
    self->knot_probabilities = calloc (1, sizeof (float));
    bool ok = self->labels && self->bias && self->map16 && self->row_start && self->knot_margins
              && self->knot_probabilities;
    for (size_t i = 0; ok && i < count; i++) {
        self->labels[i] = strndup (labels[i], sizes[i]);
        ok = self->labels[i] != NULL;
    }
    if (!ok) {
        intent_model_destroy (&self);
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    /* no map yet: every margin has confidence 0, and nothing reaches the threshold */
    self->knots = 1;
    self->default_idf = 1.0f;
    self->coverage = 1.0f;
    self->threshold = 1.0f;
    return self;
}

intent_model_t *
intent_model_new (const intent_features_settings_t *features, const char *const *labels, size_t label_count,
                  cv_error_t *err)
{
    assert (features);
    assert (labels || label_count == 0);
    size_t *sizes = calloc (label_count ? label_count : 1, sizeof *sizes);
    if (!sizes) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < label_count; i++) {
        assert (labels[i]);
        sizes[i] = strlen (labels[i]);
    }
    intent_model_t *self = s_new (features, labels, sizes, label_count, err);
    free (sizes);
    return self;
}

void
intent_model_destroy (intent_model_t **self_p)
{
    assert (self_p);
    intent_model_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; self->labels && i < self->label_count; i++)
        free (self->labels[i]);
    free (self->labels);
    free (self->bias);
    free (self->map16);
    free (self->map32);
    free (self->buckets);
    free (self->idf);
    free (self->row_start);
    free (self->pair_labels);
    free (self->pair_weights);
    free (self->whole);
    free (self->whole_weights);
    free (self->knot_margins);
    free (self->knot_probabilities);
    free (self);
    *self_p = NULL;
}

static bool
s_finite (const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite (values[i]))
            return false;
    return true;
}

/* True for a weight a row leaves out: +0 only, so that -0 survives a save and a load. */
static bool
s_dropped (float weight)
{
    return weight == 0.0f && !signbit (weight);
}

/* Checks what intent_model_set_weights and the decoder take, before anything is changed. */
static int
s_check_buckets (const intent_model_t *self, size_t rows, const uint32_t *buckets, cv_error_t *err)
{
    size_t buckets_total = (size_t) 1 << self->features.bits;
    if (rows > buckets_total)
        return cv_error_set (err, CV_ERR_INVALID, "rows", "%zu rows for %zu buckets", rows, buckets_total);
    for (size_t row = 0; row < rows; row++)
        if (buckets[row] >= buckets_total || (row > 0 && buckets[row] <= buckets[row - 1]))
            return cv_error_set (err, CV_ERR_INVALID, "buckets", "row %zu: bucket %u out of order or range", row,
                                 buckets[row]);
    return 0;
}

static int
s_check_idf (size_t rows, const float *idf, float default_idf, cv_error_t *err)
{
    if (!s_finite (idf, rows) || !isfinite (default_idf))
        return cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    for (size_t row = 0; row < rows; row++)
        if (!(idf[row] > 0))
            return cv_error_set (err, CV_ERR_INVALID, "idf", "row %zu: idf %g is not positive", row, idf[row]);
    if (!(default_idf > 0))
        return cv_error_set (err, CV_ERR_INVALID, "idf", "default idf %g is not positive", default_idf);
    return 0;
}

/* How much room a model's rows take: pairs and whole rows. */
typedef struct {
    size_t pairs;
    size_t whole_rows;
} room_t;

/* The weights a row keeps as pairs: those s_dropped does not drop. */
static size_t
s_kept (const float *row, size_t label_count)
{
    size_t kept = 0;
    for (size_t label = 0; label < label_count; label++)
        kept += !s_dropped (row[label]);
    return kept;
}

/* True for a row kept whole (see intent_model_t), given the weights it would keep as pairs. */
static bool
s_whole (size_t kept, size_t label_count)
{
    return 4 * kept > label_count;
}

/* Adds what one row of label_count weights takes to room. */
static void
s_measure (room_t *room, const float *row, size_t label_count)
{
    size_t kept = s_kept (row, label_count);
    if (s_whole (kept, label_count))
        room->whole_rows++;
    else
        room->pairs += kept;
}

/* Weights being made, for rows rows, to fill with s_add_row; a model's own weights are kept
   until s_install replaces them. */
typedef struct {
    uint32_t *buckets;
    float *idf;
    uint16_t *map16;          /* one of the two, for the rows */
    uint32_t *map32;
    uint32_t *row_start;
    uint16_t *pair_labels;
    float *pair_weights;
    uint32_t *whole;
    float *whole_weights;
    size_t label_count, stride;
    size_t rows;              /* filled so far */
    room_t used, room;
} weights_t;

static void
s_weights_free (weights_t *weights)
{
    free (weights->buckets);
    free (weights->idf);
    free (weights->map16);
    free (weights->map32);
    free (weights->row_start);
    free (weights->pair_labels);
    free (weights->pair_weights);
    free (weights->whole);
    free (weights->whole_weights);
    memset (weights, 0, sizeof *weights);
}

static int
s_weights_alloc (weights_t *weights, const intent_model_t *model, size_t rows, room_t room, cv_error_t *err)
{
    memset (weights, 0, sizeof *weights);
    weights->label_count = model->label_count;
    weights->stride = model->stride;
    weights->room = room;
    weights->buckets = malloc ((rows ? rows : 1) * sizeof *weights->buckets);
    weights->idf = malloc ((rows ? rows : 1) * sizeof *weights->idf);
    size_t buckets_total = (size_t) 1 << model->features.bits;
    if (rows < UINT16_MAX)
        weights->map16 = calloc (buckets_total, sizeof *weights->map16);
    else
        weights->map32 = calloc (buckets_total, sizeof *weights->map32);
    weights->row_start = malloc ((rows + 1) * sizeof *weights->row_start);
    weights->whole = malloc ((rows ? rows : 1) * sizeof *weights->whole);
    weights->pair_labels = malloc ((room.pairs ? room.pairs : 1) * sizeof *weights->pair_labels);
    weights->pair_weights = malloc ((room.pairs ? room.pairs : 1) * sizeof *weights->pair_weights);
    weights->whole_weights = calloc (room.whole_rows ? room.whole_rows * model->stride : 1,
                                     sizeof *weights->whole_weights);
    if (!weights->buckets || !weights->idf || !(weights->map16 || weights->map32) || !weights->row_start || !weights->whole || !weights->pair_labels
        || !weights->pair_weights || !weights->whole_weights) {
        s_weights_free (weights);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %zu rows", rows);
    }
    weights->row_start[0] = 0;
    return 0;
}

/* Appends one row of weights (label_count of them), whole or as pairs; false, with nothing
   appended, when it does not fit in the room made. */
static bool
s_add_row (weights_t *weights, const float *row)
{
    size_t labels = weights->label_count;
    size_t kept = s_kept (row, labels);
    size_t r = weights->rows;
    if (s_whole (kept, labels)) {
        if (weights->used.whole_rows == weights->room.whole_rows)
            return false;
        memcpy (weights->whole_weights + weights->used.whole_rows * weights->stride, row, labels * sizeof *row);
        weights->whole[r] = (uint32_t) ++weights->used.whole_rows;
    } else {
        if (kept > weights->room.pairs - weights->used.pairs)
            return false;
        for (size_t label = 0; label < labels; label++)
            if (!s_dropped (row[label])) {
                weights->pair_labels[weights->used.pairs] = (uint16_t) label;
                weights->pair_weights[weights->used.pairs] = row[label];
                weights->used.pairs++;
            }
        weights->whole[r] = 0;
    }
    weights->rows++;
    weights->row_start[weights->rows] = (uint32_t) weights->used.pairs;
    return true;
}

/* Replaces self's weights with weights (whose buckets and idf are filled), taking them. */
static void
s_install (intent_model_t *self, weights_t *weights, float default_idf)
{
    free (self->buckets);
    free (self->idf);
    free (self->map16);
    free (self->map32);
    free (self->row_start);
    free (self->pair_labels);
    free (self->pair_weights);
    free (self->whole);
    free (self->whole_weights);
    self->buckets = weights->buckets;
    self->idf = weights->idf;
    self->map16 = weights->map16;
    self->map32 = weights->map32;
    self->row_start = weights->row_start;
    self->pair_labels = weights->pair_labels;
    self->pair_weights = weights->pair_weights;
    self->whole = weights->whole;
    self->whole_weights = weights->whole_weights;
    self->rows = weights->rows;
    memset (weights, 0, sizeof *weights);
    for (size_t row = 0; row < self->rows; row++)
        if (self->map16)
            self->map16[self->buckets[row]] = (uint16_t) (row + 1);
        else
            self->map32[self->buckets[row]] = (uint32_t) row + 1;
    self->default_idf = default_idf;
}

int
intent_model_set_weights (intent_model_t *self, size_t rows, const uint32_t *buckets, const float *idf,
                          const float *weights, const float *bias, float default_idf, cv_error_t *err)
{
    assert (self);
    assert (bias);
    assert (rows == 0 || (buckets && idf && weights));
    if (s_check_buckets (self, rows, buckets, err))
        return -1;
    if (!s_finite (weights, rows * self->label_count) || !s_finite (bias, self->label_count))
        return cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    if (s_check_idf (rows, idf, default_idf, err))
        return -1;
    room_t room = {0};
    for (size_t row = 0; row < rows; row++)
        s_measure (&room, weights + row * self->label_count, self->label_count);
    weights_t kept;
    if (s_weights_alloc (&kept, self, rows, room, err))
        return -1;
    if (rows) {
        memcpy (kept.buckets, buckets, rows * sizeof *kept.buckets);
        memcpy (kept.idf, idf, rows * sizeof *kept.idf);
    }
    for (size_t row = 0; row < rows; row++) {
        bool added = s_add_row (&kept, weights + row * self->label_count);
        assert (added); /* the room was counted above */
    }
    s_install (self, &kept, default_idf);
    memcpy (self->bias, bias, self->label_count * sizeof *self->bias);
    return 0;
}

int
intent_model_set_calibration (intent_model_t *self, size_t count, const float *margins, const float *probabilities,
                              cv_error_t *err)
{
    assert (self);
    assert (margins && probabilities);
    if (count < 1 || count > INTENT_MODEL_MAX_KNOTS)
        return cv_error_set (err, CV_ERR_INVALID, "calibration", "%zu knots: the map takes 1..%d", count,
                             INTENT_MODEL_MAX_KNOTS);
    for (size_t i = 0; i < count; i++) {
        if (!isfinite (margins[i]) || !(probabilities[i] >= 0 && probabilities[i] <= 1))
            return cv_error_set (err, CV_ERR_INVALID, "calibration", "knot %zu: margin %g, probability %g", i,
                                 margins[i], probabilities[i]);
        if (i > 0 && (margins[i] <= margins[i - 1] || probabilities[i] < probabilities[i - 1]))
            return cv_error_set (err, CV_ERR_INVALID, "calibration", "knot %zu: the map is not increasing", i);
    }
    float *new_margins = malloc (count * sizeof *new_margins);
    float *new_probabilities = malloc (count * sizeof *new_probabilities);
    if (!new_margins || !new_probabilities) {
        free (new_margins);
        free (new_probabilities);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    }
    memcpy (new_margins, margins, count * sizeof *new_margins);
    memcpy (new_probabilities, probabilities, count * sizeof *new_probabilities);
    free (self->knot_margins);
    free (self->knot_probabilities);
    self->knot_margins = new_margins;
    self->knot_probabilities = new_probabilities;
    self->knots = count;
    return 0;
}

int
intent_model_set_threshold (intent_model_t *self, float coverage, float threshold, cv_error_t *err)
{
    assert (self);
    if (!(coverage > 0 && coverage <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "coverage", "coverage %g is not in (0, 1]", coverage);
    if (!(threshold >= 0 && threshold <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "threshold", "threshold %g is not in [0, 1]", threshold);
    self->coverage = coverage;
    self->threshold = threshold;
    return 0;
}

const intent_features_settings_t *
intent_model_features (const intent_model_t *self)
{
    assert (self);
    return &self->features;
}

size_t
intent_model_label_count (const intent_model_t *self)
{
    assert (self);
    return self->label_count;
}

const char *
intent_model_label (const intent_model_t *self, size_t index)
{
    assert (self);
    return index < self->label_count ? self->labels[index] : NULL;
}

bool
intent_model_find (const intent_model_t *self, const char *name, size_t *index)
{
    assert (self && name);
    for (size_t i = 0; i < self->label_count; i++)
        if (strcmp (self->labels[i], name) == 0) {
            if (index)
                *index = i;
            return true;
        }
    return false;
}

size_t
intent_model_rows (const intent_model_t *self)
{
    assert (self);
    return self->rows;
}

float
intent_model_coverage (const intent_model_t *self)
{
    assert (self);
    return self->coverage;
}

float
intent_model_threshold (const intent_model_t *self)
{
    assert (self);
    return self->threshold;
}

float
intent_model_calibrate (const intent_model_t *self, float margin)
{
    assert (self);
    const float *x = self->knot_margins, *y = self->knot_probabilities;
    size_t count = self->knots;
    if (!(margin > x[0]))   /* NaN too */
        return y[0];
    if (margin >= x[count - 1])
        return y[count - 1];
    /* the last knot at or below margin: x[low] <= margin < x[high] */
    size_t low = 0, high = count - 1;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        if (x[middle] <= margin)
            low = middle;
        else
            high = middle;
    }
    float t = (margin - x[low]) / (x[high] - x[low]);
    float p = y[low] + t * (y[high] - y[low]);
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

intent_scratch_t *
intent_scratch_new (const intent_model_t *model)
{
    assert (model);
    intent_scratch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->model = model;
    self->features = intent_features_new (&model->features);
    self->scores = calloc (model->stride, sizeof *self->scores);
    if (!self->features || !self->scores) {
        intent_scratch_destroy (&self);
        return NULL;
    }
    return self;
}

void
intent_scratch_destroy (intent_scratch_t **self_p)
{
    assert (self_p);
    intent_scratch_t *self = *self_p;
    if (!self)
        return;
    intent_features_destroy (&self->features);
    free (self->scores);
    free (self);
    *self_p = NULL;
}

/* y += a * x over LANES floats; restrict tells the compiler they do not overlap, so it may
   use vector instructions. */
static inline void
s_add_scaled (float *restrict y, const float *restrict x, float a)
{
    for (size_t lane = 0; lane < LANES; lane++)
        y[lane] += a * x[lane];
}

void
intent_model_predict (const intent_model_t *self, intent_scratch_t *scratch, const char *text, size_t size, size_t k,
                      intent_prediction_t *prediction)
{
    assert (self && scratch && prediction);
    assert (scratch->model == self);
    assert (k >= 1 && k <= INTENT_MODEL_TOP_MAX);
    size_t labels = self->label_count;

    /* weights of the text's features: sublinear tf times idf, L2-normalised over all of them
       (a bucket never seen in training counts in the norm, as its idf says, but has no row) */
    size_t count = intent_features_extract (scratch->features, text, size);
    const uint32_t *buckets = intent_features_buckets (scratch->features);
    const uint32_t *counts = intent_features_counts (scratch->features);
    size_t active = 0;
    double norm = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t row = self->map16 ? self->map16[buckets[i]] : self->map32[buckets[i]];
        float value = intent_features_tf (counts[i]) * (row ? self->idf[row - 1] : self->default_idf);
        norm += (double) value * value;
        if (row) {
            /* the row is needed in the next loop: ask for it now, so its loads overlap */
            if (self->whole[row - 1]) {
                size_t whole = self->whole[row - 1] - 1;
                const char *weights = (const char *) (self->whole_weights + whole * self->stride);
                for (size_t byte = 0; byte < self->stride * sizeof (float); byte += 64)
                    __builtin_prefetch (weights + byte);
            } else {
                __builtin_prefetch (self->pair_labels + self->row_start[row - 1]);
                __builtin_prefetch (self->pair_weights + self->row_start[row - 1]);
            }
            scratch->rows[active] = row - 1;
            scratch->values[active] = value;
            active++;
        }
    }
    float scale = norm > 0 ? (float) (1.0 / sqrt (norm)) : 0;

    /* Each label's sum takes the same terms in the same order whether a row is whole or in
       pairs, less the zeros, which add nothing: the scores are those of the whole product of
       the file's rows, bit for bit. */
    float *scores = scratch->scores;
    size_t stride = self->stride;
    memcpy (scores, self->bias, stride * sizeof *scores);
    for (size_t i = 0; i < active; i++) {
        uint32_t row = scratch->rows[i];
        float value = scratch->values[i] * scale;
        if (self->whole[row]) {
            const float *weights = self->whole_weights + (size_t) (self->whole[row] - 1) * stride;
            for (size_t label = 0; label < stride; label += LANES)
                s_add_scaled (scores + label, weights + label, value);
        } else
            for (uint32_t at = self->row_start[row]; at < self->row_start[row + 1]; at++)
                scores[self->pair_labels[at]] += value * self->pair_weights[at];
    }

    /* the k best, by insertion: k is small */
    if (k > labels)
        k = labels;
    size_t kept = 0;
    for (size_t label = 0; label < labels; label++) {
        float score = scores[label];
        if (kept == k && !(score > prediction->top[k - 1].score))
            continue;
        size_t at = kept < k ? kept++ : k - 1;
        while (at > 0 && prediction->top[at - 1].score < score) {
            prediction->top[at] = prediction->top[at - 1];
            at--;
        }
        prediction->top[at] = (intent_candidate_t) {label, self->labels[label], score};
    }
    prediction->count = kept;
    /* the margin needs the second best even when only one candidate was asked for */
    float second = -INFINITY;
    for (size_t label = 0; label < labels; label++)
        if (label != prediction->top[0].label && scores[label] > second)
            second = scores[label];
    prediction->margin = prediction->top[0].score - second;
    prediction->confidence = intent_model_calibrate (self, prediction->margin);
}

/* --- the file --- */

/* CRC-32/ISO-HDLC (zlib's crc32), a byte at a time, over pieces given in order. The table is
   made afresh for each load or save: it costs microseconds and needs no state shared between
   threads. */
typedef struct {
    uint32_t table[256];
    uint32_t value;
} crc_t;

static void
s_crc_start (crc_t *crc)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc->table[i] = c;
    }
    crc->value = 0xFFFFFFFFu;
}

static void
s_crc_add (crc_t *crc, const uint8_t *data, size_t size)
{
    uint32_t value = crc->value;
    for (size_t i = 0; i < size; i++)
        value = crc->table[(value ^ data[i]) & 0xFF] ^ (value >> 8);
    crc->value = value;
}

static uint32_t
s_crc_value (const crc_t *crc)
{
    return crc->value ^ 0xFFFFFFFFu;
}

static uint32_t
s_crc32 (const uint8_t *data, size_t size)
{
    crc_t crc;
    s_crc_start (&crc);
    s_crc_add (&crc, data, size);
    return s_crc_value (&crc);
}

static uint8_t *
s_put_u32 (uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t) value;
    p[1] = (uint8_t) (value >> 8);
    p[2] = (uint8_t) (value >> 16);
    p[3] = (uint8_t) (value >> 24);
    return p + 4;
}

static uint8_t *
s_put_f32 (uint8_t *p, float value)
{
    uint32_t bits;
    memcpy (&bits, &value, sizeof bits);
    return s_put_u32 (p, bits);
}

static uint8_t *
s_put_f32s (uint8_t *p, const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        p = s_put_f32 (p, values[i]);
    return p;
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static float
s_get_f32 (const uint8_t *p)
{
    uint32_t bits = s_get_u32 (p);
    float value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static void
s_get_f32s (const uint8_t *p, float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        values[i] = s_get_f32 (p + 4 * i);
}

/* The file size for a model of these counts; labels_bytes is the sum of the labels' lengths.
   Computed in 64 bits from 32-bit counts, so it cannot overflow. */
static uint64_t
s_file_size (uint64_t labels, uint64_t labels_bytes, uint64_t rows, uint64_t knots)
{
    return HEADER_SIZE + labels + labels_bytes + 4 * labels + 8 * knots + 8 * rows + 4 * rows * labels + CRC_SIZE;
}

size_t
intent_model_file_size (const intent_model_t *self)
{
    assert (self);
    size_t labels_bytes = 0;
    for (size_t i = 0; i < self->label_count; i++)
        labels_bytes += strlen (self->labels[i]);
    return (size_t) s_file_size (self->label_count, labels_bytes, self->rows, self->knots);
}

uint8_t *
intent_model_encode (const intent_model_t *self, size_t *size)
{
    assert (self && size);
    uint64_t total = intent_model_file_size (self);
    uint8_t *data = malloc (total);
    if (!data)
        return NULL;
    uint8_t *p = data;
    memcpy (p, INTENT_MODEL_MAGIC, MAGIC_SIZE);
    p += MAGIC_SIZE;
    p = s_put_u32 (p, INTENT_MODEL_VERSION);
    p = s_put_u32 (p, (uint32_t) total);
    p = s_put_u32 (p, (uint32_t) (total >> 32));
    p = s_put_u32 (p, self->features.text_flags);
    *p++ = (uint8_t) self->features.bits;
    *p++ = (uint8_t) self->features.word_max;
    *p++ = (uint8_t) self->features.char_min;
    *p++ = (uint8_t) self->features.char_max;
    p = s_put_u32 (p, (uint32_t) self->label_count);
    p = s_put_u32 (p, (uint32_t) self->rows);
    p = s_put_u32 (p, (uint32_t) self->knots);
    p = s_put_f32 (p, self->default_idf);
    p = s_put_f32 (p, self->coverage);
    p = s_put_f32 (p, self->threshold);
    assert (p == data + HEADER_SIZE);
    for (size_t i = 0; i < self->label_count; i++) {
        size_t length = strlen (self->labels[i]);
        *p++ = (uint8_t) length;
        memcpy (p, self->labels[i], length);
        p += length;
    }
    p = s_put_f32s (p, self->bias, self->label_count);
    p = s_put_f32s (p, self->knot_margins, self->knots);
    p = s_put_f32s (p, self->knot_probabilities, self->knots);
    for (size_t row = 0; row < self->rows; row++)
        p = s_put_u32 (p, self->buckets[row]);
    p = s_put_f32s (p, self->idf, self->rows);
    for (size_t row = 0; row < self->rows; row++) {
        if (self->whole[row]) {
            p = s_put_f32s (p, self->whole_weights + (self->whole[row] - 1) * self->stride, self->label_count);
            continue;
        }
        memset (p, 0, 4 * self->label_count); /* +0, the weights a row of pairs leaves out */
        for (uint32_t at = self->row_start[row]; at < self->row_start[row + 1]; at++)
            s_put_f32 (p + 4 * self->pair_labels[at], self->pair_weights[at]);
        p += 4 * self->label_count;
    }
    p = s_put_u32 (p, s_crc32 (data, total - CRC_SIZE));
    assert (p == data + total);
    *size = total;
    return data;
}

/* A model's bytes, read in order, a piece at a time, from memory or from a file: a model on
   disk is never held whole in memory beside the model made from it. */
typedef struct {
    const uint8_t *data;          /* the bytes, or NULL to read file */
    FILE *file;
    size_t size;                  /* of the whole model */
    size_t offset;                /* of the next byte */
    crc_t crc;                    /* of the bytes read since the last s_rewind */
    uint8_t piece[PIECE_MAX];     /* what s_read read last from file */
} reader_t;

/* The next size bytes (at most PIECE_MAX, borrowed until the next read), or NULL when they run
   past the model's size or the file cannot be read. */
static const uint8_t *
s_read (reader_t *reader, size_t size)
{
    assert (size <= PIECE_MAX);
    if (size > reader->size - reader->offset)
        return NULL;
    const uint8_t *piece = reader->piece;
    if (reader->data)
        piece = reader->data + reader->offset;
    else if (fread (reader->piece, 1, size, reader->file) != size)
        return NULL;
    reader->offset += size;
    s_crc_add (&reader->crc, piece, size);
    return piece;
}

/* Goes to offset; the checksum counts from there when restart, else it is left as it was. */
static int
s_seek (reader_t *reader, size_t offset, bool restart)
{
    assert (offset <= reader->size);
    if (!reader->data && fseek (reader->file, (long) offset, SEEK_SET))
        return -1;
    reader->offset = offset;
    if (restart)
        s_crc_start (&reader->crc);
    return 0;
}

static int
s_read_failed (const reader_t *reader, cv_error_t *err)
{
    if (reader->file && ferror (reader->file))
        return cv_error_set (err, CV_ERR_INVALID, NULL, "cannot read it: %s", strerror (errno));
    return cv_error_set (err, CV_ERR_INVALID, NULL, "it changed while read");
}

/* Reads count little-endian floats into values. */
static int
s_read_f32s (reader_t *reader, float *values, size_t count)
{
    while (count > 0) {
        size_t some = count < PIECE_MAX / 4 ? count : PIECE_MAX / 4;
        const uint8_t *piece = s_read (reader, 4 * some);
        if (!piece)
            return -1;
        s_get_f32s (piece, values, some);
        values += some;
        count -= some;
    }
    return 0;
}

static int
s_read_u32s (reader_t *reader, uint32_t *values, size_t count)
{
    while (count > 0) {
        size_t some = count < PIECE_MAX / 4 ? count : PIECE_MAX / 4;
        const uint8_t *piece = s_read (reader, 4 * some);
        if (!piece)
            return -1;
        for (size_t i = 0; i < some; i++)
            values[i] = s_get_u32 (piece + 4 * i);
        values += some;
        count -= some;
    }
    return 0;
}

/* The first pass: what the frame says, before anything else is read — the magic, the version,
   the size and the checksum of every byte. */
static int
s_check_frame (reader_t *reader, cv_error_t *err)
{
    size_t size = reader->size;
    const uint8_t *header = s_read (reader, size < HEADER_SIZE ? size : HEADER_SIZE);
    if (!header)
        return s_read_failed (reader, err);
    if (size < MAGIC_SIZE || memcmp (header, INTENT_MODEL_MAGIC, MAGIC_SIZE) != 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "not an intent model (it does not start with %s)",
                             INTENT_MODEL_MAGIC);
    if (size < HEADER_SIZE + CRC_SIZE)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "truncated: %zu bytes, fewer than a model's header", size);
    uint32_t version = s_get_u32 (header + MAGIC_SIZE);
    if (version != INTENT_MODEL_VERSION)
        return cv_error_set (err, CV_ERR_INVALID, NULL,
                             "model format version %u, this build reads version %d: train it again with this conveyor",
                             version, INTENT_MODEL_VERSION);
    uint64_t declared = (uint64_t) s_get_u32 (header + MAGIC_SIZE + 4)
                        | (uint64_t) s_get_u32 (header + MAGIC_SIZE + 8) << 32;
    if (declared != size)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %zu bytes where its header says %llu",
                             size < declared ? "truncated" : "trailing bytes", size, (unsigned long long) declared);
    while (reader->offset < size - CRC_SIZE) {
        size_t left = size - CRC_SIZE - reader->offset;
        if (!s_read (reader, left < PIECE_MAX ? left : PIECE_MAX))
            return s_read_failed (reader, err);
    }
    uint32_t computed = s_crc_value (&reader->crc);
    const uint8_t *stored = s_read (reader, CRC_SIZE);
    if (!stored)
        return s_read_failed (reader, err);
    if (s_get_u32 (stored) != computed)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "corrupted: checksum 0x%08x where the file says 0x%08x",
                             computed, s_get_u32 (stored));
    return 0;
}

/* Measures the room that rows rows of labels weights each take, from where reader is; then
   goes back, the checksum as it was. */
static int
s_measure_rows (reader_t *reader, size_t rows, size_t labels, room_t *room)
{
    size_t back = reader->offset;
    crc_t crc = reader->crc;
    float row[INTENT_MODEL_MAX_LABELS];
    for (size_t r = 0; r < rows; r++) {
        if (s_read_f32s (reader, row, labels))
            return -1;
        s_measure (room, row, labels);
    }
    if (s_seek (reader, back, false))
        return -1;
    reader->crc = crc;
    return 0;
}

/* The second pass: every count, name and number, into the model, whose weights are written
   straight into their rows. The frame was checked by s_check_frame. */
static intent_model_t *
s_decode (reader_t *reader, cv_error_t *err)
{
    size_t size = reader->size;
    if (s_seek (reader, 0, true)) {
        s_read_failed (reader, err);
        return NULL;
    }
    uint8_t header[HEADER_SIZE];
    const uint8_t *piece = s_read (reader, HEADER_SIZE);
    if (!piece) {
        s_read_failed (reader, err);
        return NULL;
    }
    memcpy (header, piece, HEADER_SIZE);
    /* The checksum only says that the bytes are those written: a file made otherwise must still
       fail cleanly, so every count is checked before it is used. */
    const uint8_t *p = header + MAGIC_SIZE + 12;
    intent_features_settings_t features = {
        .text_flags = s_get_u32 (p), .bits = p[4], .word_max = p[5], .char_min = p[6], .char_max = p[7]};
    if (intent_features_settings_check (&features, err)) {
        cv_error_prefix (err, "feature settings");
        return NULL;
    }
    uint32_t labels = s_get_u32 (p + 8), rows = s_get_u32 (p + 12), knots = s_get_u32 (p + 16);
    if (labels < 2 || labels > INTENT_MODEL_MAX_LABELS || rows > (1u << features.bits) || knots < 1
        || knots > INTENT_MODEL_MAX_KNOTS) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "bad counts: %u labels, %u rows, %u knots", labels, rows, knots);
        return NULL;
    }
    float default_idf = s_get_f32 (header + HEADER_SIZE - 12);
    float coverage = s_get_f32 (header + HEADER_SIZE - 8);
    float threshold = s_get_f32 (header + HEADER_SIZE - 4);

    /* the labels, as far as the bytes go; then the size their lengths make */
    char *text = malloc ((size_t) labels * 256);
    if (!text) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    const char *names[INTENT_MODEL_MAX_LABELS];
    size_t sizes[INTENT_MODEL_MAX_LABELS];
    uint64_t labels_bytes = 0;
    for (uint32_t i = 0; i < labels; i++) {
        const uint8_t *length = reader->offset < size - CRC_SIZE ? s_read (reader, 1) : NULL;
        sizes[i] = length ? *length : 0;
        const uint8_t *name = length && sizes[i] <= size - CRC_SIZE - reader->offset ? s_read (reader, sizes[i]) : NULL;
        if (!name) {
            free (text);
            cv_error_set (err, CV_ERR_INVALID, NULL, "the labels run past the end of the file");
            return NULL;
        }
        memcpy (text + 256 * (size_t) i, name, sizes[i]);
        names[i] = text + 256 * (size_t) i;
        labels_bytes += sizes[i];
    }
    uint64_t expected = s_file_size (labels, labels_bytes, rows, knots);
    if (expected != size) {
        free (text);
        cv_error_set (err, CV_ERR_INVALID, NULL, "%zu bytes where its counts make %llu", size,
                      (unsigned long long) expected);
        return NULL;
    }
    intent_model_t *self = s_new (&features, names, sizes, labels, err);
    free (text);
    if (!self)
        return NULL;

    float *margins = malloc (knots * sizeof *margins);
    float *probabilities = malloc (knots * sizeof *probabilities);
    float row[INTENT_MODEL_MAX_LABELS];
    weights_t kept = {0};
    room_t room = {0};
    int rc = -1;
    if (!margins || !probabilities)
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    else if (s_read_f32s (reader, self->bias, labels) || s_read_f32s (reader, margins, knots)
             || s_read_f32s (reader, probabilities, knots))
        s_read_failed (reader, err);
    else if (!s_finite (self->bias, labels))
        cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    else if (s_seek (reader, reader->offset + 8 * (size_t) rows, false)
             || s_measure_rows (reader, rows, labels, &room)
             || s_seek (reader, reader->offset - 8 * (size_t) rows, false))
        s_read_failed (reader, err);
    else if (s_weights_alloc (&kept, self, rows, room, err) == 0) {
        if (s_read_u32s (reader, kept.buckets, rows) || s_read_f32s (reader, kept.idf, rows))
            s_read_failed (reader, err);
        else if (s_check_buckets (self, rows, kept.buckets, err) == 0
                 && s_check_idf (rows, kept.idf, default_idf, err) == 0) {
            rc = 0;
            for (size_t r = 0; rc == 0 && r < rows; r++) {
                if (s_read_f32s (reader, row, labels))
                    rc = s_read_failed (reader, err);
                else if (!s_finite (row, labels))
                    rc = cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
                else if (!s_add_row (&kept, row))
                    rc = s_read_failed (reader, err); /* more weights than counted: the file changed */
            }
            /* the second pass must have read the bytes that the first checked */
            uint32_t computed = s_crc_value (&reader->crc);
            const uint8_t *stored = rc == 0 ? s_read (reader, CRC_SIZE) : NULL;
            if (rc == 0 && (!stored || s_get_u32 (stored) != computed))
                rc = s_read_failed (reader, err);
        }
    }
    if (rc == 0) {
        s_install (self, &kept, default_idf);
        rc = intent_model_set_calibration (self, knots, margins, probabilities, err);
    }
    if (rc == 0)
        rc = intent_model_set_threshold (self, coverage, threshold, err);
    s_weights_free (&kept);
    free (margins);
    free (probabilities);
    if (rc)
        intent_model_destroy (&self);
    return self;
}

intent_model_t *
intent_model_decode (const void *bytes, size_t size, cv_error_t *err)
{
    assert (bytes || size == 0);
    static const uint8_t none[1];
    reader_t *reader = calloc (1, sizeof *reader);
    if (!reader) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    reader->data = bytes ? bytes : none;
    reader->size = size;
    s_crc_start (&reader->crc);
    intent_model_t *self = s_check_frame (reader, err) == 0 ? s_decode (reader, err) : NULL;
    free (reader);
    return self;
}

intent_model_t *
intent_model_load (const char *path, cv_error_t *err)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
        return NULL;
    }
    intent_model_t *self = NULL;
    reader_t *reader = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((uint64_t) status.st_size > INTENT_MODEL_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than a model may have", path,
                      (long long) status.st_size);
    else if (!(reader = calloc (1, sizeof *reader)))
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "%s: out of memory", path);
    else {
        reader->file = file;
        reader->size = (size_t) status.st_size;
        s_crc_start (&reader->crc);
        if (s_check_frame (reader, err) == 0)
            self = s_decode (reader, err);
        if (!self)
            cv_error_prefix (err, "%s", path);
    }
    free (reader);
    fclose (file);
    return self;
}

/* Writes size bytes to fd; -1 with errno on failure. */
static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

int
intent_model_save (const intent_model_t *self, const char *path, cv_error_t *err)
{
    assert (self && path);
    size_t size;
    uint8_t *data = intent_model_encode (self, &size);
    if (!data)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    char *temporary = NULL;
    if (asprintf (&temporary, "%s.tmp.XXXXXX", path) < 0) {
        free (data);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    }
    int rc = 0;
    int fd = mkstemp (temporary);
    if (fd < 0)
        rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot create a file beside it: %s", path,
                           strerror (errno));
    else {
        if (s_write_all (fd, data, size) || fchmod (fd, 0644) || fsync (fd))
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", temporary, strerror (errno));
        if (close (fd) && rc == 0)
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", temporary, strerror (errno));
        if (rc == 0 && rename (temporary, path))
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
        if (rc)
            unlink (temporary);
        else {
            /* the rename itself survives a crash once the directory is synced */
            char *copy = strdup (path);
            int directory = copy ? open (dirname (copy), O_RDONLY | O_DIRECTORY) : -1;
            if (directory >= 0) {
                fsync (directory);
                close (directory);
            }
            free (copy);
        }
    }
    free (temporary);
    free (data);
    return rc;
}

/* --- self-test --- */

/* A small hand-made model: three labels, each with a few words that speak for it. */
static intent_model_t *
s_test_model (void)
{
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    settings.word_max = 1; /* words only: each row is a word's, and few buckets collide */
    settings.char_min = settings.char_max = 0;
    static const char *const labels[] = {"card_arrival", "lost_or_stolen_card", "exchange_rate"};
    static const char *const words[][3] = {
        {"arrive", "delivery", "waiting"},
        {"lost", "stolen", "missing"},
        {"rate", "exchange", "euros"},
    };
    cv_error_t err;
    intent_model_t *self = intent_model_new (&settings, labels, 3, &err);
    assert (self);
    /* every word's own bucket gets a weight for its label; a couple of rows for character grams */
    uint32_t buckets[16];
    float weights[16 * 3], idf[16];
    size_t rows = 0;
    uint32_t mask = (1u << settings.bits) - 1;
    for (size_t label = 0; label < 3; label++)
        for (size_t w = 0; w < 3; w++) {
            uint32_t bucket = intent_features_hash (INTENT_FEATURE_WORD, words[label][w], strlen (words[label][w]))
                              & mask;
            bool seen = false;
            for (size_t row = 0; row < rows; row++)
                seen |= buckets[row] == bucket;
            if (seen)
                continue;
            buckets[rows] = bucket;
            idf[rows] = 1.5f + 0.1f * (float) rows;
            for (size_t other = 0; other < 3; other++)
                weights[rows * 3 + other] = other == label ? 2.0f : -0.5f;
            rows++;
        }
    /* increasing buckets: sort rows */
    for (size_t i = 1; i < rows; i++)
        for (size_t j = i; j > 0 && buckets[j - 1] > buckets[j]; j--) {
            uint32_t b = buckets[j];
            buckets[j] = buckets[j - 1];
            buckets[j - 1] = b;
            float f = idf[j];
            idf[j] = idf[j - 1];
            idf[j - 1] = f;
            for (size_t label = 0; label < 3; label++) {
                f = weights[j * 3 + label];
                weights[j * 3 + label] = weights[(j - 1) * 3 + label];
                weights[(j - 1) * 3 + label] = f;
            }
        }
    float bias[3] = {0.1f, -0.2f, 0.05f};
    assert (intent_model_set_weights (self, rows, buckets, idf, weights, bias, 4.0f, &err) == 0);
    float margins[] = {0.0f, 0.5f, 1.0f}, probabilities[] = {0.2f, 0.6f, 0.95f};
    assert (intent_model_set_calibration (self, 3, margins, probabilities, &err) == 0);
    assert (intent_model_set_threshold (self, 0.8f, 0.5f, &err) == 0);
    return self;
}

/* Asserts that decoding size bytes at data fails, with a message containing expected. */
static void
s_expect_refused (const uint8_t *data, size_t size, const char *expected, const char *what)
{
    cv_error_t err;
    intent_model_t *model = intent_model_decode (data, size, &err);
    if (model || (expected && !strstr (err.message, expected))) {
        fprintf (stderr, "intent_model: %s: %s\n", what, model ? "accepted" : err.message);
        abort ();
    }
}

/* Rewrites the checksum of a model in data (size bytes) after an edit. */
static void
s_reseal (uint8_t *data, size_t size)
{
    s_put_u32 (data + size - CRC_SIZE, s_crc32 (data, size - CRC_SIZE));
}

/* A model of nine labels whose rows are kept both ways: "alpha" as pairs (one weight and a -0),
   "beta" whole, "gamma" as no pairs at all. Predictions, the bytes written, and a file flipped on
   disk. */
static void
s_test_rows (const char *directory)
{
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    settings.word_max = 1;
    settings.char_min = settings.char_max = 0;
    static const char *const labels[] = {"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"};
    cv_error_t err;
    intent_model_t *model = intent_model_new (&settings, labels, 9, &err);
    assert (model);
    const char *words[] = {"alpha", "beta", "gamma"};
    uint32_t mask = (1u << settings.bits) - 1, buckets[3];
    for (size_t i = 0; i < 3; i++)
        buckets[i] = intent_features_hash (INTENT_FEATURE_WORD, words[i], strlen (words[i])) & mask;
    float weights[3][9] = {{0}};
    weights[0][3] = 2.0f;
    weights[0][5] = -0.0f;
    for (size_t label = 0; label < 9; label++)
        weights[1][label] = label == 7 ? 1.0f : -0.25f;
    /* the rows in bucket order, as a model keeps them */
    size_t order[3] = {0, 1, 2};
    for (size_t i = 1; i < 3; i++)
        for (size_t j = i; j > 0 && buckets[order[j - 1]] > buckets[order[j]]; j--) {
            size_t swap = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swap;
        }
    uint32_t sorted[3];
    float rows[3 * 9], idf[3] = {1.0f, 1.0f, 1.0f}, bias[9] = {0.01f};
    for (size_t i = 0; i < 3; i++) {
        sorted[i] = buckets[order[i]];
        memcpy (rows + 9 * i, weights[order[i]], sizeof weights[0]);
    }
    assert (intent_model_set_weights (model, 3, sorted, idf, rows, bias, 1.0f, &err) == 0);
    assert (intent_model_rows (model) == 3);

    intent_scratch_t *scratch = intent_scratch_new (model);
    intent_prediction_t prediction;
    intent_model_predict (model, scratch, "alpha", 5, 2, &prediction);
    assert (strcmp (prediction.top[0].name, "l3") == 0 && fabsf (prediction.top[0].score - 2.0f) < 1e-6f);
    assert (strcmp (prediction.top[1].name, "l0") == 0 && prediction.top[1].score == 0.01f);
    intent_model_predict (model, scratch, "beta", 4, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "l7") == 0 && fabsf (prediction.top[0].score - 1.0f) < 1e-6f);
    assert (fabsf (prediction.margin - 1.24f) < 1e-6f); /* the second best: l0, 0.01 - 0.25 */
    intent_model_predict (model, scratch, "gamma", 5, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "l0") == 0 && prediction.top[0].score == 0.01f);
    /* both rows of a text count: l3 from the pairs, less what the whole row takes from it */
    intent_model_predict (model, scratch, "alpha beta", 10, 3, &prediction);
    float both = 1.0f / sqrtf (2.0f);
    assert (strcmp (prediction.top[0].name, "l3") == 0);
    assert (fabsf (prediction.top[0].score - (2.0f * both - 0.25f * both)) < 1e-5f);
    assert (strcmp (prediction.top[1].name, "l7") == 0 && fabsf (prediction.top[1].score - both) < 1e-5f);

    /* the file holds every weight as given, -0 too; a load gives the same bytes back */
    size_t size;
    uint8_t *data = intent_model_encode (model, &size);
    assert (data);
    const uint8_t *written = data + size - CRC_SIZE - 4 * 3 * 9;
    for (size_t i = 0; i < 3 * 9; i++) {
        uint32_t bits;
        memcpy (&bits, &rows[i], sizeof bits);
        assert (s_get_u32 (written + 4 * i) == bits);
    }
    intent_model_t *loaded = intent_model_decode (data, size, &err);
    assert (loaded);
    size_t loaded_size;
    uint8_t *again = intent_model_encode (loaded, &loaded_size);
    assert (again && loaded_size == size && memcmp (again, data, size) == 0);
    free (again);
    intent_model_destroy (&loaded);

    /* on disk: read back whole, and refused once a byte in the middle is flipped */
    char path[128];
    snprintf (path, sizeof path, "%s/rows.model", directory);
    assert (intent_model_save (model, path, &err) == 0);
    loaded = intent_model_load (path, &err);
    assert (loaded && intent_model_rows (loaded) == 3);
    intent_model_destroy (&loaded);
    data[size / 2] ^= 0x10;
    FILE *file = fopen (path, "wb");
    assert (file && fwrite (data, 1, size, file) == size);
    fclose (file);
    assert (!intent_model_load (path, &err) && strstr (err.message, "corrupted") && strstr (err.message, path));
    unlink (path);
    free (data);
    intent_scratch_destroy (&scratch);
    intent_model_destroy (&model);
}

/* A row for every one of 2^17 buckets: more rows than 16 bits count, so the map takes 32. */
static void
s_test_many_rows (void)
{
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 17;
    settings.word_max = 1;
    settings.char_min = settings.char_max = 0;
    static const char *const labels[] = {"first", "second"};
    cv_error_t err;
    intent_model_t *model = intent_model_new (&settings, labels, 2, &err);
    assert (model);
    size_t rows = (size_t) 1 << settings.bits;
    uint32_t *buckets = malloc (rows * sizeof *buckets);
    float *idf = malloc (rows * sizeof *idf), *weights = calloc (2 * rows, sizeof *weights), bias[2] = {0, 0};
    assert (buckets && idf && weights);
    for (size_t row = 0; row < rows; row++) {
        buckets[row] = (uint32_t) row;
        idf[row] = 1.0f;
    }
    uint32_t mask = (uint32_t) rows - 1;
    weights[2 * (intent_features_hash (INTENT_FEATURE_WORD, "alpha", 5) & mask)] = 1.0f;
    weights[2 * (intent_features_hash (INTENT_FEATURE_WORD, "beta", 4) & mask) + 1] = 1.0f;
    assert (intent_model_set_weights (model, rows, buckets, idf, weights, bias, 1.0f, &err) == 0);
    assert (intent_model_rows (model) == rows);
    intent_scratch_t *scratch = intent_scratch_new (model);
    intent_prediction_t prediction;
    intent_model_predict (model, scratch, "alpha", 5, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "first") == 0 && fabsf (prediction.margin - 1.0f) < 1e-6f);
    intent_model_predict (model, scratch, "beta", 4, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "second") == 0 && fabsf (prediction.margin - 1.0f) < 1e-6f);
    size_t size;
    uint8_t *data = intent_model_encode (model, &size);
    intent_model_t *loaded = intent_model_decode (data, size, &err);
    assert (loaded);
    intent_scratch_t *loaded_scratch = intent_scratch_new (loaded);
    intent_model_predict (loaded, loaded_scratch, "beta", 4, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "second") == 0);
    size_t again_size;
    uint8_t *again = intent_model_encode (loaded, &again_size);
    assert (again && again_size == size && memcmp (again, data, size) == 0);
    free (again);
    free (data);
    intent_scratch_destroy (&loaded_scratch);
    intent_model_destroy (&loaded);
    intent_scratch_destroy (&scratch);
    intent_model_destroy (&model);
    free (buckets);
    free (idf);
    free (weights);
}

static const char *const s_texts[] = {
    "When will my new card arrive?", "I LOST my card", "my card was stolen!", "what's the exchange rate for euros",
    "", "💳 delivery delivery delivery", "nothing to see here", "\xff\xfe garbage \xc3",
};
#define TEXT_COUNT (sizeof s_texts / sizeof s_texts[0])

void
intent_model_test (bool verbose)
{
    cv_error_t err;
    intent_model_t *model = s_test_model ();
    assert (intent_model_label_count (model) == 3);
    assert (strcmp (intent_model_label (model, 1), "lost_or_stolen_card") == 0);
    assert (!intent_model_label (model, 3));
    size_t index;
    assert (intent_model_find (model, "exchange_rate", &index) && index == 2);
    assert (!intent_model_find (model, "card", NULL));
    assert (intent_model_rows (model) == 9);
    assert (intent_model_features (model)->bits == 12);
    assert (intent_model_threshold (model) == 0.5f && intent_model_coverage (model) == 0.8f);

    /* the confidence map: flat outside its knots, linear between them */
    assert (intent_model_calibrate (model, -1.0f) == 0.2f);
    assert (intent_model_calibrate (model, 0.0f) == 0.2f);
    assert (fabsf (intent_model_calibrate (model, 0.25f) - 0.4f) < 1e-6f);
    assert (intent_model_calibrate (model, 0.5f) == 0.6f);
    assert (fabsf (intent_model_calibrate (model, 0.75f) - 0.775f) < 1e-6f);
    assert (intent_model_calibrate (model, 7.0f) == 0.95f);
    assert (intent_model_calibrate (model, NAN) == 0.2f);

    /* predictions */
    intent_scratch_t *scratch = intent_scratch_new (model);
    assert (scratch);
    intent_prediction_t prediction;
    static const char *const expected[] = {"card_arrival", "lost_or_stolen_card", "lost_or_stolen_card",
                                           "exchange_rate"};
    for (size_t i = 0; i < 4; i++) {
        intent_model_predict (model, scratch, s_texts[i], strlen (s_texts[i]), 3, &prediction);
        if (verbose)
            printf ("  %s -> %s %.3f (margin %.3f)\n", s_texts[i], prediction.top[0].name, prediction.confidence,
                    prediction.margin);
        assert (strcmp (prediction.top[0].name, expected[i]) == 0);
        assert (prediction.count == 3);
        assert (prediction.top[0].score >= prediction.top[1].score);
        assert (prediction.top[1].score >= prediction.top[2].score);
        assert (prediction.margin == prediction.top[0].score - prediction.top[1].score);
        assert (prediction.margin > 0 && prediction.confidence > 0.2f);
        assert (prediction.confidence == intent_model_calibrate (model, prediction.margin));
    }
    /* no known feature: the bias decides, with the smallest margin */
    intent_model_predict (model, scratch, "", 0, 1, &prediction);
    assert (prediction.count == 1);
    assert (strcmp (prediction.top[0].name, "card_arrival") == 0);
    assert (fabsf (prediction.margin - 0.05f) < 1e-6f);
    /* k beyond the labels is the labels */
    intent_model_predict (model, scratch, "stolen", 6, INTENT_MODEL_TOP_MAX, &prediction);
    assert (prediction.count == 3);

    /* save, load: the same predictions, bit for bit, and the same bytes */
    char directory[] = "/tmp/intent_model_test.XXXXXX";
    assert (mkdtemp (directory));
    char path[128], missing[128];
    snprintf (path, sizeof path, "%s/test.model", directory);
    snprintf (missing, sizeof missing, "%s/none/test.model", directory);
    assert (intent_model_save (model, path, &err) == 0);
    assert (intent_model_save (model, path, &err) == 0); /* over an existing one */
    assert (intent_model_save (model, missing, &err) == -1 && strstr (err.message, "none/test.model: cannot create"));
    intent_model_t *loaded = intent_model_load (path, &err);
    assert (loaded);
    intent_scratch_t *loaded_scratch = intent_scratch_new (loaded);
    for (size_t i = 0; i < TEXT_COUNT; i++) {
        intent_prediction_t before, after;
        intent_model_predict (model, scratch, s_texts[i], strlen (s_texts[i]), 3, &before);
        intent_model_predict (loaded, loaded_scratch, s_texts[i], strlen (s_texts[i]), 3, &after);
        assert (before.count == after.count && before.margin == after.margin && before.confidence == after.confidence);
        for (size_t j = 0; j < before.count; j++)
            assert (before.top[j].label == after.top[j].label && before.top[j].score == after.top[j].score
                    && strcmp (before.top[j].name, after.top[j].name) == 0);
    }
    size_t size, loaded_size;
    uint8_t *data = intent_model_encode (model, &size);
    uint8_t *loaded_data = intent_model_encode (loaded, &loaded_size);
    assert (data && loaded_data && size == loaded_size && memcmp (data, loaded_data, size) == 0);
    assert (intent_model_file_size (model) == size);
    free (loaded_data);
    intent_scratch_destroy (&loaded_scratch);
    intent_model_destroy (&loaded);

    /* a file that is not there, a directory */
    assert (!intent_model_load (missing, &err) && strstr (err.message, "No such file"));
    assert (!intent_model_load (directory, &err) && strstr (err.message, "not a regular file"));

    /* truncated anywhere */
    for (size_t cut = 0; cut < size; cut++)
        s_expect_refused (data, cut, cut < MAGIC_SIZE ? "not an intent model" : "truncated", "truncated");
    /* truncated on disk */
    FILE *file = fopen (path, "wb");
    assert (file && fwrite (data, 1, size / 2, file) == size / 2);
    fclose (file);
    assert (!intent_model_load (path, &err) && strstr (err.message, "truncated") && strstr (err.message, path));
    if (verbose)
        printf ("  %s\n", err.message);

    /* a byte flipped anywhere, or a bit */
    uint8_t *copy = malloc (size + 1);
    assert (copy);
    for (size_t at = 0; at < size; at++)
        for (int mask = 0; mask < 3; mask++) {
            memcpy (copy, data, size);
            copy[at] ^= mask == 0 ? 0xFF : mask == 1 ? 0x01 : 0x80;
            s_expect_refused (copy, size, NULL, "flipped");
        }
    memcpy (copy, data, size);
    copy[size / 2] ^= 0x10;
    s_expect_refused (copy, size, "corrupted", "flipped in the middle");
    /* a byte more */
    memcpy (copy, data, size);
    copy[size] = 0;
    s_expect_refused (copy, size + 1, "trailing", "one byte more");

    /* wrong magic, wrong version (with a good checksum) */
    memcpy (copy, data, size);
    memcpy (copy, "CVINTENX", MAGIC_SIZE);
    s_expect_refused (copy, size, "not an intent model", "magic");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE, INTENT_MODEL_VERSION + 1);
    s_reseal (copy, size);
    s_expect_refused (copy, size, "version 2, this build reads version 1", "version");

    /* files of other formats */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    s_expect_refused (png, sizeof png, "not an intent model", "png");
    const char *csv = "text,category\nI lost my card,lost_or_stolen_card\n";
    s_expect_refused ((const uint8_t *) csv, strlen (csv), "not an intent model", "csv");
    s_expect_refused ((const uint8_t *) "", 0, "not an intent model", "empty");

    /* well sealed but made wrong: bad settings, counts, labels, numbers */
    memcpy (copy, data, size);
    copy[MAGIC_SIZE + 16] = 30; /* bucket bits */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "feature settings", "bits");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE + 20, 0xFFFFFFFFu); /* labels */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "bad counts", "labels");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE + 24, 10); /* one row more than there is */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "counts make", "rows");
    memcpy (copy, data, size);
    copy[HEADER_SIZE + 1] = 'C'; /* "Card_arrival" is fine; a space is not */
    copy[HEADER_SIZE + 2] = ' ';
    s_reseal (copy, size);
    s_expect_refused (copy, size, "not a valid intent name", "label");
    memcpy (copy, data, size);
    s_put_f32 (copy + size - CRC_SIZE - 4, NAN); /* the last weight */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "finite", "nan");
    memcpy (copy, data, size);
    s_put_f32 (copy + HEADER_SIZE - 8, 1.5f); /* coverage */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "coverage", "coverage");
    free (copy);
    free (data);

    /* the builder's checks */
    static const char *const twice[] = {"a", "a"};
    intent_features_settings_t settings = *intent_model_features (model);
    assert (!intent_model_new (&settings, twice, 2, &err) && strstr (err.message, "twice"));
    static const char *const one[] = {"a"};
    assert (!intent_model_new (&settings, one, 1, &err) && strstr (err.message, "2.."));
    static const char *const spaced[] = {"a", "b c"};
    assert (!intent_model_new (&settings, spaced, 2, &err) && strstr (err.message, "not a valid"));
    uint32_t unordered[] = {5, 3};
    float values[6] = {1, 1, 1, 1, 1, 1}, bias[3] = {0, 0, 0};
    assert (intent_model_set_weights (model, 2, unordered, values, values, bias, 1, &err) == -1);
    uint32_t beyond[] = {1u << 12};
    assert (intent_model_set_weights (model, 1, beyond, values, values, bias, 1, &err) == -1);
    float down[] = {0, 1}, probabilities[] = {0.5f, 0.4f};
    assert (intent_model_set_calibration (model, 2, down, probabilities, &err) == -1);
    assert (intent_model_set_calibration (model, 0, down, probabilities, &err) == -1);
    assert (intent_model_set_threshold (model, 0, 0.5f, &err) == -1);
    assert (intent_model_set_threshold (model, 0.5f, 2, &err) == -1);
    /* a failed setter changes nothing */
    intent_model_predict (model, scratch, "I LOST my card", 14, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "lost_or_stolen_card") == 0);

    /* rows kept as pairs and whole, -0 kept, on disk as in memory */
    s_test_rows (directory);
    s_test_many_rows ();

    /* a known CRC-32 */
    assert (s_crc32 ((const uint8_t *) "123456789", 9) == 0xCBF43926u);

    unlink (path);
    assert (rmdir (directory) == 0); /* the saves left no temporary files */
    intent_scratch_destroy (&scratch);
    intent_scratch_destroy (&scratch);
    intent_model_destroy (&model);
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model: ok\n");
}
