/* The intent model's trainer: labelled examples in, a calibrated intent_model_t out.

   Each label gets a linear SVM against the others (learn_solver). Every fit also runs stratified
   K-fold cross-validation: its out-of-fold predictions give the accuracy and macro-F1 reported
   (learn_metrics), fit the confidence map (learn_calibration) and choose the threshold that keeps
   the asked-for share of traffic on the model. With a grid, each combination of its values is
   cross-validated and the most accurate one is fitted. Idf is computed from the training part of
   each fold (learn_matrix), as it would be from the training file at prediction time. The model is
   the same, bit for bit, for a given seed and data whatever the number of threads.

   Progress goes to a callback: one line per fold (with a grid, per fold of each feature
   setting), one per grid candidate, one for the final fit; never more. */
#ifndef LEARN_TRAIN_H
#define LEARN_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "intent_features.h"
#include "intent_model.h"
#include "learn_examples.h"
#include "learn_metrics.h"
#include "learn_solver.h"

#define LEARN_TRAIN_MAX_FOLDS 20
#define LEARN_TRAIN_GRID_MAX 8   /* values per hyper-parameter in a grid */
#define LEARN_TRAIN_FAST_PATHS 3 /* the report's fast path at 70, 80 and 90% coverage */
#define LEARN_TRAIN_MAX_THREADS LEARN_SOLVER_MAX_THREADS

/* What to fit and how; plain data. */
typedef struct {
    intent_features_settings_t features;
    learn_solver_loss_t loss;
    double c;         /* the SVM's cost: larger follows the training data more closely */
    unsigned epochs;  /* passes of coordinate descent over the data, at most, per label */
    double tolerance; /* stop when the projected gradients' spread is within this */
    uint64_t seed;    /* the folds and the order of coordinates */
    unsigned folds;   /* cross-validation folds, 2..LEARN_TRAIN_MAX_FOLDS */
    double coverage;  /* the share of traffic the model's threshold keeps on the fast path */
    unsigned threads; /* labels fitted at once, 1..LEARN_TRAIN_MAX_THREADS */
} learn_train_settings_t;

/* Fills settings with the defaults chosen by cross-validation on Banking77. */
void learn_train_settings_default (learn_train_settings_t *settings);

/* Returns 0 when settings are usable, or -1 with err naming the setting that is not. */
int learn_train_settings_check (const learn_train_settings_t *settings, cv_error_t *err) CV_MUST_CHECK;

/* Values to try, each list in addition to none: a list of count 0 keeps the settings' value.
   Character n-gram ranges are pairs (char_min[i], char_max[i]). Plain data. */
typedef struct {
    double c[LEARN_TRAIN_GRID_MAX];
    size_t c_count;
    unsigned bits[LEARN_TRAIN_GRID_MAX];
    size_t bits_count;
    unsigned char_min[LEARN_TRAIN_GRID_MAX];
    unsigned char_max[LEARN_TRAIN_GRID_MAX];
    size_t char_count;
} learn_train_grid_t;

/* Fills grid with the small grid `conveyor train --cv` searches. */
void learn_train_grid_default (learn_train_grid_t *grid);

/* What a fit found; plain data. */
typedef struct {
    learn_train_settings_t settings; /* those fitted: the grid's best, with a grid */
    size_t examples, labels;
    size_t candidates; /* settings cross-validated */
    size_t folds;
    double fold_accuracy[LEARN_TRAIN_MAX_FOLDS];
    double accuracy;                                             /* out of fold */
    double macro_f1;                                             /* out of fold, the mean of the labels' F1 */
    learn_metrics_fast_path_t fast_path[LEARN_TRAIN_FAST_PATHS]; /* at 70, 80, 90% */
    learn_metrics_fast_path_t chosen;                            /* at settings.coverage: the model's threshold */
    size_t knots;                                                /* of the confidence map */
    size_t rows;                                                 /* buckets with weights in the model */
    unsigned passes;                                             /* the most passes a label of the final fit took */
    double seconds;                                              /* everything */
    double fit_seconds;                                          /* the final fit alone */
} learn_train_report_t;

/* Receives one line of progress (no newline). */
typedef void (learn_train_progress_fn) (const char *line, void *arg);

/* Cross-validates settings (with grid: each combination of grid values over settings) with
   settings->folds folds on examples, fits the best on every example and returns the calibrated
   model (the caller's), with what was found in report (which may be NULL). Progress lines go to
   progress with arg (NULL for none). NULL with err for bad settings, fewer than two labels or
   fewer examples than folds. */
intent_model_t *learn_train_fit (const learn_examples_t *examples, const learn_train_settings_t *settings,
                                 const learn_train_grid_t *grid, learn_train_progress_fn *progress, void *arg,
                                 learn_train_report_t *report, cv_error_t *err) CV_MUST_CHECK;

void learn_train_test (bool verbose);

#endif
