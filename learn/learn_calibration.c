/* The confidence map: isotonic regression of "the best label was right" on the margin. */
#include "learn_calibration.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"

typedef struct {
    float key;
    bool correct;
} ranked_t;

static int
s_by_margin (const void *a, const void *b)
{
    float x = ((const ranked_t *) a)->key, y = ((const ranked_t *) b)->key;
    return (x > y) - (x < y);
}

size_t
learn_calibration_fit (intent_model_t *model, const float *margins, const bool *correct, size_t count, cv_error_t *err)
{
    assert (model && margins && correct && count > 0);
    ranked_t *points = cv_malloc (count * sizeof *points);
    double *x = cv_malloc (count * sizeof *x), *y = cv_malloc (count * sizeof *y),
           *weight = cv_malloc (count * sizeof *weight);
    float *knot_x = cv_malloc (count * sizeof *knot_x), *knot_y = cv_malloc (count * sizeof *knot_y);
    size_t knots = 0;
    for (size_t i = 0; i < count; i++)
        points[i] = (ranked_t){margins[i], correct[i]};
    qsort (points, count, sizeof *points, s_by_margin);
    /* blocks as sums: x of margins, y of rights, weight of points */
    size_t blocks = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && points[i - 1].key == points[i].key) {
            /* equal margins share a block (the last, which holds the point before), and so a
               confidence */
            x[blocks - 1] += points[i].key;
            y[blocks - 1] += points[i].correct;
            weight[blocks - 1] += 1;
        } else {
            x[blocks] = points[i].key;
            y[blocks] = points[i].correct;
            weight[blocks] = 1;
            blocks++;
        }
        /* pool while the last block's accuracy does not exceed the one before */
        while (blocks > 1 && y[blocks - 2] / weight[blocks - 2] >= y[blocks - 1] / weight[blocks - 1]) {
            x[blocks - 2] += x[blocks - 1];
            y[blocks - 2] += y[blocks - 1];
            weight[blocks - 2] += weight[blocks - 1];
            blocks--;
        }
    }
    /* too many knots: pool neighbours in pairs, which keeps the map increasing */
    while (blocks > INTENT_MODEL_MAX_KNOTS) {
        size_t kept = 0;
        for (size_t i = 0; i < blocks; i += 2, kept++) {
            x[kept] = x[i], y[kept] = y[i], weight[kept] = weight[i];
            if (i + 1 < blocks)
                x[kept] += x[i + 1], y[kept] += y[i + 1], weight[kept] += weight[i + 1];
        }
        blocks = kept;
    }
    for (size_t i = 0; i < blocks; i++) {
        float margin = (float) (x[i] / weight[i]), probability = (float) (y[i] / weight[i]);
        if (knots > 0 && margin <= knot_x[knots - 1])
            continue; /* the same margin in single precision: the first, lower, block's knot stays */
        knot_x[knots] = margin;
        knot_y[knots] = probability;
        knots++;
    }
    if (intent_model_set_calibration (model, knots, knot_x, knot_y, err))
        knots = 0;
    free (points);
    free (x), free (y), free (weight);
    free (knot_x), free (knot_y);
    return knots;
}

void
learn_calibration_test (bool verbose)
{
    /* isotonic, so increasing even where the data is not */
    cv_error_t err;
    intent_features_settings_t features;
    intent_features_settings_default (&features);
    features.bits = 8;
    static const char *const ab[] = {"a", "b"};
    intent_model_t *model = intent_model_new (&features, ab, 2, &err);
    assert (model);
    float margins[8] = {0.1f, 0.2f, 0.3f, 0.3f, 0.5f, 0.6f, 0.7f, 0.9f};
    bool right[8] = {false, true, false, false, true, false, true, true};
    size_t knots = learn_calibration_fit (model, margins, right, 8, &err);
    assert (knots > 0);
    float last = -1;
    for (float m = 0; m < 1.2f; m += 0.05f) {
        float p = intent_model_calibrate (model, m);
        assert (p >= last && p >= 0 && p <= 1);
        last = p;
    }
    assert (intent_model_calibrate (model, 0.0f) == 0.0f); /* the lowest margin was wrong */
    assert (intent_model_calibrate (model, 1.0f) == 1.0f); /* the two highest were right */
    /* all right: one knot, certainty */
    bool all[3] = {true, true, true};
    assert (learn_calibration_fit (model, margins, all, 3, &err) == 1);
    assert (intent_model_calibrate (model, 0.05f) == 1.0f);
    if (verbose)
        printf ("  %zu knots from 8 margins\nlearn_calibration: ok\n", knots);
    intent_model_destroy (&model);
}
