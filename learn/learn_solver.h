/* The solver: for every label, a linear SVM of that label against the others (one-vs-rest),
   fitted by dual coordinate descent as liblinear does it (Hsieh et al., ICML 2008): L2-regularised,
   hinge or squared hinge loss, a bias feature, shrinking, coordinates visited in an order drawn
   from the seed.

   The labels are shared out among threads; each label's problem and its random order are its
   own, so the weights are the same, bit for bit, for a given seed whatever the number of threads. */
#ifndef LEARN_SOLVER_H
#define LEARN_SOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "learn_matrix.h"

#define LEARN_SOLVER_MAX_THREADS 64

typedef enum {
    LEARN_SOLVER_HINGE,        /* liblinear -s 3 */
    LEARN_SOLVER_SQUARED_HINGE /* liblinear -s 1, its default */
} learn_solver_loss_t;

/* One-vs-rest SVMs for every label on a set of training rows of a weighed matrix. Plain data: the
   caller fills the inputs and owns every array. */
typedef struct {
    const learn_matrix_t *matrix;
    const uint32_t *labels; /* per matrix row: its label, below label_count */
    size_t label_count;
    const uint32_t *train; /* the rows to fit on */
    size_t train_count;
    const uint32_t *test; /* rows scored after fitting; may be none */
    size_t test_count;
    const learn_vocabulary_t *vocabulary; /* of the training rows */
    size_t buckets;                       /* 2^bits */
    learn_solver_loss_t loss;
    double c;
    unsigned epochs;  /* passes over the data, at most, per label */
    double tolerance; /* stop when the projected gradients' spread is within this */
    uint64_t seed;
    float *test_scores; /* out, when test_count: [test][label] */
    float *weights;     /* out, or NULL: [seen bucket of the vocabulary][label] */
    float *bias;        /* out: per label */
    unsigned passes;    /* out: the most passes any label took */
} learn_solver_problem_t;

/* Solves problem on up to threads threads (fewer when threads cannot be started). */
void learn_solver_run (learn_solver_problem_t *problem, unsigned threads);

/* Shuffles count items in an order drawn from state (splitmix64, the same on every machine), which
   it advances: the solver's order of coordinates, and cross-validation's dealing of folds. */
void learn_solver_shuffle (uint32_t *items, size_t count, uint64_t *state);

void learn_solver_test (bool verbose);

#endif
