/* The intent model's trainer: cross-validated one-vs-rest linear SVMs by dual coordinate descent. */
#include "intent_train.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "intent_csv.h"
#include "intent_model_file.h"

#define BIAS 1.0                 /* the value of the constant feature that carries the bias */
#define PROGRESS_MAX_BYTES 512

static const double s_fast_path_coverages[INTENT_TRAIN_FAST_PATHS] = {0.7, 0.8, 0.9};

struct _intent_train_t {
    char **texts;                /* the examples, owned */
    size_t *sizes;
    uint32_t *labels;            /* index into names */
    size_t count, capacity;
    char **names;                /* the labels, in order of first appearance */
    char **sources;              /* each as written in the data */
    size_t name_count, name_capacity;
    intent_train_progress_fn *progress;
    void *progress_arg;
};

/* The features of every example under one feature setting: a sparse matrix, one row an example. */
typedef struct {
    size_t rows;
    size_t *offsets;             /* rows + 1: row r is [offsets[r], offsets[r + 1]) */
    uint32_t *buckets;
    float *tf;                   /* sublinear term frequency */
    float *values;               /* tf times idf, each row L2-normalised: set by s_matrix_weigh */
    double *xx;                  /* each row's squared norm, bias included */
} matrix_t;

/* The buckets of a training set and their idf. */
typedef struct {
    uint32_t *df;                /* 2^bits: in how many training rows each bucket is */
    float *idf;                  /* 2^bits */
    uint32_t *seen;              /* the buckets with df > 0, increasing */
    size_t seen_count;
} vocabulary_t;

/* One-vs-rest SVMs for every label on a training set; the labels are shared out among threads. */
typedef struct {
    const matrix_t *matrix;
    const uint32_t *labels;      /* per example */
    size_t label_count;
    const uint32_t *train;       /* example indices */
    size_t train_count;
    const uint32_t *test;        /* scored after fitting; may be none */
    size_t test_count;
    const vocabulary_t *vocabulary;
    size_t buckets;              /* 2^bits */
    intent_train_loss_t loss;
    double c;
    unsigned epochs;
    double tolerance;
    uint64_t seed;
    float *test_scores;          /* out: [test][label] */
    float *weights;              /* out, or NULL: [seen row][label] */
    float *bias;                 /* out: per label */
    atomic_size_t next_label;
    atomic_uint passes;          /* the most any label took */
} problem_t;

/* One thread's working memory for problem_t. */
typedef struct {
    problem_t *problem;
    double *w;                   /* per bucket, zero between labels */
    double *alpha;               /* per training example */
    uint32_t *index;
} worker_t;

/* A combination of settings being cross-validated, and its out-of-fold predictions. */
typedef struct {
    intent_train_settings_t settings;
    uint32_t *predicted;         /* per example */
    float *margins;              /* per example */
    double fold_accuracy[INTENT_TRAIN_MAX_FOLDS];
    double accuracy, macro_f1;
} candidate_t;

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static void
s_progress (const intent_train_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_progress (const intent_train_t *self, const char *format, ...)
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

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t
s_random (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void
s_shuffle (uint32_t *items, size_t count, uint64_t *state)
{
    for (size_t i = 0; i + 1 < count; i++) {
        size_t j = i + (size_t) (s_random (state) % (count - i));
        uint32_t item = items[i];
        items[i] = items[j];
        items[j] = item;
    }
}

void
intent_train_settings_default (intent_train_settings_t *settings)
{
    assert (settings);
    intent_features_settings_default (&settings->features);
    settings->loss = INTENT_TRAIN_SQUARED_HINGE;
    settings->c = 2.0;
    settings->epochs = 200;
    settings->tolerance = 0.1;
    settings->seed = 42;
    settings->folds = 5;
    settings->coverage = 0.8;
    settings->threads = 1;
}

int
intent_train_settings_check (const intent_train_settings_t *settings, cv_error_t *err)
{
    assert (settings);
    if (intent_features_settings_check (&settings->features, err))
        return -1;
    if (settings->loss != INTENT_TRAIN_HINGE && settings->loss != INTENT_TRAIN_SQUARED_HINGE)
        return cv_error_set (err, CV_ERR_INVALID, "loss", "unknown loss %d", (int) settings->loss);
    if (!(settings->c > 0 && settings->c <= 1e6))
        return cv_error_set (err, CV_ERR_INVALID, "c", "c %g is not in (0, 1e6]", settings->c);
    if (settings->epochs < 1 || settings->epochs > 100000)
        return cv_error_set (err, CV_ERR_INVALID, "epochs", "epochs %u is not in 1..100000", settings->epochs);
    if (!(settings->tolerance > 0 && settings->tolerance < 1e3))
        return cv_error_set (err, CV_ERR_INVALID, "tolerance", "tolerance %g is not in (0, 1000)",
                             settings->tolerance);
    if (settings->folds < 2 || settings->folds > INTENT_TRAIN_MAX_FOLDS)
        return cv_error_set (err, CV_ERR_INVALID, "folds", "folds %u is not in 2..%d", settings->folds,
                             INTENT_TRAIN_MAX_FOLDS);
    if (!(settings->coverage > 0 && settings->coverage <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "coverage", "coverage %g is not in (0, 1]", settings->coverage);
    if (settings->threads < 1 || settings->threads > INTENT_TRAIN_MAX_THREADS)
        return cv_error_set (err, CV_ERR_INVALID, "threads", "threads %u is not in 1..%d", settings->threads,
                             INTENT_TRAIN_MAX_THREADS);
    return 0;
}

void
intent_train_grid_default (intent_train_grid_t *grid)
{
    assert (grid);
    *grid = (intent_train_grid_t) {
        .c = {1.0, 2.0, 4.0},
        .c_count = 3,
        .char_min = {1, 1, 2},
        .char_max = {3, 4, 5},
        .char_count = 3,
    };
}

intent_train_t *
intent_train_new (void)
{
    return calloc (1, sizeof (intent_train_t));
}

void
intent_train_destroy (intent_train_t **self_p)
{
    assert (self_p);
    intent_train_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->texts[i]);
    for (size_t i = 0; i < self->name_count; i++) {
        free (self->names[i]);
        free (self->sources[i]);
    }
    free (self->sources);
    free (self->texts);
    free (self->sizes);
    free (self->labels);
    free (self->names);
    free (self);
    *self_p = NULL;
}

void
intent_train_set_progress (intent_train_t *self, intent_train_progress_fn *fn, void *arg)
{
    assert (self);
    self->progress = fn;
    self->progress_arg = arg;
}

/* label with its spaces made underscores and its other characters outside [A-Za-z0-9_.:-]
   dropped, into name (of CV_NAME_MAX_BYTES + 1); false when nothing valid is left or too much. */
static bool
s_clean_label (const char *label, char *name)
{
    size_t used = 0;
    for (const char *c = label; *c; c++) {
        char kept = *c == ' ' || *c == '\t' ? '_' : *c;
        if (!intent_model_label_valid (&kept, 1))
            continue;
        if (used == CV_NAME_MAX_BYTES)
            return false;
        name[used++] = kept;
    }
    name[used] = '\0';
    return used > 0;
}

/* The index of label (as written in the data), added if new; -1 with err. With rename, a label
   that is not a valid intent name is cleaned into one (s_clean_label) rather than refused. */
static int
s_label (intent_train_t *self, const char *label, bool rename, cv_error_t *err)
{
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->sources[i], label) == 0)
            return (int) i;
    char name[CV_NAME_MAX_BYTES + 1];
    if (intent_model_label_valid (label, strlen (label)))
        snprintf (name, sizeof name, "%s", label);
    else if (!rename || !s_clean_label (label, name))
        return cv_error_set (err, CV_ERR_INVALID, "label",
                             "label '%.80s' is not a valid intent name (1..%d of A-Z a-z 0-9 _ . : -)", label,
                             CV_NAME_MAX_BYTES);
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->names[i], name) == 0)
            return cv_error_set (err, CV_ERR_INVALID, "label", "labels '%.80s' and '%.80s' would both be named %s",
                                 self->sources[i], label, name);
    if (self->name_count == INTENT_MODEL_MAX_LABELS)
        return cv_error_set (err, CV_ERR_INVALID, "label", "label '%s' is one more than the %d a model may have",
                             name, INTENT_MODEL_MAX_LABELS);
    if (self->name_count == self->name_capacity) {
        size_t capacity = self->name_capacity ? 2 * self->name_capacity : 64;
        char **names = realloc (self->names, capacity * sizeof *names);
        if (names)
            self->names = names;
        char **sources = realloc (self->sources, capacity * sizeof *sources);
        if (sources)
            self->sources = sources;
        if (!names || !sources)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        self->name_capacity = capacity;
    }
    self->names[self->name_count] = strdup (name);
    self->sources[self->name_count] = strdup (label);
    if (!self->names[self->name_count] || !self->sources[self->name_count]) {
        free (self->names[self->name_count]);
        free (self->sources[self->name_count]);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    }
    return (int) self->name_count++;
}

