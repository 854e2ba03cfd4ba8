/* The intent classifier: a linear model over hashed features and its confidence map. */
#include "intent_model.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "intent_model_sample.h"
#define LANES INTENT_WEIGHTS_LANES
_Static_assert(INTENT_MODEL_MAX_LABELS <= INTENT_WEIGHTS_MAX_LABELS, "a model's labels fit its weights' rows");

struct _intent_model_t {
    intent_features_settings_t features;
    char **labels;
    size_t label_count;
    float *bias;               /* per label */
    intent_weights_t *weights; /* the rows, see intent_weights */
    size_t stride;             /* labels rounded up to a whole number of LANES */
    float *knot_margins;       /* the confidence map */
    float *knot_probabilities;
    size_t knots;
    float coverage;
    float threshold;
};

struct _intent_scratch_t {
    const intent_model_t *model;
    intent_features_t *features;
    float *scores;                      /* per label */
    uint32_t rows[INTENT_FEATURES_MAX]; /* of the text's features that have one */
    float values[INTENT_FEATURES_MAX];  /* their weights */
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
            return cv_error_set (err, CV_ERR_INVALID, "labels",
                                 "label '%.*s' is not a valid intent name (1..%d of "
                                 "A-Z a-z 0-9 _ . : -)",
                                 (int) (sizes[i] > 80 ? 80 : sizes[i]), labels[i], CV_NAME_MAX_BYTES);
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
    intent_model_t *self = cv_calloc (1, sizeof *self);
    self->features = *features;
    self->label_count = count;
    self->stride = (count + LANES - 1) / LANES * LANES;
    self->labels = cv_calloc (count, sizeof *self->labels);
    self->bias = cv_calloc (self->stride, sizeof *self->bias);
    intent_weights_room_t room = {0};
    self->weights = intent_weights_new (features->bits, count, 0, NULL, NULL, 1.0f, &room, err);
    self->knot_margins = cv_calloc (1, sizeof (float));
    self->knot_probabilities = cv_calloc (1, sizeof (float));
    for (size_t i = 0; i < count; i++)
        self->labels[i] = cv_strndup (labels[i], sizes[i]);
    if (!self->weights) {
        intent_model_destroy (&self);
        return NULL;
    }
    /* no map yet: every margin has confidence 0, and nothing reaches the threshold */
    self->knots = 1;
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
    size_t *sizes = cv_calloc (label_count ? label_count : 1, sizeof *sizes);
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
    intent_weights_destroy (&self->weights);
    free (self->knot_margins);
    free (self->knot_probabilities);
    free (self);
    *self_p = NULL;
}

