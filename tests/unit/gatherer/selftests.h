/* The gatherer's self-tests, for tests/unit/selftest.c: each class's x_test (bool verbose).
   gatherer_sql needs the PostgreSQL test fixture (ctest label pg). */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "gatherer_server.h"
#include "gatherer_sql.h"
#include "gatherer_tools.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"gatherer_tools", gatherer_tools_test},
    {"gatherer_sql", gatherer_sql_test},
    {"gatherer_server", gatherer_server_test},
    {NULL, NULL},
};

#endif
