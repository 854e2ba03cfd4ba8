/* The intent model's weights: rows per feature bucket, kept as pairs or whole, and their product
   with a text's features. */
#include "intent_weights.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "intent_features.h"

#define LANES INTENT_WEIGHTS_LANES

struct _intent_weights_t {
    unsigned bits;
    size_t label_count;
    size_t stride;     /* labels rounded up to a whole number of LANES */
    size_t expected;   /* rows */
    size_t rows;       /* added so far */
    float default_idf; /* of a bucket without a row */
    uint32_t *buckets; /* per row, increasing */
    float *idf;        /* per row */
    /* 2^bits entries: row + 1 of a bucket, 0 when it has none; in 16 bits while the rows fit
       (half the memory: 512 kB for the demo model's 2^18 buckets), else in 32 */
    uint16_t *map16;
    uint32_t *map32;
    /* a row of pairs keeps its weights at row_start[r] .. row_start[r + 1] - 1 by increasing
       label; whole[r] is 1 + the row's index among the whole rows, 0 for a row of pairs */
    uint32_t *row_start; /* rows + 1 */
    uint16_t *pair_labels;
    float *pair_weights;
    uint32_t *whole;      /* per row */
    float *whole_weights; /* [whole row][stride] */
    intent_weights_room_t used, room;
};

int
intent_weights_check_finite (const float *values, size_t count, cv_error_t *err)
{
    assert (values || count == 0);
    for (size_t i = 0; i < count; i++)
        if (!isfinite (values[i]))
            return cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    return 0;
}

