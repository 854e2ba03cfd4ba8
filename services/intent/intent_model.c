/* The intent classifier: a linear model over hashed features and its confidence map. */
#include "intent_model.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Intent names travel in Intent.name and in rule ids: [A-Za-z0-9_.:-]. */
bool
intent_model_label_valid (const char *name, size_t size)
{
    assert (name || size == 0);
    if (size == 0 || size > CV_NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || c == '.' || c == ':'))
            return false;
    }
    return true;
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

void
intent_weights_measure (intent_weights_room_t *room, const float *row, size_t label_count)
{
    assert (room && row);
    size_t kept = s_kept (row, label_count);
    if (s_whole (kept, label_count))
        room->whole_rows++;
    else
        room->pairs += kept;
}

/* Weights being made, for rows rows, to fill with s_add_row; a model's own weights are kept
   until s_install replaces them. */
struct _intent_weights_t {
    const intent_model_t *model;  /* made for */
    size_t expected;          /* rows */
    float default_idf;
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
    intent_weights_room_t used, room;
};

static void
s_weights_free (intent_weights_t *weights)
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
s_weights_alloc (intent_weights_t *weights, const intent_model_t *model, size_t rows, intent_weights_room_t room,
                 cv_error_t *err)
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
    if (!weights->buckets || !weights->idf || !(weights->map16 || weights->map32) || !weights->row_start
        || !weights->whole || !weights->pair_labels || !weights->pair_weights || !weights->whole_weights) {
        s_weights_free (weights);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %zu rows", rows);
    }
    weights->row_start[0] = 0;
    return 0;
}

/* Appends one row of weights (label_count of them), whole or as pairs; false, with nothing
   appended, when it does not fit in the room made. */
static bool
s_add_row (intent_weights_t *weights, const float *row)
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
s_install (intent_model_t *self, intent_weights_t *weights, float default_idf)
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

intent_weights_t *
intent_weights_new (const intent_model_t *model, size_t rows, const uint32_t *buckets, const float *idf,
                    float default_idf, const intent_weights_room_t *room, cv_error_t *err)
{
    assert (model && room);
    assert (rows == 0 || (buckets && idf));
    if (s_check_buckets (model, rows, buckets, err) || s_check_idf (rows, idf, default_idf, err))
        return NULL;
    intent_weights_t *self = malloc (sizeof *self);
    if (!self) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    if (s_weights_alloc (self, model, rows, *room, err)) {
        free (self);
        return NULL;
    }
    self->model = model;
    self->expected = rows;
    self->default_idf = default_idf;
    if (rows) {
        memcpy (self->buckets, buckets, rows * sizeof *self->buckets);
        memcpy (self->idf, idf, rows * sizeof *self->idf);
    }
    return self;
}

void
intent_weights_destroy (intent_weights_t **self_p)
{
    assert (self_p);
    if (!*self_p)
        return;
    s_weights_free (*self_p);
    free (*self_p);
    *self_p = NULL;
}

int
intent_weights_add (intent_weights_t *self, const float *row, cv_error_t *err)
{
    assert (self && row);
    if (self->rows == self->expected)
        return cv_error_set (err, CV_ERR_INVALID, "weights", "more than the %zu rows made room for", self->expected);
    if (!s_finite (row, self->label_count))
        return cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    if (!s_add_row (self, row))
        return cv_error_set (err, CV_ERR_INVALID, "weights", "row %zu: more weights than measured", self->rows);
    return 0;
}

