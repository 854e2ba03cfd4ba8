/* Cross-validation and the fit: the folds, the grid's candidates, the final fit and its report. */
#include "learn_train.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"
#include "intent_model_file.h"
#include "learn_calibration.h"
#include "learn_matrix.h"

#define PROGRESS_MAX_BYTES 512

static const double s_fast_path_coverages[LEARN_TRAIN_FAST_PATHS] = {0.7, 0.8, 0.9};

/* One fit's view of its examples, and where its progress goes. */
typedef struct {
    const learn_examples_t *examples;
    size_t count;           /* examples */
    const uint32_t *labels; /* per example, into names */
    const char *const *names;
    size_t name_count;
    learn_train_progress_fn *progress;
    void *progress_arg;
} trainer_t;

/* A combination of settings being cross-validated, and its out-of-fold predictions. */
typedef struct {
    learn_train_settings_t settings;
    uint32_t *predicted; /* per example */
    float *margins;      /* per example */
    double fold_accuracy[LEARN_TRAIN_MAX_FOLDS];
    double accuracy, macro_f1;
} candidate_t;

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static void s_progress (const trainer_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_progress (const trainer_t *self, const char *format, ...)
{
    if (!self->progress)
        return;
    char line[PROGRESS_MAX_BYTES];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    self->progress (line, self->progress_arg);
}

void
learn_train_settings_default (learn_train_settings_t *settings)
{
    assert (settings);
    intent_features_settings_default (&settings->features);
    settings->loss = LEARN_SOLVER_SQUARED_HINGE;
    settings->c = 2.0;
    settings->epochs = 200;
    settings->tolerance = 0.1;
    settings->seed = 42;
    settings->folds = 5;
    settings->coverage = 0.8;
    settings->threads = 1;
}

int
learn_train_settings_check (const learn_train_settings_t *settings, cv_error_t *err)
{
    assert (settings);
    if (intent_features_settings_check (&settings->features, err))
        return -1;
    if (settings->loss != LEARN_SOLVER_HINGE && settings->loss != LEARN_SOLVER_SQUARED_HINGE)
        return cv_error_set (err, CV_ERR_INVALID, "loss", "unknown loss %d", (int) settings->loss);
    if (!(settings->c > 0 && settings->c <= 1e6))
        return cv_error_set (err, CV_ERR_INVALID, "c", "c %g is not in (0, 1e6]", settings->c);
    if (settings->epochs < 1 || settings->epochs > 100000)
        return cv_error_set (err, CV_ERR_INVALID, "epochs", "epochs %u is not in 1..100000", settings->epochs);
    if (!(settings->tolerance > 0 && settings->tolerance < 1e3))
        return cv_error_set (err, CV_ERR_INVALID, "tolerance", "tolerance %g is not in (0, 1000)", settings->tolerance);
    if (settings->folds < 2 || settings->folds > LEARN_TRAIN_MAX_FOLDS)
        return cv_error_set (err, CV_ERR_INVALID, "folds", "folds %u is not in 2..%d", settings->folds,
                             LEARN_TRAIN_MAX_FOLDS);
    if (!(settings->coverage > 0 && settings->coverage <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "coverage", "coverage %g is not in (0, 1]", settings->coverage);
    if (settings->threads < 1 || settings->threads > LEARN_TRAIN_MAX_THREADS)
        return cv_error_set (err, CV_ERR_INVALID, "threads", "threads %u is not in 1..%d", settings->threads,
                             LEARN_TRAIN_MAX_THREADS);
    return 0;
}

void
learn_train_grid_default (learn_train_grid_t *grid)
{
    assert (grid);
    *grid = (learn_train_grid_t){
        .c = {1.0, 2.0, 4.0},
        .c_count = 3,
        .char_min = {1, 1, 2},
        .char_max = {3, 4, 5},
        .char_count = 3,
    };
}

/* --- cross-validation --- */

/* The best label of scores (labels of them) and its margin over the second best. */
static uint32_t
s_best (const float *scores, size_t labels, float *margin)
{
    uint32_t best = 0;
    for (uint32_t label = 1; label < labels; label++)
        if (scores[label] > scores[best])
            best = label;
    float second = -INFINITY;
    for (uint32_t label = 0; label < labels; label++)
        if (label != best && scores[label] > second)
            second = scores[label];
    *margin = scores[best] - second;
    return best;
}

/* Assigns each example a fold, stratified: each label's examples, shuffled, are dealt round the
   folds, each label starting where the one before stopped. */
static void
s_folds (const trainer_t *self, unsigned folds, uint64_t seed, uint8_t *fold, uint32_t *scratch)
{
    uint64_t state = seed;
    size_t next = 0;
    for (uint32_t label = 0; label < self->name_count; label++) {
        size_t members = 0;
        for (size_t i = 0; i < self->count; i++)
            if (self->labels[i] == label)
                scratch[members++] = (uint32_t) i;
        learn_solver_shuffle (scratch, members, &state);
        for (size_t m = 0; m < members; m++)
            fold[scratch[m]] = (uint8_t) ((next + m) % folds);
        next = (next + members) % folds;
    }
}

/* Cross-validates the candidates (count of them, sharing feature settings) on matrix. */
static void
s_cross_validate (const trainer_t *self, learn_matrix_t *matrix, candidate_t *candidates, size_t count,
                  const uint8_t *fold, unsigned folds, bool grid)
{
    const learn_train_settings_t *first = &candidates[0].settings;
    size_t labels = self->name_count, buckets = (size_t) 1 << first->features.bits;
    uint32_t *train = cv_malloc (self->count * sizeof *train), *test = cv_malloc (self->count * sizeof *test);
    float *scores = cv_malloc ((self->count * labels + 1) * sizeof *scores), *bias = cv_malloc (labels * sizeof *bias);
    for (unsigned f = 0; f < folds; f++) {
        double started = s_now ();
        size_t train_count = 0, test_count = 0;
        for (size_t i = 0; i < self->count; i++)
            if (fold[i] == f)
                test[test_count++] = (uint32_t) i;
            else
                train[train_count++] = (uint32_t) i;
        learn_vocabulary_t vocabulary = {0};
        learn_matrix_vocabulary (matrix, train, train_count, buckets, &vocabulary);
        learn_matrix_weigh (matrix, &vocabulary);
        for (size_t c = 0; c < count; c++) {
            candidate_t *candidate = &candidates[c];
            learn_solver_problem_t problem = {
                .matrix = matrix,
                .labels = self->labels,
                .label_count = labels,
                .train = train,
                .train_count = train_count,
                .test = test,
                .test_count = test_count,
                .vocabulary = &vocabulary,
                .buckets = buckets,
                .loss = candidate->settings.loss,
                .c = candidate->settings.c,
                .epochs = candidate->settings.epochs,
                .tolerance = candidate->settings.tolerance,
                .seed = candidate->settings.seed + 0x100000001B3ull * (f + 1),
                .test_scores = scores,
                .bias = bias,
            };
            learn_solver_run (&problem, candidate->settings.threads);
            size_t right = 0;
            for (size_t t = 0; t < test_count; t++) {
                uint32_t row = test[t];
                candidate->predicted[row] = s_best (scores + t * labels, labels, &candidate->margins[row]);
                right += candidate->predicted[row] == self->labels[row];
            }
            candidate->fold_accuracy[f] = learn_metrics_accuracy (right, test_count);
            if (!grid)
                s_progress (self, "fold %u/%u: accuracy %.4f on %zu held out, %.1f s, %u passes at most%s", f + 1,
                            folds, candidate->fold_accuracy[f], test_count, s_now () - started, problem.passes,
                            problem.passes >= candidate->settings.epochs ? " (the limit)" : "");
        }
        if (grid)
            s_progress (self, "bits %u, char %u-%u: fold %u/%u done, %zu settings, %.1f s", first->features.bits,
                        first->features.char_min, first->features.char_max, f + 1, folds, count, s_now () - started);
        learn_vocabulary_reset (&vocabulary);
    }
    for (size_t c = 0; c < count; c++)
        learn_metrics_score (self->labels, candidates[c].predicted, self->count, labels, &candidates[c].accuracy,
                             &candidates[c].macro_f1);
    free (train);
    free (test);
    free (scores);
    free (bias);
}

/* --- the fit --- */

/* Fits settings on every example into a new model with its weights, not yet calibrated. */
static intent_model_t *
s_fit_all (const trainer_t *self, const learn_train_settings_t *settings, unsigned *passes, cv_error_t *err)
{
    size_t labels = self->name_count, buckets = (size_t) 1 << settings->features.bits;
    learn_matrix_t *matrix = learn_matrix_new (self->examples, &settings->features);
    uint32_t *all = cv_malloc (self->count * sizeof *all);
    learn_vocabulary_t vocabulary = {0};
    float *bias = cv_malloc (labels * sizeof *bias), *weights = NULL, *idf = NULL;
    intent_model_t *model = NULL;
    for (size_t i = 0; i < self->count; i++)
        all[i] = (uint32_t) i;
    learn_matrix_vocabulary (matrix, all, self->count, buckets, &vocabulary);
    learn_matrix_weigh (matrix, &vocabulary);
    size_t rows = vocabulary.seen_count;
    weights = cv_malloc ((rows * labels + 1) * sizeof *weights);
    idf = cv_malloc ((rows + 1) * sizeof *idf);
    learn_solver_problem_t problem = {
        .matrix = matrix,
        .labels = self->labels,
        .label_count = labels,
        .train = all,
        .train_count = self->count,
        .vocabulary = &vocabulary,
        .buckets = buckets,
        .loss = settings->loss,
        .c = settings->c,
        .epochs = settings->epochs,
        .tolerance = settings->tolerance,
        .seed = settings->seed,
        .weights = weights,
        .bias = bias,
    };
    learn_solver_run (&problem, settings->threads);
    *passes = problem.passes;
    for (size_t r = 0; r < rows; r++)
        idf[r] = vocabulary.idf[vocabulary.seen[r]];
    model = intent_model_new (&settings->features, self->names, labels, err);
    if (model
        && intent_model_set_weights (model, rows, vocabulary.seen, idf, weights, bias,
                                     intent_features_idf (self->count, 0), err))
        intent_model_destroy (&model);
    learn_matrix_destroy (&matrix);
    learn_vocabulary_reset (&vocabulary);
    free (all);
    free (bias);
    free (weights);
    free (idf);
    return model;
}

static void
s_candidates_destroy (candidate_t *candidates, size_t count)
{
    for (size_t i = 0; candidates && i < count; i++) {
        free (candidates[i].predicted);
        free (candidates[i].margins);
    }
    free (candidates);
}

/* Every combination of grid's lists over settings (a list of none keeps the settings' value),
   in *count; NULL with err for a bad value or no memory. Candidates that share feature settings
   are neighbours, per_variant of them: the features are extracted once for them all. */
static candidate_t *
s_candidates (const trainer_t *self, const learn_train_settings_t *settings, const learn_train_grid_t *grid,
              size_t *count, size_t *per_variant, cv_error_t *err)
{
    size_t c_count = grid && grid->c_count ? grid->c_count : 1;
    size_t bits_count = grid && grid->bits_count ? grid->bits_count : 1;
    size_t char_count = grid && grid->char_count ? grid->char_count : 1;
    assert (c_count <= LEARN_TRAIN_GRID_MAX && bits_count <= LEARN_TRAIN_GRID_MAX
            && char_count <= LEARN_TRAIN_GRID_MAX);
    *count = c_count * bits_count * char_count;
    *per_variant = c_count;
    candidate_t *candidates = cv_calloc (*count, sizeof *candidates);
    size_t at = 0;
    for (size_t b = 0; b < bits_count; b++)
        for (size_t ch = 0; ch < char_count; ch++)
            for (size_t c = 0; c < c_count; c++, at++) {
                learn_train_settings_t *candidate = &candidates[at].settings;
                *candidate = *settings;
                if (grid && grid->bits_count)
                    candidate->features.bits = grid->bits[b];
                if (grid && grid->char_count) {
                    candidate->features.char_min = grid->char_min[ch];
                    candidate->features.char_max = grid->char_max[ch];
                }
                if (grid && grid->c_count)
                    candidate->c = grid->c[c];
                candidates[at].predicted = cv_malloc ((self->count + 1) * sizeof *candidates[at].predicted);
                candidates[at].margins = cv_malloc ((self->count + 1) * sizeof *candidates[at].margins);
                if (learn_train_settings_check (candidate, err)) {
                    cv_error_prefix (err, "grid");
                    s_candidates_destroy (candidates, *count);
                    return NULL;
                }
            }
    return candidates;
}

/* Calibrates model on candidate's out-of-fold predictions and sets its threshold; fills report's
   evaluation. */
static int
s_finish (const trainer_t *self, intent_model_t *model, const candidate_t *candidate, learn_train_report_t *report,
          cv_error_t *err)
{
    bool *correct = cv_malloc (self->count * sizeof *correct);
    float *confidences = cv_malloc (self->count * sizeof *confidences);
    int rc = -1;
    for (size_t i = 0; i < self->count; i++)
        correct[i] = candidate->predicted[i] == self->labels[i];
    report->knots = learn_calibration_fit (model, candidate->margins, correct, self->count, err);
    if (report->knots > 0) {
        for (size_t i = 0; i < self->count; i++)
            confidences[i] = intent_model_calibrate (model, candidate->margins[i]);
        rc = 0;
        for (size_t i = 0; rc == 0 && i < LEARN_TRAIN_FAST_PATHS; i++)
            rc = learn_metrics_fast_path (confidences, correct, self->count, s_fast_path_coverages[i],
                                          &report->fast_path[i], err);
        if (rc == 0)
            rc = learn_metrics_fast_path (confidences, correct, self->count, candidate->settings.coverage,
                                          &report->chosen, err);
        if (rc == 0)
            rc = intent_model_set_threshold (model, (float) candidate->settings.coverage,
                                             (float) report->chosen.threshold, err);
    }
    free (correct);
    free (confidences);
    return rc;
}

intent_model_t *
learn_train_fit (const learn_examples_t *examples, const learn_train_settings_t *settings,
                 const learn_train_grid_t *grid, learn_train_progress_fn *progress, void *arg,
                 learn_train_report_t *report, cv_error_t *err)
{
    assert (examples && settings);
    const trainer_t trainer = {
        .examples = examples,
        .count = learn_examples_size (examples),
        .labels = learn_examples_labels (examples),
        .names = learn_examples_names (examples),
        .name_count = learn_examples_label_count (examples),
        .progress = progress,
        .progress_arg = arg,
    };
    const trainer_t *self = &trainer;
    if (learn_train_settings_check (settings, err))
        return NULL;
    if (self->name_count < 2) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%zu label%s: a model needs two or more", self->name_count,
                      self->name_count == 1 ? "" : "s");
        return NULL;
    }
    if (self->count < settings->folds) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%zu examples for %u folds", self->count, settings->folds);
        return NULL;
    }
    double started = s_now ();
    learn_train_report_t local;
    if (!report)
        report = &local;
    memset (report, 0, sizeof *report);

    size_t count, per_variant;
    candidate_t *candidates = s_candidates (self, settings, grid, &count, &per_variant, err);
    if (!candidates)
        return NULL;
    uint8_t *fold = cv_malloc (self->count * sizeof *fold);
    uint32_t *scratch = cv_malloc (self->count * sizeof *scratch);
    intent_model_t *model = NULL;
    s_folds (self, settings->folds, settings->seed, fold, scratch);
    s_progress (self, "%zu examples, %zu labels: %u-fold cross-validation of %zu setting%s", self->count,
                self->name_count, settings->folds, count, count == 1 ? "" : "s");

    for (size_t v = 0; v < count; v += per_variant) {
        learn_matrix_t *matrix = learn_matrix_new (self->examples, &candidates[v].settings.features);
        s_cross_validate (self, matrix, candidates + v, per_variant, fold, settings->folds, count > 1);
        learn_matrix_destroy (&matrix);
        for (size_t c = v; count > 1 && c < v + per_variant; c++) {
            const learn_train_settings_t *tried = &candidates[c].settings;
            s_progress (self, "settings %zu/%zu: c %g, bits %u, char %u-%u: accuracy %.4f, macro-F1 %.4f", c + 1, count,
                        tried->c, tried->features.bits, tried->features.char_min, tried->features.char_max,
                        candidates[c].accuracy, candidates[c].macro_f1);
        }
    }
    const candidate_t *best = &candidates[0];
    for (size_t c = 1; c < count; c++)
        if (candidates[c].accuracy > best->accuracy
            || (candidates[c].accuracy == best->accuracy && candidates[c].macro_f1 > best->macro_f1))
            best = &candidates[c];

    double fit_started = s_now ();
    model = s_fit_all (self, &best->settings, &report->passes, err);
    report->fit_seconds = s_now () - fit_started;
    if (model)
        s_progress (self, "final fit on all %zu examples: %.1f s, %u passes at most%s", self->count,
                    report->fit_seconds, report->passes,
                    report->passes >= best->settings.epochs ? " (the limit: raise --epochs)" : "");
    if (model && s_finish (self, model, best, report, err))
        intent_model_destroy (&model);
    if (model) {
        report->settings = best->settings;
        report->examples = self->count;
        report->labels = self->name_count;
        report->candidates = count;
        report->folds = settings->folds;
        memcpy (report->fold_accuracy, best->fold_accuracy, sizeof report->fold_accuracy);
        report->accuracy = best->accuracy;
        report->macro_f1 = best->macro_f1;
        report->rows = intent_model_rows (model);
        report->seconds = s_now () - started;
    }
    free (fold);
    free (scratch);
    s_candidates_destroy (candidates, count);
    return model;
}