/* Adds an example whose label may be renamed. */
static int
s_add (intent_train_t *self, const char *text, size_t size, const char *label, bool rename, cv_error_t *err)
{
    int index = s_label (self, label, rename, err);
    if (index < 0)
        return -1;
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? 2 * self->capacity : 1024;
        char **texts = realloc (self->texts, capacity * sizeof *texts);
        if (texts)
            self->texts = texts;
        size_t *sizes = realloc (self->sizes, capacity * sizeof *sizes);
        if (sizes)
            self->sizes = sizes;
        uint32_t *labels = realloc (self->labels, capacity * sizeof *labels);
        if (labels)
            self->labels = labels;
        if (!texts || !sizes || !labels)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        self->capacity = capacity;
    }
    char *copy = malloc (size + 1);
    if (!copy)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    if (size)
        memcpy (copy, text, size);
    copy[size] = '\0';
    self->texts[self->count] = copy;
    self->sizes[self->count] = size;
    self->labels[self->count] = (uint32_t) index;
    self->count++;
    return 0;
}

int
intent_train_add (intent_train_t *self, const char *text, size_t size, const char *label, cv_error_t *err)
{
    assert (self && label);
    assert (text || size == 0);
    return s_add (self, text, size, label, false, err);
}

int
intent_train_load (intent_train_t *self, const char *path, cv_error_t *err)
{
    assert (self && path);
    intent_csv_t *csv = intent_csv_load (path, err);
    if (!csv)
        return -1;
    int rc = intent_csv_read_header (csv, err);
    int text = intent_csv_column (csv, "text"), category = intent_csv_column (csv, "category");
    if (rc == 0 && (text < 0 || category < 0)) {
        size_t columns = intent_csv_columns (csv);
        rc = cv_error_set (err, CV_ERR_INVALID, NULL,
                           "line 1: the header must name the columns text and category; it has '%.60s'%s%.60s%s%s",
                           intent_csv_column_name (csv, 0), columns > 1 ? ", '" : "",
                           columns > 1 ? intent_csv_column_name (csv, 1) : "", columns > 1 ? "'" : "",
                           columns > 2 ? ", ..." : "");
    }
    while (rc == 0) {
        int next = intent_csv_next (csv, err);
        if (next <= 0) {
            rc = next;
            break;
        }
        size_t size;
        const char *example = intent_csv_field (csv, (size_t) text, &size);
        const char *label = intent_csv_field (csv, (size_t) category, NULL);
        if (size == 0)
            rc = cv_error_set (err, CV_ERR_INVALID, "text", "line %zu: the text is empty", intent_csv_line (csv));
        else if (s_add (self, example, size, label, true, err))
            rc = -1, cv_error_prefix (err, "line %zu", intent_csv_line (csv));
    }
    if (rc)
        cv_error_prefix (err, "%s", path);
    intent_csv_destroy (&csv);
    return rc;
}

size_t
intent_train_size (const intent_train_t *self)
{
    assert (self);
    return self->count;
}

size_t
intent_train_label_count (const intent_train_t *self)
{
    assert (self);
    return self->name_count;
}

const char *
intent_train_label (const intent_train_t *self, size_t index)
{
    assert (self);
    return index < self->name_count ? self->names[index] : NULL;
}

const char *
intent_train_example (const intent_train_t *self, size_t index, size_t *size, const char **label)
{
    assert (self && size && label);
    if (index >= self->count)
        return NULL;
    *size = self->sizes[index];
    *label = self->names[self->labels[index]];
    return self->texts[index];
}

const char *
intent_train_label_source (const intent_train_t *self, size_t index)
{
    assert (self);
    return index < self->name_count ? self->sources[index] : NULL;
}

/* --- features --- */

static void
s_matrix_destroy (matrix_t **matrix_p)
{
    matrix_t *matrix = *matrix_p;
    if (!matrix)
        return;
    free (matrix->offsets);
    free (matrix->buckets);
    free (matrix->tf);
    free (matrix->values);
    free (matrix->xx);
    free (matrix);
    *matrix_p = NULL;
}

