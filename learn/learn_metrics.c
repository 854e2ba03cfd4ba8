/* Accuracy, macro-F1 and the fast path, for the trainer's report and for eval's. */
#include "learn_metrics.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

double
learn_metrics_accuracy (size_t right, size_t count)
{
    assert (right <= count);
    return count ? (double) right / (double) count : 0.0;
}

void
learn_metrics_score (const uint32_t *truth, const uint32_t *predicted, size_t count, size_t labels, double *accuracy,
                     double *macro_f1)
{
    assert ((truth && predicted) || count == 0);
    assert (accuracy && macro_f1);
    size_t *tp = cv_calloc (labels + 1, sizeof *tp), *fp = cv_calloc (labels + 1, sizeof *fp);
    size_t *fn = cv_calloc (labels + 1, sizeof *fn);
    size_t right = 0;
    for (size_t i = 0; i < count; i++) {
        assert (truth[i] < labels && predicted[i] < labels);
        if (truth[i] == predicted[i]) {
            right++;
            tp[truth[i]]++;
        } else {
            fp[predicted[i]]++;
            fn[truth[i]]++;
        }
    }
    /* F1 = 2 TP / (2 TP + FP + FN) */
    double f1 = 0;
    for (size_t label = 0; label < labels; label++) {
        size_t denominator = 2 * tp[label] + fp[label] + fn[label];
        f1 += denominator ? 2.0 * (double) tp[label] / (double) denominator : 0;
    }
    *accuracy = learn_metrics_accuracy (right, count);
    *macro_f1 = labels ? f1 / (double) labels : 0;
    free (tp), free (fp), free (fn);
}

void
learn_metrics_kept (const bool *kept, const bool *correct, size_t count, double *covered, double *accuracy)
{
    assert ((kept && correct) || count == 0);
    assert (covered && accuracy);
    size_t held = 0, right = 0;
    for (size_t i = 0; i < count; i++)
        if (kept[i]) {
            held++;
            right += correct[i];
        }
    *covered = learn_metrics_accuracy (held, count);
    *accuracy = learn_metrics_accuracy (right, held);
}

static int
s_by_confidence_descending (const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;
    return (x < y) - (x > y);
}

