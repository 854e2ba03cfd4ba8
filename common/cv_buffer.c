/* A growing byte buffer with an upper bound, for a body that arrives in pieces. */
#include "cv_buffer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

#define FIRST_CAPACITY 4096

bool
cv_buffer_append (cv_buffer_t *self, const void *bytes, size_t size, size_t limit)
{
    assert (self && (bytes || size == 0));
    if (self->size + size > limit)
        return false;
    if (self->size + size + 1 > self->capacity) {
        size_t capacity = self->capacity ? self->capacity : FIRST_CAPACITY;
        while (capacity < self->size + size + 1)
            capacity *= 2;
        self->data = cv_realloc (self->data, capacity);
        self->capacity = capacity;
    }
    if (size)
        memcpy (self->data + self->size, bytes, size);
    self->size += size;
    self->data[self->size] = '\0';
    return true;
}

void
cv_buffer_clear (cv_buffer_t *self)
{
    assert (self);
    self->size = 0;
    if (self->data)
        self->data[0] = '\0';
}

void
cv_buffer_release (cv_buffer_t *self)
{
    assert (self);
    free (self->data);
    *self = (cv_buffer_t){0};
}

void
cv_buffer_test (bool verbose)
{
    /* Empty: nothing owned, and releasing it is harmless. */
    cv_buffer_t buffer = {0};
    cv_buffer_clear (&buffer);
    assert (!buffer.data && buffer.size == 0);
    cv_buffer_release (&buffer);

    /* Pieces join up, NUL-terminated. */
    assert (cv_buffer_append (&buffer, "hello", 5, 100));
    assert (cv_buffer_append (&buffer, ", world", 7, 100));
    assert (cv_buffer_append (&buffer, NULL, 0, 100));
    assert (buffer.size == 12 && strcmp (buffer.data, "hello, world") == 0);

    /* Over the limit: refused, the buffer as it was; exactly at the limit: taken. */
    assert (!cv_buffer_append (&buffer, "!!", 2, 13));
    assert (buffer.size == 12 && strcmp (buffer.data, "hello, world") == 0);
    assert (cv_buffer_append (&buffer, "!", 1, 13));
    assert (buffer.size == 13 && strcmp (buffer.data, "hello, world!") == 0);

    /* Clearing keeps the memory; a large body grows it. */
    char *memory = buffer.data;
    cv_buffer_clear (&buffer);
    assert (buffer.size == 0 && buffer.data == memory && buffer.data[0] == '\0');
    char big[10000];
    memset (big, 'x', sizeof big);
    for (int i = 0; i < 3; i++)
        assert (cv_buffer_append (&buffer, big, sizeof big, 1 << 20));
    assert (buffer.size == 3 * sizeof big && buffer.capacity > buffer.size);
    assert (buffer.data[0] == 'x' && buffer.data[buffer.size - 1] == 'x' && buffer.data[buffer.size] == '\0');
    cv_buffer_release (&buffer);
    assert (!buffer.data && buffer.size == 0 && buffer.capacity == 0);
    if (verbose)
        printf ("cv_buffer: ok\n");
}
