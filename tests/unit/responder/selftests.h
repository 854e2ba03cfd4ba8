/* The table of the responder's self-tests, for the per-service runner built from
   tests/unit/selftest.c: `responder-selftest NAME [-v]`. */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "responder_guard.h"
#include "responder_server.h"
#include "responder_templates.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"responder_guard", responder_guard_test},
    {"responder_templates", responder_templates_test},
    {"responder_server", responder_server_test},
    {NULL, NULL},
};

#endif
