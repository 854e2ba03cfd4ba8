/* The table of the learning kit's self-tests: each class's x_test (bool verbose). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "learn_calibration.h"
#include "learn_eval.h"
#include "learn_examples.h"
#include "learn_matrix.h"
#include "learn_metrics.h"
#include "learn_solver.h"
#include "learn_train.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"learn_examples", learn_examples_test},
    {"learn_matrix", learn_matrix_test},
    {"learn_solver", learn_solver_test},
    {"learn_metrics", learn_metrics_test},
    {"learn_calibration", learn_calibration_test},
    {"learn_train", learn_train_test},
    {"learn_eval", learn_eval_test},
    {NULL, NULL},
};

#endif
