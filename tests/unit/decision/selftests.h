/* The table of the decision worker's self-tests: each class's x_test (bool verbose). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "decision_policy.h"
#include "decision_server.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"decision_policy", decision_policy_test},
    {"decision_server", decision_server_test},
    {NULL, NULL},
};

#endif
