/* A region allocator: many small allocations freed at once, used to build a reply message. */
#include "cv_arena.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

/* Each allocation is its own block on a list: simple, and exact under AddressSanitizer. */
typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

struct _cv_arena_t {
    block_t *blocks;
};

cv_arena_t *
cv_arena_new (void)
{
    return cv_calloc (1, sizeof (cv_arena_t));
}

void
cv_arena_destroy (cv_arena_t **self_p)
{
    assert (self_p);
    cv_arena_t *self = *self_p;
    if (!self)
        return;
    while (self->blocks) {
        block_t *next = self->blocks->next;
        free (self->blocks);
        self->blocks = next;
    }
    free (self);
    *self_p = NULL;
}

void *
cv_arena_alloc (cv_arena_t *self, size_t size)
{
    assert (self);
    block_t *block = cv_calloc (1, sizeof (block_t) + (size ? size : 1));
    block->next = self->blocks;
    self->blocks = block;
    return block->data;
}

void *
cv_arena_memdup (cv_arena_t *self, const void *data, size_t size)
{
    void *copy = cv_arena_alloc (self, size);
    if (size)
        memcpy (copy, data, size);
    return copy;
}

char *
cv_arena_strdup (cv_arena_t *self, const char *string)
{
    assert (string);
    return cv_arena_memdup (self, string, strlen (string) + 1);
}

char *
cv_arena_printf (cv_arena_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int size = vsnprintf (NULL, 0, format, args);
    va_end (args);
    if (size < 0)
        return NULL;
    char *string = cv_arena_alloc (self, (size_t) size + 1);
    va_start (args, format);
    vsnprintf (string, (size_t) size + 1, format, args);
    va_end (args);
    return string;
}

void *
cv_arena_adopt (cv_arena_t *self, void *block, size_t size)
{
    if (!block)
        return NULL;
    void *copy = cv_arena_memdup (self, block, size);
    free (block);
    return copy;
}

void
cv_arena_test (bool verbose)
{
    cv_arena_t *arena = cv_arena_new ();
    assert (arena);
    char *hello = cv_arena_strdup (arena, "hello");
    assert (strcmp (hello, "hello") == 0);
    int *numbers = cv_arena_alloc (arena, 10 * sizeof (int));
    for (int i = 0; i < 10; i++)
        assert (numbers[i] == 0);
    char *formatted = cv_arena_printf (arena, "%s-%d", "cust", 42);
    assert (strcmp (formatted, "cust-42") == 0);
    assert (cv_arena_alloc (arena, 0));
    char *adopted = cv_arena_adopt (arena, cv_strdup ("mine"), 5);
    assert (strcmp (adopted, "mine") == 0);
    cv_arena_destroy (&arena);
    assert (arena == NULL);
    cv_arena_destroy (&arena);
    if (verbose)
        printf ("cv_arena: ok\n");
}
