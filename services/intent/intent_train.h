/* The intent model's trainer: labelled texts in, a calibrated intent_model_t out.

   Each label gets a linear SVM against the others (one-vs-rest), fitted by dual coordinate
   descent as liblinear does it (Hsieh et al., ICML 2008): L2-regularised, hinge or squared hinge
   loss, a bias feature, shrinking, coordinates visited in an order drawn from the seed. The labels
   are fitted on several threads; each label's problem and its random order are its own, so the
   model is the same, bit for bit, for a given seed and data whatever the number of threads.

   Every fit also runs stratified K-fold cross-validation: its out-of-fold predictions give the
   accuracy and macro-F1 reported, fit the confidence map (isotonic regression of "the best label
   was right" on the margin between the two best scores) and choose the threshold that keeps the
   asked-for share of traffic on the model. With a grid, each combination of its values is
   cross-validated and the most accurate one is fitted. Idf is computed from the training part of
   each fold, as it would be from the training file at prediction time.

   Progress goes to a callback: one line per fold (with a grid, per fold of each feature
   setting), one per grid candidate, one for the final fit; never more. */
#ifndef INTENT_TRAIN_H
#define INTENT_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "intent_features.h"
#include "intent_model.h"

#define INTENT_TRAIN_MAX_FOLDS 20
#define INTENT_TRAIN_GRID_MAX 8          /* values per hyper-parameter in a grid */
#define INTENT_TRAIN_FAST_PATHS 3        /* the report's fast path at 70, 80 and 90% coverage */
#define INTENT_TRAIN_MAX_THREADS 64

typedef enum {
    INTENT_TRAIN_HINGE,                  /* liblinear -s 3 */
    INTENT_TRAIN_SQUARED_HINGE           /* liblinear -s 1, its default */
} intent_train_loss_t;

/* What to fit and how; plain data. */
typedef struct {
    intent_features_settings_t features;
    intent_train_loss_t loss;
    double c;                /* the SVM's cost: larger follows the training data more closely */
    unsigned epochs;         /* passes of coordinate descent over the data, at most, per label */
    double tolerance;        /* stop when the projected gradients' spread is within this */
    uint64_t seed;           /* the folds and the order of coordinates */
    unsigned folds;          /* cross-validation folds, 2..INTENT_TRAIN_MAX_FOLDS */
    double coverage;         /* the share of traffic the model's threshold keeps on the fast path */
    unsigned threads;        /* labels fitted at once, 1..INTENT_TRAIN_MAX_THREADS */
} intent_train_settings_t;

/* Fills settings with the defaults chosen by cross-validation on Banking77. */
void intent_train_settings_default (intent_train_settings_t *settings);

/* Returns 0 when settings are usable, or -1 with err naming the setting that is not. */
int intent_train_settings_check (const intent_train_settings_t *settings, cv_error_t *err) CV_MUST_CHECK;

/* Values to try, each list in addition to none: a list of count 0 keeps the settings' value.
   Character n-gram ranges are pairs (char_min[i], char_max[i]). Plain data. */
typedef struct {
    double c[INTENT_TRAIN_GRID_MAX];
    size_t c_count;
    unsigned bits[INTENT_TRAIN_GRID_MAX];
    size_t bits_count;
    unsigned char_min[INTENT_TRAIN_GRID_MAX];
    unsigned char_max[INTENT_TRAIN_GRID_MAX];
    size_t char_count;
} intent_train_grid_t;

/* Fills grid with the small grid `conveyor train --cv` searches. */
void intent_train_grid_default (intent_train_grid_t *grid);

/* The fast path at one coverage. */
typedef struct {
    double coverage;         /* the share of queries asked for */
    double threshold;        /* the confidence at or above which a query stays on the model */
    double covered;          /* the share at or above it (ties can add a few) */
    double accuracy;         /* the accuracy on those */
} intent_train_fast_path_t;

