/* A region allocator: many small allocations freed at once, used to build a reply message. */
#ifndef CV_ARENA_H
#define CV_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_assert.h"

typedef struct _cv_arena_t cv_arena_t;

cv_arena_t *cv_arena_new (void);
/* Frees every allocation made from the arena. */
void cv_arena_destroy (cv_arena_t **self_p);

/* Zeroed memory owned by the arena; never NULL (out of memory aborts, see cv_alloc.h). */
void *cv_arena_alloc (cv_arena_t *self, size_t size);
char *cv_arena_strdup (cv_arena_t *self, const char *string);
void *cv_arena_memdup (cv_arena_t *self, const void *data, size_t size);
/* printf into arena memory. */
char *cv_arena_printf (cv_arena_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

/* Takes a malloc'd block of size bytes: frees it and returns an arena copy (NULL if block is). */
void *cv_arena_adopt (cv_arena_t *self, void *block, size_t size);

void cv_arena_test (bool verbose);

#endif
