/* A growing byte buffer with an upper bound, for a body that arrives in pieces (an HTTP answer
   from libcurl, an upload from libmicrohttpd).

   Plain data: a zeroed cv_buffer_t is empty and owns nothing; the data stays NUL-terminated, so
   text can be read as a string. The owner calls cv_buffer_release when done with it. */
#ifndef CV_BUFFER_H
#define CV_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_assert.h"
#include "cv_error.h"

typedef struct {
    char *data; /* size bytes and a NUL, owned; NULL until the first append */
    size_t size;
    size_t capacity;
} cv_buffer_t;

/* Appends size bytes. false, with the buffer unchanged, when the whole would be over limit
   bytes: the caller decides what an oversized body means. */
bool cv_buffer_append (cv_buffer_t *self, const void *bytes, size_t size, size_t limit) CV_MUST_CHECK;
/* Empties it, keeping the memory for the next body. */
void cv_buffer_clear (cv_buffer_t *self);
/* Frees the memory; the buffer is empty again and can be reused. */
void cv_buffer_release (cv_buffer_t *self);

void cv_buffer_test (bool verbose);

#endif
