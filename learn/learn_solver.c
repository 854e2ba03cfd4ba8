/* One-vs-rest linear SVMs by dual coordinate descent, the labels shared out among threads. */
#include "learn_solver.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

/* A run of the solver: the labels not yet taken, the most passes one took. */
typedef struct {
    learn_solver_problem_t *problem;
    atomic_size_t next_label;
    atomic_uint passes;
} run_t;

/* One thread's working memory. */
typedef struct {
    run_t *run;
    double *w;     /* per bucket, zero between labels */
    double *alpha; /* per training example */
    uint32_t *index;
} worker_t;

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t
s_random (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void
learn_solver_shuffle (uint32_t *items, size_t count, uint64_t *state)
{
    assert (items || count == 0);
    for (size_t i = 0; i + 1 < count; i++) {
        size_t j = i + (size_t) (s_random (state) % (count - i));
        uint32_t item = items[i];
        items[i] = items[j];
        items[j] = item;
    }
}

static inline double
s_dot (const learn_matrix_t *matrix, uint32_t row, const double *w)
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
    learn_solver_problem_t *problem = worker->run->problem;
    const learn_matrix_t *matrix = problem->matrix;
    size_t count = problem->train_count;
    double *w = worker->w, *alpha = worker->alpha, bias = 0;
    uint32_t *index = worker->index;
    bool hinge = problem->loss == LEARN_SOLVER_HINGE;
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
        learn_solver_shuffle (index, active, &state);
        size_t s = 0;
        while (s < active) {
            uint32_t i = index[s];
            uint32_t row = problem->train[i];
            double y = problem->labels[row] == label ? 1 : -1;
            double gradient = y * (s_dot (matrix, row, w) + bias * LEARN_MATRIX_BIAS) - 1 + alpha[i] * diagonal;
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
                bias += step * LEARN_MATRIX_BIAS;
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
        problem->test_scores[t * labels + label] =
            (float) (s_dot (matrix, problem->test[t], w) + bias * LEARN_MATRIX_BIAS);
    const learn_vocabulary_t *vocabulary = problem->vocabulary;
    for (size_t r = 0; r < vocabulary->seen_count; r++) {
        if (problem->weights)
            problem->weights[r * labels + label] = (float) w[vocabulary->seen[r]];
        w[vocabulary->seen[r]] = 0; /* every bucket a training row has: w is zero again */
    }
    problem->bias[label] = (float) (bias * LEARN_MATRIX_BIAS);
    return pass;
}

static void *
s_worker (void *arg)
{
    worker_t *worker = arg;
    run_t *run = worker->run;
    size_t label;
    while ((label = atomic_fetch_add (&run->next_label, 1)) < run->problem->label_count) {
        unsigned passes = s_solve (worker, label);
        unsigned most = atomic_load (&run->passes);
        while (passes > most && !atomic_compare_exchange_weak (&run->passes, &most, passes))
            ;
    }
    return NULL;
}

void
learn_solver_run (learn_solver_problem_t *problem, unsigned threads)
{
    assert (problem && problem->matrix && problem->labels && problem->vocabulary && problem->bias);
    assert (problem->test_count == 0 || (problem->test && problem->test_scores));
    assert (threads >= 1 && threads <= LEARN_SOLVER_MAX_THREADS);
    if (threads > problem->label_count)
        threads = (unsigned) problem->label_count;
    run_t run = {.problem = problem};
    atomic_init (&run.next_label, 0);
    atomic_init (&run.passes, 0);
    worker_t workers[LEARN_SOLVER_MAX_THREADS];
    pthread_t ids[LEARN_SOLVER_MAX_THREADS];
    size_t count = problem->train_count ? problem->train_count : 1;
    for (unsigned i = 0; i < threads; i++) {
        worker_t *worker = &workers[i];
        worker->run = &run;
        worker->w = cv_calloc (problem->buckets, sizeof *worker->w);
        worker->alpha = cv_malloc (count * sizeof *worker->alpha);
        worker->index = cv_malloc (count * sizeof *worker->index);
    }
    unsigned started = 1;
    for (; started < threads; started++)
        if (pthread_create (&ids[started], NULL, s_worker, &workers[started])) {
            /* fewer threads do the same work */
            break;
        }
    s_worker (&workers[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join (ids[i], NULL);
    for (unsigned i = 0; i < threads; i++) {
        free (workers[i].w);
        free (workers[i].alpha);
        free (workers[i].index);
    }
    problem->passes = atomic_load (&run.passes);
}

/* Fits the examples' labels on all of them (a tiny separable set) and scores them too. */
static void
s_fit (const learn_matrix_t *matrix, const learn_examples_t *examples, const learn_vocabulary_t *vocabulary,
       size_t buckets, learn_solver_loss_t loss, unsigned threads, float *weights, float *bias, float *scores,
       unsigned *passes)
{
    size_t count = learn_examples_size (examples);
    uint32_t all[32];
    assert (count <= 32);
    for (size_t i = 0; i < count; i++)
        all[i] = (uint32_t) i;
    learn_solver_problem_t problem = {
        .matrix = matrix,
        .labels = learn_examples_labels (examples),
        .label_count = learn_examples_label_count (examples),
        .train = all,
        .train_count = count,
        .test = all,
        .test_count = count,
        .vocabulary = vocabulary,
        .buckets = buckets,
        .loss = loss,
        .c = 10,
        .epochs = 200,
        .tolerance = 0.1,
        .seed = 42,
        .test_scores = scores,
        .weights = weights,
        .bias = bias,
    };
    learn_solver_run (&problem, threads);
    *passes = problem.passes;
}

void
learn_solver_test (bool verbose)
{
    /* the shuffle: a permutation, the same for the same seed */
    uint32_t items[10], again[10];
    for (uint32_t i = 0; i < 10; i++)
        items[i] = again[i] = i;
    uint64_t state = 7, same = 7;
    learn_solver_shuffle (items, 10, &state);
    learn_solver_shuffle (again, 10, &same);
    assert (memcmp (items, again, sizeof items) == 0 && state == same);
    uint32_t sum = 0;
    for (size_t i = 0; i < 10; i++)
        sum += 1u << items[i];
    assert (sum == 1023);

    /* three labels told apart by a word each */
    static const char *const words[] = {"alpha", "bravo", "charlie"};
    static const char *const names[] = {"first", "second", "third"};
    static const char *const tails[] = {"red", "green", "blue", "one", "two", "three"};
    learn_examples_t *examples = learn_examples_new ();
    cv_error_t err;
    for (size_t i = 0; i < 18; i++) {
        char text[32];
        snprintf (text, sizeof text, "%s %s", tails[i % 6], words[i / 6]);
        assert (learn_examples_add (examples, text, strlen (text), names[i / 6], &err) == 0);
    }
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    size_t buckets = (size_t) 1 << settings.bits;
    learn_matrix_t *matrix = learn_matrix_new (examples, &settings);
    uint32_t all[18];
    for (uint32_t i = 0; i < 18; i++)
        all[i] = i;
    learn_vocabulary_t vocabulary = {0};
    learn_matrix_vocabulary (matrix, all, 18, buckets, &vocabulary);
    learn_matrix_weigh (matrix, &vocabulary);
    size_t rows = vocabulary.seen_count;
    float *weights = cv_malloc (rows * 3 * sizeof *weights), *again_weights = cv_malloc (rows * 3 * sizeof *weights);
    float bias[3], again_bias[3], scores[18 * 3], again_scores[18 * 3];
    unsigned passes, again_passes;
    assert (weights && again_weights);
    for (int loss = LEARN_SOLVER_HINGE; loss <= LEARN_SOLVER_SQUARED_HINGE; loss++) {
        s_fit (matrix, examples, &vocabulary, buckets, (learn_solver_loss_t) loss, 1, weights, bias, scores, &passes);
        /* every training row scores highest for its own label */
        const uint32_t *labels = learn_examples_labels (examples);
        for (size_t row = 0; row < 18; row++)
            for (size_t label = 0; label < 3; label++)
                assert (label == labels[row] || scores[row * 3 + label] < scores[row * 3 + labels[row]]);
        assert (passes >= 1 && passes < 200);
        /* on three threads: the same, bit for bit */
        s_fit (matrix, examples, &vocabulary, buckets, (learn_solver_loss_t) loss, 3, again_weights, again_bias,
               again_scores, &again_passes);
        assert (memcmp (weights, again_weights, rows * 3 * sizeof *weights) == 0);
        assert (memcmp (bias, again_bias, sizeof bias) == 0 && memcmp (scores, again_scores, sizeof scores) == 0);
        assert (passes == again_passes);
        if (verbose)
            printf ("  %s loss: %u passes at most, bias %.3f %.3f %.3f\n",
                    loss == LEARN_SOLVER_HINGE ? "hinge" : "squared hinge", passes, bias[0], bias[1], bias[2]);
    }
    free (weights);
    free (again_weights);
    learn_vocabulary_reset (&vocabulary);
    learn_matrix_destroy (&matrix);
    learn_examples_destroy (&examples);
    if (verbose)
        printf ("learn_solver: ok\n");
}