/* Extracts the features of every example; NULL when memory runs out. */
static matrix_t *
s_matrix_new (const intent_train_t *self, const intent_features_settings_t *settings)
{
    matrix_t *matrix = calloc (1, sizeof *matrix);
    intent_features_t *features = intent_features_new (settings);
    size_t capacity = 64 * self->count + INTENT_FEATURES_MAX;
    if (matrix) {
        matrix->rows = self->count;
        matrix->offsets = malloc ((self->count + 1) * sizeof *matrix->offsets);
        matrix->buckets = malloc (capacity * sizeof *matrix->buckets);
        matrix->tf = malloc (capacity * sizeof *matrix->tf);
        matrix->xx = malloc ((self->count ? self->count : 1) * sizeof *matrix->xx);
    }
    bool ok = matrix && features && matrix->offsets && matrix->buckets && matrix->tf && matrix->xx;
    size_t used = 0;
    for (size_t row = 0; ok && row < self->count; row++) {
        matrix->offsets[row] = used;
        size_t count = intent_features_extract (features, self->texts[row], self->sizes[row]);
        if (used + count > capacity) {
            capacity = 2 * capacity + count;
            uint32_t *buckets = realloc (matrix->buckets, capacity * sizeof *buckets);
            if (buckets)
                matrix->buckets = buckets;
            float *tf = realloc (matrix->tf, capacity * sizeof *tf);
            if (tf)
                matrix->tf = tf;
            if (!buckets || !tf) {
                ok = false;
                break;
            }
        }
        const uint32_t *buckets = intent_features_buckets (features);
        const uint32_t *counts = intent_features_counts (features);
        for (size_t i = 0; i < count; i++) {
            matrix->buckets[used + i] = buckets[i];
            matrix->tf[used + i] = intent_features_tf (counts[i]);
        }
        used += count;
    }
    if (ok) {
        matrix->offsets[self->count] = used;
        ok = (matrix->values = malloc ((used ? used : 1) * sizeof *matrix->values)) != NULL;
    }
    intent_features_destroy (&features);
    if (!ok)
        s_matrix_destroy (&matrix);
    return matrix;
}

static void
s_vocabulary_destroy (vocabulary_t *vocabulary)
{
    free (vocabulary->df);
    free (vocabulary->idf);
    free (vocabulary->seen);
    memset (vocabulary, 0, sizeof *vocabulary);
}

/* Counts the buckets of the training rows (count of them, at train) into vocabulary; -1 when
   memory runs out. Buckets are distinct within a row, so a bucket's count is its df. */
static int
s_vocabulary (const matrix_t *matrix, const uint32_t *train, size_t count, size_t buckets, vocabulary_t *vocabulary)
{
    vocabulary->df = calloc (buckets, sizeof *vocabulary->df);
    vocabulary->idf = malloc (buckets * sizeof *vocabulary->idf);
    if (!vocabulary->df || !vocabulary->idf)
        return -1;
    for (size_t t = 0; t < count; t++) {
        uint32_t row = train[t];
        for (size_t i = matrix->offsets[row]; i < matrix->offsets[row + 1]; i++)
            vocabulary->df[matrix->buckets[i]]++;
    }
    size_t seen = 0;
    for (size_t bucket = 0; bucket < buckets; bucket++)
        seen += vocabulary->df[bucket] > 0;
    vocabulary->seen = malloc ((seen ? seen : 1) * sizeof *vocabulary->seen);
    if (!vocabulary->seen)
        return -1;
    vocabulary->seen_count = 0;
    for (size_t bucket = 0; bucket < buckets; bucket++) {
        vocabulary->idf[bucket] = intent_features_idf (count, vocabulary->df[bucket]);
        if (vocabulary->df[bucket])
            vocabulary->seen[vocabulary->seen_count++] = (uint32_t) bucket;
    }
    return 0;
}

/* Weighs every row of matrix with vocabulary's idf: tf times idf, L2-normalised, exactly as
   intent_model_predict does. */
static void
s_matrix_weigh (matrix_t *matrix, const vocabulary_t *vocabulary)
{
    for (size_t row = 0; row < matrix->rows; row++) {
        size_t start = matrix->offsets[row], end = matrix->offsets[row + 1];
        double norm = 0;
        for (size_t i = start; i < end; i++) {
            float value = matrix->tf[i] * vocabulary->idf[matrix->buckets[i]];
            matrix->values[i] = value;
            norm += (double) value * value;
        }
        float scale = norm > 0 ? (float) (1.0 / sqrt (norm)) : 0;
        double xx = BIAS * BIAS;
        for (size_t i = start; i < end; i++) {
            matrix->values[i] *= scale;
            xx += (double) matrix->values[i] * matrix->values[i];
        }
        matrix->xx[row] = xx;
    }
}

/* --- the solver --- */

static inline double
s_dot (const matrix_t *matrix, uint32_t row, const double *w)
{
    double dot = 0;
    for (size_t i = matrix->offsets[row]; i < matrix->offsets[row + 1]; i++)
        dot += w[matrix->buckets[i]] * matrix->values[i];
    return dot;
}

/* Fits label against the rest by dual coordinate descent (liblinear's solve_l2r_l1l2_svc, with
   shrinking), then scores the test rows and writes the weights out. Returns the passes taken. */
static unsigned
s_solve (worker_t *worker, size_t label)
{
    problem_t *problem = worker->problem;
    const matrix_t *matrix = problem->matrix;
    size_t count = problem->train_count;
    double *w = worker->w, *alpha = worker->alpha, bias = 0;
    uint32_t *index = worker->index;
    bool hinge = problem->loss == INTENT_TRAIN_HINGE;
    double upper = hinge ? problem->c : INFINITY;
    double diagonal = hinge ? 0 : 0.5 / problem->c;
    for (size_t i = 0; i < count; i++) {
        alpha[i] = 0;
        index[i] = (uint32_t) i;
    }
    uint64_t state = problem->seed ^ (0xD1B54A32D192ED03ull * (label + 1));
    size_t active = count;
    double old_max = INFINITY, old_min = -INFINITY;
    unsigned pass = 0;
    while (pass < problem->epochs) {
        double new_max = -INFINITY, new_min = INFINITY;
        s_shuffle (index, active, &state);
        size_t s = 0;
        while (s < active) {
            uint32_t i = index[s];
            uint32_t row = problem->train[i];
            double y = problem->labels[row] == label ? 1 : -1;
            double gradient = y * (s_dot (matrix, row, w) + bias * BIAS) - 1 + alpha[i] * diagonal;
            double projected = 0;
            if (alpha[i] == 0) {
                if (gradient > old_max) {
                    /* bound and likely to stay so: leave it out until the check at the end */
                    index[s] = index[--active];
                    index[active] = i;
                    continue;
                }
                if (gradient < 0)
                    projected = gradient;
            } else if (alpha[i] == upper) {
                if (gradient < old_min) {
                    index[s] = index[--active];
                    index[active] = i;
                    continue;
                }
                if (gradient > 0)
                    projected = gradient;
            } else
                projected = gradient;
            new_max = fmax (new_max, projected);
            new_min = fmin (new_min, projected);
            if (fabs (projected) > 1e-12) {
                double previous = alpha[i];
                alpha[i] = fmin (fmax (alpha[i] - gradient / (matrix->xx[row] + diagonal), 0), upper);
                double step = (alpha[i] - previous) * y;
                for (size_t f = matrix->offsets[row]; f < matrix->offsets[row + 1]; f++)
                    w[matrix->buckets[f]] += step * matrix->values[f];
                bias += step * BIAS;
            }
            s++;
        }
        pass++;
        if (new_max - new_min <= problem->tolerance) {
            if (active == count)
                break;
            /* converged on the active set: check every coordinate once more */
            active = count;
            old_max = INFINITY;
            old_min = -INFINITY;
            continue;
        }
        old_max = new_max <= 0 ? INFINITY : new_max;
        old_min = new_min >= 0 ? -INFINITY : new_min;
    }

    size_t labels = problem->label_count;
    for (size_t t = 0; t < problem->test_count; t++)
        problem->test_scores[t * labels + label] = (float) (s_dot (matrix, problem->test[t], w) + bias * BIAS);
    const vocabulary_t *vocabulary = problem->vocabulary;
    for (size_t r = 0; r < vocabulary->seen_count; r++) {
        if (problem->weights)
            problem->weights[r * labels + label] = (float) w[vocabulary->seen[r]];
        w[vocabulary->seen[r]] = 0; /* every bucket a training row has: w is zero again */
    }
    problem->bias[label] = (float) (bias * BIAS);
    return pass;
}