/* True for a weight a row leaves out: +0 only, so that -0 survives a save and a load. */
static bool
s_dropped (float weight)
{
    return weight == 0.0f && !signbit (weight);
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

/* True for a row kept whole, given the weights it would keep as pairs. */
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

/* Checks the buckets and idf of the rows, before anything is made. */
static int
s_check (unsigned bits, size_t rows, const uint32_t *buckets, const float *idf, float default_idf, cv_error_t *err)
{
    size_t buckets_total = (size_t) 1 << bits;
    if (rows > buckets_total)
        return cv_error_set (err, CV_ERR_INVALID, "rows", "%zu rows for %zu buckets", rows, buckets_total);
    for (size_t row = 0; row < rows; row++)
        if (buckets[row] >= buckets_total || (row > 0 && buckets[row] <= buckets[row - 1]))
            return cv_error_set (err, CV_ERR_INVALID, "buckets", "row %zu: bucket %u out of order or range", row,
                                 buckets[row]);
    if (intent_weights_check_finite (idf, rows, err) || intent_weights_check_finite (&default_idf, 1, err))
        return -1;
    for (size_t row = 0; row < rows; row++)
        if (!(idf[row] > 0))
            return cv_error_set (err, CV_ERR_INVALID, "idf", "row %zu: idf %g is not positive", row, idf[row]);
    if (!(default_idf > 0))
        return cv_error_set (err, CV_ERR_INVALID, "idf", "default idf %g is not positive", default_idf);
    return 0;
}

intent_weights_t *
intent_weights_new (unsigned bits, size_t label_count, size_t rows, const uint32_t *buckets, const float *idf,
                    float default_idf, const intent_weights_room_t *room, cv_error_t *err)
{
    assert (room && bits < 32);
    assert (label_count >= 1 && label_count <= INTENT_WEIGHTS_MAX_LABELS);
    assert (rows == 0 || (buckets && idf));
    if (s_check (bits, rows, buckets, idf, default_idf, err))
        return NULL;
    intent_weights_t *self = cv_calloc (1, sizeof *self);
    self->bits = bits;
    self->label_count = label_count;
    self->stride = (label_count + LANES - 1) / LANES * LANES;
    self->expected = rows;
    self->default_idf = default_idf;
    self->room = *room;
    self->buckets = cv_malloc ((rows ? rows : 1) * sizeof *self->buckets);
    self->idf = cv_malloc ((rows ? rows : 1) * sizeof *self->idf);
    size_t buckets_total = (size_t) 1 << bits;
    if (rows < UINT16_MAX)
        self->map16 = cv_calloc (buckets_total, sizeof *self->map16);
    else
        self->map32 = cv_calloc (buckets_total, sizeof *self->map32);
    self->row_start = cv_calloc (rows + 1, sizeof *self->row_start);
    self->whole = cv_malloc ((rows ? rows : 1) * sizeof *self->whole);
    self->pair_labels = cv_malloc ((room->pairs ? room->pairs : 1) * sizeof *self->pair_labels);
    self->pair_weights = cv_malloc ((room->pairs ? room->pairs : 1) * sizeof *self->pair_weights);
    self->whole_weights =
        cv_calloc (room->whole_rows ? room->whole_rows * self->stride : 1, sizeof *self->whole_weights);
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
    intent_weights_t *self = *self_p;
    if (!self)
        return;
    free (self->buckets);
    free (self->idf);
    free (self->map16);
    free (self->map32);
    free (self->row_start);
    free (self->pair_labels);
    free (self->pair_weights);
    free (self->whole);
    free (self->whole_weights);
    free (self);
    *self_p = NULL;
}

int
intent_weights_add (intent_weights_t *self, const float *row, cv_error_t *err)
{
    assert (self && row);
    size_t labels = self->label_count, r = self->rows;
    if (r == self->expected)
        return cv_error_set (err, CV_ERR_INVALID, "weights", "more than the %zu rows made room for", self->expected);
    if (intent_weights_check_finite (row, labels, err))
        return -1;
    size_t kept = s_kept (row, labels);
    if (s_whole (kept, labels)) {
        if (self->used.whole_rows == self->room.whole_rows)
            return cv_error_set (err, CV_ERR_INVALID, "weights", "row %zu: more weights than measured", r);
        memcpy (self->whole_weights + self->used.whole_rows * self->stride, row, labels * sizeof *row);
        self->whole[r] = (uint32_t) ++self->used.whole_rows;
    } else {
        if (kept > self->room.pairs - self->used.pairs)
            return cv_error_set (err, CV_ERR_INVALID, "weights", "row %zu: more weights than measured", r);
        for (size_t label = 0; label < labels; label++)
            if (!s_dropped (row[label])) {
                self->pair_labels[self->used.pairs] = (uint16_t) label;
                self->pair_weights[self->used.pairs] = row[label];
                self->used.pairs++;
            }
        self->whole[r] = 0;
    }
    if (self->map16)
        self->map16[self->buckets[r]] = (uint16_t) (r + 1);
    else
        self->map32[self->buckets[r]] = (uint32_t) r + 1;
    self->rows++;
    self->row_start[self->rows] = (uint32_t) self->used.pairs;
    return 0;
}

bool
intent_weights_complete (const intent_weights_t *self)
{
    assert (self);
    return self->rows == self->expected;
}

unsigned
intent_weights_bits (const intent_weights_t *self)
{
    assert (self);
    return self->bits;
}

size_t
intent_weights_labels (const intent_weights_t *self)
{
    assert (self);
    return self->label_count;
}

size_t
intent_weights_rows (const intent_weights_t *self)
{
    assert (self);
    return self->rows;
}

float
intent_weights_default_idf (const intent_weights_t *self)
{
    assert (self);
    return self->default_idf;
}

uint32_t
intent_weights_row (const intent_weights_t *self, size_t row, float *idf, float *weights)
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

/* y += a * x over LANES floats; restrict tells the compiler they do not overlap, so it may
   use vector instructions. */
static inline void
s_add_scaled (float *restrict y, const float *restrict x, float a)
{
    for (size_t lane = 0; lane < LANES; lane++)
        y[lane] += a * x[lane];
}

void
intent_weights_score (const intent_weights_t *self, const uint32_t *buckets, const uint32_t *counts, size_t count,
                      uint32_t *rows, float *values, float *scores)
{
    assert (self && (count == 0 || (buckets && counts && rows && values)) && scores);
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
            rows[active] = row - 1;
            values[active] = value;
            active++;
        }
    }
    float scale = norm > 0 ? (float) (1.0 / sqrt (norm)) : 0;

    /* Each label's sum takes the same terms in the same order whether a row is whole or in
       pairs, less the zeros, which add nothing: the scores are those of the whole product of
       the rows, bit for bit. */
    size_t stride = self->stride;
    for (size_t i = 0; i < active; i++) {
        uint32_t row = rows[i];
        float value = values[i] * scale;
        if (self->whole[row]) {
            const float *weights = self->whole_weights + (size_t) (self->whole[row] - 1) * stride;
            for (size_t label = 0; label < stride; label += LANES)
                s_add_scaled (scores + label, weights + label, value);
        } else
            for (uint32_t at = self->row_start[row]; at < self->row_start[row + 1]; at++)
                scores[self->pair_labels[at]] += value * self->pair_weights[at];
    }
}

/*  --------------------------------------------------------------------------
    Self-test */

