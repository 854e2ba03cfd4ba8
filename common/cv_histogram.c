/* A log-linear histogram: percentiles with a bounded relative error over a wide range. */
#include "cv_histogram.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"

struct _cv_histogram_t {
    int64_t highest; /* the largest value with a bucket of its own */
    int digits;      /* significant digits asked for */
    int bits;        /* M: values below 2^M are exact */
    int64_t half;    /* 2^(M-1): buckets per power of two above 2^M */
    size_t size;     /* buckets */
    uint64_t *counts;
    uint64_t total;
    int64_t min, max;
    double sum;
};

/* The bucket of value (0 <= value <= highest). With b the number of bits value has beyond M
   (0 below 2^M), the bucket is value >> b, shifted up by b rows of half buckets each: below
   2^M that is the value itself, and each power of two above starts where the last one ended. */
static inline size_t
s_index (const cv_histogram_t *self, uint64_t value)
{
    uint64_t mask = ((uint64_t) 1 << self->bits) - 1;
    int b = 63 - __builtin_clzll (value | mask) - (self->bits - 1);
    return (size_t) ((value >> b) + (uint64_t) b * (uint64_t) self->half);
}

/* The largest value that falls in bucket index. */
static int64_t
s_upper (const cv_histogram_t *self, size_t index)
{
    int64_t i = (int64_t) index;
    if (i < 2 * self->half)
        return i;
    int b = (int) (i / self->half - 1);
    int64_t lower = (i - b * self->half) << b;
    return lower + ((int64_t) 1 << b) - 1;
}

cv_histogram_t *
cv_histogram_new (int64_t highest, int significant_digits)
{
    assert (highest >= 2 && highest < ((int64_t) 1 << 62));
    assert (significant_digits >= 1 && significant_digits <= 5);
    cv_histogram_t *self = cv_calloc (1, sizeof *self);
    self->highest = highest;
    self->digits = significant_digits;
    /* The smallest M with 2^(M-1) >= 10^digits: a bucket above 2^M is at most 1/10^digits of
       its values wide. */
    int64_t needed = 1;
    for (int i = 0; i < significant_digits; i++)
        needed *= 10;
    self->bits = 1;
    while (((int64_t) 1 << (self->bits - 1)) < needed)
        self->bits++;
    self->half = (int64_t) 1 << (self->bits - 1);
    self->size = s_index (self, (uint64_t) highest) + 1;
    self->counts = cv_calloc (self->size, sizeof (uint64_t));
    return self;
}

void
cv_histogram_destroy (cv_histogram_t **self_p)
{
    assert (self_p);
    cv_histogram_t *self = *self_p;
    if (!self)
        return;
    free (self->counts);
    free (self);
    *self_p = NULL;
}

void
cv_histogram_record (cv_histogram_t *self, int64_t value)
{
    assert (self);
    if (value < 0)
        value = 0;
    int64_t clamped = value > self->highest ? self->highest : value;
    self->counts[s_index (self, (uint64_t) clamped)]++;
    if (self->total == 0 || value < self->min)
        self->min = value;
    if (value > self->max)
        self->max = value;
    self->total++;
    self->sum += (double) value;
}

int64_t
cv_histogram_value_at (const cv_histogram_t *self, double percentile)
{
    assert (self);
    if (self->total == 0)
        return 0;
    if (percentile < 0)
        percentile = 0;
    if (percentile > 100)
        percentile = 100;
    /* The rank of the value asked for: at least the first one, at most the last. */
    uint64_t rank = (uint64_t) ceil (percentile / 100.0 * (double) self->total);
    if (rank < 1)
        rank = 1;
    if (rank >= self->total)
        return self->max; /* the last value: exact, even above highest */
    uint64_t seen = 0;
    for (size_t i = 0; i < self->size; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            int64_t value = s_upper (self, i);
            if (value < self->min)
                value = self->min;
            return value < self->max ? value : self->max;
        }
    }
    return self->max;
}

