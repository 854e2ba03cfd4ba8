/* A histogram of non-negative integer values (latencies in microseconds, say) with a bounded
   relative error, for percentiles over a wide range: log-linear buckets, as HdrHistogram has them.

   Values below 2^M are counted exactly; above, each power of two is cut into 2^(M-1) equal
   buckets, so a bucket is never wider than 1/2^(M-1) of the values it holds. M is chosen from the
   significant digits asked for: 3 digits (M = 11) keep every percentile within 0.1% of a value
   that was recorded. Recording is a shift, a count of leading zeros and an increment, with no
   allocation. The exact minimum, maximum and sum are kept beside the buckets. Not thread-safe:
   one histogram belongs to one thread (merge them to combine). */
#ifndef CV_HISTOGRAM_H
#define CV_HISTOGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_error.h"

typedef struct _cv_histogram_t cv_histogram_t;

/* An empty histogram for values 0..highest (highest >= 2) with significant_digits (1..5) of
   precision. Values above highest are counted in highest's bucket (their exact maximum is still
   kept). Never NULL (out of memory aborts, see cv_alloc.h). */
cv_histogram_t *cv_histogram_new (int64_t highest, int significant_digits);
void cv_histogram_destroy (cv_histogram_t **self_p);

/* Counts one value; a negative value counts as 0. */
void cv_histogram_record (cv_histogram_t *self, int64_t value);

/* The value at percentile (0..100): the smallest value such that percentile% of the recorded
   values are at or below it, given as the highest value of its bucket but never above the exact
   maximum (so value_at (100) is max). Non-decreasing in percentile. 0 when empty. */
int64_t cv_histogram_value_at (const cv_histogram_t *self, double percentile);

/* How many values were recorded; the exact smallest, largest and mean (0 when empty). */
uint64_t cv_histogram_count (const cv_histogram_t *self);
int64_t cv_histogram_min (const cv_histogram_t *self);
int64_t cv_histogram_max (const cv_histogram_t *self);
double cv_histogram_mean (const cv_histogram_t *self);

/* Adds other's counts to self's. Returns -1 (and changes nothing) unless both were made with the
   same highest and significant digits. */
int cv_histogram_merge (cv_histogram_t *self, const cv_histogram_t *other) CV_MUST_CHECK;

/* Forgets every value recorded. */
void cv_histogram_reset (cv_histogram_t *self);

void cv_histogram_test (bool verbose);

#endif