void
intent_weights_test (bool verbose)
{
    cv_error_t err;
    /* finite numbers pass, none at all too; NaN and infinities do not, with the one message */
    assert (intent_weights_check_finite ((const float[]){0.0f, -0.0f, -1e30f, 1e30f}, 4, &err) == 0);
    assert (intent_weights_check_finite (NULL, 0, &err) == 0);
    assert (intent_weights_check_finite ((const float[]){1.0f, NAN}, 2, &err) == -1 && strstr (err.message, "finite"));
    assert (intent_weights_check_finite ((const float[]){-INFINITY}, 1, &err) == -1
            && strcmp (err.field, "weights") == 0);
    /* a row as pairs (one weight, a -0), one whole, one of nothing, over nine labels */
    uint32_t buckets[] = {3, 5, 9};
    float idf[] = {1, 2, 1}, rows[3][9] = {{0}};
    rows[0][3] = 2.0f;
    rows[0][5] = -0.0f;
    for (size_t label = 0; label < 9; label++)
        rows[1][label] = label == 7 ? 1.0f : -0.25f;
    intent_weights_room_t room = {0};
    for (size_t r = 0; r < 3; r++)
        intent_weights_measure (&room, rows[r], 9);
    assert (room.pairs == 2 && room.whole_rows == 1);

    /* the checks, before anything is made */
    uint32_t unordered[] = {5, 3, 9}, beyond[] = {3, 5, 16};
    float bad_idf[] = {1, 0, 1};
    assert (!intent_weights_new (4, 9, 3, unordered, idf, 1, &room, &err) && strstr (err.message, "order"));
    assert (!intent_weights_new (4, 9, 3, beyond, idf, 1, &room, &err) && strstr (err.message, "range"));
    assert (!intent_weights_new (4, 9, 3, buckets, bad_idf, 1, &room, &err) && strstr (err.message, "not positive"));
    assert (!intent_weights_new (4, 9, 3, buckets, idf, NAN, &room, &err) && strstr (err.message, "finite"));
    assert (!intent_weights_new (1, 9, 3, buckets, idf, 1, &room, &err) && strstr (err.message, "3 rows for 2"));

    intent_weights_t *weights = intent_weights_new (4, 9, 3, buckets, idf, 1.5f, &room, &err);
    assert (weights && !intent_weights_complete (weights) && intent_weights_rows (weights) == 0);
    float nan_row[9] = {NAN};
    assert (intent_weights_add (weights, nan_row, &err) == -1 && strstr (err.message, "finite"));
    assert (intent_weights_add (weights, rows[0], &err) == 0);
    assert (intent_weights_add (weights, rows[0], &err) == -1 && strstr (err.message, "more weights than measured"));
    assert (intent_weights_add (weights, rows[1], &err) == 0);
    assert (intent_weights_add (weights, rows[1], &err) == -1 && strstr (err.message, "more weights than measured"));
    assert (intent_weights_add (weights, rows[2], &err) == 0 && intent_weights_complete (weights));
    assert (intent_weights_add (weights, rows[2], &err) == -1 && strstr (err.message, "more than the 3 rows"));
    assert (intent_weights_bits (weights) == 4 && intent_weights_labels (weights) == 9);
    assert (intent_weights_rows (weights) == 3 && intent_weights_default_idf (weights) == 1.5f);

    /* given back as given, -0 too */
    for (size_t r = 0; r < 3; r++) {
        float back[9], back_idf;
        assert (intent_weights_row (weights, r, &back_idf, back) == buckets[r] && back_idf == idf[r]);
        assert (memcmp (back, rows[r], sizeof back) == 0);
    }

    /* the product: features of buckets 3 and 5, and 12, which has no row but counts in the norm */
    uint32_t text[] = {3, 5, 12}, counts[] = {1, 1, 1}, scratch_rows[3];
    float values[3], scores[16] = {0};
    intent_weights_score (weights, text, counts, 2, scratch_rows, values, scores);
    float norm = sqrtf (1.0f + 4.0f), a = 1.0f / norm, b = 2.0f / norm;
    assert (fabsf (scores[3] - (2.0f * a - 0.25f * b)) < 1e-6f && fabsf (scores[7] - b) < 1e-6f);
    memset (scores, 0, sizeof scores);
    intent_weights_score (weights, text, counts, 3, scratch_rows, values, scores);
    norm = sqrtf (1.0f + 4.0f + 1.5f * 1.5f);
    assert (fabsf (scores[3] - (2.0f - 0.5f) / norm) < 1e-6f);
    memset (scores, 0, sizeof scores);
    intent_weights_score (weights, text + 2, counts, 1, scratch_rows, values, scores);
    for (size_t label = 0; label < 16; label++)
        assert (scores[label] == 0);
    intent_weights_destroy (&weights);
    intent_weights_destroy (&weights);

    /* more rows than 16 bits count: the map takes 32 */
    size_t many = (size_t) 1 << 17;
    uint32_t *all = cv_malloc (many * sizeof *all);
    float *ones = cv_malloc (many * sizeof *ones), row[2] = {0, 1};
    room = (intent_weights_room_t){0};
    for (size_t r = 0; r < many; r++) {
        all[r] = (uint32_t) r;
        ones[r] = 1;
        intent_weights_measure (&room, row, 2);
    }
    weights = intent_weights_new (17, 2, many, all, ones, 1, &room, &err);
    assert (weights);
    for (size_t r = 0; r < many; r++)
        assert (intent_weights_add (weights, row, &err) == 0);
    uint32_t last[] = {(uint32_t) many - 1};
    float two[8] = {0};
    intent_weights_score (weights, last, counts, 1, scratch_rows, values, two);
    assert (two[0] == 0 && fabsf (two[1] - 1.0f) < 1e-6f);
    intent_weights_destroy (&weights);
    free (all);
    free (ones);
    if (verbose)
        printf ("intent_weights: ok\n");
}
