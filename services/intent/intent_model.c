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
/* Scores are summed LANES labels at a time: a fixed-size inner loop the compiler turns into
   vector instructions at -O2; rows and scores are padded with zeros to a multiple of it. */
#define LANES 8

struct _intent_model_t {
    intent_features_settings_t features;
    char **labels;
    size_t label_count;
    float *bias;                 /* per label */
    uint32_t *map;               /* 2^bits entries: row + 1 of a bucket, 0 when it has none */
    uint32_t *buckets;           /* per row, increasing */
    float *idf;                  /* per row */
    float *weights;              /* [row][label], each row padded to stride */
    size_t stride;               /* labels rounded up to a whole number of LANES */
    size_t rows;
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
    self->map = calloc ((size_t) 1 << features->bits, sizeof *self->map);
    self->knot_margins = calloc (1, sizeof (float));
    self->knot_probabilities = calloc (1, sizeof (float));
    bool ok = self->labels && self->bias && self->map && self->knot_margins && self->knot_probabilities;
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
    free (self->map);
    free (self->buckets);
    free (self->idf);
    free (self->weights);
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

int
intent_model_set_weights (intent_model_t *self, size_t rows, const uint32_t *buckets, const float *idf,
                          const float *weights, const float *bias, float default_idf, cv_error_t *err)
{
    assert (self);
    assert (bias);
    assert (rows == 0 || (buckets && idf && weights));
    size_t buckets_total = (size_t) 1 << self->features.bits;
    if (rows > buckets_total)
        return cv_error_set (err, CV_ERR_INVALID, "rows", "%zu rows for %zu buckets", rows, buckets_total);
    for (size_t row = 0; row < rows; row++)
        if (buckets[row] >= buckets_total || (row > 0 && buckets[row] <= buckets[row - 1]))
            return cv_error_set (err, CV_ERR_INVALID, "buckets", "row %zu: bucket %u out of order or range", row,
                                 buckets[row]);
    if (!s_finite (idf, rows) || !s_finite (weights, rows * self->label_count)
        || !s_finite (bias, self->label_count) || !isfinite (default_idf))
        return cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    for (size_t row = 0; row < rows; row++)
        if (!(idf[row] > 0))
            return cv_error_set (err, CV_ERR_INVALID, "idf", "row %zu: idf %g is not positive", row, idf[row]);
    if (!(default_idf > 0))
        return cv_error_set (err, CV_ERR_INVALID, "idf", "default idf %g is not positive", default_idf);

    uint32_t *new_buckets = malloc ((rows ? rows : 1) * sizeof *new_buckets);
    float *new_idf = malloc ((rows ? rows : 1) * sizeof *new_idf);
    float *new_weights = calloc (rows ? rows * self->stride : 1, sizeof *new_weights);
    if (!new_buckets || !new_idf || !new_weights) {
        free (new_buckets);
        free (new_idf);
        free (new_weights);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %zu rows", rows);
    }
    if (rows) {
        memcpy (new_buckets, buckets, rows * sizeof *new_buckets);
        memcpy (new_idf, idf, rows * sizeof *new_idf);
        for (size_t row = 0; row < rows; row++)
            memcpy (new_weights + row * self->stride, weights + row * self->label_count,
                    self->label_count * sizeof *new_weights);
    }
    free (self->buckets);
    free (self->idf);
    free (self->weights);
    self->buckets = new_buckets;
    self->idf = new_idf;
    self->weights = new_weights;
    self->rows = rows;
    memset (self->map, 0, buckets_total * sizeof *self->map);
    for (size_t row = 0; row < rows; row++)
        self->map[buckets[row]] = (uint32_t) row + 1;
    memcpy (self->bias, bias, self->label_count * sizeof *self->bias);
    self->default_idf = default_idf;
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
        uint32_t row = self->map[buckets[i]];
        float value = intent_features_tf (counts[i]) * (row ? self->idf[row - 1] : self->default_idf);
        norm += (double) value * value;
        if (row) {
            /* the row is needed in the next loop: ask for it now, so its loads overlap */
            const char *weights = (const char *) (self->weights + (size_t) (row - 1) * self->stride);
            for (size_t byte = 0; byte < self->stride * sizeof (float); byte += 64)
                __builtin_prefetch (weights + byte);
            scratch->rows[active] = row - 1;
            scratch->values[active] = value;
            active++;
        }
    }
    float scale = norm > 0 ? (float) (1.0 / sqrt (norm)) : 0;