uint64_t
cv_histogram_count (const cv_histogram_t *self)
{
    assert (self);
    return self->total;
}

int64_t
cv_histogram_min (const cv_histogram_t *self)
{
    assert (self);
    return self->min;
}

int64_t
cv_histogram_max (const cv_histogram_t *self)
{
    assert (self);
    return self->max;
}

double
cv_histogram_mean (const cv_histogram_t *self)
{
    assert (self);
    return self->total ? self->sum / (double) self->total : 0;
}

int
cv_histogram_merge (cv_histogram_t *self, const cv_histogram_t *other)
{
    assert (self && other);
    if (self->highest != other->highest || self->digits != other->digits)
        return -1;
    if (other->total == 0)
        return 0;
    for (size_t i = 0; i < self->size; i++)
        self->counts[i] += other->counts[i];
    if (self->total == 0 || other->min < self->min)
        self->min = other->min;
    if (other->max > self->max)
        self->max = other->max;
    self->total += other->total;
    self->sum += other->sum;
    return 0;
}

void
cv_histogram_reset (cv_histogram_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->size; i++)
        self->counts[i] = 0;
    self->total = 0;
    self->min = self->max = 0;
    self->sum = 0;
}

/* True when got is within relative error bound of want. */
static bool
s_close (int64_t got, int64_t want, double bound)
{
    return fabs ((double) got - (double) want) <= bound * (double) want + 1e-9;
}

