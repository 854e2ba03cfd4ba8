/* The labelled examples the intent model is trained and evaluated on: texts and their labels, in
   order, added one by one or read from a CSV file with columns `text` and `category`.

   Labels are numbered in order of first appearance. A label read from a file that is not a valid
   intent name is made one (see learn_examples_load) and remembered as written.

   The files are CSV as RFC 4180 writes them, with a header, parsed by libcsv: fields are
   separated by commas and records by CRLF or LF (a lone CR too). A field in double quotes may hold
   commas, line breaks and quotes, a quote written twice (""); spaces are part of a field. A quote
   anywhere else in a field, or anything but a separator after a closing quote, is an error, as is
   a quoted field left open at the end of the file. Blank lines between records are skipped, a
   UTF-8 byte order mark at the start too. Every record after the header must have as many
   fields. Errors name the line, counted from 1 in the file, where the record starts (or, inside a
   record, where the fault is). The whole file is read into memory: training files are small. */
#ifndef LEARN_EXAMPLES_H
#define LEARN_EXAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"

#define LEARN_EXAMPLES_MAX_FIELDS 64
#define LEARN_EXAMPLES_MAX_BYTES (256u * 1024 * 1024) /* a larger file is refused */

typedef struct _learn_examples_t learn_examples_t;

/* No examples yet; never NULL (out of memory aborts, see cv_alloc.h). */
learn_examples_t *learn_examples_new (void);
void learn_examples_destroy (learn_examples_t **self_p);

/* Adds an example: size bytes of text (any bytes) and its label (NUL-terminated), copied. -1
   with err when the label is not a valid intent name (see intent_model_new) or would be one label
   too many, or memory runs out. */
int learn_examples_add (learn_examples_t *self, const char *text, size_t size, const char *label,
                        cv_error_t *err) CV_MUST_CHECK;

/* Adds the examples of a CSV file with columns `text` and `category` (others are ignored). A
   category that is not a valid intent name is made one: spaces become underscores, other
   characters outside [A-Za-z0-9_.:-] are dropped (Banking77's "reverted_card_payment?" is
   reverted_card_payment), and learn_examples_label_source keeps it as written. -1 with err,
   naming the file and line, at the first row that is malformed, has an empty text, or a category
   that cannot be so named or would be named as another is; the examples before it are kept. */
int learn_examples_load (learn_examples_t *self, const char *path, cv_error_t *err) CV_MUST_CHECK;

size_t learn_examples_size (const learn_examples_t *self);
size_t learn_examples_label_count (const learn_examples_t *self);
/* Label index's name, in order of first appearance, or NULL past the end. */
const char *learn_examples_label (const learn_examples_t *self, size_t index);
/* Label index as written in the data (where learn_examples_load renamed it), or NULL past the end. */
const char *learn_examples_label_source (const learn_examples_t *self, size_t index);
/* Example index: its text (size bytes, NUL-terminated, borrowed) and its label's name (as the
   model names it, borrowed); NULL past the end. */
const char *learn_examples_example (const learn_examples_t *self, size_t index, size_t *size, const char **label);

/* Every example's label index, learn_examples_size of them, and the labels' names,
   learn_examples_label_count of them: borrowed, valid until the next add or load. */
const uint32_t *learn_examples_labels (const learn_examples_t *self);
const char *const *learn_examples_names (const learn_examples_t *self);

void learn_examples_test (bool verbose);

#endif