    float *scores = scratch->scores;
    size_t stride = self->stride;
    memcpy (scores, self->bias, stride * sizeof *scores);
    for (size_t i = 0; i < active; i++) {
        const float *row = self->weights + (size_t) scratch->rows[i] * stride;
        float value = scratch->values[i] * scale;
        for (size_t label = 0; label < stride; label += LANES)
            s_add_scaled (scores + label, row + label, value);
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

/* CRC-32/ISO-HDLC (zlib's crc32), a byte at a time. */
static uint32_t
s_crc32 (const uint8_t *data, size_t size)
{
    /* the table is made afresh each time: it costs microseconds, once per load or save, and
       needs no shared state between threads */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
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
    for (size_t row = 0; row < self->rows; row++)
        p = s_put_f32s (p, self->weights + row * self->stride, self->label_count);
    p = s_put_u32 (p, s_crc32 (data, total - CRC_SIZE));
    assert (p == data + total);
    *size = total;
    return data;
}

/* Decodes the sections after the header, whose counts are checked against the size already. */
static intent_model_t *
s_decode_body (const uint8_t *data, const intent_features_settings_t *features, size_t label_count, size_t rows,
               size_t knots, cv_error_t *err)
{
    const uint8_t *p = data + HEADER_SIZE;
    const char *names[INTENT_MODEL_MAX_LABELS];
    size_t sizes[INTENT_MODEL_MAX_LABELS];
    for (size_t i = 0; i < label_count; i++) {
        sizes[i] = *p++;
        names[i] = (const char *) p;
        p += sizes[i];
    }
    intent_model_t *self = s_new (features, names, sizes, label_count, err);
    if (!self)
        return NULL;
    float default_idf = s_get_f32 (data + HEADER_SIZE - 12);
    float coverage = s_get_f32 (data + HEADER_SIZE - 8);
    float threshold = s_get_f32 (data + HEADER_SIZE - 4);

    float *bias = malloc (label_count * sizeof *bias);
    float *margins = malloc (knots * sizeof *margins);
    float *probabilities = malloc (knots * sizeof *probabilities);
    uint32_t *buckets = malloc ((rows ? rows : 1) * sizeof *buckets);
    float *idf = malloc ((rows ? rows : 1) * sizeof *idf);
    float *weights = malloc ((rows ? rows * label_count : 1) * sizeof *weights);
    int rc = -1;
    if (!bias || !margins || !probabilities || !buckets || !idf || !weights)
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %zu rows", rows);
    else {
        s_get_f32s (p, bias, label_count);
        p += 4 * label_count;
        s_get_f32s (p, margins, knots);
        p += 4 * knots;
        s_get_f32s (p, probabilities, knots);
        p += 4 * knots;
        for (size_t row = 0; row < rows; row++, p += 4)
            buckets[row] = s_get_u32 (p);
        s_get_f32s (p, idf, rows);
        p += 4 * rows;
        s_get_f32s (p, weights, rows * label_count);
        rc = intent_model_set_weights (self, rows, buckets, idf, weights, bias, default_idf, err);
        if (rc == 0)
            rc = intent_model_set_calibration (self, knots, margins, probabilities, err);
        if (rc == 0)
            rc = intent_model_set_threshold (self, coverage, threshold, err);
    }
    free (bias);
    free (margins);
    free (probabilities);
    free (buckets);
    free (idf);
    free (weights);
    if (rc)
        intent_model_destroy (&self);
    return self;
}

intent_model_t *
intent_model_decode (const void *bytes, size_t size, cv_error_t *err)
{
    assert (bytes || size == 0);
    const uint8_t *data = bytes;
    if (size < MAGIC_SIZE || memcmp (data, INTENT_MODEL_MAGIC, MAGIC_SIZE) != 0) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "not an intent model (it does not start with %s)",
                      INTENT_MODEL_MAGIC);
        return NULL;
    }
    if (size < HEADER_SIZE + CRC_SIZE) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "truncated: %zu bytes, fewer than a model's header", size);
        return NULL;
    }
    uint32_t version = s_get_u32 (data + MAGIC_SIZE);
    if (version != INTENT_MODEL_VERSION) {
        cv_error_set (err, CV_ERR_INVALID, NULL,
                      "model format version %u, this build reads version %d: train it again with this conveyor",
                      version, INTENT_MODEL_VERSION);
        return NULL;
    }
    uint64_t declared = (uint64_t) s_get_u32 (data + MAGIC_SIZE + 4) | (uint64_t) s_get_u32 (data + MAGIC_SIZE + 8)
                                                                             << 32;
    if (declared != size) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %zu bytes where its header says %llu",
                      size < declared ? "truncated" : "trailing bytes", size, (unsigned long long) declared);
        return NULL;
    }
    uint32_t stored = s_get_u32 (data + size - CRC_SIZE);
    uint32_t computed = s_crc32 (data, size - CRC_SIZE);
    if (stored != computed) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "corrupted: checksum 0x%08x where the file says 0x%08x", computed,
                      stored);
        return NULL;
    }
    /* The checksum only says that the bytes are those written: a file made otherwise must still
       fail cleanly, so every count is checked before it is used. */
    const uint8_t *p = data + MAGIC_SIZE + 12;
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
    /* the labels' lengths, as far as the bytes go */
    uint64_t labels_bytes = 0;
    const uint8_t *label = data + HEADER_SIZE;
    for (uint32_t i = 0; i < labels; i++) {
        if ((size_t) (label - data) >= size - CRC_SIZE) {
            cv_error_set (err, CV_ERR_INVALID, NULL, "the labels run past the end of the file");
            return NULL;
        }
        labels_bytes += *label;
        label += 1 + *label;
    }
    uint64_t expected = s_file_size (labels, labels_bytes, rows, knots);
    if (expected != size) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%zu bytes where its counts make %llu", size,
                      (unsigned long long) expected);
        return NULL;
    }
    return s_decode_body (data, &features, labels, rows, knots, err);
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
    uint8_t *data = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((uint64_t) status.st_size > INTENT_MODEL_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than a model may have", path,
                      (long long) status.st_size);
    else if (!(data = malloc (status.st_size ? (size_t) status.st_size : 1)))
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "%s: out of memory", path);
    else if (fread (data, 1, (size_t) status.st_size, file) != (size_t) status.st_size)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot read it: %s", path,
                      ferror (file) ? strerror (errno) : "it shrank while read");
    else if (!(self = intent_model_decode (data, (size_t) status.st_size, err)))
        cv_error_prefix (err, "%s", path);
    free (data);
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
