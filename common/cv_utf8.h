/* UTF-8 validation for text that crosses a trust boundary. */
#ifndef CV_UTF8_H
#define CV_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_assert.h"

/* True when the size bytes at text are well-formed UTF-8 (no overlongs, surrogates or NULs). */
bool cv_utf8_valid (const char *text, size_t size);

/* The number of code points in valid UTF-8 text. */
size_t cv_utf8_length (const char *text, size_t size);

/* The length of text's longest prefix of at most max_bytes that ends between code points: where
   valid UTF-8 text may be cut and stay valid. */
size_t cv_utf8_prefix (const char *text, size_t max_bytes);

void cv_utf8_test (bool verbose);

#endif