int
intent_model_take_weights (intent_model_t *self, intent_weights_t **weights_p, const float *bias, cv_error_t *err)
{
    assert (self && weights_p && *weights_p && bias);
    intent_weights_t *weights = *weights_p;
    assert (intent_weights_labels (weights) == self->label_count);
    assert (intent_weights_bits (weights) == self->features.bits);
    int rc = 0;
    if (!intent_weights_complete (weights))
        rc = cv_error_set (err, CV_ERR_INVALID, "weights", "%zu rows given, fewer than made room for",
                           intent_weights_rows (weights));
    else if (intent_weights_check_finite (bias, self->label_count, err))
        rc = -1;
    else {
        intent_weights_destroy (&self->weights);
        self->weights = weights;
        *weights_p = NULL;
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
    if (intent_weights_check_finite (weights, rows * self->label_count, err)
        || intent_weights_check_finite (bias, self->label_count, err))
        return -1;
    intent_weights_room_t room = {0};
    for (size_t row = 0; row < rows; row++)
        intent_weights_measure (&room, weights + row * self->label_count, self->label_count);
    intent_weights_t *kept =
        intent_weights_new (self->features.bits, self->label_count, rows, buckets, idf, default_idf, &room, err);
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
    float *new_margins = cv_malloc (count * sizeof *new_margins);
    float *new_probabilities = cv_malloc (count * sizeof *new_probabilities);
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
    return intent_weights_rows (self->weights);
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
    return intent_weights_default_idf (self->weights);
}

uint32_t
intent_model_row (const intent_model_t *self, size_t row, float *idf, float *weights)
{
    assert (self);
    return intent_weights_row (self->weights, row, idf, weights);
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
    if (!(margin > x[0])) /* NaN too */
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
    intent_scratch_t *self = cv_calloc (1, sizeof *self);
    self->model = model;
    self->features = intent_features_new (&model->features);
    self->scores = cv_calloc (model->stride, sizeof *self->scores);
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

void
intent_model_predict (const intent_model_t *self, intent_scratch_t *scratch, const char *text, size_t size, size_t k,
                      intent_prediction_t *prediction)
{
    assert (self && scratch && prediction);
    assert (scratch->model == self);
    assert (k >= 1 && k <= INTENT_MODEL_TOP_MAX);
    size_t labels = self->label_count;

    /* the bias plus the product of the text's features with the rows (intent_weights) */
    size_t count = intent_features_extract (scratch->features, text, size);
    float *scores = scratch->scores;
    memcpy (scores, self->bias, self->stride * sizeof *scores);
    intent_weights_score (self->weights, intent_features_buckets (scratch->features),
                          intent_features_counts (scratch->features), count, scratch->rows, scratch->values, scores);

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
        prediction->top[at] = (intent_candidate_t){label, self->labels[label], score};
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
            uint32_t bucket =
                intent_features_hash (INTENT_FEATURE_WORD, words[label][w], strlen (words[label][w])) & mask;
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

/* The sample model (intent_model_sample), whose rows are kept both ways: "alpha" as pairs (one
   weight and a -0), "beta" whole, "gamma" as no pairs at all: predictions, and the rows given back
   as given. */
static void
s_test_rows (void)
{
    static const char *const labels[] = {"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"};
    uint32_t sorted[3];
    float rows[3 * 9], idf[3] = {1.0f, 1.0f, 1.0f}, bias[9] = {0.01f};
    intent_model_t *model = intent_model_sample_new (labels, idf, bias, 1.0f, sorted, rows);
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

static const char *const s_texts[] = {
    "When will my new card arrive?",
    "I LOST my card",
    "my card was stolen!",
    "what's the exchange rate for euros",
    "",
    "💳 delivery delivery delivery",
    "nothing to see here",
    "\xff\xfe garbage \xc3",
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
    assert (!intent_weights_new (12, 3, 2, unordered, values, 1, &room, &err) && strstr (err.message, "order"));
    float bad_idf[] = {1, 0};
    assert (!intent_weights_new (12, 3, 2, two, bad_idf, 1, &room, &err) && strstr (err.message, "not positive"));
    intent_weights_t *built = intent_weights_new (12, 3, 2, two, values, 1, &room, &err);
    assert (built);
    assert (intent_weights_add (built, row_nan, &err) == -1 && strstr (err.message, "finite"));
    assert (intent_weights_add (built, row_b, &err) == 0);
    assert (intent_weights_add (built, row_b, &err) == -1 && strstr (err.message, "more weights than measured"));
    assert (intent_model_take_weights (model, &built, bias, &err) == -1 && !built);
    assert (strstr (err.message, "1 rows given"));
    assert (intent_model_rows (model) == 9); /* unchanged */
    built = intent_weights_new (12, 3, 2, two, values, 1, &room, &err);
    assert (built && intent_weights_add (built, row_zero, &err) == 0 && intent_weights_add (built, row_b, &err) == 0);
    assert (intent_weights_add (built, row_zero, &err) == -1 && strstr (err.message, "more than the 2 rows"));
    float bad_bias[3] = {0, INFINITY, 0};
    assert (intent_model_take_weights (model, &built, bad_bias, &err) == -1 && !built);
    built = intent_weights_new (12, 3, 2, two, values, 1, &room, &err);
    assert (built && intent_weights_add (built, row_zero, &err) == 0 && intent_weights_add (built, row_b, &err) == 0);
    assert (intent_model_take_weights (model, &built, bias, &err) == 0 && !built);
    assert (intent_model_rows (model) == 2 && intent_model_default_idf (model) == 1.0f);
    float back[3];
    assert (intent_model_row (model, 1, NULL, back) == 5 && memcmp (back, row_b, sizeof back) == 0);
    assert (intent_model_row (model, 0, NULL, back) == 3 && memcmp (back, row_zero, sizeof back) == 0);
    intent_weights_destroy (&built);

    /* rows kept as pairs and whole, -0 kept */
    s_test_rows ();
    intent_scratch_destroy (&scratch);
    intent_scratch_destroy (&scratch);
    intent_model_destroy (&model);
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model: ok\n");
}