int
intent_model_take_weights (intent_model_t *self, intent_weights_t **weights_p, const float *bias, cv_error_t *err)
{
    assert (self && weights_p && *weights_p && bias);
    intent_weights_t *weights = *weights_p;
    assert (weights->model == self);
    int rc = 0;
    if (weights->rows != weights->expected)
        rc = cv_error_set (err, CV_ERR_INVALID, "weights", "%zu of %zu rows given", weights->rows,
                           weights->expected);
    else if (!s_finite (bias, self->label_count))
        rc = cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    else {
        s_install (self, weights, weights->default_idf);
        memcpy (self->bias, bias, self->label_count * sizeof *self->bias);
    }
    intent_weights_destroy (weights_p);
    return rc;
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
    intent_weights_room_t room = {0};
    for (size_t row = 0; row < rows; row++)
        intent_weights_measure (&room, weights + row * self->label_count, self->label_count);
    intent_weights_t *kept = intent_weights_new (self, rows, buckets, idf, default_idf, &room, err);
    if (!kept)
        return -1;
    for (size_t row = 0; row < rows; row++) {
        int added = intent_weights_add (kept, weights + row * self->label_count, err);
        assert (added == 0); /* checked and measured above */
    }
    return intent_model_take_weights (self, &kept, bias, err);
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

const float *
intent_model_bias (const intent_model_t *self)
{
    assert (self);
    return self->bias;
}

float
intent_model_default_idf (const intent_model_t *self)
{
    assert (self);
    return self->default_idf;
}

uint32_t
intent_model_row (const intent_model_t *self, size_t row, float *idf, float *weights)
{
    assert (self && row < self->rows);
    if (idf)
        *idf = self->idf[row];
    if (weights) {
        if (self->whole[row])
            memcpy (weights, self->whole_weights + (self->whole[row] - 1) * self->stride,
                    self->label_count * sizeof *weights);
        else {
            memset (weights, 0, self->label_count * sizeof *weights); /* +0, the weights pairs leave out */
            for (uint32_t at = self->row_start[row]; at < self->row_start[row + 1]; at++)
                weights[self->pair_labels[at]] = self->pair_weights[at];
        }
    }
    return self->buckets[row];
}

size_t
intent_model_knots (const intent_model_t *self, const float **margins, const float **probabilities)
{
    assert (self && margins && probabilities);
    *margins = self->knot_margins;
    *probabilities = self->knot_probabilities;
    return self->knots;
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

/* A model of nine labels whose rows are kept both ways: "alpha" as pairs (one weight and a -0),
   "beta" whole, "gamma" as no pairs at all: predictions, and the rows given back as given. */
static void
s_test_rows (void)
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

    /* every weight given back as given, -0 too; the bucket and idf of each row */
    for (size_t r = 0; r < 3; r++) {
        float row[9], row_idf = 0;
        assert (intent_model_row (model, r, &row_idf, row) == sorted[r] && row_idf == 1.0f);
        assert (memcmp (row, rows + 9 * r, sizeof row) == 0);
    }
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

    /* weights a row at a time: the room measured, rows past it or missing, numbers that are not */
    const float *margins, *knot_probabilities;
    assert (intent_model_knots (model, &margins, &knot_probabilities) == 3 && knot_probabilities[2] == 0.95f);
    assert (intent_model_default_idf (model) == 4.0f && intent_model_bias (model)[1] == -0.2f);
    uint32_t two[] = {3, 5};
    float row_zero[3] = {0, 0, 0}, row_b[3] = {0.5f, -0.0f, 0.25f}, row_nan[3] = {NAN, 0, 0};
    intent_weights_room_t room = {0};
    intent_weights_measure (&room, row_zero, 3);
    intent_weights_measure (&room, row_b, 3);
    assert (room.pairs == 0 && room.whole_rows == 1);
    assert (!intent_weights_new (model, 2, unordered, values, 1, &room, &err) && strstr (err.message, "order"));
    float bad_idf[] = {1, 0};
    assert (!intent_weights_new (model, 2, two, bad_idf, 1, &room, &err) && strstr (err.message, "not positive"));
    intent_weights_t *built = intent_weights_new (model, 2, two, values, 1, &room, &err);
    assert (built);
    assert (intent_weights_add (built, row_nan, &err) == -1 && strstr (err.message, "finite"));
    assert (intent_weights_add (built, row_b, &err) == 0);
    assert (intent_weights_add (built, row_b, &err) == -1 && strstr (err.message, "more weights than measured"));
    assert (intent_model_take_weights (model, &built, bias, &err) == -1 && !built && strstr (err.message, "1 of 2"));
    assert (intent_model_rows (model) == 9); /* unchanged */
    built = intent_weights_new (model, 2, two, values, 1, &room, &err);
    assert (built && intent_weights_add (built, row_zero, &err) == 0 && intent_weights_add (built, row_b, &err) == 0);
    assert (intent_weights_add (built, row_zero, &err) == -1 && strstr (err.message, "more than the 2 rows"));
    float bad_bias[3] = {0, INFINITY, 0};
    assert (intent_model_take_weights (model, &built, bad_bias, &err) == -1 && !built);
    built = intent_weights_new (model, 2, two, values, 1, &room, &err);
    assert (built && intent_weights_add (built, row_zero, &err) == 0 && intent_weights_add (built, row_b, &err) == 0);
    assert (intent_model_take_weights (model, &built, bias, &err) == 0 && !built);
    assert (intent_model_rows (model) == 2 && intent_model_default_idf (model) == 1.0f);
    float back[3];
    assert (intent_model_row (model, 1, NULL, back) == 5 && memcmp (back, row_b, sizeof back) == 0);
    assert (intent_model_row (model, 0, NULL, back) == 3 && memcmp (back, row_zero, sizeof back) == 0);
    intent_weights_destroy (&built);

    /* rows kept as pairs and whole, -0 kept */
    s_test_rows ();
    s_test_many_rows ();
    intent_scratch_destroy (&scratch);
    intent_scratch_destroy (&scratch);
    intent_model_destroy (&model);
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model: ok\n");
}
