/* Errors that travel up a call chain as a code, a field and a message fit for a log line. */
#ifndef CV_ERROR_H
#define CV_ERROR_H

#include "cv_assert.h"

#include <stdarg.h>

#define CV_MUST_CHECK __attribute__ ((warn_unused_result))

/* The codes mirror conveyor.v1.Error.Code, so an error becomes an Error reply unchanged. */
typedef enum {
    CV_OK = 0,
    CV_ERR_MALFORMED = 1,  /* not a valid message at all */
    CV_ERR_INVALID = 2,    /* a field breaks a rule */
    CV_ERR_WRONG_BODY = 3, /* the receiver does not take that body */
    CV_ERR_DEADLINE_EXCEEDED = 4,
    CV_ERR_UNAVAILABLE = 5, /* a dependency failed; a retry may help */
    CV_ERR_INTERNAL = 6
} cv_error_code_t;

typedef struct {
    cv_error_code_t code;
    char field[64]; /* the offending field, "" when none */
    char message[512];
} cv_error_t;

/* Fills err (which may be NULL) and returns -1, so callers can `return cv_error_set (...)`. */
int cv_error_set (cv_error_t *err, cv_error_code_t code, const char *field, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

/* Prefixes err's message with a context, e.g. the file and line of a config key. */
void cv_error_prefix (cv_error_t *err, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

void cv_error_clear (cv_error_t *err);

/* The name of a code, e.g. "INVALID". */
const char *cv_error_code_name (cv_error_code_t code);

#include <stdbool.h>
void cv_error_test (bool verbose);

#endif
