/* Free-form data on the wire: JSON values (jansson) packed to and checked out of msgpack. */
#ifndef CV_MSGPACK_H
#define CV_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_error.h"

#define CV_MSGPACK_MAX_BYTES (256 * 1024) /* one msgpack field */
#define CV_MSGPACK_MAX_DEPTH 16

/* Packs value into a malloc'd buffer the caller frees; *size gets its length. NULL on failure
   (a value jansson cannot hold in msgpack, such as a nested depth over the limit). */
uint8_t *cv_msgpack_pack (const json_t *value, size_t *size, cv_error_t *err) CV_MUST_CHECK;

/* Decodes and checks size bytes: one well-formed msgpack value, no trailing bytes, within the
   size and depth limits, map keys and strings valid UTF-8, no binary or extension types.
   Returns a new reference the caller owns, or NULL with err naming field and the rule broken.
   Empty input decodes to an empty object (an unset bytes field). */
json_t *cv_msgpack_unpack (const uint8_t *data, size_t size, const char *field, cv_error_t *err) CV_MUST_CHECK;

void cv_msgpack_test (bool verbose);

#endif