int
learn_metrics_fast_path (const float *confidences, const bool *correct, size_t count, double coverage,
                         learn_metrics_fast_path_t *fast_path, cv_error_t *err)
{
    assert (fast_path);
    assert (count == 0 || (confidences && correct));
    if (count == 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "no predictions to choose a threshold from");
    if (!(coverage > 0 && coverage <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "coverage", "coverage %g is not in (0, 1]", coverage);
    float *ranked = cv_malloc (count * sizeof *ranked);
    bool *kept = cv_malloc (count * sizeof *kept);
    memcpy (ranked, confidences, count * sizeof *ranked);
    qsort (ranked, count, sizeof *ranked, s_by_confidence_descending);
    /* the rank that keeps the share asked for; the tolerance absorbs 0.7 * 10 = 7.000000001 */
    size_t keep = (size_t) ceil (coverage * (double) count - 1e-9);
    keep = keep < 1 ? 1 : keep > count ? count : keep;
    float threshold = ranked[keep - 1];
    for (size_t i = 0; i < count; i++)
        kept[i] = confidences[i] >= threshold;
    *fast_path = (learn_metrics_fast_path_t){.coverage = coverage, .threshold = threshold};
    learn_metrics_kept (kept, correct, count, &fast_path->covered, &fast_path->accuracy);
    free (ranked);
    free (kept);
    return 0;
}

void
learn_metrics_test (bool verbose)
{
    cv_error_t err;
    assert (learn_metrics_accuracy (0, 0) == 0.0 && learn_metrics_accuracy (3, 4) == 0.75);

    /* a: 3 expected, 2 right; b: 2 expected, 1 right (the other taken as a); c: predicted once,
       never expected. F1: a = 2*2/(4+1+1) = 0.6667, b = 2*1/(2+0+1) = 0.6667, c = 0 */
    uint32_t truth[] = {0, 0, 0, 1, 1}, predicted[] = {0, 0, 2, 1, 0};
    double accuracy, macro_f1;
    learn_metrics_score (truth, predicted, 5, 3, &accuracy, &macro_f1);
    assert (fabs (accuracy - 0.6) < 1e-12 && fabs (macro_f1 - 4.0 / 9.0) < 1e-9);
    /* a label never seen counts 0 in the mean */
    learn_metrics_score (truth, predicted, 5, 4, &accuracy, &macro_f1);
    assert (fabs (macro_f1 - 4.0 / 12.0) < 1e-9);
    learn_metrics_score (truth, truth, 5, 2, &accuracy, &macro_f1);
    assert (accuracy == 1.0 && macro_f1 == 1.0);
    learn_metrics_score (NULL, NULL, 0, 0, &accuracy, &macro_f1);
    assert (accuracy == 0.0 && macro_f1 == 0.0);

    /* what the fast path kept: 4 of 5, 3 of them right */
    bool kept[] = {true, true, false, true, true}, right[] = {true, true, false, true, false};
    double covered;
    learn_metrics_kept (kept, right, 5, &covered, &accuracy);
    assert (fabs (covered - 0.8) < 1e-12 && fabs (accuracy - 0.75) < 1e-12);
    bool none[] = {false, false};
    learn_metrics_kept (none, right, 2, &covered, &accuracy);
    assert (covered == 0.0 && accuracy == 0.0);
    learn_metrics_kept (NULL, NULL, 0, &covered, &accuracy);
    assert (covered == 0.0 && accuracy == 0.0);

    /* the fast path on synthetic scores: ten predictions, confidences 1.0 down to 0.1, the
       right ones marked */
    float confidences[10];
    bool correct[10] = {true, true, true, false, true, true, false, true, false, false};
    for (size_t i = 0; i < 10; i++)
        confidences[i] = (float) (10 - i) / 10.0f;
    learn_metrics_fast_path_t fast;
    assert (learn_metrics_fast_path (confidences, correct, 10, 0.8, &fast, &err) == 0);
    assert (fast.threshold == 0.3f && fast.covered == 0.8 && fabs (fast.accuracy - 6.0 / 8.0) < 1e-12);
    assert (learn_metrics_fast_path (confidences, correct, 10, 0.7, &fast, &err) == 0);
    assert (fast.threshold == 0.4f && fast.covered == 0.7 && fabs (fast.accuracy - 5.0 / 7.0) < 1e-12);
    assert (learn_metrics_fast_path (confidences, correct, 10, 0.25, &fast, &err) == 0); /* 2.5 -> 3 kept */
    assert (fast.threshold == 0.8f && fast.covered == 0.3 && fast.accuracy == 1.0);
    assert (learn_metrics_fast_path (confidences, correct, 10, 1.0, &fast, &err) == 0);
    assert (fast.threshold == 0.1f && fast.covered == 1.0 && fast.accuracy == 0.6);
    assert (learn_metrics_fast_path (confidences, correct, 10, 0.01, &fast, &err) == 0); /* at least one */
    assert (fast.threshold == 1.0f && fast.covered == 0.1);
    /* order does not matter; ties keep more than asked */
    float tied[5] = {0.5f, 0.9f, 0.2f, 0.9f, 0.9f};
    bool tied_correct[5] = {true, true, false, false, true};
    assert (learn_metrics_fast_path (tied, tied_correct, 5, 0.4, &fast, &err) == 0);
    assert (fast.threshold == 0.9f && fast.covered == 0.6 && fabs (fast.accuracy - 2.0 / 3.0) < 1e-12);
    assert (learn_metrics_fast_path (tied, tied_correct, 0, 0.5, &fast, &err) == -1);
    assert (learn_metrics_fast_path (tied, tied_correct, 5, 0, &fast, &err) == -1);
    assert (learn_metrics_fast_path (tied, tied_correct, 5, 1.01, &fast, &err) == -1
            && strcmp (err.field, "coverage") == 0);
    if (verbose)
        printf ("learn_metrics: ok\n");
}
