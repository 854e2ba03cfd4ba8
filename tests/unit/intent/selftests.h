/* The table of the intent worker's self-tests: each class's x_test (bool verbose). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "intent_rules.h"
#include "intent_server.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"intent_rules", intent_rules_test},
    {"intent_server", intent_server_test},
    {NULL, NULL},
};

#endif
