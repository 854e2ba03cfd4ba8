/* The small hand-made model of the intent model's self-tests. */
#include "intent_model_sample.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cv_assert.h"
#include "intent_features.h"

intent_model_t *
intent_model_sample_new (const char *const *labels, const float *idf, const float *bias, float default_idf,
                         uint32_t *buckets, float *weights)
{
    assert (labels && idf && bias);
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    settings.word_max = 1;
    settings.char_min = settings.char_max = 0;
    cv_error_t err;
    intent_model_t *model = intent_model_new (&settings, labels, INTENT_MODEL_SAMPLE_LABELS, &err);
    cv_assert_that (model, "intent_model_sample: %s", err.message);
    const char *words[] = {"alpha", "beta", "gamma"};
    uint32_t mask = (1u << settings.bits) - 1, hashed[INTENT_MODEL_SAMPLE_ROWS];
    for (size_t i = 0; i < INTENT_MODEL_SAMPLE_ROWS; i++)
        hashed[i] = intent_features_hash (INTENT_FEATURE_WORD, words[i], strlen (words[i])) & mask;
    float given[INTENT_MODEL_SAMPLE_ROWS][INTENT_MODEL_SAMPLE_LABELS] = {{0}};
    given[0][3] = 2.0f;
    given[0][5] = -0.0f;
    for (size_t label = 0; label < INTENT_MODEL_SAMPLE_LABELS; label++)
        given[1][label] = label == 7 ? 1.0f : -0.25f;
    /* the rows in bucket order, as a model takes them */
    size_t order[INTENT_MODEL_SAMPLE_ROWS] = {0, 1, 2};
    for (size_t i = 1; i < INTENT_MODEL_SAMPLE_ROWS; i++)
        for (size_t j = i; j > 0 && hashed[order[j - 1]] > hashed[order[j]]; j--) {
            size_t swap = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swap;
        }
    uint32_t sorted[INTENT_MODEL_SAMPLE_ROWS];
    float rows[INTENT_MODEL_SAMPLE_ROWS * INTENT_MODEL_SAMPLE_LABELS];
    for (size_t i = 0; i < INTENT_MODEL_SAMPLE_ROWS; i++) {
        sorted[i] = hashed[order[i]];
        memcpy (rows + INTENT_MODEL_SAMPLE_LABELS * i, given[order[i]], sizeof given[0]);
    }
    int rc = intent_model_set_weights (model, INTENT_MODEL_SAMPLE_ROWS, sorted, idf, rows, bias, default_idf, &err);
    cv_assert_that (rc == 0, "intent_model_sample: %s", err.message);
    if (buckets)
        memcpy (buckets, sorted, sizeof sorted);
    if (weights)
        memcpy (weights, rows, sizeof rows);
    return model;
}

void
intent_model_sample_test (bool verbose)
{
    static const char *const labels[] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"};
    const float idf[] = {1.5f, 1.25f, 2.0f}, bias[INTENT_MODEL_SAMPLE_LABELS] = {0.5f};
    uint32_t buckets[INTENT_MODEL_SAMPLE_ROWS];
    float weights[INTENT_MODEL_SAMPLE_ROWS * INTENT_MODEL_SAMPLE_LABELS];
    intent_model_t *model = intent_model_sample_new (labels, idf, bias, 3.0f, buckets, weights);
    assert (intent_model_label_count (model) == INTENT_MODEL_SAMPLE_LABELS && intent_model_rows (model) == 3);
    assert (intent_model_default_idf (model) == 3.0f && intent_model_bias (model)[0] == 0.5f);
    /* the rows in increasing buckets, each word's, with the idf given for its place */
    size_t alpha = 3, beta = 3, gamma = 3;
    for (size_t r = 0; r < INTENT_MODEL_SAMPLE_ROWS; r++) {
        float row[INTENT_MODEL_SAMPLE_LABELS], row_idf;
        assert (intent_model_row (model, r, &row_idf, row) == buckets[r] && row_idf == idf[r]);
        assert (r == 0 || buckets[r - 1] < buckets[r]);
        assert (memcmp (row, weights + INTENT_MODEL_SAMPLE_LABELS * r, sizeof row) == 0);
        if (row[3] == 2.0f)
            alpha = r;
        else if (row[7] == 1.0f)
            beta = r;
        else
            gamma = r;
    }
    assert (alpha < 3 && beta < 3 && gamma < 3);
    assert (buckets[alpha] == (intent_features_hash (INTENT_FEATURE_WORD, "alpha", 5) & 4095));
    assert (buckets[beta] == (intent_features_hash (INTENT_FEATURE_WORD, "beta", 4) & 4095));
    assert (buckets[gamma] == (intent_features_hash (INTENT_FEATURE_WORD, "gamma", 5) & 4095));
    /* -0 is kept in alpha's row, +0 elsewhere; gamma's row is all +0 */
    float row[INTENT_MODEL_SAMPLE_LABELS];
    intent_model_row (model, alpha, NULL, row);
    assert (signbit (row[5]) && !signbit (row[4]));
    intent_model_row (model, gamma, NULL, row);
    for (size_t label = 0; label < INTENT_MODEL_SAMPLE_LABELS; label++)
        assert (row[label] == 0.0f && !signbit (row[label]));
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model_sample: ok\n");
}