static void *
s_worker (void *arg)
{
    worker_t *worker = arg;
    problem_t *problem = worker->problem;
    size_t label;
    while ((label = atomic_fetch_add (&problem->next_label, 1)) < problem->label_count) {
        unsigned passes = s_solve (worker, label);
        unsigned most = atomic_load (&problem->passes);
        while (passes > most && !atomic_compare_exchange_weak (&problem->passes, &most, passes))
            ;
    }
    return NULL;
}

/* Solves problem on threads threads; -1 with err when memory or threads run out. */
static int
s_run (problem_t *problem, unsigned threads, cv_error_t *err)
{
    if (threads > problem->label_count)
        threads = (unsigned) problem->label_count;
    atomic_init (&problem->next_label, 0);
    atomic_init (&problem->passes, 0);
    worker_t workers[INTENT_TRAIN_MAX_THREADS];
    pthread_t ids[INTENT_TRAIN_MAX_THREADS];
    size_t count = problem->train_count ? problem->train_count : 1;
    unsigned ready = 0;
    for (; ready < threads; ready++) {
        worker_t *worker = &workers[ready];
        worker->problem = problem;
        worker->w = calloc (problem->buckets, sizeof *worker->w);
        worker->alpha = malloc (count * sizeof *worker->alpha);
        worker->index = malloc (count * sizeof *worker->index);
        if (!worker->w || !worker->alpha || !worker->index) {
            free (worker->w);
            free (worker->alpha);
            free (worker->index);
            break;
        }
    }
    int rc = 0;
    if (ready < threads)
        rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %u solvers", threads);
    unsigned started = 1;
    for (; rc == 0 && started < threads; started++)
        if (pthread_create (&ids[started], NULL, s_worker, &workers[started])) {
            /* fewer threads do the same work */
            break;
        }
    if (rc == 0)
        s_worker (&workers[0]);
    for (unsigned i = 1; rc == 0 && i < started; i++)
        pthread_join (ids[i], NULL);
    for (unsigned i = 0; i < ready; i++) {
        free (workers[i].w);
        free (workers[i].alpha);
        free (workers[i].index);
    }
    return rc;
}

/* --- evaluation --- */

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

/* Accuracy and macro-F1 of predicted against truth; -1 when memory runs out. */
static int
s_evaluate (const uint32_t *truth, const uint32_t *predicted, size_t count, size_t labels, double *accuracy,
            double *macro_f1)
{
    size_t *tp = calloc (labels, sizeof *tp), *fp = calloc (labels, sizeof *fp), *fn = calloc (labels, sizeof *fn);
    if (!tp || !fp || !fn) {
        free (tp), free (fp), free (fn);
        return -1;
    }
    size_t right = 0;
    for (size_t i = 0; i < count; i++) {
        if (truth[i] == predicted[i]) {
            right++;
            tp[truth[i]]++;
        } else {
            fp[predicted[i]]++;
            fn[truth[i]]++;
        }
    }
    double f1 = 0;
    for (size_t label = 0; label < labels; label++) {
        size_t denominator = 2 * tp[label] + fp[label] + fn[label];
        f1 += denominator ? 2.0 * (double) tp[label] / (double) denominator : 0;
    }
    *accuracy = count ? (double) right / (double) count : 0;
    *macro_f1 = labels ? f1 / (double) labels : 0;
    free (tp), free (fp), free (fn);
    return 0;
}

typedef struct {
    float key;
    bool correct;
} ranked_t;

static int
s_by_key_descending (const void *a, const void *b)
{
    float x = ((const ranked_t *) a)->key, y = ((const ranked_t *) b)->key;
    return (x < y) - (x > y);
}

static int
s_by_key_ascending (const void *a, const void *b)
{
    return -s_by_key_descending (a, b);
}

int
intent_train_fast_path (const float *confidences, const bool *correct, size_t count, double coverage,
                        intent_train_fast_path_t *fast_path, cv_error_t *err)
{
    assert (fast_path);
    assert (count == 0 || (confidences && correct));
    if (count == 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "no predictions to choose a threshold from");
    if (!(coverage > 0 && coverage <= 1))
        return cv_error_set (err, CV_ERR_INVALID, "coverage", "coverage %g is not in (0, 1]", coverage);
    ranked_t *ranked = malloc (count * sizeof *ranked);
    if (!ranked)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < count; i++)
        ranked[i] = (ranked_t) {confidences[i], correct[i]};
    qsort (ranked, count, sizeof *ranked, s_by_key_descending);
    /* the rank that keeps the share asked for; the tolerance absorbs 0.7 * 10 = 7.000000001 */
    size_t keep = (size_t) ceil (coverage * (double) count - 1e-9);
    keep = keep < 1 ? 1 : keep > count ? count : keep;
    float threshold = ranked[keep - 1].key;
    size_t covered = 0, right = 0;
    for (size_t i = 0; i < count && ranked[i].key >= threshold; i++) {
        covered++;
        right += ranked[i].correct;
    }
    free (ranked);
    *fast_path = (intent_train_fast_path_t) {
        .coverage = coverage,
        .threshold = threshold,
        .covered = (double) covered / (double) count,
        .accuracy = (double) right / (double) covered,
    };
    return 0;
}

/* Fits the confidence map on out-of-fold predictions: the isotonic regression of "right" on the
   margin (pool adjacent violators), its blocks' mean margins and accuracies as the knots. Sets it
   on model; returns the number of knots, or 0 with err. */
