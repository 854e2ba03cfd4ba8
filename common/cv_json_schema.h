/* JSON Schema, the part of it structured outputs use: a schema checked once, then values
   validated against it, each failure naming where in the value it is ($.intent, $.items[2]).

   The keywords taken: type (one name or a list: object, array, string, number, integer, boolean,
   null), enum, const, properties, required, additionalProperties (a boolean or a schema), items,
   minItems, maxItems, minLength, maxLength (in characters), minimum, maximum, exclusiveMinimum,
   exclusiveMaximum (numbers), anyOf, and the annotations title, description and default, which
   constrain nothing. A schema may be true (anything) or false (nothing). Any other keyword
   ($ref, pattern, format, oneOf...) is refused by cv_json_schema_check rather than ignored: a
   constraint the validator skipped would let through what the schema's author meant to stop.

   An integer is a number with no fraction (1.0 is one, as JSON Schema says); enum and const
   compare with json_equal. No I/O, no state: safe from any thread. */
#ifndef CV_JSON_SCHEMA_H
#define CV_JSON_SCHEMA_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_error.h"

/* Whether schema (borrowed) is one this validator can enforce in full: 0, or -1 with err
   (INVALID, field "schema") naming the keyword and where it is ("schema.properties.intent: the
   keyword pattern is not supported"). */
int cv_json_schema_check (const json_t *schema, cv_error_t *err) CV_MUST_CHECK;

/* Whether value matches schema (both borrowed; schema checked): 0, or -1 with err (MALFORMED,
   field the value's path) saying the first mismatch ("$.intent: \"pizza\" is not one of the 77
   allowed values"). */
int cv_json_schema_validate (const json_t *schema, const json_t *value, cv_error_t *err) CV_MUST_CHECK;

void cv_json_schema_test (bool verbose);

#endif
