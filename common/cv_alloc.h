/* The allocation policy: allocators that never return NULL, because running out of memory aborts.

   Running out of memory is not an error a service can handle sensibly: the branch that would
   handle it is never tested, and it needs memory itself to log, reply or unwind. So, as redis's
   zmalloc does, every allocation in conveyor goes through these functions, which on failure write
   one line to stderr naming the size asked for and abort (). The supervisor restarts the process
   and the checkpoints in PostgreSQL mean no request is lost; callers never check for NULL.

   Libraries that allocate for themselves keep their own contract: czmq already asserts on out of
   memory; where jansson, libpq or msgpack-c return NULL that can also mean bad input or a lost
   connection, so callers keep those checks as error handling. */
#ifndef CV_ALLOC_H
#define CV_ALLOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "cv_assert.h"

/* malloc: size bytes, uninitialised, the caller's to free. Never NULL. */
void *cv_malloc (size_t size) __attribute__ ((malloc, returns_nonnull));
/* calloc: count * size zeroed bytes (aborts if the product overflows), the caller's to free. */
void *cv_calloc (size_t count, size_t size) __attribute__ ((malloc, returns_nonnull));
/* realloc: block (NULL or owned by the caller) resized to size bytes; the result replaces block. */
void *cv_realloc (void *block, size_t size) __attribute__ ((returns_nonnull));
/* strdup / strndup: a copy of string (at most size bytes of it, NUL-terminated), the caller's. */
char *cv_strdup (const char *string) __attribute__ ((malloc, returns_nonnull, nonnull (1)));
char *cv_strndup (const char *string, size_t size) __attribute__ ((malloc, returns_nonnull, nonnull (1)));
/* asprintf: the formatted string, the caller's to free. */
char *cv_asprintf (const char *format, ...) __attribute__ ((format (printf, 1, 2), malloc, returns_nonnull));
char *cv_vasprintf (const char *format, va_list args) __attribute__ ((format (printf, 1, 0), malloc, returns_nonnull));

void cv_alloc_test (bool verbose);

#endif