/* --- self-test --- */

static void
s_print_progress (const char *line, void *arg)
{
    printf ("  %s: %s\n", (const char *) arg, line);
}

/* The share of texts (count of them) that model labels as labels says. */
static double
s_accuracy (const intent_model_t *model, const char *const *texts, const char *const *labels, size_t count)
{
    intent_scratch_t *scratch = intent_scratch_new (model);
    assert (scratch);
    size_t right = 0;
    for (size_t i = 0; i < count; i++) {
        intent_prediction_t prediction;
        intent_model_predict (model, scratch, texts[i], strlen (texts[i]), 1, &prediction);
        right += strcmp (prediction.top[0].name, labels[i]) == 0;
    }
    intent_scratch_destroy (&scratch);
    return (double) right / (double) count;
}

void
learn_train_test (bool verbose)
{
    cv_error_t err;
    learn_train_settings_t settings;
    learn_train_settings_default (&settings);
    assert (learn_train_settings_check (&settings, &err) == 0);
    learn_train_settings_t bad = settings;
    bad.c = 0;
    assert (learn_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "c") == 0);
    bad = settings, bad.folds = 1;
    assert (learn_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "folds") == 0);
    bad = settings, bad.coverage = 1.5;
    assert (learn_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "coverage") == 0);
    bad = settings, bad.threads = 0;
    assert (learn_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "threads") == 0);
    bad = settings, bad.features.bits = 4;
    assert (learn_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "bits") == 0);
    learn_train_grid_t grid;
    learn_train_grid_default (&grid);
    assert (grid.c_count == 3 && grid.char_count == 3 && grid.bits_count == 0);

    /* the fit on a tiny separable set: every training text right */
    static const char *const words[] = {"alpha", "bravo", "charlie"};
    static const char *const names[] = {"first", "second", "third"};
    static const char *const tails[] = {"red", "green", "blue", "one", "two", "three"};
    const char *texts[18], *labels[18];
    char storage[18][32];
    learn_examples_t *examples = learn_examples_new ();
    assert (examples);
    for (size_t i = 0; i < 18; i++) {
        snprintf (storage[i], sizeof storage[i], "%s %s", tails[i % 6], words[i / 6]);
        texts[i] = storage[i];
        labels[i] = names[i / 6];
        assert (learn_examples_add (examples, texts[i], strlen (texts[i]), labels[i], &err) == 0);
    }
    settings.features.bits = 12;
    settings.folds = 3;
    settings.c = 10;
    settings.threads = 2;
    learn_train_report_t report;
    intent_model_t *model = learn_train_fit (examples, &settings, NULL, NULL, NULL, &report, &err);
    assert (model);
    assert (s_accuracy (model, texts, labels, 18) == 1.0);
    assert (report.examples == 18 && report.labels == 3 && report.folds == 3 && report.candidates == 1);
    assert (report.accuracy == 1.0 && report.macro_f1 == 1.0); /* held out too: the words decide */
    assert (report.rows == intent_model_rows (model) && report.knots >= 1);
    assert (report.passes >= 1 && report.passes < settings.epochs);
    intent_model_destroy (&model);
    /* too few examples or labels */
    settings.folds = 19;
    assert (!learn_train_fit (examples, &settings, NULL, NULL, NULL, NULL, &err)
            && strstr (err.message, "18 examples for 19"));
    settings.folds = 3;
    learn_examples_t *lonely = learn_examples_new ();
    assert (learn_examples_add (lonely, "a", 1, "only", &err) == 0);
    assert (learn_examples_add (lonely, "b", 1, "only", &err) == 0);
    settings.folds = 2;
    assert (!learn_train_fit (lonely, &settings, NULL, NULL, NULL, NULL, &err) && strstr (err.message, "two or more"));
    learn_examples_destroy (&lonely);
    learn_examples_destroy (&examples);

    /* a slice of Banking77: the first 20 examples of each of its first 10 labels, 15 to train
       on and 5 held out */
    enum { LABELS = 10, PER_LABEL = 20, TRAIN_PER_LABEL = 15 };
    learn_examples_t *banking = learn_examples_new ();
    assert (learn_examples_load (banking, CONVEYOR_SOURCE_DIR "/data/banking77/train.csv", &err) == 0);
    const char *slice_texts[LABELS][PER_LABEL];
    size_t found[LABELS] = {0};
    for (size_t i = 0; i < learn_examples_size (banking); i++) {
        size_t size;
        const char *label;
        const char *text = learn_examples_example (banking, i, &size, &label);
        size_t index = learn_examples_labels (banking)[i];
        if (index < LABELS && found[index] < PER_LABEL)
            slice_texts[index][found[index]++] = text;
    }
    examples = learn_examples_new ();
    const char *held_texts[LABELS * (PER_LABEL - TRAIN_PER_LABEL)],
        *held_labels[LABELS * (PER_LABEL - TRAIN_PER_LABEL)];
    size_t held = 0;
    for (size_t label = 0; label < LABELS; label++) {
        assert (found[label] == PER_LABEL);
        const char *name = learn_examples_label (banking, label);
        for (size_t i = 0; i < PER_LABEL; i++)
            if (i < TRAIN_PER_LABEL)
                assert (learn_examples_add (examples, slice_texts[label][i], strlen (slice_texts[label][i]), name, &err)
                        == 0);
            else {
                held_texts[held] = slice_texts[label][i];
                held_labels[held++] = name;
            }
    }
    learn_train_settings_default (&settings);
    settings.threads = 2;
    model = learn_train_fit (examples, &settings, NULL, verbose ? s_print_progress : NULL, "slice", &report, &err);
    assert (model);
    /* The floor: halfway from the majority label's share of the held-out texts to all right. */
    double majority = (double) (PER_LABEL - TRAIN_PER_LABEL) / (double) held;
    double floor = (1.0 + majority) / 2.0;
    double accuracy = s_accuracy (model, held_texts, held_labels, held);
    if (verbose)
        printf ("  slice: held-out accuracy %.3f (floor %.3f), cross-validated %.3f, macro-F1 %.3f, threshold "
                "%.3f for %.0f%%\n",
                accuracy, floor, report.accuracy, report.macro_f1, report.chosen.threshold,
                100 * report.chosen.coverage);
    assert (accuracy > floor);
    assert (report.accuracy > floor);
    assert (report.chosen.covered >= settings.coverage);
    assert (intent_model_threshold (model) == (float) report.chosen.threshold);
    for (size_t i = 0; i < LEARN_TRAIN_FAST_PATHS; i++) {
        assert (report.fast_path[i].covered >= report.fast_path[i].coverage);
        assert (i == 0 || report.fast_path[i].threshold <= report.fast_path[i - 1].threshold);
    }

    /* deterministic: the same seed gives the same model, byte for byte, on any number of threads;
       a grid picks one of its candidates */
    settings.threads = 1;
    grid = (learn_train_grid_t){.c = {0.1, 1.0}, .c_count = 2, .bits = {12, 14}, .bits_count = 2};
    intent_model_t *again = learn_train_fit (examples, &settings, NULL, NULL, NULL, NULL, &err);
    assert (again);
    size_t size, again_size;
    uint8_t *bytes = intent_model_file_encode (model, &size);
    uint8_t *again_bytes = intent_model_file_encode (again, &again_size);
    assert (size == again_size && memcmp (bytes, again_bytes, size) == 0);
    free (bytes);
    free (again_bytes);
    intent_model_destroy (&again);
    settings.threads = 3;
    again = learn_train_fit (examples, &settings, &grid, NULL, NULL, &report, &err);
    assert (again && report.candidates == 4);
    assert (report.settings.c == 0.1 || report.settings.c == 1.0);
    assert (report.settings.features.bits == 12 || report.settings.features.bits == 14);
    assert (intent_model_features (again)->bits == report.settings.features.bits);
    intent_model_destroy (&again);
    grid.bits[0] = 40;
    assert (!learn_train_fit (examples, &settings, &grid, NULL, NULL, NULL, &err) && strstr (err.message, "grid"));

    intent_model_destroy (&model);
    learn_examples_destroy (&examples);
    learn_examples_destroy (&banking);
    if (verbose)
        printf ("learn_train: ok\n");
}