/* What a fit found; plain data. */
typedef struct {
    intent_train_settings_t settings;    /* those fitted: the grid's best, with a grid */
    size_t examples, labels;
    size_t candidates;                   /* settings cross-validated */
    size_t folds;
    double fold_accuracy[INTENT_TRAIN_MAX_FOLDS];
    double accuracy;                     /* out of fold */
    double macro_f1;                     /* out of fold, the mean of the labels' F1 */
    intent_train_fast_path_t fast_path[INTENT_TRAIN_FAST_PATHS];   /* at 70, 80, 90% */
    intent_train_fast_path_t chosen;     /* at settings.coverage: the model's threshold */
    size_t knots;                        /* of the confidence map */
    size_t rows;                         /* buckets with weights in the model */
    unsigned passes;                     /* the most passes a label of the final fit took */
    double seconds;                      /* everything */
    double fit_seconds;                  /* the final fit alone */
} intent_train_report_t;

/* Receives one line of progress (no newline). */
typedef void (intent_train_progress_fn) (const char *line, void *arg);

typedef struct _intent_train_t intent_train_t;

/* A trainer with no examples. NULL only when memory runs out. */
intent_train_t *intent_train_new (void);
void intent_train_destroy (intent_train_t **self_p);

/* Sends progress lines to fn with arg; NULL for none (the default). */
void intent_train_set_progress (intent_train_t *self, intent_train_progress_fn *fn, void *arg);

/* Adds an example: size bytes of text (any bytes) and its label (NUL-terminated), copied. -1
   with err when the label is not a valid intent name (see intent_model_new) or would be one label
   too many, or memory runs out. */
int intent_train_add (intent_train_t *self, const char *text, size_t size, const char *label, cv_error_t *err)
    CV_MUST_CHECK;

/* Adds the examples of a CSV file (intent_csv) with columns `text` and `category` (others are
   ignored). A category that is not a valid intent name is made one: spaces become underscores,
   other characters outside [A-Za-z0-9_.:-] are dropped (Banking77's "reverted_card_payment?" is
   reverted_card_payment), and intent_train_label_source keeps it as written. -1 with err, naming
   the file and line, at the first row that is malformed, has an empty text, or a category that
   cannot be so named or would be named as another is; the examples before it are kept. */
int intent_train_load (intent_train_t *self, const char *path, cv_error_t *err) CV_MUST_CHECK;

size_t intent_train_size (const intent_train_t *self);
size_t intent_train_label_count (const intent_train_t *self);
/* Label index's name, in order of first appearance, or NULL past the end. */
const char *intent_train_label (const intent_train_t *self, size_t index);
/* Example index: its text (size bytes, NUL-terminated, borrowed) and its label's name (as the
   model names it, borrowed); NULL past the end. `conveyor eval` reads labelled files this way. */
const char *intent_train_example (const intent_train_t *self, size_t index, size_t *size, const char **label);
/* Label index as written in the data (where intent_train_load renamed it), or NULL past the end. */
const char *intent_train_label_source (const intent_train_t *self, size_t index);

/* Cross-validates settings (with grid: each combination of grid values over settings) with
   settings->folds folds, fits the best on every example and returns the calibrated model, with
   what was found in report (which may be NULL). NULL with err for bad settings, fewer than two
   labels or fewer examples than folds, or when memory runs out. */
intent_model_t *intent_train_fit (intent_train_t *self, const intent_train_settings_t *settings,
                                  const intent_train_grid_t *grid, intent_train_report_t *report, cv_error_t *err)
    CV_MUST_CHECK;

/* Chooses the fast path for coverage (0..1] over count predictions: their confidences and
   whether each was right. The threshold is the confidence of the prediction ranked at
   ceil(coverage * count), best first. -1 with err when count is 0 or coverage out of range. */
int intent_train_fast_path (const float *confidences, const bool *correct, size_t count, double coverage,
                            intent_train_fast_path_t *fast_path, cv_error_t *err) CV_MUST_CHECK;

void intent_train_test (bool verbose);

#endif