static size_t
s_calibrate (intent_model_t *model, const float *margins, const bool *correct, size_t count, cv_error_t *err)
{
    assert (count > 0);
    ranked_t *points = malloc (count * sizeof *points);
    double *x = malloc (count * sizeof *x), *y = malloc (count * sizeof *y), *weight = malloc (count * sizeof *weight);
    float *knot_x = malloc (count * sizeof *knot_x), *knot_y = malloc (count * sizeof *knot_y);
    size_t knots = 0;
    if (!points || !x || !y || !weight || !knot_x || !knot_y) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        points[i] = (ranked_t) {margins[i], correct[i]};
    qsort (points, count, sizeof *points, s_by_key_ascending);
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
done:
    free (points);
    free (x), free (y), free (weight);
    free (knot_x), free (knot_y);
    return knots;
}

/* --- the fit --- */

/* Assigns each example a fold, stratified: each label's examples, shuffled, are dealt round the
   folds, each label starting where the one before stopped. */
static void
s_folds (const intent_train_t *self, unsigned folds, uint64_t seed, uint8_t *fold, uint32_t *scratch)
{
    uint64_t state = seed;
    size_t next = 0;
    for (uint32_t label = 0; label < self->name_count; label++) {
        size_t members = 0;
        for (size_t i = 0; i < self->count; i++)
            if (self->labels[i] == label)
                scratch[members++] = (uint32_t) i;
        s_shuffle (scratch, members, &state);
        for (size_t m = 0; m < members; m++)
            fold[scratch[m]] = (uint8_t) ((next + m) % folds);
        next = (next + members) % folds;
    }
}