void
cv_histogram_test (bool verbose)
{
    /* 1 µs .. 100 s in microseconds, 3 significant digits. */
    cv_histogram_t *histogram = cv_histogram_new (100 * 1000 * 1000, 3);
    assert (histogram);
    assert (cv_histogram_count (histogram) == 0);
    assert (cv_histogram_value_at (histogram, 50) == 0);
    assert (cv_histogram_max (histogram) == 0 && cv_histogram_min (histogram) == 0);
    assert (cv_histogram_mean (histogram) == 0);

    /* Every bucket's upper bound maps back to it, the next value to the next bucket, and no
       bucket is wider than a thousandth of its values. */
    for (size_t i = 0; i + 1 < histogram->size; i++) {
        int64_t upper = s_upper (histogram, i);
        assert (s_index (histogram, (uint64_t) upper) == i);
        assert (s_index (histogram, (uint64_t) upper + 1) == i + 1);
        int64_t lower = i == 0 ? 0 : s_upper (histogram, i - 1) + 1;
        assert (upper - lower <= upper / 1000 + 1);
    }
    assert (s_upper (histogram, histogram->size - 1) >= 100 * 1000 * 1000);

    /* Small values are exact. */
    for (int64_t value = 0; value < 2000; value++)
        cv_histogram_record (histogram, value);
    assert (cv_histogram_count (histogram) == 2000);
    assert (cv_histogram_min (histogram) == 0 && cv_histogram_max (histogram) == 1999);
    assert (cv_histogram_value_at (histogram, 50) == 999);
    assert (cv_histogram_value_at (histogram, 0) == 0);
    assert (cv_histogram_value_at (histogram, 100) == 1999);
    assert (fabs (cv_histogram_mean (histogram) - 999.5) < 1e-9);
    cv_histogram_reset (histogram);
    assert (cv_histogram_count (histogram) == 0 && cv_histogram_max (histogram) == 0);

    /* 1 .. 1,000,000: every percentile within 0.1% of the exact one, and ordered. */
    for (int64_t value = 1; value <= 1000000; value++)
        cv_histogram_record (histogram, value);
    static const double percentiles[] = {0, 10, 50, 90, 99, 99.9, 99.99, 100};
    int64_t previous = 0;
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        int64_t want = (int64_t) ceil (percentiles[i] / 100 * 1000000);
        want = want < 1 ? 1 : want;
        int64_t got = cv_histogram_value_at (histogram, percentiles[i]);
        if (verbose)
            printf ("cv_histogram: p%g = %lld (exact %lld)\n", percentiles[i], (long long) got, (long long) want);
        assert (s_close (got, want, 0.001));
        assert (got >= previous);
        previous = got;
    }
    assert (cv_histogram_value_at (histogram, 100) == 1000000);
    assert (cv_histogram_value_at (histogram, 150) == 1000000);
    assert (cv_histogram_value_at (histogram, -5) == 1);
    assert (fabs (cv_histogram_mean (histogram) - 500000.5) < 1e-6);

    /* Out of range: a negative value counts as 0; one above highest in the last bucket, with
       its exact maximum kept. */
    cv_histogram_reset (histogram);
    cv_histogram_record (histogram, -7);
    cv_histogram_record (histogram, 500LL * 1000 * 1000);
    cv_histogram_record (histogram, 600LL * 1000 * 1000);
    assert (cv_histogram_count (histogram) == 3);
    assert (cv_histogram_min (histogram) == 0);
    assert (cv_histogram_max (histogram) == 600LL * 1000 * 1000);
    assert (cv_histogram_value_at (histogram, 30) == 0);
    assert (s_close (cv_histogram_value_at (histogram, 50), 100 * 1000 * 1000, 0.001));
    assert (cv_histogram_value_at (histogram, 100) == 600LL * 1000 * 1000);

    /* A single value: every percentile is that value, not its bucket's bound. */
    cv_histogram_reset (histogram);
    cv_histogram_record (histogram, 123456);
    assert (cv_histogram_value_at (histogram, 0) == 123456);
    assert (cv_histogram_value_at (histogram, 99.9) == 123456);

    /* A tail: 990 fast values and 10 slow ones; p99 is fast, p99.9 and max are slow. */
    cv_histogram_reset (histogram);
    for (int i = 0; i < 990; i++)
        cv_histogram_record (histogram, 5000 + i);
    for (int i = 0; i < 10; i++)
        cv_histogram_record (histogram, 2000000 + i);
    assert (cv_histogram_value_at (histogram, 99) <= 6000);
    assert (s_close (cv_histogram_value_at (histogram, 99.9), 2000009, 0.001));
    assert (cv_histogram_max (histogram) == 2000009);

    /* Merge: the union of both; histograms of another shape are refused. */
    cv_histogram_t *other = cv_histogram_new (100 * 1000 * 1000, 3);
    assert (other);
    cv_histogram_record (other, 1);
    cv_histogram_record (other, 3000000);
    assert (cv_histogram_merge (histogram, other) == 0);
    assert (cv_histogram_count (histogram) == 1002);
    assert (cv_histogram_min (histogram) == 1 && cv_histogram_max (histogram) == 3000000);
    cv_histogram_t *empty = cv_histogram_new (100 * 1000 * 1000, 3);
    assert (cv_histogram_merge (histogram, empty) == 0);
    assert (cv_histogram_count (histogram) == 1002 && cv_histogram_min (histogram) == 1);
    assert (cv_histogram_merge (empty, other) == 0);
    assert (cv_histogram_min (empty) == 1 && cv_histogram_max (empty) == 3000000);
    cv_histogram_t *coarse = cv_histogram_new (1000, 2);
    assert (coarse);
    assert (cv_histogram_merge (histogram, coarse) == -1);
    assert (cv_histogram_count (histogram) == 1002);

    /* Two digits: within 1%, and far fewer buckets. */
    cv_histogram_record (coarse, 999);
    cv_histogram_record (coarse, 1000);
    assert (s_close (cv_histogram_value_at (coarse, 50), 999, 0.01));
    assert (coarse->size < histogram->size);

    cv_histogram_destroy (&coarse);
    cv_histogram_destroy (&empty);
    cv_histogram_destroy (&other);
    cv_histogram_destroy (&histogram);
    assert (histogram == NULL);
    cv_histogram_destroy (&histogram);
    if (verbose)
        printf ("cv_histogram: ok\n");
}
