/* The figures by which the intent model is judged, computed here only: accuracy, macro-F1 and
   the fast path (the share of queries decided without help, and how often they were right).
   `conveyor train` reports them on out-of-fold predictions, `conveyor eval` on a labelled file. */
#ifndef LEARN_METRICS_H
#define LEARN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"

/* The fast path at one coverage. Plain data. */
typedef struct {
    double coverage;  /* the share of queries asked for */
    double threshold; /* the confidence at or above which a query stays on the model */
    double covered;   /* the share at or above it (ties can add a few) */
    double accuracy;  /* the accuracy on those */
} learn_metrics_fast_path_t;

/* right of count: the accuracy, 0 when count is 0. */
double learn_metrics_accuracy (size_t right, size_t count);

/* The accuracy and the macro-F1 (the mean over labels 0..labels-1 of their F1, a label never
   expected nor predicted counting 0) of count predictions against the truth. */
void learn_metrics_score (const uint32_t *truth, const uint32_t *predicted, size_t count, size_t labels,
                          double *accuracy, double *macro_f1);

/* Of count predictions, whether each was right and whether the fast path kept it: the share kept
   in *covered and their accuracy in *accuracy (0 when none). */
void learn_metrics_kept (const bool *kept, const bool *correct, size_t count, double *covered, double *accuracy);

/* Chooses the fast path for coverage (0..1] over count predictions: their confidences and
   whether each was right. The threshold is the confidence of the prediction ranked at
   ceil(coverage * count), best first. -1 with err when count is 0 or coverage out of range. */
int learn_metrics_fast_path (const float *confidences, const bool *correct, size_t count, double coverage,
                             learn_metrics_fast_path_t *fast_path, cv_error_t *err) CV_MUST_CHECK;

void learn_metrics_test (bool verbose);

#endif