/* Cross-validates the candidates (count of them, sharing feature settings) on matrix. */
static int
s_cross_validate (const intent_train_t *self, matrix_t *matrix, candidate_t *candidates, size_t count,
                  const uint8_t *fold, unsigned folds, bool grid, cv_error_t *err)
{
    const intent_train_settings_t *first = &candidates[0].settings;
    size_t labels = self->name_count, buckets = (size_t) 1 << first->features.bits;
    uint32_t *train = malloc (self->count * sizeof *train), *test = malloc (self->count * sizeof *test);
    float *scores = malloc ((self->count * labels + 1) * sizeof *scores), *bias = malloc (labels * sizeof *bias);
    int rc = 0;
    if (!train || !test || !scores || !bias)
        rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    for (unsigned f = 0; rc == 0 && f < folds; f++) {
        double started = s_now ();
        size_t train_count = 0, test_count = 0;
        for (size_t i = 0; i < self->count; i++)
            if (fold[i] == f)
                test[test_count++] = (uint32_t) i;
            else
                train[train_count++] = (uint32_t) i;
        vocabulary_t vocabulary = {0};
        if (s_vocabulary (matrix, train, train_count, buckets, &vocabulary)) {
            s_vocabulary_destroy (&vocabulary);
            rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
            break;
        }
        s_matrix_weigh (matrix, &vocabulary);
        for (size_t c = 0; rc == 0 && c < count; c++) {
            candidate_t *candidate = &candidates[c];
            problem_t problem = {
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
            rc = s_run (&problem, candidate->settings.threads, err);
            size_t right = 0;
            for (size_t t = 0; rc == 0 && t < test_count; t++) {
                uint32_t row = test[t];
                candidate->predicted[row] = s_best (scores + t * labels, labels, &candidate->margins[row]);
                right += candidate->predicted[row] == self->labels[row];
            }
            candidate->fold_accuracy[f] = test_count ? (double) right / (double) test_count : 0;
            if (rc == 0 && !grid)
                s_progress (self, "fold %u/%u: accuracy %.4f on %zu held out, %.1f s, %u passes at most%s", f + 1,
                            folds, candidate->fold_accuracy[f], test_count, s_now () - started,
                            atomic_load (&problem.passes),
                            atomic_load (&problem.passes) >= candidate->settings.epochs ? " (the limit)" : "");
        }
        if (rc == 0 && grid)
            s_progress (self, "bits %u, char %u-%u: fold %u/%u done, %zu settings, %.1f s", first->features.bits,
                        first->features.char_min, first->features.char_max, f + 1, folds, count,
                        s_now () - started);
        s_vocabulary_destroy (&vocabulary);
    }
    for (size_t c = 0; rc == 0 && c < count; c++)
        if (s_evaluate (self->labels, candidates[c].predicted, self->count, labels, &candidates[c].accuracy,
                        &candidates[c].macro_f1))
            rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    free (train);
    free (test);
    free (scores);
    free (bias);
    return rc;
}

/* Fits settings on every example into a new model with its weights, not yet calibrated. */
static intent_model_t *
s_fit_all (const intent_train_t *self, const intent_train_settings_t *settings, unsigned *passes, cv_error_t *err)
{
    size_t labels = self->name_count, buckets = (size_t) 1 << settings->features.bits;
    matrix_t *matrix = s_matrix_new (self, &settings->features);
    uint32_t *all = malloc (self->count * sizeof *all);
    vocabulary_t vocabulary = {0};
    float *bias = malloc (labels * sizeof *bias), *weights = NULL, *idf = NULL;
    intent_model_t *model = NULL;
    if (!matrix || !all || !bias) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < self->count; i++)
        all[i] = (uint32_t) i;
    if (s_vocabulary (matrix, all, self->count, buckets, &vocabulary)) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        goto done;
    }
    s_matrix_weigh (matrix, &vocabulary);
    size_t rows = vocabulary.seen_count;
    weights = malloc ((rows * labels + 1) * sizeof *weights);
    idf = malloc ((rows + 1) * sizeof *idf);
    if (!weights || !idf) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for %zu rows", rows);
        goto done;
    }
    problem_t problem = {
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
    if (s_run (&problem, settings->threads, err))
        goto done;
    *passes = atomic_load (&problem.passes);
    for (size_t r = 0; r < rows; r++)
        idf[r] = vocabulary.idf[vocabulary.seen[r]];
    model = intent_model_new (&settings->features, (const char *const *) self->names, labels, err);
    if (model
        && intent_model_set_weights (model, rows, vocabulary.seen, idf, weights, bias,
                                     intent_features_idf (self->count, 0), err))
        intent_model_destroy (&model);
done:
    s_matrix_destroy (&matrix);
    s_vocabulary_destroy (&vocabulary);
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
s_candidates (const intent_train_t *self, const intent_train_settings_t *settings, const intent_train_grid_t *grid,
              size_t *count, size_t *per_variant, cv_error_t *err)
{
    size_t c_count = grid && grid->c_count ? grid->c_count : 1;
    size_t bits_count = grid && grid->bits_count ? grid->bits_count : 1;
    size_t char_count = grid && grid->char_count ? grid->char_count : 1;
    assert (c_count <= INTENT_TRAIN_GRID_MAX && bits_count <= INTENT_TRAIN_GRID_MAX
            && char_count <= INTENT_TRAIN_GRID_MAX);
    *count = c_count * bits_count * char_count;
    *per_variant = c_count;
    candidate_t *candidates = calloc (*count, sizeof *candidates);
    if (!candidates) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    size_t at = 0;
    for (size_t b = 0; b < bits_count; b++)
        for (size_t ch = 0; ch < char_count; ch++)
            for (size_t c = 0; c < c_count; c++, at++) {
                intent_train_settings_t *candidate = &candidates[at].settings;
                *candidate = *settings;
                if (grid && grid->bits_count)
                    candidate->features.bits = grid->bits[b];
                if (grid && grid->char_count) {
                    candidate->features.char_min = grid->char_min[ch];
                    candidate->features.char_max = grid->char_max[ch];
                }
                if (grid && grid->c_count)
                    candidate->c = grid->c[c];
                candidates[at].predicted = malloc ((self->count + 1) * sizeof *candidates[at].predicted);
                candidates[at].margins = malloc ((self->count + 1) * sizeof *candidates[at].margins);
                if (!candidates[at].predicted || !candidates[at].margins) {
                    cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
                    s_candidates_destroy (candidates, *count);
                    return NULL;
                }
                if (intent_train_settings_check (candidate, err)) {
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
s_finish (const intent_train_t *self, intent_model_t *model, const candidate_t *candidate,
          intent_train_report_t *report, cv_error_t *err)
{
    bool *correct = malloc (self->count * sizeof *correct);
    float *confidences = malloc (self->count * sizeof *confidences);
    int rc = -1;
    if (!correct || !confidences)
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    else {
        for (size_t i = 0; i < self->count; i++)
            correct[i] = candidate->predicted[i] == self->labels[i];
        report->knots = s_calibrate (model, candidate->margins, correct, self->count, err);
        if (report->knots > 0) {
            for (size_t i = 0; i < self->count; i++)
                confidences[i] = intent_model_calibrate (model, candidate->margins[i]);
            rc = 0;
            for (size_t i = 0; rc == 0 && i < INTENT_TRAIN_FAST_PATHS; i++)
                rc = intent_train_fast_path (confidences, correct, self->count, s_fast_path_coverages[i],
                                             &report->fast_path[i], err);
            if (rc == 0)
                rc = intent_train_fast_path (confidences, correct, self->count, candidate->settings.coverage,
                                             &report->chosen, err);
            if (rc == 0)
                rc = intent_model_set_threshold (model, (float) candidate->settings.coverage,
                                                 (float) report->chosen.threshold, err);
        }
    }
    free (correct);
    free (confidences);
    return rc;
}

intent_model_t *
intent_train_fit (intent_train_t *self, const intent_train_settings_t *settings, const intent_train_grid_t *grid,
                  intent_train_report_t *report, cv_error_t *err)
{
    assert (self && settings);
    if (intent_train_settings_check (settings, err))
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
    intent_train_report_t local;
    if (!report)
        report = &local;
    memset (report, 0, sizeof *report);

    size_t count, per_variant;
    candidate_t *candidates = s_candidates (self, settings, grid, &count, &per_variant, err);
    if (!candidates)
        return NULL;
    uint8_t *fold = malloc (self->count * sizeof *fold);
    uint32_t *scratch = malloc (self->count * sizeof *scratch);
    intent_model_t *model = NULL;
    int rc = 0;
    if (!fold || !scratch)
        rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    else
        s_folds (self, settings->folds, settings->seed, fold, scratch);
    s_progress (self, "%zu examples, %zu labels: %u-fold cross-validation of %zu setting%s", self->count,
                self->name_count, settings->folds, count, count == 1 ? "" : "s");

    for (size_t v = 0; rc == 0 && v < count; v += per_variant) {
        matrix_t *matrix = s_matrix_new (self, &candidates[v].settings.features);
        if (!matrix)
            rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory for the features");
        else
            rc = s_cross_validate (self, matrix, candidates + v, per_variant, fold, settings->folds, count > 1, err);
        s_matrix_destroy (&matrix);
        for (size_t c = v; rc == 0 && count > 1 && c < v + per_variant; c++) {
            const intent_train_settings_t *tried = &candidates[c].settings;
            s_progress (self, "settings %zu/%zu: c %g, bits %u, char %u-%u: accuracy %.4f, macro-F1 %.4f", c + 1,
                        count, tried->c, tried->features.bits, tried->features.char_min, tried->features.char_max,
                        candidates[c].accuracy, candidates[c].macro_f1);
        }
    }
    const candidate_t *best = &candidates[0];
    for (size_t c = 1; c < count; c++)
        if (candidates[c].accuracy > best->accuracy
            || (candidates[c].accuracy == best->accuracy && candidates[c].macro_f1 > best->macro_f1))
            best = &candidates[c];

    if (rc == 0) {
        double fit_started = s_now ();
        model = s_fit_all (self, &best->settings, &report->passes, err);
        report->fit_seconds = s_now () - fit_started;
        if (model)
            s_progress (self, "final fit on all %zu examples: %.1f s, %u passes at most%s", self->count,
                        report->fit_seconds, report->passes,
                        report->passes >= best->settings.epochs ? " (the limit: raise --epochs)" : "");
    }
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

/* Writes text to a new file name in directory; returns its path, which the caller frees. */
static char *
s_write_file (const char *directory, const char *name, const char *text)
{
    char *path = NULL;
    assert (asprintf (&path, "%s/%s", directory, name) > 0);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    fclose (file);
    return path;
}

/* Asserts that loading text as a training file fails with a message containing expected. */
static void
s_expect_load_error (const char *directory, const char *text, const char *expected, bool verbose)
{
    char *path = s_write_file (directory, "bad.csv", text);
    intent_train_t *train = intent_train_new ();
    cv_error_t err;
    int rc = intent_train_load (train, path, &err);
    if (verbose)
        printf ("  %s\n", rc ? err.message : "(loaded)");
    if (rc == 0 || !strstr (err.message, expected) || !strstr (err.message, path)) {
        fprintf (stderr, "intent_train: loading [%s] gave [%s], expected [%s]\n", text, rc ? err.message : "ok",
                 expected);
        abort ();
    }
    intent_train_destroy (&train);
    unlink (path);
    free (path);
}

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
intent_train_test (bool verbose)
{
    cv_error_t err;
    intent_train_settings_t settings;
    intent_train_settings_default (&settings);
    assert (intent_train_settings_check (&settings, &err) == 0);
    intent_train_settings_t bad = settings;
    bad.c = 0;
    assert (intent_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "c") == 0);
    bad = settings, bad.folds = 1;
    assert (intent_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "folds") == 0);
    bad = settings, bad.coverage = 1.5;
    assert (intent_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "coverage") == 0);
    bad = settings, bad.threads = 0;
    assert (intent_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "threads") == 0);
    bad = settings, bad.features.bits = 4;
    assert (intent_train_settings_check (&bad, &err) == -1 && strcmp (err.field, "bits") == 0);

    /* the fast path on synthetic scores: ten predictions, confidences 1.0 down to 0.1, the
       right ones marked */
    float confidences[10];
    bool correct[10] = {true, true, true, false, true, true, false, true, false, false};
    for (size_t i = 0; i < 10; i++)
        confidences[i] = (float) (10 - i) / 10.0f;
    intent_train_fast_path_t fast;
    assert (intent_train_fast_path (confidences, correct, 10, 0.8, &fast, &err) == 0);
    assert (fast.threshold == 0.3f && fast.covered == 0.8 && fabs (fast.accuracy - 6.0 / 8.0) < 1e-12);
    assert (intent_train_fast_path (confidences, correct, 10, 0.7, &fast, &err) == 0);
    assert (fast.threshold == 0.4f && fast.covered == 0.7 && fabs (fast.accuracy - 5.0 / 7.0) < 1e-12);
    assert (intent_train_fast_path (confidences, correct, 10, 0.25, &fast, &err) == 0); /* 2.5 -> 3 kept */
    assert (fast.threshold == 0.8f && fast.covered == 0.3 && fast.accuracy == 1.0);
    assert (intent_train_fast_path (confidences, correct, 10, 1.0, &fast, &err) == 0);
    assert (fast.threshold == 0.1f && fast.covered == 1.0 && fast.accuracy == 0.6);
    assert (intent_train_fast_path (confidences, correct, 10, 0.01, &fast, &err) == 0); /* at least one */
    assert (fast.threshold == 1.0f && fast.covered == 0.1);
    /* order does not matter; ties keep more than asked */
    float tied[5] = {0.5f, 0.9f, 0.2f, 0.9f, 0.9f};
    bool tied_correct[5] = {true, true, false, false, true};
    assert (intent_train_fast_path (tied, tied_correct, 5, 0.4, &fast, &err) == 0);
    assert (fast.threshold == 0.9f && fast.covered == 0.6 && fabs (fast.accuracy - 2.0 / 3.0) < 1e-12);
    assert (intent_train_fast_path (tied, tied_correct, 0, 0.5, &fast, &err) == -1);
    assert (intent_train_fast_path (tied, tied_correct, 5, 0, &fast, &err) == -1);
    assert (intent_train_fast_path (tied, tied_correct, 5, 1.01, &fast, &err) == -1);

    /* the confidence map: isotonic, so increasing even where the data is not */
    intent_features_settings_t features;
    intent_features_settings_default (&features);
    features.bits = 8;
    static const char *const ab[] = {"a", "b"};
    intent_model_t *model = intent_model_new (&features, ab, 2, &err);
    float margins[8] = {0.1f, 0.2f, 0.3f, 0.3f, 0.5f, 0.6f, 0.7f, 0.9f};
    bool right[8] = {false, true, false, false, true, false, true, true};
    assert (s_calibrate (model, margins, right, 8, &err) > 0);
    float last = -1;
    for (float m = 0; m < 1.2f; m += 0.05f) {
        float p = intent_model_calibrate (model, m);
        assert (p >= last && p >= 0 && p <= 1);
        last = p;
    }
    assert (intent_model_calibrate (model, 0.0f) == 0.0f);  /* the lowest margin was wrong */
    assert (intent_model_calibrate (model, 1.0f) == 1.0f);  /* the two highest were right */
    intent_model_destroy (&model);

    /* the optimiser on a tiny separable set: every training text right */
    static const char *const words[] = {"alpha", "bravo", "charlie"};
    static const char *const names[] = {"first", "second", "third"};
    static const char *const tails[] = {"red", "green", "blue", "one", "two", "three"};
    const char *texts[18], *labels[18];
    char storage[18][32];
    intent_train_t *train = intent_train_new ();
    assert (train);
    for (size_t i = 0; i < 18; i++) {
        snprintf (storage[i], sizeof storage[i], "%s %s", tails[i % 6], words[i / 6]);
        texts[i] = storage[i];
        labels[i] = names[i / 6];
        assert (intent_train_add (train, texts[i], strlen (texts[i]), labels[i], &err) == 0);
    }
    assert (intent_train_size (train) == 18 && intent_train_label_count (train) == 3);
    assert (strcmp (intent_train_label (train, 2), "third") == 0 && !intent_train_label (train, 3));
    assert (intent_train_add (train, "x", 1, "no spaces please", &err) == -1 && strstr (err.message, "not a valid"));
    assert (intent_train_size (train) == 18);
    settings.features.bits = 12;
    settings.folds = 3;
    settings.c = 10;
    settings.threads = 2;
    intent_train_report_t report;
    model = intent_train_fit (train, &settings, NULL, &report, &err);
    assert (model);
    assert (s_accuracy (model, texts, labels, 18) == 1.0);
    assert (report.examples == 18 && report.labels == 3 && report.folds == 3 && report.candidates == 1);
    assert (report.accuracy == 1.0 && report.macro_f1 == 1.0); /* held out too: the words decide */
    assert (report.rows == intent_model_rows (model) && report.knots >= 1);
    assert (report.passes >= 1 && report.passes < settings.epochs);
    intent_model_destroy (&model);
    /* too few examples or labels */
    settings.folds = 19;
    assert (!intent_train_fit (train, &settings, NULL, NULL, &err) && strstr (err.message, "18 examples for 19"));
    settings.folds = 3;
    intent_train_t *lonely = intent_train_new ();
    assert (intent_train_add (lonely, "a", 1, "only", &err) == 0);
    assert (intent_train_add (lonely, "b", 1, "only", &err) == 0);
    settings.folds = 2;
    assert (!intent_train_fit (lonely, &settings, NULL, NULL, &err) && strstr (err.message, "two or more"));
    intent_train_destroy (&lonely);
    intent_train_destroy (&train);

    /* training files: good, and each way of being bad, named by file and line */
    char directory[] = "/tmp/intent_train_test.XXXXXX";
    assert (mkdtemp (directory));
    char *path = s_write_file (directory, "good.csv",
                               "id,category,text\r\n1,card_arrival,\"Where is my card, still?\"\r\n"
                               "2,lost_or_stolen_card,\"I lost it\nyesterday\"\r\n");
    train = intent_train_new ();
    assert (intent_train_load (train, path, &err) == 0);
    assert (intent_train_size (train) == 2 && intent_train_label_count (train) == 2);
    assert (strcmp (intent_train_label (train, 1), "lost_or_stolen_card") == 0);
    intent_train_destroy (&train);
    unlink (path);
    free (path);
    s_expect_load_error (directory, "I lost my card,lost_or_stolen_card\n", "line 1: the header must name", verbose);
    s_expect_load_error (directory, "", "no header", verbose);
    s_expect_load_error (directory, "text,category\nfine,a\nnot,fine,b\n", "line 3: 3 fields", verbose);
    s_expect_load_error (directory, "text,category\n\"two\nlines\",a\n,b\n", "line 4: the text is empty", verbose);
    s_expect_load_error (directory, "text,category\nhello,!!\n", "line 2: label '!!' is not a valid", verbose);
    s_expect_load_error (directory, "text,category\nhello,a?\nbye,a!\n", "line 3: labels 'a?' and 'a!' would both",
                         verbose);
    /* a label that is not a valid intent name is cleaned into one, and remembered as written */
    path = s_write_file (directory, "renamed.csv", "text,category\nhello,reverted card payment?\nbye,b\n"
                                                   "again,reverted card payment?\n");
    train = intent_train_new ();
    assert (intent_train_load (train, path, &err) == 0);
    assert (intent_train_size (train) == 3 && intent_train_label_count (train) == 2);
    assert (strcmp (intent_train_label (train, 0), "reverted_card_payment") == 0);
    assert (strcmp (intent_train_label_source (train, 0), "reverted card payment?") == 0);
    assert (strcmp (intent_train_label_source (train, 1), "b") == 0);
    assert (!intent_train_label_source (train, 2));
    intent_train_destroy (&train);
    unlink (path);
    free (path);
    s_expect_load_error (directory, "text,category\n\"open,a\n", "not closed", verbose);
    train = intent_train_new ();
    assert (intent_train_load (train, "/nonexistent.csv", &err) == -1 && strstr (err.message, "/nonexistent.csv"));
    intent_train_destroy (&train);
    assert (rmdir (directory) == 0);

    /* a slice of Banking77: the first 20 examples of each of its first 10 labels, 15 to train
       on and 5 held out */
    enum { LABELS = 10, PER_LABEL = 20, TRAIN_PER_LABEL = 15 };
    intent_csv_t *csv = intent_csv_load (CONVEYOR_SOURCE_DIR "/data/banking77/train.csv", &err);
    assert (csv && intent_csv_read_header (csv, &err) == 0);
    char *slice_texts[LABELS][PER_LABEL], *slice_names[LABELS];
    size_t found[LABELS] = {0}, label_count = 0;
    while (intent_csv_next (csv, &err) == 1) {
        const char *category = intent_csv_field (csv, 1, NULL);
        size_t label = 0;
        while (label < label_count && strcmp (slice_names[label], category) != 0)
            label++;
        if (label == label_count) {
            if (label_count == LABELS)
                continue;
            slice_names[label_count++] = strdup (category);
        }
        if (found[label] < PER_LABEL)
            slice_texts[label][found[label]++] = strdup (intent_csv_field (csv, 0, NULL));
    }
    intent_csv_destroy (&csv);
    assert (label_count == LABELS);
    train = intent_train_new ();
    intent_train_set_progress (train, verbose ? s_print_progress : NULL, "slice");
    const char *held_texts[LABELS * (PER_LABEL - TRAIN_PER_LABEL)], *held_labels[LABELS * (PER_LABEL - TRAIN_PER_LABEL)];
    size_t held = 0;
    for (size_t label = 0; label < LABELS; label++) {
        assert (found[label] == PER_LABEL);
        for (size_t i = 0; i < PER_LABEL; i++)
            if (i < TRAIN_PER_LABEL)
                assert (intent_train_add (train, slice_texts[label][i], strlen (slice_texts[label][i]),
                                          slice_names[label], &err) == 0);
            else {
                held_texts[held] = slice_texts[label][i];
                held_labels[held++] = slice_names[label];
            }
    }
    intent_train_settings_default (&settings);
    settings.threads = 2;
    model = intent_train_fit (train, &settings, NULL, &report, &err);
    assert (model);
    /* The floor: halfway from the majority label's share of the held-out texts to all right. */
    double majority = (double) (PER_LABEL - TRAIN_PER_LABEL) / (double) held;
    double floor = (1.0 + majority) / 2.0;
    double accuracy = s_accuracy (model, held_texts, held_labels, held);
    if (verbose)
        printf ("  slice: held-out accuracy %.3f (floor %.3f), cross-validated %.3f, macro-F1 %.3f, threshold "
                "%.3f for %.0f%%\n", accuracy, floor, report.accuracy, report.macro_f1, report.chosen.threshold,
                100 * report.chosen.coverage);
    assert (accuracy > floor);
    assert (report.accuracy > floor);
    assert (report.chosen.covered >= settings.coverage);
    assert (intent_model_threshold (model) == (float) report.chosen.threshold);
    for (size_t i = 0; i < INTENT_TRAIN_FAST_PATHS; i++) {
        assert (report.fast_path[i].covered >= report.fast_path[i].coverage);
        assert (i == 0 || report.fast_path[i].threshold <= report.fast_path[i - 1].threshold);
    }

    /* deterministic: the same seed gives the same model, byte for byte, on any number of threads;
       a grid picks one of its candidates */
    settings.threads = 1;
    intent_train_grid_t grid = {.c = {0.1, 1.0}, .c_count = 2, .bits = {12, 14}, .bits_count = 2};
    intent_model_t *again = intent_train_fit (train, &settings, NULL, NULL, &err);
    assert (again);
    size_t size, again_size;
    uint8_t *bytes = intent_model_file_encode (model, &size);
    uint8_t *again_bytes = intent_model_file_encode (again, &again_size);
    assert (size == again_size && memcmp (bytes, again_bytes, size) == 0);
    free (bytes);
    free (again_bytes);
    intent_model_destroy (&again);
    settings.threads = 3;
    again = intent_train_fit (train, &settings, &grid, &report, &err);
    assert (again && report.candidates == 4);
    assert (report.settings.c == 0.1 || report.settings.c == 1.0);
    assert (report.settings.features.bits == 12 || report.settings.features.bits == 14);
    assert (intent_model_features (again)->bits == report.settings.features.bits);
    intent_model_destroy (&again);
    grid.bits[0] = 40;
    assert (!intent_train_fit (train, &settings, &grid, NULL, &err) && strstr (err.message, "grid"));

    intent_model_destroy (&model);
    intent_train_destroy (&train);
    for (size_t label = 0; label < LABELS; label++) {
        for (size_t i = 0; i < PER_LABEL; i++)
            free (slice_texts[label][i]);
        free (slice_names[label]);
    }
    if (verbose)
        printf ("intent_train: ok\n");
}
