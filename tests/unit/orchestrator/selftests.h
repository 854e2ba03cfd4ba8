/* The orchestrator's self-tests. */
#ifndef SELFTESTS_H
#define SELFTESTS_H

#include <stdbool.h>

#include "orchestrator_api.h"
#include "orchestrator_request.h"
#include "orchestrator_settings.h"

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

static const selftest_t selftests[] = {
    {"orchestrator_api", orchestrator_api_test},
    {"orchestrator_request", orchestrator_request_test},
    {"orchestrator_settings", orchestrator_settings_test},
    {NULL, NULL},
};

#endif
