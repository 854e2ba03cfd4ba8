/* Text templates with {{path}} placeholders filled from a JSON context, and the dotted-path
   look-up behind them ("evidence.cards.0.last4"), shared by the decision and responder workers.

   Rendering is strict: a placeholder whose path is missing or not a scalar fails the render, so a
   caller can fall back to another template instead of sending a reply with a hole in it. */
#ifndef CV_TEMPLATE_H
#define CV_TEMPLATE_H

#include <stdbool.h>

#include <jansson.h>

#include "cv_error.h"

/* The value at a dotted path (object keys, array indices), borrowed from context, or NULL. */
json_t *cv_template_lookup (const json_t *context, const char *path);

/* A scalar as text: strings as they are, numbers in their shortest form, booleans true/false.
   Returns a malloc'd string, or NULL for objects, arrays and null. */
char *cv_template_scalar_text (const json_t *value);

/* Renders text; a malloc'd string the caller frees, or NULL with err naming the placeholder. */
char *cv_template_render (const char *text, const json_t *context, cv_error_t *err) CV_MUST_CHECK;

/* Checks a template's syntax (closed placeholders, paths of [A-Za-z0-9_.]) without a context. */
int cv_template_check (const char *text, cv_error_t *err) CV_MUST_CHECK;

void cv_template_test (bool verbose);

#endif
