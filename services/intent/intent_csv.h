/* A reader of CSV files as RFC 4180 writes them, with a header: the labelled data the intent
   model is trained on.

   Fields are separated by commas and records by CRLF or LF (a lone CR too). A field in double
   quotes may hold commas, line breaks and quotes, a quote written twice (""); a quote anywhere
   else in a field, or anything but a separator after a closing quote, is an error, as is a quoted
   field left open at the end of the file. Blank lines between records are skipped, a UTF-8 byte
   order mark at the start too. The first record is the header; every record after it must have
   as many fields. Errors name the line, counted from 1 in the file, where the record starts.

   The whole file is read into memory: training files are small. */
#ifndef INTENT_CSV_H
#define INTENT_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"

#define INTENT_CSV_MAX_FIELDS 64
#define INTENT_CSV_MAX_BYTES (256u * 1024 * 1024)   /* a larger file is refused */

typedef struct _intent_csv_t intent_csv_t;

/* A reader of the size bytes at data (copied). NULL only when memory runs out. */
intent_csv_t *intent_csv_new (const char *data, size_t size);
/* A reader of the file at path; NULL with err when it cannot be read or exceeds INTENT_CSV_MAX_BYTES. */
intent_csv_t *intent_csv_load (const char *path, cv_error_t *err) CV_MUST_CHECK;
void intent_csv_destroy (intent_csv_t **self_p);

/* Reads the header, the first record: 0, or -1 with err when there is none or it is malformed.
   Call once, before intent_csv_next. */
int intent_csv_read_header (intent_csv_t *self, cv_error_t *err) CV_MUST_CHECK;

/* The index of the header's column called name, or -1 when there is none. */
int intent_csv_column (const intent_csv_t *self, const char *name);

/* The number of columns of the header. */
size_t intent_csv_columns (const intent_csv_t *self);

/* Header column index's name (borrowed), or NULL past the end. */
const char *intent_csv_column_name (const intent_csv_t *self, size_t index);

/* Reads the next record: 1 when there is one, 0 at the end of the data, -1 with err (naming the
   line) when it is malformed or has another number of fields than the header. */
int intent_csv_next (intent_csv_t *self, cv_error_t *err) CV_MUST_CHECK;

/* Field index of the current record, unquoted, NUL-terminated (it may hold NULs too: its size in
   *size when size is not NULL); borrowed until the next intent_csv_next. */
const char *intent_csv_field (const intent_csv_t *self, size_t index, size_t *size);

/* The line where the current record (or the header) starts, from 1. */
size_t intent_csv_line (const intent_csv_t *self);

void intent_csv_test (bool verbose);

#endif
