/* One self-test entry: a class's name and a function that runs its test, failing by assert. */
#ifndef SELFTEST_H
#define SELFTEST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;
    void (*run) (bool verbose);
} selftest_t;

#endif
